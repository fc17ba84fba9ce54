/** What a REST operation receives and answers (transport-free). */
import type { ApiVersion } from "./api-version.js";

export interface RestRequest {
  /** Path parameters of the matched route (name, version, jobId, scope, ...). */
  params: Readonly<Record<string, string | undefined>>;
  query: URLSearchParams;
  /** The parsed JSON body; {} when there was none. */
  body: Record<string, unknown>;
  /** `https://<host the client addressed>`: key ids and nextLinks are built on it. */
  baseUrl: string;
  apiVersion: ApiVersion;
  /** The client's x-ms-client-request-id (kept across its retries): makes a retried write idempotent. */
  requestId?: string;
}

export interface RestResult {
  status: number;
  body?: unknown;
  headers?: Readonly<Record<string, string>>;
}
