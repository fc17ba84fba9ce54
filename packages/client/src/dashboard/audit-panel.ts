/**
 * The dashboard's audit panel. The audit trail is customer data (issue 14, docs/identity.md):
 * only a principal holding `auditLogs/read/action` (Administrator, Crypto Auditor) reads it,
 * and the nodes decide that inside their enclaves. So the dashboard holds no credential of
 * its own and never asks the HFC (the operator) for records: the user pastes a bearer token
 * (`hsmpool token --as <principal>`) into the page, which sends it with each request; this
 * server forwards it to the members for that one read and keeps nothing (no cache, no log,
 * never in the live view other local processes can fetch).
 */
import { fail } from "@hsmpool/errors";
import { answered } from "../cli/audit.js";
import { PoolClient } from "../sdk/pool-client.js";
import type { AuditRecord, MemberAudit } from "../sdk/types.js";
import type { TokenCredential } from "../tenant/credential.js";

/** Records the page keeps; one read returns at most this many of the newest. */
export const AUDIT_PAGE_RECORDS = 50;
/** A member's read returns at most this many records (pool-client.ts readAudit). */
const MEMBER_BATCH = 1000;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface AuditRead {
  /** Newest last, at most AUDIT_PAGE_RECORDS. */
  records: AuditRecord[];
  /** The cursor for the next read: the last sequence number seen per member address. */
  after: Record<string, number>;
  /** A member had more than one batch: read again at once. */
  more: boolean;
}

/** Validates the page's request body: a JWT and a cursor of whole numbers. */
export function parseAuditRequest(body: unknown): { token: string; after: Record<string, number> } {
  const { token, after } = (body ?? {}) as { token?: unknown; after?: unknown };
  if (typeof token !== "string" || token.length > 4096 || !JWT.test(token))
    fail(
      "BadParameter",
      "token must be a bearer token (a JWT, as `hsmpool token --as <principal>` prints it)",
    );
  const cursor: Record<string, number> = {};
  if (after !== undefined) {
    if (typeof after !== "object" || after === null || Array.isArray(after))
      fail("BadParameter", "after must map member addresses to sequence numbers");
    for (const [address, seq] of Object.entries(after)) {
      if (!Number.isSafeInteger(seq) || (seq as number) < 0)
        fail("BadParameter", `after.${address} must be a whole number`);
      cursor[address] = seq as number;
    }
  }
  return { token, after: cursor };
}

/** The token as the SDK's credential: the same string for this one read. */
function bearer(token: string): TokenCredential {
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 60_000 }) };
}

/** Every member's records after `after`, read as the token's principal (Forbidden/Unauthenticated when refused). */
export async function readAuditWithToken(
  runDir: string,
  token: string,
  after: Record<string, number>,
): Promise<AuditRead> {
  const client = await PoolClient.connect({ runDir, credential: bearer(token) });
  try {
    const members = answered<MemberAudit>(await client.readAudit(after), () => {});
    return newestRecords(members, after);
  } finally {
    client.close();
  }
}

/** The newest records over all members and the advanced cursor (pure). */
export function newestRecords(members: readonly MemberAudit[], after: Record<string, number>): AuditRead {
  const next = { ...after };
  for (const m of members) {
    const last = m.records.at(-1);
    if (last) next[m.address] = last.seq;
  }
  const records = members
    .flatMap((m) => m.records)
    .sort((a, b) => a.timeMs - b.timeMs || a.member.localeCompare(b.member))
    .slice(-AUDIT_PAGE_RECORDS);
  return { records, after: next, more: members.some((m) => m.records.length >= MEMBER_BATCH) };
}
