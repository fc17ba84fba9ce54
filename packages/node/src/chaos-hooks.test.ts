import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";
import { DEFAULT_PARTITION_COUNT, HsmDevice } from "@hsmpool/hsm";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { ChaosHooks, parseChaosControl } from "./chaos-hooks.js";
import { removeTempDirs, tempDir } from "./testing/fixtures.js";

afterAll(removeTempDirs);

const logger = pino({ level: "silent" });

async function chaosDir(control: unknown): Promise<string> {
  const dir = await tempDir("hsmpool-chaos-hooks-");
  await writeFile(join(dir, "config.json"), "{}");
  await writeFile(join(dir, "chaos.json"), JSON.stringify(control));
  return dir;
}

/** Rewrites the file the way the harness does (temp + rename), so the node sees a change. */
async function rewrite(dir: string, control: unknown): Promise<void> {
  await writeFile(join(dir, "chaos.json.tmp"), JSON.stringify(control));
  await rename(join(dir, "chaos.json.tmp"), join(dir, "chaos.json"));
}

describe("chaos hooks (test-only, from chaos.json next to the config)", () => {
  it("are off without a chaos file: a real pool never has one", async () => {
    const dir = await tempDir();
    expect(ChaosHooks.load(join(dir, "config.json"), logger, Math.random)).toBeNull();
  });

  it("refuse a malformed file naming the field", () => {
    const refusal = (v: unknown) => {
      try {
        parseChaosControl(v);
      } catch (e) {
        if (isHsmPoolError(e, "BadParameter")) return e.message;
      }
      return "accepted";
    };
    expect(refusal({ faults: { disk: { mode: "melting" } } })).toMatch(/^chaos\.json faults\.disk\.mode: /);
    expect(refusal({ faults: { hsm: { errorRate: 2 } } })).toMatch(/^chaos\.json faults\.hsm\.errorRate: /);
    expect(refusal({ peerDial: { n2: "nowhere" } })).toMatch(/^chaos\.json peerDial\.n2: must be host:port/);
    expect(refusal({ unsafeAckBeforeCommit: "yes" })).toMatch(/^chaos\.json unsafeAckBeforeCommit: /);
    expect(refusal({ faults: { network: { isolated: 1 } } })).toMatch(
      /^chaos\.json faults\.network\.isolated: /,
    );
    expect(parseChaosControl({}).faults.network.isolated).toBe(false);
    expect(parseChaosControl({ faults: { network: { isolated: true } } }).faults.network.isolated).toBe(true);
    expect(refusal({})).toBe("accepted");
  });

  it("dial peers through the given proxies, skew the clock, and read the broken-mode flag", async () => {
    const dir = await chaosDir({
      unsafeAckBeforeCommit: true,
      peerDial: { n2: "127.0.0.1:4711" },
      faults: { clock: { offsetMs: 3_600_000 } },
    });
    const hooks = ChaosHooks.load(join(dir, "config.json"), logger, Math.random);
    expect(hooks?.unsafeAckBeforeCommit).toBe(true);
    expect(hooks?.dialAddress("n2", "127.0.0.1:1000")).toBe("127.0.0.1:4711");
    expect(hooks?.dialAddress("n3", "127.0.0.1:1001")).toBe("127.0.0.1:1001");
    expect((hooks?.now() ?? 0) - Date.now()).toBeGreaterThan(3_599_000);
  });

  it("turn HSM faults on and off on a real device through its fault hooks, as the file changes", async () => {
    const root = await tempDir();
    const device = await HsmDevice.create(join(root, "hsm"), { partitionCount: DEFAULT_PARTITION_COUNT });
    const partition = device.partition(0);
    await partition.zeroize();
    const session = await partition.login(await partition.initialize());
    const dir = await chaosDir({ faults: { hsm: { errorRate: 1 } } });
    const hooks = ChaosHooks.load(join(dir, "config.json"), logger, () => 0.5) as ChaosHooks;
    hooks.start(device.faults);
    try {
      hooks.beforeHsmOperation();
      const failed = await session.generateKey({ kty: "EC", crv: "P-256", ops: ["sign", "verify"] }).then(
        () => "ok",
        (e: unknown) => (isHsmPoolError(e, "DeviceFault") ? "DeviceFault" : String(e)),
      );
      expect(failed).toBe("DeviceFault");
      await rewrite(dir, { faults: { hsm: { errorRate: 0 } } });
      await new Promise((r) => setTimeout(r, 300));
      hooks.beforeHsmOperation();
      await expect(session.generateKey({ kty: "EC", crv: "P-256", ops: ["sign"] })).resolves.toBeDefined();
      await rewrite(dir, { faults: { hsm: { wedge: true } } });
      await new Promise((r) => setTimeout(r, 300));
      let done = false;
      const held = session.generateKey({ kty: "EC", crv: "P-256", ops: ["sign"] }).then(() => {
        done = true;
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(done).toBe(false);
      await rewrite(dir, { faults: {} });
      await held;
      expect(done).toBe(true);
    } finally {
      hooks.stop();
      await device.close();
    }
  });

  it("slow down or fail durable writes", async () => {
    const dir = await chaosDir({ faults: { disk: { mode: "slow-fsync", delayMs: 120 } } });
    const hooks = ChaosHooks.load(join(dir, "config.json"), logger, Math.random) as ChaosHooks;
    const t0 = performance.now();
    await hooks.beforeDiskWrite();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(115);
    const full = await chaosDir({ faults: { disk: { mode: "full" } } });
    const failing = ChaosHooks.load(join(full, "config.json"), logger, Math.random) as ChaosHooks;
    await expect(failing.beforeDiskWrite()).rejects.toThrow(/ENOSPC: no space left on device \(injected/);
  });
});
