/**
 * `hsmpool audit [--follow] [--json]` and `hsmpool audit verify`: every member's audit
 * log (kept and hash-chained inside its enclave), read as a principal with the audit-read
 * permission (Administrator, Crypto Auditor).
 */
import { fail, type HsmPoolError } from "@hsmpool/errors";
import type { Command } from "commander";
import type { MemberAnswer } from "../sdk/pool-client.js";
import type { AuditRecord, AuditVerdict, MemberAudit } from "../sdk/types.js";
import { out, progress, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";
import { requestExitCode } from "./exit-code.js";
import { parseWholeNumber } from "./inputs.js";

/** The members that answered; when every member refused, their first refusal (Forbidden, Unauthenticated, ...). */
export function answered<T extends object>(
  answers: MemberAnswer<T>[],
  onRefused: (line: string) => void = progress,
): T[] {
  const good = answers.filter((a): a is T => !("error" in a));
  const failed = answers.filter((a): a is { address: string; error: HsmPoolError } => "error" in a);
  if (good.length === 0 && failed[0]) throw failed[0].error;
  for (const f of failed) onRefused(`member at ${f.address}: ${f.error.message} [${f.error.code}]`);
  return good;
}

export function auditLine(r: AuditRecord): string {
  const who = r.principal === "" ? "(no valid token)" : r.principal;
  const key = r.key === "" ? "-" : r.version > 0 ? `${r.key} v${r.version}` : r.key;
  return `${new Date(r.timeMs).toISOString()}  ${r.member}#${r.seq}  ${who}  ${r.operation}  ${key}  ${r.result}  ${r.requestId}`;
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command("audit")
    .description("read every member's audit log: who did what to which key, with what result")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--json", "print records as JSON (an array; with --follow one JSON object per line)")
    .option("--follow", "keep printing new records (Ctrl-C stops)")
    .option("--interval-ms <n>", "poll interval with --follow", "1000")
    .option("--max-polls <n>", "with --follow: stop after this many polls")
    .action(
      async (opts: {
        runDir?: string;
        json?: boolean;
        follow?: boolean;
        intervalMs: string;
        maxPolls?: string;
      }) => {
        const interval = parseWholeNumber("--interval-ms", opts.intervalMs, 50, 60_000);
        const maxPolls =
          opts.maxPolls === undefined
            ? Number.POSITIVE_INFINITY
            : parseWholeNumber("--max-polls", opts.maxPolls, 1, 1_000_000);
        await withPool(resolveRunDir(opts.runDir), async (client) => {
          const after: Record<string, number> = {};
          for (let poll = 1; ; poll++) {
            const members = answered<MemberAudit>(await client.readAudit(after));
            const records = members
              .flatMap((m) => m.records)
              .sort((a, b) => a.timeMs - b.timeMs || a.member.localeCompare(b.member));
            for (const m of members) {
              const last = m.records.at(-1);
              if (last) after[m.address] = last.seq;
            }
            if (!opts.follow) {
              out(opts.json ? JSON.stringify(records, null, 2) : records.map(auditLine).join("\n"));
              return;
            }
            for (const r of records) out(opts.json ? JSON.stringify(r) : auditLine(r));
            if (poll >= maxPolls) return;
            await new Promise((r) => setTimeout(r, interval));
          }
        });
      },
    );
  registerAuditVerifyCommand(audit);
}

function registerAuditVerifyCommand(audit: Command): void {
  audit
    .command("verify")
    .description(
      "check every member's audit chain inside its enclave; names the first record that does not verify",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--json", "print the verdicts as JSON")
    .action(async (opts: { runDir?: string; json?: boolean }, cmd: Command) => {
      const runDir = resolveRunDir(
        opts.runDir ?? (cmd.parent?.opts() as { runDir?: string } | undefined)?.runDir,
      );
      await withPool(runDir, async (client) => {
        const verdicts = answered<AuditVerdict>(await client.verifyAudit());
        if (opts.json) out(JSON.stringify(verdicts, null, 2));
        for (const v of verdicts) {
          if (!opts.json) {
            out(
              v.ok
                ? `${v.member}: ok, ${v.records} record(s) chained`
                : `${v.member}: FAILED at record ${v.firstBadSeq}: ${v.reason}`,
            );
          }
        }
        const bad = verdicts.filter((v) => !v.ok);
        if (bad.length > 0) {
          requestExitCode(1);
          if (opts.json)
            progress(
              `audit verify: ${bad.map((v) => `${v.member} record ${v.firstBadSeq}`).join(", ")} failed`,
            );
        }
        if (verdicts.length === 0) fail("ServiceUnavailable", "no member answered");
      });
    });
}
