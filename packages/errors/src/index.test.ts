import { describe, expect, it } from "vitest";
import { ErrorCodes, fail, GrpcStatus, HsmPoolError, isErrorCode, isHsmPoolError } from "./index.js";

describe("HsmPoolError", () => {
  it("maps every code to a gRPC status and an HTTP status", () => {
    for (const code of Object.keys(ErrorCodes)) {
      if (!isErrorCode(code)) throw new Error(`not a code: ${code}`);
      const e = new HsmPoolError(code, "m");
      expect(Object.values(GrpcStatus)).toContain(e.grpcStatus);
      expect(e.httpStatus).toBeGreaterThanOrEqual(400);
    }
  });

  it("maps the REST codes of the design", () => {
    expect(new HsmPoolError("KeyNotFound", "x").httpStatus).toBe(404);
    expect(new HsmPoolError("Forbidden", "x").httpStatus).toBe(403);
    expect(new HsmPoolError("BadParameter", "x").grpcStatus).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(new HsmPoolError("NoQuorum", "x").grpcStatus).toBe(GrpcStatus.UNAVAILABLE);
  });

  it("fail() throws a typed error that isHsmPoolError recognises by code", () => {
    let caught: unknown;
    try {
      fail("Conflict", "key exists", { name: "k1" });
    } catch (e) {
      caught = e;
    }
    expect(isHsmPoolError(caught, "Conflict")).toBe(true);
    expect(isHsmPoolError(caught, "KeyNotFound")).toBe(false);
    expect(isHsmPoolError(new Error("plain"))).toBe(false);
    expect((caught as HsmPoolError).toJSON()).toEqual({
      code: "Conflict",
      message: "key exists",
      details: { name: "k1" },
    });
  });

  it("rejects strings that are not codes", () => {
    expect(isErrorCode("toString")).toBe(false);
    expect(isErrorCode("KeyNotFound")).toBe(true);
  });
});
