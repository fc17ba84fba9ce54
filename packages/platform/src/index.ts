/**
 * @hsmpool/platform: simulated TEE hardware. Vendor root CA, racks and servers
 * (fabric), enclave launch (measurement + SIGSTRUCT), quotes and the verifier
 * policy, sealing. See README.md for the on-disk and wire formats.
 */
import type { KeyObject } from "node:crypto";
import { fail } from "@hsmpool/errors";
import type {
  BundleInspection,
  BundleMeasurement,
  Enclave,
  Fabric,
  FabricInfo,
  FabricInitOptions,
  Policy,
  ServerHandle,
  Sigstruct,
  SigstructFields,
  VerifiedIdentity,
  VerifyOptions,
} from "./types.js";

export * from "./types.js";

const todo = (what: string): never => fail("Internal", `${what} is not implemented yet`);

/** Creates a fresh fabric under `dir` (refuses a non-empty existing dir with Conflict). */
export async function initFabric(_dir: string, _opts?: FabricInitOptions): Promise<FabricInfo> {
  return todo("initFabric");
}

/** Opens an existing fabric (NotFound / NotInitialized when `dir` is missing or not a fabric). */
export async function openFabric(_dir: string): Promise<Fabric> {
  return todo("openFabric");
}

/** Measures `bundleDir`, checks its SIGSTRUCT and starts an enclave; LaunchRefused with `details.check` otherwise. */
export async function launchEnclave(_server: ServerHandle, _bundleDir: string): Promise<Enclave> {
  return todo("launchEnclave");
}

/** Verifies a quote against the vendor root (DER or PEM) and a policy; AttestationFailed with `details.check` otherwise. */
export function verifyQuote(
  _quote: Uint8Array,
  _vendorRoot: Uint8Array | string,
  _policy: Policy,
  _opts?: VerifyOptions,
): VerifiedIdentity {
  return todo("verifyQuote");
}

/** Validates untrusted policy data (e.g. parsed JSON); BadParameter naming the bad field. */
export function parsePolicy(_input: unknown): Policy {
  return todo("parsePolicy");
}

/** MRENCLAVE of a bundle directory: SHA-256 over the sorted manifest of file hashes. */
export async function measureBundle(_bundleDir: string): Promise<BundleMeasurement> {
  return todo("measureBundle");
}

/** Signs a bundle: writes `sigstruct.bin` into it and returns the SIGSTRUCT. */
export async function signBundle(
  _bundleDir: string,
  _signingKey: KeyObject | string,
  _fields: SigstructFields,
): Promise<Sigstruct> {
  return todo("signBundle");
}

/** Reads and decodes (format only) a bundle's SIGSTRUCT. NotFound / BadParameter. */
export async function readSigstruct(_bundleDir: string): Promise<Sigstruct> {
  return todo("readSigstruct");
}

/** Measurement, SIGSTRUCT and whether they match, for display. */
export async function inspectBundle(_bundleDir: string): Promise<BundleInspection> {
  return todo("inspectBundle");
}

/** MRSIGNER = SHA-256 of the SubjectPublicKeyInfo DER of a code-signing key (public or private, KeyObject or PEM). */
export function mrsignerOf(_key: KeyObject | string): string {
  return todo("mrsignerOf");
}
