/** Seconds since `startNs` (a `process.hrtime.bigint()` reading): what a latency histogram observes. */
export function secondsSince(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e9;
}
