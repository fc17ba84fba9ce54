/**
 * Known-answer vectors for the pool's canonical encoding, pinned from the encoders as
 * they were before the shared codec (@hsmpool/codec) replaced pool/bytes.ts: log
 * commands, ownership messages, checkpoints and snapshots must keep these exact bytes
 * (snapshots are compared byte for byte across replicas and fingerprinted; old WALs
 * and snapshots must still decode). The seeded samples cover every command, message
 * and checkpoint shape the arbitraries generate; the store covers a real snapshot.
 */

import { p384 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeCommand,
  decodeMessage,
  decodeOwnershipCheckpoint,
  encodeCommand,
  encodeMessage,
  encodeOwnershipCheckpoint,
  KeyStore,
  type PoolCommand,
} from "./index.js";
import * as arb from "./testing/arbitraries.js";
import { EntryFeed, genesisCommand, jwkOf, type TestSigner } from "./testing/fixtures.js";

const NOW = 1_700_000_000_000;

function digestOf(parts: Uint8Array[]): string {
  const h = sha256.create();
  for (const p of parts)
    h.update(Uint8Array.of(p.length >>> 24, p.length >>> 16, p.length >>> 8, p.length)).update(p);
  return bytesToHex(h.digest());
}

/** A fixed owner root: noble's ECDSA is deterministic (RFC 6979), so the genesis certificate is too. */
function fixedSigner(): TestSigner {
  const secretKey = Uint8Array.from({ length: 48 }, (_, i) => i + 1);
  return { secretKey, publicKey: jwkOf(p384.getPublicKey(secretKey, false)) };
}

function busySnapshot(): Uint8Array {
  const store = new KeyStore({ poolId: "pool-1" });
  const feed = new EntryFeed();
  const genesis = genesisCommand("pool-1", "n1", fixedSigner(), NOW);
  const commands: PoolCommand[] = [
    genesis,
    {
      kind: "createKey",
      requestId: "r1",
      name: "b",
      shape: { kty: "EC", crv: "P-256" },
      ops: ["sign", "verify"],
      attributes: { enabled: true, notBeforeMs: 5, expiresMs: NOW * 2, tags: { z: "1", a: "2" } },
      wrappedMaterial: Uint8Array.of(7, 7, 7),
      publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" },
      at: NOW,
    },
    {
      kind: "createKey",
      requestId: "r2",
      name: "a",
      shape: { kty: "oct", size: 128 },
      ops: ["wrapKey"],
      attributes: { enabled: false, notBeforeMs: null, expiresMs: null, tags: {} },
      wrappedMaterial: Uint8Array.of(1),
      publicJwk: null,
      at: NOW + 1,
    },
    { kind: "deleteKey", requestId: "r3", name: "a", at: NOW + 2 },
    {
      kind: "memberOwnershipSynced",
      memberId: "n3",
      partitionCertFingerprint: "c".repeat(64),
      dekFingerprint: genesis.dekFingerprint,
      at: NOW + 3,
    },
  ];
  for (const c of commands) expect(store.apply(feed.next(c)).outcome.kind).not.toBe("rejected");
  return store.snapshot();
}

describe("pool canonical encoding (known answers)", () => {
  it("a key store snapshot", () => {
    const bytes = busySnapshot();
    expect([bytes.length, bytesToHex(sha256(bytes))]).toEqual(PIN.snapshot);
    expect(KeyStore.restore(bytes).snapshot()).toEqual(bytes);
  });

  it("seeded samples of every command, message and checkpoint shape", () => {
    const commands = fc.sample(arb.command, { seed: 13, numRuns: 400 });
    const messages = fc.sample(arb.message, { seed: 13, numRuns: 200 });
    const checkpoints = fc.sample(arb.checkpoint, { seed: 13, numRuns: 100 });
    const encodedCommands = commands.map(encodeCommand);
    const encodedMessages = messages.map(encodeMessage);
    const encodedCheckpoints = checkpoints.map(encodeOwnershipCheckpoint);
    expect({
      commands: digestOf(encodedCommands),
      messages: digestOf(encodedMessages),
      checkpoints: digestOf(encodedCheckpoints),
    }).toEqual(PIN.samples);
    expect(encodedCommands.map(decodeCommand)).toEqual(commands);
    expect(encodedMessages.map(decodeMessage)).toEqual(messages);
    expect(encodedCheckpoints.map(decodeOwnershipCheckpoint)).toEqual(checkpoints);
  });

  it("one command in full", () => {
    const bytes = encodeCommand({ kind: "deleteKey", requestId: "r3", name: "a", at: NOW + 2 });
    expect(bytesToHex(bytes)).toBe(PIN.deleteKey);
  });
});

const PIN = {
  snapshot: [1081, "358b7975628b702ef628afee1a9dc308de5f97b2e8ca1f3dfedb00d4fe7e15f0"] as [number, string],
  samples: {
    commands: "2a9b8126aa45947116ab80318ca8f553fc881ad08395da0e3b9526e34213ddea",
    messages: "74f31fee97381feb971768aebf6e5c14c87cbac90bca60b9397f5a98079ce66c",
    checkpoints: "f1c6f3315a70d481590e68ff34ea35e97ea53f1627722332166ad2c776b2df42",
  },
  deleteKey: "48504331010400000002723300000001610000018bcfe56802098b1b8896685d76",
};
