/**
 * Scenario files (chaos/*.yaml) → a validated Scenario, or one BadParameter error
 * whose message lists every problem as `file:line: message`. Pure: the caller reads
 * the file. A nemesis the harness cannot inject yet is refused here ("not supported
 * yet: <nemesis>") so a scenario never silently runs without its faults.
 */
import { fail } from "@hsmpool/errors";
import { isMap, isScalar, LineCounter, type Node, parseDocument } from "yaml";
import {
  DEFAULT_CHECKS,
  DEFAULT_POOL,
  DEFAULT_WORKLOAD,
  DISK_MODES,
  FAULT_KINDS,
  type FaultKind,
  type FaultSpec,
  type Hypothesis,
  type NemesisEntry,
  OP_NAMES,
  type OpName,
  PARTITION_SHAPES,
  type RegionLossSettings,
  type Scenario,
  TARGET_PATTERN,
} from "./schema.js";
import { IssueLog, MapReader, type ScenarioIssue } from "./yaml-reader.js";

export type { ScenarioIssue } from "./yaml-reader.js";

const HOUR_MS = 3_600_000;
const TARGET = { re: TARGET_PATTERN, what: "primary, secondary, random or a node id like n2" };
const LINK_TARGET = {
  re: /^(all|primary|secondary|random|n[1-9][0-9]*)$/,
  what: "all, primary, secondary, random or a node id",
};

export interface ValidateOptions {
  /** Nemeses this harness can inject; any other is refused with "not supported yet". */
  supportedFaults: ReadonlySet<FaultKind>;
}

/** `file:line: message` lines, in file order. */
export function formatIssues(file: string, issues: readonly ScenarioIssue[]): string[] {
  return [...issues].sort((a, b) => a.line - b.line).map((i) => `${file}:${i.line}: ${i.message}`);
}

/** Parses and validates a scenario; throws BadParameter listing every problem (`details.issues`). */
export function parseScenario(text: string, file: string, opts: ValidateOptions): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const log = new IssueLog(lines);
  for (const e of doc.errors) log.add(log.lineAt(e.pos[0]), `YAML: ${e.message.split("\n")[0]}`);
  if (doc.errors.length > 0) throwIssues(file, log.issues);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throwIssues(file, [
      { line: 1, message: "the file is empty; a scenario needs at least name, duration and workload" },
    ]);
  }
  const scenario = readScenario(log, doc.contents as Node, file, opts);
  if (log.issues.length > 0) throwIssues(file, log.issues);
  return scenario;
}

function throwIssues(file: string, issues: ScenarioIssue[]): never {
  const lines = formatIssues(file, issues);
  fail("BadParameter", lines.join("\n"), { file, issues });
}

function readScenario(log: IssueLog, root: Node, file: string, opts: ValidateOptions): Scenario {
  const top = new MapReader(log, root, "", [
    "name",
    "description",
    "duration",
    "seed",
    "pool",
    "workload",
    "nemesis",
    "hypothesis",
    "checks",
    "regionLoss",
  ]);
  for (const required of ["name", "duration", "workload"]) {
    if (!top.has(required)) log.add(top.line, `${required} is required`);
  }
  const name = top.string("name", "unnamed", {
    re: /^[a-z0-9][a-z0-9-]{0,63}$/,
    what: "lower-case words joined by -",
  });
  const durationMs = top.duration("duration", { minMs: 1000, maxMs: HOUR_MS }, 30_000);
  const pool = readPool(log, top);
  const workload = readWorkload(log, top);
  const nemesis = top.list("nemesis").map((item) => readEntry(log, item.node, item.line, durationMs, opts));
  return {
    file,
    name,
    description: top.string("description", ""),
    durationMs,
    seed: top.number("seed", { min: -(2 ** 53 - 1), max: 2 ** 53 - 1, integer: true }, 1),
    pool,
    workload,
    nemesis,
    hypothesis: readHypothesis(log, top),
    checks: readChecks(log, top),
    ...(top.has("regionLoss") ? { regionLoss: readRegionLoss(log, top, durationMs) } : {}),
  };
}

function readRegionLoss(log: IssueLog, top: MapReader, durationMs: number): RegionLossSettings {
  const r = new MapReader(
    log,
    top.node("regionLoss"),
    "regionLoss",
    ["backupEvery", "at", "unsafeRestoreSkipsKey"],
    top.lineOf("regionLoss"),
  );
  for (const required of ["backupEvery", "at"])
    if (!r.has(required)) log.add(top.lineOf("regionLoss"), `regionLoss.${required} is required`);
  const backupEveryMs = r.duration("backupEvery", { minMs: 1000, maxMs: HOUR_MS }, 5000);
  const atMs = r.duration("at", { minMs: 1000, maxMs: HOUR_MS }, durationMs);
  if (atMs <= backupEveryMs || atMs >= durationMs)
    log.add(
      r.lineOf("at"),
      "regionLoss.at must come after the first backup (backupEvery) and before the end of the workload (duration)",
    );
  return { backupEveryMs, atMs, unsafeRestoreSkipsKey: r.boolean("unsafeRestoreSkipsKey", false) };
}

function readPool(log: IssueLog, top: MapReader): Scenario["pool"] {
  const r = new MapReader(
    log,
    top.node("pool"),
    "pool",
    [
      "racks",
      "serversPerRack",
      "healthInterval",
      "failureThreshold",
      "startTimeout",
      "healTimeout",
      "unsafeAckBeforeCommit",
    ],
    top.lineOf("pool"),
  );
  return {
    racks: r.number("racks", { min: 3, max: 16, integer: true }, DEFAULT_POOL.racks),
    serversPerRack: r.number(
      "serversPerRack",
      { min: 1, max: 8, integer: true },
      DEFAULT_POOL.serversPerRack,
    ),
    healthIntervalMs: r.duration(
      "healthInterval",
      { minMs: 50, maxMs: 10_000 },
      DEFAULT_POOL.healthIntervalMs,
    ),
    failureThreshold: r.number(
      "failureThreshold",
      { min: 1, max: 100, integer: true },
      DEFAULT_POOL.failureThreshold,
    ),
    startTimeoutMs: r.duration("startTimeout", { minMs: 1000, maxMs: 600_000 }, DEFAULT_POOL.startTimeoutMs),
    healTimeoutMs: r.duration("healTimeout", { minMs: 1000, maxMs: 600_000 }, DEFAULT_POOL.healTimeoutMs),
    unsafeAckBeforeCommit: r.boolean("unsafeAckBeforeCommit", false),
  };
}

function readWorkload(log: IssueLog, top: MapReader): Scenario["workload"] {
  const r = new MapReader(
    log,
    top.node("workload"),
    "workload",
    ["clients", "rate", "keys", "opTimeout", "mix"],
    top.lineOf("workload"),
  );
  const mixReader = new MapReader(log, r.node("mix"), "workload.mix", OP_NAMES, r.lineOf("mix"));
  const mix = { ...DEFAULT_WORKLOAD.mix };
  if (r.has("mix")) {
    for (const op of OP_NAMES) mix[op] = mixReader.number(op, { min: 0, max: 1000 }, 0);
    if (OP_NAMES.every((op) => mix[op] === 0))
      log.add(r.lineOf("mix"), "workload.mix must give at least one operation a weight above 0");
    if ((mix.sign > 0 || mix.verify > 0 || mix.get > 0 || mix.delete > 0) && mix.create === 0) {
      log.add(
        r.lineOf("mix"),
        "workload.mix needs create > 0: the other operations act on keys the workload creates",
      );
    }
  }
  return {
    clients: r.number("clients", { min: 1, max: 64, integer: true }, DEFAULT_WORKLOAD.clients),
    rateOpsPerS: r.number("rate", { min: 0.1, max: 2000 }, DEFAULT_WORKLOAD.rateOpsPerS),
    keys: r.number("keys", { min: 1, max: 256, integer: true }, DEFAULT_WORKLOAD.keys),
    opTimeoutMs: r.duration("opTimeout", { minMs: 100, maxMs: 120_000 }, DEFAULT_WORKLOAD.opTimeoutMs),
    mix: mix as Record<OpName, number>,
  };
}

function readHypothesis(log: IssueLog, top: MapReader): Hypothesis {
  const r = new MapReader(
    log,
    top.node("hypothesis"),
    "hypothesis",
    ["minAvailability", "maxP99Latency", "maxHealing", "maxUnavailable"],
    top.lineOf("hypothesis"),
  );
  const h: Hypothesis = {};
  const availability = r.fraction("minAvailability");
  if (availability !== undefined) h.minAvailability = availability;
  const p99 = r.optionalDuration("maxP99Latency", { minMs: 1, maxMs: HOUR_MS });
  if (p99 !== undefined && !Number.isNaN(p99)) h.maxP99LatencyMs = p99;
  const healing = r.optionalDuration("maxHealing", { minMs: 1, maxMs: HOUR_MS });
  if (healing !== undefined && !Number.isNaN(healing)) h.maxHealingMs = healing;
  const gap = r.optionalDuration("maxUnavailable", { minMs: 1, maxMs: HOUR_MS });
  if (gap !== undefined && !Number.isNaN(gap)) h.maxUnavailableMs = gap;
  return h;
}

function readChecks(log: IssueLog, top: MapReader): Scenario["checks"] {
  const r = new MapReader(
    log,
    top.node("checks"),
    "checks",
    ["maxSearchSteps", "minGap"],
    top.lineOf("checks"),
  );
  return {
    maxSearchSteps: r.number(
      "maxSearchSteps",
      { min: 100, max: 1e9, integer: true },
      DEFAULT_CHECKS.maxSearchSteps,
    ),
    minGapMs: r.duration("minGap", { minMs: 10, maxMs: HOUR_MS }, DEFAULT_CHECKS.minGapMs),
  };
}

const SCHEDULE_FIELDS = ["at", "every", "from", "until", "jitter", "healAfter"] as const;
const FAULT_FIELDS: Record<FaultKind, readonly string[]> = {
  kill: ["target"],
  pause: ["target"],
  partition: ["shape", "target"],
  link: ["target", "latency", "jitter", "bandwidth", "resetProbability", "blackhole"],
  clock: ["target", "offset"],
  disk: ["target", "mode", "delay"],
  hsm: ["target", "errorRate", "latency", "wedge"],
  "server-loss": ["target"],
  "rack-loss": ["target"],
  random: ["choices"],
};

function readEntry(
  log: IssueLog,
  node: Node,
  line: number,
  durationMs: number,
  opts: ValidateOptions,
): NemesisEntry {
  const kind = faultKindOf(log, node, line, "a nemesis entry");
  if (!isMap(node)) return { line, fault: { kind: "kill", target: "random" }, fromMs: 0, jitterMs: 0 };
  // An unknown kind allows every field, so a typo in `fault:` is reported once, not once per field.
  const allowed = [
    "fault",
    ...SCHEDULE_FIELDS,
    ...(kind ? FAULT_FIELDS[kind] : Object.values(FAULT_FIELDS).flat()),
  ];
  const r = new MapReader(log, node, `nemesis (line ${line})`, allowed, line);
  const fault = kind ? readFault(log, r, kind, opts) : ({ kind: "kill", target: "random" } as FaultSpec);
  const atMs = r.optionalDuration("at", { minMs: 0, maxMs: HOUR_MS });
  const everyMs = r.optionalDuration("every", { minMs: 100, maxMs: HOUR_MS });
  if ((atMs === undefined) === (everyMs === undefined)) {
    log.add(line, "a nemesis entry needs exactly one of at: <time> or every: <interval>");
  }
  if (atMs !== undefined && !Number.isNaN(atMs) && atMs >= durationMs) {
    log.add(
      r.lineOf("at"),
      `at ${atMs} ms is not before the end of the workload (duration ${durationMs} ms)`,
    );
  }
  if (atMs !== undefined && (r.has("from") || r.has("until"))) {
    log.add(line, "from/until only apply to every: entries");
  }
  const entry: NemesisEntry = {
    line,
    fault,
    fromMs: r.duration("from", { minMs: 0, maxMs: HOUR_MS }, everyMs ?? 0),
    jitterMs: r.duration("jitter", { minMs: 0, maxMs: HOUR_MS }, 0),
  };
  if (atMs !== undefined && !Number.isNaN(atMs)) entry.atMs = atMs;
  if (everyMs !== undefined && !Number.isNaN(everyMs)) entry.everyMs = everyMs;
  const untilMs = r.optionalDuration("until", { minMs: 0, maxMs: HOUR_MS });
  if (untilMs !== undefined && !Number.isNaN(untilMs)) entry.untilMs = untilMs;
  const healAfterMs = r.optionalDuration("healAfter", { minMs: 0, maxMs: HOUR_MS });
  if (healAfterMs !== undefined && !Number.isNaN(healAfterMs)) entry.healAfterMs = healAfterMs;
  if (everyMs !== undefined && healAfterMs !== undefined && healAfterMs >= everyMs) {
    log.add(
      r.lineOf("healAfter"),
      `healAfter (${healAfterMs} ms) must be shorter than every (${everyMs} ms) so faults do not pile up`,
    );
  }
  return entry;
}

/** The `fault:` of a mapping, checked against the known kinds (read first: it decides the allowed fields). */
function faultKindOf(log: IssueLog, node: Node, line: number, what: string): FaultKind | undefined {
  if (!isMap(node)) {
    log.add(line, `${what} must be a mapping with fault: one of ${FAULT_KINDS.join(", ")}`);
    return undefined;
  }
  const peeked = peekScalar(log, node, "fault");
  if (!peeked) {
    log.add(line, `${what} needs fault: one of ${FAULT_KINDS.join(", ")}`);
    return undefined;
  }
  if (typeof peeked.value !== "string" || !(FAULT_KINDS as readonly string[]).includes(peeked.value)) {
    log.add(
      peeked.line,
      `fault must be one of ${FAULT_KINDS.join(", ")}, got ${JSON.stringify(peeked.value)}`,
    );
    return undefined;
  }
  return peeked.value as FaultKind;
}

function readFault(log: IssueLog, r: MapReader, kind: FaultKind, opts: ValidateOptions): FaultSpec {
  if (!opts.supportedFaults.has(kind)) log.add(r.lineOf("fault"), `not supported yet: ${kind}`);
  const target = (def = "random") => r.string("target", def, TARGET);
  switch (kind) {
    case "kill":
    case "pause":
    case "server-loss":
    case "rack-loss":
      return { kind, target: target() };
    case "partition": {
      const shape = r.oneOf("shape", PARTITION_SHAPES, "isolate-primary");
      if (!r.has("shape")) log.add(r.line, `a partition needs shape: one of ${PARTITION_SHAPES.join(", ")}`);
      return { kind, shape, target: target(shape === "isolate-primary" ? "primary" : "random") };
    }
    case "link": {
      const spec = {
        kind,
        target: r.string("target", "all", LINK_TARGET),
        latencyMs: r.duration("latency", { minMs: 0, maxMs: 60_000 }, 0),
        jitterMs: r.duration("jitter", { minMs: 0, maxMs: 60_000 }, 0),
        bandwidthBytesPerS: r.number("bandwidth", { min: 0, max: 1e10, integer: true }, 0),
        resetProbability: r.number("resetProbability", { min: 0, max: 1 }, 0),
        blackhole: r.boolean("blackhole", false),
      } as const;
      const none =
        spec.latencyMs === 0 &&
        spec.jitterMs === 0 &&
        spec.bandwidthBytesPerS === 0 &&
        spec.resetProbability === 0 &&
        !spec.blackhole;
      if (none)
        log.add(
          r.line,
          "a link fault needs at least one of latency, jitter, bandwidth, resetProbability, blackhole",
        );
      return spec;
    }
    case "clock":
      if (!r.has("offset"))
        log.add(r.line, "a clock fault needs offset: <duration> (how far the node's clock jumps ahead)");
      return { kind, target: target(), offsetMs: r.duration("offset", { minMs: 1, maxMs: 24 * HOUR_MS }, 1) };
    case "disk": {
      if (!r.has("mode")) log.add(r.line, `a disk fault needs mode: one of ${DISK_MODES.join(", ")}`);
      const mode = r.oneOf("mode", DISK_MODES, "slow-fsync");
      return {
        kind,
        target: target(),
        mode,
        delayMs: r.duration("delay", { minMs: 0, maxMs: 60_000 }, mode === "slow-fsync" ? 200 : 0),
      };
    }
    case "hsm": {
      const spec = {
        kind,
        target: target(),
        errorRate: r.number("errorRate", { min: 0, max: 1 }, 0),
        latencyMs: r.duration("latency", { minMs: 0, maxMs: 60_000 }, 0),
        wedge: r.boolean("wedge", false),
      } as const;
      if (spec.errorRate === 0 && spec.latencyMs === 0 && !spec.wedge) {
        log.add(r.line, "an hsm fault needs at least one of errorRate, latency, wedge");
      }
      return spec;
    }
    case "random": {
      const choices: FaultSpec[] = [];
      for (const item of r.list("choices")) {
        const k = faultKindOf(log, item.node, item.line, "a random choice");
        if (k === "random") {
          log.add(item.line, "a random choice cannot itself be random");
          continue;
        }
        if (!k) continue;
        const cr = new MapReader(
          log,
          item.node,
          `choice (line ${item.line})`,
          ["fault", ...FAULT_FIELDS[k]],
          item.line,
        );
        choices.push(readFault(log, cr, k, opts));
      }
      if (choices.length === 0 && r.has("choices") === false)
        log.add(r.line, "a random fault needs choices: a list of faults");
      return { kind, choices };
    }
  }
}

/** A scalar field of a mapping without reporting anything (for fields read before the mapping's shape is known). */
function peekScalar(log: IssueLog, node: Node, key: string): { value: unknown; line: number } | undefined {
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    if (isScalar(pair.key) && pair.key.value === key && isScalar(pair.value)) {
      return { value: pair.value.value, line: log.lineOf(pair.value as Node) };
    }
  }
  return undefined;
}
