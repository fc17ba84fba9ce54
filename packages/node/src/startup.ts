/**
 * Startup wiring, part one: everything a node opens before its drivers run, in boot
 * order — launch the enclave on this server (its SVN floor judged before anything is
 * opened), open the HSM device and log in with the stored credential (restart),
 * load the sealed ownership checkpoint, choose the sealers (the pool key only for a
 * synced member), open the Raft WAL/snapshot and restore the key store from it.
 * PoolNode (node.ts) then wires the drivers and the transport to what this returns.
 */
import { join } from "node:path";
import { fail } from "@hsmpool/errors";
import type { Enclave } from "@hsmpool/platform";
import { KeyStore, type OwnershipCheckpoint } from "@hsmpool/pool";
import type { ConfState, Snapshot } from "@hsmpool/raft";
import type { Logger } from "pino";
import type { ChaosHooks } from "./chaos-hooks.js";
import type { NodeConfig } from "./config.js";
import { PartitionAccess } from "./hsm/partition-access.js";
import type { NodeMetrics } from "./metrics/node-metrics.js";
import { CheckpointFile } from "./ownership/checkpoint-file.js";
import { peerSvnFloor } from "./peer/policy.js";
import type { HsmDevicePort } from "./seams/hsm.js";
import type { NodeSeams } from "./seams/index.js";
import type { LaunchedServer } from "./seams/platform.js";
import { RaftStore, type RecoveredRaftState } from "./storage/raft-store.js";
import { cpuSealer, poolKeySealer, Sealers } from "./storage/sealer.js";

/** The key-store state at the founding snapshot (index 1, term 1): empty, applied through 1. */
export function foundingKeyStoreData(poolId: string): Uint8Array {
  const store = new KeyStore({ poolId });
  store.apply({ index: 1, term: 1, type: "normal", data: new Uint8Array() });
  return store.snapshot();
}

export interface NodeState {
  server: LaunchedServer;
  enclave: Enclave;
  device: HsmDevicePort;
  access: PartitionAccess;
  /** The stored credential opened the partition (a restart, not a first boot). */
  restarted: boolean;
  checkpoints: CheckpointFile;
  checkpoint: OwnershipCheckpoint | null;
  sealers: Sealers;
  store: RaftStore;
  recovered: RecoveredRaftState;
  keyStore: KeyStore;
}

/** Launches the enclave and opens the node's durable state (see the module comment). */
export interface OpenStateOptions {
  config: NodeConfig;
  seams: NodeSeams;
  logger: Logger;
  chaos: ChaosHooks | undefined;
  metrics: NodeMetrics;
}

export async function openNodeState(o: OpenStateOptions): Promise<NodeState> {
  const { config, seams, logger, chaos, metrics } = o;
  const { storage, random } = seams;
  const server = await seams.platform.launch(config);
  const enclave = server.enclave;
  const id = enclave.identity;
  logger.info(
    { mrenclave: id.mrenclave, mrsigner: id.mrsigner, svn: id.svn, serverId: id.serverId, rackId: id.rackId },
    "enclave launched",
  );
  // minPeerSvn can only be judged against the launched enclave's SVN: refuse it before anything is opened.
  peerSvnFloor(id, config.minPeerSvn);
  await storage.mkdir(join(config.stateDir, "raft"));

  const device = await server.openHsm();
  if (chaos && device.faults) chaos.start(device.faults);
  const access = new PartitionAccess(
    device.partition(config.partition),
    enclave,
    config.stateDir,
    chaos ? () => chaos.beforeHsmOperation() : undefined,
    storage,
    (operation, ok, seconds) => metrics.hsmOperation(operation, ok, seconds),
  );
  const restarted = await access.loginWithStoredCredential();
  const checkpoints = new CheckpointFile(enclave, config.stateDir, config.nodeId, storage);
  const checkpoint = await checkpoints.load();

  // A synced member's log may be sealed with the pool key: it must be usable before replay.
  // (A provisional checkpoint's pool key is not the pool's until its Genesis wins: never seal with it.)
  const sealers = new Sealers(cpuSealer(enclave));
  if (checkpoint?.phase === "synced" && restarted)
    sealers.usePoolKey(poolKeySealer(access.session, checkpoint.poolKeyKeyId));

  const foundingConf: ConfState = {
    voters: [config.nodeId, ...config.peers.map((p) => p.id)].sort(),
    learners: [],
  };
  const { store, recovered } = await RaftStore.open({
    dir: join(config.stateDir, "raft"),
    sealers,
    storage,
    random,
    ...(config.mode === "bootstrap"
      ? { bootstrap: { conf: foundingConf, data: foundingKeyStoreData(config.poolId) } }
      : {}),
  });
  store.onFsync = (seconds) => metrics.walFsync(seconds);
  if (chaos) store.beforeWrite = () => chaos.beforeDiskWrite();
  const keyStore = restoreKeyStore(recovered.snapshot, config.poolId);
  logger.info(
    {
      restarted,
      snapshotIndex: recovered.snapshot.meta.index,
      lastIndex: recovered.lastIndex,
      commit: recovered.hardState.commit,
      term: recovered.hardState.term,
      tornBytesCut: recovered.truncatedBytes,
      sealedWithPoolKey: sealers.hasPoolKey,
    },
    "state recovered",
  );
  return {
    server,
    enclave,
    device,
    access,
    restarted,
    checkpoints,
    checkpoint,
    sealers,
    store,
    recovered,
    keyStore,
  };
}

/** The key store a snapshot holds (it must be applied through the snapshot's index). */
export function restoreKeyStore(snapshot: Snapshot, poolId: string): KeyStore {
  const steps = restoreKeyStoreSteps(snapshot, poolId);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** restoreKeyStore in steps (KeyStore.restoreSteps): the caller's loop may run between two. */
export function* restoreKeyStoreSteps(snapshot: Snapshot, poolId: string): Generator<void, KeyStore, void> {
  const store =
    snapshot.data.length > 0
      ? yield* KeyStore.restoreSteps(snapshot.data, { poolId })
      : new KeyStore({ poolId });
  if (store.appliedIndex !== snapshot.meta.index) {
    fail(
      "IntegrityError",
      `snapshot at index ${snapshot.meta.index} holds key-store state applied through ${store.appliedIndex}`,
    );
  }
  return store;
}
