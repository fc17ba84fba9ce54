/**
 * Inputs, effects and state of the per-node ownership/bootstrap state machine
 * (ownership.ts). Everything is plain data so the node shell and the simulator can
 * log, copy and replay it. HSM keys are referred to by their HSM key id (public
 * identifiers); key material never appears here, only opaque transfer blobs.
 */
import type { ErrorCode } from "@hsmpool/errors";
import type { PoolCertificate, UnsignedCertificate } from "./certificate.js";
import type { GenesisCommand, PoolCommand } from "./commands.js";
import type { P384PublicJwk } from "./jwk.js";
import type { OwnershipMessage } from "./messages.js";

export type OwnershipPhase =
  /** Waiting for the partition to be zeroized and initialized with fresh credentials. */
  | "initializingPartition"
  /** Partition ready; attested connections to peers not yet reported. */
  | "connecting"
  /** Waiting for a primary (Raft leader) and for the pool's Genesis. */
  | "electing"
  /** This node is the primary of a pool without Genesis: making owner root, DEK, pool key, certificates. */
  | "creatingOwnership"
  /**
   * Genesis proposed; waiting for the first committed Genesis. ownershipCheckpoint gives a
   * provisional checkpoint in this phase (written before the proposal leaves); a member
   * resumed from it is here with pending step "verifyKeys" until its partition is confirmed.
   */
  | "ownershipProposed"
  /** Asking a synced member for the owner root key (ECDH-wrapped to this partition). */
  | "requestingOwnerRoot"
  /** Signing this partition's certificate with the received owner root key. */
  | "issuingPartitionCert"
  /** Presenting the partition certificate to get the DEK and pool key (ECDH-wrapped). */
  | "receivingDek"
  /**
   * Holds owner root, partition certificate, DEK and pool key of the committed Genesis.
   * A member resumed from a checkpoint is "synced" with pending step "verifyKeys" until its
   * partition is confirmed to still hold the keys; meanwhile it does not hold ownership
   * (requireOwnership refuses, peers are refused, no ownershipSynced yet).
   */
  | "synced";

/** The keys a member holds for the pool. */
export type OwnershipKeyRole = "ownerRoot" | "dek" | "poolKey";

export interface OwnershipConfig {
  nodeId: string;
  poolId: string;
  /** Ticks without an answer before a request or proposal is sent again (>= 1). */
  retryTicks: number;
  /** At most this many peer requests served at once; further ones are refused (default 16). */
  maxConcurrentServes?: number;
}

export interface HsmError {
  code: ErrorCode;
  message: string;
}

export type OwnershipInput =
  /** First input: wall time, a fresh random id for this run (nonces), and the current Raft members. */
  | { kind: "start"; nowMs: number; incarnation: string; members: string[] }
  | { kind: "tick"; nowMs: number }
  /** Result of hsm.zeroizeAndInit. */
  | { kind: "partitionReady"; correlationId: string; partitionId: string; transferPublicKey: P384PublicJwk }
  /** Attested (RA-TLS) connections to a quorum of peers are up. */
  | { kind: "peersConnected" }
  | { kind: "leaderChanged"; leader: string | null; term: number }
  /** This node is leader of `term` and has applied its term's first entry (it has seen every committed entry). */
  | { kind: "leaderCaughtUp"; term: number }
  /** Current Raft voters and learners. */
  | { kind: "membershipChanged"; members: string[] }
  /** The first committed Genesis (from KeyStore outcome genesisAccepted, or store.genesis after a snapshot). */
  | { kind: "genesisApplied"; genesis: GenesisCommand }
  | { kind: "memberSyncedApplied"; memberId: string }
  | { kind: "memberRemovedApplied"; memberId: string }
  /** Result of hsm.createOwnershipKeys. */
  | {
      kind: "ownershipKeysCreated";
      correlationId: string;
      ownerRoot: { keyId: string; publicKey: P384PublicJwk };
      dekKeyId: string;
      poolKeyKeyId: string;
    }
  /** Result of hsm.signWithOwnerRoot: ES384, JOSE r||s (96 bytes). */
  | { kind: "signed"; correlationId: string; signature: Uint8Array }
  /** Result of hsm.exportForTransfer: one blob per key id, same order. */
  | { kind: "transferExported"; correlationId: string; blobs: Uint8Array[] }
  /** Result of hsm.importFromTransfer: the imported keys, same order; publicKey for the owner root. */
  | {
      kind: "transferImported";
      correlationId: string;
      keys: { role: OwnershipKeyRole; keyId: string; publicKey?: P384PublicJwk }[];
    }
  /**
   * Result of hsm.checkKeys. `partition` is the partition the stored credential opens, or
   * null when it opens none (no credential, partition zeroized, device replaced);
   * `missingKeyIds` are the asked key ids the partition does not hold.
   */
  | {
      kind: "keysChecked";
      correlationId: string;
      partition: { partitionId: string; transferPublicKey: P384PublicJwk } | null;
      missingKeyIds: string[];
    }
  | { kind: "hsmFailed"; correlationId: string; error: HsmError }
  /** A message from peer `from` (the identity the attested channel proved). */
  | { kind: "message"; from: string; message: OwnershipMessage };

export type OwnershipEffect =
  /** Zeroize this node's partition, initialize it with a random credential (kept sealed), log in. → partitionReady */
  | { kind: "hsm.zeroizeAndInit"; correlationId: string }
  /**
   * In the partition: an EC P-384 owner root key (ops sign, verify), an AES-256 DEK
   * (wrapKey, unwrapKey) and an AES-256 pool key (encrypt, decrypt). → ownershipKeysCreated
   */
  | { kind: "hsm.createOwnershipKeys"; correlationId: string }
  /** Sign `data` with the owner root key, ES384. → signed */
  | { kind: "hsm.signWithOwnerRoot"; correlationId: string; keyId: string; data: Uint8Array }
  /** Export keys ECDH-wrapped to the target partition (Session.exportForTransfer). → transferExported */
  | {
      kind: "hsm.exportForTransfer";
      correlationId: string;
      keyIds: string[];
      targetPartitionId: string;
      targetTransferPublicKey: P384PublicJwk;
    }
  /** Import transfer blobs made by the source partition (Session.importFromTransfer). → transferImported */
  | {
      kind: "hsm.importFromTransfer";
      correlationId: string;
      items: { role: OwnershipKeyRole; blob: Uint8Array }[];
      sourcePartitionId: string;
      sourceTransferPublicKey: P384PublicJwk;
    }
  /**
   * Restart path (resumeOwnership): log in to the existing partition with the stored
   * credential — no zeroize — and report which partition it is (id, transfer public key)
   * and which of `keyIds` it no longer holds. → keysChecked (a transient failure → hsmFailed)
   */
  | { kind: "hsm.checkKeys"; correlationId: string; partitionId: string; keyIds: string[] }
  /** Delete keys this node no longer owns (a lost Genesis race, a wrong import). No result. */
  | { kind: "hsm.deleteKeys"; keyIds: string[] }
  | { kind: "send"; to: string; message: OwnershipMessage }
  /** Propose to Raft: `data` = encodeCommand(command). */
  | { kind: "propose"; command: PoolCommand; data: Uint8Array }
  /** This node now holds the pool's ownership: key operations may run; import pending key versions now. */
  | {
      kind: "ownershipSynced";
      ownerRootKeyId: string;
      dekKeyId: string;
      poolKeyKeyId: string;
      ownerRootFingerprint: string;
      dekFingerprint: string;
    };

export interface HeldKey {
  readonly keyId: string;
  /** keyFingerprint(keyId) for the DEK and pool key. */
  readonly fingerprint: string;
}

/** What this node's partition holds for the pool (public descriptions only). */
export interface OwnershipMaterial {
  readonly ownerRoot: { readonly keyId: string; readonly publicKey: P384PublicJwk } | null;
  readonly ownerRootCert: PoolCertificate | null;
  readonly dek: HeldKey | null;
  readonly poolKey: HeldKey | null;
  readonly partitionCert: PoolCertificate | null;
}

export type PendingStep =
  | "zeroizeAndInit"
  /** Resumed from a checkpoint (synced or provisional): waiting for hsm.checkKeys (set before start, issued at start). */
  | "verifyKeys"
  | "createOwnershipKeys"
  | "signOwnerRootCert"
  | "signPartitionCert"
  | "proposeGenesis"
  | "awaitOwnerRoot"
  | "importOwnerRoot"
  | "awaitDek"
  | "importDek"
  | "announceSynced";

/** This node's own outstanding action. */
export interface Pending {
  readonly step: PendingStep;
  /** HSM correlation id or request nonce; "" for proposals. */
  readonly correlationId: string;
  /** Tick at which the action is re-issued; null while an HSM call is under way. */
  readonly deadlineTick: number | null;
  /** Peer a request went to. */
  readonly target: string | null;
  /** Re-sends so far (rotates the target). */
  readonly attempt: number;
  /** Certificate being signed (sign steps). */
  readonly unsigned: UnsignedCertificate | null;
}

/** A peer request this node is serving (waiting for the HSM export). */
export interface Serving {
  readonly correlationId: string;
  readonly to: string;
  readonly nonce: string;
  readonly kind: "ownerRoot" | "dek";
}

export interface OwnershipState {
  readonly config: Required<OwnershipConfig>;
  readonly phase: OwnershipPhase;
  readonly started: boolean;
  readonly incarnation: string;
  /** Counter behind correlation ids and nonces. */
  readonly seq: number;
  readonly tick: number;
  readonly nowMs: number;
  readonly peersConnected: boolean;
  readonly leader: string | null;
  readonly term: number;
  /** Latest term in which this node, as leader, reported it had applied its own first entry. */
  readonly caughtUpTerm: number;
  readonly members: readonly string[];
  readonly partition: { readonly partitionId: string; readonly transferPublicKey: P384PublicJwk } | null;
  readonly genesis: GenesisCommand | null;
  readonly syncedMembers: readonly string[];
  readonly material: OwnershipMaterial;
  readonly pending: Pending | null;
  readonly serving: readonly Serving[];
  /** Last problem seen (refusal, bad answer, HSM failure), for status and logs. */
  readonly lastError: HsmError | null;
}

export interface OwnershipStep {
  state: OwnershipState;
  effects: OwnershipEffect[];
}
