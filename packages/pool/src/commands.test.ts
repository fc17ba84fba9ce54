import { ByteWriter } from "@hsmpool/codec";
import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { frame } from "./frame.js";
import {
  COMMAND_FORMAT,
  decodeCommand,
  decodeMessage,
  encodeCommand,
  encodeMessage,
  validateCommand,
  validateMessage,
} from "./index.js";
import * as arb from "./testing/arbitraries.js";
import { genesisCommand, thrown } from "./testing/fixtures.js";

/** Decoding must throw IntegrityError/BadParameter, never return a command. */
function expectRejected(decode: () => unknown): void {
  let result: unknown;
  try {
    result = decode();
  } catch (e) {
    if (!isHsmPoolError(e)) throw e;
    expect(["IntegrityError", "BadParameter"]).toContain(e.code);
    return;
  }
  throw new Error(`corrupt bytes decoded to ${JSON.stringify(result)?.slice(0, 200)}`);
}

describe("pool command codec", () => {
  it("round-trips every command kind (decode(encode(c)) equals the validated command)", () => {
    fc.assert(
      fc.property(arb.command, (c) => {
        expect(decodeCommand(encodeCommand(c))).toEqual(validateCommand(c));
      }),
      { numRuns: 400 },
    );
  });

  it("encodes canonically: re-encoding a decoded entry gives the same bytes", () => {
    fc.assert(
      fc.property(arb.command, (c) => {
        const bytes = encodeCommand(c);
        expect(encodeCommand(decodeCommand(bytes))).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it("rejects any single flipped byte (checksum), never decoding a different command", () => {
    fc.assert(
      fc.property(arb.command, fc.nat(), fc.integer({ min: 1, max: 255 }), (c, at, mask) => {
        const bytes = encodeCommand(c);
        const corrupt = Uint8Array.from(bytes);
        const i = at % corrupt.length;
        corrupt[i] = (corrupt[i] ?? 0) ^ mask;
        expectRejected(() => decodeCommand(corrupt));
      }),
      { numRuns: 500 },
    );
  });

  it("rejects every truncation and any appended byte", () => {
    fc.assert(
      fc.property(arb.command, fc.nat(), fc.integer({ min: 0, max: 255 }), (c, cut, extra) => {
        const bytes = encodeCommand(c);
        expectRejected(() => decodeCommand(bytes.subarray(0, cut % bytes.length)));
        expectRejected(() => decodeCommand(Uint8Array.of(...bytes, extra)));
      }),
      { numRuns: 300 },
    );
  });

  it("names the field of an invalid command and encodes nothing", () => {
    const g = genesisCommand();
    expect(thrown(() => encodeCommand({ ...g, poolId: "" }), "BadParameter").details).toMatchObject({
      field: "poolId",
    });
    expect(
      thrown(() => encodeCommand({ ...g, dekFingerprint: "abc" }), "BadParameter").details,
    ).toMatchObject({
      field: "dekFingerprint",
    });
    const create = {
      kind: "createKey" as const,
      requestId: "r1",
      name: "k1",
      shape: { kty: "EC" as const, crv: "P-256" as const },
      ops: ["sign" as const],
      attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
      wrappedMaterial: Uint8Array.of(1),
      publicJwk: null,
      at: 1,
    };
    expect(() => encodeCommand(create)).not.toThrow();
    expect(
      thrown(() => encodeCommand({ ...create, name: "bad_name" }), "BadParameter").details,
    ).toMatchObject({
      field: "name",
    });
    expect(thrown(() => encodeCommand({ ...create, ops: ["encrypt"] }), "BadParameter").message).toMatch(
      /a EC key cannot encrypt/,
    );
    // A private JWK member would put key material into the log: refused.
    const leak = { ...create, publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA", d: "AA" } };
    expect(thrown(() => encodeCommand(leak), "BadParameter").message).toMatch(/private member "d"/);
    expect(
      thrown(() => encodeCommand({ ...create, wrappedMaterial: new Uint8Array(0) }), "BadParameter").details,
    ).toMatchObject({
      field: "wrappedMaterial",
    });
  });

  it("a checksummed entry with invalid contents is an IntegrityError naming the problem", () => {
    // An entry written by another (buggy) build: valid frame and checksum, invalid key name inside.
    const payload = new ByteWriter().u8(4).string("r1").string("bad_name").u64(1).finish();
    expect(thrown(() => decodeCommand(frame(COMMAND_FORMAT, payload)), "IntegrityError").message).toMatch(
      /invalid command: key name must be/,
    );
    const bytes = encodeCommand({ kind: "deleteKey", requestId: "r1", name: "abc", at: 1 });
    expect(thrown(() => decodeCommand(bytes.subarray(0, 3)), "IntegrityError").message).toMatch(/truncated/);
    expect(thrown(() => decodeCommand("nope" as unknown as Uint8Array), "BadParameter").message).toMatch(
      /bytes/,
    );
  });
});

describe("ownership message codec", () => {
  it("round-trips every message kind", () => {
    fc.assert(
      fc.property(arb.message, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(validateMessage(m));
      }),
      { numRuns: 300 },
    );
  });

  it("rejects any flipped byte or truncation", () => {
    fc.assert(
      fc.property(arb.message, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, at, mask) => {
        const bytes = encodeMessage(m);
        const corrupt = Uint8Array.from(bytes);
        const i = at % corrupt.length;
        corrupt[i] = (corrupt[i] ?? 0) ^ mask;
        expectRejected(() => decodeMessage(corrupt));
        expectRejected(() => decodeMessage(bytes.subarray(0, at % bytes.length)));
      }),
      { numRuns: 300 },
    );
  });
});
