/**
 * `hsmpool dashboard`: an HTTP server on 127.0.0.1 that serves one self-contained page
 * (no CDN), a live feed of the pool (Server-Sent Events, one JSON view every poll) and the
 * fault buttons' endpoint, which goes through the HFC's control API like `hsmpool kill`
 * (a partition needs a pool of debug-signed nodes, `hsmpool up --test-hooks`; the HFC says so otherwise),
 * and the audit panel's endpoint, which reads the pool's audit with the token the page sends (audit-panel.ts).
 *
 * Works for any deployment whose run dir names a reachable HFC (`hsmpool up`, compose).
 * A fault request must carry the page's own token in a header, so another web page open
 * in the same browser cannot press the buttons (it cannot read the token, and a custom
 * header on a cross-origin request needs a CORS preflight this server never grants).
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { FabricControllerClient, PoolStatus } from "@hsmpool/wire";
import { hfcForRunDir } from "../sdk/pool-client.js";
import { parseAuditRequest, readAuditWithToken } from "./audit-panel.js";
import { dashboardPage } from "./page.js";
import { countersOf, type RatePoint, type RequestCounters, rateBetween } from "./request-rates.js";
import { type DashboardView, dashboardView, type FabricRack, racksOf } from "./view.js";

const POLL_MS = 500;
const RATE_EVERY_MS = 1000;
const HISTORY_POINTS = 90;
const MAX_BODY_BYTES = 16_384;

export interface DashboardOptions {
  runDir: string;
  /** 0: any free port. */
  port: number;
}

export interface Dashboard {
  url: string;
  close(): Promise<void>;
}

export const FAULT_ACTIONS = [
  "kill",
  "pause",
  "resume",
  "lose-server",
  "partition",
  "heal-partitions",
] as const;
export type FaultAction = (typeof FAULT_ACTIONS)[number];

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const token = randomBytes(16).toString("hex");
  const feed = new PoolFeed(opts.runDir);
  await feed.poll();
  const server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => sendJson(res, 500, { error: String(e) }));
  });
  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/") {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        // Self-contained: the page loads nothing from anywhere, and talks only to this server.
        "content-security-policy":
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
      });
      res.end(dashboardPage(token, feed.view()));
      return;
    }
    if (req.method === "GET" && path === "/api/view") return sendJson(res, 200, feed.view());
    if (req.method === "GET" && path === "/events") {
      // One event per response, then the browser's EventSource reconnects after `retry` ms: a stream
      // that never ends would count as a pending fetch for ever (headless Chromium's virtual time waits
      // for those), and a proxy in between cannot hold updates back.
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
      res.end(`retry: ${POLL_MS}\ndata: ${JSON.stringify(feed.view())}\n\n`);
      return;
    }
    if (req.method === "POST" && (path === "/api/fault" || path === "/api/audit")) {
      if (req.headers["x-dashboard-token"] !== token)
        return sendJson(res, 403, { error: "this request did not come from the dashboard page" });
      const body = await readBody(req);
      try {
        if (path === "/api/audit") {
          const { token: bearer, after } = parseAuditRequest(body);
          return sendJson(res, 200, await readAuditWithToken(opts.runDir, bearer, after));
        }
        const done = await feed.fault(body);
        return sendJson(res, 200, { ok: true, message: done });
      } catch (e) {
        const err = isHsmPoolError(e) ? e : new HsmPoolError("Internal", String(e));
        return sendJson(res, err.httpStatus, { error: err.message, code: err.code });
      }
    }
    sendJson(res, 404, { error: "not found" });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const timer = setInterval(() => void feed.poll(), POLL_MS);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      clearInterval(timer);
      feed.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The pool as last seen through the HFC, and each member's request rates. */
class PoolFeed {
  private hfc: FabricControllerClient | undefined;
  private status: PoolStatus | null = null;
  private error = "";
  private racks: FabricRack[] = [];
  private racksFrom = "";
  private readonly counters = new Map<string, RequestCounters>();
  private readonly rates = new Map<string, RatePoint[]>();
  private lastRatesMs = 0;
  private polling = false;
  private partitioned: string[] = [];

  constructor(private readonly runDir: string) {}

  view(): DashboardView {
    return dashboardView({
      nowMs: Date.now(),
      status: this.status,
      error: this.error,
      racks: this.racks,
      rates: this.rates,
      partitioned: this.partitioned,
    });
  }

  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      this.hfc ??= await hfcForRunDir(this.runDir);
      this.status = await this.hfc.status(2000);
      this.error = "";
      await this.loadRacks(this.status.fabricDir);
      if (Date.now() - this.lastRatesMs >= RATE_EVERY_MS) await this.sampleRates(this.status);
    } catch (e) {
      // The HFC may be restarting: show the last status greyed out, and try the run dir again next time.
      this.error = isHsmPoolError(e) ? e.message : String(e);
      this.hfc?.close();
      this.hfc = undefined;
    } finally {
      this.polling = false;
    }
  }

  private async loadRacks(fabricDir: string): Promise<void> {
    if (fabricDir === this.racksFrom && this.racks.length > 0) return;
    const json = await readFile(join(fabricDir, "fabric.json"), "utf8")
      .then((t) => JSON.parse(t) as unknown)
      .catch(() => undefined);
    this.racks = racksOf(json);
    this.racksFrom = fabricDir;
  }

  private async sampleRates(status: PoolStatus): Promise<void> {
    const now = Date.now();
    this.lastRatesMs = now;
    await Promise.all(
      status.members.map(async (m) => {
        if (m.metricsUrl === "" || m.health !== "up") return;
        const text = await fetch(m.metricsUrl, { signal: AbortSignal.timeout(1000) })
          .then((r) => (r.ok ? r.text() : undefined))
          .catch(() => undefined);
        if (text === undefined) return;
        let after: RequestCounters;
        try {
          after = countersOf(text, now);
        } catch {
          return;
        }
        const before = this.counters.get(m.id);
        this.counters.set(m.id, after);
        const point = before ? rateBetween(before, after) : null;
        if (!point) return;
        const series = this.rates.get(m.id) ?? [];
        series.push(point);
        if (series.length > HISTORY_POINTS) series.splice(0, series.length - HISTORY_POINTS);
        this.rates.set(m.id, series);
      }),
    );
  }

  /** One fault button, through the HFC's control API. Returns what was done, in one line. */
  async fault(body: unknown): Promise<string> {
    const { action, target } = (body ?? {}) as { action?: unknown; target?: unknown };
    if (!FAULT_ACTIONS.includes(action as FaultAction)) {
      throw new HsmPoolError("BadParameter", `action must be one of ${FAULT_ACTIONS.join(", ")}`);
    }
    if (typeof target !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(target)) {
      throw new HsmPoolError("BadParameter", "target must be a member id, primary, secondary or a server id");
    }
    const hfc = this.hfc ?? (await hfcForRunDir(this.runDir));
    this.hfc = hfc;
    switch (action as FaultAction) {
      case "kill": {
        const r = await hfc.kill(target, "SIGKILL");
        return `killed ${r.nodeId} (pid ${r.pid})`;
      }
      case "pause": {
        const r = await hfc.kill(target, "SIGSTOP");
        return `paused ${r.nodeId} (SIGSTOP, pid ${r.pid})`;
      }
      case "resume": {
        const r = await hfc.kill(target, "SIGCONT");
        return `resumed ${r.nodeId} (SIGCONT, pid ${r.pid})`;
      }
      case "lose-server": {
        const r = await hfc.loseServer(target);
        return `server ${r.serverId} lost; fenced ${r.fenced.join(", ") || "nothing"}`;
      }
      case "partition": {
        const r = await hfc.partition(target);
        this.partitioned = r.isolated;
        return `${r.nodeId} partitioned from its peers (cut off: ${r.isolated.join(", ")}); "Heal partition" reconnects it`;
      }
      case "heal-partitions": {
        const r = await hfc.healPartitions();
        this.partitioned = [];
        return r.healed.length > 0
          ? `partition healed: ${r.healed.join(", ")} reconnected`
          : "no partition to heal";
      }
    }
  }

  close(): void {
    this.hfc?.close();
  }
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HsmPoolError("BadParameter", "request body too large");
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HsmPoolError("BadParameter", "request body must be JSON");
  }
}
