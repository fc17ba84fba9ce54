import { isHsmPoolError } from "@hsmpool/errors";
import { Command, CommanderError } from "commander";
import { registerAuditCommands } from "./audit.js";
import { registerBackupCommands } from "./backup.js";
import { registerBundleCommands } from "./bundle.js";
import { registerChaosCommands } from "./chaos.js";
import { AS_HELP, selectIdentity, TENANT_HELP } from "./context.js";
import { registerCryptoCommands } from "./crypto.js";
import { registerDashboardCommand } from "./dashboard.js";
import { registerDemoCommand } from "./demo.js";
import { registerEndpointCommand } from "./endpoint.js";
import { takeRequestedExitCode } from "./exit-code.js";
import { registerFabricCommands } from "./fabric.js";
import { registerHealingCommands } from "./healing.js";
import { registerIdentityCommands } from "./identity.js";
import { registerByokCommands } from "./key-transfer.js";
import { registerKeyCommands } from "./keys.js";
import { registerPoolCommands } from "./pool.js";
import { registerRoleCommands } from "./roles.js";
import { registerSecurityDomainCommands } from "./security-domain.js";
import { registerSettingsCommands } from "./settings.js";
import { registerSimCommands } from "./sim.js";
import { registerStorageCommands } from "./storage.js";

/** Builds the `hsmpool` command tree. Each command group lives in its own module. */
export function buildProgram(): Command {
  const program = new Command("hsmpool")
    .description("Run, break and watch a confidential HSM pool heal.")
    .showHelpAfterError("(run with --help for usage)")
    .option("--as <principal>", AS_HELP)
    .option("--tenant <dir>", TENANT_HELP)
    .exitOverride();
  program.hook("preAction", (_program, action) => selectIdentity(action.optsWithGlobals()));
  registerFabricCommands(program);
  registerBundleCommands(program);
  registerSimCommands(program);
  registerPoolCommands(program);
  registerEndpointCommand(program);
  registerHealingCommands(program);
  registerKeyCommands(program);
  registerIdentityCommands(program);
  registerRoleCommands(program);
  registerAuditCommands(program);
  registerCryptoCommands(program);
  registerSecurityDomainCommands(program);
  registerStorageCommands(program);
  registerBackupCommands(program);
  registerSettingsCommands(program);
  registerByokCommands(program);
  registerDemoCommand(program);
  registerChaosCommands(program);
  registerDashboardCommand(program);
  return program;
}

/**
 * Runs the CLI and returns the exit code. User mistakes (bad flags, HsmPoolError)
 * print one line on stderr and exit non-zero with no stack trace; anything else is
 * a bug and keeps its stack.
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  takeRequestedExitCode();
  try {
    await program.parseAsync(argv);
    return takeRequestedExitCode();
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has already printed its message (or the help/version text).
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isHsmPoolError(e)) {
      process.stderr.write(`hsmpool: ${e.message} [${e.code}]\n`);
      return 1;
    }
    process.stderr.write(
      `hsmpool: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    return 70;
  }
}
