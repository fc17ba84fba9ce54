import { ErrorCodes, HsmPoolError, isErrorCode } from "@hsmpool/errors";
import { describe, expect, test } from "vitest";
import { restErrorOf } from "./rest-errors.js";

describe("HsmPoolError → Key Vault error answers", () => {
  test("every pool code maps to its table status and a {error:{code,message}} body", () => {
    for (const code of Object.keys(ErrorCodes)) {
      if (!isErrorCode(code)) throw new Error(code);
      const r = restErrorOf(new HsmPoolError(code, "why"));
      expect(r.status).toBe(ErrorCodes[code].http);
      const body = r.body as { error: { code: string; message: string; innererror?: { code: string } } };
      expect(body.error.message).toBe("why");
      if (body.error.code !== code) expect(body.error.innererror).toEqual({ code });
    }
  });

  test("the service's codes: KeyNotFound 404, Unauthorized 401, Forbidden 403, ServiceUnavailable 503 + Retry-After", () => {
    expect(restErrorOf(new HsmPoolError("KeyNotFound", "m"))).toMatchObject({
      status: 404,
      body: { error: { code: "KeyNotFound" } },
    });
    expect(restErrorOf(new HsmPoolError("Unauthenticated", "m"))).toMatchObject({
      status: 401,
      body: { error: { code: "Unauthorized" } },
    });
    expect(restErrorOf(new HsmPoolError("OperationNotAllowed", "m"))).toMatchObject({
      status: 403,
      body: { error: { code: "Forbidden" } },
    });
    expect(restErrorOf(new HsmPoolError("NotLeader", "m"))).toMatchObject({
      status: 503,
      body: { error: { code: "ServiceUnavailable", innererror: { code: "NotLeader" } } },
      headers: { "retry-after": "1" },
    });
    expect(restErrorOf(new HsmPoolError("NotImplemented", "m"))).toMatchObject({
      status: 501,
      body: { error: { code: "NotImplemented" } },
    });
  });

  test("a non-HsmPoolError becomes a 500 that reveals nothing of it", () => {
    const r = restErrorOf(new Error("secret detail"));
    expect(r.status).toBe(500);
    expect(JSON.stringify(r.body)).not.toContain("secret detail");
  });
});
