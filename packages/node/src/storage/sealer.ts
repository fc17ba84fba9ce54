/**
 * Sealing of everything the node persists (DESIGN.md step 7). Two sealers:
 *
 *  - cpu  (tag 1): the enclave's sealing key, MRSIGNER policy — bound to this CPU and
 *          this code signer; used for node-local secrets (the partition credential,
 *          the ownership record) and for the log before the pool key exists.
 *  - pool (tag 2): the pool key, an AES-256 key inside the HSM partition (A256GCM via
 *          the HSM session; the key never enters this process). Used for the WAL and
 *          snapshots once this member holds ownership.
 *
 * Sealed payload = tag u8 | body; body (cpu) = platform sealed blob, body (pool) =
 * iv 12 | tag 16 | ciphertext. The caller's AAD binds a payload to its place (file,
 * generation, record number), so records cannot be swapped or replayed elsewhere.
 */

import { fail, isHsmPoolError } from "@hsmpool/errors";
import type { Enclave } from "@hsmpool/platform";

export const SEALER_CPU = 1;
export const SEALER_POOL = 2;

export interface PayloadSealer {
  readonly tag: number;
  /** The sealed body, after `prefix` when given (one buffer: a snapshot's tens of MB are not copied once more). */
  seal(plaintext: Uint8Array, aad: Uint8Array, prefix?: Uint8Array): Promise<Uint8Array>;
  open(body: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
}

export function cpuSealer(enclave: Enclave): PayloadSealer {
  return {
    tag: SEALER_CPU,
    seal: async (plaintext, aad, prefix) => {
      const body = await enclave.seal(plaintext, { policy: "mrsigner", aad });
      if (!prefix) return body;
      const out = new Uint8Array(prefix.length + body.length);
      out.set(prefix);
      out.set(body, prefix.length);
      return out;
    },
    open: async (body, aad) => enclave.unseal(body, { aad }),
  };
}

/** The part of an HSM session the pool sealer needs (an AES-256 key with encrypt+decrypt). */
export interface AesGcmDevice {
  encrypt(
    ref: string,
    alg: string,
    plaintext: Uint8Array,
    options?: { aad?: Uint8Array },
  ): Promise<{ ciphertext: Uint8Array; iv?: Uint8Array; tag?: Uint8Array }>;
  decrypt(
    ref: string,
    alg: string,
    ciphertext: Uint8Array,
    options?: { iv?: Uint8Array; tag?: Uint8Array; aad?: Uint8Array },
  ): Promise<Uint8Array>;
}

const NO_PREFIX = new Uint8Array(0);
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function poolKeySealer(device: AesGcmDevice, poolKeyId: string): PayloadSealer {
  return {
    tag: SEALER_POOL,
    async seal(plaintext, aad, prefix = NO_PREFIX) {
      const r = await device.encrypt(poolKeyId, "A256GCM", plaintext, { aad });
      if (r.iv?.length !== IV_BYTES || r.tag?.length !== TAG_BYTES)
        fail("Internal", "HSM returned no GCM iv/tag");
      const at = prefix.length;
      const out = new Uint8Array(at + IV_BYTES + TAG_BYTES + r.ciphertext.length);
      out.set(prefix);
      out.set(r.iv, at);
      out.set(r.tag, at + IV_BYTES);
      out.set(r.ciphertext, at + IV_BYTES + TAG_BYTES);
      return out;
    },
    async open(body, aad) {
      if (body.length < IV_BYTES + TAG_BYTES) fail("IntegrityError", "pool-sealed payload is truncated");
      try {
        return await device.decrypt(poolKeyId, "A256GCM", body.subarray(IV_BYTES + TAG_BYTES), {
          iv: body.subarray(0, IV_BYTES),
          tag: body.subarray(IV_BYTES, IV_BYTES + TAG_BYTES),
          aad,
        });
      } catch (e) {
        // A failed GCM check means tampered or foreign bytes, not a bad request.
        if (isHsmPoolError(e, "BadParameter"))
          fail("IntegrityError", `pool-sealed payload does not open: ${e.message}`);
        throw e;
      }
    },
  };
}

/** The sealers a node has: always the CPU one, the pool one once ownership exists. */
export class Sealers {
  private pool: PayloadSealer | null = null;

  constructor(readonly cpu: PayloadSealer) {}

  usePoolKey(sealer: PayloadSealer): void {
    this.pool = sealer;
  }

  get hasPoolKey(): boolean {
    return this.pool !== null;
  }

  /** The sealer new payloads use. */
  current(): PayloadSealer {
    return this.pool ?? this.cpu;
  }

  /** The sealer's tag and sealed body, after `prefix` (a file's header: one buffer, not a copy more). */
  async seal(plaintext: Uint8Array, aad: Uint8Array, prefix: Uint8Array = NO_PREFIX): Promise<Uint8Array> {
    const sealer = this.current();
    const header = new Uint8Array(prefix.length + 1);
    header.set(prefix);
    header[prefix.length] = sealer.tag;
    return sealer.seal(plaintext, aad, header);
  }

  async open(payload: Uint8Array, aad: Uint8Array, what: string): Promise<Uint8Array> {
    const tag = payload[0];
    const body = payload.subarray(1);
    if (tag === SEALER_CPU) return this.cpu.open(body, aad);
    if (tag === SEALER_POOL) {
      if (!this.pool) {
        fail(
          "IntegrityError",
          `${what} is sealed with the pool key, but this node has no pool key on record`,
        );
      }
      return this.pool.open(body, aad);
    }
    return fail("IntegrityError", `${what} has unknown sealing tag ${tag}`);
  }
}
