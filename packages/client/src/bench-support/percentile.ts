/** The nearest-rank `p`th percentile (0 < p <= 100) of ascending `sorted`: p90 of 10 samples is the 9th; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
