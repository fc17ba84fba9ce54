/**
 * The simulated datacenter on disk: vendor root certificate, racks and servers.
 * Layout and file formats are in README.md. Only this module (and enclave launch
 * through `loadServerSecrets`) reads a server's fuse or platform key.
 */
import {
  createHash,
  createPublicKey,
  type KeyObject,
  randomBytes,
  randomUUID,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fail } from "@hsmpool/errors";
import { fsyncDir, writeFileAtomic, writeJsonAtomic } from "@hsmpool/files";
import { createPlatformCert, createVendorRoot, generateEcKeyPair } from "./pki.js";
import { unwrapPlatformKey, wrapPlatformKey } from "./platform-key.js";
import type { Fabric, FabricInfo, FabricInitOptions, RackInfo, ServerHandle, ServerInfo } from "./types.js";

/** Certificates and inventory are public: readable by anyone (e.g. a container user). */
const PUBLIC_FILE_MODE = 0o644;

const FORMAT_VERSION = 1;
const FUSE_SIZE_BYTES = 32;
const MAX_RACKS = 64;
const MAX_SERVERS_PER_RACK = 64;
export const FABRIC_FILE = "fabric.json";
export const VENDOR_ROOT_FILE = "vendor-root.crt";
export const SERVER_FILE = "server.json";
export const FUSE_FILE = "cpu-fuse.bin";
export const PLATFORM_CERT_FILE = "platform.crt";
export const PLATFORM_KEY_FILE = "platform-key.sealed";
export const HSM_DIR = "hsm";

const sha256Hex = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

function checkCount(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    fail("BadParameter", `${name} must be an integer from 1 to ${max}, got ${value}`, { field: name });
  }
}

async function assertEmptyOrMissing(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (!st) return;
  if (!st.isDirectory()) fail("BadParameter", `${dir} exists and is not a directory`, { path: dir });
  const entries = await readdir(dir);
  if (entries.length === 0) return;
  const hint = entries.includes(FABRIC_FILE)
    ? "a fabric is already initialised there"
    : "it is not empty (a half-finished init? remove it and retry)";
  fail("Conflict", `cannot create a fabric in ${dir}: ${hint}`, { path: dir });
}

async function createServer(params: {
  fabricDir: string;
  serverId: string;
  rackId: string;
  rootKeys: webcrypto.CryptoKeyPair;
  rootSubject: string;
  now: Date;
}): Promise<ServerInfo> {
  const dir = join(params.fabricDir, "racks", params.rackId, params.serverId);
  await mkdir(join(dir, HSM_DIR), { recursive: true });
  const fuse = new Uint8Array(randomBytes(FUSE_SIZE_BYTES));
  const platformKeys = await generateEcKeyPair(true);
  const cert = await createPlatformCert({
    serverId: params.serverId,
    rackId: params.rackId,
    platformPublicKey: platformKeys.publicKey,
    rootKeys: params.rootKeys,
    rootSubject: params.rootSubject,
    now: params.now,
  });
  const fingerprint = sha256Hex(cert.der);
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", platformKeys.privateKey));
  const wrapped = wrapPlatformKey(fuse, pkcs8, params.serverId, fingerprint);
  pkcs8.fill(0);
  const info: ServerInfo = { id: params.serverId, rack: params.rackId, platformCertFingerprint: fingerprint };
  await writeFileAtomic(join(dir, FUSE_FILE), fuse, 0o600);
  fuse.fill(0);
  await writeFileAtomic(join(dir, PLATFORM_KEY_FILE), wrapped, 0o600);
  await writeFileAtomic(join(dir, PLATFORM_CERT_FILE), cert.pem, PUBLIC_FILE_MODE);
  await writeJsonAtomic(join(dir, SERVER_FILE), { formatVersion: FORMAT_VERSION, ...info }, PUBLIC_FILE_MODE);
  return info;
}

/**
 * Creates a fabric. The vendor root private key exists only inside this call (it
 * stands for the CPU vendor, whom nobody here holds) and is never written anywhere.
 * `fabric.json` is written last, so its presence marks a complete fabric.
 */
export async function initFabric(dir: string, opts: FabricInitOptions = {}): Promise<FabricInfo> {
  const racks = opts.racks ?? 3;
  const serversPerRack = opts.serversPerRack ?? 2;
  checkCount("racks", racks, MAX_RACKS);
  checkCount("serversPerRack", serversPerRack, MAX_SERVERS_PER_RACK);
  const now = opts.now ?? new Date();
  if (Number.isNaN(now.getTime())) fail("BadParameter", "now must be a valid date");
  await assertEmptyOrMissing(dir);
  await mkdir(dir, { recursive: true });
  opts.onProgress?.(`creating fabric in ${dir}: ${racks} racks x ${serversPerRack} servers`);

  const fabricId = randomUUID();
  const rootKeys = await generateEcKeyPair(false);
  const root = await createVendorRoot(rootKeys, fabricId, now);
  await writeFileAtomic(join(dir, VENDOR_ROOT_FILE), root.pem, PUBLIC_FILE_MODE);

  const rackInfos: RackInfo[] = [];
  for (let r = 1; r <= racks; r++) {
    const rackId = `rack-${r}`;
    const servers: ServerInfo[] = [];
    for (let s = 1; s <= serversPerRack; s++) {
      servers.push(
        await createServer({
          fabricDir: dir,
          serverId: `r${r}-s${s}`,
          rackId,
          rootKeys,
          rootSubject: root.subject,
          now,
        }),
      );
    }
    rackInfos.push({ id: rackId, servers });
    opts.onProgress?.(`${rackId}: ${servers.map((s) => s.id).join(", ")}`);
  }
  await fsyncDir(join(dir, "racks"));
  const info: FabricInfo = {
    fabricId,
    createdAt: now.toISOString(),
    vendorRoot: { subject: root.subject, fingerprintSha256: sha256Hex(root.der) },
    racks: rackInfos,
  };
  await writeJsonAtomic(join(dir, FABRIC_FILE), { formatVersion: FORMAT_VERSION, ...info }, PUBLIC_FILE_MODE);
  return info;
}

// ---------------------------------------------------------------- opening

const corrupt = (dir: string, why: string): never =>
  fail("IntegrityError", `fabric at ${dir} is corrupt: ${why}`, { path: dir });

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const HEX64 = /^[0-9a-f]{64}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates fabric.json (it is a file a person can edit, so it is untrusted input). */
function parseFabricJson(dir: string, raw: unknown): FabricInfo {
  if (!isRecord(raw)) return corrupt(dir, `${FABRIC_FILE} is not a JSON object`);
  if (raw.formatVersion !== FORMAT_VERSION)
    corrupt(dir, `${FABRIC_FILE} has unsupported formatVersion ${String(raw.formatVersion)}`);
  const { fabricId, createdAt, vendorRoot, racks } = raw;
  if (typeof fabricId !== "string" || typeof createdAt !== "string")
    corrupt(dir, "fabricId/createdAt missing");
  if (
    !isRecord(vendorRoot) ||
    typeof vendorRoot.subject !== "string" ||
    typeof vendorRoot.fingerprintSha256 !== "string" ||
    !HEX64.test(vendorRoot.fingerprintSha256)
  ) {
    return corrupt(dir, "vendorRoot missing or malformed");
  }
  if (!Array.isArray(racks) || racks.length === 0) return corrupt(dir, "racks missing or empty");
  const rackInfos: RackInfo[] = racks.map((rack, i) => {
    if (
      !isRecord(rack) ||
      typeof rack.id !== "string" ||
      !ID_PATTERN.test(rack.id) ||
      !Array.isArray(rack.servers)
    ) {
      return corrupt(dir, `racks[${i}] malformed`);
    }
    const rackId = rack.id;
    const servers = rack.servers.map((s, j): ServerInfo => {
      if (
        !isRecord(s) ||
        typeof s.id !== "string" ||
        !ID_PATTERN.test(s.id) ||
        s.rack !== rackId ||
        typeof s.platformCertFingerprint !== "string" ||
        !HEX64.test(s.platformCertFingerprint)
      ) {
        return corrupt(dir, `racks[${i}].servers[${j}] malformed`);
      }
      return { id: s.id, rack: rackId, platformCertFingerprint: s.platformCertFingerprint };
    });
    return { id: rackId, servers };
  });
  return {
    fabricId: fabricId as string,
    createdAt: createdAt as string,
    vendorRoot: { subject: vendorRoot.subject, fingerprintSha256: vendorRoot.fingerprintSha256 },
    racks: rackInfos,
  };
}

async function readCertPem(
  path: string,
  expectedFingerprint: string,
  dir: string,
): Promise<{ der: Uint8Array; pem: string }> {
  const pem = await readFile(path, "utf8").catch(() => corrupt(dir, `${path} is missing`));
  let der: Uint8Array;
  try {
    der = new Uint8Array(new X509Certificate(pem).raw);
  } catch {
    return corrupt(dir, `${path} is not a PEM certificate`);
  }
  if (sha256Hex(der) !== expectedFingerprint)
    corrupt(dir, `${path} does not match the fingerprint in ${FABRIC_FILE}`);
  return { der, pem };
}

/** A server's handle. The secrets are not held here; `loadServerSecrets` opens them for enclave launch. */
class PlatformServer implements ServerHandle {
  constructor(
    readonly id: string,
    readonly rackId: string,
    readonly dir: string,
    readonly platformCertDer: Uint8Array,
    readonly platformCertPem: string,
  ) {}
  get hsmDir(): string {
    return join(this.dir, HSM_DIR);
  }
}

export async function openFabric(dir: string): Promise<Fabric> {
  const absDir = resolve(dir);
  const st = await stat(absDir).catch(() => null);
  if (!st)
    fail(
      "NotFound",
      `fabric directory ${dir} does not exist (create it with \`hsmpool fabric init --dir ${dir}\`)`,
      { path: dir },
    );
  if (!st.isDirectory()) fail("BadParameter", `${dir} is not a directory`, { path: dir });
  const text = await readFile(join(absDir, FABRIC_FILE), "utf8").catch(() =>
    fail(
      "NotInitialized",
      `${dir} is not a fabric (no ${FABRIC_FILE}; run \`hsmpool fabric init --dir ${dir}\`)`,
      { path: dir },
    ),
  );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return corrupt(dir, `${FABRIC_FILE} is not valid JSON`);
  }
  const info = parseFabricJson(dir, raw);
  const root = await readCertPem(join(absDir, VENDOR_ROOT_FILE), info.vendorRoot.fingerprintSha256, dir);
  const handles = new Map<string, PlatformServer>();
  for (const rack of info.racks) {
    for (const s of rack.servers) {
      if (handles.has(s.id)) corrupt(dir, `server id ${s.id} appears twice`);
      const serverDir = join(absDir, "racks", rack.id, s.id);
      const cert = await readCertPem(join(serverDir, PLATFORM_CERT_FILE), s.platformCertFingerprint, dir);
      handles.set(s.id, new PlatformServer(s.id, rack.id, serverDir, cert.der, cert.pem));
    }
  }
  return {
    dir: absDir,
    info,
    vendorRootCertDer: root.der,
    vendorRootCertPem: root.pem,
    server(serverId: string): ServerHandle {
      return (
        handles.get(serverId) ??
        fail(
          "NotFound",
          `no server ${serverId} in this fabric (servers: ${[...handles.keys()].join(", ")})`,
          {
            serverId,
          },
        )
      );
    },
    servers: () => [...handles.values()],
  };
}

export interface ServerSecrets {
  fuse: Uint8Array;
  platformKey: KeyObject;
}

/** Opens a server's silicon secrets. Internal: only enclave launch (and leak tests) call this. */
export async function loadServerSecrets(server: ServerHandle): Promise<ServerSecrets> {
  if (!(server instanceof PlatformServer)) {
    fail("BadParameter", "server must be a handle from openFabric(...).server(id)");
  }
  const fingerprint = sha256Hex(server.platformCertDer);
  const fuse = new Uint8Array(
    await readFile(join(server.dir, FUSE_FILE)).catch(() =>
      fail("DeviceFault", `server ${server.id} has no CPU fuse file`, { serverId: server.id }),
    ),
  );
  if (fuse.byteLength !== FUSE_SIZE_BYTES) {
    fail(
      "IntegrityError",
      `CPU fuse of server ${server.id} has ${fuse.byteLength} bytes, expected ${FUSE_SIZE_BYTES}`,
    );
  }
  const wrapped = await readFile(join(server.dir, PLATFORM_KEY_FILE)).catch(() =>
    fail("DeviceFault", `server ${server.id} has no platform key file`, { serverId: server.id }),
  );
  const platformKey = unwrapPlatformKey(fuse, new Uint8Array(wrapped), server.id, fingerprint);
  const certKey = new X509Certificate(server.platformCertDer).publicKey.export({
    type: "spki",
    format: "der",
  });
  const ownKey = createPublicKey(platformKey).export({ type: "spki", format: "der" });
  if (Buffer.compare(certKey, ownKey) !== 0) {
    fail("IntegrityError", `platform key of server ${server.id} does not match its certificate`);
  }
  return { fuse, platformKey };
}
