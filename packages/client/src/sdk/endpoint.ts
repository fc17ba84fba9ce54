/**
 * Where an Azure Key Vault SDK finds the pool: the balancer's URL (from hfc.json), the
 * fabric CA that signs the members' certificates, and the resource and tenant of the
 * pool's token challenge — asked of the pool itself (a request without a token gets
 * `401 WWW-Authenticate: Bearer authorization="<authority>", resource="<resource>"`),
 * so this never disagrees with what the members verify.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fail } from "@hsmpool/errors";
import { httpsCall, readHfcInfo, runPaths } from "@hsmpool/wire";

export interface PoolEndpoint {
  /** `https://127.0.0.1:<port>`: the vault URL for KeyClient. */
  url: string;
  /** PEM of the CA the members' TLS certificates chain to (NODE_EXTRA_CA_CERTS). */
  caFile: string;
  /** The token audience; the SDK asks for `<resource>/.default`. */
  resource: string;
  /** The tenant id the challenge's authority names. */
  tenant: string;
  /** The tenant authority URL of the challenge. */
  authority: string;
}

/** The parameters of a `Bearer k="v", ...` challenge. */
export function parseBearerChallenge(header: string): Record<string, string> {
  const m = /^\s*Bearer\s+(.*)$/i.exec(header);
  if (!m) return {};
  const params: Record<string, string> = {};
  for (const p of (m[1] as string).matchAll(/([A-Za-z_]+)\s*=\s*"([^"]*)"/g))
    params[(p[1] as string).toLowerCase()] = p[2] as string;
  return params;
}

async function challengeOf(url: string, ca: string): Promise<string> {
  const answer = await httpsCall(`${url}/keys?api-version=7.6`, { ca, timeoutMs: 10_000 });
  const header = answer.headers["www-authenticate"];
  if (answer.status === 401 && typeof header === "string") return header;
  throw new Error(`the endpoint answered ${answer.status} without a bearer challenge`);
}

export async function discoverEndpoint(runDir: string): Promise<PoolEndpoint> {
  const info = await readHfcInfo(runDir);
  if (!info) return fail("NotFound", `no pool runs in ${runDir} (start one with: hsmpool up)`);
  if (!info.endpointAddress)
    return fail("NotFound", `the HFC of ${runDir} serves no client endpoint (restart it with this version)`);
  const url = `https://${info.endpointAddress}`;
  const caFile = resolve(runPaths(runDir).caCert);
  const ca = await readFile(caFile, "utf8");
  const header = await challengeOf(url, ca).catch((e: Error) =>
    fail("ServiceUnavailable", `the pool endpoint ${url} did not answer the token challenge: ${e.message}`),
  );
  const params = parseBearerChallenge(header);
  const authority = params.authorization ?? params.authorization_uri ?? "";
  const resource = params.resource ?? "";
  if (authority === "" || resource === "")
    fail("Internal", `the pool's challenge lacks authorization or resource: ${header}`);
  const tenant =
    new URL(authority).pathname
      .split("/")
      .filter((s) => s !== "")
      .at(-1) ?? "";
  return { url, caFile, resource, tenant, authority };
}
