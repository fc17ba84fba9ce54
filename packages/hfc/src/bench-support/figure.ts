/**
 * One measured figure of a benchmark, printed as a `bench-figure <json>` line that
 * `npm run bench -- --json <file>` (scripts/bench.mjs) collects into its JSON array.
 * `goal` is a readable comparison ("<= 1.0"); `met` says whether the value meets it.
 */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  goal?: string;
  met?: boolean;
}

/** Prints the figure line (and a person-readable line with the verdict when it has a goal). */
export function reportFigure(figure: Figure): void {
  const value = Number.isFinite(figure.value) ? Number(figure.value.toFixed(3)) : figure.value;
  process.stdout.write(`bench-figure ${JSON.stringify({ ...figure, value })}\n`);
}

/** A figure whose goal is `value <= limit` (or `>=`, `<`). */
export function goalFigure(
  name: string,
  value: number,
  unit: string,
  op: "<=" | ">=" | "<",
  limit: number,
): Figure {
  const met = op === "<=" ? value <= limit : op === ">=" ? value >= limit : value < limit;
  return { name, value, unit, goal: `${op} ${limit}`, met: Number.isFinite(value) && met };
}
