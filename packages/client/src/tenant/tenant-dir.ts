/**
 * The simulated identity provider on the customer's side (an Entra stand-in): a
 * directory the HFC never reads, holding
 *   tenant.json      { tenantId, issuer, activeKid }                 public
 *   jwks.json        { keys: [public EC P-256 JWKs] }                public (goes to the pool)
 *   principals.json  { principals: { <name>: { oid } } }             public
 *   keys/<kid>.pem   the tenant's PKCS#8 token-signing keys, 0600    the IdP's secret
 * Creation is atomic (built in a temporary directory, then renamed), so concurrent
 * `hsmpool up`s sharing the default tenant never see half a tenant.
 */
import { createPrivateKey, type KeyObject, randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { generateIsolatedKeyPairSync } from "@hsmpool/platform";
import { issuerOf, type TenantBinding, type TenantJwk, validateJwks } from "@hsmpool/pool";

export const DEFAULT_TENANT_DIR = ".hsmpool/tenant";
export const DEFAULT_PRINCIPAL = "admin";
const PRINCIPAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

interface TenantFile {
  tenantId: string;
  issuer: string;
  activeKid: string;
}

export interface TenantPrincipal {
  name: string;
  oid: string;
}

export class TenantDirectory {
  private constructor(
    readonly dir: string,
    readonly tenantId: string,
    readonly issuer: string,
    readonly activeKid: string,
    readonly jwks: { keys: TenantJwk[] },
    private readonly principals: Map<string, string>,
  ) {}

  /** Creates a tenant with one signing key (and, if given, principals); Conflict if `dir` holds one. */
  static async init(dir: string, principals: string[] = []): Promise<TenantDirectory> {
    const target = resolve(dir);
    if (await TenantDirectory.exists(target)) fail("Conflict", `${dir} already holds a tenant`, { dir });
    const tmp = join(dirname(target), `.${basename(target)}.tmp-${randomBytes(6).toString("hex")}`);
    try {
      await mkdir(join(tmp, "keys"), { recursive: true, mode: 0o700 });
      const tenantId = randomUUID();
      const { kid, publicJwk } = await writeSigningKey(tmp);
      const tenant: TenantFile = { tenantId, issuer: issuerOf(tenantId), activeKid: kid };
      await writeJson(join(tmp, "tenant.json"), tenant);
      await writeJson(join(tmp, "jwks.json"), { keys: [publicJwk] });
      const byName: Record<string, { oid: string }> = {};
      for (const name of principals) byName[requirePrincipalName(name)] = { oid: randomUUID() };
      await writeJson(join(tmp, "principals.json"), { principals: byName });
      await mkdir(dirname(target), { recursive: true });
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      if (await TenantDirectory.exists(target)) fail("Conflict", `${dir} already holds a tenant`, { dir });
      throw e;
    }
    return TenantDirectory.open(dir);
  }

  /** Opens `dir`, or creates it with `principals` when it holds no tenant (a race loser reuses the winner's). */
  static async openOrInit(
    dir: string,
    principals: string[],
  ): Promise<{ tenant: TenantDirectory; created: boolean }> {
    if (await TenantDirectory.exists(resolve(dir)))
      return { tenant: await TenantDirectory.open(dir), created: false };
    try {
      return { tenant: await TenantDirectory.init(dir, principals), created: true };
    } catch (e) {
      if (isHsmPoolError(e, "Conflict")) return { tenant: await TenantDirectory.open(dir), created: false };
      throw e;
    }
  }

  static async exists(dir: string): Promise<boolean> {
    return readFile(join(dir, "tenant.json")).then(
      () => true,
      () => false,
    );
  }

  static async open(dir: string): Promise<TenantDirectory> {
    const tenant = (await readJson(join(dir, "tenant.json"), dir)) as Partial<TenantFile>;
    const jwks = validateJwks(await readJson(join(dir, "jwks.json"), dir), `${dir}/jwks.json`);
    const principals = (await readJson(join(dir, "principals.json"), dir)) as {
      principals?: Record<string, { oid?: unknown }>;
    };
    if (typeof tenant.tenantId !== "string" || typeof tenant.activeKid !== "string") {
      fail("BadParameter", `${dir}/tenant.json is not a tenant file`, { dir });
    }
    const map = new Map<string, string>();
    for (const [name, p] of Object.entries(principals.principals ?? {})) {
      if (typeof p?.oid === "string") map.set(name, p.oid);
    }
    return new TenantDirectory(dir, tenant.tenantId, issuerOf(tenant.tenantId), tenant.activeKid, jwks, map);
  }

  /** The public part the pool commits: id, issuer, JWKS. */
  binding(): TenantBinding {
    return { tenantId: this.tenantId, issuer: this.issuer, jwks: this.jwks };
  }

  listPrincipals(): TenantPrincipal[] {
    return [...this.principals]
      .map(([name, oid]) => ({ name, oid }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  principal(name: string): TenantPrincipal {
    const oid = this.principals.get(name);
    if (oid === undefined) {
      fail(
        "NotFound",
        `tenant ${this.dir} has no principal ${JSON.stringify(name)} (add it with \`hsmpool tenant add-principal ${name}\`)`,
        {
          principal: name,
        },
      );
    }
    return { name, oid };
  }

  /** Name of an object id, when this tenant knows it (for display only). */
  nameOf(oid: string): string | undefined {
    for (const [name, o] of this.principals) if (o === oid) return name;
    return undefined;
  }

  async addPrincipal(name: string): Promise<TenantPrincipal> {
    requirePrincipalName(name);
    if (this.principals.has(name)) fail("Conflict", `tenant ${this.dir} already has a principal ${name}`);
    const oid = randomUUID();
    this.principals.set(name, oid);
    const byName: Record<string, { oid: string }> = {};
    for (const [n, o] of this.principals) byName[n] = { oid: o };
    await writeJson(join(this.dir, "principals.json"), { principals: byName });
    return { name, oid };
  }

  /** Adds a new signing key and makes it active; the JWKS keeps the old ones until they are retired. */
  async rotateSigningKey(): Promise<string> {
    const { kid, publicJwk } = await writeSigningKey(this.dir);
    await writeJson(join(this.dir, "jwks.json"), { keys: [...this.jwks.keys, publicJwk].slice(-4) });
    await writeJson(join(this.dir, "tenant.json"), {
      tenantId: this.tenantId,
      issuer: this.issuer,
      activeKid: kid,
    });
    return kid;
  }

  async signingKey(): Promise<KeyObject> {
    const pem = await readFile(join(this.dir, "keys", `${this.activeKid}.pem`), "utf8").catch(() =>
      fail("NotFound", `tenant ${this.dir} has no signing key ${this.activeKid}`),
    );
    return createPrivateKey(pem);
  }
}

export function requirePrincipalName(name: string): string {
  if (!PRINCIPAL_NAME.test(name)) {
    fail(
      "BadParameter",
      `principal name must be 1..64 of letters, digits and . _ @ - (got ${JSON.stringify(name)})`,
    );
  }
  return name;
}

async function writeSigningKey(dir: string): Promise<{ kid: string; publicJwk: TenantJwk }> {
  const { privateKey, publicKey } = generateIsolatedKeyPairSync({ type: "ec", namedCurve: "P-256" });
  const kid = randomBytes(8).toString("hex");
  await mkdir(join(dir, "keys"), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, "keys", `${kid}.pem`), privateKey.export({ type: "pkcs8", format: "pem" }), {
    mode: 0o600,
  });
  const jwk = publicKey.export({ format: "jwk" });
  return {
    kid,
    publicJwk: { kty: "EC", crv: "P-256", x: String(jwk.x), y: String(jwk.y), kid, alg: "ES256", use: "sig" },
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString("hex")}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

async function readJson(path: string, dir: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return fail("NotFound", `no tenant in ${dir} (create one with \`hsmpool tenant init --dir ${dir}\`)`, {
      dir,
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    return fail("BadParameter", `${path} is not valid JSON`, { path });
  }
}
