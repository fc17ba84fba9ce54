// The unmodified Azure Key Vault SDK against a running pool (README: "Azure SDK").
//   npx hsmpool up && node examples/azure-sdk.mjs
// Reads the pool of $HSMPOOL_RUN_DIR (default .hsmpool/run) and acts as $HSMPOOL_PRINCIPAL (default admin)
// of the tenant in $HSMPOOL_TENANT (default .hsmpool/tenant).
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { discoverEndpoint, hsmpoolCredential } from "@hsmpool/client";

const endpoint = await discoverEndpoint(process.env.HSMPOOL_RUN_DIR ?? ".hsmpool/run");
const credential = hsmpoolCredential(); // a TokenCredential: tokens of the pool's tenant for one principal
const options = {
  // The challenge names the pool's resource URI, not 127.0.0.1: the SDK must not insist they share a domain.
  disableChallengeResourceVerification: true,
  // Trust the fabric CA for this client only (or start node with NODE_EXTRA_CA_CERTS=<caFile>).
  tlsOptions: { ca: await readFile(endpoint.caFile, "utf8") },
};

const keys = new KeyClient(endpoint.url, credential, options);
const key = await keys.createEcKey("example-ec", { curve: "P-256" });
console.log(`created ${key.id}`);

// Key Vault signs a digest: hash the message yourself.
const digest = createHash("sha256").update("hello from the Azure SDK").digest();
const signer = new CryptographyClient(key, credential, options);
const { result } = await signer.sign("ES256", digest);
const { result: valid } = await signer.verify("ES256", digest, result);
console.log(`ES256 signature of ${result.length} bytes, verified by the pool: ${valid}`);
