/**
 * A fabric whose every server carries one HSM device (its state in the server's hsm/
 * folder): what `hsmpool fabric init`, `hsmpool up`, chaos runs, benchmarks and test
 * fixtures all need before a node can launch.
 */
import {
  type Fabric,
  type FabricInfo,
  type FabricInitOptions,
  initFabric,
  openFabric,
} from "@hsmpool/platform";
import { DEFAULT_PARTITION_COUNT, HsmDevice } from "./device.js";

export interface FabricWithHsmsOptions extends FabricInitOptions {
  /** Partitions on each server's device (default DEFAULT_PARTITION_COUNT). */
  partitionCount?: number;
}

/** initFabric, then an HSM device on every server. Returns the inventory and the opened fabric. */
export async function initFabricWithHsms(
  dir: string,
  opts: FabricWithHsmsOptions = {},
): Promise<{ info: FabricInfo; fabric: Fabric }> {
  const { partitionCount = DEFAULT_PARTITION_COUNT, ...fabricOptions } = opts;
  const info = await initFabric(dir, fabricOptions);
  const fabric = await openFabric(dir);
  for (const server of fabric.servers()) {
    await (await HsmDevice.create(server.hsmDir, { partitionCount })).close();
  }
  return { info, fabric };
}
