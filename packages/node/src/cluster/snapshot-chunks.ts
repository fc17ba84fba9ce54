/**
 * A Raft snapshot on the cluster transport travels in bounded chunks (as etcd and CCF
 * stream theirs), not as one message: the sender never encodes the whole snapshot into
 * one protobuf/gRPC frame (two whole copies per send) and the receiver never holds a
 * 64 MiB message. Each chunk is a `RaftMessage` of type MsgSnap whose `snapshot_chunk`
 * names the snapshot (index, term, membership), its total size and SHA-256, and carries
 * the bytes at `offset`. Chunks of one snapshot follow each other on the link's stream
 * (other Raft messages may come between them).
 *
 * The receiver copies each chunk into one buffer of the announced size and hands Raft
 * the snapshot only when every byte arrived and the digest matches. Anything else — a
 * gap, a chunk of another snapshot, a broken stream, a wrong digest — discards the
 * partial copy; the leader's Raft sends the snapshot again from the start (restartable,
 * not resumable). Installing stays atomic: Raft sees a whole, verified snapshot or none.
 *
 * Old members ignore `snapshot_chunk` (an unknown field), so a chunk reaches them as a
 * MsgSnap without a snapshot, which Raft refuses: never a truncated install.
 */
import { createHash } from "node:crypto";
import { fail } from "@hsmpool/errors";
import type { Snapshot } from "@hsmpool/raft";

/** Bytes of snapshot data per chunk. */
export const SNAPSHOT_CHUNK_BYTES = 512 * 1024;
/** The largest snapshot a receiver accepts (it allocates the announced size up front). */
export const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;

export interface SnapshotChunkWire {
  index: number;
  term: number;
  conf: { voters: string[]; learners: string[] } | null;
  offset: number;
  totalSize: number;
  sha256: Uint8Array;
  data: Uint8Array;
}

/** The chunks of a MsgSnap's snapshot: views into its data, no copy. */
export function* snapshotChunks(
  snapshot: Snapshot,
  chunkBytes = SNAPSHOT_CHUNK_BYTES,
): Generator<SnapshotChunkWire> {
  const { data, meta } = snapshot;
  const sha256 = createHash("sha256").update(data).digest();
  const conf = { voters: meta.conf.voters, learners: meta.conf.learners };
  let offset = 0;
  do {
    const end = Math.min(offset + chunkBytes, data.length);
    yield {
      index: meta.index,
      term: meta.term,
      conf,
      offset,
      totalSize: data.length,
      sha256,
      data: data.subarray(offset, end),
    };
    offset = end;
  } while (offset < data.length);
}

export type ChunkOutcome =
  | { kind: "partial" }
  | { kind: "complete"; snapshot: Snapshot }
  /** This chunk does not continue the snapshot being received (or the whole failed its digest): the partial copy is dropped. */
  | { kind: "discarded"; reason: string };

interface Assembly {
  index: number;
  term: number;
  totalSize: number;
  sha256: Uint8Array;
  conf: { voters: string[]; learners: string[] };
  buffer: Uint8Array;
  received: number;
}

/** Reassembles the chunks arriving on one stream (one sender). */
export class SnapshotAssembler {
  private assembly: Assembly | null = null;

  add(chunk: SnapshotChunkWire): ChunkOutcome {
    if (chunk.offset === 0) this.start(chunk);
    const a = this.assembly;
    if (a === null) return this.discard("a chunk arrived without the snapshot's first chunk");
    if (
      chunk.index !== a.index ||
      chunk.term !== a.term ||
      chunk.totalSize !== a.totalSize ||
      chunk.offset !== a.received ||
      !sameBytes(chunk.sha256, a.sha256)
    ) {
      return this.discard(
        `chunk at ${chunk.offset} of snapshot ${chunk.index} does not continue the transfer`,
      );
    }
    if (a.received + chunk.data.length > a.totalSize)
      return this.discard(`chunk at ${chunk.offset} runs past the snapshot's ${a.totalSize} bytes`);
    a.buffer.set(chunk.data, a.received);
    a.received += chunk.data.length;
    if (a.received < a.totalSize) return { kind: "partial" };
    this.assembly = null;
    if (!sameBytes(createHash("sha256").update(a.buffer).digest(), a.sha256))
      return { kind: "discarded", reason: `snapshot ${a.index} does not match its SHA-256` };
    return {
      kind: "complete",
      snapshot: {
        meta: { index: a.index, term: a.term, conf: a.conf },
        data: a.buffer,
      },
    };
  }

  /** The stream ended or broke: a partial copy is of no more use. */
  reset(): void {
    this.assembly = null;
  }

  private start(chunk: SnapshotChunkWire): void {
    this.assembly = null;
    if (!Number.isSafeInteger(chunk.totalSize) || chunk.totalSize < 0 || chunk.totalSize > MAX_SNAPSHOT_BYTES)
      fail("BadParameter", `snapshot size ${chunk.totalSize} is outside 0..${MAX_SNAPSHOT_BYTES}`);
    if (chunk.sha256.length !== 32) fail("BadParameter", "snapshot chunk must carry a 32-byte SHA-256");
    this.assembly = {
      index: chunk.index,
      term: chunk.term,
      totalSize: chunk.totalSize,
      sha256: new Uint8Array(chunk.sha256),
      conf: { voters: [...(chunk.conf?.voters ?? [])], learners: [...(chunk.conf?.learners ?? [])] },
      buffer: new Uint8Array(chunk.totalSize),
      received: 0,
    };
  }

  private discard(reason: string): ChunkOutcome {
    this.assembly = null;
    return { kind: "discarded", reason };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}
