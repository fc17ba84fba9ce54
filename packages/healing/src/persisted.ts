/**
 * The persisted part of the healing state (everything but process runtime), and
 * its check when read back: the run dir's files can be edited by a person, so a
 * malformed file is an IntegrityError naming the file, never a half-read state.
 */
import { fail } from "@hsmpool/errors";
import { freshRuntime } from "./controller.js";
import {
  HEALING_PHASES,
  type HealingRecord,
  type HealingState,
  type LostServer,
  type MemberRecord,
  type UpgradePlan,
} from "./model.js";

/** `<run>/healing.json`. */
export interface HealingFile {
  version: 1;
  healings: HealingRecord[];
  nextHealingNumber: number;
  nextMemberNumber: number;
  paused: boolean;
  upgrade: UpgradePlan | null;
  /** Where the HFC's control API listened last (a restarted HFC takes the same port when it can). */
  controlPort: number;
}

/** `<run>/fabric-state.json`: servers the HFC must never place anything on again. */
export interface FabricStateFile {
  version: 1;
  lostServers: LostServer[];
}

export function toHealingFile(state: HealingState, controlPort: number): HealingFile {
  return {
    version: 1,
    healings: state.healings,
    nextHealingNumber: state.nextHealingNumber,
    nextMemberNumber: state.nextMemberNumber,
    paused: state.paused,
    upgrade: state.upgrade,
    controlPort,
  };
}

/** The state a restarted HFC starts from: the files' contents, every process "unknown". */
export function restoreHealingState(
  members: MemberRecord[],
  healing: HealingFile | undefined,
  fabric: FabricStateFile | undefined,
): HealingState {
  const maxMember = Math.max(0, ...members.map((m) => Number(/^n(\d+)$/.exec(m.id)?.[1] ?? 0)));
  return {
    members: members.map((m) => ({ ...m })),
    runtime: Object.fromEntries(members.map((m) => [m.id, freshRuntime()])),
    lostServers: fabric?.lostServers.map((s) => ({ ...s })) ?? [],
    healings: healing?.healings.map((r) => ({ ...r, phases: r.phases.map((p) => ({ ...p })) })) ?? [],
    nextHealingNumber: healing?.nextHealingNumber ?? 1,
    // Never reuse a member id, even if pool.json lost an entry.
    nextMemberNumber: Math.max(healing?.nextMemberNumber ?? 1, maxMember + 1),
    paused: healing?.paused ?? false,
    upgrade: healing?.upgrade ?? null,
  };
}

// ---------------------------------------------------------------- checks

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const PHASES = new Set<string>([...HEALING_PHASES, "failed"]);
const KINDS = new Set(["restart", "replace", "upgrade"]);
const wholeNumber = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function checkHealingRecord(r: unknown): r is HealingRecord {
  return (
    isRecord(r) &&
    typeof r.id === "string" &&
    typeof r.kind === "string" &&
    KINDS.has(r.kind) &&
    typeof r.memberId === "string" &&
    typeof r.replacementId === "string" &&
    typeof r.phase === "string" &&
    PHASES.has(r.phase) &&
    typeof r.reason === "string" &&
    Array.isArray(r.phases) &&
    r.phases.every(
      (p) => isRecord(p) && typeof p.phase === "string" && PHASES.has(p.phase) && wholeNumber(p.atMs),
    )
  );
}

function checkUpgradePlan(u: unknown): u is UpgradePlan | null {
  return (
    u === null ||
    (isRecord(u) &&
      typeof u.bundleDir === "string" &&
      wholeNumber(u.svn) &&
      typeof u.mrsigner === "string" &&
      (u.state === "running" || u.state === "done" || u.state === "failed") &&
      typeof u.reason === "string" &&
      wholeNumber(u.requestedMs) &&
      Array.isArray(u.launched) &&
      u.launched.every((id) => typeof id === "string"))
  );
}

export function parseHealingFile(path: string, raw: unknown): HealingFile {
  const ok =
    isRecord(raw) &&
    raw.version === 1 &&
    Array.isArray(raw.healings) &&
    raw.healings.every(checkHealingRecord) &&
    wholeNumber(raw.nextHealingNumber) &&
    wholeNumber(raw.nextMemberNumber) &&
    typeof raw.paused === "boolean" &&
    checkUpgradePlan(raw.upgrade) &&
    wholeNumber(raw.controlPort) &&
    raw.controlPort <= 65535;
  if (!ok)
    return fail("IntegrityError", `${path} is malformed (expected the HFC's healing state, version 1)`, {
      path,
    });
  return raw as unknown as HealingFile;
}

export function parseFabricStateFile(path: string, raw: unknown): FabricStateFile {
  const ok =
    isRecord(raw) &&
    raw.version === 1 &&
    Array.isArray(raw.lostServers) &&
    raw.lostServers.every((s) => isRecord(s) && typeof s.serverId === "string" && wholeNumber(s.atMs));
  if (!ok)
    return fail("IntegrityError", `${path} is malformed (expected { version: 1, lostServers: [...] })`, {
      path,
    });
  return raw as unknown as FabricStateFile;
}
