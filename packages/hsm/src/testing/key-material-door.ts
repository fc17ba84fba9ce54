/**
 * TEST-ONLY door: reveals the private/secret material of keys so leak tests know
 * which bytes must never appear on disk. Not exported by the package (its exports map
 * only "."), and nothing outside *.test.ts files may import it.
 */
import { fail } from "@hsmpool/errors";
import { type KeyRef, keyIdOf } from "../key-attributes.js";
import { exportMaterial, materialOf } from "../key-material.js";
import { type Session, sessionPartitions } from "../session.js";

export interface RevealedKey {
  /** PKCS#8 DER (RSA/EC) or the raw AES key. */
  serialized: Buffer;
  /** Private JWK (d, p, q, ... for RSA; d for EC; k for AES). */
  jwk: Record<string, unknown>;
}

function partitionOf(session: Session) {
  const core = sessionPartitions.get(session) ?? fail("Internal", "not a session");
  return core();
}

export function revealKeyForTest(session: Session, ref: KeyRef): RevealedKey {
  const key = partitionOf(session).getKey(keyIdOf(ref));
  const material = materialOf(key);
  const jwk = (material.kind === "secret" ? material.secretKey : material.privateKey).export({
    format: "jwk",
  });
  return { serialized: exportMaterial(material), jwk: { ...jwk } };
}

export function revealTransferKeyForTest(session: Session): RevealedKey {
  const { privateKey } = partitionOf(session).transferKey;
  return {
    serialized: privateKey.export({ type: "pkcs8", format: "der" }),
    jwk: { ...privateKey.export({ format: "jwk" }) },
  };
}
