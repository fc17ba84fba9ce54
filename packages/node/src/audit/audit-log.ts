/**
 * This member's audit log (the Azure Monitor analogue), kept by the enclave: one record
 * per data-plane and role operation it served, appended to `<state>/audit.log` and
 * chained with a MAC key sealed to this CPU (`<state>/audit-key.sealed`), so only this
 * member's enclave can extend or verify it. A record holds who, what, which key and
 * version, the result code, the member and the request id — never a token, secret or
 * plaintext. A restarted member resumes the chain; a replacement starts its own.
 *
 * Records are chained at once, in the order they are recorded; their bytes go to the
 * file in batches: while one write is under way, later records wait and then go in one
 * write (under load, one write per batch instead of one per request; the file's bytes
 * and the chain are the same as record-by-record writes).
 */
import { createSecretKey, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { HsmPoolError } from "@hsmpool/errors";
import type { AuditFields, AuditRecord } from "@hsmpool/wire";
import type { AppendableFile, DurableStorage, Randomness } from "../seams/index.js";
import { type ChainVerdict, chainRecord, GENESIS_HASH, recordLine, verifyChain } from "./audit-chain.js";

export interface AuditSealer {
  seal(plaintext: Uint8Array): Uint8Array;
  unseal(blob: Uint8Array): Uint8Array;
}

export type AuditEntry = Omit<AuditFields, "seq" | "member" | "timeMs">;

const MAX_READ = 1000;

export class AuditLog {
  private head = { seq: 0, hash: GENESIS_HASH };
  private size = 0;
  private tail: Promise<void> = Promise.resolve();
  /** Lines chained but not yet handed to a write, and the promise their write settles. */
  private pending: { lines: Buffer[]; position: number; written: Promise<void> } | null = null;
  private readonly recent: AuditRecord[] = [];
  private file: AppendableFile | null = null;

  private constructor(
    private readonly path: string,
    private readonly storage: DurableStorage,
    private readonly macKey: KeyObject,
    private readonly member: string,
    private readonly now: () => number,
  ) {}

  static async open(opts: {
    stateDir: string;
    storage: DurableStorage;
    random: Randomness;
    sealer: AuditSealer;
    member: string;
    now: () => number;
  }): Promise<AuditLog> {
    const keyPath = join(opts.stateDir, "audit-key.sealed");
    const sealed = await opts.storage.read(keyPath);
    let macKey: Uint8Array;
    if (sealed === null) {
      macKey = opts.random.bytes(32);
      await opts.storage.writeAtomic(keyPath, opts.sealer.seal(macKey));
    } else {
      macKey = opts.sealer.unseal(sealed);
    }
    const path = join(opts.stateDir, "audit.log");
    // A KeyObject once, not the raw key imported again into every record's HMAC.
    const log = new AuditLog(path, opts.storage, createSecretKey(macKey), opts.member, opts.now);
    const existing = await opts.storage.read(path);
    if (existing === null) await opts.storage.writeAtomic(path, new Uint8Array());
    else log.resume(existing);
    return log;
  }

  /** Continues the chain after the last complete record (a torn last line from a crash is cut). */
  private resume(bytes: Uint8Array): void {
    const text = Buffer.from(bytes).toString("utf8");
    let offset = 0;
    for (const line of text.split("\n")) {
      if (line.length === 0) continue;
      let r: AuditRecord;
      try {
        r = JSON.parse(line) as AuditRecord;
      } catch {
        break;
      }
      this.head = { seq: r.seq, hash: r.hash };
      offset += Buffer.byteLength(line) + 1;
      this.remember(r);
    }
    this.size = offset;
  }

  private remember(r: AuditRecord): void {
    this.recent.push(r);
    if (this.recent.length > MAX_READ * 2) this.recent.splice(0, this.recent.length - MAX_READ);
  }

  /** Appends one record (chained now; written with the other records of its batch). */
  record(entry: AuditEntry): Promise<void> {
    const r = chainRecord(
      this.macKey,
      { ...entry, seq: this.head.seq + 1, member: this.member, timeMs: this.now() },
      this.head.hash,
    );
    this.head = { seq: r.seq, hash: r.hash };
    this.remember(r);
    const bytes = Buffer.from(recordLine(r));
    if (this.pending === null) {
      const batch = { lines: [] as Buffer[], position: this.size, written: Promise.resolve() };
      this.pending = batch;
      // The batch is written after the previous write, with every line recorded until then.
      batch.written = this.tail
        .catch(() => undefined)
        .then(async () => {
          if (this.pending === batch) this.pending = null;
          this.file ??= await this.storage.openForWrite(this.path);
          await this.file.write(Buffer.concat(batch.lines), batch.position);
        });
      this.tail = batch.written;
    }
    this.pending.lines.push(bytes);
    this.size += bytes.length;
    return this.pending.written;
  }

  /** Records after `afterSeq` (at most `max`), oldest first, from memory (this member's recent ones). */
  read(afterSeq: number, max: number): AuditRecord[] {
    const limit = Math.min(Math.max(max, 1), MAX_READ);
    return this.recent.filter((r) => r.seq > afterSeq).slice(0, limit);
  }

  /** Verifies the file as the host holds it now against this enclave's key and live head. */
  async verify(): Promise<ChainVerdict> {
    await this.tail;
    const bytes = await this.storage.read(this.path);
    if (bytes === null) throw new HsmPoolError("IntegrityError", "the audit log file is gone");
    return verifyChain(this.macKey, Buffer.from(bytes).toString("utf8"), this.head);
  }

  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
    await this.file?.sync();
    await this.file?.close();
    this.file = null;
  }
}
