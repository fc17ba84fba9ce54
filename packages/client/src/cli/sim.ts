import type { Command } from "commander";

/** `hsmpool sim raft|pool`: the deterministic simulator (owned by @hsmpool/sim). */
export function registerSimCommands(program: Command): void {
  program.command("sim").description("run protocol code under seeded fault schedules in virtual time");
}
