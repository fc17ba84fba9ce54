/**
 * Plaintext codecs of what the node persists for Raft (sealed before they reach a
 * file, see sealer.ts):
 *
 *   batch    := version u8 = 1 | flags u8 (bit 0: hard state present)
 *               | [term u64 | vote string ("" = none) | commit u64] | count u32 | entry*
 *   entry    := term u64 | index u64 | type u8 (1 normal, 2 confChange) | data (u32 len + bytes)
 *   snapshot := version u8 = 1 | index u64 | term u64 | voters (u32 n, strings)
 *               | learners (u32 n, strings) | data (u32 len + bytes)
 */

import { ByteReader, ByteWriter } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import type { ConfState, Entry, HardState, Snapshot } from "@hsmpool/raft";

const VERSION = 1;
const ENTRY_TYPES = ["normal", "confChange"] as const;

export interface Batch {
  hardState?: HardState;
  entries: Entry[];
}

function writeEntry(w: ByteWriter, e: Entry): void {
  w.u64(e.term)
    .u64(e.index)
    .u8(ENTRY_TYPES.indexOf(e.type) + 1)
    .bytes(e.data);
}

function readEntry(r: ByteReader): Entry {
  const term = r.u64("entry term");
  const index = r.u64("entry index");
  const type = ENTRY_TYPES[r.u8("entry type") - 1] ?? r.corrupt("unknown entry type");
  return { term, index, type, data: r.bytes("entry data") };
}

export function encodeBatch(b: Batch): Uint8Array {
  const w = new ByteWriter().u8(VERSION).u8(b.hardState ? 1 : 0);
  if (b.hardState)
    w.u64(b.hardState.term)
      .string(b.hardState.vote ?? "")
      .u64(b.hardState.commit);
  w.u32(b.entries.length);
  for (const e of b.entries) writeEntry(w, e);
  return w.finish();
}

export function decodeBatch(data: Uint8Array): Batch {
  const r = new ByteReader(data, "WAL record");
  if (r.u8("version") !== VERSION) r.corrupt("unknown record version");
  const flags = r.u8("flags");
  if (flags > 1) r.corrupt("unknown flags");
  const out: Batch = { entries: [] };
  if (flags === 1) {
    const term = r.u64("term");
    const vote = r.string("vote");
    out.hardState = { term, vote: vote === "" ? null : vote, commit: r.u64("commit") };
  }
  const count = r.u32("entry count");
  for (let i = 0; i < count; i++) out.entries.push(readEntry(r));
  r.end();
  for (let i = 1; i < out.entries.length; i++) {
    if (out.entries[i]!.index !== out.entries[i - 1]!.index + 1) r.corrupt("entries are not contiguous");
  }
  return out;
}

function writeIds(w: ByteWriter, ids: readonly string[]): void {
  w.u32(ids.length);
  for (const id of ids) w.string(id);
}

function readIds(r: ByteReader, field: string): string[] {
  const n = r.u32(`${field} count`);
  if (n > 10_000) r.corrupt(`${field} count ${n} is implausible`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.string(field));
  return out;
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const head = new ByteWriter().u8(VERSION).u64(s.meta.index).u64(s.meta.term);
  writeIds(head, s.meta.conf.voters);
  writeIds(head, s.meta.conf.learners);
  // Sized exactly: one allocation for tens of MB of data, and no copy on finish().
  return new ByteWriter(head.length + 4 + s.data.length).raw(head.finish()).bytes(s.data).finish();
}

export function decodeSnapshot(data: Uint8Array): Snapshot {
  const r = new ByteReader(data, "snapshot file");
  if (r.u8("version") !== VERSION) r.corrupt("unknown snapshot version");
  const index = r.u64("index");
  const term = r.u64("term");
  const conf: ConfState = { voters: readIds(r, "voters"), learners: readIds(r, "learners") };
  const snap = { meta: { index, term, conf }, data: r.bytes("data") };
  r.end();
  if (term > 0 && index === 0) fail("IntegrityError", "snapshot file is corrupt: a term without an index");
  return snap;
}
