import "reflect-metadata";
import { createPrivateKey, webcrypto, X509Certificate } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { isHsmPoolError } from "@hsmpool/errors";
import { certDerToPem, createCsrKeyPair, NODE_TLS_NAME } from "@hsmpool/wire";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FabricCa } from "./index.js";
import { CA_CERT_FILE, CA_KEK_FILE, CA_KEY_FILE } from "./pki.js";

let dir: string;
let ca: FabricCa;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hsmpool-hfc-pki-"));
  ca = await FabricCa.openOrCreate(join(dir, "pki"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const cert = (der: Uint8Array) => new X509Certificate(Buffer.from(der));

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isHsmPoolError(e) ? e.code : e).toBe(code);
  if (message) expect((e as Error).message).toMatch(message);
}

describe("fabric CA", () => {
  it("issues node certificates that verify against the CA with node:crypto and carry the names clients check", async () => {
    const { csrDer } = await createCsrKeyPair("asks-for-another-name");
    const issued = await ca.issueNodeCert("n2", "pool-x", csrDer);
    const leaf = cert(issued.certDer);
    const root = cert(issued.caCertDer);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(root.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subject).toContain("CN=n2");
    expect(leaf.subjectAltName).toContain(`DNS:${NODE_TLS_NAME}`);
    expect(leaf.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(leaf.subjectAltName).not.toContain("asks-for-another-name");
    expect(leaf.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
  });

  it("issues client certificates for clientAuth only, for the key in the CSR", async () => {
    const { csrDer } = await createCsrKeyPair();
    const issued = await ca.issueClientCert(csrDer);
    const leaf = cert(issued.certDer);
    expect(leaf.verify(cert(ca.caCertDer).publicKey)).toBe(true);
    expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    const csr = new x509.Pkcs10CertificateRequest(csrDer);
    expect(Buffer.from(leaf.publicKey.export({ type: "spki", format: "der" }))).toEqual(
      Buffer.from(csr.publicKey.rawData),
    );
  });

  it("keeps its private key sealed: no plaintext PEM or DER key on disk, secrets 0600", async () => {
    const pki = join(dir, "pki");
    const sealed = await readFile(join(pki, CA_KEY_FILE));
    expect(sealed.toString("latin1")).not.toMatch(/PRIVATE KEY/);
    expect(sealed.subarray(0, 4).toString("ascii")).toBe("HFCK");
    for (const format of ["pem", "der"] as const) {
      for (const type of ["pkcs8", "sec1"] as const) {
        expect(() => createPrivateKey({ key: sealed, format, type })).toThrow();
      }
    }
    expect((await stat(join(pki, CA_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(join(pki, CA_KEK_FILE))).mode & 0o777).toBe(0o600);
    for (const file of [CA_CERT_FILE, CA_KEY_FILE, CA_KEK_FILE]) {
      expect((await readFile(join(pki, file))).toString("latin1")).not.toMatch(/PRIVATE KEY/);
    }
  });

  it("reopens from disk as the same CA and still signs", async () => {
    const again = await FabricCa.openOrCreate(join(dir, "pki"));
    expect(Buffer.from(again.caCertDer)).toEqual(Buffer.from(ca.caCertDer));
    const issued = await again.issueClientCert((await createCsrKeyPair()).csrDer);
    expect(cert(issued.certDer).verify(cert(ca.caCertDer).publicKey)).toBe(true);
  });

  it("refuses to open a tampered sealed key or a replaced key-encryption key", async () => {
    const copy = join(dir, "tampered");
    const pki = join(dir, "pki");
    await mkdir(copy, { recursive: true });
    for (const file of [CA_CERT_FILE, CA_KEY_FILE, CA_KEK_FILE])
      await copyFile(join(pki, file), join(copy, file));
    const sealed = await readFile(join(copy, CA_KEY_FILE));
    sealed[sealed.length - 20] = (sealed[sealed.length - 20] as number) ^ 1;
    await writeFile(join(copy, CA_KEY_FILE), sealed);
    await expectCode(FabricCa.openOrCreate(copy), "IntegrityError", /does not open/);
    await writeFile(join(copy, CA_KEY_FILE), await readFile(join(pki, CA_KEY_FILE)));
    await writeFile(join(copy, CA_KEK_FILE), Buffer.alloc(32, 7));
    await expectCode(FabricCa.openOrCreate(copy), "IntegrityError", /does not open/);
  });

  it("refuses garbage, CSRs whose signature fails, unsupported keys and bad node ids", async () => {
    await expectCode(ca.issueClientCert(new Uint8Array([1, 2, 3])), "BadParameter", /not a DER PKCS#10/);
    await expectCode(ca.issueClientCert(new Uint8Array()), "BadParameter");
    const { csrDer } = await createCsrKeyPair();
    const tampered = Uint8Array.from(csrDer);
    tampered[tampered.length - 3] = (tampered[tampered.length - 3] as number) ^ 0xff;
    await expectCode(ca.issueClientCert(tampered), "BadParameter");
    const crypto = webcrypto as unknown as Parameters<
      typeof x509.Pkcs10CertificateRequestGenerator.create
    >[1];
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-521" }, false, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const p521 = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: "CN=x", keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-512" } },
      crypto,
    );
    await expectCode(ca.issueClientCert(new Uint8Array(p521.rawData)), "BadParameter", /P-256\/P-384 or RSA/);
    await expectCode(ca.issueNodeCert("n1,CN=evil", "pool", csrDer), "BadParameter", /not a node id/);
  });
});

describe("fabric PKI over real TLS", () => {
  async function handshake(
    serverCert: { certDer: Uint8Array; key: Buffer },
    client: { certDer: Uint8Array; key: Buffer },
  ) {
    const caPem = ca.caCertPem;
    const server = createServer({
      key: serverCert.key,
      cert: certDerToPem(serverCert.certDer),
      ca: caPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on("secureConnection", (s: TLSSocket) => s.end("ok"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      return await new Promise<string>((resolve) => {
        const socket = connect({
          host: "127.0.0.1",
          port,
          servername: NODE_TLS_NAME,
          ca: caPem,
          key: client.key,
          cert: certDerToPem(client.certDer),
        });
        let data = "";
        socket.on("data", (d) => {
          data += String(d);
        });
        socket.on("end", () => resolve(data));
        socket.on("error", (e) => resolve(`error: ${e.message}`));
      });
    } finally {
      server.close();
    }
  }

  it("a client certificate opens a node's mTLS server; a client certificate cannot act as a node", async () => {
    const nodeKeys = await createCsrKeyPair();
    const node = await ca.issueNodeCert("n1", "pool-x", nodeKeys.csrDer);
    const clientKeys = await createCsrKeyPair();
    const client = await ca.issueClientCert(clientKeys.csrDer);
    expect(
      await handshake(
        { certDer: node.certDer, key: nodeKeys.privateKeyPem },
        { certDer: client.certDer, key: clientKeys.privateKeyPem },
      ),
    ).toBe("ok");
    // A server presenting a client-only certificate fails the client's purpose check.
    const impostor = await handshake(
      { certDer: client.certDer, key: clientKeys.privateKeyPem },
      { certDer: client.certDer, key: clientKeys.privateKeyPem },
    );
    expect(impostor).toBe("error: unsuitable certificate purpose");
  });
});
