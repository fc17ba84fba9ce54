import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";
import { HsmDevice, type Session } from "@hsmpool/hsm";
import { afterAll, describe, expect, it } from "vitest";
import { openKeyBackup, sealKeyBackup } from "./key-backup-protection.js";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function poolPartition(): Promise<{ session: Session; dek: string }> {
  const dir = await mkdtemp(join(tmpdir(), "hsmpool-backup-test-"));
  dirs.push(dir);
  const device = await HsmDevice.create(join(dir, "hsm"), { partitionCount: 1 });
  const session = await device.partition(0).login(await device.partition(0).initialize());
  const dek = await session.generateKey({ kty: "oct", size: 256, ops: ["wrapKey", "unwrapKey"] });
  return { session, dek: dek.id };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "none";
  } catch (e) {
    return isHsmPoolError(e) ? e.code : String(e);
  }
}

describe("key backup protection", () => {
  const content = new TextEncoder().encode("HPB1 ... every version, material wrapped under the DEK");

  it("opens in a pool holding the same key; a foreign pool (another key) is Forbidden", async () => {
    const a = await poolPartition();
    const b = await poolPartition();
    const blob = await sealKeyBackup(a.session, a.dek, content);
    expect(Buffer.from(blob).includes(Buffer.from(content))).toBe(false);
    expect(Buffer.from(await openKeyBackup(a.session, a.dek, blob)).equals(Buffer.from(content))).toBe(true);
    expect(await codeOf(openKeyBackup(b.session, b.dek, blob))).toBe("Forbidden");
  });

  it("a flipped byte is Forbidden; a file that is no backup is BadParameter", async () => {
    const a = await poolPartition();
    const blob = Uint8Array.from(await sealKeyBackup(a.session, a.dek, content));
    blob[blob.length - 5] = (blob[blob.length - 5] ?? 0) ^ 1;
    expect(await codeOf(openKeyBackup(a.session, a.dek, blob))).toBe("Forbidden");
    expect(
      await codeOf(openKeyBackup(a.session, a.dek, new TextEncoder().encode("-----BEGIN PRIVATE KEY-----"))),
    ).toBe("BadParameter");
  });
});
