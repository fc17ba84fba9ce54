/** `hsmpool dashboard [--port <n>]`: the live web dashboard of the pool of a run dir, on 127.0.0.1. */
import type { Command } from "commander";
import { startDashboard } from "../dashboard/server.js";
import { out, RUN_DIR_HELP, resolveRunDir } from "./context.js";
import { parseWholeNumber } from "./inputs.js";

export function registerDashboardCommand(program: Command): void {
  program
    .command("dashboard")
    .description(
      "serve a live dashboard of the pool on 127.0.0.1 (topology, healing phases, request rates, fault buttons); " +
        "works for any pool whose run dir names its HFC (hsmpool up, docker-compose); stops on Ctrl-C",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--port <n>", "port on 127.0.0.1 (0: any free port)", "0")
    .action(async (opts: { runDir?: string; port: string }) => {
      const dashboard = await startDashboard({
        runDir: resolveRunDir(opts.runDir),
        port: parseWholeNumber("--port", opts.port, 0, 65535),
      });
      out(`dashboard: ${dashboard.url}`);
      await new Promise<void>((resolve) => {
        const stop = () => void dashboard.close().then(resolve);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}
