/**
 * Secret-leak scan. Needles are secrets the harness knows must never leave their
 * boundary (each server's CPU fuse, the HFC's CA key-encryption key, the payload
 * canaries the workload signs), searched for raw and as hex / base64 / base64url;
 * plus shapes no file may contain (a PEM private key, a JWK with a private part).
 * `StreamScanner` finds needles in bytes that arrive in chunks (proxied links).
 * Pure; the runner reads the files.
 */
import type { CheckerResult } from "./result.js";

export interface Needle {
  /** What the secret is (never the secret itself). */
  name: string;
  bytes: Uint8Array;
}

export interface LeakFinding {
  /** A file path, or "link n1->n2" for proxied bytes. */
  where: string;
  what: string;
}

/** The forms a secret could take in a file or a log: raw bytes, hex (both cases), base64, base64url. */
export function needleForms(n: Needle): { name: string; bytes: Buffer }[] {
  const b = Buffer.from(n.bytes);
  const hex = b.toString("hex");
  return [
    { name: n.name, bytes: b },
    { name: `${n.name} (hex)`, bytes: Buffer.from(hex) },
    { name: `${n.name} (HEX)`, bytes: Buffer.from(hex.toUpperCase()) },
    { name: `${n.name} (base64)`, bytes: Buffer.from(b.toString("base64").replace(/=+$/, "")) },
    { name: `${n.name} (base64url)`, bytes: Buffer.from(b.toString("base64url")) },
  ];
}

const SHAPES: { what: string; re: RegExp }[] = [
  { what: "a PEM private key", re: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
  // A JWK's private members next to its key type: "d" (EC/RSA private exponent) or "k" (oct key).
  { what: "a private JWK", re: /"kty"\s*:\s*"(?:EC|RSA|oct)"[^{}]*"(?:d|k)"\s*:\s*"[A-Za-z0-9_-]{16,}"/ },
  // A signed JWT (bearer token): base64url JSON header "{"..." . payload "{"..." . signature.
  { what: "a bearer token", re: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/ },
];

/** Everything `needles` (in all their forms) and the forbidden shapes find in `content`. */
export function findLeaks(content: Uint8Array, needles: readonly Needle[], where: string): LeakFinding[] {
  const buf = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const out: LeakFinding[] = [];
  for (const n of needles) {
    const hit = needleForms(n).find((f) => f.bytes.length > 0 && buf.includes(f.bytes));
    if (hit) out.push({ where, what: hit.name });
  }
  const text = buf.toString("latin1");
  for (const s of SHAPES) if (s.re.test(text)) out.push({ where, what: s.what });
  return out;
}

/**
 * Needles in a byte stream that arrives in chunks: keeps the tail of the previous
 * chunk so a split needle is found. `needles` may be a getter (secrets that appear
 * during the run, such as the workload's payloads); its forms are rebuilt when it grows.
 */
export class StreamScanner {
  private tail = Buffer.alloc(0);
  private forms: { name: string; bytes: Buffer }[] = [];
  private formsFor = -1;
  private keep = 0;
  readonly findings = new Set<string>();
  bytesScanned = 0;

  constructor(private readonly needles: readonly Needle[] | (() => readonly Needle[])) {}

  private refresh(): void {
    const list = typeof this.needles === "function" ? this.needles() : this.needles;
    if (list.length === this.formsFor) return;
    this.formsFor = list.length;
    this.forms = list.flatMap(needleForms).filter((f) => f.bytes.length > 0);
    this.keep = Math.max(0, ...this.forms.map((f) => f.bytes.length - 1));
  }

  push(chunk: Uint8Array): void {
    this.bytesScanned += chunk.byteLength;
    this.refresh();
    if (this.forms.length === 0) return;
    const window = Buffer.concat([this.tail, chunk]);
    for (const f of this.forms) if (window.includes(f.bytes)) this.findings.add(f.name);
    this.tail = window.subarray(Math.max(0, window.length - this.keep));
  }
}

export function leakResult(
  findings: readonly LeakFinding[],
  scanned: { files: number; bytes: number; linkBytes: number; needles: number },
): CheckerResult {
  return {
    name: "leaks",
    valid: findings.length === 0,
    summary:
      findings.length === 0
        ? `no secret in ${scanned.files} files (${scanned.bytes} bytes) or ${scanned.linkBytes} proxied bytes (${scanned.needles} secrets searched, raw/hex/base64)`
        : `${findings.length} leaks, first: ${findings[0]?.what} in ${findings[0]?.where}`,
    details: { findings, scanned },
  };
}
