import { generateKeyPairSync, sign } from "node:crypto";
import {
  certificateSigningBytes,
  encodeCommand,
  type GenesisCommand,
  KeyStore,
  keyFingerprint,
  publicKeyFingerprint,
} from "@hsmpool/pool";
import { describe, expect, it } from "vitest";
import type { HsmSession } from "../seams/hsm.js";
import { KeyIndex, keyIdOfWrappedBlob } from "./key-index.js";

const NOW = 1_700_000_000_000;

/** An HSM key blob v1 header ("HSMK", version 1, mode 1, key id) and some ciphertext. */
function blob(id: number): Uint8Array {
  const b = new Uint8Array(40).fill(id);
  b.set([0x48, 0x53, 0x4d, 0x4b, 1, 1]);
  return b;
}

function storeWith(names: string[]): KeyStore {
  // The store takes keys after a Genesis whose owner-root certificate verifies.
  const owner = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const { x, y } = owner.publicKey.export({ format: "jwk" });
  const publicKey = { kty: "EC", crv: "P-384", x: x ?? "", y: y ?? "" } as const;
  const unsigned = {
    role: "ownerRoot" as const,
    poolId: "p",
    subject: "n1",
    partitionId: "d/p0",
    publicKey,
    issuerFingerprint: publicKeyFingerprint(publicKey),
  };
  const signature = sign("sha384", certificateSigningBytes(unsigned), {
    key: owner.privateKey,
    dsaEncoding: "ieee-p1363",
  });
  const genesis: GenesisCommand = {
    kind: "genesis",
    poolId: "p",
    ownerRootCert: { ...unsigned, signature: new Uint8Array(signature) },
    dekFingerprint: keyFingerprint("dek"),
    poolKeyFingerprint: keyFingerprint("pool"),
    proposer: "n1",
    at: NOW,
  };
  const store = new KeyStore({ poolId: "p" });
  let index = 0;
  const apply = (c: Parameters<typeof encodeCommand>[0]) =>
    store.apply({ term: 1, index: ++index, type: "normal", data: encodeCommand(c) });
  apply(genesis);
  for (const [i, name] of names.entries()) {
    apply({
      kind: "createKey",
      requestId: `r${i}`,
      name,
      shape: { kty: "EC", crv: "P-256" },
      ops: ["sign", "verify"],
      attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
      wrappedMaterial: blob(i + 1),
      publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" },
      at: NOW,
    });
  }
  return store;
}

/** The one session call the index makes: importing a wrapped blob keeps the blob's key id. */
function importingSession(): { session: HsmSession; imports: string[] } {
  const imports: string[] = [];
  const session = {
    importWrapped: async (b: Uint8Array) => {
      imports.push(keyIdOfWrappedBlob(b));
      return { id: keyIdOfWrappedBlob(b) };
    },
  } as unknown as HsmSession;
  return { session, imports };
}

describe("key index: no entry per key, ids read from the blobs", () => {
  it("imports a version once on first use, not a key the partition holds, and forgets by the blob's id", async () => {
    const store = storeWith(["a", "b"]);
    const index = new KeyIndex();
    const { session, imports } = importingSession();
    const idA = keyIdOfWrappedBlob(blob(1));
    const idB = keyIdOfWrappedBlob(blob(2));
    index.markImported(idB); // say this member generated b
    expect(await index.ensureImported(session, store, "dek", "a", 1)).toBe(idA);
    expect(await index.ensureImported(session, store, "dek", "a", 1)).toBe(idA);
    expect(await index.ensureImported(session, store, "dek", "b", 1)).toBe(idB);
    expect(imports).toEqual([idA]);
    // A delete forgets both versions by their blobs' ids, used here or not; they are imported again after.
    const forget = (name: string, b: Uint8Array) =>
      index.onEffect({ kind: "forgetKeyVersions", name, versions: [1], wrappedMaterial: [b] });
    expect(forget("a", blob(1))).toEqual([idA]);
    expect(forget("b", blob(2))).toEqual([idB]);
    await index.ensureImported(session, store, "dek", "b", 1);
    expect(imports).toEqual([idA, idB]);
    // After a reset (a snapshot restore, a restart), nothing counts as imported.
    index.reset();
    await index.ensureImported(session, store, "dek", "b", 1);
    expect(imports).toEqual([idA, idB, idB]);
  });
});
