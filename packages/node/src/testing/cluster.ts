/**
 * Real node processes for e2e tests: a run directory laid out as the HFC contract
 * says (fabric, pki/ca.crt, nodes/<id>/{config.json,node.log,state/}), the compiled
 * node (packages/node/dist/main.js, signed) spawned per member, and mTLS clients for
 * KeyVault / NodeControl. Everything listens on 127.0.0.1 only.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import type { Fabric } from "@hsmpool/platform";
import { poolResourceUri } from "@hsmpool/pool";
import { createCustomerKeyPair } from "@hsmpool/security-domain";
import type { NodeStatus } from "@hsmpool/wire";
import { allocateLoopbackPort, poolProto } from "@hsmpool/wire";
import type { NodeConfig } from "../config.js";
import { makeFabric } from "./fixtures.js";
import { type ClientCredentialsPem, TestCa } from "./test-ca.js";
import { TestTenant } from "./test-tenant.js";

export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const REPO_ROOT = resolve(PACKAGE_DIR, "../..");
export const BUNDLE_DIR = join(PACKAGE_DIR, "dist");
const MAIN = join(BUNDLE_DIR, "main.js");

/** Compiles the node package and signs its bundle, as `npm run build` does. */
export function buildAndSignNode(): void {
  execFileSync("npx", ["--no-install", "tsc", "-b", "packages/node"], { cwd: REPO_ROOT, stdio: "pipe" });
  execFileSync(process.execPath, [join(PACKAGE_DIR, "scripts/sign-bundle.mjs"), "--quiet"], {
    cwd: REPO_ROOT,
    stdio: "pipe",
  });
}

/** Ports this test process has handed out (a draw repeats one now and then: it is drawn again). */
const handedOut = new Set<number>();

/**
 * A free loopback port for a member process to bind later: drawn below the kernel's ephemeral range
 * (@hsmpool/wire allocateLoopbackPort), where no outgoing connection on the machine takes it first.
 * listen(0) handed out ephemeral ports, which a loaded machine's client sockets can take before the member binds.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await allocateLoopbackPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export interface Member {
  config: NodeConfig;
  configPath: string;
  logPath: string;
  process: ChildProcess | null;
  exit: Promise<number | null> | null;
}

export type GrpcClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** Who a test client is: the tenant's admin by default, another of its principals, or no token at all. */
export interface ClientOptions {
  withToken?: boolean;
  /** Another tenant's admin (or `principal`), e.g. the old pool's customer after a recovery. */
  tenant?: TestTenant;
  principal?: { oid: string; name: string };
}

export class TestCluster {
  readonly members = new Map<string, Member>();
  /** The customer tenant the pool is bound to; its admin signs every KeyVault call of `keyVault()`. */
  readonly tenant = new TestTenant();
  private clientCreds!: ClientCredentialsPem;
  private caServer!: { address: string; stop: () => Promise<void> };
  private readonly clients: grpc.Client[] = [];
  /** Why the latest status() call got no answer (for test diagnostics). */
  lastStatusError: unknown = null;

  private constructor(
    readonly runDir: string,
    readonly fabric: Fabric,
    readonly ca: TestCa,
    private readonly execArgv: readonly string[],
  ) {}

  static async create(
    runDir: string,
    ids = ["n1", "n2", "n3"],
    opts: {
      poolId?: string;
      snapshotEveryEntries?: number;
      /** Servers (one per rack) beyond the founding members', for replacements. */
      spareServers?: number;
      /** The signed bundle every founding member launches (default: the built one). */
      bundleDir?: string;
      minPeerSvn?: number;
      /** A blank pool in recovery mode (hsmpool up --recover): it waits for an SD upload. */
      recover?: boolean;
      /** Node flags for every member process (e.g. a preload that records what it loads). */
      execArgv?: string[];
    } = {},
  ): Promise<TestCluster> {
    const fabric = await makeFabric(runDir, ids.length + (opts.spareServers ?? 0));
    const ca = await TestCa.create();
    const cluster = new TestCluster(runDir, fabric, ca, opts.execArgv ?? []);
    cluster.caServer = await ca.serve();
    cluster.clientCreds = await ca.clientCredentials();
    await mkdir(join(runDir, "pki"), { recursive: true });
    const caPath = join(runDir, "pki", "ca.crt");
    await writeFile(caPath, ca.certPem);
    const servers = fabric.servers();
    const peers: { id: string; address: string }[] = [];
    for (const id of ids) peers.push({ id, address: `127.0.0.1:${await freePort()}` });
    for (const [i, id] of ids.entries()) {
      const dir = join(runDir, "nodes", id);
      await mkdir(dir, { recursive: true });
      const config: NodeConfig = {
        nodeId: id,
        poolId: opts.poolId ?? "pool-test",
        mode: "bootstrap",
        fabricDir: fabric.dir,
        serverId: servers[i]!.id,
        partition: 0,
        bundleDir: opts.bundleDir ?? BUNDLE_DIR,
        stateDir: join(dir, "state"),
        peerListen: peers[i]!.address,
        dataListen: `127.0.0.1:${await freePort()}`,
        peers,
        hfcAddress: cluster.caServer.address,
        fabricCaCertPath: caPath,
        electionTickMs: 100,
        electionTicks: 10,
        electionJitterTicks: 5,
        heartbeatTicks: 1,
        snapshotEveryEntries: opts.snapshotEveryEntries ?? 1000,
        replaces: null,
        minPeerSvn: opts.minPeerSvn ?? null,
        joinTimeoutMs: 120_000,
        recover: opts.recover ?? false,
        identity: cluster.tenant.bindingRequest(),
      };
      await cluster.addMember(config);
    }
    return cluster;
  }

  private async addMember(config: NodeConfig): Promise<Member> {
    const dir = join(this.runDir, "nodes", config.nodeId);
    await mkdir(dir, { recursive: true });
    const configPath = join(dir, "config.json");
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
    const member: Member = { config, configPath, logPath: join(dir, "node.log"), process: null, exit: null };
    this.members.set(config.nodeId, member);
    return member;
  }

  /**
   * Writes the config of a blank node in join mode on the first server no member uses
   * (as the HFC does for a replacement): `peers` = the live members to ask.
   */
  async addJoiner(
    id: string,
    opts: {
      peers: string[];
      replaces?: string;
      bundleDir?: string;
      minPeerSvn?: number;
      joinTimeoutMs?: number;
    },
  ): Promise<Member> {
    const used = new Set([...this.members.values()].map((m) => m.config.serverId));
    const server = this.fabric.servers().find((s) => !used.has(s.id));
    if (!server) throw new Error("no spare server left in the test fabric");
    const template = this.member(opts.peers[0] ?? "").config;
    return this.addMember({
      ...template,
      nodeId: id,
      mode: "join",
      serverId: server.id,
      bundleDir: opts.bundleDir ?? BUNDLE_DIR,
      stateDir: join(this.runDir, "nodes", id, "state"),
      peerListen: `127.0.0.1:${await freePort()}`,
      dataListen: `127.0.0.1:${await freePort()}`,
      peers: opts.peers.map((p) => ({ id: p, address: this.member(p).config.peerListen })),
      replaces: opts.replaces ?? null,
      minPeerSvn: opts.minPeerSvn ?? null,
      joinTimeoutMs: opts.joinTimeoutMs ?? 120_000,
    });
  }

  member(id: string): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** Spawns the node process (stdout+stderr appended to node.log, like the HFC does). */
  async start(id: string): Promise<void> {
    const m = this.member(id);
    const log = await open(m.logPath, "a");
    const child = spawn(process.execPath, [...this.execArgv, MAIN, "--config", m.configPath], {
      cwd: REPO_ROOT,
      stdio: ["ignore", log.fd, log.fd],
      detached: true,
    });
    await log.close();
    m.process = child;
    m.exit = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  /** Sends `signal` and waits for the process to exit; returns its exit code. */
  async signal(id: string, signal: NodeJS.Signals): Promise<number | null> {
    const m = this.member(id);
    if (!m.process || !m.exit) return null;
    m.process.kill(signal);
    const code = await m.exit;
    m.process = null;
    m.exit = null;
    return code;
  }

  async log(id: string): Promise<string> {
    return readFile(this.member(id).logPath, "utf8").catch(() => "");
  }

  private client(
    kind: "KeyVault" | "NodeControl" | "SecurityDomain" | "AccessControl",
    address: string,
    opts: ClientOptions = {},
  ): GrpcClient {
    const Ctor = poolProto()[kind].ctor;
    const tls = grpc.credentials.createSsl(
      Buffer.from(this.clientCreds.caPem),
      Buffer.from(this.clientCreds.keyPem),
      Buffer.from(this.clientCreds.certPem),
    );
    const poolId = this.members.values().next().value?.config.poolId ?? "pool-test";
    const creds =
      opts.withToken === false
        ? tls
        : grpc.credentials.combineChannelCredentials(
            tls,
            (opts.tenant ?? this.tenant).callCredentials(poolResourceUri(poolId), opts.principal),
          );
    // The node's certificate names 127.0.0.1 and localhost; SNI with an IP is not allowed, so use the name.
    const client = new Ctor(address, creds, {
      "grpc.ssl_target_name_override": "localhost",
    }) as unknown as GrpcClient;
    this.clients.push(client);
    return client;
  }

  /** KeyVault as the tenant's admin (Administrator + Crypto User); `withToken: false` sends the client certificate only. */
  keyVault(id: string, opts: ClientOptions = {}): GrpcClient {
    return this.client("KeyVault", this.member(id).config.dataListen, opts);
  }

  securityDomain(id: string, opts: ClientOptions = {}): GrpcClient {
    return this.client("SecurityDomain", this.member(id).config.dataListen, opts);
  }

  accessControl(id: string, opts: ClientOptions = {}): GrpcClient {
    return this.client("AccessControl", this.member(id).config.dataListen, opts);
  }

  /**
   * Activates the pool as a customer would: three RSA key pairs, `sd download` with quorum 2
   * on the primary `id`. Returns the SD file and the private keys (PEM) for recovery tests.
   */
  async activate(id: string): Promise<{ securityDomainJson: string; sdId: string; privateKeys: string[] }> {
    const pairs = await Promise.all([1, 2, 3].map((i) => createCustomerKeyPair(`test-officer-${i}`)));
    const r = await call<{ securityDomainJson: string; sdId: string }>(
      this.securityDomain(id),
      "Download",
      { certificatesPem: pairs.map((p) => p.certificatePem), quorum: 2 },
      60_000,
    );
    return { ...r, privateKeys: pairs.map((p) => p.privateKeyPem) };
  }

  /** NodeControl.Status, or null while the node does not answer. */
  async status(id: string, timeoutMs = 1_000): Promise<NodeStatus | null> {
    const client = this.client("NodeControl", this.member(id).config.dataListen);
    try {
      return await call<NodeStatus>(client, "Status", {}, timeoutMs);
    } catch (e) {
      this.lastStatusError = e;
      return null;
    } finally {
      client.close();
    }
  }

  async stopAll(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    for (const id of this.members.keys()) await this.signal(id, signal);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    await this.stopAll();
    await this.caServer.stop();
  }
}

export interface CallError extends Error {
  code: number;
  details: string;
  metadata: grpc.Metadata;
}

/** One unary call with a deadline. */
export function call<T>(
  client: GrpcClient,
  method: string,
  request: unknown,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = client[method] as (
      req: unknown,
      options: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: T) => void,
    ) => void;
    fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res as T),
    );
  });
}

/** Polls `probe` until it returns a value (not undefined/null/false) or the deadline passes. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`,
  );
}
