/**
 * Just enough DER to find one extension in an X.509 certificate. Why hand-written:
 * verifyPeer runs inside every TLS handshake, and the general ASN.1 libraries
 * (@peculiar/x509, asn1js) spend 0.6–2 ms decoding a whole certificate to read one
 * field, which halved handshake throughput. This walks only the path
 * Certificate > TBSCertificate > [3] extensions, with every length bounds-checked.
 * It is only ever given certificates whose signature has already been verified.
 */

interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

export class DerError extends Error {}

const TAG_SEQUENCE = 0x30;
const TAG_BOOLEAN = 0x01;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_EXTENSIONS = 0xa3; // [3] EXPLICIT, constructed
const MAX_LENGTH_OCTETS = 4;

function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new DerError("truncated header");
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used in X.509");
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > MAX_LENGTH_OCTETS) throw new DerError("unsupported length form");
    if (start + octets > limit) throw new DerError("truncated length");
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[start + i]!;
    start += octets;
  }
  const end = start + length;
  if (end > limit) throw new DerError("content runs past its container");
  return { tag, start, end };
}

function expect(tlv: Tlv, tag: number, what: string): Tlv {
  if (tlv.tag !== tag) throw new DerError(`expected ${what}`);
  return tlv;
}

/** DER content octets of a dotted OID (base-128 arcs, first two arcs combined). */
export function encodeOid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map((a) => Number.parseInt(a, 10));
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new DerError("bad OID");
  const out: number[] = [];
  for (const arc of [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)]) {
    const groups = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return Uint8Array.from(out);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The extension with content-octets OID `oid`, or null; DerError for malformed input. */
export function findExtension(
  certDer: Uint8Array,
  oid: Uint8Array,
): { critical: boolean; value: Uint8Array } | null {
  const cert = expect(readTlv(certDer, 0, certDer.length), TAG_SEQUENCE, "Certificate");
  const tbs = expect(readTlv(certDer, cert.start, cert.end), TAG_SEQUENCE, "TBSCertificate");
  for (let at = tbs.start; at < tbs.end; ) {
    const field = readTlv(certDer, at, tbs.end);
    at = field.end;
    if (field.tag !== TAG_EXTENSIONS) continue;
    const list = expect(readTlv(certDer, field.start, field.end), TAG_SEQUENCE, "Extensions");
    for (let e = list.start; e < list.end; ) {
      const ext = expect(readTlv(certDer, e, list.end), TAG_SEQUENCE, "Extension");
      e = ext.end;
      const id = expect(readTlv(certDer, ext.start, ext.end), TAG_OID, "extnID");
      let next = readTlv(certDer, id.end, ext.end);
      let critical = false;
      if (next.tag === TAG_BOOLEAN) {
        critical = next.end - next.start === 1 && certDer[next.start] !== 0;
        next = readTlv(certDer, next.end, ext.end);
      }
      expect(next, TAG_OCTET_STRING, "extnValue");
      if (sameBytes(certDer.subarray(id.start, id.end), oid)) {
        return { critical, value: certDer.slice(next.start, next.end) };
      }
    }
    return null;
  }
  return null;
}
