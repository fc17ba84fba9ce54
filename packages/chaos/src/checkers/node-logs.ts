/**
 * Violations the nodes report about themselves: their JSON-line logs are scanned
 * for broken assertions and invariants (the raft core throws "raft invariant: ...")
 * and for fatal lines (level 60) the harness did not cause. Pure: lines in, findings out.
 */
import type { CheckerResult } from "./result.js";

export interface NodeViolation {
  nodeId: string;
  line: number;
  message: string;
}

const ASSERTION = /\b(invariant|assert(ion)?( failed)?|violat(ed|ion))\b/i;
/** Fatal lines that are about the harness's own doing or the environment, not the protocol. */
const EXPECTED_FATAL = /^(bad config|enclave launch refused|join refused)$/;

/** The violation a node's log line reports, if any. */
export function violationInLine(line: string): string | undefined {
  const trimmed = line.trim();
  if (trimmed === "") return undefined;
  let j: Record<string, unknown> | undefined;
  try {
    const v = JSON.parse(trimmed) as unknown;
    if (typeof v === "object" && v !== null) j = v as Record<string, unknown>;
  } catch {
    // A non-JSON line (a crash trace on stderr): only assertion words count.
  }
  if (!j) return ASSERTION.test(trimmed) ? trimmed.slice(0, 300) : undefined;
  const msg = typeof j.msg === "string" ? j.msg : "";
  const detail = [j.error, j.err, j.reason]
    .map((x) => (typeof x === "object" && x !== null ? JSON.stringify(x) : x))
    .filter((x) => typeof x === "string")
    .join(" ");
  const text = `${msg} ${detail}`;
  if (ASSERTION.test(text)) return text.trim().slice(0, 300);
  // A fatal the harness caused on purpose (a full or failing disk) is the node doing the right thing.
  const injected = /\(injected\b/.test(text);
  if (typeof j.level === "number" && j.level >= 60 && !EXPECTED_FATAL.test(msg) && !injected) {
    return `fatal: ${text.trim().slice(0, 300)}`;
  }
  return undefined;
}

export function scanNodeLog(nodeId: string, text: string): NodeViolation[] {
  const out: NodeViolation[] = [];
  text.split("\n").forEach((line, i) => {
    const v = violationInLine(line);
    if (v !== undefined) out.push({ nodeId, line: i + 1, message: v });
  });
  return out;
}

export function nodeLogResult(violations: readonly NodeViolation[], nodesScanned: number): CheckerResult {
  return {
    name: "node-invariants",
    valid: violations.length === 0,
    summary:
      violations.length === 0
        ? `no assertion, invariant or unexpected fatal line in ${nodesScanned} node logs`
        : `${violations.length} reported by nodes, first: ${violations[0]?.nodeId} node.log:${violations[0]?.line}: ${violations[0]?.message}`,
    details: { violations, nodesScanned },
  };
}
