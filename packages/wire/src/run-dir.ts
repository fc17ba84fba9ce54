/**
 * The run directory (docs/node-hfc-contract.md): where every file lives and readers for
 * the public JSON files. These files can be edited by a person, so readers validate.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fail } from "@hsmpool/errors";
import type { HfcInfo, MemberSpec, PoolSpec } from "./types.js";

/** The run dir's public files (pool.json, hfc.json, configs, pids.json, ca.crt) are readable by anyone (0644). */
export const PUBLIC_FILE_MODE = 0o644;

export interface RunPaths {
  runDir: string;
  hfcJson: string;
  hfcLog: string;
  pkiDir: string;
  caCert: string;
  poolJson: string;
  /** The tenant binding `hsmpool up` requests for a new pool (TenantBindingRequest, public). */
  identityJson: string;
  /** `{ "<nodeId>": pid }` of the node processes the HFC launched (for cleanup when the HFC itself is gone). */
  pidsJson: string;
  /** The healing controller's records, upgrade, pause flag and last control port (public). */
  healingJson: string;
  /** Servers marked lost (never used again). */
  fabricStateJson: string;
  nodeDir(nodeId: string): string;
  nodeConfig(nodeId: string): string;
  nodeLog(nodeId: string): string;
  nodeStateDir(nodeId: string): string;
}

export function runPaths(runDir: string): RunPaths {
  const dir = resolve(runDir);
  const nodeDir = (id: string) => join(dir, "nodes", id);
  return {
    runDir: dir,
    hfcJson: join(dir, "hfc.json"),
    hfcLog: join(dir, "hfc.log"),
    pkiDir: join(dir, "pki"),
    caCert: join(dir, "pki", "ca.crt"),
    poolJson: join(dir, "pool.json"),
    identityJson: join(dir, "identity.json"),
    pidsJson: join(dir, "pids.json"),
    healingJson: join(dir, "healing.json"),
    fabricStateJson: join(dir, "fabric-state.json"),
    nodeDir,
    nodeConfig: (id) => join(nodeDir(id), "config.json"),
    nodeLog: (id) => join(nodeDir(id), "node.log"),
    nodeStateDir: (id) => join(nodeDir(id), "state"),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export async function readJson(path: string): Promise<unknown | undefined> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return fail("IntegrityError", `${path} is not valid JSON`, { path });
  }
}

const ADDRESS = /^127\.0\.0\.1:\d{1,5}$/;

export async function readHfcInfo(runDir: string): Promise<HfcInfo | undefined> {
  const path = runPaths(runDir).hfcJson;
  const raw = await readJson(path);
  if (raw === undefined) return undefined;
  if (
    !isRecord(raw) ||
    !Number.isSafeInteger(raw.pid) ||
    typeof raw.controlAddress !== "string" ||
    !ADDRESS.test(raw.controlAddress) ||
    typeof raw.poolId !== "string" ||
    typeof raw.fabricDir !== "string" ||
    !Number.isSafeInteger(raw.startedMs) ||
    (raw.endpointAddress !== undefined &&
      (typeof raw.endpointAddress !== "string" || !ADDRESS.test(raw.endpointAddress)))
  ) {
    return fail(
      "IntegrityError",
      `${path} is malformed (expected pid, controlAddress 127.0.0.1:<port>, poolId, fabricDir, startedMs, optional endpointAddress)`,
      { path },
    );
  }
  return {
    pid: raw.pid as number,
    controlAddress: raw.controlAddress,
    poolId: raw.poolId,
    fabricDir: raw.fabricDir,
    startedMs: raw.startedMs as number,
    ...(typeof raw.endpointAddress === "string" ? { endpointAddress: raw.endpointAddress } : {}),
  };
}

const LIFECYCLES = new Set(["active", "joining", "fenced", "retired", "failed"]);
const optional = <T>(v: unknown, check: (v: unknown) => boolean, fallback: T): T | undefined =>
  v === undefined ? fallback : check(v) ? (v as T) : undefined;
const isString = (v: unknown) => typeof v === "string";
const isStringOrNull = (v: unknown) => v === null || typeof v === "string";
const isWhole = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * One pool.json member. The launch fields are required; the healing fields default
 * to a bootstrap member's (pool.json files from before healing read unchanged). A
 * joiner's addresses stay "" until its ports are allocated.
 */
function parseMember(path: string, raw: unknown, i: number): MemberSpec {
  const malformed = (why: string): never =>
    fail("IntegrityError", `${path}: members[${i}] is malformed (${why})`, { path });
  if (!isRecord(raw)) return malformed("not an object");
  const m = raw;
  const lifecycle = optional<MemberSpec["lifecycle"]>(
    m.lifecycle,
    (v) => LIFECYCLES.has(v as string),
    "active",
  );
  const mode = optional<MemberSpec["mode"]>(m.mode, (v) => v === "bootstrap" || v === "join", "bootstrap");
  const address = (v: unknown) => typeof v === "string" && (ADDRESS.test(v) || (v === "" && mode === "join"));
  const ok =
    typeof m.id === "string" &&
    typeof m.serverId === "string" &&
    typeof m.rackId === "string" &&
    Number.isSafeInteger(m.partition) &&
    address(m.peerAddress) &&
    address(m.dataAddress) &&
    typeof m.bundleDir === "string";
  if (!ok) return malformed("id, serverId, rackId, partition, peerAddress, dataAddress, bundleDir");
  const replaces = optional<string | null>(m.replaces, isStringOrNull, null);
  const joinPeers = optional<string[]>(m.joinPeers, (v) => Array.isArray(v) && v.every(isString), []);
  const minPeerSvn = optional<number | null>(m.minPeerSvn, (v) => v === null || isWhole(v), null);
  const svn = optional<number>(m.svn, isWhole, 0);
  const mrsigner = optional<string>(m.mrsigner, isString, "");
  const replacedBy = optional<string | null>(m.replacedBy, isStringOrNull, null);
  const wasVoter = optional<boolean>(m.wasVoter, (v) => typeof v === "boolean", mode === "bootstrap");
  if (
    lifecycle === undefined ||
    mode === undefined ||
    replaces === undefined ||
    joinPeers === undefined ||
    minPeerSvn === undefined ||
    svn === undefined ||
    mrsigner === undefined ||
    replacedBy === undefined ||
    wasVoter === undefined
  ) {
    return malformed("a healing field has the wrong type");
  }
  return {
    id: m.id as string,
    serverId: m.serverId as string,
    rackId: m.rackId as string,
    partition: m.partition as number,
    peerAddress: m.peerAddress as string,
    dataAddress: m.dataAddress as string,
    bundleDir: m.bundleDir as string,
    lifecycle,
    mode,
    replaces,
    joinPeers: [...joinPeers],
    minPeerSvn,
    svn,
    mrsigner,
    replacedBy,
    wasVoter,
  };
}

export async function readPoolSpec(runDir: string): Promise<PoolSpec | undefined> {
  const raw = await readJson(runPaths(runDir).poolJson);
  return raw === undefined ? undefined : parsePoolSpec(runDir, raw);
}

/** pool.json's contents (bundle dirs resolved against the run dir's state dir); IntegrityError when malformed. */
export function parsePoolSpec(runDir: string, raw: unknown): PoolSpec {
  const path = runPaths(runDir).poolJson;
  if (
    !isRecord(raw) ||
    typeof raw.poolId !== "string" ||
    !Array.isArray(raw.members) ||
    !Number.isSafeInteger(raw.createdMs) ||
    !Number.isSafeInteger(raw.placementSeed)
  ) {
    return fail(
      "IntegrityError",
      `${path} is malformed (expected poolId, placementSeed, members[], createdMs)`,
      { path },
    );
  }
  return {
    poolId: raw.poolId,
    placementSeed: raw.placementSeed as number,
    members: raw.members.map((m, i) => {
      const member = parseMember(path, m, i);
      return { ...member, bundleDir: fromStatePath(runDir, member.bundleDir) };
    }),
    createdMs: raw.createdMs as number,
    ...(raw.recover === true ? { recover: true } : {}),
  };
}

/** `{ nodeId: pid }` as last written by the HFC; empty when absent or unreadable. */
export async function readNodePids(runDir: string): Promise<Record<string, number>> {
  return parseNodePids(await readJson(runPaths(runDir).pidsJson).catch(() => undefined));
}

/** pids.json's contents as `{ nodeId: pid }`; anything else reads as empty. */
export function parseNodePids(raw: unknown): Record<string, number> {
  if (!isRecord(raw)) return {};
  const out: Record<string, number> = {};
  for (const [id, pid] of Object.entries(raw))
    if (Number.isSafeInteger(pid) && (pid as number) > 0) out[id] = pid as number;
  return out;
}

/** Whether a process with this id exists (signal 0 probes without touching it). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The state directory a run dir lives in (`.hsmpool` for `.hsmpool/run`, $HSMPOOL_STATE_DIR
 * for compose). Run-dir files name paths inside it relative to it, so the directory can
 * move (host ↔ container, another checkout) and its pool resumes from there.
 */
export const stateDirOf = (runDir: string): string => dirname(resolve(runDir));

/** `path` as a run-dir file stores it: relative to the state dir when inside it, else absolute. */
export function toStatePath(runDir: string, path: string): string {
  if (path === "") return path;
  const rel = relative(stateDirOf(runDir), resolve(path));
  return rel.startsWith("..") || isAbsolute(rel) ? resolve(path) : rel;
}

/** A stored path, resolved against the state dir of `runDir` (absolute ones stay as they are). */
export function fromStatePath(runDir: string, stored: string): string {
  return stored === "" ? stored : resolve(stateDirOf(runDir), stored);
}

/** pool.json's content for `pool`: member bundles inside the state dir stored relative to it. */
export function poolSpecForFile(runDir: string, pool: PoolSpec): PoolSpec {
  return {
    ...pool,
    members: pool.members.map((m) => ({ ...m, bundleDir: toStatePath(runDir, m.bundleDir) })),
  };
}

/** The bundle this deployment launches by default, as `inspectBundle`/`readBundleFacts` read it. */
export interface LocalBundle {
  bundleDir: string;
  svn: number | null;
  mrsigner: string | null;
}

/**
 * A pool made by another deployment names bundles by that side's paths (the repo's
 * packages/node/dist is /app/... in a container). A member whose bundle is not here runs
 * this deployment's own bundle instead when it is the same enclave release: same signer
 * (MRSIGNER) and security version. Returns the pool to run, and why it cannot when a
 * member's release is missing here (null when it can).
 */
export async function rebaseBundles(
  runDir: string,
  pool: PoolSpec,
  local: LocalBundle | undefined,
): Promise<{ pool: PoolSpec; problem: string | null }> {
  const members: MemberSpec[] = [];
  for (const m of pool.members) {
    const live = m.lifecycle === "active" || m.lifecycle === "joining";
    if (!live || m.bundleDir === "" || (await exists(m.bundleDir))) {
      members.push(m);
      continue;
    }
    if (local && local.mrsigner === m.mrsigner && local.svn === m.svn && (await exists(local.bundleDir))) {
      members.push({ ...m, bundleDir: resolve(local.bundleDir) });
      continue;
    }
    const paths = runPaths(runDir);
    return {
      pool,
      problem:
        `${paths.runDir} holds pool ${pool.poolId} whose member ${m.id} runs the bundle ${m.bundleDir} (svn ${m.svn}), ` +
        `which is not here, and this deployment's bundle${local ? ` ${local.bundleDir} (svn ${local.svn ?? "?"})` : ""} is another release: ` +
        `resume it with that release (--bundle-dir), or start a new pool in another run dir (--run-dir, $HSMPOOL_RUN_DIR, ` +
        `or $HSMPOOL_STATE_DIR for compose)`,
    };
  }
  return { pool: { ...pool, members }, problem: null };
}

/** Why this run dir's pool cannot be resumed by a deployment whose bundle is `local`, or null when it can. */
export async function runDirMismatch(runDir: string, local: LocalBundle | undefined): Promise<string | null> {
  const pool = await readPoolSpec(runDir).catch(() => undefined);
  if (!pool) return null;
  return (await rebaseBundles(runDir, pool, local)).problem;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
