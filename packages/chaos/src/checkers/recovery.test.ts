import { describe, expect, it } from "vitest";
import { HistoryBuilder } from "../testing/history-builder.js";
import { checkRecovery, type FullBackupRecord } from "./recovery.js";

const FINAL = 99;

function finalOp(h: HistoryBuilder, f: "get" | "sign", key: string, seen: number | "absent" | "error") {
  h.invoke(FINAL, f, key);
  (h.events.at(-1) as { final?: boolean }).final = true;
  if (seen === "absent") h.notFound(FINAL, { final: true });
  else if (seen === "error") h.fail(FINAL, "ServiceUnavailable", { final: true });
  else h.ok(FINAL, { version: seen }, { final: true });
}

function finalVerify(h: HistoryBuilder, key: string, signIndex: number, valid: boolean | "absent") {
  h.invoke(FINAL, "verify", key, { signedVersion: 1, signIndex });
  (h.events.at(-1) as { final?: boolean }).final = true;
  if (valid === "absent") h.notFound(FINAL, { final: true });
  else h.ok(FINAL, { valid, signedVersion: 1 }, { final: true });
}

/** a (v1) and a signature with it before the backup; b after it; the backup in between. */
function disaster(): { h: HistoryBuilder; backup: FullBackupRecord; signIndex: number } {
  const h = new HistoryBuilder().invoke(0, "create", "a").ok(0, { version: 1 }).invoke(0, "sign", "a");
  h.ok(0, { version: 1 });
  const signIndex = h.events.length - 1;
  const fromIndex = h.events.length;
  h.invoke(1, "get", "a").ok(1, { version: 1 });
  const backup = { jobId: "j1", status: "Succeeded", folder: "f1", fromIndex, toIndex: h.events.length };
  h.invoke(0, "create", "b").ok(0, { version: 1 });
  return { h, backup, signIndex };
}

const succeeded = { status: "Succeeded" };

/** The checker's verdict on keys a and b after a restore of `restored` that succeeded. */
const recoverBoth = (h: ReturnType<typeof disaster>["h"], restored: ReturnType<typeof disaster>["backup"]) =>
  checkRecovery({ events: h.events, keys: ["a", "b"], restored, restoreOutcome: succeeded });

describe("recovery checker", () => {
  it("passes when everything acknowledged before the backup is back and signs; later keys are the expected loss", () => {
    const { h, backup, signIndex } = disaster();
    finalOp(h, "get", "a", 1);
    finalOp(h, "sign", "a", 1);
    finalOp(h, "get", "b", "absent");
    finalVerify(h, "a", signIndex, true);
    const r = recoverBoth(h, backup);
    expect(r.valid).toBe(true);
    const d = r.details as {
      expectedLoss: { key: string }[];
      signaturesChecked: number;
      mustRestore: number;
    };
    expect(d.expectedLoss.map((l) => l.key)).toEqual(["b"]);
    expect(d.signaturesChecked).toBe(1);
    expect(d.mustRestore).toBe(1);
    expect(r.summary).toMatch(/expected loss: 1 writes acknowledged after it/);
  });

  it("fails when a restore skips a key acknowledged before the backup (lost silently)", () => {
    const { h, backup, signIndex } = disaster();
    finalOp(h, "get", "a", "absent");
    finalOp(h, "get", "b", "absent");
    finalVerify(h, "a", signIndex, "absent");
    const r = recoverBoth(h, backup);
    expect(r.valid).toBe(false);
    expect(r.summary).toMatch(
      /create of a acknowledged version 1 before the last successful backup, but after the recovery the key is missing/,
    );
    const d = r.details as { lost: { op: string }[] };
    expect(d.lost.map((l) => l.op).sort()).toEqual(["create", "verify"]);
  });

  it("fails when a restored key does not sign, or an old signature does not verify", () => {
    const { h, backup, signIndex } = disaster();
    finalOp(h, "get", "a", 1);
    finalOp(h, "sign", "a", "error");
    finalVerify(h, "a", signIndex, false);
    const r = recoverBoth(h, backup);
    expect(r.valid).toBe(false);
    expect((r.details as { lost: { op: string }[] }).lost.map((l) => l.op).sort()).toEqual([
      "sign",
      "verify",
    ]);
  });

  it("fails on a phantom: a key the backup cannot hold is there after the recovery", () => {
    const { h, backup } = disaster();
    finalOp(h, "get", "a", 1);
    finalOp(h, "sign", "a", 1);
    finalOp(h, "get", "b", 1);
    const r = recoverBoth(h, backup);
    expect(r.valid).toBe(false);
    expect(r.summary).toMatch(
      /b is at version 1 after the recovery, but the writes invoked before the backup ended can make at most version 0/,
    );
  });

  it("accepts a key missing after the recovery when a delete may have reached the backup", () => {
    const h = new HistoryBuilder().invoke(0, "create", "a").ok(0, { version: 1 }).invoke(1, "delete", "a");
    const fromIndex = h.events.length;
    h.unknown(1);
    const backup = { jobId: "j", status: "Succeeded", folder: "f", fromIndex, toIndex: h.events.length };
    finalOp(h, "get", "a", "absent");
    expect(
      checkRecovery({ events: h.events, keys: ["a"], restored: backup, restoreOutcome: succeeded }).valid,
    ).toBe(true);
  });

  it("is unknown without a successful backup or with unreadable keys, and false when the restore failed", () => {
    const { h, backup } = disaster();
    expect(
      checkRecovery({ events: h.events, keys: ["a"], restored: undefined, restoreOutcome: undefined }).valid,
    ).toBe("unknown");
    const failed = checkRecovery({
      events: h.events,
      keys: ["a"],
      restored: backup,
      restoreOutcome: { status: "Failed", error: "IntegrityError" },
    });
    expect(failed).toMatchObject({
      valid: false,
      summary: "the restore of f1 did not succeed: IntegrityError",
    });
    finalOp(h, "get", "a", "error");
    expect(
      checkRecovery({ events: h.events, keys: ["a"], restored: backup, restoreOutcome: succeeded }).valid,
    ).toBe("unknown");
  });
});
