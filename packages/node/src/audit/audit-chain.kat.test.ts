/**
 * Known answers for the audit chain's format: a record's MAC input (the canonical
 * JSON array of its fields, the previous hash last) and its stored line must keep
 * these exact bytes, or a member resuming or verifying an existing audit.log fails its
 * own chain. Pinned from the encoder as it was before the per-record work was cut.
 */
import { createHmac } from "node:crypto";
import type { AuditFields } from "@hsmpool/wire";
import { describe, expect, it } from "vitest";
import { chainRecord, GENESIS_HASH, recordLine, verifyChain } from "./audit-chain.js";

const KEY = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");
const FIRST: AuditFields = {
  seq: 1,
  timeMs: 1_796_650_000_123,
  member: "n1",
  principal: "alice",
  principalId: "0b7c1f0e-5d7a-4c4e-9a0e-2f1d3c4b5a69",
  operation: "Sign",
  key: "payments-key",
  version: 3,
  result: "OK",
  requestId: "6f1c2b9e-2d3a-4f5b-8c7d-1e2f3a4b5c6d",
};
// Every kind of character JSON escapes, and some it does not.
const SECOND: AuditFields = {
  ...FIRST,
  seq: 2,
  timeMs: 1_796_650_000_124,
  principal: 'Zoë "Z" \\ O\'Neil\u2028',
  operation: "CreateKey",
  key: "tab\there\nnew\u0001line😀",
  version: 0,
  result: "Forbidden",
  requestId: "</script>",
};

describe("audit chain (known answers)", () => {
  it("MACs the canonical JSON array of the fields with the previous hash last", () => {
    const r = chainRecord(KEY, FIRST, GENESIS_HASH);
    const canonical = JSON.stringify([
      FIRST.seq,
      FIRST.timeMs,
      FIRST.member,
      FIRST.principal,
      FIRST.principalId,
      FIRST.operation,
      FIRST.key,
      FIRST.version,
      FIRST.result,
      FIRST.requestId,
      GENESIS_HASH,
    ]);
    expect(r.hash).toBe(createHmac("sha256", KEY).update(canonical).digest("hex"));
    expect(r.hash).toBe(PIN.firstHash);
    expect(r.prev).toBe(GENESIS_HASH);
  });

  it("chains and stores records byte for byte, escapes included", () => {
    const first = chainRecord(KEY, FIRST, GENESIS_HASH);
    const second = chainRecord(KEY, SECOND, first.hash);
    expect(second.hash).toBe(PIN.secondHash);
    expect(recordLine(first)).toBe(PIN.firstLine);
    expect(recordLine(second)).toBe(PIN.secondLine);
    expect(JSON.parse(recordLine(second))).toEqual(second);
    const text = recordLine(first) + recordLine(second);
    expect(verifyChain(KEY, text, { seq: 2, hash: second.hash }).ok).toBe(true);
  });
});

const PIN = {
  firstHash: "a63cde705a6256c1e945d5846e9ed42fc8f1bab5fbc8b0b2641ab2fb7a237d8f",
  secondHash: "eb797cd84ab96c2197a107c039c345875ee5bcfb32d6ddac5514e0ef8c8e97ac",
  firstLine:
    '{"seq":1,"timeMs":1796650000123,"member":"n1","principal":"alice","principalId":"0b7c1f0e-5d7a-4c4e-9a0e-2f1d3c4b5a69","operation":"Sign","key":"payments-key","version":3,"result":"OK","requestId":"6f1c2b9e-2d3a-4f5b-8c7d-1e2f3a4b5c6d","prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"a63cde705a6256c1e945d5846e9ed42fc8f1bab5fbc8b0b2641ab2fb7a237d8f"}\n',
  secondLine:
    '{"seq":2,"timeMs":1796650000124,"member":"n1","principal":"Zo\u00eb \\"Z\\" \\\\ O\'Neil\u2028","principalId":"0b7c1f0e-5d7a-4c4e-9a0e-2f1d3c4b5a69","operation":"CreateKey","key":"tab\\there\\nnew\\u0001line\ud83d\ude00","version":0,"result":"Forbidden","requestId":"</script>","prev":"a63cde705a6256c1e945d5846e9ed42fc8f1bab5fbc8b0b2641ab2fb7a237d8f","hash":"eb797cd84ab96c2197a107c039c345875ee5bcfb32d6ddac5514e0ef8c8e97ac"}\n',
};
