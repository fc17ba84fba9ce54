/** What every checker returns (one entry of results.json `checkers`). */

export type Validity = true | false | "unknown";

export interface CheckerResult {
  name: string;
  valid: Validity;
  /** One line for the terminal summary. */
  summary: string;
  details: unknown;
}

/** false if any is false, else "unknown" if any is unknown, else true (Jepsen's merge of validities). */
export function mergeValidity(values: readonly Validity[]): Validity {
  if (values.includes(false)) return false;
  if (values.includes("unknown")) return "unknown";
  return true;
}
