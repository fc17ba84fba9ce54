/**
 * One `Membership.Join` call over attested gRPC, classified for the joiner. Each
 * attempt uses fresh attested credentials, so a refused handshake can be told apart:
 * our own verifier refusing the member names its check (lastRejection); a member that
 * drops the connection after our side of the handshake completed is recorded as
 * "peer-closed" (it refused us); a refused TCP connect is "unreachable".
 */
import * as grpc from "@grpc/grpc-js";
import type { AttestedChannel } from "@hsmpool/attested-tls";
import { clusterProto, type JoinRequestWire, type JoinResponseWire } from "../cluster/cluster-proto.js";
import { CLUSTER_CHANNEL_OPTIONS } from "../cluster/peer-links.js";
import type { PeerConfig } from "../config.js";
import type { JoinAttempt } from "../seams/platform.js";
import { UNREACHABLE } from "./joiner.js";

type Attempt = JoinAttempt;

interface JoinClient extends grpc.Client {
  Join(
    request: JoinRequestWire,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: JoinResponseWire) => void,
  ): grpc.ClientUnaryCall;
}

/** Answers that will not change by asking again. */
const FINAL_CODES = new Set(["Conflict", "Forbidden", "BadParameter", "NotFound", "AttestationFailed"]);

export function classifyJoinError(err: grpc.ServiceError, channel: AttestedChannel): Attempt {
  const rejection = channel.lastRejection();
  if (rejection) {
    return {
      kind: "attestation",
      check: String(rejection.details?.check ?? "unknown"),
      error: rejection.message,
    };
  }
  const coded = /\[([A-Za-z]+)\]$/.exec(err.details ?? "");
  if (coded?.[1] && FINAL_CODES.has(coded[1])) return { kind: "refused", code: coded[1], error: err.details };
  if (err.code === grpc.status.UNAVAILABLE && !coded && !UNREACHABLE.test(err.details ?? "")) {
    return {
      kind: "attestation",
      check: "peer-closed",
      error: `the member closed the connection during the attested handshake: ${err.details}`,
    };
  }
  return { kind: "unavailable", error: err.details ?? err.message };
}

/** A Membership.Join caller using `channel()` (fresh attested credentials) for each attempt. */
export function grpcJoin(
  channel: () => AttestedChannel,
): (target: PeerConfig, request: JoinRequestWire, timeoutMs: number) => Promise<JoinAttempt> {
  return (target, request, timeoutMs) => {
    const ch = channel();
    const client = new (clusterProto().MembershipClient)(target.address, ch.credentials, {
      ...CLUSTER_CHANNEL_OPTIONS,
      ...ch.channelOptions,
    }) as unknown as JoinClient;
    const deadline = Date.now() + timeoutMs;
    return new Promise<Attempt>((resolve) => {
      client.Join(request, { deadline }, (err, response) => {
        client.close();
        if (err) resolve(classifyJoinError(err, ch));
        else if (!response) resolve({ kind: "unavailable", error: "empty answer" });
        else resolve(response.accepted ? { kind: "accepted", response } : { kind: "redirect", response });
      });
    });
  };
}
