/**
 * This node's HSM partition and its credential (DESIGN.md step 2). The credential
 * is random, made by the HSM at initialize(), and exists in plaintext only in this
 * process: on disk it is sealed with the enclave's sealing key (MRSIGNER policy),
 * so only this code signer on this CPU can unseal it.
 *
 *   <state>/partition-credential.sealed   platform sealed blob, AAD "hsmpool-partition-credential-v1|<partition id>"
 */
import { join } from "node:path";
import { utf8 } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { secondsSince } from "@hsmpool/metrics";
import type { Enclave } from "@hsmpool/platform";
import type { HsmPartition, HsmSession } from "../seams/hsm.js";
import { type DurableStorage, fileStorage } from "../seams/storage.js";

export const CREDENTIAL_FILE = "partition-credential.sealed";

export class PartitionAccess {
  private current: HsmSession | null = null;
  private gated: { session: HsmSession; proxy: HsmSession } | null = null;

  /**
   * `beforeOperation`: TEST-ONLY chaos hook run before every session call (it may arm an HSM fault).
   * `observe`: told each session call's method name, outcome and duration (the node's metrics).
   */
  constructor(
    readonly partition: HsmPartition,
    private readonly enclave: Enclave,
    private readonly stateDir: string,
    private readonly beforeOperation?: () => void,
    private readonly storage: DurableStorage = fileStorage,
    private readonly observe?: (operation: string, ok: boolean, seconds: number) => void,
  ) {}

  private get credentialPath(): string {
    return join(this.stateDir, CREDENTIAL_FILE);
  }

  private aad(): Uint8Array {
    return utf8(`hsmpool-partition-credential-v1|${this.partition.id}`);
  }

  /** The logged-in session; OwnershipPending-style failure until the partition is initialized. */
  get session(): HsmSession {
    const session =
      this.current ?? fail("NotInitialized", `partition ${this.partition.id} is not initialized yet`);
    const gate = this.beforeOperation;
    const observe = this.observe;
    if (!gate && !observe) return session;
    if (this.gated?.session !== session) {
      const proxy = new Proxy(session, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver);
          if (typeof v !== "function") return v;
          return (...args: unknown[]) => {
            gate?.();
            const call = () => (v as (...a: unknown[]) => unknown).apply(target, args);
            return observe ? timed(String(prop), call, observe) : call();
          };
        },
      });
      this.gated = { session, proxy };
    }
    return this.gated.proxy;
  }

  get hasSession(): boolean {
    return this.current !== null;
  }

  /** Restart path: unseal the stored credential and log in. False when there is none (first boot). */
  async loginWithStoredCredential(): Promise<boolean> {
    const sealed = await this.storage.read(this.credentialPath);
    if (sealed === null) return false;
    const credential = this.enclave.unseal(sealed, { aad: this.aad() });
    try {
      this.current = await this.partition.login(credential);
    } finally {
      credential.fill(0);
    }
    return true;
  }

  /**
   * First boot (the ownership machine's hsm.zeroizeAndInit): wipe the partition,
   * initialize it with a fresh random credential, seal that to disk, log in.
   */
  async zeroizeAndInitialize(): Promise<HsmSession> {
    this.current?.logout();
    this.current = null;
    await this.partition.zeroize();
    const credential = await this.partition.initialize();
    try {
      await this.storage.writeAtomic(
        this.credentialPath,
        this.enclave.seal(credential, { policy: "mrsigner", aad: this.aad() }),
      );
      this.current = await this.partition.login(credential);
    } finally {
      credential.fill(0);
    }
    return this.current;
  }
}

/** Runs a session call and reports how it went once it settles (sync or async). */
function timed(
  operation: string,
  call: () => unknown,
  observe: (operation: string, ok: boolean, seconds: number) => void,
): unknown {
  const started = process.hrtime.bigint();
  const done = (ok: boolean) => observe(operation, ok, secondsSince(started));
  let result: unknown;
  try {
    result = call();
  } catch (e) {
    done(false);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v: unknown) => {
        done(true);
        return v;
      },
      (e: unknown) => {
        done(false);
        throw e;
      },
    );
  }
  done(true);
  return result;
}
