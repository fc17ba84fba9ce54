import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HistoryBuilder } from "../testing/history-builder.js";
import { findLeaks, StreamScanner } from "./leaks.js";
import { scanNodeLog, violationInLine } from "./node-logs.js";
import { checkSignatures } from "./signatures.js";

describe("leak scan", () => {
  const secret = { name: "cpu fuse of r1-s1", bytes: randomBytes(32) };

  it("finds a secret raw, as hex, base64 and base64url, and names it without showing it", () => {
    const forms = [
      Buffer.concat([Buffer.from("x"), secret.bytes]),
      Buffer.from(`{"k":"${secret.bytes.toString("hex")}"}`),
      Buffer.from(`log ${secret.bytes.toString("base64")}`),
      Buffer.from(secret.bytes.toString("base64url")),
    ];
    for (const f of forms) {
      const found = findLeaks(f, [secret], "file");
      expect(found).toHaveLength(1);
      expect(found[0]?.what).toMatch(/^cpu fuse of r1-s1/);
      expect(JSON.stringify(found)).not.toContain(secret.bytes.toString("hex"));
    }
    expect(findLeaks(randomBytes(4096), [secret], "file")).toEqual([]);
  });

  it("finds PEM private keys and private JWKs but not public ones", () => {
    expect(findLeaks(Buffer.from("-----BEGIN PRIVATE KEY-----\nMII"), [], "f")[0]?.what).toBe(
      "a PEM private key",
    );
    const priv = JSON.stringify({
      kty: "EC",
      crv: "P-256",
      x: "a".repeat(43),
      y: "b".repeat(43),
      d: "c".repeat(43),
    });
    const pub = JSON.stringify({ kty: "EC", crv: "P-256", x: "a".repeat(43), y: "b".repeat(43) });
    expect(findLeaks(Buffer.from(priv), [], "f").map((x) => x.what)).toEqual(["a private JWK"]);
    expect(findLeaks(Buffer.from(pub), [], "f")).toEqual([]);
    expect(findLeaks(Buffer.from("-----BEGIN CERTIFICATE-----"), [], "f")).toEqual([]);
  });

  it("the stream scanner finds a secret however the stream is cut into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 200 }),
        (cuts, at) => {
          const stream = Buffer.concat([
            randomBytes(at),
            Buffer.from(secret.bytes.toString("base64")),
            randomBytes(50),
          ]);
          const s = new StreamScanner([secret]);
          let i = 0;
          for (const c of cuts) {
            s.push(stream.subarray(i, i + c));
            i += c;
          }
          s.push(stream.subarray(i));
          // base64url is the same text when the base64 form has no "+" or "/": either way it is named.
          expect(s.findings.has("cpu fuse of r1-s1 (base64)")).toBe(true);
          expect([...s.findings].every((f) => f.startsWith("cpu fuse of r1-s1 (base64"))).toBe(true);
          expect(s.bytesScanned).toBe(stream.length);
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });
});

describe("node-reported violations", () => {
  it("picks out invariant and assertion lines and unexpected fatal lines, not ordinary ones", () => {
    const log = [
      JSON.stringify({ level: 30, msg: "ready" }),
      JSON.stringify({
        level: 50,
        msg: "raft step failed",
        error: "raft invariant: commit 7 beyond last index 5",
      }),
      JSON.stringify({ level: 60, msg: "unhandled rejection", error: "TypeError: x" }),
      JSON.stringify({ level: 60, msg: "enclave launch refused", error: "measurement" }),
      "Error: assertion failed: applied <= committed",
      "",
    ].join("\n");
    expect(scanNodeLog("n2", log)).toEqual([
      { nodeId: "n2", line: 2, message: "raft step failed raft invariant: commit 7 beyond last index 5" },
      { nodeId: "n2", line: 3, message: "fatal: unhandled rejection TypeError: x" },
      { nodeId: "n2", line: 5, message: "Error: assertion failed: applied <= committed" },
    ]);
    expect(
      violationInLine(JSON.stringify({ level: 40, msg: "peer rejected", check: "signer" })),
    ).toBeUndefined();
    const injected = {
      level: 60,
      msg: "node stopped",
      error: "ENOSPC: no space left on device (injected by the chaos harness)",
    };
    expect(violationInLine(JSON.stringify(injected))).toBeUndefined();
  });
});

describe("signature checker", () => {
  it("flags a signature the pool made that does not verify when the key was never deleted", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(0, "sign", "k")
      .ok(0, { version: 1 })
      .invoke(0, "verify", "k", { signedVersion: 1, signIndex: 3 })
      .ok(0, { valid: false, signedVersion: 1 });
    expect(checkSignatures(h.events).valid).toBe(false);
  });

  it("accepts a failed verify when a delete may have replaced the key in between", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(0, "sign", "k")
      .ok(0, { version: 1 })
      .invoke(1, "delete", "k")
      .unknown(1)
      .invoke(0, "verify", "k", { signedVersion: 1, signIndex: 3 })
      .ok(0, { valid: false, signedVersion: 1 });
    expect(checkSignatures(h.events).valid).toBe(true);
  });
});
