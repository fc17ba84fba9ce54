/**
 * Incoming side of the cluster transport: the `Raft` and `Ownership` services of
 * proto/cluster.proto, registered on the attested peer server. Every call must come
 * over a connection the attested server verified (peerIdentityOf); each Raft message
 * must come from the node id the stream announced and be addressed to this node.
 */
import * as grpc from "@grpc/grpc-js";
import { peerIdentityOf, type ServiceRegistration, type VerifiedPeer } from "@hsmpool/attested-tls";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { JoinRequest } from "@hsmpool/pool";
import type { Message, NodeId } from "@hsmpool/raft";
import type { Logger } from "pino";
import {
  clusterProto,
  type JoinRequestWire,
  type JoinResponseWire,
  messageFromWire,
  type OwnershipEnvelope,
  type RaftMessageWire,
} from "./cluster-proto.js";
import { DATA_ADDRESS_METADATA, NODE_ID_METADATA } from "./peer-links.js";
import { SnapshotAssembler } from "./snapshot-chunks.js";

export interface ClusterServiceOptions {
  selfId: NodeId;
  /** A verified Raft message for this node. */
  onRaftMessage: (m: Message) => void;
  /** A peer announced its data-plane address (used for NotLeader trailers). */
  onPeerDataAddress: (peerId: NodeId, address: string) => void;
  /** A peer opened its Raft stream over a connection attested as `identity`. */
  onPeerIdentity?: (peerId: NodeId, identity: VerifiedPeer) => void;
  /** Serves one ownership request (pool message bytes in, pool message bytes out). */
  onOwnershipRequest: (from: NodeId, message: Uint8Array) => Promise<Uint8Array>;
  logger: Logger;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$/;

function metadataString(call: { metadata: grpc.Metadata }, key: string): string | undefined {
  const v = call.metadata.get(key)[0];
  return typeof v === "string" ? v : undefined;
}

function unauthenticated(what: string): Partial<grpc.StatusObject> {
  return {
    code: grpc.status.UNAUTHENTICATED,
    details: `${what} is only served over attested peer connections`,
  };
}

export function raftService(opts: ClusterServiceOptions): ServiceRegistration {
  const send: grpc.handleClientStreamingCall<RaftMessageWire, Record<string, never>> = (call, callback) => {
    const identity = peerIdentityOf(call);
    if (!identity) {
      call.on("data", () => {});
      callback(unauthenticated("Raft.Send"));
      return;
    }
    const from = metadataString(call, NODE_ID_METADATA);
    if (!from || !ID.test(from) || from === opts.selfId) {
      callback({
        code: grpc.status.INVALID_ARGUMENT,
        details: `stream must name its sender in ${NODE_ID_METADATA}`,
      });
      return;
    }
    opts.onPeerIdentity?.(from, identity);
    const dataAddress = metadataString(call, DATA_ADDRESS_METADATA);
    if (dataAddress && HOST_PORT.test(dataAddress)) opts.onPeerDataAddress(from, dataAddress);
    let warned = false;
    const snapshots = new SnapshotAssembler();
    call.on("data", (wire: RaftMessageWire) => {
      try {
        const m = messageFromWire(wire);
        if (m.from !== from || m.to !== opts.selfId) {
          throw new HsmPoolError(
            "BadParameter",
            `message ${m.from}->${m.to} on the stream from ${from} to ${opts.selfId}`,
          );
        }
        if (wire.snapshotChunk) {
          if (m.type !== "MsgSnap")
            throw new HsmPoolError("BadParameter", `a ${m.type} carries a snapshot chunk`);
          const outcome = snapshots.add(wire.snapshotChunk);
          if (outcome.kind === "discarded")
            opts.logger.warn({ peer: from, reason: outcome.reason }, "snapshot transfer discarded");
          if (outcome.kind !== "complete") return;
          m.snapshot = outcome.snapshot;
        }
        opts.onRaftMessage(m);
      } catch (e) {
        snapshots.reset();
        if (!warned) {
          warned = true;
          opts.logger.warn(
            { peer: from, error: isHsmPoolError(e) ? e.message : String(e) },
            "dropped bad raft message",
          );
        }
      }
    });
    call.on("end", () => {
      snapshots.reset();
      callback(null, {});
    });
    call.on("error", () => {
      // The peer went away; its link reconnects from its side (and resends any snapshot whole).
      snapshots.reset();
    });
  };
  return { definition: clusterProto().raftService, implementation: { Send: send } };
}

export function ownershipService(opts: ClusterServiceOptions): ServiceRegistration {
  const exchange: grpc.handleUnaryCall<OwnershipEnvelope, OwnershipEnvelope> = (call, callback) => {
    if (!peerIdentityOf(call)) {
      callback(unauthenticated("Ownership.Exchange"));
      return;
    }
    const from = call.request.from;
    if (!ID.test(from)) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: "ownership request must name its sender" });
      return;
    }
    opts.onOwnershipRequest(from, new Uint8Array(call.request.message)).then(
      (message) => callback(null, { from: opts.selfId, message }),
      (e: unknown) => {
        const err = isHsmPoolError(e) ? e : new HsmPoolError("Internal", "ownership request failed");
        callback({ code: err.grpcStatus, details: `${err.message} [${err.code}]` });
      },
    );
  };
  return { definition: clusterProto().ownershipService, implementation: { Exchange: exchange } };
}

export interface MembershipServiceOptions {
  /** Answers a validated Join from an attested caller (accepted, or not the primary: a hint). */
  onJoin: (caller: VerifiedPeer, request: JoinRequest) => Promise<JoinResponseWire>;
}

/** Checks the wire request's shape (BadParameter naming the field). */
export function joinRequestFromWire(w: JoinRequestWire): JoinRequest {
  const field = (name: string, ok: boolean, what: string) => {
    if (!ok) fail("BadParameter", `Join ${name} must be ${what}`, { field: name });
  };
  field("node_id", ID.test(w.nodeId), "a node id (letters, digits, '.', '_', '-')");
  field("peer_address", HOST_PORT.test(w.peerAddress), '"host:port"');
  field("data_address", HOST_PORT.test(w.dataAddress), '"host:port"');
  field("replaces", w.replaces === "" || ID.test(w.replaces), "empty or a node id");
  return {
    nodeId: w.nodeId,
    peerAddress: w.peerAddress,
    dataAddress: w.dataAddress,
    replaces: w.replaces === "" ? null : w.replaces,
  };
}

export function membershipService(opts: MembershipServiceOptions): ServiceRegistration {
  const join: grpc.handleUnaryCall<JoinRequestWire, JoinResponseWire> = (call, callback) => {
    const caller = peerIdentityOf(call);
    if (!caller) {
      callback(unauthenticated("Membership.Join"));
      return;
    }
    const answer = async () => opts.onJoin(caller, joinRequestFromWire(call.request));
    answer().then(
      (response) => callback(null, response),
      (e: unknown) => {
        const err = isHsmPoolError(e) ? e : new HsmPoolError("Internal", "join request failed");
        callback({ code: err.grpcStatus, details: `${err.message} [${err.code}]` });
      },
    );
  };
  return { definition: clusterProto().membershipService, implementation: { Join: join } };
}
