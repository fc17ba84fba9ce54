/**
 * Starting and stopping a pool from the CLI: make the fabric if needed, start the
 * HFC in the background, wait for the pool to become healthy while reporting
 * progress; stop it through the HFC (with a fallback for an HFC that is gone).
 */
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { initFabricWithHsms } from "@hsmpool/hsm";
import { inspectBundle, openFabric } from "@hsmpool/platform";
import { BuiltInRoleIds } from "@hsmpool/pool";
import {
  FabricControllerClient,
  isOurProcess,
  isRunning,
  type LauncherKind,
  type LocalBundle,
  type PoolStatus,
  readHfcInfo,
  readNodePids,
  readPoolSpec,
  runDirMismatch,
  runPaths,
  signalProcess,
  spawnHfc,
  type TenantBindingRequest,
  waitForExit,
  waitForHfc,
} from "@hsmpool/wire";
import { PoolClient } from "../sdk/pool-client.js";
import { TenantDirectoryCredential } from "../tenant/credential.js";
import { DEFAULT_PRINCIPAL, TenantDirectory } from "../tenant/tenant-dir.js";
import { activateWithCustomerKeys, CEREMONY_QUORUM, CEREMONY_SHARES, customerDirFor } from "./activation.js";
import { NODE_BUNDLE_DIR } from "./debug-bundle.js";
import { memberLine } from "./status-format.js";

export const DEFAULT_FABRIC_DIR = ".hsmpool/fabric";
export const DEFAULT_UP_TIMEOUT_MS = 60_000;
const HFC_START_TIMEOUT_MS = 20_000;
const HFC_STOP_TIMEOUT_MS = 15_000;
const POLL_MS = 200;

export type Progress = (line: string) => void;

/** Opens the fabric, or creates one (`racks` (3) racks x 2 servers, an HSM device per server) when there is none. */
export async function ensureFabric(fabricDir: string, onProgress: Progress, racks = 3): Promise<void> {
  try {
    await openFabric(fabricDir);
    return;
  } catch (e) {
    if (!isHsmPoolError(e, "NotFound") && !isHsmPoolError(e, "NotInitialized")) throw e;
  }
  onProgress(`no fabric in ${fabricDir}: creating one`);
  await initFabricWithHsms(fabricDir, { racks, onProgress: (line) => onProgress(`  ${line}`) });
}

/** Fails with Conflict when an HFC answers for this run dir; clears a stale hfc.json. */
export async function assertNoRunningPool(runDir: string): Promise<void> {
  const info = await readHfcInfo(runDir).catch(() => undefined);
  if (!info) return;
  if (isRunning(info.pid)) {
    fail(
      "Conflict",
      `pool ${info.poolId} is already running in ${runDir} (HFC pid ${info.pid}); \`hsmpool status\` shows it, \`hsmpool down\` stops it`,
      { runDir },
    );
  }
  await rm(runPaths(runDir).hfcJson, { force: true });
}

export interface StartOptions {
  runDir: string;
  fabricDir: string;
  poolId?: string;
  bundleDir?: string;
  nodeMain?: string;
  launcher?: LauncherKind;
  nodeImage?: string;
  healthIntervalMs?: number;
  failureThreshold?: number;
  serverLostAfterMs?: number;
  joinTimeoutMs?: number;
  timeoutMs: number;
  onProgress: Progress;
  /** The customer's tenant directory (default: $HSMPOOL_TENANT or .hsmpool/tenant). */
  tenantDir?: string;
  /**
   * Download the security domain once the pool is healthy (default true): the customer's
   * ceremony with three key pairs in the customer directory. false = leave it provisioned.
   */
  activate?: boolean;
  /** A new pool in recovery mode: wait for its members and a primary only (it serves nothing until an SD upload). */
  recover?: boolean;
  /**
   * Principals of that tenant who get Managed HSM Administrator at `/` (and nothing else).
   * Default: `admin` (created if missing) with Administrator, Crypto User and Crypto Officer at `/`.
   */
  admins?: string[];
}

/**
 * The default identity: the tenant directory exists (created with principal `admin` when
 * missing), so the CLI and SDK can mint tokens for the pool.
 */
export async function ensureTenant(opts: {
  tenantDir?: string;
  onProgress: Progress;
}): Promise<TenantDirectory> {
  const dir = opts.tenantDir ?? TenantDirectoryCredential.fromEnvironment().tenantDir;
  const { tenant, created } = await TenantDirectory.openOrInit(dir, [DEFAULT_PRINCIPAL]);
  if (created)
    opts.onProgress(
      `no tenant in ${dir}: created tenant ${tenant.tenantId} with principal ${DEFAULT_PRINCIPAL}`,
    );
  return tenant;
}

/**
 * The tenant binding a new pool commits at creation: the tenant's id, issuer and public
 * JWKS, and the initial role assignments (public data; written to `<run>/identity.json`).
 */
export async function tenantBindingRequest(opts: {
  tenantDir?: string;
  admins?: string[];
  onProgress: Progress;
}): Promise<TenantBindingRequest> {
  const tenant = await ensureTenant(opts);
  const assign = (principalId: string, roleDefinitionId: string) => ({
    id: randomUUID(),
    scope: "/",
    roleDefinitionId,
    principalId,
  });
  let assignments: TenantBindingRequest["assignments"];
  if (opts.admins !== undefined && opts.admins.length > 0) {
    assignments = opts.admins.map((name) => assign(tenant.principal(name).oid, BuiltInRoleIds.Administrator));
    opts.onProgress(
      `identity: tenant ${tenant.tenantId} (${tenant.dir}); ${opts.admins.join(", ")} ${opts.admins.length > 1 ? "hold" : "holds"} Managed HSM Administrator at / and nothing else`,
    );
  } else {
    const admin = tenant.listPrincipals().some((p) => p.name === DEFAULT_PRINCIPAL)
      ? tenant.principal(DEFAULT_PRINCIPAL)
      : await tenant.addPrincipal(DEFAULT_PRINCIPAL);
    assignments = [
      assign(admin.oid, BuiltInRoleIds.Administrator),
      assign(admin.oid, BuiltInRoleIds.CryptoUser),
      // Crypto User may soft-delete but not read, recover or purge deleted keys: the officer role adds those.
      assign(admin.oid, BuiltInRoleIds.CryptoOfficer),
    ];
    opts.onProgress(
      `identity: tenant ${tenant.tenantId} (${tenant.dir}); principal ${DEFAULT_PRINCIPAL} holds Managed HSM Administrator, Crypto User and Crypto Officer at / (the default identity: --tenant/--admin choose others)`,
    );
  }
  const binding = tenant.binding();
  return {
    tenant: {
      tenantId: binding.tenantId,
      issuer: binding.issuer,
      jwks: { keys: binding.jwks.keys.map((k) => ({ ...k })) },
    },
    assignments,
  };
}

/** The bundle the HFC will launch (--bundle-dir, else the built one), as a moved run dir's pool is matched against it. */
async function localBundle(bundleDir: string | undefined): Promise<LocalBundle | undefined> {
  const dir = resolve(bundleDir ?? NODE_BUNDLE_DIR);
  const r = await inspectBundle(dir).catch(() => undefined);
  return r
    ? { bundleDir: dir, svn: r.sigstruct?.svn ?? null, mrsigner: r.sigstruct?.mrsigner ?? null }
    : undefined;
}

/** Starts the HFC and waits until the pool is healthy; returns that status. */
export async function startPool(opts: StartOptions): Promise<PoolStatus> {
  await assertNoRunningPool(opts.runDir);
  // A run dir another deployment made is refused before anything is created.
  const existing = await readPoolSpec(opts.runDir);
  const mismatch = existing ? await runDirMismatch(opts.runDir, await localBundle(opts.bundleDir)) : null;
  if (mismatch) fail("Conflict", mismatch, { runDir: opts.runDir });
  await ensureFabric(opts.fabricDir, opts.onProgress);
  if (existing) {
    opts.onProgress(`resuming pool ${existing.poolId} from ${runPaths(opts.runDir).poolJson}`);
    if (opts.admins !== undefined) {
      opts.onProgress("--admin applies to a new pool only: this pool's administrators are in its log");
    }
  } else {
    const request = await tenantBindingRequest(opts);
    await mkdir(runPaths(opts.runDir).runDir, { recursive: true, mode: 0o700 });
    await writeFile(runPaths(opts.runDir).identityJson, `${JSON.stringify(request, null, 2)}\n`);
  }
  const pid = spawnHfc({
    runDir: opts.runDir,
    fabricDir: opts.fabricDir,
    ...(opts.poolId !== undefined ? { poolId: opts.poolId } : {}),
    ...(opts.recover ? { recover: true } : {}),
    ...(opts.bundleDir !== undefined ? { bundleDir: opts.bundleDir } : {}),
    ...(opts.nodeMain !== undefined ? { nodeMain: opts.nodeMain } : {}),
    ...(opts.launcher !== undefined ? { launcher: opts.launcher } : {}),
    ...(opts.nodeImage !== undefined ? { nodeImage: opts.nodeImage } : {}),
    ...(opts.healthIntervalMs !== undefined ? { healthIntervalMs: opts.healthIntervalMs } : {}),
    ...(opts.failureThreshold !== undefined ? { failureThreshold: opts.failureThreshold } : {}),
    ...(opts.serverLostAfterMs !== undefined ? { serverLostAfterMs: opts.serverLostAfterMs } : {}),
    ...(opts.joinTimeoutMs !== undefined ? { joinTimeoutMs: opts.joinTimeoutMs } : {}),
  });
  const info = await waitForHfc(opts.runDir, pid, HFC_START_TIMEOUT_MS);
  opts.onProgress(`HFC started (pid ${info.pid}, control ${info.controlAddress}), pool ${info.poolId}`);
  const hfc = new FabricControllerClient(info.controlAddress);
  let status: PoolStatus;
  try {
    status = await waitForHealthy(hfc, info.pid, opts);
  } finally {
    hfc.close();
  }
  if (!opts.recover && opts.activate !== false) await activateIfProvisioned(opts, status.poolId);
  if (opts.recover)
    opts.onProgress(
      "recovery mode: the pool serves nothing until the security domain is uploaded (hsmpool sd init-recovery, sd restore-blob, sd upload)",
    );
  return status;
}

/** The one-command default: a new pool gets its security domain downloaded into the customer directory. */
async function activateIfProvisioned(opts: StartOptions, poolId: string): Promise<void> {
  // The download is an Administrator's: the first --admin, else the selected principal.
  const credential = TenantDirectoryCredential.fromEnvironment({
    ...(opts.tenantDir !== undefined ? { tenantDir: opts.tenantDir } : {}),
    ...(opts.admins?.[0] !== undefined ? { principal: opts.admins[0] } : {}),
  });
  const client = await PoolClient.connect({ runDir: opts.runDir, credential });
  try {
    const sd = await client.securityDomainStatus();
    if (sd.state !== "provisioned") return;
    const done = await activateWithCustomerKeys(client, customerDirFor(credential.tenantDir, poolId));
    opts.onProgress(
      `activated: security domain ${done.sdId} downloaded to ${done.securityDomainPath} ` +
        `(quorum ${CEREMONY_QUORUM} of ${CEREMONY_SHARES}; the customer's RSA keys are in ${done.dir})`,
    );
  } finally {
    client.close();
  }
}

/** A recovering pool never syncs ownership before its SD upload: every member up and a primary is "started". */
function recoveryReady(s: PoolStatus): boolean {
  return s.primary !== "" && s.members.length === 3 && s.members.every((m) => m.health === "up");
}

async function waitForHealthy(
  hfc: FabricControllerClient,
  hfcPid: number,
  opts: { runDir: string; timeoutMs: number; onProgress: Progress; recover?: boolean },
): Promise<PoolStatus> {
  const deadline = Date.now() + opts.timeoutMs;
  const shown = new Map<string, string>();
  let shownPrimary = "";
  let last: PoolStatus | undefined;
  for (;;) {
    if (!isRunning(hfcPid))
      fail("ServiceUnavailable", `the HFC (pid ${hfcPid}) exited; see ${runPaths(opts.runDir).hfcLog}`);
    last = await hfc.status(2000).catch(() => last);
    if (last) {
      for (const m of last.members) {
        const line = memberLine(m);
        if (shown.get(m.id) !== line) opts.onProgress(`  ${line}`);
        shown.set(m.id, line);
      }
      if (last.primary !== "" && last.primary !== shownPrimary) {
        opts.onProgress(`  primary: ${last.primary} (term ${last.term})`);
        shownPrimary = last.primary;
      }
      if (opts.recover ? recoveryReady(last) : last.state === "healthy") return last;
      await failIfMemberExited(opts.runDir, last);
    }
    if (Date.now() > deadline) {
      const why = last ? describeProblems(last) : "the HFC does not answer";
      fail(
        "Timeout",
        `the pool is not healthy after ${Math.round(opts.timeoutMs / 1000)} s (${why}); it keeps running: ` +
          "`hsmpool status`, `hsmpool logs <node>`, `hsmpool down`",
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The last line a node logged, compactly (its `msg` and error when it is a JSON line). */
async function lastLogLine(path: string): Promise<string> {
  const text = await readFile(path, "utf8").catch(() => "");
  const line = text.trimEnd().split("\n").at(-1) ?? "";
  try {
    const j = JSON.parse(line) as Record<string, unknown>;
    const err = j.err ?? j.error;
    const detail = typeof err === "object" && err !== null ? (err as { message?: unknown }).message : err;
    return [j.msg, detail].filter((x) => typeof x === "string" && x !== "").join(": ") || line.slice(0, 200);
  } catch {
    return line.slice(0, 200) || "(empty log)";
  }
}

/** A member whose process died before it ever came up will not come up by waiting: say why now. */
async function failIfMemberExited(runDir: string, s: PoolStatus): Promise<void> {
  for (const m of s.members) {
    if (m.health === "down" && m.measurement === "" && m.pid > 0 && !isRunning(m.pid)) {
      const why = await lastLogLine(runPaths(runDir).nodeLog(m.id));
      fail(
        "LaunchRefused",
        `node ${m.id} exited during start-up (last log line: ${why}); \`hsmpool logs ${m.id}\` shows more, ` +
          "the HFC keeps running until `hsmpool down`",
        { nodeId: m.id },
      );
    }
  }
}

function describeProblems(s: PoolStatus): string {
  const parts = [`state ${s.state}`];
  if (s.primary === "") parts.push("no primary");
  for (const m of s.members) {
    if (m.health === "down") parts.push(`${m.id} down`);
    else if (m.ownership === "pending") parts.push(`${m.id} ownership pending`);
  }
  return parts.join(", ");
}

/** Waits (bounded) until the pool of `hfc` satisfies `predicate`; used by the demo. */
export async function waitForStatus(
  hfc: FabricControllerClient,
  predicate: (s: PoolStatus) => boolean,
  timeoutMs: number,
  what: string,
): Promise<PoolStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await hfc.status(2000).catch(() => undefined);
    if (s && predicate(s)) return s;
    if (Date.now() > deadline)
      fail("Timeout", `${what} did not happen within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export interface StopResult {
  poolId: string | undefined;
  /** Processes that had to be killed because the HFC could not stop them. */
  forced: string[];
}

/** Stops the pool of `runDir`. Without a live HFC it still kills nodes this run dir launched. */
export async function stopPool(runDir: string, onProgress: Progress): Promise<StopResult> {
  const paths = runPaths(runDir);
  const info = await readHfcInfo(runDir).catch(() => undefined);
  const forced: string[] = [];
  if (info && isRunning(info.pid)) {
    const hfc = new FabricControllerClient(info.controlAddress);
    try {
      await hfc.shutdown();
      onProgress(`stopping pool ${info.poolId} (HFC pid ${info.pid})`);
    } catch (e) {
      onProgress(`the HFC does not answer (${isHsmPoolError(e) ? e.message : String(e)}); sending SIGTERM`);
      signalProcess(info.pid, "SIGTERM");
    } finally {
      hfc.close();
    }
    if (!(await waitForExit(info.pid, HFC_STOP_TIMEOUT_MS)) && isOurProcess(info.pid, paths.runDir)) {
      signalProcess(info.pid, "SIGKILL");
      forced.push(`hfc (pid ${info.pid})`);
    }
  }
  // Nodes left behind by an HFC that crashed or had to be killed.
  for (const [nodeId, pid] of Object.entries(await readNodePids(runDir))) {
    if (isOurProcess(pid, paths.nodeConfig(nodeId))) {
      signalProcess(pid, "SIGKILL");
      await waitForExit(pid, 2000);
      forced.push(`${nodeId} (pid ${pid})`);
    }
  }
  if (!info && forced.length === 0) fail("NotFound", `no pool is running in ${runDir}`, { runDir });
  await rm(paths.hfcJson, { force: true });
  // Nothing of this run dir runs now: the next HFC starts the pool afresh instead of recovering from a crash.
  if (forced.length > 0) await writeFile(paths.pidsJson, "{}\n");
  return { poolId: info?.poolId, forced };
}
