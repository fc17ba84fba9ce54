/**
 * The pool's secrets as a leak scan's needles: the test plays each member's own enclave
 * (same signed bundle, same server) to open its sealed partition credential and ownership
 * checkpoint, logs into its HSM partition and reveals every key through the HSM's test door
 * (partition credential, DEK, pool key, owner root key, every customer key, transfer key).
 * Members must be stopped first (the HSM device is opened here).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { utf8 } from "@hsmpool/codec";
import { launchEnclave } from "@hsmpool/platform";
import { decodeOwnershipCheckpoint } from "@hsmpool/pool";
import { nodeRuntimeClosure } from "@hsmpool/wire";
// The HSM test door works on the HSM source classes, so open the device through the same module.
import { HsmDevice } from "../../../hsm/src/index.js";
import { revealKeyForTest, revealTransferKeyForTest } from "../../../hsm/src/testing/key-material-door.js";
import { CREDENTIAL_FILE } from "../hsm/partition-access.js";
import { CHECKPOINT_FILE } from "../ownership/checkpoint-file.js";
import { BUNDLE_DIR, PACKAGE_DIR, type TestCluster } from "./cluster.js";

export interface PoolSecret {
  what: string;
  bytes: Uint8Array;
}

/** The roles every member must have revealed (a scan that found none of them proves nothing). */
export const OWNERSHIP_KEY_NAMES = ["DEK", "pool key", "owner root key"] as const;

export async function revealPoolSecrets(cluster: TestCluster, ids: readonly string[]): Promise<PoolSecret[]> {
  const secrets: PoolSecret[] = [];
  for (const id of ids) {
    const { config } = cluster.member(id);
    const server = cluster.fabric.server(config.serverId);
    const enclave = await launchEnclave(server, BUNDLE_DIR, nodeRuntimeClosure(PACKAGE_DIR));
    const device = await HsmDevice.open(server.hsmDir);
    try {
      const partition = device.partition(config.partition);
      const credential = enclave.unseal(await readFile(join(config.stateDir, CREDENTIAL_FILE)), {
        aad: utf8(`hsmpool-partition-credential-v1|${partition.id}`),
      });
      secrets.push({ what: `${id} partition credential`, bytes: credential });
      const checkpoint = decodeOwnershipCheckpoint(
        enclave.unseal(await readFile(join(config.stateDir, CHECKPOINT_FILE)), {
          aad: utf8(`hsmpool-ownership-checkpoint-v1|${id}`),
        }),
      );
      const session = await partition.login(credential);
      const named = new Map<string, string>([
        [checkpoint.dekKeyId, "DEK"],
        [checkpoint.poolKeyKeyId, "pool key"],
        [checkpoint.ownerRootKeyId, "owner root key"],
      ]);
      for (const handle of await session.listHandles()) {
        const revealed = revealKeyForTest(session, handle);
        const what = `${id} ${named.get(handle.id) ?? `key ${handle.id}`}`;
        secrets.push({ what, bytes: revealed.serialized });
        for (const member of ["d", "p", "q", "k"]) {
          const v = revealed.jwk[member];
          if (typeof v === "string")
            secrets.push({ what: `${what} (${member})`, bytes: Buffer.from(v, "base64url") });
        }
      }
      const transfer = revealTransferKeyForTest(session);
      secrets.push({
        what: `${id} transfer key (d)`,
        bytes: Buffer.from(String(transfer.jwk.d), "base64url"),
      });
    } finally {
      await device.close();
    }
  }
  return secrets;
}
