/**
 * TigerBeetle-style assertion: a broken invariant is a bug in the core (or in how
 * the application drives it), never a user error, so it throws a plain Error that
 * nobody is expected to catch.
 */
export function invariant(cond: boolean, what: string | (() => string)): asserts cond {
  // A message with values is passed as a closure so the hot path never builds strings.
  if (!cond) throw new Error(`raft invariant: ${typeof what === "string" ? what : what()}`);
}
