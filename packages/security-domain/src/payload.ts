/**
 * The security domain's payload (what the TEE encrypts inside the file): the domain
 * secret, the ownership keys exported by the HSM under the escrow key, the pool's
 * bindings (tenant, administrators) and an initial backup. JSON, decrypted only in a TEE.
 */
import { fail } from "@hsmpool/errors";
import { fromBase64Url, toBase64Url } from "./base64url.js";
import { requireObject } from "./document.js";

export interface DomainPayload {
  /** The 32-byte domain secret S. */
  readonly secret: Uint8Array;
  /** Ownership keys (owner root, DEK, pool key) as HSM blobs wrapped under the escrow key, by role. */
  readonly escrowedKeys: Readonly<Record<string, Uint8Array>>;
  /** Pool bindings (tenant, administrators); opaque JSON to this package. */
  readonly bindings: unknown;
  /** A backup (sealBackup) of the pool at activation. */
  readonly initialBackup: Uint8Array;
}

export function encodePayload(p: DomainPayload): Buffer {
  const escrowed = Object.fromEntries(Object.entries(p.escrowedKeys).map(([k, v]) => [k, toBase64Url(v)]));
  return Buffer.from(
    JSON.stringify({
      version: 1,
      secret: toBase64Url(p.secret),
      escrowedKeys: escrowed,
      bindings: p.bindings ?? null,
      initialBackup: toBase64Url(p.initialBackup),
    }),
  );
}

export function decodePayload(bytes: Uint8Array): DomainPayload {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return fail("BadParameter", "the security domain payload is not JSON");
  }
  const o = requireObject(v, "security domain payload");
  if (o.version !== 1) fail("BadParameter", "security domain payload version is not supported");
  const secret = fromBase64Url(o.secret, "payload secret");
  if (secret.length !== 32) fail("BadParameter", "the security domain secret is not 32 bytes");
  const escrowedKeys: Record<string, Uint8Array> = {};
  for (const [k, blob] of Object.entries(requireObject(o.escrowedKeys, "escrowedKeys")))
    escrowedKeys[k] = fromBase64Url(blob, `escrowed key ${k}`);
  return {
    secret,
    escrowedKeys,
    bindings: o.bindings ?? null,
    initialBackup: fromBase64Url(o.initialBackup, "initialBackup"),
  };
}
