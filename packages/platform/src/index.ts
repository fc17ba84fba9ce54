/**
 * @hsmpool/platform: simulated TEE hardware. Vendor root CA, racks and servers
 * (fabric), enclave launch (measurement + SIGSTRUCT), quotes and the verifier
 * policy, sealing. See README.md for the on-disk and wire formats.
 */
export {
  decodeSigstruct,
  inspectBundle,
  measureBundle,
  mrsignerOf,
  readSigstruct,
  signBundle,
  verifyBundle,
  verifySigstruct,
} from "./bundle.js";
export { type ClosureFile, runtimeClosureFiles } from "./closure.js";
export { launchEnclave } from "./enclave.js";
export { initFabric, openFabric } from "./fabric.js";
export {
  generateIsolatedKeyPair,
  generateIsolatedKeyPairSync,
  type IsolatedKeyPair,
  type KeyPairSpec,
} from "./key-pairs.js";
export { checkPolicy, parsePolicy } from "./policy.js";
export { type DecodedQuote, decodeQuote, MAX_NONCE_SIZE_BYTES } from "./quote.js";
export { loadOrCreateSigningKey, readSigningKey } from "./signing-key.js";
export * from "./types.js";
export { verifyQuote } from "./verify.js";
