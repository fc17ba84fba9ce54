/**
 * One TEE node process: composes the platform (enclave), the HSM partition, the
 * Raft core with its durable store, the pool's key store and ownership machines,
 * the attested peer server/links and the data plane. Boot order:
 *
 *   launch enclave (measured bundle) → open HSM device → unseal credential + log in
 *   (restart) → load sealed ownership state → open WAL/snapshot (sealed) → restore
 *   key store → Raft → attested peer server → ticks → data-plane cert (CSR to the
 *   HFC) → KeyVault/NodeControl server → log "ready".
 *
 * A node in join mode that is not a Raft member yet then asks the pool to admit it
 * (membership/joiner.ts); every member answers Membership.Join and, while primary,
 * drives the healing membership changes (membership/membership-driver.ts). The peer
 * address book follows the replicated member registry.
 *
 * This file is the node's lifecycle (boot order, reactions, status, stop). How each part
 * is built lives by name: startup.ts (enclave, HSM, checkpoint, WAL recovery) and
 * wiring/ (raft.ts, peers.ts, membership.ts, security-domain.ts, ownership.ts, data-plane.ts).
 */
import type { VerifiedPeer } from "@hsmpool/attested-tls";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import type { MetricsServer } from "@hsmpool/metrics";
import type { Enclave } from "@hsmpool/platform";
import {
  type ApplyResult,
  describeQuorum,
  encodeCommand,
  type KeyStore,
  type OwnershipState,
  ownershipInputsOf,
  type QuorumReport,
  quorumReport,
  requireOwnership,
} from "@hsmpool/pool";
import type { ConfState, Entry, Message, Role, Snapshot, SoftState } from "@hsmpool/raft";
import type { Membership, NodeStatus } from "@hsmpool/wire";
import type { Logger } from "pino";
import type { AuditLog } from "./audit/audit-log.js";
import type { ChaosHooks } from "./chaos-hooks.js";
import type { NodeConfig } from "./config.js";
import type { PartitionAccess } from "./hsm/partition-access.js";
import { deleteHsmKeys, KeyIndex } from "./keyvault/key-index.js";
import { KeyReserve } from "./keyvault/key-reserve.js";
import { type KeyService, prepareKey } from "./keyvault/key-service.js";
import type { ProposalWaiters } from "./keyvault/proposals.js";
import { Joiner, type JoinFailure } from "./membership/joiner.js";
import type { MembershipDriver } from "./membership/membership-driver.js";
import { NodeMetrics } from "./metrics/node-metrics.js";
import type { OwnershipDriver, OwnershipSyncedInfo } from "./ownership/ownership-driver.js";
import { peerSvnFloor } from "./peer/policy.js";
import type { RaftDriver } from "./raft/raft-driver.js";
import {
  type Clock,
  type DataPlane,
  type HsmDevicePort,
  NO_VARIANTS,
  type NodeObserver,
  type NodeSeams,
  type PeerTransport,
  type ShellVariants,
  systemSeams,
  type TimerId,
} from "./seams/index.js";
import type { LaunchedServer } from "./seams/platform.js";
import type { SecurityDomainService } from "./security-domain/sd-service.js";
import { openNodeState, restoreKeyStoreSteps } from "./startup.js";
import { nodeStatus } from "./status.js";
import type { RaftStore } from "./storage/raft-store.js";
import { poolKeySealer, type Sealers } from "./storage/sealer.js";
import { serveDataPlane, wireBackupJobs, wireKeyService } from "./wiring/data-plane.js";
import { wireMembership } from "./wiring/membership.js";
import { wireOwnership } from "./wiring/ownership.js";
import { openPeerLinks } from "./wiring/peers.js";
import { wireRaft } from "./wiring/raft.js";
import { wireSecurityDomain } from "./wiring/security-domain.js";

export { foundingKeyStoreData } from "./startup.js";

/** How long graceful shutdown lets in-flight data-plane calls finish. */
export const SHUTDOWN_GRACE_MS = 2_000;
/** How often a primary re-proposes an uncommitted tenant binding. */
const TENANT_BIND_RETRY_MS = 2_000;

export interface NodeOptions {
  logger: Logger;
  /** The node cannot continue (a persist failed, the log is corrupt): the process should exit. */
  onFatal: (error: unknown) => void;
  /** Join mode: the pool did not admit this node (logged as "join refused"); the process should stop. */
  onJoinFailed?: (failure: JoinFailure) => void;
  /** The node's notion of wall time when it differs from the clock seam's (a chaos clock skew). */
  now?: () => number;
  /** Clock, randomness, storage and the server (default: the real ones). */
  seams?: Partial<NodeSeams>;
  /** Deliberately broken variants (tests and the simulator only; seams/variants.ts). */
  variants?: ShellVariants;
  /** Watches facts inside the node (the simulator's checkers); absent in a real node. */
  observer?: NodeObserver;
  /** TEST-ONLY fault hooks of a chaos harness run (chaos-hooks.ts); absent in a real pool. */
  chaos?: ChaosHooks;
  /**
   * Simulator only: key operations run without an activated security domain. The SD
   * ceremony (customer RSA keys, Shamir) is outside what the simulator models and its
   * randomness would break seed replay; activation is tested on real processes.
   */
  unactivatedKeyOps?: boolean;
}

/** How often the primary evaluates rotation policies and purge dates (policies are in days; this is plenty). */
const LIFECYCLE_INTERVAL_MS = 1_000;

export class PoolNode {
  readonly startedMs: number;
  private readonly now: () => number;
  private readonly seams: NodeSeams;
  /** The clock with the node's wall time (now), for what stamps or judges times. */
  private readonly wallClock: Clock;
  private readonly variants: ShellVariants;
  private readonly logger: Logger;
  private enclave!: Enclave;
  private device!: HsmDevicePort;
  private access!: PartitionAccess;
  private store!: RaftStore;
  private keyStore!: KeyStore;
  private readonly keyIndex = new KeyIndex();
  private readonly keyReserve: KeyReserve;
  private proposals!: ProposalWaiters;
  private raft!: RaftDriver;
  private ownership!: OwnershipDriver;
  private links!: PeerTransport;
  private peerAddress = "";
  private dataServer: DataPlane | null = null;
  private audit: AuditLog | null = null;
  private readonly metrics: NodeMetrics;
  private metricsServer: MetricsServer | null = null;
  /** The primary's lifecycle duty (policy rotations, purges after retention); one run at a time. */
  private lifecycleTimer: TimerId | null = null;
  private lifecycleRunning = false;
  private synced: OwnershipSyncedInfo | null = null;
  private readonly peerDataAddresses = new Map<string, string>();
  private readonly heardFrom = new Set<string>();
  /** When a Raft message from each peer last arrived (for the quorum report). */
  private readonly lastHeardMs = new Map<string, number>();
  /** The SVN each peer's attestation proved on its Raft stream to this node. */
  private readonly observedSvns = new Map<string, number>();
  private membership!: MembershipDriver;
  private securityDomain!: SecurityDomainService;
  private keyService: KeyService | null = null;
  private joiner: Joiner | null = null;
  private membershipState: Membership = "joining";
  private peersConnectedFed = false;
  private caughtUpTerm = 0;
  private tenantBindProposedMs = Number.NEGATIVE_INFINITY;
  private stopping = false;
  private fatalReported = false;

  private constructor(
    readonly config: NodeConfig,
    private readonly opts: NodeOptions,
  ) {
    this.seams = { ...systemSeams, ...opts.seams };
    const clock = this.seams.clock;
    this.now = opts.now ?? (() => clock.now());
    this.wallClock = {
      now: this.now,
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      setInterval: (fn, ms) => clock.setInterval(fn, ms),
      afterTurn: (fn) => clock.afterTurn(fn),
      clear: (timer) => clock.clear(timer),
    };
    this.keyReserve = new KeyReserve({
      depth: 2,
      maxSpecs: 8,
      prepare: (spec, dekKeyId) => prepareKey(this.access.session, spec, dekKeyId),
      discard: (keyIds) => deleteHsmKeys(this.access.session, keyIds),
      onError: (e) => this.logger.warn({ error: String(e) }, "preparing a key ahead of need failed"),
      quietMs: 1,
      busy: () => this.dataServer?.busy?.() ?? false,
      clock: this.wallClock,
    });
    this.variants = opts.variants ?? NO_VARIANTS;
    this.logger = opts.logger;
    this.startedMs = this.now();
    this.metrics = new NodeMetrics(
      { node: config.nodeId, pool: config.poolId },
      () => {
        if (!this.raft) return null;
        const st = this.raft.status();
        return { term: st.term, commitIndex: st.commit, appliedIndex: this.raft.appliedIndex };
      },
      { processMetrics: this.seams.platform.processMetrics },
    );
  }

  /** Launches the enclave and starts every part; resolves once the peer server listens. */
  static async start(config: NodeConfig, opts: NodeOptions): Promise<PoolNode> {
    const node = PoolNode.create(config, opts);
    await node.boot();
    return node;
  }

  /** A node not started yet: `boot()` starts it (the simulator holds the node while it boots). */
  static create(config: NodeConfig, opts: NodeOptions): PoolNode {
    return new PoolNode(config, opts);
  }

  /**
   * A read-only look inside for the simulator's checkers and tests: the ownership
   * machine's state, the key store, Raft's view and this node's membership; null
   * while the node is still booting.
   */
  inspect(): NodeInternals | null {
    if (!this.raft || !this.ownership || !this.keyStore) return null;
    const st = this.raft.status();
    return {
      ownership: this.ownership.current,
      keyStore: this.keyStore,
      role: st.role,
      term: st.term,
      lead: st.lead,
      conf: this.raft.confState,
      appliedIndex: this.raft.appliedIndex,
      membership: this.membershipState,
    };
  }

  /** Launches the enclave and starts every part (PoolNode.start does this). */
  async boot(): Promise<void> {
    const { config, logger } = this;
    const { clock, random } = this.seams;
    const chaos = this.opts.chaos;
    const observer = this.opts.observer;
    const state = await openNodeState({ config, seams: this.seams, logger, chaos, metrics: this.metrics });
    const { recovered, sealers, checkpoints } = state;
    this.enclave = state.enclave;
    // The host's test hooks (chaos.json) live only in debug enclaves (docs/identity.md); main.ts
    // ignores the file for a production bundle, and this catches a bundle swapped in between.
    if (chaos !== undefined && !this.enclave.identity.debug) {
      fail(
        "LaunchRefused",
        "test hooks (chaos.json) were given to a production (non-debug) enclave; only a debug-signed bundle honours them",
      );
    }
    this.device = state.device;
    this.access = state.access;
    this.store = state.store;
    this.keyStore = state.keyStore;
    this.keyIndex.reset();
    observer?.raftRecovered?.(this.store.storage, recovered.hardState);

    const quorumNote = () => describeQuorum(this.quorum());
    ({ proposals: this.proposals, raft: this.raft } = wireRaft({
      config,
      store: this.store,
      recovered,
      logger,
      clock,
      random,
      variants: this.variants,
      observer,
      quorumNote,
      // The ownership machine, membership driver and tenant binding tick on Raft's timer.
      afterTick: () => {
        if (this.stopping) return;
        this.ownership.input({ kind: "tick", nowMs: this.now() });
        this.membership.tick();
        this.maybeBindTenant();
      },
      hooks: {
        send: (messages) => this.sendToPeers(messages),
        flushed: () => this.links.flushed?.(),
        onSnapshot: (snap) => this.installSnapshot(snap),
        onCommitted: (entry) => this.apply(entry),
        onConfChange: (c) => {
          this.ownership.input({ kind: "membershipChanged", members: membersOf(c) });
          this.onMembershipChanged();
        },
        onSoftState: (soft, term) => this.onSoftState(soft, term),
        snapshotData: () => this.keyStore.snapshotSteps(),
        onFatal: (e) => this.fatal(e),
      },
    }));
    this.links = await openPeerLinks({
      server: state.server,
      config,
      logger,
      clock,
      random,
      raft: this.raft,
      chaos,
    });
    this.membership = wireMembership({
      config,
      raft: this.raft,
      links: this.links,
      store: () => this.keyStore,
      svnOf: (id) => this.svnOf(id),
      isCaughtUpLeader: () => {
        const st = this.raft.status();
        return st.role === "leader" && this.caughtUpTerm === st.term;
      },
      quorumNote,
      logger,
      clock: this.wallClock,
    });
    this.securityDomain = wireSecurityDomain({
      config,
      store: () => this.keyStore,
      access: this.access,
      enclave: this.enclave,
      synced: () => this.synced,
      requireLeader: () => this.dataPlaneKeys().requireLeader(),
      commit: (requestId, data) => this.dataPlaneKeys().commit(requestId, data),
      logger,
      now: this.now,
      clock,
    });
    this.ownership = wireOwnership({
      config,
      access: this.access,
      checkpoints,
      checkpoint: state.checkpoint,
      members: membersOf(recovered.snapshot.meta.conf),
      raft: this.raft,
      links: this.links,
      securityDomain: this.securityDomain,
      onSynced: (info) => this.onSynced(info, sealers),
      onFatal: (e) => this.fatal(e),
      logger,
      clock: this.wallClock,
      random,
      variants: this.variants,
      observer,
    });

    this.peerAddress = await this.links.listen({
      onRaftMessage: (m) => this.onRaftMessage(m),
      onPeerDataAddress: (peer, address) => this.peerDataAddresses.set(peer, address),
      onPeerIdentity: (peer, identity: VerifiedPeer) => {
        this.observedSvns.set(peer, identity.svn);
        // The peer opened its stream to us, so it is up (typically a restarted member): reconnect our
        // link to it now, not after our reconnect backoff (up to 3 s), so it hears the leader's next
        // heartbeat instead of waking up leaderless at its old term.
        this.links.heardFrom(peer);
      },
      onOwnershipRequest: (from, message) => this.ownership.serve(from, message),
      onJoin: (caller, request) => this.membership.onJoin(caller, request),
    });

    // Loopback, any free port: the address is in this node's Status, where the HFC finds it.
    this.metricsServer = await state.server.serveMetrics(this.metrics.registry);
    if (this.metricsServer) logger.info({ metricsUrl: this.metricsServer.url }, "metrics served");

    this.membershipState = initialMembership(this.raft.confState, config.nodeId);
    this.onMembershipChanged();
    this.raft.start();
    if (config.mode === "join" && this.membershipState === "joining") this.startJoining();
    void this.startDataPlane(state.server);
  }

  /** Join mode, not a member yet: ask the live members to admit this node. */
  private startJoining(): void {
    const { config, logger } = this;
    logger.info(
      { peers: config.peers.map((p) => p.id), replaces: config.replaces, minPeerSvn: this.minPeerSvn },
      "joining the pool",
    );
    this.joiner = new Joiner({
      request: {
        nodeId: config.nodeId,
        peerAddress: config.peerListen,
        dataAddress: config.dataListen,
        replaces: config.replaces ?? "",
      },
      peers: config.peers,
      join: (target, request, timeoutMs) => this.links.join(target, request, timeoutMs),
      isMember: () => this.membershipState !== "joining",
      timeoutMs: config.joinTimeoutMs,
      logger,
      clock: this.seams.clock,
      random: this.seams.random,
      onGiveUp: (failure) => {
        const { reason, check, code, error, peers } = failure;
        logger.error({ reason, check, code, error, peers }, "join refused");
        this.opts.onJoinFailed?.(failure);
      },
    });
    void this.joiner.run();
  }

  private get minPeerSvn(): number {
    return peerSvnFloor(this.enclave.identity, this.config.minPeerSvn);
  }

  private svnOf(id: string): number | null {
    if (id === this.config.nodeId) return this.enclave.identity.svn;
    return this.keyStore.registeredMember(id)?.svn ?? this.observedSvns.get(id) ?? null;
  }

  /** Which voters this node can reach now: a connected link or a message within an election timeout. */
  private quorum(): QuorumReport {
    const windowMs = this.config.electionTickMs * this.config.electionTicks;
    return quorumReport({
      selfId: this.config.nodeId,
      voters: this.raft.confState.voters,
      connected: (id) => this.links.isConnected(id),
      lastHeardMs: (id) => this.lastHeardMs.get(id),
      nowMs: this.now(),
      windowMs,
    });
  }

  /**
   * Membership or the member registry changed: update this node's own membership state
   * and the peer address book — links to every member (addresses from the registry,
   * else the launch config), to registered members about to be added, and none to
   * removed members. A node that is not a member yet keeps the configured peers.
   */
  private onMembershipChanged(): void {
    const { config } = this;
    const self = config.nodeId;
    const conf = this.raft.confState;
    const next: Membership = conf.voters.includes(self)
      ? "voter"
      : conf.learners.includes(self)
        ? "learner"
        : this.membershipState === "joining"
          ? "joining"
          : "removed";
    if (next !== this.membershipState) {
      this.logger.info({ from: this.membershipState, to: next, conf }, "membership");
      this.membershipState = next;
      if (next !== "joining") this.joiner?.stop();
    }
    const members = membersOf(conf);
    const registered = this.keyStore.registeredMembers();
    const configured = new Map(config.peers.map((p) => [p.id, p.address]));
    const wanted = new Map<string, string>();
    if (next === "joining") for (const [id, address] of configured) wanted.set(id, address);
    for (const id of members) {
      const address =
        registered.find((m) => m.memberId === id)?.peerAddress ??
        configured.get(id) ??
        this.links.addressOf(id);
      if (address) wanted.set(id, address);
    }
    for (const m of registered) {
      if (!this.keyStore.wasRemoved(m.memberId)) wanted.set(m.memberId, m.peerAddress);
      this.peerDataAddresses.set(m.memberId, m.dataAddress);
    }
    wanted.delete(self);
    for (const id of this.links.peers()) {
      if (!wanted.has(id)) {
        this.links.removePeer(id);
        this.logger.info({ peer: id }, "peer link closed (no longer a member)");
      }
    }
    for (const [id, address] of wanted) this.links.setPeer(id, address);
  }

  /**
   * A snapshot from the leader replaces the key store, decoded in steps (the Raft driver
   * lets the loop run between two; queries see the old store until the last step, which
   * replaces it); the ownership machine learns what
   * it holds — membership and synced members before Genesis, so a blank member's first
   * owner-root request goes to a current synced member (the primary first), not to the
   * Genesis proposer, which may have been replaced long ago.
   */
  private *installSnapshot(snapshot: Snapshot): Generator<void, void, void> {
    this.keyStore = yield* restoreKeyStoreSteps(snapshot, this.config.poolId);
    this.keyIndex.reset();
    this.ownership.input({ kind: "membershipChanged", members: membersOf(snapshot.meta.conf) });
    for (const m of this.keyStore.syncedMembers())
      this.ownership.input({ kind: "memberSyncedApplied", memberId: m.memberId });
    const genesis = this.keyStore.genesis;
    if (genesis) this.ownership.input({ kind: "genesisApplied", genesis });
    this.logger.info({ index: snapshot.meta.index }, "snapshot installed");
  }

  /**
   * Applies one committed entry: the ONE place where the replicated state changes and
   * where client writes are acknowledged (ProposalWaiters.settle).
   */
  private apply(entry: Entry): void {
    const result: ApplyResult = this.keyStore.apply(entry);
    this.opts.observer?.applied?.(entry, result.outcome);
    for (const effect of result.effects) {
      const doomed = this.keyIndex.onEffect(effect);
      if (doomed.length > 0 && this.access.hasSession) {
        deleteHsmKeys(this.access.session, doomed).catch((e: unknown) =>
          this.logger.warn({ error: String(e) }, "could not remove deleted keys from the partition"),
        );
      }
    }
    for (const input of ownershipInputsOf(result.outcome)) this.ownership.input(input);
    if (result.outcome.kind === "memberRegistered") {
      const { member } = result.outcome;
      this.logger.info(
        {
          memberId: member.memberId,
          peerAddress: member.peerAddress,
          svn: member.svn,
          replaces: member.replaces,
        },
        "member registered",
      );
      this.onMembershipChanged();
      this.membership.onRegistered(member);
    }
    if (result.outcome.kind === "rejected") {
      this.logger.info(
        { index: entry.index, command: result.outcome.command, error: result.outcome.error },
        "entry refused on apply",
      );
    }
    this.proposals.settle(result.outcome);
    const st = this.raft.status();
    if (st.role === "leader" && entry.term === st.term && this.caughtUpTerm !== st.term) {
      this.caughtUpTerm = st.term;
      this.ownership.input({ kind: "leaderCaughtUp", term: st.term });
    }
  }

  /**
   * Pool creation, after Genesis: the caught-up primary commits the tenant binding of its
   * launch config. Only the first committed binding counts (later ones apply as ignored),
   * so an HFC that rewrites configs afterwards changes nothing.
   */
  private maybeBindTenant(): void {
    // A recovering pool binds the tenant its uploaded security domain carries (sd-service.ts), not its config's.
    const request = this.config.recover ? null : this.config.identity;
    if (request === null || this.keyStore.genesis === null || this.keyStore.access.tenant !== null) return;
    const st = this.raft.status();
    if (st.role !== "leader" || this.caughtUpTerm !== st.term) return;
    const now = this.now();
    if (now - this.tenantBindProposedMs < TENANT_BIND_RETRY_MS) return;
    this.tenantBindProposedMs = now;
    try {
      this.raft.propose(
        encodeCommand({
          kind: "access",
          requestId: `bind-tenant-${this.config.nodeId}`,
          op: request,
          at: now,
        }),
      );
      this.logger.info({ tenantId: request.tenant.tenantId }, "tenant binding proposed");
    } catch (e) {
      this.logger.debug({ error: String(e) }, "tenant binding not proposed");
    }
  }

  private onSoftState(soft: SoftState, term: number): void {
    this.logger.info({ role: soft.role, leader: soft.leader, term }, "raft role");
    this.metrics.leaderSeen(soft.leader);
    this.ownership.input({ kind: "leaderChanged", leader: soft.leader, term });
  }

  /** Raft's outbound messages; a TEST-ONLY partition (chaos hooks) drops them as a cut network would. */
  private sendToPeers(messages: readonly Message[]): void {
    if (this.opts.chaos?.isolated) {
      for (const m of messages) this.raft.reportUnreachable(m.to);
      return;
    }
    this.links.send(messages);
  }

  private onRaftMessage(m: Message): void {
    if (this.opts.chaos?.isolated) return; // TEST-ONLY partition: nothing from the peers arrives
    this.links.heardFrom(m.from);
    this.lastHeardMs.set(m.from, this.now());
    try {
      this.raft.step(m);
    } catch (e) {
      this.logger.debug({ from: m.from, type: m.type, error: String(e) }, "raft message refused");
      return;
    }
    if (!this.peersConnectedFed) {
      this.heardFrom.add(m.from);
      const voters = this.raft.confState.voters;
      if (this.heardFrom.size + 1 > voters.length / 2) {
        this.peersConnectedFed = true;
        this.ownership.input({ kind: "peersConnected" });
      }
    }
  }

  private async onSynced(info: OwnershipSyncedInfo, sealers: Sealers): Promise<void> {
    // The ownership record holding the pool key id is on disk already (saved before effects run).
    sealers.usePoolKey(poolKeySealer(this.access.session, info.poolKeyKeyId));
    this.synced = info;
  }

  private dekKeyId(): string {
    if (this.synced) return this.synced.dekKeyId;
    requireOwnership(this.ownership.current);
    return fail(
      "OwnershipPending",
      `${this.config.nodeId} has not finished ownership sync yet; retry shortly`,
    );
  }

  /** The data plane's KeyService (the one write path: requireLeader + commit); ServiceUnavailable before it starts. */
  private dataPlaneKeys(): KeyService {
    return (
      this.keyService ?? fail("ServiceUnavailable", `${this.config.nodeId} is still starting; retry shortly`)
    );
  }

  private leaderView() {
    const st = this.raft.status();
    const leaderId = st.lead;
    const leaderAddress =
      leaderId === null
        ? null
        : leaderId === this.config.nodeId
          ? this.config.dataListen
          : (this.peerDataAddresses.get(leaderId) ?? null);
    return { isLeader: st.role === "leader", leaderId, leaderAddress };
  }

  status(): NodeStatus {
    return nodeStatus({
      config: this.config,
      enclave: this.enclave.identity,
      raft: this.raft.status(),
      applied: this.raft.appliedIndex,
      conf: this.raft.confState,
      ownership: this.ownership.current,
      synced: this.synced,
      peerAddress: (id) =>
        id === this.config.nodeId ? this.config.peerListen : (this.links.addressOf(id) ?? ""),
      keyCount: this.keyStore.keyCount,
      startedMs: this.startedMs,
      membership: this.membershipState,
      minPeerSvn: this.minPeerSvn,
      metricsAddress: this.metricsServer?.address ?? "",
    });
  }

  private async startDataPlane(server: LaunchedServer): Promise<void> {
    const { config, logger } = this;
    try {
      const keys = wireKeyService({
        config,
        store: () => this.keyStore,
        raft: this.raft,
        access: this.access,
        index: this.keyIndex,
        proposals: this.proposals,
        reserve: this.keyReserve,
        dekKeyId: () => {
          // Key operations wait for activation (the security domain), then for ownership.
          if (!this.opts.unactivatedKeyOps) this.securityDomain.requireActivated();
          return this.dekKeyId();
        },
        leader: () => this.leaderView(),
        quorum: () => this.quorum(),
        clock: this.wallClock,
        seams: this.seams,
        variants: this.opts.chaos?.unsafeAckBeforeCommit
          ? new Set([...this.variants, "ackBeforeCommit"])
          : this.variants,
        observer: this.opts.observer,
      });
      this.keyService = keys;
      const backups = wireBackupJobs({
        config,
        keys,
        raft: this.raft,
        securityDomain: this.securityDomain,
        store: () => this.keyStore,
        logger,
        now: this.now,
        clock: this.seams.clock,
      });
      this.lifecycleTimer = this.seams.clock.setInterval(
        () => this.runLifecycle(keys),
        LIFECYCLE_INTERVAL_MS,
      );
      const dataPlane = await serveDataPlane({
        server,
        config,
        logger,
        seams: this.seams,
        enclave: this.enclave,
        keys,
        backups,
        securityDomain: this.securityDomain,
        store: () => this.keyStore,
        leader: () => this.leaderView(),
        metrics: this.metrics,
        status: () => this.status(),
        stopped: () => this.stopping,
        now: this.now,
        onAuditOpened: (audit) => {
          this.audit = audit;
        },
      });
      if (!dataPlane) return;
      if (this.stopping) {
        await dataPlane.close(0);
        return;
      }
      this.dataServer = dataPlane;
      logger.info(
        {
          peerAddress: this.peerAddress,
          dataAddress: config.dataListen,
          dataCertFingerprint: dataPlane.certFingerprint,
          mrenclave: this.enclave.identity.mrenclave,
        },
        "ready",
      );
    } catch (e) {
      this.fatal(e);
    }
  }

  private fatal(e: unknown): void {
    if (this.fatalReported) return;
    this.fatalReported = true;
    this.logger.fatal(
      isHsmPoolError(e) ? { code: e.code, error: e.message, details: e.details } : { error: String(e) },
      "node cannot continue",
    );
    this.opts.onFatal(e);
  }

  /** Runs KeyService.runLifecycle on the primary once ownership is synced; failures are retried next tick. */
  private runLifecycle(keys: KeyService): void {
    if (this.lifecycleRunning || this.stopping || !this.synced || !this.leaderView().isLeader) return;
    this.lifecycleRunning = true;
    keys
      .runLifecycle()
      .then((done) => {
        if (done.rotated.length > 0 || done.purged.length > 0)
          this.logger.info(done, "key lifecycle: policy rotations and purges");
      })
      .catch((e: unknown) =>
        this.logger.warn({ error: String(e) }, "key lifecycle run failed; retried next tick"),
      )
      .finally(() => {
        this.lifecycleRunning = false;
      });
  }

  /** Graceful stop: stop accepting, let in-flight calls finish (bounded), flush and close. */
  async stop(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.logger.info("shutting down");
    this.joiner?.stop();
    this.seams.clock.clear(this.lifecycleTimer);
    await this.dataServer?.close(graceMs);
    await this.audit?.close();
    await this.keyReserve
      .close()
      .catch((e: unknown) => this.logger.warn({ error: String(e) }, "discarding reserved keys failed"));
    await this.links.close(graceMs);
    await this.raft.stop();
    await this.ownership.stop();
    await this.metricsServer?.close();
    await this.store.close();
    this.opts.chaos?.stop();
    await this.device.close();
    this.logger.info("stopped");
  }
}

export interface NodeInternals {
  ownership: OwnershipState;
  keyStore: KeyStore;
  role: Role;
  term: number;
  lead: string | null;
  conf: ConfState;
  appliedIndex: number;
  membership: Membership;
}

/** A node whose recovered membership lists others but not itself was removed while it was down. */
function initialMembership(conf: ConfState, self: string): Membership {
  if (conf.voters.includes(self)) return "voter";
  if (conf.learners.includes(self)) return "learner";
  return membersOf(conf).length > 0 ? "removed" : "joining";
}

function membersOf(conf: ConfState): string[] {
  return [...conf.voters, ...conf.learners];
}
