import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditRecord } from "@hsmpool/wire";
import { afterEach, describe, expect, it } from "vitest";
import { fileStorage, systemRandomness } from "../seams/index.js";
import { verifyChain } from "./audit-chain.js";
import { type AuditEntry, AuditLog } from "./audit-log.js";

// The sealer only has to round-trip here (the real one is bound to the CPU).
const sealer = { seal: (b: Uint8Array) => b.slice(), unseal: (b: Uint8Array) => b.slice() };
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function openLog(stateDir: string): Promise<AuditLog> {
  let t = 1_000;
  return AuditLog.open({
    stateDir,
    storage: fileStorage,
    random: systemRandomness,
    sealer,
    member: "n1",
    now: () => t++,
  });
}

const entry = (i: number): AuditEntry => ({
  principal: "alice",
  principalId: "oid-a",
  operation: "Sign",
  key: `k${i}`,
  version: 1,
  result: "OK",
  requestId: `r${i}`,
});

describe("AuditLog", () => {
  it("writes records recorded while a write is under way in one batch, as the same chained file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-log-"));
    dirs.push(dir);
    const log = await openLog(dir);
    // Three bursts: each records while the previous write may still be under way.
    for (let burst = 0; burst < 3; burst++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => log.record(entry(burst * 50 + i))));
    }
    expect((await log.verify()).ok).toBe(true);
    const lines = (await readFile(join(dir, "audit.log"), "utf8")).split("\n").filter((l) => l !== "");
    const records = lines.map((l) => JSON.parse(l) as AuditRecord);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(records.map((r) => r.key)).toEqual(Array.from({ length: 150 }, (_, i) => `k${i}`));
    expect(log.read(140, 100).map((r) => r.seq)).toEqual([141, 142, 143, 144, 145, 146, 147, 148, 149, 150]);
    await log.close();

    // A restarted member resumes the chain after the batched records.
    const again = await openLog(dir);
    await again.record(entry(150));
    const verdict = await again.verify();
    expect(verdict.ok).toBe(true);
    const text = await readFile(join(dir, "audit.log"), "utf8");
    expect(text.split("\n").filter((l) => l !== "")).toHaveLength(151);
    await again.close();
  });

  it("a record whose line is tampered with in the file breaks the chain", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-log-"));
    dirs.push(dir);
    const log = await openLog(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.record(entry(i))));
    await log.close();
    const text = await readFile(join(dir, "audit.log"), "utf8");
    const head = JSON.parse(text.trim().split("\n").at(-1) ?? "{}") as AuditRecord;
    const macKey = (await readFile(join(dir, "audit-key.sealed"))).subarray();
    const tampered = text.replace('"key":"k7"', '"key":"k8"');
    expect(verifyChain(macKey, text, { seq: head.seq, hash: head.hash }).ok).toBe(true);
    expect(verifyChain(macKey, tampered, { seq: head.seq, hash: head.hash }).ok).toBe(false);
  });
});
