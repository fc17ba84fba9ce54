/**
 * The node enclave's runtime closure as the platform measures it (docs/enclave-measurement.md):
 * the node package (package.json + dist/), every package it reaches through dependencies, and the
 * proto files its gRPC services are loaded from. Signing, the HFC's pre-launch checks and the
 * node's own launch all pass this, so they measure the same thing.
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { POOL_PROTO_PATH } from "./proto.js";

/** The directory the proto loaders read (`<repo>/proto`; wire and node load from it alike). */
export const PROTO_DIR = dirname(POOL_PROTO_PATH);

/** `<repo>/packages/node` (this module sits directly in wire/src and wire/dist alike). */
export const NODE_PACKAGE_DIR = fileURLToPath(new URL("../../node", import.meta.url));

/** The closure of the node package at `packageDir` (default: this installation's packages/node). */
export function nodeRuntimeClosure(packageDir: string = NODE_PACKAGE_DIR): {
  packageDir: string;
  dataDirs: Record<string, string>;
} {
  return { packageDir, dataDirs: { proto: PROTO_DIR } };
}
