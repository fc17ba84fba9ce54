/**
 * The node's launch config (docs/node-hfc-contract.md): public data only, written by the
 * HFC. Every field is validated here so a bad file fails at start with one message
 * naming the field, before anything is launched or opened.
 */
import { readFile } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { type AccessOp, validateAccessOp } from "@hsmpool/pool";

export interface PeerConfig {
  id: string;
  /** host:port of the peer's attested endpoint. */
  address: string;
}

export interface NodeConfig {
  nodeId: string;
  poolId: string;
  mode: "bootstrap" | "join";
  fabricDir: string;
  serverId: string;
  partition: number;
  bundleDir: string;
  stateDir: string;
  peerListen: string;
  dataListen: string;
  /** The other initial voters (bootstrap); self is never listed here after validation. */
  peers: PeerConfig[];
  hfcAddress: string;
  fabricCaCertPath: string;
  /** Length of one Raft tick in ms (the real timer period). */
  electionTickMs: number;
  /** Election timeout in ticks, also the leader lease; randomised by Raft in [n, n + electionJitterTicks). */
  electionTicks: number;
  /** Width of the election timeout's random part in ticks (optional in the file; default electionTicks, etcd's [n, 2n)). */
  electionJitterTicks: number;
  /** Leader heartbeat period in ticks (< electionTicks). */
  heartbeatTicks: number;
  /** Take a snapshot and compact the log every this many applied entries (default 1000). */
  snapshotEveryEntries: number;
  /** Join mode: the member this node replaces (the primary removes it once this node is a voter). */
  replaces: string | null;
  /**
   * Lowest SVN accepted from peers; null = this enclave's own SVN. A newer bundle joining
   * an older pool (rolling update) is given the pool's current minimum; it may not be
   * above the enclave's own SVN (checked at launch, when the SVN is known).
   */
  minPeerSvn: number | null;
  /** Join mode: give up (exit 4) when not a member after this long. */
  joinTimeoutMs: number;
  /**
   * Recovery mode (`hsmpool up --recover`): a blank pool that creates no ownership keys of
   * its own and serves nothing until a security domain is uploaded (it takes the old
   * pool's owner root, DEK and pool key from it).
   */
  recover: boolean;
  /**
   * The tenant binding requested at creation (a `bindTenant` access operation). The primary
   * commits it once; the committed one is what counts, so a later change here does nothing.
   */
  identity: Extract<AccessOp, { op: "bindTenant" }> | null;
}

export const MAX_SVN = 65535;
export const DEFAULT_JOIN_TIMEOUT_MS = 120_000;

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HOST_PORT = /^[A-Za-z0-9.-]+:(\d{1,5})$/;

const bad = (field: string, message: string): never =>
  fail("BadParameter", `config ${field}: ${message}`, { field });

function str(o: Record<string, unknown>, field: string): string {
  const v = o[field];
  if (typeof v !== "string" || v.length === 0) bad(field, "must be a non-empty string");
  return v as string;
}

function id(o: Record<string, unknown>, field: string): string {
  const v = str(o, field);
  if (!ID.test(v)) bad(field, `must be 1..64 letters, digits, '.', '_' or '-' (got ${JSON.stringify(v)})`);
  return v;
}

function absPath(o: Record<string, unknown>, field: string): string {
  const v = str(o, field);
  if (!isAbsolute(v)) bad(field, `must be an absolute path (got ${JSON.stringify(v)})`);
  return v;
}

export function requireHostPort(value: unknown, field: string): string {
  const m = typeof value === "string" ? HOST_PORT.exec(value) : null;
  const port = m ? Number(m[1]) : 0;
  if (!m || port < 1 || port > 65535)
    bad(field, `must be "host:port" with a port 1..65535 (got ${JSON.stringify(value)})`);
  return value as string;
}

function int(o: Record<string, unknown>, field: string, min: number, max: number, fallback?: number): number {
  const v = o[field] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    bad(field, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return v as number;
}

/** Validates a parsed config object (BadParameter naming the field). */
export function parseConfig(input: unknown): NodeConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    bad("(root)", "must be a JSON object");
  const o = input as Record<string, unknown>;
  const nodeId = id(o, "nodeId");
  const mode = o.mode;
  if (mode !== "bootstrap" && mode !== "join")
    bad("mode", `must be "bootstrap" or "join" (got ${JSON.stringify(mode)})`);
  if (!Array.isArray(o.peers)) bad("peers", "must be an array of { id, address }");
  const peers: PeerConfig[] = [];
  (o.peers as unknown[]).forEach((p, i) => {
    if (typeof p !== "object" || p === null) bad(`peers[${i}]`, "must be an object { id, address }");
    const po = p as Record<string, unknown>;
    const peer = { id: id(po, "id"), address: requireHostPort(po.address, `peers[${i}].address`) };
    if (peers.some((q) => q.id === peer.id)) bad(`peers[${i}].id`, `${peer.id} is listed twice`);
    // The contract lets the HFC list every initial member, self included: self is implied.
    if (peer.id !== nodeId) peers.push(peer);
  });
  if (mode === "join" && peers.length === 0)
    bad("peers", "a joining node needs at least one live member to ask (mode join)");
  let replaces: string | null = null;
  if (o.replaces !== undefined && o.replaces !== null && o.replaces !== "") {
    if (mode !== "join") bad("replaces", 'only a joining node replaces a member (mode "join")');
    replaces = id(o, "replaces");
    if (replaces === nodeId) bad("replaces", `a node cannot replace itself (${nodeId})`);
  }
  const minPeerSvn =
    o.minPeerSvn === undefined || o.minPeerSvn === null ? null : int(o, "minPeerSvn", 0, MAX_SVN);
  const electionTicks = int(o, "electionTicks", 2, 1000);
  const heartbeatTicks = int(o, "heartbeatTicks", 1, 1000);
  if (heartbeatTicks >= electionTicks)
    bad("heartbeatTicks", `must be below electionTicks (${electionTicks})`);
  return {
    nodeId,
    poolId: id(o, "poolId"),
    mode: mode as NodeConfig["mode"],
    fabricDir: absPath(o, "fabricDir"),
    serverId: id(o, "serverId"),
    partition: int(o, "partition", 0, 63),
    bundleDir: absPath(o, "bundleDir"),
    stateDir: absPath(o, "stateDir"),
    peerListen: requireHostPort(o.peerListen, "peerListen"),
    dataListen: requireHostPort(o.dataListen, "dataListen"),
    peers,
    hfcAddress: requireHostPort(o.hfcAddress, "hfcAddress"),
    fabricCaCertPath: absPath(o, "fabricCaCertPath"),
    electionTickMs: int(o, "electionTickMs", 1, 60_000),
    electionTicks,
    electionJitterTicks: int(o, "electionJitterTicks", 1, 1000, electionTicks),
    heartbeatTicks,
    snapshotEveryEntries: int(o, "snapshotEveryEntries", 2, 10_000_000, 1000),
    replaces,
    minPeerSvn,
    joinTimeoutMs: int(o, "joinTimeoutMs", 1_000, 3_600_000, DEFAULT_JOIN_TIMEOUT_MS),
    recover: optionalBoolean(o, "recover"),
    identity: parseIdentity(o.identity),
  };
}

function optionalBoolean(o: Record<string, unknown>, field: string): boolean {
  const v = o[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") bad(field, "must be true or false");
  return v as boolean;
}

function parseIdentity(value: unknown): Extract<AccessOp, { op: "bindTenant" }> | null {
  if (value === undefined || value === null) return null;
  try {
    const op = validateAccessOp({ ...(value as object), op: "bindTenant" });
    return op.op === "bindTenant" ? op : null;
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter")) bad("identity", e.message);
    throw e;
  }
}

export async function loadConfig(path: string): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    return fail("NotFound", `cannot read config ${path}: ${(e as Error).message}`, { path });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail("BadParameter", `config ${path} is not valid JSON: ${(e as Error).message}`, { path });
  }
  return parseConfig(json);
}

/** "host:port" → parts (the config validator already checked the shape). */
export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}
