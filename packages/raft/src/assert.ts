/**
 * TigerBeetle-style assertion: a broken invariant is a bug in the core (or in how
 * the application drives it), never a user error, so it throws a plain Error that
 * nobody is expected to catch.
 */
export function invariant(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`raft invariant: ${what}`);
}
