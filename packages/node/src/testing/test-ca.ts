/**
 * A minimal stand-in for the HFC's fabric PKI in node tests: an in-memory test CA
 * (its private key is never written) that signs CSRs, served as the HFC's
 * IssueNodeCert over plain gRPC on 127.0.0.1 (proto/hfc.proto), plus client
 * certificates for the tests' own KeyVault/NodeControl calls.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { bindLoopback, hfcProto } from "@hsmpool/wire";
import * as x509 from "@peculiar/x509";

const provider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;

type KeyPair = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]["keys"];

async function keyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as unknown as KeyPair;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(12)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

export interface ClientCredentialsPem {
  keyPem: string;
  certPem: string;
  caPem: string;
}

export class TestCa {
  /** Node ids seen in IssueNodeCert calls (in order). */
  readonly issuedTo: string[] = [];

  private constructor(
    private readonly keys: KeyPair,
    readonly cert: x509.X509Certificate,
  ) {}

  static async create(): Promise<TestCa> {
    const keys = await keyPair();
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serial(),
        name: "CN=hsmpool node-test fabric CA",
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 24 * 3600_000),
        keys,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ],
      },
      provider,
    );
    return new TestCa(keys, cert);
  }

  get certPem(): string {
    return this.cert.toString("pem");
  }

  /** Signs a CSR (after checking its self-signature) for server + client auth. */
  async issue(csrDer: Uint8Array, commonName: string): Promise<Uint8Array> {
    const csr = new x509.Pkcs10CertificateRequest(csrDer);
    if (!(await csr.verify(provider))) throw new Error("CSR signature does not verify");
    const now = Date.now();
    // The CSR's requested extensions (extensionRequest attribute): keep its subjectAltName.
    const san = csr.extensions.find((e) => e.type === "2.5.29.17");
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: `CN=${commonName}`,
        issuer: this.cert.subject,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 24 * 3600_000),
        publicKey: csr.publicKey,
        signingKey: this.keys.privateKey,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
          ...(san ? [san] : []),
        ],
      },
      provider,
    );
    return new Uint8Array(cert.rawData);
  }

  /** A client key + certificate for the tests' data-plane calls (kept in memory). */
  async clientCredentials(name = "node-test-client"): Promise<ClientCredentialsPem> {
    const keys = await keyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: `CN=${name}`, keys, signingAlgorithm: SIGNING },
      provider,
    );
    const der = await this.issue(new Uint8Array(csr.rawData), name);
    const pkcs8 = Buffer.from(
      await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as unknown as webcrypto.CryptoKey),
    );
    return {
      keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END PRIVATE KEY-----\n`,
      certPem: new x509.X509Certificate(der).toString("pem"),
      caPem: this.certPem,
    };
  }

  /** Serves IssueNodeCert on 127.0.0.1 (port 0 = any); returns its address and a stop function. */
  async serve(port = 0): Promise<{ address: string; stop: () => Promise<void> }> {
    const server = new grpc.Server();
    const unimplemented: grpc.handleUnaryCall<unknown, unknown> = (_call, cb) =>
      cb({ code: grpc.status.UNIMPLEMENTED, details: "test CA only issues node certificates" });
    server.addService(hfcProto().FabricController.service, {
      IssueNodeCert: (
        call: grpc.ServerUnaryCall<{ nodeId: string; csrDer: Buffer }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        this.issuedTo.push(call.request.nodeId);
        this.issue(call.request.csrDer, call.request.nodeId).then(
          (certDer) => cb(null, { certDer: Buffer.from(certDer), caCertDer: Buffer.from(this.cert.rawData) }),
          (e: Error) => cb({ code: grpc.status.INVALID_ARGUMENT, details: e.message }),
        );
      },
      Status: unimplemented,
      Kill: unimplemented,
      Restart: unimplemented,
      IssueClientCert: unimplemented,
      Shutdown: unimplemented,
    });
    const bound = await bindLoopback(server, grpc.ServerCredentials.createInsecure(), port);
    return {
      address: `127.0.0.1:${bound}`,
      stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
    };
  }
}
