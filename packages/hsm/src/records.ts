/**
 * Plaintext shapes of the device's records (they are only ever written sealed, see
 * sealed-file.ts): the device record, one partition record, one key record. Decoding
 * re-validates everything, so a record that authenticates but does not make sense
 * is still an IntegrityError rather than a crash later.
 */
import { fail } from "@hsmpool/errors";
import { AES_SIZES, CURVES, isOneOf, KEY_OPS, OPS_BY_TYPE, RSA_SIZES } from "./algorithms.js";
import { isKeyId, type KeyHandle, type KeyShape, makeHandle, shapeOf } from "./key-attributes.js";

export const RECORD_FORMAT = 1;
/** Partition records: format 2 keeps the keys in the journal (key-journal.ts); format 1 listed key files. */
export const PARTITION_RECORD_FORMAT = 2;

export interface DeviceRecord {
  deviceId: string;
  partitionCount: number;
}

export interface PartitionRecord {
  index: number;
  /** Bumped by every zeroize and initialize; sessions from an older epoch are void. */
  epoch: number;
  initialized: boolean;
  /** HMAC-SHA256(salt, credential): enough to check a login, useless to recover the credential. */
  credentialSalt?: Uint8Array;
  credentialVerifier?: Uint8Array;
  /** PKCS#8 DER of the partition's P-384 transfer key. */
  transferKey?: Uint8Array;
  /**
   * Format 1 only: ids of the key files (p<N>/keys/<id>.key) of the partition. Read
   * once at open and migrated into the journal; format 2 records have none.
   */
  legacyKeyIds?: string[];
}

const DEVICE_ID = /^hsm-[0-9a-f]{16}$/;

function corrupt(what: string): never {
  return fail("IntegrityError", `HSM device ${what} record is malformed`);
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes).toString("utf8"));
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through: reported below as a malformed record
  }
  return corrupt(what);
}

export function newDeviceId(random: Uint8Array): string {
  return `hsm-${Buffer.from(random).toString("hex")}`;
}

export function encodeDeviceRecord(r: DeviceRecord): Buffer {
  return Buffer.from(JSON.stringify({ format: RECORD_FORMAT, ...r }));
}

export function decodeDeviceRecord(bytes: Uint8Array): DeviceRecord {
  const j = parseJson(bytes, "device");
  const { deviceId, partitionCount } = j;
  if (j.format !== RECORD_FORMAT || typeof deviceId !== "string" || !DEVICE_ID.test(deviceId))
    corrupt("device");
  if (!Number.isSafeInteger(partitionCount) || (partitionCount as number) < 1) corrupt("device");
  return { deviceId: deviceId as string, partitionCount: partitionCount as number };
}

const b64 = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString("base64") : undefined);

function fromB64(value: unknown, what: string): Buffer | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") corrupt(what);
  return Buffer.from(value, "base64");
}

export function encodePartitionRecord(r: PartitionRecord): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: PARTITION_RECORD_FORMAT,
      index: r.index,
      epoch: r.epoch,
      initialized: r.initialized,
      credentialSalt: b64(r.credentialSalt),
      credentialVerifier: b64(r.credentialVerifier),
      transferKey: b64(r.transferKey),
    }),
  );
}

export function decodePartitionRecord(bytes: Uint8Array, expectedIndex: number): PartitionRecord {
  const j = parseJson(bytes, "partition");
  const { index, epoch, initialized, keyIds, format } = j;
  if ((format !== 1 && format !== PARTITION_RECORD_FORMAT) || index !== expectedIndex) corrupt("partition");
  if (typeof initialized !== "boolean") corrupt("partition");
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 0) corrupt("partition");
  const record: PartitionRecord = { index, epoch: epoch as number, initialized };
  if (format === 1) {
    if (!Array.isArray(keyIds) || !keyIds.every(isKeyId) || new Set(keyIds).size !== keyIds.length)
      corrupt("partition");
    if (!initialized && keyIds.length > 0) corrupt("partition");
    record.legacyKeyIds = [...keyIds];
  } else if (keyIds !== undefined) {
    corrupt("partition");
  }
  if (initialized) {
    record.credentialSalt = fromB64(j.credentialSalt, "partition");
    record.credentialVerifier = fromB64(j.credentialVerifier, "partition");
    record.transferKey = fromB64(j.transferKey, "partition");
    if (!record.credentialSalt || !record.credentialVerifier || !record.transferKey) corrupt("partition");
  }
  return record;
}

/**
 * Key record: u32 BE length of the attributes JSON | attributes JSON | material bytes.
 * Binary (not base64 in JSON) so the plaintext buffer can be wiped after sealing.
 */
export function encodeKeyRecord(handle: KeyHandle, material: Uint8Array): Buffer {
  const attributes = Buffer.from(
    JSON.stringify({
      format: RECORD_FORMAT,
      id: handle.id,
      ...shapeOf(handle),
      ops: handle.ops,
      label: b64(handle.label),
    }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32BE(attributes.length);
  return Buffer.concat([length, attributes, material]);
}

export function decodeKeyRecord(bytes: Buffer, expectedId: string): { handle: KeyHandle; material: Buffer } {
  if (bytes.length < 4) corrupt("key");
  const length = bytes.readUInt32BE(0);
  if (4 + length > bytes.length) corrupt("key");
  const j = parseJson(bytes.subarray(4, 4 + length), "key");
  if (j.format !== RECORD_FORMAT || j.id !== expectedId) corrupt("key");
  const shape = decodeShape(j);
  const ops = j.ops;
  if (!Array.isArray(ops) || ops.length === 0 || !ops.every((op) => isOneOf(KEY_OPS, op))) corrupt("key");
  if (!ops.every((op) => OPS_BY_TYPE[shape.kty].includes(op))) corrupt("key");
  const handle = makeHandle(expectedId, shape, ops, fromB64(j.label, "key"));
  return { handle, material: bytes.subarray(4 + length) };
}

function decodeShape(j: Record<string, unknown>): KeyShape {
  if (j.kty === "RSA" && isOneOf(RSA_SIZES, j.size)) return { kty: "RSA", size: j.size };
  if (j.kty === "oct" && isOneOf(AES_SIZES, j.size)) return { kty: "oct", size: j.size };
  if (j.kty === "EC" && isOneOf(CURVES, j.crv)) return { kty: "EC", crv: j.crv };
  return corrupt("key");
}
