/** The terminal summary of a run: one line per checker, then the verdict. */
import type { RunResults } from "./results.js";

const mark = (v: unknown) => (v === true ? "ok     " : v === false ? "FAIL   " : "unknown");

export function summaryLines(r: RunResults): string[] {
  const lines = [
    `scenario ${r.scenario.name} (seed ${r.scenario.seed}), ${(r.elapsedMs / 1000).toFixed(1)} s`,
  ];
  for (const c of Object.values(r.checkers))
    lines.push(`  ${mark(c.valid)} ${c.name.padEnd(16)} ${c.summary}`);
  if (r.harnessError) lines.push(`  harness error: ${r.harnessError}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  const verdict = r.valid === true ? "VALID" : r.valid === false ? "INVALID" : "UNKNOWN";
  lines.push(`${verdict}  results: ${r.runDir}/results.json  report: ${r.runDir}/report.html`);
  return lines;
}
