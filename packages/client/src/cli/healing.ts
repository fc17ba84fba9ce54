/**
 * `hsmpool upgrade --bundle <dir>` (rolling code update through the HFC, one member
 * at a time, followed to the end) and `hsmpool healing pause|resume`.
 */
import { resolve } from "node:path";
import { type ErrorCode, fail } from "@hsmpool/errors";
import type { FabricControllerClient, HealingEvent, PoolStatus } from "@hsmpool/wire";
import type { Command } from "commander";
import { hfcForRunDir } from "../sdk/pool-client.js";
import { out, progress, RUN_DIR_HELP, resolveRunDir } from "./context.js";
import { parseWholeNumber } from "./inputs.js";
import { healingTitle, isSettledHealthy, statusTable } from "./status-format.js";

const DEFAULT_UPGRADE_TIMEOUT_MS = 600_000;
const POLL_MS = 250;

/** The error code that says what stopped an upgrade (the node's own words stay in the message). */
export function upgradeFailureCode(reason: string): ErrorCode {
  if (/join refused|attestation|handshake/i.test(reason)) return "AttestationFailed";
  if (/launch refused|bad config/i.test(reason)) return "LaunchRefused";
  return "ServiceUnavailable";
}

/** Follows an upgrade until it is done and the pool healthy, printing each phase as it happens. */
async function followUpgrade(
  hfc: FabricControllerClient,
  startedMs: number,
  timeoutMs: number,
): Promise<PoolStatus> {
  const deadline = Date.now() + timeoutMs;
  const shown = new Map<string, number>();
  for (;;) {
    const s = await hfc.status(2000).catch(() => undefined);
    if (s) {
      const ours = s.healing.filter(
        (h: HealingEvent) => h.kind === "upgrade" && (h.phases[0]?.atMs ?? 0) >= startedMs,
      );
      for (const h of ours) {
        for (const mark of h.phases.slice(shown.get(h.id) ?? 0)) {
          const detail = mark.phase === "failed" && h.reason ? `: ${h.reason}` : "";
          progress(`  ${healingTitle(h)}: ${mark.phase}${detail}`);
        }
        shown.set(h.id, h.phases.length);
      }
      if (s.upgrade.state === "failed") {
        fail(
          upgradeFailureCode(s.upgrade.reason),
          `upgrade to ${s.upgrade.bundleDir} stopped: ${s.upgrade.reason}; the members not yet replaced keep running`,
        );
      }
      if (s.upgrade.state === "done" && isSettledHealthy(s)) return s;
    }
    if (Date.now() > deadline) {
      fail(
        "Timeout",
        `the upgrade did not finish within ${Math.round(timeoutMs / 1000)} s; it goes on: \`hsmpool status --watch\``,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export function registerHealingCommands(program: Command): void {
  registerUpgradeCommand(program);
  const healing = program
    .command("healing")
    .description("pause or resume the HFC's healing (it keeps detecting and fencing while paused)");
  registerHealingSwitchCommand(
    healing,
    "pause",
    true,
    "stop relaunching and replacing members (maintenance, or to watch a pool without quorum)",
  );
  registerHealingSwitchCommand(
    healing,
    "resume",
    false,
    "relaunch and replace again; pending healings continue where they stopped",
  );
}

/** `hsmpool healing pause|resume`: the two differ only in the flag they send. */
function registerHealingSwitchCommand(healing: Command, name: string, paused: boolean, what: string): void {
  healing
    .command(name)
    .description(what)
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { runDir?: string }) => {
      const hfc = await hfcForRunDir(resolveRunDir(opts.runDir));
      try {
        await hfc.setHealing(paused);
        out(paused ? "healing paused" : "healing resumed");
      } finally {
        hfc.close();
      }
    });
}

function registerUpgradeCommand(program: Command): void {
  program
    .command("upgrade")
    .description(
      "rolling code update: replace the members one at a time (secondaries first) with blank instances of a " +
        "newer signed bundle (same signer, security version >= the pool's minimum) that join the pool, wait " +
        "until each is ready, then the next. A downgrade, another signer, a debug enclave or a bundle that " +
        "would not launch is refused before anything starts",
    )
    .requiredOption(
      "--bundle <dir>",
      "the signed enclave bundle (e.g. a copy of packages/node/dist signed with --svn 2)",
    )
    .option(
      "--unchecked",
      "skip the HFC's own checks and launch the bundle as it is (stands in for an untrusted HFC: the pool " +
        "itself must refuse a bad bundle, and the upgrade fails with the node's reason)",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--timeout-ms <n>", "how long to follow the upgrade", String(DEFAULT_UPGRADE_TIMEOUT_MS))
    .option("--no-wait", "start the upgrade and return (follow it with `hsmpool status --watch`)")
    .action(
      async (opts: {
        bundle: string;
        unchecked?: boolean;
        runDir?: string;
        timeoutMs: string;
        wait: boolean;
      }) => {
        const timeoutMs = parseWholeNumber("--timeout-ms", opts.timeoutMs, 1000, 86_400_000);
        const hfc = await hfcForRunDir(resolveRunDir(opts.runDir));
        try {
          const startedMs = (await hfc.status()).observedMs;
          const bundleDir = resolve(opts.bundle);
          const r = await hfc.upgrade(bundleDir, opts.unchecked === true);
          progress(
            `upgrading ${r.members.join(", ")} one at a time to security version ${r.svn} from ${bundleDir}` +
              (opts.unchecked ? " (unchecked: the pool alone decides)" : ""),
          );
          if (!opts.wait) {
            out(`upgrade started; \`hsmpool status --watch\` follows it`);
            return;
          }
          const done = await followUpgrade(hfc, startedMs, timeoutMs);
          out(`upgrade done: the pool runs ${bundleDir} (svn ${r.svn})\n${statusTable(done)}`);
        } finally {
          hfc.close();
        }
      },
    );
}
