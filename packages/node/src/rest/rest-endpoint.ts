/**
 * The Key Vault REST endpoint as an HTTP request listener (mounted on the data-plane
 * TLS port by data-server.ts). Order of checks, as the SDK's challenge flow needs:
 * no Authorization → 401 + WWW-Authenticate (empty body, nothing else looked at);
 * then the route and the api-version (an operation the pool lacks answers 501 here), the
 * bearer token and the RBAC data action; then
 * the body (JSON object, bounded size); then the operation. A write that reaches a
 * secondary is forwarded to the primary inside the pool (forward.ts), so clients
 * never see NotLeader. Every refusal happens before anything changes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { type DataAction, normalizeScope, type Principal } from "@hsmpool/pool";
import type { Logger } from "pino";
import type { AuditEntry } from "../audit/audit-log.js";
import type { Randomness } from "../seams/index.js";
import { requireApiVersion, requireSince } from "./api-version.js";
import { FORWARDED_HEADER, type ForwardedAnswer, type WriteForwarder } from "./forward.js";
import { restErrorOf } from "./rest-errors.js";
import { matchRoute, type RestServices, type RouteMatch } from "./routes.js";
import type { RestRequest, RestResult } from "./types.js";

/** The token check of the pool's identity (the challenge parameters and the one authorisation entry point). */
export interface RestAuthority {
  challenge(): { authorization: string; resource: string };
  /**
   * Verifies the bearer token and the data action at the scope; throws Unauthenticated or Forbidden.
   * `authenticated` hears who sent the token as soon as it verifies (also when the action is then
   * refused), for the audit record. One check: a recovering pool verifies the recovery exchange's
   * tokens against its provisional binding, which a separate check of the committed tenant refused.
   */
  authorize(
    token: string,
    request: { dataAction: DataAction | null; scope: string; operationId: string },
    authenticated: (principal: Principal) => void,
  ): Promise<void>;
}

export interface RestEndpointOptions {
  services: RestServices;
  authority: RestAuthority;
  forwarder: WriteForwarder;
  /** For x-ms-request-id. */
  random: Randomness;
  logger: Logger;
  /**
   * Every call that presented a token is recorded: names, numbers and codes only, never a token, body or key
   * material; `operation` is the service's operationId ("Unknown" when the path named none). A bare challenge is
   * not an operation.
   */
  audit: (entry: AuditEntry) => void;
}

/** Bodies above this are refused (a key backup blob is the largest legitimate body). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;
/** What the data-plane server mounts for every request that is not gRPC. */
export type RestListener = (req: Request, res: Response) => void;

/** The host the client addressed (HTTP/1.1 Host, HTTP/2 :authority). */
const hostOf = (req: Request): string =>
  req.headers.host ?? (req.headers[":authority"] as string | undefined) ?? "localhost";

function readBody(req: Request): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HsmPoolError("BadParameter", `the request body exceeds ${MAX_BODY_BYTES} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseBody(bytes: Buffer): Record<string, unknown> {
  if (bytes.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    return fail("BadParameter", `the request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return fail("BadParameter", "the request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** The RBAC scope a request acts on: the key for key operations, `/keys` for the key list, else `/`. */
function scopeOf(match: RouteMatch, path: string): string {
  if (match.params.scope !== undefined) return normalizeScope(match.params.scope, "scope");
  const name = match.params.name;
  if (name !== undefined && (path.startsWith("/keys/") || path.startsWith("/deletedkeys/")))
    return `/keys/${name}`;
  if (path.startsWith("/keys") || path.startsWith("/deletedkeys")) return "/keys";
  return "/";
}

function bearerOf(header: string): string {
  const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
  if (!m) fail("Unauthenticated", "the Authorization header must be 'Bearer <token>'");
  return (m as RegExpExecArray)[1] as string;
}

export function restEndpoint(opts: RestEndpointOptions) {
  const { authority, logger } = opts;

  function send(res: Response, req: Request, result: RestResult): void {
    const body = result.body === undefined ? "" : JSON.stringify(result.body);
    const clientRequestId = req.headers["x-ms-client-request-id"];
    res.writeHead(result.status, {
      ...(body !== "" ? { "content-type": "application/json; charset=utf-8" } : {}),
      "content-length": Buffer.byteLength(body),
      "x-ms-request-id": opts.random.uuid(),
      ...(typeof clientRequestId === "string" ? { "x-ms-client-request-id": clientRequestId } : {}),
      ...result.headers,
    });
    res.end(body);
  }

  function challenge(): RestResult {
    const { authorization, resource } = authority.challenge();
    return {
      status: 401,
      headers: { "www-authenticate": `Bearer authorization="${authorization}", resource="${resource}"` },
    };
  }

  async function answer(req: Request, seen: CallSeen): Promise<RestResult | ForwardedAnswer> {
    const authorization = req.headers.authorization;
    if (authorization === undefined || authorization === "") return challenge();
    seen.audited = true;
    // Concatenated, not resolved: scope "/" makes paths like "//providers/...", which URL resolution reads as a host.
    const url = new URL(`https://placeholder${req.url ?? "/"}`);
    const match = matchRoute(req.method ?? "GET", url.pathname);
    seen.operation = match.route.operationId;
    seen.key = match.params.name ?? match.params.id ?? "";
    seen.version = /^[1-9][0-9]{0,9}$/.test(match.params.version ?? "") ? Number(match.params.version) : 0;
    const apiVersion = requireApiVersion(url.searchParams.get("api-version"));
    requireSince(apiVersion, match.route.since, match.route.operationId);
    const handle = match.route.handle;
    if (!handle) {
      return fail(
        "NotImplemented",
        `${match.route.operationId} (${match.route.method} ${match.route.path}) is not implemented by this pool`,
      );
    }
    const token = bearerOf(authorization);
    await authority.authorize(
      token,
      {
        dataAction: match.route.dataAction,
        scope: scopeOf(match, url.pathname),
        operationId: match.route.operationId,
      },
      (principal) => {
        seen.principal = principal;
      },
    );
    const bytes = await readBody(req);
    const body = parseBody(bytes);
    const request: RestRequest = {
      params: match.params,
      query: url.searchParams,
      body,
      baseUrl: `https://${hostOf(req)}`,
      apiVersion,
      ...(seen.clientRequestId !== undefined ? { requestId: seen.clientRequestId } : {}),
    };
    const forwarded = req.headers[FORWARDED_HEADER] !== undefined;
    if (!match.route.write || forwarded) return handle(opts.services, request);
    return opts.forwarder.runOrForward(() => handle(opts.services, request), {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      headers: { ...req.headers, host: hostOf(req) },
      body: bytes,
    });
  }

  function record(seen: CallSeen, result: string): void {
    if (!seen.audited) return;
    opts.audit({
      principal: seen.principal?.name ?? "",
      principalId: seen.principal?.oid ?? "",
      operation: seen.operation,
      key: seen.key,
      version: seen.version,
      result,
      requestId: seen.clientRequestId ?? opts.random.uuid(),
    });
  }

  return (req: Request, res: Response): void => {
    const clientRequestId = req.headers["x-ms-client-request-id"];
    const seen: CallSeen = {
      audited: false,
      operation: "Unknown",
      key: "",
      version: 0,
      ...(typeof clientRequestId === "string" && REQUEST_ID.test(clientRequestId) ? { clientRequestId } : {}),
    };
    answer(req, seen)
      .then(
        (result) => {
          if ("raw" in result) {
            record(seen, forwardedResult(result));
            (res as ServerResponse).writeHead(result.status, result.headers);
            res.end(result.raw);
          } else {
            record(seen, "OK");
            send(res, req, result);
          }
        },
        (e: unknown) => {
          if (!isHsmPoolError(e))
            logger.error({ error: String(e), path: req.url }, "internal error in a REST call");
          record(seen, isHsmPoolError(e) ? e.code : "Internal");
          send(res, req, restErrorOf(e));
        },
      )
      .catch((e: unknown) => {
        logger.error({ error: String(e) }, "could not answer a REST call");
        if ("stream" in res) res.stream.destroy();
        else res.destroy();
      });
  };
}

/** What an audit record learns of a call as it is answered. */
interface CallSeen {
  audited: boolean;
  principal?: Principal;
  operation: string;
  key: string;
  version: number;
  clientRequestId?: string;
}

/** A relayed answer's result: "OK", or the pool code the primary's error carries (innererror, else code). */
function forwardedResult(answer: ForwardedAnswer): string {
  if (answer.status < 400) return "OK";
  try {
    const error = (
      JSON.parse(answer.raw.toString("utf8")) as {
        error?: { code?: unknown; innererror?: { code?: unknown } };
      }
    ).error;
    const code = error?.innererror?.code ?? error?.code;
    return typeof code === "string" && /^[A-Za-z]{1,40}$/.test(code) ? code : `HTTP${answer.status}`;
  } catch {
    return `HTTP${answer.status}`;
  }
}
