/**
 * The HFC process shell: opens the fabric and the fabric CA, places (or resumes)
 * the pool, and runs the supervision and healing loop (supervision.ts: supervisor,
 * health poller, healing loop, with the real seams) beside the control API, the
 * metrics server and the pool endpoint. Decisions live in pure modules (placement,
 * health, status, node-config, healing/); these parts perform effects.
 */
import { randomBytes, randomInt } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { resolve } from "node:path";
import { fail } from "@hsmpool/errors";
import { writeJsonAtomic } from "@hsmpool/files";
import { type InventoryRack, placeMembers } from "@hsmpool/healing";
import { type MetricsServer, serveMetrics } from "@hsmpool/metrics";
import { openFabric } from "@hsmpool/platform";
import type { HfcInfo, MemberSpec, PoolSpec, PoolStatus, TenantBindingRequest } from "@hsmpool/wire";
import {
  allocateLoopbackPorts,
  certDerToPem,
  createCsrKeyPair,
  dataPlaneCredentials,
  isRunning,
  PUBLIC_FILE_MODE,
  poolSpecForFile,
  type RunPaths,
  readHfcInfo,
  readJson,
  readPoolSpec,
  rebaseBundles,
  runPaths,
} from "@hsmpool/wire";
import type { Logger } from "pino";
import type { Balancer } from "./balancer.js";
import { readBundleFacts } from "./bundle-facts.js";
import { ControlApi } from "./control-api.js";
import type { ControlServer } from "./control-server.js";
import { type ControllerContext, type ControllerOptions, POOL_SIZE } from "./controller-context.js";
import { loadHealingState } from "./healing-store.js";
import { poolStatus } from "./health-poller.js";
import { FabricCa } from "./pki.js";
import { startPoolEndpoint } from "./pool-endpoint.js";
import { hostSeams } from "./seams.js";
import { Supervision, type SupervisionParams } from "./supervision.js";

export { type ControllerOptions, POOL_SIZE } from "./controller-context.js";

const POOL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class FabricController {
  private readonly ctx: ControllerContext;
  private readonly supervision: Supervision;
  private readonly controlApi: ControlApi;
  private controlServer: ControlServer | undefined;
  private metricsServer: MetricsServer | undefined;
  private endpoint: Balancer | undefined;
  /** The endpoint port of the previous HFC of this run dir (0: none). */
  private previousEndpointPort = 0;
  private resolveDone!: () => void;
  /** Resolves once the controller has stopped every node and its server. */
  readonly done = new Promise<void>((r) => {
    this.resolveDone = r;
  });

  private constructor(
    supervision: SupervisionParams,
    private readonly preferredControlPort: number,
    private readonly ca: FabricCa,
  ) {
    this.supervision = new Supervision(supervision);
    this.ctx = this.supervision.ctx;
    this.controlApi = new ControlApi(this.ctx, ca, () => void this.shutdown());
  }

  static async start(opts: ControllerOptions): Promise<FabricController> {
    const paths = runPaths(opts.runDir);
    const log = opts.logger;
    const nowMs = opts.nowMs ?? Date.now;
    await mkdir(paths.runDir, { recursive: true, mode: 0o700 });
    const claim = await readHfcInfo(paths.runDir);
    if (claim && claim.pid !== process.pid && isRunning(claim.pid)) {
      fail("Conflict", `an HFC (pid ${claim.pid}) already runs pool ${claim.poolId} in ${paths.runDir}`, {
        pid: claim.pid,
      });
    }
    const fabric = await openFabric(opts.fabricDir);
    const ca = await FabricCa.openOrCreate(paths.pkiDir);
    const pool = await FabricController.loadOrPlacePool(opts, paths, fabric.info.racks, nowMs, log);
    for (const m of pool.members) fabric.server(m.serverId); // a pool.json naming unknown servers fails here
    const seams = hostSeams(opts.launcher);
    const { healing, controlPort } = await loadHealingState(paths, seams.files, pool.members);
    const { members: _, ...poolParams } = pool;
    const preferredPort = opts.controlPort || controlPort || claimPort(claim);
    const controller = new FabricController(
      {
        opts,
        paths,
        fabricDir: fabric.dir,
        pool: poolParams,
        healing,
        inventory: fabric.info.racks,
        log,
        seams,
      },
      preferredPort,
      ca,
    );
    controller.previousEndpointPort = claim?.endpointAddress
      ? Number(claim.endpointAddress.split(":")[1])
      : 0;
    await controller.boot();
    return controller;
  }

  private static async loadOrPlacePool(
    opts: ControllerOptions,
    paths: RunPaths,
    racks: InventoryRack[],
    nowMs: () => number,
    log: Logger,
  ): Promise<PoolSpec> {
    const existing = await readPoolSpec(paths.runDir);
    if (existing) {
      if (opts.poolId !== undefined && opts.poolId !== existing.poolId) {
        fail("Conflict", `${paths.runDir} holds pool ${existing.poolId}, not ${opts.poolId}`, {
          poolId: existing.poolId,
        });
      }
      // A run dir made elsewhere (host ↔ container) resumes here when its release is here too.
      const local = await readBundleFacts(opts.bundleDir).catch(() => undefined);
      const { pool, problem } = await rebaseBundles(paths.runDir, existing, local);
      if (problem) fail("Conflict", problem, { runDir: paths.runDir });
      for (const m of pool.members) {
        const was = existing.members.find((x) => x.id === m.id)?.bundleDir;
        if (was !== m.bundleDir)
          log.warn(
            { nodeId: m.id, was, now: m.bundleDir },
            "bundle not here: same release from this deployment",
          );
      }
      log.info({ poolId: existing.poolId }, "resuming pool from pool.json");
      return pool;
    }
    const poolId = opts.poolId ?? `pool-${randomBytes(4).toString("hex")}`;
    if (!POOL_ID.test(poolId)) {
      fail(
        "BadParameter",
        `pool id must be 1..64 letters, digits, '.', '_' or '-', got ${JSON.stringify(poolId)}`,
      );
    }
    const placementSeed = randomInt(0, 2 ** 31);
    const placed = placeMembers({ racks, count: POOL_SIZE, seed: placementSeed });
    const ports = await allocateLoopbackPorts(2 * POOL_SIZE);
    const bundle = await readBundleFacts(opts.bundleDir).catch(() => undefined);
    const members: MemberSpec[] = placed.map((p, i) => ({
      id: `n${i + 1}`,
      serverId: p.serverId,
      rackId: p.rackId,
      partition: 0,
      peerAddress: `127.0.0.1:${ports[2 * i]}`,
      dataAddress: `127.0.0.1:${ports[2 * i + 1]}`,
      bundleDir: resolve(opts.bundleDir),
      lifecycle: "active",
      mode: "bootstrap",
      replaces: null,
      joinPeers: [],
      minPeerSvn: null,
      svn: bundle?.svn ?? 0,
      mrsigner: bundle?.mrsigner ?? "",
      replacedBy: null,
      wasVoter: true,
    }));
    const identity = (await readJson(paths.identityJson)) as TenantBindingRequest | undefined;
    const pool: PoolSpec = {
      poolId,
      placementSeed,
      members,
      createdMs: nowMs(),
      ...(opts.recover ? { recover: true } : {}),
      ...(identity !== undefined ? { identity } : {}),
    };
    await writeJsonAtomic(paths.poolJson, poolSpecForFile(paths.runDir, pool), PUBLIC_FILE_MODE);
    log.info(
      { poolId, placementSeed, members: members.map((m) => `${m.id}@${m.serverId}/${m.rackId}`) },
      "pool placed",
    );
    return pool;
  }

  private async boot(): Promise<void> {
    const { ctx } = this;
    const identity = await createCsrKeyPair("hsmpool-hfc");
    const issued = await this.ca.issueClientCert(identity.csrDer);
    ctx.credentials = dataPlaneCredentials({
      caCertPem: this.ca.caCertPem,
      certPem: certDerToPem(issued.certDer),
      privateKeyPem: identity.privateKeyPem,
    });
    this.controlServer = await this.controlApi.listen(this.preferredControlPort);
    ctx.controlAddress = this.controlServer.address;
    ctx.controlPort = Number(this.controlServer.address.split(":")[1]);
    this.metricsServer = await serveMetrics({ registry: ctx.metrics.registry });
    ctx.metricsUrl = this.metricsServer.url;
    await this.supervision.takeOver();
    this.endpoint = await startPoolEndpoint(ctx, this.previousEndpointPort);
    const info: HfcInfo = {
      pid: process.pid,
      controlAddress: this.controlServer.address,
      endpointAddress: this.endpoint.address,
      poolId: ctx.pool.poolId,
      fabricDir: ctx.fabricDir,
      startedMs: ctx.nowMs(),
    };
    // hfc.json last: its presence tells the CLI the control API answers.
    await writeJsonAtomic(ctx.paths.hfcJson, info, PUBLIC_FILE_MODE);
    ctx.log.info(
      {
        controlAddress: this.controlServer.address,
        metricsUrl: ctx.metricsUrl,
        poolId: ctx.pool.poolId,
        paused: ctx.healing.paused,
      },
      "HFC ready",
    );
    this.supervision.startPolling();
  }

  status(): PoolStatus {
    return poolStatus(this.ctx);
  }

  /** SIGTERM every node, SIGKILL stragglers after a bounded wait, close the API, remove hfc.json. */
  shutdown(): Promise<void> {
    this.ctx.stopping ??= this.stop();
    return this.ctx.stopping;
  }

  private async stop(): Promise<void> {
    const { ctx } = this;
    ctx.log.info("shutting down");
    await this.supervision.stop();
    await this.controlServer?.close();
    await this.metricsServer?.close();
    await this.endpoint?.close();
    const claim = await readHfcInfo(ctx.paths.runDir).catch(() => undefined);
    if (claim?.pid === process.pid) await rm(ctx.paths.hfcJson, { force: true });
    ctx.log.info({ poolId: ctx.pool.poolId }, "HFC stopped");
    this.resolveDone();
  }
}

function claimPort(claim: HfcInfo | undefined): number {
  return claim ? Number(claim.controlAddress.split(":")[1]) : 0;
}
