/**
 * The audit record format and its chain, pure: each record's `hash` is an HMAC-SHA256,
 * under a key that exists only inside this member's enclave, over the previous record's
 * hash and the record's canonical fields. The host holds the file but not the key, so it
 * can neither alter, insert nor drop a record (the next link breaks, or the live head no
 * longer matches) without `verifyChain` naming the first record that does not verify.
 */
import { createHmac, type KeyObject } from "node:crypto";
import type { AuditFields, AuditRecord } from "@hsmpool/wire";

export const GENESIS_HASH = "0".repeat(64);

/** Field order is fixed: the MAC input and the stored line are canonical. */
function canonical(f: AuditFields, prev: string): string {
  return JSON.stringify([
    f.seq,
    f.timeMs,
    f.member,
    f.principal,
    f.principalId,
    f.operation,
    f.key,
    f.version,
    f.result,
    f.requestId,
    prev,
  ]);
}

/** `macKey`: the raw key, or a KeyObject of it (the log keeps one, so no record re-imports the key). */
export function chainRecord(macKey: Uint8Array | KeyObject, fields: AuditFields, prev: string): AuditRecord {
  const hash = createHmac("sha256", macKey).update(canonical(fields, prev)).digest("hex");
  return { ...fields, prev, hash };
}

export function recordLine(r: AuditRecord): string {
  return `${JSON.stringify({
    seq: r.seq,
    timeMs: r.timeMs,
    member: r.member,
    principal: r.principal,
    principalId: r.principalId,
    operation: r.operation,
    key: r.key,
    version: r.version,
    result: r.result,
    requestId: r.requestId,
    prev: r.prev,
    hash: r.hash,
  })}\n`;
}

export interface ChainVerdict {
  ok: boolean;
  records: number;
  /** The first record that does not verify (0 when ok). */
  firstBadSeq: number;
  reason: string;
}

/**
 * Checks every line: parse, sequence, link to the previous hash, MAC; then that the
 * last record is the live head this member wrote (a dropped tail shows up here).
 */
export function verifyChain(
  macKey: Uint8Array | KeyObject,
  text: string,
  head: { seq: number; hash: string },
): ChainVerdict {
  const lines = text.split("\n").filter((l) => l.length > 0);
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  for (const line of lines) {
    const bad = (reason: string): ChainVerdict => ({
      ok: false,
      records: lines.length,
      firstBadSeq: expectedSeq,
      reason,
    });
    let r: AuditRecord;
    try {
      r = JSON.parse(line) as AuditRecord;
    } catch {
      return bad(`record ${expectedSeq} is not valid JSON`);
    }
    if (r.seq !== expectedSeq)
      return bad(`record ${expectedSeq} is missing or out of order (found seq ${String(r.seq)})`);
    if (r.prev !== prev) return bad(`record ${expectedSeq} does not link to record ${expectedSeq - 1}`);
    if (chainRecord(macKey, r, prev).hash !== r.hash)
      return bad(`record ${expectedSeq} was altered (its MAC does not verify)`);
    prev = r.hash;
    expectedSeq++;
  }
  if (expectedSeq - 1 !== head.seq || prev !== head.hash) {
    return {
      ok: false,
      records: lines.length,
      firstBadSeq: Math.min(expectedSeq, head.seq),
      reason: `the log ends at record ${expectedSeq - 1} but this member wrote ${head.seq}: records were dropped`,
    };
  }
  return { ok: true, records: lines.length, firstBadSeq: 0, reason: "" };
}
