/** A partition of the device: zeroize, initialize (random credential) and login. */
import { fail } from "@hsmpool/errors";
import type { OperationGate } from "./operation-gate.js";
import type { PartitionCore } from "./partition-core.js";
import { Session } from "./session.js";

export class Partition {
  /** @internal Partitions come from HsmDevice.partition(). */
  constructor(
    private readonly core: PartitionCore,
    private readonly gate: OperationGate,
  ) {}

  get index(): number {
    return this.core.index;
  }

  /** "<device id>/p<index>". */
  get id(): string {
    return this.core.id;
  }

  isInitialized(): Promise<boolean> {
    return this.gate.run("isInitialized", () => this.core.initialized);
  }

  /** Destroys every key, the credential and the transfer key (on disk too); open sessions become void. */
  zeroize(): Promise<void> {
    return this.gate.run("zeroize", () => this.core.queue.run(() => this.core.zeroize()));
  }

  /**
   * Gives a zeroized partition a fresh random credential and transfer key. Returns
   * the credential (32 bytes): the device keeps only a verifier, so the caller must
   * keep it (sealed) to ever log in.
   */
  initialize(): Promise<Uint8Array> {
    return this.gate.run("initialize", () => this.core.queue.run(() => this.core.initialize()));
  }

  login(credential: Uint8Array): Promise<Session> {
    return this.gate.run("login", () => {
      if (!(credential instanceof Uint8Array)) fail("BadParameter", "credential must be a Uint8Array");
      this.core.requireInitialized();
      if (!this.core.checkCredential(credential)) {
        fail("Unauthenticated", `wrong credential for partition ${this.core.id}`);
      }
      return new Session(this.core, this.gate, this.core.epoch);
    });
  }
}
