/**
 * The run directory (docs/node-hfc-contract.md): where every file lives and readers for
 * the public JSON files. These files can be edited by a person, so readers validate.
 */
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
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
  const path = runPaths(runDir).poolJson;
  const raw = await readJson(path);
  if (raw === undefined) return undefined;
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
    members: raw.members.map((m, i) => parseMember(path, m, i)),
    createdMs: raw.createdMs as number,
    ...(raw.recover === true ? { recover: true } : {}),
  };
}

/** `{ nodeId: pid }` as last written by the HFC; empty when absent or unreadable. */
export async function readNodePids(runDir: string): Promise<Record<string, number>> {
  const raw = await readJson(runPaths(runDir).pidsJson).catch(() => undefined);
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
 * Why this run dir's pool cannot be resumed from here, or null when it can. The files
 * of a run dir hold absolute paths (node configs, state dirs, bundles) as the deployment
 * that made it saw them: a pool made by a host `hsmpool up` names host paths, one made by
 * the compose HFC names paths inside its containers (/app/...). Resuming it from the other
 * side would relaunch nodes that cannot find their files, for ever; this says so instead.
 */
export async function runDirMismatch(runDir: string): Promise<string | null> {
  const paths = runPaths(runDir);
  const pool = await readPoolSpec(runDir).catch(() => undefined);
  if (!pool) return null;
  const fix =
    `resume it where it was made, or start a new pool: use another run dir (--run-dir, ` +
    `$HSMPOOL_RUN_DIR, or $HSMPOOL_STATE_DIR for compose) or remove ${paths.runDir} (its pool and keys are lost)`;
  for (const m of pool.members) {
    if (m.lifecycle !== "active" && m.lifecycle !== "joining") continue;
    const config = (await readJson(paths.nodeConfig(m.id)).catch(() => undefined)) as
      | { stateDir?: unknown }
      | undefined;
    const stateDir = typeof config?.stateDir === "string" ? config.stateDir : undefined;
    if (stateDir !== undefined && resolve(stateDir) !== paths.nodeStateDir(m.id)) {
      const madeIn = stateDir.replace(/\/nodes\/[^/]+\/state\/?$/, "");
      return `${paths.runDir} holds pool ${pool.poolId} made by another deployment (at ${madeIn}); its paths do not resolve here: ${fix}`;
    }
    if (m.bundleDir !== "" && !(await exists(m.bundleDir))) {
      return `${paths.runDir} holds pool ${pool.poolId} whose member ${m.id} runs the bundle ${m.bundleDir}, which is not here (made by another deployment?): ${fix}`;
    }
  }
  return null;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
