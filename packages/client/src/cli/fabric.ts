import type { Command } from "commander";

/** `hsmpool fabric init|show`: the simulated datacenter (owned by @hsmpool/platform). */
export function registerFabricCommands(program: Command): void {
  program
    .command("fabric")
    .description("create and inspect the simulated fabric (vendor root, racks, servers)");
}
