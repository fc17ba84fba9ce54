/**
 * Key rotation policies in the managed-HSM API's terms (lifetimeActions with
 * timeAfterCreate / timeBeforeExpiry triggers, attributes.expiryTime; ISO-8601
 * durations) and the pure evaluation the primary runs on its clock: which keys are due
 * a rotation now. Nothing here reads a clock; `nowMs` is always handed in.
 *
 * Durations: P[nY][nM][nW][nD][T[nH][nM][nS]] with whole numbers; a year counts as
 * 365 days and a month as 30 days (the evaluation needs one fixed length per unit).
 */
import { bad } from "./validate.js";

const DAY_MS = 86_400_000;
const UNIT_MS = {
  Y: 365 * DAY_MS,
  Mo: 30 * DAY_MS,
  W: 7 * DAY_MS,
  D: DAY_MS,
  H: 3_600_000,
  Mi: 60_000,
  S: 1000,
};
const ISO_DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;
/** Key Vault's floor for automatic rotation and for expiry after rotation. */
export const MIN_ROTATE_AFTER_MS = 7 * DAY_MS;
export const MAX_DURATION_MS = 100 * 365 * DAY_MS;

/** A key's rotation policy; each duration is an ISO-8601 string as given (validated), or null. */
export interface RotationPolicy {
  /** lifetimeActions: Rotate with trigger timeAfterCreate. */
  readonly rotateAfter: string | null;
  /** lifetimeActions: Rotate with trigger timeBeforeExpiry. */
  readonly rotateBeforeExpiry: string | null;
  /** lifetimeActions: Notify with trigger timeBeforeExpiry (recorded; this pool has no event sink). */
  readonly notifyBeforeExpiry: string | null;
  /** attributes.expiryTime: a rotated version expires this long after it is made. */
  readonly expiresAfter: string | null;
}

export const POLICY_FIELDS = [
  "rotateAfter",
  "rotateBeforeExpiry",
  "notifyBeforeExpiry",
  "expiresAfter",
] as const;

/** Milliseconds of an ISO-8601 duration; BadParameter naming `field` when it does not parse or is zero. */
export function parseIsoDuration(text: unknown, field: string): number {
  const m = typeof text === "string" ? ISO_DURATION.exec(text) : null;
  if (!m || text === "P" || (typeof text === "string" && text.endsWith("T"))) {
    bad(
      field,
      `${field} must be an ISO-8601 duration such as P30D, P1Y or PT12H; got ${JSON.stringify(text)?.slice(0, 40)}`,
    );
  }
  const [, y, mo, w, d, h, mi, s] = m.map((v) => (v === undefined ? 0 : Number(v)));
  const ms =
    (y ?? 0) * UNIT_MS.Y +
    (mo ?? 0) * UNIT_MS.Mo +
    (w ?? 0) * UNIT_MS.W +
    (d ?? 0) * UNIT_MS.D +
    (h ?? 0) * UNIT_MS.H +
    (mi ?? 0) * UNIT_MS.Mi +
    (s ?? 0) * UNIT_MS.S;
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms > MAX_DURATION_MS) {
    bad(field, `${field} must be longer than zero and at most 100 years; got ${text}`);
  }
  return ms;
}

/** Validates a policy (every field optional, at least one rotate or expiry rule); returns a frozen copy. */
export function validateRotationPolicy(input: unknown): RotationPolicy {
  if (typeof input !== "object" || input === null) bad("policy", "a rotation policy must be an object");
  const p = input as Record<string, unknown>;
  for (const name of Object.keys(p)) {
    if (!(POLICY_FIELDS as readonly string[]).includes(name)) {
      bad(
        name,
        `unknown rotation policy field ${JSON.stringify(name)}; expected ${POLICY_FIELDS.join(", ")}`,
      );
    }
  }
  const out: Record<(typeof POLICY_FIELDS)[number], string | null> = {
    rotateAfter: null,
    rotateBeforeExpiry: null,
    notifyBeforeExpiry: null,
    expiresAfter: null,
  };
  for (const field of POLICY_FIELDS) {
    const v = p[field];
    if (v === undefined || v === null) continue;
    parseIsoDuration(v, field);
    out[field] = v as string;
  }
  if (out.rotateAfter !== null && parseIsoDuration(out.rotateAfter, "rotateAfter") < MIN_ROTATE_AFTER_MS) {
    bad("rotateAfter", "rotateAfter must be at least 7 days (P7D), as in Key Vault");
  }
  if (out.rotateAfter !== null && out.rotateBeforeExpiry !== null) {
    bad("rotateBeforeExpiry", "a policy rotates either after creation or before expiry, not both");
  }
  const expiresMs = out.expiresAfter === null ? null : parseIsoDuration(out.expiresAfter, "expiresAfter");
  for (const field of ["rotateBeforeExpiry", "notifyBeforeExpiry"] as const) {
    const before = out[field];
    if (before === null) continue;
    if (expiresMs === null)
      bad(field, `${field} needs expiresAfter (a version must expire to rotate before it)`);
    if (parseIsoDuration(before, field) >= expiresMs)
      bad(field, `${field} must be shorter than expiresAfter`);
  }
  if (
    out.rotateAfter !== null &&
    expiresMs !== null &&
    parseIsoDuration(out.rotateAfter, "rotateAfter") >= expiresMs
  ) {
    bad(
      "rotateAfter",
      "rotateAfter must be shorter than expiresAfter, or versions expire before they rotate",
    );
  }
  return Object.freeze(out);
}

/** What the evaluation needs of one live key. */
export interface PolicyCandidate {
  readonly name: string;
  readonly latestVersion: number;
  readonly latestCreatedMs: number;
  readonly latestExpiresMs: number | null;
  readonly policy: RotationPolicy;
}

/** A rotation the primary should propose: it applies only while `basedOnVersion` is still the latest. */
export interface DueRotation {
  readonly name: string;
  readonly basedOnVersion: number;
}

/** Pure: the keys whose policy says "rotate" at `nowMs`, in the order given. */
export function dueRotations(candidates: readonly PolicyCandidate[], nowMs: number): DueRotation[] {
  return candidates
    .filter(({ policy, latestCreatedMs, latestExpiresMs }) => {
      if (policy.rotateAfter !== null)
        return nowMs >= latestCreatedMs + parseIsoDuration(policy.rotateAfter, "rotateAfter");
      if (policy.rotateBeforeExpiry !== null && latestExpiresMs !== null) {
        return nowMs >= latestExpiresMs - parseIsoDuration(policy.rotateBeforeExpiry, "rotateBeforeExpiry");
      }
      return false;
    })
    .map((c) => ({ name: c.name, basedOnVersion: c.latestVersion }));
}

/** The expiry of a version made by rotation at `atMs` (null: no expiry rule). */
export function rotatedExpiry(policy: RotationPolicy | null, atMs: number): number | null {
  return policy?.expiresAfter ? atMs + parseIsoDuration(policy.expiresAfter, "expiresAfter") : null;
}

/** The requestId of a policy rotation: one per (key, version it replaces), so re-proposals dedupe. */
export function policyRotationRequestId(rotation: DueRotation): string {
  return `policy-rotate/${rotation.name}/${rotation.basedOnVersion}`;
}

/** The managed-HSM API's JSON for a policy (GET /keys/{name}/rotationpolicy). */
export interface AzureRotationPolicy {
  id: string;
  lifetimeActions: {
    trigger: { timeAfterCreate?: string; timeBeforeExpiry?: string };
    action: { type: "Rotate" | "Notify" };
  }[];
  attributes: { expiryTime?: string; created?: number; updated?: number };
}

/** `created`/`updated` are Unix seconds, as in the real API. */
export function toAzureRotationPolicy(
  name: string,
  policy: RotationPolicy,
  times: { createdMs: number; updatedMs: number },
): AzureRotationPolicy {
  const actions: AzureRotationPolicy["lifetimeActions"] = [];
  if (policy.rotateAfter)
    actions.push({ trigger: { timeAfterCreate: policy.rotateAfter }, action: { type: "Rotate" } });
  if (policy.rotateBeforeExpiry) {
    actions.push({ trigger: { timeBeforeExpiry: policy.rotateBeforeExpiry }, action: { type: "Rotate" } });
  }
  if (policy.notifyBeforeExpiry) {
    actions.push({ trigger: { timeBeforeExpiry: policy.notifyBeforeExpiry }, action: { type: "Notify" } });
  }
  return {
    id: `keys/${name}/rotationpolicy`,
    lifetimeActions: actions,
    attributes: {
      ...(policy.expiresAfter ? { expiryTime: policy.expiresAfter } : {}),
      created: Math.floor(times.createdMs / 1000),
      updated: Math.floor(times.updatedMs / 1000),
    },
  };
}

/** The real API's request body → a policy (BadParameter for an unknown action or trigger). */
export function fromAzureRotationPolicy(json: unknown): RotationPolicy {
  if (typeof json !== "object" || json === null) bad("policy", "a rotation policy must be a JSON object");
  const j = json as { lifetimeActions?: unknown; attributes?: { expiryTime?: unknown } };
  const actions = j.lifetimeActions ?? [];
  if (!Array.isArray(actions)) bad("lifetimeActions", "lifetimeActions must be a list");
  const p: Record<string, unknown> = {};
  for (const a of actions as { trigger?: Record<string, unknown>; action?: { type?: unknown } }[]) {
    const type = String(a?.action?.type ?? "").toLowerCase();
    const after = a?.trigger?.timeAfterCreate;
    const before = a?.trigger?.timeBeforeExpiry;
    if (type === "rotate" && after !== undefined) p.rotateAfter = after;
    else if (type === "rotate" && before !== undefined) p.rotateBeforeExpiry = before;
    else if (type === "notify" && before !== undefined) p.notifyBeforeExpiry = before;
    else
      bad(
        "lifetimeActions",
        "each lifetime action is Rotate (timeAfterCreate or timeBeforeExpiry) or Notify (timeBeforeExpiry)",
      );
  }
  if (j.attributes?.expiryTime !== undefined) p.expiresAfter = j.attributes.expiryTime;
  return validateRotationPolicy(p);
}
