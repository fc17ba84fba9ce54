/** The key reserve on a real HSM partition: keys made ahead, taken once, discarded when unusable. */
import { HsmDevice, type KeySpec, type Session } from "@hsmpool/hsm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../seams/clock.js";
import { makeFabric, removeTempDirs, tempDir } from "../testing/fixtures.js";
import { deleteHsmKeys } from "./key-index.js";
import { KeyReserve } from "./key-reserve.js";
import { prepareKey } from "./key-service.js";

let device: HsmDevice;
let session: Session;
let dekA: string;
let dekB: string;
const EC: KeySpec = { kty: "EC", crv: "P-256", ops: ["sign", "verify"] };
const OCT: KeySpec = { kty: "oct", size: 256, ops: ["encrypt", "decrypt"] };

beforeAll(async () => {
  const root = await tempDir("hsmpool-reserve-");
  const fabric = await makeFabric(root, 1);
  device = await HsmDevice.open(fabric.servers()[0]!.hsmDir);
  session = await device.partition(0).login(await device.partition(0).initialize());
  const wrapping = { kty: "oct" as const, size: 256, ops: ["wrapKey", "unwrapKey"] };
  dekA = (await session.generateKey(wrapping)).id;
  dekB = (await session.generateKey(wrapping)).id;
});
afterAll(async () => {
  await device.close();
  await removeTempDirs();
});

function reserve(
  maxSpecs = 4,
  busy?: () => boolean,
): { reserve: KeyReserve; prepared: string[]; errors: unknown[] } {
  const prepared: string[] = [];
  const errors: unknown[] = [];
  const r = new KeyReserve({
    depth: 2,
    maxSpecs,
    prepare: async (spec, dek) => {
      const key = await prepareKey(session, spec, dek);
      prepared.push(key.handle.id);
      return key;
    },
    discard: (ids) => deleteHsmKeys(session, ids),
    onError: (e) => errors.push(e),
    quietMs: 1,
    ...(busy ? { busy } : {}),
    clock: systemClock,
  });
  return { reserve: r, prepared, errors };
}

const held = async () => new Set((await session.listHandles()).map((h) => h.id));

async function until(probe: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !probe(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(probe()).toBe(true);
}

describe("key reserve", () => {
  it("prepares on demand, refills to its depth, and hands each key out once", async () => {
    const { reserve: r, prepared, errors } = reserve();
    const first = await r.take(EC, dekA);
    expect(first.publicJwk?.kty).toBe("EC");
    r.refill(EC, dekA);
    await until(() => r.size === 2);
    const second = await r.take(EC, dekA);
    const third = await r.take(EC, dekA);
    expect(new Set([first.handle.id, second.handle.id, third.handle.id]).size).toBe(3);
    expect(prepared.slice(1, 3)).toEqual([second.handle.id, third.handle.id]);
    // Ready keys are real partition keys, wrapped under the DEK they were taken for.
    const blob = await session.exportWrapped(second.handle, dekA);
    expect(second.wrappedMaterial.length).toBe(blob.length);
    expect(await held()).toContain(third.handle.id);
    expect(errors).toEqual([]);
    await r.close();
  });

  it("refills only while no call is being answered", async () => {
    let busy = true;
    const { reserve: r, prepared, errors } = reserve(4, () => busy);
    r.refill(EC, dekA);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(prepared).toEqual([]);
    busy = false;
    await until(() => r.size === 2);
    expect(prepared).toHaveLength(2);
    expect(errors).toEqual([]);
    await r.close();
  });

  it("discards keys prepared under another DEK, of a forgotten spec, and on close", async () => {
    const { reserve: r, errors } = reserve(1);
    r.refill(EC, dekA);
    await until(() => r.size === 2);
    const underA = [...(await held())];
    const taken = await r.take(EC, dekB); // another DEK: the two keys under dekA are never used
    expect(taken.handle.id).not.toBe(underA.at(-1));
    await until(() => r.size === 0);
    r.refill(OCT, dekB); // a second spec beyond maxSpecs = 1 empties the first
    await until(() => r.size === 2);
    const ready = [...(await held())].filter((id) => !underA.includes(id) && id !== taken.handle.id);
    expect(ready).toHaveLength(2);
    await r.close();
    const after = await held();
    for (const id of ready) expect(after.has(id)).toBe(false);
    expect(after.has(taken.handle.id)).toBe(true); // taken keys belong to their create
    expect(errors).toEqual([]);
  });
});
