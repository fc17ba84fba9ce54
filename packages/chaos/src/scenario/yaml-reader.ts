/**
 * Reading YAML maps field by field with line numbers, so every complaint about a
 * scenario file can say `file:line: message`. Collects problems instead of stopping
 * at the first, so one run of the validator shows everything that is wrong.
 */
import { isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, type YAMLMap } from "yaml";
import { parseDurationMs } from "../duration.js";

export interface ScenarioIssue {
  line: number;
  message: string;
}

export class IssueLog {
  readonly issues: ScenarioIssue[] = [];

  constructor(private readonly lines: LineCounter) {}

  lineOf(node: Node | null | undefined, fallback = 1): number {
    const offset = node?.range?.[0];
    return offset === undefined ? fallback : this.lines.linePos(offset).line;
  }

  lineAt(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  add(line: number, message: string): void {
    this.issues.push({ line, message });
  }
}

const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(v));

/** The closest allowed name, for "did you mean" hints on typos. */
function closest(name: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const a of allowed) {
    const d = editDistance(name.toLowerCase(), a.toLowerCase());
    if (d < bestDistance) {
      best = a;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * One YAML mapping read as a record of known fields. Unknown keys, wrong types and
 * out-of-range values become issues; the getters then return the default.
 */
export class MapReader {
  private readonly fields = new Map<string, { keyLine: number; value: Node | null }>();
  readonly line: number;

  constructor(
    private readonly log: IssueLog,
    node: Node | null | undefined,
    readonly path: string,
    allowed: readonly string[],
    fallbackLine = 1,
  ) {
    this.line = log.lineOf(node, fallbackLine);
    if (node === null || node === undefined) return;
    if (!isMap(node)) {
      log.add(this.line, `${path || "the scenario"} must be a mapping of fields (${allowed.join(", ")})`);
      return;
    }
    for (const pair of (node as YAMLMap<Node, Node | null>).items) {
      const keyNode = pair.key;
      const keyLine = log.lineOf(keyNode, this.line);
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (key === undefined) {
        log.add(keyLine, `${path || "the scenario"}: field names must be plain words`);
        continue;
      }
      if (!allowed.includes(key)) {
        const hint = closest(key, allowed);
        log.add(
          keyLine,
          `${this.name(key)} is not a known field${hint ? ` (did you mean ${hint}?)` : ""}; allowed: ${allowed.join(", ")}`,
        );
        continue;
      }
      this.fields.set(key, { keyLine, value: pair.value ?? null });
    }
  }

  name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.fields.has(key);
  }

  node(key: string): Node | null | undefined {
    return this.fields.get(key)?.value;
  }

  lineOf(key: string): number {
    const f = this.fields.get(key);
    if (!f) return this.line;
    return f.value ? this.log.lineOf(f.value, f.keyLine) : f.keyLine;
  }

  private scalar(key: string): { present: boolean; value?: unknown; line: number } {
    const f = this.fields.get(key);
    if (!f) return { present: false, line: this.line };
    const line = this.lineOf(key);
    if (f.value === null || (isScalar(f.value) && f.value.value === null)) {
      this.log.add(line, `${this.name(key)} needs a value`);
      return { present: false, line };
    }
    if (isAlias(f.value)) {
      this.log.add(line, `${this.name(key)}: YAML aliases are not supported in scenario files`);
      return { present: false, line };
    }
    if (!isScalar(f.value)) {
      this.log.add(
        line,
        `${this.name(key)} must be a single value, not a ${isSeq(f.value) ? "list" : "mapping"}`,
      );
      return { present: false, line };
    }
    return { present: true, value: f.value.value, line };
  }

  string(key: string, def: string, pattern?: { re: RegExp; what: string }): string {
    const s = this.scalar(key);
    if (!s.present) return def;
    if (typeof s.value !== "string" || s.value.trim() === "") {
      this.log.add(s.line, `${this.name(key)} must be text, got ${show(s.value)}`);
      return def;
    }
    if (pattern && !pattern.re.test(s.value)) {
      this.log.add(s.line, `${this.name(key)} must be ${pattern.what}, got ${show(s.value)}`);
      return def;
    }
    return s.value;
  }

  oneOf<T extends string>(key: string, choices: readonly T[], def: T): T {
    const s = this.scalar(key);
    if (!s.present) return def;
    if (typeof s.value !== "string" || !(choices as readonly string[]).includes(s.value)) {
      const hint = typeof s.value === "string" ? closest(s.value, choices) : undefined;
      this.log.add(
        s.line,
        `${this.name(key)} must be one of ${choices.join(", ")}, got ${show(s.value)}${hint ? ` (did you mean ${hint}?)` : ""}`,
      );
      return def;
    }
    return s.value as T;
  }

  number(key: string, opts: { min: number; max: number; integer?: boolean }, def: number): number {
    const s = this.scalar(key);
    if (!s.present) return def;
    const v = s.value;
    const ok =
      typeof v === "number" &&
      Number.isFinite(v) &&
      v >= opts.min &&
      v <= opts.max &&
      (!opts.integer || Number.isInteger(v));
    if (!ok) {
      this.log.add(
        s.line,
        `${this.name(key)} must be ${opts.integer ? "a whole number" : "a number"} from ${opts.min} to ${opts.max}, got ${show(v)}`,
      );
      return def;
    }
    return v as number;
  }

  optionalNumber(key: string, opts: { min: number; max: number; integer?: boolean }): number | undefined {
    return this.has(key) ? this.number(key, opts, Number.NaN) : undefined;
  }

  boolean(key: string, def: boolean): boolean {
    const s = this.scalar(key);
    if (!s.present) return def;
    if (typeof s.value !== "boolean") {
      this.log.add(s.line, `${this.name(key)} must be true or false, got ${show(s.value)}`);
      return def;
    }
    return s.value;
  }

  /** "250ms", "5s", "1m" or a number of milliseconds, within [minMs, maxMs]. */
  duration(key: string, opts: { minMs: number; maxMs: number }, def: number): number {
    const s = this.scalar(key);
    if (!s.present) return def;
    const ms =
      typeof s.value === "string" || typeof s.value === "number" ? parseDurationMs(s.value) : undefined;
    if (ms === undefined) {
      this.log.add(s.line, `${this.name(key)} must be a duration like 500ms, 5s or 2m, got ${show(s.value)}`);
      return def;
    }
    if (ms < opts.minMs || ms > opts.maxMs) {
      this.log.add(
        s.line,
        `${this.name(key)} must be from ${opts.minMs} ms to ${opts.maxMs} ms, got ${ms} ms`,
      );
      return def;
    }
    return ms;
  }

  optionalDuration(key: string, opts: { minMs: number; maxMs: number }): number | undefined {
    return this.has(key) ? this.duration(key, opts, Number.NaN) : undefined;
  }

  /** A fraction written as 0.9 or "90%". */
  fraction(key: string): number | undefined {
    const s = this.scalar(key);
    if (!s.present) return undefined;
    let v: number | undefined;
    if (typeof s.value === "number") v = s.value;
    else if (typeof s.value === "string") {
      const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(s.value);
      if (m) v = Number(m[1]) / 100;
    }
    if (v === undefined || !Number.isFinite(v) || v < 0 || v > 1) {
      this.log.add(s.line, `${this.name(key)} must be a fraction like 0.9 or "90%", got ${show(s.value)}`);
      return undefined;
    }
    return v;
  }

  /** The items of a list field (each with its line); an issue when it is not a list. */
  list(key: string): { node: Node; line: number }[] {
    const f = this.fields.get(key);
    if (!f || f.value === null) return [];
    if (!isSeq(f.value)) {
      this.log.add(this.lineOf(key), `${this.name(key)} must be a list (lines starting with "- ")`);
      return [];
    }
    return f.value.items.map((item) => ({
      node: item as Node,
      line: this.log.lineOf(item as Node, this.lineOf(key)),
    }));
  }
}
