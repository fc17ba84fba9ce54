import { fail } from "@hsmpool/errors";
import { DEFAULT_PARTITION_COUNT, initFabricWithHsms } from "@hsmpool/hsm";
import { type FabricInfo, openFabric } from "@hsmpool/platform";
import type { Command } from "commander";

export const DEFAULT_FABRIC_DIR = ".hsmpool/fabric";

/** Parses a whole-number flag value; a user mistake becomes one BadParameter line. */
export function parseCount(flag: string, value: string, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    fail("BadParameter", `${flag} must be a whole number from 1 to ${max}, got "${value}"`, { flag });
  }
  return n;
}

function describeFabric(dir: string, info: FabricInfo): string {
  const serverCount = info.racks.reduce((n, r) => n + r.servers.length, 0);
  const lines = [
    `fabric ${info.fabricId} in ${dir} (${info.racks.length} racks, ${serverCount} servers, created ${info.createdAt})`,
    `vendor root: ${info.vendorRoot.subject}`,
    `  sha256 ${info.vendorRoot.fingerprintSha256}`,
  ];
  for (const rack of info.racks) {
    lines.push(`${rack.id}:`);
    for (const s of rack.servers) lines.push(`  ${s.id}  platform cert sha256 ${s.platformCertFingerprint}`);
  }
  return `${lines.join("\n")}\n`;
}

/** `hsmpool fabric init|show`: the simulated datacenter (owned by @hsmpool/platform). */
export function registerFabricCommands(program: Command): void {
  const fabric = program
    .command("fabric")
    .description("create and inspect the simulated fabric (vendor root, racks, servers)");

  registerFabricInitCommand(fabric);
  registerFabricShowCommand(fabric);
}

function registerFabricInitCommand(fabric: Command): void {
  fabric
    .command("init")
    .description(
      "create a fabric: a vendor root CA (its private key is discarded after init) and racks of servers, " +
        "each with a CPU fuse and a platform attestation key certified by the vendor root",
    )
    .option("--dir <dir>", "fabric directory (must be missing or empty)", DEFAULT_FABRIC_DIR)
    .option("--racks <n>", "number of racks", "3")
    .option("--servers-per-rack <n>", "servers in each rack", "2")
    .option("--partitions <n>", "HSM partitions on each server's device", String(DEFAULT_PARTITION_COUNT))
    .action(async (opts: { dir: string; racks: string; serversPerRack: string; partitions: string }) => {
      const racks = parseCount("--racks", opts.racks, 64);
      const serversPerRack = parseCount("--servers-per-rack", opts.serversPerRack, 64);
      const partitionCount = parseCount("--partitions", opts.partitions, 64);
      const onProgress = (message: string) => process.stderr.write(`${message}\n`);
      const { info } = await initFabricWithHsms(opts.dir, {
        racks,
        serversPerRack,
        onProgress,
        partitionCount,
      });
      process.stdout.write(describeFabric(opts.dir, info));
    });
}

function registerFabricShowCommand(fabric: Command): void {
  fabric
    .command("show")
    .description("print the racks and servers of a fabric")
    .option("--dir <dir>", "fabric directory", DEFAULT_FABRIC_DIR)
    .option("--json", "print the inventory as JSON ({ fabricId, createdAt, vendorRoot, racks[].servers[] })")
    .action(async (opts: { dir: string; json?: boolean }) => {
      const { info } = await openFabric(opts.dir);
      process.stdout.write(opts.json ? `${JSON.stringify(info, null, 2)}\n` : describeFabric(opts.dir, info));
    });
}
