/** `hsmpool endpoint [--json]`: what an Azure Key Vault SDK needs to reach the pool. */
import type { Command } from "commander";
import { discoverEndpoint } from "../sdk/endpoint.js";
import { out, RUN_DIR_HELP, resolveRunDir } from "./context.js";

export function registerEndpointCommand(program: Command): void {
  program
    .command("endpoint")
    .description(
      "print the pool's Key Vault REST endpoint: the URL (the HFC's TCP balancer), the CA file for " +
        "NODE_EXTRA_CA_CERTS, and the resource and tenant of its token challenge",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--json", "print { url, caFile, resource, tenant } as JSON")
    .action(async (opts: { runDir?: string; json?: boolean }) => {
      const e = await discoverEndpoint(resolveRunDir(opts.runDir));
      if (opts.json)
        out(JSON.stringify({ url: e.url, caFile: e.caFile, resource: e.resource, tenant: e.tenant }));
      else out(`url       ${e.url}\ncaFile    ${e.caFile}\nresource  ${e.resource}\ntenant    ${e.tenant}`);
    });
}
