import { describe, expect, it } from "vitest";
import { checkPolicy, parsePolicy } from "./index.js";
import { caughtSync } from "./test-support.js";
import type { EnclaveIdentity } from "./types.js";

const A = "a".repeat(64);
const B = "b".repeat(64);
const identity: EnclaveIdentity = {
  mrenclave: A,
  mrsigner: B,
  productId: 1,
  svn: 5,
  debug: false,
  serverId: "r1-s1",
  rackId: "rack-1",
};

describe("parsePolicy", () => {
  it("accepts a full policy, survives a JSON round trip and lower-cases hex", () => {
    const input = {
      allowedSigners: [{ mrsigner: B.toUpperCase(), productId: 1, minSvn: 2 }, { mrsigner: A }],
      allowedMeasurements: [A],
      allowDebug: true,
    };
    const policy = parsePolicy(JSON.parse(JSON.stringify(input)));
    expect(policy).toEqual({
      ...input,
      allowedSigners: [{ mrsigner: B, productId: 1, minSvn: 2 }, { mrsigner: A }],
    });
    expect(parsePolicy(JSON.parse(JSON.stringify(policy)))).toEqual(policy);
  });

  it.each([
    ["not an object", null, "policy"],
    ["an array", [], "policy"],
    ["missing signers", {}, "policy.allowedSigners"],
    ["empty signers", { allowedSigners: [] }, "policy.allowedSigners"],
    ["signer not an object", { allowedSigners: ["x"] }, "policy.allowedSigners[0]"],
    ["short mrsigner", { allowedSigners: [{ mrsigner: "abc" }] }, "policy.allowedSigners[0].mrsigner"],
    [
      "non-hex mrsigner",
      { allowedSigners: [{ mrsigner: "g".repeat(64) }] },
      "policy.allowedSigners[0].mrsigner",
    ],
    [
      "fractional minSvn",
      { allowedSigners: [{ mrsigner: A }, { mrsigner: B, minSvn: 1.5 }] },
      "policy.allowedSigners[1].minSvn",
    ],
    [
      "string productId",
      { allowedSigners: [{ mrsigner: A, productId: "1" }] },
      "policy.allowedSigners[0].productId",
    ],
    [
      "negative productId",
      { allowedSigners: [{ mrsigner: A, productId: -1 }] },
      "policy.allowedSigners[0].productId",
    ],
    [
      "misspelt signer field",
      { allowedSigners: [{ mrsigner: A, minSVN: 3 }] },
      "policy.allowedSigners[0].minSVN",
    ],
    [
      "misspelt top-level field",
      { allowedSigners: [{ mrsigner: A }], allowdebug: true },
      "policy.allowdebug",
    ],
    [
      "measurements not an array",
      { allowedSigners: [{ mrsigner: A }], allowedMeasurements: A },
      "policy.allowedMeasurements",
    ],
    [
      "empty measurements",
      { allowedSigners: [{ mrsigner: A }], allowedMeasurements: [] },
      "policy.allowedMeasurements",
    ],
    [
      "bad measurement",
      { allowedSigners: [{ mrsigner: A }], allowedMeasurements: [A, "zz"] },
      "policy.allowedMeasurements[1]",
    ],
    ["string allowDebug", { allowedSigners: [{ mrsigner: A }], allowDebug: "false" }, "policy.allowDebug"],
  ])("refuses %s with BadParameter naming the field", (_name, input, field) => {
    const e = caughtSync(() => parsePolicy(input));
    expect(e.code).toBe("BadParameter");
    expect(e.details?.field).toBe(field);
    expect(e.message).toContain(field);
  });
});

describe("checkPolicy", () => {
  const check = (policy: unknown, id: Partial<EnclaveIdentity> = {}) =>
    caughtSync(() => checkPolicy({ ...identity, ...id }, parsePolicy(policy))).details?.check;

  it("admits an identity that every rule allows", () => {
    expect(() =>
      checkPolicy(
        identity,
        parsePolicy({ allowedSigners: [{ mrsigner: B, productId: 1, minSvn: 5 }], allowedMeasurements: [A] }),
      ),
    ).not.toThrow();
  });

  it("names the failed check", () => {
    expect(check({ allowedSigners: [{ mrsigner: A }] })).toBe("signer");
    expect(check({ allowedSigners: [{ mrsigner: B, productId: 2 }] })).toBe("signer");
    expect(check({ allowedSigners: [{ mrsigner: B, minSvn: 6 }] })).toBe("svn");
    expect(check({ allowedSigners: [{ mrsigner: B }], allowedMeasurements: [B] })).toBe("measurement");
    expect(check({ allowedSigners: [{ mrsigner: B }] }, { debug: true })).toBe("debug");
  });

  it("uses the rule that matches the product: minSvn of another product does not apply", () => {
    const policy = parsePolicy({
      allowedSigners: [
        { mrsigner: B, productId: 1, minSvn: 5 },
        { mrsigner: B, productId: 2, minSvn: 9 },
      ],
    });
    expect(() => checkPolicy(identity, policy)).not.toThrow();
    expect(caughtSync(() => checkPolicy({ ...identity, productId: 2 }, policy)).details?.check).toBe("svn");
  });
});
