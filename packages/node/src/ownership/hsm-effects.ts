/**
 * Executes the ownership machine's `hsm.*` effects against this node's partition
 * and turns each result into the machine's next input. Only key ids, public keys,
 * signatures and opaque ECDH-wrapped blobs come out of here; key material stays in
 * the HSM.
 */
import { isHsmPoolError } from "@hsmpool/errors";
import type { OwnershipEffect, OwnershipInput, OwnershipKeyRole } from "@hsmpool/pool";
import { validateP384Jwk } from "@hsmpool/pool";
import type { PartitionAccess } from "../hsm/partition-access.js";

type HsmEffect = Extract<OwnershipEffect, { kind: `hsm.${string}` }>;

export function isHsmEffect(e: OwnershipEffect): e is HsmEffect {
  return e.kind.startsWith("hsm.");
}

/** Runs one effect; returns the input to feed back (null for effects without a result). */
export async function runHsmEffect(
  access: PartitionAccess,
  effect: HsmEffect,
): Promise<OwnershipInput | null> {
  try {
    return await run(access, effect);
  } catch (e) {
    if (effect.kind === "hsm.deleteKeys") return null;
    const error = isHsmPoolError(e)
      ? { code: e.code, message: e.message }
      : { code: "Internal" as const, message: `HSM call failed: ${String(e)}` };
    return { kind: "hsmFailed", correlationId: effect.correlationId, error };
  }
}

async function run(access: PartitionAccess, effect: HsmEffect): Promise<OwnershipInput | null> {
  switch (effect.kind) {
    case "hsm.zeroizeAndInit": {
      const session = await access.zeroizeAndInitialize();
      const { jwk } = await session.getTransferPublicKey();
      return {
        kind: "partitionReady",
        correlationId: effect.correlationId,
        partitionId: session.partitionId,
        transferPublicKey: validateP384Jwk(jwk, "transferPublicKey"),
      };
    }
    case "hsm.createOwnershipKeys": {
      const s = access.session;
      const ownerRoot = await s.generateKey({ kty: "EC", crv: "P-384", ops: ["sign", "verify"] });
      const dek = await s.generateKey({ kty: "oct", size: 256, ops: ["wrapKey", "unwrapKey"] });
      const poolKey = await s.generateKey({ kty: "oct", size: 256, ops: ["encrypt", "decrypt"] });
      return {
        kind: "ownershipKeysCreated",
        correlationId: effect.correlationId,
        ownerRoot: {
          keyId: ownerRoot.id,
          publicKey: validateP384Jwk(await s.getPublicJwk(ownerRoot), "ownerRoot"),
        },
        dekKeyId: dek.id,
        poolKeyKeyId: poolKey.id,
      };
    }
    case "hsm.signWithOwnerRoot":
      return {
        kind: "signed",
        correlationId: effect.correlationId,
        signature: await access.session.sign(effect.keyId, "ES384", effect.data),
      };
    case "hsm.exportForTransfer": {
      const blobs: Uint8Array[] = [];
      for (const keyId of effect.keyIds) {
        blobs.push(
          await access.session.exportForTransfer(
            keyId,
            effect.targetTransferPublicKey,
            effect.targetPartitionId,
          ),
        );
      }
      return { kind: "transferExported", correlationId: effect.correlationId, blobs };
    }
    case "hsm.importFromTransfer": {
      const keys: {
        role: OwnershipKeyRole;
        keyId: string;
        publicKey?: ReturnType<typeof validateP384Jwk>;
      }[] = [];
      for (const item of effect.items) {
        const handle = await access.session.importFromTransfer(
          item.blob,
          effect.sourceTransferPublicKey,
          effect.sourcePartitionId,
        );
        keys.push(
          item.role === "ownerRoot" && handle.kty === "EC"
            ? {
                role: item.role,
                keyId: handle.id,
                publicKey: validateP384Jwk(await access.session.getPublicJwk(handle), "ownerRoot"),
              }
            : { role: item.role, keyId: handle.id },
        );
      }
      return { kind: "transferImported", correlationId: effect.correlationId, keys };
    }
    case "hsm.checkKeys":
      return checkKeys(access, effect.correlationId, effect.keyIds);
    case "hsm.deleteKeys":
      for (const keyId of effect.keyIds) {
        await access.session.deleteKey(keyId).catch((e: unknown) => {
          if (!isHsmPoolError(e, "KeyNotFound")) throw e;
        });
      }
      return null;
  }
}

/**
 * Restart check: which partition the stored credential opens and which keys it no
 * longer holds. Only definite answers: a partition that refuses the credential
 * (re-initialized) or is not initialized (zeroized) is "none"; a device fault throws
 * (→ hsmFailed, retried), never read as "the keys are gone".
 */
async function checkKeys(
  access: PartitionAccess,
  correlationId: string,
  keyIds: string[],
): Promise<OwnershipInput> {
  const none: OwnershipInput = { kind: "keysChecked", correlationId, partition: null, missingKeyIds: [] };
  if (!access.hasSession) {
    try {
      if (!(await access.loginWithStoredCredential())) return none;
    } catch (e) {
      if (isHsmPoolError(e, "Unauthenticated") || isHsmPoolError(e, "NotInitialized")) return none;
      throw e;
    }
  }
  const session = access.session;
  const { jwk } = await session.getTransferPublicKey();
  const missingKeyIds: string[] = [];
  for (const id of keyIds) {
    await session.getHandle(id).catch((e: unknown) => {
      if (!isHsmPoolError(e, "KeyNotFound")) throw e;
      missingKeyIds.push(id);
    });
  }
  return {
    kind: "keysChecked",
    correlationId,
    partition: {
      partitionId: session.partitionId,
      transferPublicKey: validateP384Jwk(jwk, "transferPublicKey"),
    },
    missingKeyIds,
  };
}
