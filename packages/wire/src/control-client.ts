/**
 * Client of the HFC control API (proto/hfc.proto) for the CLI and the SDK. Every
 * failure becomes an HsmPoolError; a refused connection says that no HFC answers.
 */
import * as grpc from "@grpc/grpc-js";
import { fail } from "@hsmpool/errors";
import { fromServiceError } from "./grpc-errors.js";
import { hfcProto, unaryCall } from "./proto.js";
import type { PoolStatus } from "./types.js";

export interface IssuedCert {
  certDer: Uint8Array;
  caCertDer: Uint8Array;
}

const DEFAULT_DEADLINE_MS = 5000;

export class FabricControllerClient {
  private readonly client: grpc.Client;

  constructor(readonly address: string) {
    if (!/^127\.0\.0\.1:\d{1,5}$/.test(address)) {
      fail(
        "BadParameter",
        `the HFC control address must be 127.0.0.1:<port>, got ${JSON.stringify(address)}`,
      );
    }
    this.client = new (hfcProto().FabricController.ctor)(address, grpc.credentials.createInsecure(), {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
    });
  }

  private async call<Res>(method: string, request: object, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Res> {
    try {
      return await unaryCall<Res>(this.client, method, request, { deadlineMs });
    } catch (e) {
      throw fromServiceError(e, `HFC ${method} at ${this.address}`).error;
    }
  }

  status(deadlineMs?: number): Promise<PoolStatus> {
    return this.call<PoolStatus>("Status", {}, deadlineMs);
  }

  async issueClientCert(csrDer: Uint8Array): Promise<IssuedCert> {
    const r = await this.call<{ certDer: Buffer; caCertDer: Buffer }>("IssueClientCert", {
      csrDer: Buffer.from(csrDer),
    });
    return { certDer: new Uint8Array(r.certDer), caCertDer: new Uint8Array(r.caCertDer) };
  }

  async issueNodeCert(nodeId: string, csrDer: Uint8Array): Promise<IssuedCert> {
    const r = await this.call<{ certDer: Buffer; caCertDer: Buffer }>("IssueNodeCert", {
      nodeId,
      csrDer: Buffer.from(csrDer),
    });
    return { certDer: new Uint8Array(r.certDer), caCertDer: new Uint8Array(r.caCertDer) };
  }

  kill(target: string, signal = "SIGKILL"): Promise<{ nodeId: string; pid: number }> {
    return this.call("Kill", { target, signal });
  }

  async restart(nodeId: string): Promise<void> {
    await this.call("Restart", { nodeId });
  }

  /** Marks a server lost: the HFC fences its members and replaces them elsewhere. */
  loseServer(serverId: string): Promise<{ serverId: string; fenced: string[] }> {
    return this.call("LoseServer", { serverId });
  }

  /** Cuts a member (an id or "primary") off from its peers; only pools of debug-signed nodes (`up --test-hooks`). */
  partition(target: string): Promise<{ nodeId: string; isolated: string[] }> {
    return this.call("Partition", { target });
  }

  /** Reconnects every member a partition cut off. */
  healPartitions(): Promise<{ healed: string[] }> {
    return this.call("HealPartitions", {});
  }

  /** Starts a rolling upgrade to `bundleDir` (an absolute path on the HFC's machine). */
  upgrade(bundleDir: string, unchecked = false): Promise<{ svn: number; members: string[] }> {
    return this.call("Upgrade", { bundleDir, unchecked }, 30_000);
  }

  async setHealing(paused: boolean): Promise<void> {
    await this.call("SetHealing", { paused });
  }

  async shutdown(): Promise<void> {
    await this.call("Shutdown", {});
  }

  close(): void {
    this.client.close();
  }
}
