/**
 * proto/cluster.proto loaded with @grpc/proto-loader (camelCase fields, uint64 as
 * JS numbers — Raft indexes and terms stay far below 2^53 — bytes as Buffer,
 * proto3 optional fields keep their presence), and the Raft Message <-> wire mapping.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { fail } from "@hsmpool/errors";
import {
  type Entry,
  type EntryType,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  type Snapshot,
} from "@hsmpool/raft";
import type { SnapshotChunkWire } from "./snapshot-chunks.js";

/** This module sits in src/cluster/ and dist/cluster/ alike: the repo's proto/ is four levels up. */
export const CLUSTER_PROTO_PATH = fileURLToPath(new URL("../../../../proto/cluster.proto", import.meta.url));

export interface RaftEntryWire {
  term: number;
  index: number;
  type: string;
  data: Uint8Array;
}

export interface RaftSnapshotWire {
  index: number;
  term: number;
  conf: { voters: string[]; learners: string[] } | null;
  data: Uint8Array;
}

export interface RaftMessageWire {
  type: string;
  from: string;
  to: string;
  term: number;
  logTerm?: number;
  index?: number;
  entries: RaftEntryWire[];
  commit?: number;
  reject?: boolean;
  rejectHint?: number;
  snapshot: RaftSnapshotWire | null;
  context?: Uint8Array;
  /** One chunk of a streamed snapshot (snapshot-chunks.ts); `snapshot` is then null. */
  snapshotChunk?: SnapshotChunkWire | null;
}

export interface OwnershipEnvelope {
  from: string;
  message: Uint8Array;
}

export interface JoinRequestWire {
  nodeId: string;
  peerAddress: string;
  dataAddress: string;
  replaces: string;
}

export interface JoinResponseWire {
  leaderId: string;
  accepted: boolean;
  message: string;
  leaderAddress: string;
}

export interface ClusterProto {
  raftService: grpc.ServiceDefinition;
  ownershipService: grpc.ServiceDefinition;
  membershipService: grpc.ServiceDefinition;
  RaftClient: grpc.ServiceClientConstructor;
  OwnershipClient: grpc.ServiceClientConstructor;
  MembershipClient: grpc.ServiceClientConstructor;
}

let loaded: ClusterProto | undefined;

export function clusterProto(): ClusterProto {
  if (loaded) return loaded;
  const definition = loadSync(CLUSTER_PROTO_PATH, {
    keepCase: false,
    longs: Number,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: false,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    hsmpool: {
      cluster: {
        v1: {
          Raft: grpc.ServiceClientConstructor;
          Ownership: grpc.ServiceClientConstructor;
          Membership: grpc.ServiceClientConstructor;
        };
      };
    };
  };
  const { Raft, Ownership, Membership } = pkg.hsmpool.cluster.v1;
  loaded = {
    raftService: Raft.service,
    ownershipService: Ownership.service,
    membershipService: Membership.service,
    RaftClient: Raft,
    OwnershipClient: Ownership,
    MembershipClient: Membership,
  };
  return loaded;
}

const MESSAGE_TYPE_SET: ReadonlySet<string> = new Set(MESSAGE_TYPES);
const ENTRY_TYPES: ReadonlySet<string> = new Set<EntryType>(["normal", "confChange"]);

function entryToWire(e: Entry): RaftEntryWire {
  return { term: e.term, index: e.index, type: e.type, data: e.data };
}

function entryFromWire(e: RaftEntryWire): Entry {
  if (!ENTRY_TYPES.has(e.type)) fail("BadParameter", `raft entry type ${JSON.stringify(e.type)} is unknown`);
  return { term: e.term, index: e.index, type: e.type as EntryType, data: new Uint8Array(e.data) };
}

export function messageToWire(m: Message): RaftMessageWire {
  const w: RaftMessageWire = {
    type: m.type,
    from: m.from,
    to: m.to,
    term: m.term,
    entries: (m.entries ?? []).map(entryToWire),
    snapshot: m.snapshot
      ? {
          index: m.snapshot.meta.index,
          term: m.snapshot.meta.term,
          conf: { voters: m.snapshot.meta.conf.voters, learners: m.snapshot.meta.conf.learners },
          data: m.snapshot.data,
        }
      : null,
  };
  if (m.logTerm !== undefined) w.logTerm = m.logTerm;
  if (m.index !== undefined) w.index = m.index;
  if (m.commit !== undefined) w.commit = m.commit;
  if (m.reject !== undefined) w.reject = m.reject;
  if (m.rejectHint !== undefined) w.rejectHint = m.rejectHint;
  if (m.context !== undefined) w.context = m.context;
  return w;
}

/**
 * Back to a Raft message. Shape errors are BadParameter; RawNode.step re-validates
 * the semantics (addressing, terms, index continuity).
 */
export function messageFromWire(w: RaftMessageWire): Message {
  if (!MESSAGE_TYPE_SET.has(w.type))
    fail("BadParameter", `raft message type ${JSON.stringify(w.type)} is unknown`);
  const m: Message = { type: w.type as MessageType, from: w.from, to: w.to, term: w.term };
  if (w.logTerm !== undefined && w.logTerm !== null) m.logTerm = w.logTerm;
  if (w.index !== undefined && w.index !== null) m.index = w.index;
  if (w.entries.length > 0 || ENTRIES_TYPES.has(m.type)) m.entries = w.entries.map(entryFromWire);
  if (w.commit !== undefined && w.commit !== null) m.commit = w.commit;
  if (w.reject !== undefined && w.reject !== null) m.reject = w.reject;
  if (w.rejectHint !== undefined && w.rejectHint !== null) m.rejectHint = w.rejectHint;
  if (w.snapshot) {
    const snapshot: Snapshot = {
      meta: {
        index: w.snapshot.index,
        term: w.snapshot.term,
        conf: {
          voters: [...(w.snapshot.conf?.voters ?? [])],
          learners: [...(w.snapshot.conf?.learners ?? [])],
        },
      },
      // A view into the received message, not a copy: the snapshot is the message's bulk anyway.
      data: new Uint8Array(w.snapshot.data.buffer, w.snapshot.data.byteOffset, w.snapshot.data.length),
    };
    m.snapshot = snapshot;
  }
  if (w.context !== undefined && w.context !== null) m.context = new Uint8Array(w.context);
  return m;
}

/** Message types whose `entries` field is meaningful even when empty (an empty MsgApp is a probe). */
const ENTRIES_TYPES: ReadonlySet<MessageType> = new Set<MessageType>(["MsgApp", "MsgProp"]);
