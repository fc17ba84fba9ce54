import { isHsmPoolError } from "@hsmpool/errors";
import { describe, expect, test } from "vitest";
import { API_VERSIONS, requireApiVersion, requireSince } from "./api-version.js";

const refusalOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (isHsmPoolError(e)) return e;
  }
  throw new Error("accepted");
};

describe("api-version", () => {
  test.each(API_VERSIONS)("%s is accepted", (v) => expect(requireApiVersion(v)).toBe(v));

  test("an unknown version gets the real service's BadParameter message", () => {
    const e = refusalOf(() => requireApiVersion("2016-10-01"));
    expect(e.code).toBe("BadParameter");
    expect(e.message).toBe(
      "The specified version (2016-10-01) is not recognized. Consider using the latest supported version (2026-04-01).",
    );
  });

  test("a missing version is BadParameter", () => {
    expect(refusalOf(() => requireApiVersion(null)).code).toBe("BadParameter");
    expect(refusalOf(() => requireApiVersion("")).code).toBe("BadParameter");
  });

  test("an operation newer than the request's version is refused; the same or newer version passes", () => {
    expect(refusalOf(() => requireSince("7.5", "7.6", "GetKeyAttestation")).message).toMatch(
      /needs 7.6 or later/,
    );
    expect(() => requireSince("7.6", "7.6", "GetKeyAttestation")).not.toThrow();
    expect(() => requireSince("2026-04-01", "7.6", "GetKeyAttestation")).not.toThrow();
    expect(() => requireSince("2025-07-01", "2026-04-01", "securewrapkey")).toThrow();
  });
});
