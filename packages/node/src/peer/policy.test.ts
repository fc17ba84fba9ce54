import { HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { checkPolicy, type EnclaveIdentity } from "@hsmpool/platform";
import { describe, expect, it } from "vitest";
import { peerPolicyFor } from "./policy.js";

const self: EnclaveIdentity = {
  mrenclave: "a".repeat(64),
  mrsigner: "b".repeat(64),
  productId: 1,
  svn: 3,
  debug: false,
  serverId: "r1-s1",
  rackId: "rack-1",
};

function refusedCheck(peer: EnclaveIdentity, minPeerSvn: number | null = null): unknown {
  try {
    checkPolicy(peer, peerPolicyFor(self, minPeerSvn));
    return null;
  } catch (e) {
    return isHsmPoolError(e, "AttestationFailed") ? e.details?.check : e;
  }
}

describe("baked-in peer policy", () => {
  it("admits the same signer and product at this SVN or newer, on any server, any build", () => {
    for (const peer of [
      { ...self, serverId: "r2-s1", rackId: "rack-2" },
      { ...self, svn: 4, mrenclave: "c".repeat(64) },
    ]) {
      expect(refusedCheck(peer)).toBeNull();
    }
  });

  it.each([
    ["signer", { mrsigner: "d".repeat(64) }],
    ["signer", { productId: 2 }],
    ["svn", { svn: 2 }],
    ["debug", { debug: true }],
  ])("refuses a peer failing the %s check", (check, change) => {
    expect(refusedCheck({ ...self, ...change })).toBe(check);
  });

  it("is derived from this enclave only: only a debug enclave (a chaos run) admits debug peers", () => {
    expect(peerPolicyFor(self).allowDebug).toBe(false);
    expect(peerPolicyFor({ ...self, debug: true }).allowDebug).toBe(true);
    expect(peerPolicyFor(self).allowedSigners).toEqual([
      { mrsigner: self.mrsigner, productId: 1, minSvn: 3 },
    ]);
  });

  it("minPeerSvn lowers the floor for a rolling update: an SVN-3 node given 2 admits SVN 2, not 1", () => {
    expect(refusedCheck({ ...self, svn: 2 }, 2)).toBeNull();
    expect(refusedCheck({ ...self, svn: 1 }, 2)).toBe("svn");
    expect(refusedCheck({ ...self, svn: 3 }, 3)).toBeNull();
  });

  it("minPeerSvn above the enclave's own SVN is refused (it would refuse its own code)", () => {
    let error: unknown;
    try {
      peerPolicyFor(self, 4);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HsmPoolError);
    expect((error as HsmPoolError).details).toMatchObject({ field: "minPeerSvn" });
    expect((error as HsmPoolError).message).toMatch(/above this enclave's own SVN 3/);
  });
});
