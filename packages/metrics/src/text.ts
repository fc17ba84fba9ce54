/**
 * A reader for the Prometheus text exposition format (version 0.0.4), enough to check a
 * scrape and to chart it: `# TYPE` lines and samples `name{label="v",...} value`.
 * Throws on a line that is neither, so a test that parses a scrape can fail.
 */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  types: Map<string, string>;
  samples: MetricSample[];
}

const TYPE_LINE = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/;
const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;

export function parsePrometheusText(text: string): ParsedMetrics {
  const types = new Map<string, string>();
  const samples: MetricSample[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line === "" || (line.startsWith("#") && !line.startsWith("# TYPE"))) continue;
    const type = TYPE_LINE.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const sample = SAMPLE_LINE.exec(line);
    if (!sample) throw new Error(`line ${i + 1} is not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const m of (sample[3] ?? "").matchAll(LABEL))
      labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    const raw = sample[4] as string;
    const value = raw === "+Inf" ? Number.POSITIVE_INFINITY : raw === "-Inf" ? -Infinity : Number(raw);
    // prom-client prints NaN as "Nan"; Prometheus reads any case of NaN (Go's ParseFloat).
    if (Number.isNaN(value) && raw.toLowerCase() !== "nan")
      throw new Error(`line ${i + 1} has no numeric value: ${JSON.stringify(line)}`);
    samples.push({ name: sample[1] as string, labels, value });
  }
  return { types, samples };
}
