/**
 * One HTTPS request to a pool's Key Vault REST surface, as the Azure SDKs send it:
 * server TLS checked against the fabric CA, an optional bearer token, a JSON body.
 * Resolves with the status, headers and body text of any answer (an error status is
 * an answer, not a rejection); rejects only when no answer arrives.
 */
import type { IncomingHttpHeaders } from "node:http";
import { request } from "node:https";

export interface HttpsCallOptions {
  method?: string;
  /** PEM of the CA the server's certificate chains to. */
  ca: string;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** A JSON text, sent with `content-type: application/json`. */
  body?: string;
  /** Give up (reject) when no answer arrives within this long. */
  timeoutMs?: number;
}

export interface HttpsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export function httpsCall(url: string, opts: HttpsCallOptions): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? "GET",
        ca: opts.ca,
        // A fresh connection per call: a test's calls never ride a connection a restarted member closed.
        agent: false,
        headers: {
          ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** A JSON answer's body parsed (undefined for an empty one). */
export function jsonOf(answer: HttpsAnswer): unknown {
  return answer.text === "" ? undefined : JSON.parse(answer.text);
}
