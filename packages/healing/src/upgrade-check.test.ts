import { describe, expect, it } from "vitest";
import { Driver } from "./testing/healing.js";
import { type BundleFacts, checkUpgrade, poolMinimumSvn } from "./upgrade-check.js";

const signer = "bb".repeat(32);
const good: BundleFacts = {
  bundleDir: "/bundle-v2",
  svn: 2,
  mrsigner: signer,
  debug: false,
  signatureValid: true,
  measurementMatches: true,
  problem: null,
};

describe("checkUpgrade: what the HFC refuses before launching anything", () => {
  const d = new Driver().boot();

  it("accepts a same-signer bundle at the pool's security version or above", () => {
    expect(checkUpgrade(d.state, good, false)).toBeNull();
    expect(checkUpgrade(d.state, { ...good, svn: 1 }, false)).toBeNull();
  });

  it.each([
    [
      "a downgrade",
      { svn: 0 },
      "Forbidden",
      /downgrade refused: \/bundle-v2 has security version 0, below the pool's minimum 1/,
    ],
    [
      "another signer",
      { mrsigner: "cc".repeat(32) },
      "Forbidden",
      /signed by another key \(MRSIGNER cccccccccccccccc…/,
    ],
    ["a debug enclave", { debug: true }, "Forbidden", /is a debug enclave/],
    [
      "files changed after signing",
      { measurementMatches: false },
      "LaunchRefused",
      /would not launch: its files changed after signing/,
    ],
    ["a bad signature", { signatureValid: false }, "LaunchRefused", /SIGSTRUCT signature does not verify/],
    [
      "no SIGSTRUCT",
      { svn: null, mrsigner: null, problem: "no sigstruct.bin" },
      "LaunchRefused",
      /not a signed bundle \(no sigstruct.bin\)/,
    ],
  ] as const)("refuses %s", (_what, change, code, message) => {
    const e = checkUpgrade(d.state, { ...good, ...change }, false);
    expect(e?.code).toBe(code);
    expect(e?.message).toMatch(message);
    // Unchecked launches it anyway: the pool has to refuse it.
    expect(checkUpgrade(d.state, { ...good, ...change }, true)).toBeNull();
  });

  it("refuses while a replacement or another upgrade runs, checked or not", () => {
    const busy = new Driver().boot();
    busy.feed({ type: "server-lost", serverId: busy.member("n1").serverId, atMs: 0 });
    for (const unchecked of [false, true])
      expect(checkUpgrade(busy.state, good, unchecked)?.code).toBe("Conflict");
    const upgrading = new Driver().boot();
    upgrading.feed({ type: "upgrade-requested", bundleDir: "/b", svn: 2, mrsigner: signer, atMs: 0 });
    expect(checkUpgrade(upgrading.state, good, true)?.message).toMatch(
      /an upgrade to \/b is already running/,
    );
  });

  it("the pool minimum is the lowest attested security version of the live members", () => {
    const m = new Driver().boot();
    m.status("n2", { svn: 3 }, 1);
    m.status("n1", { svn: 2 }, 1);
    m.status("n3", { svn: 2 }, 1);
    expect(poolMinimumSvn(m.state)).toBe(2);
  });
});
