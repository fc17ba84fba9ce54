/**
 * The real server (seams/platform.ts): the fabric directory's server (launch the
 * measured bundle as an enclave), its HSM device files, gRPC over attested TLS to
 * peers, and the data plane on fabric-PKI mTLS with a certificate from the HFC.
 */
import { fileURLToPath } from "node:url";
import type * as grpc from "@grpc/grpc-js";
import { createAttestedIdentity } from "@hsmpool/attested-tls";
import { HsmDevice } from "@hsmpool/hsm";
import type { Registry } from "@hsmpool/metrics";
import { type MetricsServer, serveMetrics } from "@hsmpool/metrics";
import { type Enclave, type Fabric, launchEnclave, openFabric, type ServerHandle } from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";
import { AttestedTransport } from "../cluster/attested-transport.js";
import type { NodeConfig } from "../config.js";
import { splitHostPort } from "../config.js";
import { CallsInFlight } from "../data-plane/calls-in-flight.js";
import { CryptoSessions } from "../data-plane/crypto-session.js";
import { startDataServer } from "../data-plane/data-server.js";
import { unary } from "../data-plane/grpc-errors.js";
import { cryptoOperations, keyVaultImplementation } from "../data-plane/keyvault-handlers.js";
import { obtainDataPlaneCredentials } from "../data-plane/node-cert.js";
import { withRequestMetrics } from "../data-plane/request-metrics.js";
import { peerPolicyFor } from "../peer/policy.js";
import { securityDomainImplementation } from "../security-domain/grpc-handlers.js";
import type { HsmDevicePort } from "./hsm.js";
import type {
  DataPlane,
  DataPlaneOptions,
  LaunchedServer,
  NodePlatform,
  PeerTransport,
  TransportOptions,
} from "./platform.js";

class RealServer implements LaunchedServer {
  constructor(
    private readonly config: NodeConfig,
    private readonly fabric: Fabric,
    private readonly server: ServerHandle,
    readonly enclave: Enclave,
  ) {}

  openHsm(): Promise<HsmDevicePort> {
    return HsmDevice.open(this.server.hsmDir);
  }

  async openTransport(options: TransportOptions): Promise<PeerTransport> {
    const identity = await createAttestedIdentity(this.enclave);
    const policy = peerPolicyFor(this.enclave.identity, this.config.minPeerSvn);
    return new AttestedTransport(options, identity, policy, this.fabric.vendorRootCertPem);
  }

  async serveDataPlane(o: DataPlaneOptions): Promise<DataPlane | null> {
    const { config, logger } = o;
    const credentials = await obtainDataPlaneCredentials({
      nodeId: config.nodeId,
      hfcAddress: config.hfcAddress,
      fabricCaCertPath: config.fabricCaCertPath,
      host: splitHostPort(config.dataListen).host,
      stopped: o.stopped,
      onRetry: (error, attempt) => {
        if (attempt === 1 || attempt % 10 === 0)
          logger.warn({ attempt, error: error.message }, "data-plane certificate not issued yet");
      },
    });
    if (!credentials || o.stopped()) return null;
    const rest = o.rest(credentials.caPem);
    const calls = new CallsInFlight();
    const sessions = new CryptoSessions({
      operations: cryptoOperations(o.keys, config.nodeId, o.access),
      access: o.access,
      metrics: o.metrics,
      audit: o.auditOperation,
      calls,
      onInternalError: o.onInternalError,
    });
    const server = await startDataServer({
      address: config.dataListen,
      credentials,
      keyVault: {
        ...withRequestMetrics(
          o.audited(keyVaultImplementation(o.keys, config.nodeId, o.onInternalError, o.access)),
          o.metrics,
        ),
        CryptoSession: sessions.handler as grpc.UntypedHandleCall,
      },
      securityDomain: withRequestMetrics(
        o.audited(securityDomainImplementation(o.securityDomain, o.backups, o.access, o.onInternalError)),
        o.metrics,
      ),
      accessControl: o.audited(o.accessControl),
      status: unary(async () => o.status(), o.onInternalError) as grpc.handleUnaryCall<unknown, unknown>,
      rest: rest.listener,
      calls,
      sessions,
    });
    return {
      certFingerprint: credentials.certFingerprint,
      busy: () => calls.busy,
      close: async (graceMs) => {
        await server.close(graceMs);
        rest.close();
      },
    };
  }

  serveMetrics(registry: Registry): Promise<MetricsServer | null> {
    return serveMetrics({ registry });
  }
}

/**
 * The package this code runs from (packages/node; this module sits in src/seams and dist/seams alike):
 * the platform measures it and everything it loads, not only the bundle directory the config names.
 */
const RUNNING_PACKAGE_DIR = fileURLToPath(new URL("../..", import.meta.url));

export const systemPlatform: NodePlatform = {
  processMetrics: true,
  async launch(config) {
    const fabric = await openFabric(config.fabricDir);
    const server = fabric.server(config.serverId);
    const enclave = await launchEnclave(server, config.bundleDir, nodeRuntimeClosure(RUNNING_PACKAGE_DIR));
    return new RealServer(config, fabric, server, enclave);
  },
};
