/**
 * Public data shapes of the HFC: the run-directory files (docs/node-hfc-contract.md) and
 * the pool status the control API serves. Everything here is public data; no type
 * in this file ever carries key material.
 */

export type MemberRole = "primary" | "secondary" | "learner";
/** "crash-looping": its process keeps exiting soon after launch; the HFC relaunches it with backoff, up to a limit. */
export type MemberHealthState = "up" | "down" | "crash-looping";
export type OwnershipState = "synced" | "pending";
export type PoolState = "healthy" | "degraded" | "unavailable";

/**
 * Where a member stands in the HFC's book (docs/healing-contract.md):
 * - active: a pool member the HFC keeps running (restarts it in place after a crash);
 * - joining: a blank instance launched in join mode, not yet ready;
 * - fenced: lost with its server; never launched again;
 * - retired: replaced by an upgrade and stopped; its server may host someone else;
 * - failed: a joiner that was refused or never joined; never launched again.
 */
export type MemberLifecycle = "active" | "joining" | "fenced" | "retired" | "failed";

/**
 * One pool member as placed and launched by the HFC (an entry of `<run>/pool.json`).
 * The first seven fields are the launch contract's; the rest is the HFC's healing
 * book (a pool.json without them reads as bootstrap members, all active).
 */
export interface MemberSpec {
  id: string;
  serverId: string;
  rackId: string;
  partition: number;
  /** "" until the HFC has allocated ports for a joiner. */
  peerAddress: string;
  dataAddress: string;
  bundleDir: string;
  lifecycle: MemberLifecycle;
  mode: "bootstrap" | "join";
  /** For a joiner: the member whose place it takes. */
  replaces: string | null;
  /** For a joiner: the members it contacts to join (ids; their addresses go into its config). */
  joinPeers: string[];
  /** For a joiner: the lowest peer security version its policy accepts (the pool's minimum at launch). */
  minPeerSvn: number | null;
  /** Security version and signer: from the bundle at launch, then from the node's attested Status. */
  svn: number;
  mrsigner: string;
  /** Set once another member has taken this one's place as a voter (no replacement is owed any more). */
  replacedBy: string | null;
  /** Whether it has been a Raft voter (a fenced voter leaves a hole to fill; a fenced learner does not). */
  wasVoter: boolean;
}

export type HealingKind = "restart" | "replace" | "upgrade";
export type HealingPhase =
  | "detected"
  | "fenced"
  | "launching"
  | "attesting"
  | "catching_up"
  | "syncing_ownership"
  | "ready"
  | "failed";

export interface PhaseMark {
  phase: HealingPhase;
  atMs: number;
}

/** One healing, as `PoolStatus.healing` (hfc.proto HealingEvent) shows it. */
export interface HealingEvent {
  /** `h<n>`, in the order healings started. */
  id: string;
  kind: HealingKind;
  /** The member that crashed, was lost, or is being upgraded away. */
  memberId: string;
  /** The blank joiner that takes its place ("" for a restart in place). */
  replacementId: string;
  phase: HealingPhase;
  phases: PhaseMark[];
  /** Why it failed, or what it waits for ("" when there is nothing to say). */
  reason: string;
}

/** A rolling upgrade (hfc.proto UpgradeStatus); state "" when none was ever asked for. */
export interface UpgradeStatus {
  bundleDir: string;
  svn: number;
  state: "" | "running" | "done" | "failed";
  reason: string;
  /** Joiners launched by it, in order. */
  launched: string[];
}

/** `<run>/pool.json`: the pool parameters. */
/**
 * The customer's tenant binding requested at creation (public data: tenant id, issuer,
 * JWKS, initial role assignments). The CLI writes it to `<run>/identity.json`; the HFC
 * copies it into pool.json and the node configs; the first primary commits it through
 * Raft, after which the log, not this copy, is what every node obeys (docs/identity.md).
 */
export interface TenantBindingRequest {
  tenant: { tenantId: string; issuer: string; jwks: { keys: Record<string, unknown>[] } };
  assignments: { id: string; scope: string; roleDefinitionId: string; principalId: string }[];
}

export interface PoolSpec {
  poolId: string;
  /** The tenant binding requested at creation; absent for pools created before identity existed. */
  identity?: TenantBindingRequest;
  /** Seed the placement used (kept so a placement can be reproduced and explained). */
  placementSeed: number;
  members: MemberSpec[];
  createdMs: number;
  /** Started with `hsmpool up --recover`: a blank pool waiting for a security-domain upload. */
  recover?: boolean;
}

/** `<run>/hfc.json`: where the running HFC listens. Its presence means "an HFC claims this run dir". */
export interface HfcInfo {
  pid: number;
  controlAddress: string;
  /** The pool's one client endpoint: the balancer in front of the members' data-plane ports. */
  endpointAddress?: string;
  poolId: string;
  fabricDir: string;
  startedMs: number;
}

/** `<run>/nodes/<id>/config.json`: a node's launch configuration (public data only). */
export interface NodeConfig {
  nodeId: string;
  /** The tenant binding the pool's first primary commits (ignored once one is committed). */
  identity?: TenantBindingRequest;
  poolId: string;
  mode: "bootstrap" | "join";
  fabricDir: string;
  serverId: string;
  partition: number;
  bundleDir: string;
  stateDir: string;
  peerListen: string;
  dataListen: string;
  peers: { id: string; address: string }[];
  hfcAddress: string;
  fabricCaCertPath: string;
  electionTickMs: number;
  electionTicks: number;
  /** Width of the election timeout's random part in ticks (absent: electionTicks). */
  electionJitterTicks?: number;
  heartbeatTicks: number;
  /** join mode only (docs/healing-contract.md). */
  replaces?: string;
  minPeerSvn?: number;
  /** join mode only: the node gives up ("join refused", exit 4) when not a member after this long. */
  joinTimeoutMs?: number;
  /** A pool started in recovery mode (its members wait for a security-domain upload). */
  recover?: boolean;
}

/** Where a node stands in the pool's Raft membership (healing phases, docs/healing-contract.md). */
export type Membership = "joining" | "learner" | "voter" | "removed";

/**
 * One node's own view, as `hsmpool.pool.v1.NodeControl/Status` returns it (proto-loader camelCase).
 * The node builds it (packages/node status.ts); the HFC and tests read it. Public data only.
 */
export interface NodeStatus {
  nodeId: string;
  poolId: string;
  role: "primary" | "secondary" | "learner" | "candidate";
  term: number;
  primaryId: string;
  commitIndex: number;
  appliedIndex: number;
  ownership: OwnershipState;
  ownershipPhase: string;
  dekFingerprint: string;
  mrenclave: string;
  mrsigner: string;
  svn: number;
  serverId: string;
  rackId: string;
  peerAddress: string;
  dataAddress: string;
  members: { id: string; role: "voter" | "learner"; peerAddress: string; matchLag?: number }[];
  keyCount: number;
  startedMs: number;
  /** "" from a node that predates healing. */
  membership: Membership | "";
  /** The member this node was launched to replace ("" if none). */
  replacing: string;
  minPeerSvn: number;
  /** host:port of the node's Prometheus endpoint ("" before it listens, or from a node that predates metrics). */
  metricsAddress: string;
}

/** hfc.proto MemberStatus. */
export interface MemberStatus {
  id: string;
  role: MemberRole;
  server: string;
  rack: string;
  pid: number;
  health: MemberHealthState;
  measurement: string;
  ownership: OwnershipState;
  peerAddress: string;
  dataAddress: string;
  term: number;
  appliedIndex: number;
  /** `http://<host:port>/metrics` of the node, "" until it has answered Status. */
  metricsUrl: string;
  /** Why the member is not up ("" when up or nothing is known). */
  healthDetail: string;
  /** Security version (the bundle's at launch, then what the node's attestation says). */
  svn: number;
}

/** hfc.proto PoolStatus. `primary` is "" when there is none (proto3 has no null). */
export interface PoolStatus {
  poolId: string;
  state: PoolState;
  term: number;
  primary: string;
  members: MemberStatus[];
  fabricDir: string;
  runDir: string;
  observedMs: number;
  /** Open healings and the latest finished ones, oldest first. */
  healing: HealingEvent[];
  healingPaused: boolean;
  lostServers: string[];
  upgrade: UpgradeStatus;
  /** The HFC's own Prometheus endpoint ("" when it serves none). */
  metricsUrl: string;
}

/** The fields of one audit record, in the order the chain's MAC covers them (node audit-chain.ts). */
export interface AuditFields {
  seq: number;
  timeMs: number;
  member: string;
  /** Display name from the token ("" when no token verified). */
  principal: string;
  /** Object id from the token ("" when no token verified). */
  principalId: string;
  operation: string;
  key: string;
  version: number;
  /** "OK" or the HsmPoolError code. */
  result: string;
  requestId: string;
}

/** One audit record as a member stores and serves it: hash-chained inside its enclave. */
export interface AuditRecord extends AuditFields {
  /** The previous record's hash (the genesis hash for the first). */
  prev: string;
  hash: string;
}
