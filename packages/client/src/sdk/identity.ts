/**
 * A data-plane client identity: an in-memory P-256 key pair whose CSR the HFC's
 * fabric CA signs (IssueClientCert). No client private key ever touches disk.
 */
import {
  certDerToPem,
  createCsrKeyPair,
  type FabricControllerClient,
  type TlsClientMaterial,
} from "@hsmpool/wire";

export async function issueClientIdentity(hfc: FabricControllerClient): Promise<TlsClientMaterial> {
  const { csrDer, privateKeyPem } = await createCsrKeyPair("hsmpool-client");
  const issued = await hfc.issueClientCert(csrDer);
  return { caCertPem: certDerToPem(issued.caCertDer), certPem: certDerToPem(issued.certDer), privateKeyPem };
}
