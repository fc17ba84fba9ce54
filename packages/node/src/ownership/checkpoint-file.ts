/**
 * The node's ownership checkpoint on disk (packages/pool ownership-checkpoint.ts:
 * the committed Genesis, the HSM key ids of owner root / DEK / pool key and this
 * partition's certificate — public data, no key material), so a member restarted in
 * place resumes as synced instead of zeroizing and re-syncing; if every member
 * restarted at once the pool would otherwise lose its DEK.
 *
 *   <state>/ownership.sealed   enclave-sealed (MRSIGNER policy) checkpoint bytes,
 *                              AAD "hsmpool-ownership-checkpoint-v1|<node id>"
 *
 * Sealed although public: node-local state is sealed to the CPU (DESIGN.md step 7),
 * and the seal authenticates it (a swapped or edited file is an IntegrityError).
 */
import { join } from "node:path";
import { utf8 } from "@hsmpool/codec";
import type { Enclave } from "@hsmpool/platform";
import {
  decodeOwnershipCheckpoint,
  encodeOwnershipCheckpoint,
  type OwnershipCheckpoint,
} from "@hsmpool/pool";
import { type DurableStorage, fileStorage } from "../seams/storage.js";

export const CHECKPOINT_FILE = "ownership.sealed";

export class CheckpointFile {
  private lastSaved: string | null = null;

  constructor(
    private readonly enclave: Enclave,
    private readonly stateDir: string,
    private readonly nodeId: string,
    private readonly storage: DurableStorage = fileStorage,
  ) {}

  private get path(): string {
    return join(this.stateDir, CHECKPOINT_FILE);
  }

  private aad(): Uint8Array {
    return utf8(`hsmpool-ownership-checkpoint-v1|${this.nodeId}`);
  }

  async load(): Promise<OwnershipCheckpoint | null> {
    const sealed = await this.storage.read(this.path);
    if (sealed === null) return null;
    const bytes = this.enclave.unseal(sealed, { aad: this.aad() });
    const checkpoint = decodeOwnershipCheckpoint(bytes);
    this.lastSaved = Buffer.from(bytes).toString("base64");
    return checkpoint;
  }

  /** Writes the checkpoint (atomically, fsynced) unless it is the one on disk already. */
  async save(checkpoint: OwnershipCheckpoint): Promise<void> {
    const bytes = encodeOwnershipCheckpoint(checkpoint);
    const key = Buffer.from(bytes).toString("base64");
    if (key === this.lastSaved) return;
    await this.storage.writeAtomic(
      this.path,
      this.enclave.seal(bytes, { policy: "mrsigner", aad: this.aad() }),
    );
    this.lastSaved = key;
  }
}
