/**
 * Key pairs whose KeyObjects can be exported at any time without deadlocking the thread.
 *
 * Why (Node 20): a key-generation job keeps the new key, and its config's destructor
 * takes that key's mutex. A SYNCHRONOUS job is freed by a GC weak callback, so it can be
 * freed in the middle of any allocation, including one inside an export of the same key
 * (a JWK export holds the key's mutex while it allocates the JWK's strings): the thread
 * then waits for a mutex it holds itself. A pool member froze for good under a create
 * fill that way (gdb: ExportJWKEcKey -> GC -> KeyGenJob::~KeyGenJob -> pthread_mutex_lock,
 * every other thread idle) until the HFC fenced it. An ASYNC job is deleted by its
 * completion handler right after its callback, never by GC: 45,000 async pairs exported
 * under a 1 MiB young generation never froze, while the sync loop froze within seconds.
 *
 * So: async generation hands out the job's KeyObjects. Sync generation hands out the key's
 * JWK only, and the KeyObjects are made from it: a key with a mutex of its own that no job
 * ever locks. JWK, not PKCS#8 DER: OpenSSL 3 parses a PKCS#8 P-256 key in ~0.5 ms (its
 * decoder lookup), a JWK in ~0.07 ms. (The private JWK's strings stay in this process's
 * heap until collected, as the KeyObject's own copy does: inside the enclave either way.)
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from "node:crypto";

export type KeyPairSpec =
  | { type: "ec"; namedCurve: string }
  | { type: "rsa"; modulusLength: number; publicExponent?: number };

export interface IsolatedKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const JWK = {
  privateKeyEncoding: { format: "jwk" },
  publicKeyEncoding: { format: "jwk" },
} as const;

function fromJwk(jwk: JsonWebKey): IsolatedKeyPair {
  const privateKey = createPrivateKey({ key: jwk, format: "jwk" });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

function options(spec: KeyPairSpec): object {
  return spec.type === "ec"
    ? { namedCurve: spec.namedCurve, ...JWK }
    : { modulusLength: spec.modulusLength, publicExponent: spec.publicExponent ?? 0x10001, ...JWK };
}

// node:crypto's typings have no overload for JWK-encoded output; this is the same
// function, typed for it (Node >= 15.9 encodes a generated pair as JWK).
const generateJwkPairSync = generateKeyPairSync as unknown as (
  type: KeyPairSpec["type"],
  options: object,
) => { publicKey: JsonWebKey; privateKey: JsonWebKey };

/** On the thread pool (an RSA generation can take a second: never on the event loop). */
export function generateIsolatedKeyPair(spec: KeyPairSpec): Promise<IsolatedKeyPair> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) => {
      if (err) reject(err);
      else resolve({ privateKey, publicKey });
    };
    if (spec.type === "ec") generateKeyPair("ec", { namedCurve: spec.namedCurve }, done);
    else
      generateKeyPair(
        "rsa",
        { modulusLength: spec.modulusLength, publicExponent: spec.publicExponent ?? 0x10001 },
        done,
      );
  });
}

/** On the calling thread: for one-off keys (a node's TLS identity, a signing key), never per request. */
export function generateIsolatedKeyPairSync(spec: KeyPairSpec): IsolatedKeyPair {
  return fromJwk(generateJwkPairSync(spec.type, options(spec)).privateKey);
}
