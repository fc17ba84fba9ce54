/** `hsmpool settings list|get|set`: pool-wide settings, changed through the log. */
import type { Command } from "commander";
import type { PoolSetting } from "../sdk/types.js";
import { out, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";

const line = (s: PoolSetting): string => `${s.name} = ${s.value}`;

export function registerSettingsCommands(program: Command): void {
  const settings = program
    .command("settings")
    .description(
      "pool settings: soft-delete-retention-days (7-90), purge-protection (on|off; never off again)",
    );
  registerSettingsListCommand(settings);
  registerSettingsGetCommand(settings);
  registerSettingsSetCommand(settings);
}

function registerSettingsListCommand(settings: Command): void {
  settings
    .command("list", { isDefault: true })
    .description("every setting and its value")
    .option("--json", "print them as a JSON array")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { json?: boolean; runDir?: string }) => {
      const list = await withPool(resolveRunDir(opts.runDir), (c) => c.listSettings());
      out(opts.json ? JSON.stringify(list) : list.map(line).join("\n"));
    });
}

function registerSettingsGetCommand(settings: Command): void {
  settings
    .command("get")
    .description("one setting's value")
    .argument("<name>", "soft-delete-retention-days or purge-protection")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: { runDir?: string }) => {
      out(line(await withPool(resolveRunDir(opts.runDir), (c) => c.getSetting(name))));
    });
}

function registerSettingsSetCommand(settings: Command): void {
  settings
    .command("set")
    .description("change a setting (commits through the primary)")
    .argument("<name>", "soft-delete-retention-days or purge-protection")
    .argument("<value>", "7..90 days, or on/off")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, value: string, opts: { runDir?: string }) => {
      out(line(await withPool(resolveRunDir(opts.runDir), (c) => c.updateSetting(name, value))));
    });
}
