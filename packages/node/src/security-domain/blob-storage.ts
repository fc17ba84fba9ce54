/**
 * Azure Blob Storage through a container SAS URL (as the real service's backups use),
 * with @azure/storage-blob. Loopback only in this project: the URL must name
 * 127.0.0.0/8 or localhost (a local Azurite).
 */
import type { ContainerClient } from "@azure/storage-blob";
import { fail, HsmPoolError } from "@hsmpool/errors";

/**
 * Loaded on first use: the SDK (and its XML stack) took about a third of a node's
 * module loading, and most nodes never back up (a blank replacement's start is on
 * the healing path).
 */
let storageSdk: Promise<typeof import("@azure/storage-blob")> | undefined;
const loadStorageSdk = () => {
  storageSdk ??= import("@azure/storage-blob");
  return storageSdk;
};

export interface BlobFolder {
  put(name: string, data: Uint8Array): Promise<void>;
  get(name: string): Promise<Buffer>;
  exists(name: string): Promise<boolean>;
  delete(name: string): Promise<void>;
}

export function parseStorageUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail(
      "BadParameter",
      "storage must be a container SAS URL (http://127.0.0.1:PORT/ACCOUNT/CONTAINER?sv=...)",
    );
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") fail("BadParameter", "storage URL must be http(s)");
  if (!(u.hostname === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(u.hostname)))
    fail("BadParameter", `storage must be on this machine (loopback), not ${u.hostname}`);
  if (!u.searchParams.get("sig")) fail("BadParameter", "storage URL carries no SAS token (sig=...)");
  return u;
}

export function blobFolder(storageUrl: string, folder: string): BlobFolder {
  parseStorageUrl(storageUrl);
  let container: ContainerClient | undefined;
  const blob = async (name: string) => {
    container ??= new (await loadStorageSdk()).ContainerClient(storageUrl);
    return container.getBlockBlobClient(`${folder}/${name}`);
  };
  return {
    async put(name, data) {
      await storageCall(async () => (await blob(name)).uploadData(Buffer.from(data)));
    },
    async get(name) {
      return storageCall(async () => (await blob(name)).downloadToBuffer());
    },
    async exists(name) {
      return storageCall(async () => (await blob(name)).exists());
    },
    async delete(name) {
      await storageCall(async () => (await blob(name)).deleteIfExists());
    },
  };
}

async function storageCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    const status = (e as { statusCode?: number }).statusCode;
    const message = (e as Error).message?.split("\n")[0] ?? String(e);
    if (status === 404) throw new HsmPoolError("NotFound", `not found in blob storage: ${message}`);
    if (status === 403 || status === 401)
      throw new HsmPoolError("Forbidden", `blob storage refused the SAS token: ${message}`);
    throw new HsmPoolError("ServiceUnavailable", `blob storage failed: ${message}`);
  }
}
