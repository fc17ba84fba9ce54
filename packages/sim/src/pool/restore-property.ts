import { isHsmPoolError } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";
import { encodeCommand, KeyStore } from "@hsmpool/pool";
import { crc32 } from "../checksum.js";
import { INTENSITIES } from "../faults.js";
import { US_PER_MS, US_PER_S } from "../scheduler.js";
import { PoolCluster } from "./cluster.js";
import type { PoolMember } from "./member.js";
import { findPoolScenario } from "./scenarios.js";

/**
 * Simulator property (issue 15): a restore yields exactly the backup's key set. The
 * shipped nodes run the "random" scenario's faults (crashes with torn WAL tails, pauses,
 * partitions, link faults, HSM faults) while clients create, delete and sign; an operator
 * actor commits the security domain's activation record, takes a backup the way a backup
 * job does (a read barrier on the primary, then its key store's snapshot), lets the
 * clients write on (keys made and deleted after the backup), and commits a full restore
 * through Raft, retrying through elections. After the heal every member's key store must
 * hold exactly the backup's keys: the same names, versions, wrapped material and deleted
 * keys — nothing lost, nothing from after the backup kept.
 *
 * The SD itself is modelled by its replicated record (its cryptography is tested in
 * @hsmpool/security-domain and end to end): the restore path under test is the Raft
 * command, its apply on every member and the HSM imports it causes.
 */

export type RestoreUnsafeMode =
  /** A broken restore job that restores only one key of the backup (the property must catch it). */
  "oneKeyOnly";

export interface RestorePropertyOptions {
  seed: number;
  unsafeMode?: RestoreUnsafeMode;
  transcript?: (line: string) => void;
}

export interface RestorePropertyResult {
  seed: number;
  ok: boolean;
  /** What went wrong: the property, the pool's own invariants, or the operator never getting through. */
  violation?: string;
  traceHash: string;
  /** Keys (live + deleted) in the backup, and keys the store had at the restore that were not in it. */
  backupKeys: number;
  keysDroppedByRestore: number;
  /** Whether the key store differed from the backup when the restore was committed (else the run proves little). */
  changedSinceBackup: boolean;
  membersChecked: number;
}

const DURATION_US = 26 * US_PER_S;
const FAULTS_FROM_US = 1 * US_PER_S;
const BACKUP_AT_US = 5 * US_PER_S;
const WORKLOAD_STOP_US = 11 * US_PER_S;
/** After the clients' last operations timed out (2 s): nothing a client sees comes after the restore. */
const RESTORE_AT_US = 13.5 * US_PER_S;
const HEAL_AT_US = 15 * US_PER_S;
const ACTOR_STEP_US = 250 * US_PER_MS;

/** A key store's key set: live keys with every version's number and wrapped material (its CRC), and the deleted keys. */
export function keySetOf(store: KeyStore): string {
  const live = store
    .list()
    .map((k) => k.name)
    .sort()
    .map((name) => {
      const versions = store
        .versionRecords(name)
        .map((v) => `${v.version}:${crc32(v.wrappedMaterial).toString(16)}`);
      return `${name}=[${versions.join(",")}]`;
    });
  const deleted = store
    .listDeleted()
    .map((d) => `${d.name}=[${d.versions.join(",")}]`)
    .sort();
  return `live ${live.join(" ")} | deleted ${deleted.join(" ")}`;
}

type Step = "activate" | "backup" | "write-on" | "restore" | "done";

export async function runRestoreProperty(o: RestorePropertyOptions): Promise<RestorePropertyResult> {
  const root = Prng.fromSeed(o.seed);
  const intensity = INTENSITIES.low;
  const plan = findPoolScenario("random")?.plan({
    prng: root.split("restore-property/plan"),
    intensity,
    fromUs: FAULTS_FROM_US,
    untilUs: HEAL_AT_US,
  });
  if (!plan) throw new Error("the random pool scenario is missing");
  const cluster = new PoolCluster(root.split("pool-cluster"), {
    plan,
    intensity,
    durationUs: DURATION_US,
    healAtUs: HEAL_AT_US,
    // The clients stop before the restore, so the pool's own liveness check (a create after the heal) cannot run.
    livenessBoundUs: Number.POSITIVE_INFINITY,
    workloadStopUs: WORKLOAD_STOP_US,
    ...(o.transcript ? { transcript: o.transcript } : {}),
  });
  const ids = root.split("restore-property/ids");
  const requestId = (what: string) => `${what}-${ids.nextU32().toString(16)}${ids.nextU32().toString(16)}`;
  let step: Step = "activate";
  let busy = false;
  let backup: Uint8Array | null = null;
  let backupSet = "";
  let keysDroppedByRestore = 0;
  let changedSinceBackup = false;
  let actorError: string | undefined;

  /** One commit through the primary's shipped key service; a refusal or lost answer is retried next step. */
  const commit = async (leader: PoolMember, data: Uint8Array, id: string) => {
    const keys = leader.keys;
    if (!keys) return null;
    keys.requireLeader();
    return keys.commit(id, data);
  };

  const act = async () => {
    const leader = cluster.leader();
    const store = leader?.store;
    if (!leader || !store || !leader.keys) return;
    const now = cluster.nowUs;
    if (step === "activate") {
      const id = requestId("activate");
      const out = await commit(
        leader,
        encodeCommand({
          kind: "activateSecurityDomain",
          requestId: id,
          sdId: `sd${o.seed.toString(16)}`,
          quorum: 2,
          shareCount: 3,
          sealedSecret: new Uint8Array(48).fill(7),
          origin: "download",
          at: 0,
        }),
        id,
      );
      // A second activation is refused as a Conflict (already active): either way the record is committed.
      if (
        out?.kind === "securityDomainActivated" ||
        (out?.kind === "rejected" && out.error.code === "Conflict")
      )
        step = "backup";
    } else if (step === "backup" && now >= BACKUP_AT_US) {
      // What a backup job does: a read barrier on the primary, then its store's snapshot, in one turn.
      await leader.keys.accessState();
      const barrierStore = leader.store;
      if (!barrierStore || cluster.leader() !== leader) return;
      backup = barrierStore.snapshot();
      backupSet = keySetOf(KeyStore.restore(backup));
      cluster.log(() => `operator: backup of ${leader.id}'s key store: ${backupSet}`);
      step = "write-on";
    } else if (step === "write-on" && now >= RESTORE_AT_US) {
      step = "restore";
    } else if (step === "restore" && backup) {
      const keyName =
        o.unsafeMode === "oneKeyOnly" ? (KeyStore.restore(backup).list()[0]?.name ?? null) : null;
      const before = new Set(store.list().map((k) => k.name));
      const beforeSet = keySetOf(store);
      const id = requestId("restore");
      const out = await commit(
        leader,
        encodeCommand({ kind: "restoreBackup", requestId: id, state: backup, keyName, at: 0 }),
        id,
      );
      if (out?.kind === "backupRestored") {
        const restoredNames = new Set(
          KeyStore.restore(backup)
            .list()
            .map((k) => k.name),
        );
        keysDroppedByRestore = [...before].filter((n) => !restoredNames.has(n)).length;
        changedSinceBackup = beforeSet !== backupSet;
        cluster.log(() => `operator: restore committed (${keyName ? `key ${keyName} only` : "full"})`);
        step = "done";
      } else if (out?.kind === "rejected") {
        actorError = `the restore was rejected: ${out.error.code} ${out.error.message}`;
        step = "done";
      }
    }
  };

  const tick = () => {
    if (!busy && step !== "done") {
      busy = true;
      act()
        .catch((e: unknown) => {
          // NotLeader, NoQuorum, a crashed primary: the operator tries again on the next step.
          if (!isHsmPoolError(e)) actorError = `operator: ${e instanceof Error ? e.message : String(e)}`;
        })
        .finally(() => {
          busy = false;
        });
    }
    if (cluster.nowUs + ACTOR_STEP_US <= DURATION_US)
      cluster.queue.after(ACTOR_STEP_US, { k: "actor", fn: tick });
  };

  let violation: string | undefined;
  let membersChecked = 0;
  try {
    cluster.start();
    cluster.queue.at(FAULTS_FROM_US, { k: "actor", fn: tick });
    await cluster.run();
    if (actorError) violation = actorError;
    else if ((step as Step) !== "done") violation = `the operator never got through (stuck at ${step})`;
    else {
      for (const m of cluster.members.values()) {
        if (!m.store) continue;
        membersChecked++;
        const got = keySetOf(m.store);
        if (got !== backupSet) {
          violation = `restore-exact: ${m.id}'s key store after the restore is not the backup's key set\n  backup: ${backupSet}\n  ${m.id}:     ${got}`;
          break;
        }
      }
      if (!violation && membersChecked < 3) violation = `only ${membersChecked} members were up at the end`;
    }
  } catch (e) {
    violation = e instanceof Error ? e.message : String(e);
  }
  if (violation) cluster.trace.addString(violation);
  return {
    seed: o.seed,
    ok: violation === undefined,
    ...(violation ? { violation } : {}),
    traceHash: cluster.trace.hex(),
    backupKeys: backup
      ? KeyStore.restore(backup).list().length + KeyStore.restore(backup).listDeleted().length
      : 0,
    keysDroppedByRestore,
    changedSinceBackup,
    membersChecked,
  };
}
