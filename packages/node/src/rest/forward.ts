/**
 * A write that reaches a secondary runs on the primary: the secondary tries it
 * locally (NotLeader is thrown before anything changes), then relays the client's
 * request unchanged to the primary's data-plane port over TLS checked against the
 * fabric CA, marked as forwarded so it is never relayed twice. While no primary is
 * known (an election) it waits, bounded, so a client's request spans a failover
 * instead of failing; past the bound the client gets 503 + Retry-After.
 */
import type { IncomingHttpHeaders } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import { isHsmPoolError } from "@hsmpool/errors";
import type { LeaderView } from "../keyvault/key-service.js";
import { type Clock, sleep } from "../seams/index.js";
import type { RestResult } from "./types.js";

export interface RawRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The primary's answer, relayed byte for byte. */
export interface ForwardedAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  raw: Buffer;
}

export interface WriteForwarderOptions {
  nodeId: string;
  leader: () => LeaderView;
  clock: Clock;
  /** The fabric CA the primary's data-plane certificate chains to. */
  caPem: string;
  /** How long a write waits for a primary before 503 (default 15 s). */
  waitMs?: number;
  pollMs?: number;
  /** Per relayed request (default 30 s). */
  timeoutMs?: number;
}

/** Marks a request one member relayed to another (never relayed again). */
export const FORWARDED_HEADER = "x-hsmpool-forwarded-by";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"]);

function copyHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined && !HOP_BY_HOP.has(k) && !k.startsWith(":")) out[k] = v;
  return out;
}

/** The primary answered "not me" as well (it lost leadership meanwhile): try again. */
function saysNotLeader(answer: ForwardedAnswer): boolean {
  if (answer.status !== 503) return false;
  try {
    const body = JSON.parse(answer.raw.toString("utf8")) as { error?: { innererror?: { code?: string } } };
    return body.error?.innererror?.code === "NotLeader";
  } catch {
    return false;
  }
}

export class WriteForwarder {
  private readonly agent: Agent;
  private readonly waitMs: number;
  private readonly pollMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: WriteForwarderOptions) {
    this.agent = new Agent({ keepAlive: true, ca: opts.caPem, maxSockets: 64 });
    this.waitMs = opts.waitMs ?? 15_000;
    this.pollMs = opts.pollMs ?? 100;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async runOrForward(
    local: () => Promise<RestResult>,
    raw: RawRequest,
  ): Promise<RestResult | ForwardedAnswer> {
    const { clock } = this.opts;
    const deadline = clock.now() + this.waitMs;
    for (;;) {
      let refusal: unknown;
      try {
        return await local();
      } catch (e) {
        if (!isHsmPoolError(e, "NotLeader")) throw e;
        refusal = e;
      }
      const view = this.opts.leader();
      if (!view.isLeader && view.leaderAddress) {
        const answer = await this.relay(view.leaderAddress, raw).catch(() => null);
        if (answer && !saysNotLeader(answer)) return answer;
      }
      if (clock.now() >= deadline) throw refusal;
      await sleep(clock, this.pollMs);
    }
  }

  private relay(address: string, raw: RawRequest): Promise<ForwardedAnswer> {
    const at = address.lastIndexOf(":");
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          agent: this.agent,
          host: address.slice(0, at),
          port: Number(address.slice(at + 1)),
          method: raw.method,
          path: raw.url,
          headers: {
            ...copyHeaders(raw.headers),
            "content-length": String(raw.body.length),
            [FORWARDED_HEADER]: this.opts.nodeId,
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 502,
              headers: copyHeaders(res.headers),
              raw: Buffer.concat(chunks),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("forwarded request timed out")));
      req.on("error", reject);
      req.end(raw.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
