/**
 * Enclave launch and the running enclave: the platform checks the bundle, then the
 * enclave holds its identity and (privately) the server secrets it needs to quote
 * and seal. Nothing here hands out the fuse or the platform key in extractable form.
 */
import { type KeyObject, webcrypto } from "node:crypto";
import { fromHexStrict } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { verifyBundle } from "./bundle.js";
import { loadServerSecrets } from "./fabric.js";
import { EC_P256 } from "./pki.js";
import { signQuote } from "./quote.js";
import { sealWithFuse, unsealWithFuse } from "./seal.js";
import type {
  Enclave,
  EnclaveIdentity,
  QuoteOptions,
  QuotingIssuer,
  RuntimeClosure,
  SealOptions,
  ServerHandle,
  UnsealOptions,
} from "./types.js";

class RunningEnclave implements Enclave {
  readonly identity: EnclaveIdentity;
  readonly #fuse: Uint8Array;
  readonly #platformKey: KeyObject;
  readonly #platformCertDer: Uint8Array;

  constructor(
    identity: EnclaveIdentity,
    fuse: Uint8Array,
    platformKey: KeyObject,
    platformCertDer: Uint8Array,
  ) {
    this.identity = Object.freeze({ ...identity });
    this.#fuse = fuse;
    this.#platformKey = platformKey;
    this.#platformCertDer = platformCertDer;
  }

  getQuote(reportData: Uint8Array, opts: QuoteOptions = {}): Uint8Array {
    if (!(reportData instanceof Uint8Array)) fail("BadParameter", "report data must be a Uint8Array");
    const nonce = opts.nonce ?? new Uint8Array(0);
    if (!(nonce instanceof Uint8Array)) fail("BadParameter", "nonce must be a Uint8Array");
    return signQuote(
      {
        mrenclave: fromHexStrict(this.identity.mrenclave, 32)!,
        mrsigner: fromHexStrict(this.identity.mrsigner, 32)!,
        productId: this.identity.productId,
        svn: this.identity.svn,
        debug: this.identity.debug,
        reportData,
        nonce,
      },
      [this.#platformCertDer],
      this.#platformKey,
    );
  }

  async quotingIssuer(): Promise<QuotingIssuer> {
    const pkcs8 = this.#platformKey.export({ type: "pkcs8", format: "der" });
    try {
      const signingKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, EC_P256, false, ["sign"]);
      return { chainDer: [new Uint8Array(this.#platformCertDer)], signingKey };
    } finally {
      pkcs8.fill(0);
    }
  }

  seal(plaintext: Uint8Array, opts: SealOptions): Uint8Array {
    return sealWithFuse(this.#fuse, this.identity, plaintext, opts);
  }

  unseal(blob: Uint8Array, opts?: UnsealOptions): Uint8Array {
    return unsealWithFuse(this.#fuse, this.identity, blob, opts);
  }
}

/**
 * Measures and checks the bundle (LaunchRefused naming the failed check), then starts the enclave on
 * `server`. A process that runs the bundle passes its `runtime` closure so the packages it loads are
 * measured too; without it only the bundle's own files are (in-process tests of the platform).
 */
export async function launchEnclave(
  server: ServerHandle,
  bundleDir: string,
  runtime?: RuntimeClosure,
): Promise<Enclave> {
  const { mrenclave, sigstruct } = await verifyBundle(bundleDir, runtime);
  const secrets = await loadServerSecrets(server);
  return new RunningEnclave(
    {
      mrenclave,
      mrsigner: sigstruct.mrsigner,
      productId: sigstruct.productId,
      svn: sigstruct.svn,
      debug: sigstruct.debug,
      serverId: server.id,
      rackId: server.rackId,
    },
    secrets.fuse,
    secrets.platformKey,
    server.platformCertDer,
  );
}
