/**
 * The checker role for a finished run: the pure checkers over the history and the
 * status timeline, plus the two that read files (the secret-leak scan over the run
 * directory, the nodes' own invariant reports in their logs), merged into RunResults.
 */

import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { type AccessAttempt, checkAccess } from "./checkers/access.js";
import { checkAvailability } from "./checkers/availability.js";
import { checkDurability } from "./checkers/durability.js";
import { checkHealing, type FaultHealing } from "./checkers/healing.js";
import { checkHypothesis } from "./checkers/hypothesis.js";
import { checkLatency, type LatencyStats } from "./checkers/latency.js";
import { findLeaks, type LeakFinding, leakResult, type Needle } from "./checkers/leaks.js";
import { checkLinearizability } from "./checkers/linearizability.js";
import { type NodeViolation, nodeLogResult, scanNodeLog } from "./checkers/node-logs.js";
import { checkRecovery, type FullBackupRecord } from "./checkers/recovery.js";
import type { CheckerResult } from "./checkers/result.js";
import { checkSignatures } from "./checkers/signatures.js";
import { type HistoryEvent, isClientEvent } from "./history.js";
import { LOST_REGION_DIR } from "./region-loss.js";
import {
  JUDGING_CHECKERS,
  overallValidity,
  REGION_LOSS_JUDGING_CHECKERS,
  type RunResults,
} from "./results.js";
import type { Scenario } from "./scenario/schema.js";
import { faultsOf, type StatusSample } from "./timeline.js";

export interface EvaluateInput {
  scenario: Scenario;
  seed: number;
  durationMs: number;
  runDir: string;
  poolDir: string;
  fabricDir: string;
  startedAt: string;
  elapsedMs: number;
  phases: RunResults["phases"];
  events: readonly HistoryEvent[];
  samples: readonly StatusSample[];
  keys: readonly string[];
  /** Payloads the workload signed (client data: must never be written anywhere). */
  canaries: readonly Uint8Array[];
  /** Bytes the link proxies carried, already scanned (findings + count). */
  linkScan?: { findings: LeakFinding[]; bytes: number };
  harnessError: string | undefined;
  notes: string[];
  /** Unauthorised attempts made during the run (absent: the driver has no intruders). */
  accessAttempts?: readonly AccessAttempt[];
  /** A region-loss run: its full backups, the one restored, and how the restore ended. */
  regionLoss?: {
    backups: readonly FullBackupRecord[];
    restored: FullBackupRecord | undefined;
    restoreOutcome: { status: string; error?: string } | undefined;
  };
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Secrets the harness can name: each server's CPU fuse (the fabric's "silicon") and the HFC's CA key-encryption key. */
/** The fabric's secrets (CPU fuses) alone: known before the pool starts, for the link scanners. */
/** `<run>/customer/`: the run's identity tenants (customer side, outside the pool; chaos driver). */
export const CUSTOMER_DIR = "customer";

export async function fabricSecrets(fabricDir: string): Promise<{ path: string; needle: Needle }[]> {
  return (await secretFiles(fabricDir, fabricDir)).filter((s) => s.path.endsWith("cpu-fuse.bin"));
}

async function secretFiles(fabricDir: string, poolDir: string): Promise<{ path: string; needle: Needle }[]> {
  const out: { path: string; needle: Needle }[] = [];
  for (const path of await allFiles(fabricDir)) {
    if (!path.endsWith("cpu-fuse.bin")) continue;
    out.push({
      path,
      needle: { name: `CPU fuse of ${relative(fabricDir, path)}`, bytes: await readFile(path) },
    });
  }
  // The customer's side of a run (its tenants' token-signing keys) is not the operator's:
  // those keys are needles that must appear nowhere else.
  for (const path of await allFiles(join(dirname(poolDir), CUSTOMER_DIR))) {
    if (!path.endsWith(".pem")) continue;
    out.push({ path, needle: { name: `tenant signing key ${basename(path)}`, bytes: await readFile(path) } });
  }
  const kek = join(poolDir, "pki", "ca-kek.bin");
  const kekBytes = await readFile(kek).catch(() => undefined);
  if (kekBytes) out.push({ path: kek, needle: { name: "HFC CA key-encryption key", bytes: kekBytes } });
  return out;
}

async function scanLeaks(input: EvaluateInput): Promise<CheckerResult> {
  const lost = join(input.runDir, LOST_REGION_DIR);
  const secrets = [
    ...(await secretFiles(input.fabricDir, input.poolDir)),
    // A lost region's pool and fabric (kept for the checkers): their secrets must not show anywhere either.
    ...(input.regionLoss ? await secretFiles(join(lost, "fabric"), join(lost, "pool")) : []),
  ];
  const needles: Needle[] = [
    ...secrets.map((s) => s.needle),
    ...input.canaries.map((bytes, i) => ({ name: `client payload #${i + 1}`, bytes })),
  ];
  const own = new Set(secrets.map((s) => s.path));
  const findings: LeakFinding[] = [...(input.linkScan?.findings ?? [])];
  let files = 0;
  let bytes = 0;
  const customer = join(input.runDir, CUSTOMER_DIR);
  for (const path of await allFiles(input.runDir)) {
    if (own.has(path) || path.startsWith(`${customer}/`)) continue;
    const content = await readFile(path);
    files++;
    bytes += content.length;
    findings.push(...findLeaks(content, needles, relative(input.runDir, path)));
  }
  return leakResult(findings, {
    files,
    bytes,
    linkBytes: input.linkScan?.bytes ?? 0,
    needles: needles.length,
  });
}

async function scanNodeLogs(poolDirs: readonly string[]): Promise<CheckerResult> {
  const violations: NodeViolation[] = [];
  let scanned = 0;
  for (const [i, poolDir] of poolDirs.entries()) {
    const nodesDir = join(poolDir, "nodes");
    const ids = (await readdir(nodesDir).catch(() => [] as string[])).sort();
    for (const id of ids) {
      // Ids prepared for replacements that never ran have a control file but no log.
      const text = await readFile(join(nodesDir, id, "node.log"), "utf8").catch(() => undefined);
      if (text === undefined) continue;
      scanned++;
      violations.push(...scanNodeLog(i === 0 ? id : `${id} (lost region)`, text));
    }
  }
  return nodeLogResult(violations, scanned);
}

export async function evaluateRun(input: EvaluateInput): Promise<RunResults> {
  const { scenario, events } = input;
  const checkers: Record<string, CheckerResult> = {};
  const add = (c: CheckerResult) => {
    checkers[c.name] = c;
  };
  const ranWorkload = input.phases.workloadToMs > 0;
  if (input.accessAttempts !== undefined) add(checkAccess(input.accessAttempts));
  const region = input.regionLoss;
  if (ranWorkload && region) {
    // The region's pool is gone: its history is checked up to the loss, the recovered pool against the backup.
    const workload = events.filter((e) => !isClientEvent(e) || !e.final);
    add(checkLinearizability(workload, input.keys, scenario.checks.maxSearchSteps));
    add(checkSignatures(workload));
    add(
      checkRecovery({
        events,
        keys: input.keys,
        restored: region.restored,
        restoreOutcome: region.restoreOutcome,
      }),
    );
    add(checkLatency(workload));
  } else if (ranWorkload) {
    const faults = faultsOf(events);
    add(checkLinearizability(events, input.keys, scenario.checks.maxSearchSteps));
    add(checkDurability(events, input.keys));
    add(checkSignatures(events));
    const healing = checkHealing({ faults, samples: input.samples, endMs: input.phases.endMs });
    add(healing);
    const perFault = (healing.details as { faults: FaultHealing[] }).faults;
    const availability = checkAvailability({
      events,
      faults,
      healing: perFault,
      fromMs: input.phases.workloadFromMs,
      toMs: input.phases.workloadToMs,
      minGapMs: scenario.checks.minGapMs,
    });
    add(availability);
    const latency = checkLatency(events);
    add(latency);
    const a = availability.details as { availability: number; longestUnavailableMs: number };
    add(
      checkHypothesis(scenario.hypothesis, {
        availability: a.availability,
        p99LatencyMs: (latency.details as { overall: LatencyStats }).overall.p99Ms,
        maxHealingMs: (healing.details as { maxHealingMs: number | null }).maxHealingMs,
        unhealedFaults: perFault.filter((f) => f.outcome === "not-healed").length,
        longestUnavailableMs: a.longestUnavailableMs,
      }),
    );
  }
  add(
    await scanNodeLogs(
      region ? [input.poolDir, join(input.runDir, LOST_REGION_DIR, "pool")] : [input.poolDir],
    ),
  );
  add(await scanLeaks(input));
  const valid = overallValidity(
    checkers,
    input.harnessError,
    region ? REGION_LOSS_JUDGING_CHECKERS : JUDGING_CHECKERS,
  );
  return {
    valid,
    scenario: {
      name: scenario.name,
      file: scenario.file,
      description: scenario.description,
      seed: input.seed,
      durationMs: input.durationMs,
    },
    runDir: input.runDir,
    startedAt: input.startedAt,
    elapsedMs: Math.round(input.elapsedMs),
    phases: {
      workloadFromMs: Math.round(input.phases.workloadFromMs),
      workloadToMs: Math.round(input.phases.workloadToMs),
      healedFromMs: Math.round(input.phases.healedFromMs),
      endMs: Math.round(input.phases.endMs),
    },
    checkers,
    ...(input.harnessError !== undefined ? { harnessError: input.harnessError } : {}),
    notes: input.notes,
  };
}
