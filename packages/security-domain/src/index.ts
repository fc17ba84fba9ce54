/** @hsmpool/security-domain: the security-domain file, Shamir shares, recovery blobs and SD-bound backups (README). */

export { fromBase64Url, toBase64Url } from "./base64url.js";
export {
  type CustomerCertificate,
  keyIdOf,
  MIN_RSA_BITS,
  parseCertificate,
  parseCertificates,
  parsePrivateKey,
} from "./certificates.js";
export { type CustomerKeyPair, createCustomerKeyPair } from "./customer-keys.js";
export {
  type CreateDomainInput,
  createSecurityDomain,
  type EncryptedShare,
  openPayload,
  parseSecurityDomain,
  SD_FORMAT,
  SD_VERSION,
  type SecurityDomainFile,
} from "./document.js";
export { backupDomainId, type DomainKeys, deriveDomainKeys, openBackup, sealBackup } from "./domain-keys.js";
export { type DomainPayload, decodePayload, encodePayload } from "./payload.js";
export {
  openUpload,
  parseExchangeKey,
  parseUploadBlob,
  type RestoreBlobInput,
  recoverDomainKey,
  restoreBlob,
  UPLOAD_FORMAT,
  UPLOAD_VERSION,
  type UploadBlob,
} from "./recovery.js";
export { combineShares, MAX_SHARES, MIN_QUORUM, MIN_SHARES, requireQuorum, splitSecret } from "./shamir.js";
