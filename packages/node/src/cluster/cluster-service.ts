/**
 * Incoming side of the cluster transport: the `Raft` and `Ownership` services of
 * proto/cluster.proto, registered on the attested peer server. Every call must come
 * over a connection the attested server verified (peerIdentityOf); each Raft message
 * must come from the node id the stream announced and be addressed to this node.
 */
import * as grpc from "@grpc/grpc-js";
import { peerIdentityOf, type ServiceRegistration } from "@hsmpool/attested-tls";
import { HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { Message, NodeId } from "@hsmpool/raft";
import type { Logger } from "pino";
import {
  clusterProto,
  messageFromWire,
  type OwnershipEnvelope,
  type RaftMessageWire,
} from "./cluster-proto.js";
import { DATA_ADDRESS_METADATA, NODE_ID_METADATA } from "./peer-links.js";

export interface ClusterServiceOptions {
  selfId: NodeId;
  /** A verified Raft message for this node. */
  onRaftMessage: (m: Message) => void;
  /** A peer announced its data-plane address (used for NotLeader trailers). */
  onPeerDataAddress: (peerId: NodeId, address: string) => void;
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
    if (!peerIdentityOf(call)) {
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
    const dataAddress = metadataString(call, DATA_ADDRESS_METADATA);
    if (dataAddress && HOST_PORT.test(dataAddress)) opts.onPeerDataAddress(from, dataAddress);
    let warned = false;
    call.on("data", (wire: RaftMessageWire) => {
      try {
        const m = messageFromWire(wire);
        if (m.from !== from || m.to !== opts.selfId) {
          throw new HsmPoolError(
            "BadParameter",
            `message ${m.from}->${m.to} on the stream from ${from} to ${opts.selfId}`,
          );
        }
        opts.onRaftMessage(m);
      } catch (e) {
        if (!warned) {
          warned = true;
          opts.logger.warn(
            { peer: from, error: isHsmPoolError(e) ? e.message : String(e) },
            "dropped bad raft message",
          );
        }
      }
    });
    call.on("end", () => callback(null, {}));
    call.on("error", () => {
      // The peer went away; its link reconnects from its side.
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
