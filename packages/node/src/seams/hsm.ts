/**
 * The HSM device as the node shell uses it: one partition (zeroize, initialize, log
 * in) and the session calls the shell makes. The real device is @hsmpool/hsm's
 * HsmDevice; the simulator's device answers the same calls in virtual time.
 */
import type { FaultHooks, Session } from "@hsmpool/hsm";

/** The session calls the node shell makes (a subset of @hsmpool/hsm's Session). */
export type HsmSession = Pick<
  Session,
  | "partitionId"
  | "logout"
  | "generateKey"
  | "getHandle"
  | "deleteKey"
  | "getPublicJwk"
  | "sign"
  | "verify"
  | "signDigest"
  | "verifyDigest"
  | "encrypt"
  | "decrypt"
  | "wrapKey"
  | "unwrapKey"
  | "exportWrapped"
  | "importWrapped"
  | "importSecretKey"
  | "getTransferPublicKey"
  | "exportForTransfer"
  | "importFromTransfer"
  | "importJwk"
  | "importByok"
  | "randomBytes"
>;

export interface HsmPartition {
  readonly id: string;
  zeroize(): Promise<void>;
  /** Initializes the partition and returns its fresh random credential. */
  initialize(): Promise<Uint8Array>;
  login(credential: Uint8Array): Promise<HsmSession>;
}

export interface HsmDevicePort {
  partition(index: number): HsmPartition;
  /** TEST-ONLY fault hooks (chaos harness); the simulator injects its faults itself. */
  readonly faults?: FaultHooks;
  close(): Promise<void>;
}
