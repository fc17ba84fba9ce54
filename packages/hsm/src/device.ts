/**
 * The simulated HSM device of one server: a directory holding the device key and
 * the sealed state of its partitions. create() makes a new device; open() loads one
 * (after a restart) and rejects tampered or foreign files with IntegrityError.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fail } from "@hsmpool/errors";
import { writeFileAtomic } from "@hsmpool/files";
import { DEVICE_KEY_FILE, DEVICE_STATE_FILE, DeviceFiles, isNotFound } from "./device-files.js";
import type { FaultHooks } from "./faults.js";
import { OperationGate } from "./operation-gate.js";
import { Partition } from "./partition.js";
import { PartitionCore } from "./partition-core.js";
import { decodeDeviceRecord, encodeDeviceRecord, newDeviceId } from "./records.js";
import { DEVICE_KEY_BYTES, deriveStorageKey } from "./sealed-file.js";

export const DEFAULT_PARTITION_COUNT = 4;
export const MAX_PARTITION_COUNT = 64;

export interface CreateDeviceOptions {
  /** Number of partitions (1..64, default 4). */
  partitionCount?: number;
}

/** Directories open in this process: two HsmDevice objects on one directory would overwrite each other. */
const openDirs = new Set<string>();

export class HsmDevice {
  /** Fault hooks for chaos tests: failNext, setLatency, wedge/release. */
  readonly faults: FaultHooks;
  private readonly partitions: Partition[];

  private constructor(
    readonly dir: string,
    readonly id: string,
    private readonly cores: PartitionCore[],
    private readonly gate: OperationGate,
  ) {
    this.faults = gate.faults;
    this.partitions = cores.map((core) => new Partition(core, gate));
  }

  /** Creates a new device in `dir` (made if missing) with a fresh random device key. */
  static async create(dir: string, options: CreateDeviceOptions = {}): Promise<HsmDevice> {
    const partitionCount = options.partitionCount ?? DEFAULT_PARTITION_COUNT;
    if (!Number.isSafeInteger(partitionCount) || partitionCount < 1 || partitionCount > MAX_PARTITION_COUNT) {
      fail(
        "BadParameter",
        `partition count must be an integer from 1 to ${MAX_PARTITION_COUNT}; got ${partitionCount}`,
      );
    }
    const root = resolve(dir);
    if (await exists(join(root, DEVICE_KEY_FILE))) {
      fail("Conflict", `an HSM device already exists at ${root}; open it instead`);
    }
    claim(root);
    try {
      await mkdir(root, { recursive: true });
      const deviceKey = randomBytes(DEVICE_KEY_BYTES);
      await writeFileAtomic(join(root, DEVICE_KEY_FILE), deviceKey);
      const storageKey = deriveStorageKey(deviceKey);
      deviceKey.fill(0);
      const deviceId = newDeviceId(randomBytes(8));
      const files = new DeviceFiles(root, storageKey, deviceId);
      const cores: PartitionCore[] = [];
      for (let i = 0; i < partitionCount; i++) cores.push(await PartitionCore.create(files, deviceId, i));
      // Written last: a device without device.state is an interrupted create, not a usable device.
      await new DeviceFiles(root, storageKey, undefined).write(
        DEVICE_STATE_FILE,
        encodeDeviceRecord({ deviceId, partitionCount }),
      );
      return new HsmDevice(root, deviceId, cores, new OperationGate(root));
    } catch (e) {
      openDirs.delete(root);
      throw e;
    }
  }

  /** Opens an existing device (e.g. after a process restart). */
  static async open(dir: string): Promise<HsmDevice> {
    const root = resolve(dir);
    let deviceKey: Buffer;
    try {
      deviceKey = await readFile(join(root, DEVICE_KEY_FILE));
    } catch (e) {
      if (isNotFound(e))
        fail("NotFound", `no HSM device at ${root} (no ${DEVICE_KEY_FILE}); create one first`);
      throw e;
    }
    if (deviceKey.length !== DEVICE_KEY_BYTES) {
      fail(
        "IntegrityError",
        `${join(root, DEVICE_KEY_FILE)} is ${deviceKey.length} bytes, not ${DEVICE_KEY_BYTES}`,
      );
    }
    claim(root);
    try {
      const storageKey = deriveStorageKey(deviceKey);
      deviceKey.fill(0);
      const { deviceId, partitionCount } = decodeDeviceRecord(
        await new DeviceFiles(root, storageKey, undefined).read(DEVICE_STATE_FILE),
      );
      const files = new DeviceFiles(root, storageKey, deviceId);
      await files.removeTempFiles(".");
      const cores: PartitionCore[] = [];
      for (let i = 0; i < partitionCount; i++) cores.push(await PartitionCore.load(files, deviceId, i));
      return new HsmDevice(root, deviceId, cores, new OperationGate(root));
    } catch (e) {
      openDirs.delete(root);
      throw e;
    }
  }

  /** Creates the device if `dir` has none, else opens it. */
  static async openOrCreate(dir: string, options: CreateDeviceOptions = {}): Promise<HsmDevice> {
    return (await exists(join(resolve(dir), DEVICE_KEY_FILE)))
      ? HsmDevice.open(dir)
      : HsmDevice.create(dir, options);
  }

  get partitionCount(): number {
    return this.partitions.length;
  }

  partition(index: number): Partition {
    return (
      this.partitions[index] ??
      fail("BadParameter", `partition index must be 0..${this.partitions.length - 1}; got ${index}`)
    );
  }

  /**
   * Refuses new operations (they fail with ServiceUnavailable), waits for key changes
   * already under way to reach the disk, then frees the directory for open().
   */
  async close(): Promise<void> {
    this.gate.close();
    await Promise.all(this.cores.map((core) => core.queue.run(async () => {})));
    openDirs.delete(this.dir);
  }
}

function claim(root: string): void {
  if (openDirs.has(root)) fail("Conflict", `HSM device at ${root} is already open in this process`);
  openDirs.add(root);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}
