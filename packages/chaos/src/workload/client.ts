/**
 * The client role: runs planned operations against a pool through the SDK and
 * records each as invoke + ok / fail / unknown. The SDK is injected as a structural
 * interface (the chaos package sits below @hsmpool/client), so the CLI hands in a
 * real PoolClient and nothing here is a mock.
 */
import { isHsmPoolError } from "@hsmpool/errors";
import type { ClientEvent, HistoryRecorder, OpValue } from "../history.js";
import { WRITE_OPS } from "../scenario/schema.js";
import type { HeldBackup, HeldSignature, PlannedOp } from "./generator.js";

/** The part of @hsmpool/client's PoolClient the workload uses. */
export interface KeyVaultClient {
  createKey(req: { name: string; kty: string; crv?: string }): Promise<{ version: number }>;
  getKey(name: string, version?: number): Promise<{ version: number }>;
  listKeys(): Promise<{ name: string; version: number }[]>;
  deleteKey(name: string): Promise<void>;
  rotateKey(name: string): Promise<{ version: number }>;
  updateKey(req: { name: string; tags?: Record<string, string> }): Promise<{ version: number }>;
  recoverDeletedKey(name: string): Promise<{ version: number }>;
  purgeDeletedKey(name: string): Promise<void>;
  backupKey(name: string): Promise<Uint8Array>;
  restoreKey(backup: Uint8Array): Promise<{ version: number }>;
  sign(req: { name: string; version?: number; alg: string; data: Uint8Array }): Promise<{
    signature: Uint8Array;
    version: number;
    servedBy: string;
  }>;
  verify(req: {
    name: string;
    version?: number;
    alg: string;
    data: Uint8Array;
    signature: Uint8Array;
  }): Promise<boolean>;
  close(): void;
}

export const KEY_SHAPE = { kty: "EC", crv: "P-256" } as const;
const ALG = "ES256";

class OpTimeout extends Error {}

const isWrite = (f: PlannedOp["f"]) => WRITE_OPS.has(f);

/** Runs one operation with a hard deadline and records it; returns the completion. */
export async function runOperation(
  client: KeyVaultClient,
  op: PlannedOp,
  process: number,
  history: HistoryRecorder,
  opts: {
    timeoutMs: number;
    final?: boolean;
    held?: Map<string, HeldSignature>;
    backups?: Map<string, HeldBackup>;
  },
): Promise<ClientEvent> {
  const invokeValue: OpValue | undefined =
    op.f === "verify"
      ? { signedVersion: op.held.version, signIndex: op.held.signIndex }
      : op.f === "restore"
        ? { backupVersion: op.held.version }
        : undefined;
  const invoke = history.client({
    process,
    type: "invoke",
    f: op.f,
    ...(op.f !== "list" ? { key: op.key } : {}),
    ...(invokeValue ? { value: invokeValue } : {}),
    ...(opts.final ? { final: true } : {}),
  });
  const base = {
    process,
    f: op.f,
    ...(op.f !== "list" ? { key: op.key } : {}),
    ...(opts.final ? { final: true } : {}),
  };
  let timer: NodeJS.Timeout | undefined;
  const attempt = perform(client, op);
  // The SDK bounds its retries too; this is the harness's own guarantee that no operation hangs the run.
  attempt.catch(() => {});
  try {
    const { signature, blob, ...value } = await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new OpTimeout()), opts.timeoutMs);
      }),
    ]);
    const done = history.client({ ...base, type: "ok", value, latencyMs: latency(history, invoke) });
    if (op.f === "sign" && opts.held && value.version !== undefined && signature) {
      opts.held.set(op.key, {
        key: op.key,
        version: value.version,
        data: op.data,
        signature,
        signIndex: done.index,
      });
    }
    if (op.f === "backup" && opts.backups && value.version !== undefined && blob)
      opts.backups.set(op.key, { key: op.key, version: value.version, blob });
    return done;
  } catch (e) {
    const error =
      e instanceof OpTimeout
        ? { code: "Timeout", message: `no answer within ${opts.timeoutMs} ms (harness deadline)` }
        : isHsmPoolError(e)
          ? { code: e.code, message: e.message.slice(0, 300) }
          : { code: "Internal", message: String(e).slice(0, 300) };
    // A write that got no definite answer may still take effect: unknown. A read changes nothing: fail.
    const definite = e instanceof OpTimeout ? false : isDefinite(error.code);
    const type = isWrite(op.f) && !definite ? "unknown" : "fail";
    if (op.f === "verify" && error.code === "KeyNotFound") opts.held?.delete(op.key);
    return history.client({ ...base, type, error, latencyMs: latency(history, invoke) });
  } finally {
    clearTimeout(timer);
  }
}

const DEFINITE = new Set([
  "BadParameter",
  "KeyNotFound",
  "Conflict",
  "Forbidden",
  "OperationNotAllowed",
  "Unauthenticated",
]);
const isDefinite = (code: string) => DEFINITE.has(code);

function latency(history: HistoryRecorder, invoke: ClientEvent): number {
  return Math.round((history.now() - invoke.timeMs) * 10) / 10;
}

/** The SDK call for an operation and the value the history keeps of its answer (public data only). */
async function perform(
  client: KeyVaultClient,
  op: PlannedOp,
): Promise<OpValue & { signature?: Uint8Array; blob?: Uint8Array }> {
  switch (op.f) {
    case "create": {
      const k = await client.createKey({ name: op.key, ...KEY_SHAPE });
      return { version: k.version };
    }
    case "get":
      return { version: (await client.getKey(op.key)).version };
    case "list": {
      const keys: Record<string, number> = {};
      for (const k of await client.listKeys()) keys[k.name] = k.version;
      return { keys };
    }
    case "delete":
      await client.deleteKey(op.key);
      return {};
    case "sign": {
      const r = await client.sign({ name: op.key, alg: ALG, data: op.data });
      return { version: r.version, servedBy: r.servedBy, signature: r.signature };
    }
    case "verify": {
      const valid = await client.verify({
        name: op.key,
        version: op.held.version,
        alg: ALG,
        data: op.held.data,
        signature: op.held.signature,
      });
      return { valid, signedVersion: op.held.version };
    }
    case "rotate":
      return { version: (await client.rotateKey(op.key)).version };
    case "update":
      // Tags only: disabling or expiring a key would refuse the other clients' operations on purpose.
      return { version: (await client.updateKey({ name: op.key, tags: { chaos: "touched" } })).version };
    case "recover":
      return { version: (await client.recoverDeletedKey(op.key)).version };
    case "purge":
      await client.purgeDeletedKey(op.key);
      return {};
    case "backup": {
      // The blob does not say its version: read it before and after, and keep the blob only when both agree.
      const before = (await client.getKey(op.key)).version;
      const blob = await client.backupKey(op.key);
      const after = (await client.getKey(op.key)).version;
      return before === after ? { version: after, blob } : { version: after };
    }
    case "restore":
      return { version: (await client.restoreKey(op.held.blob)).version, backupVersion: op.held.version };
  }
}
