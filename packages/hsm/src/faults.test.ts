/** Fault hooks: failNext fails exactly N operations, latency delays, wedge holds until release. */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, test } from "vitest";
import { deviceWithSession, expectHsmError, readTree, removeTempDirs, text } from "./testing/fixtures.js";

afterAll(removeTempDirs);

describe("fault hooks", () => {
  test("failNext(2) fails exactly the next two operations with DeviceFault and they change nothing", async () => {
    const { dir, device, session } = await deviceWithSession(1);
    const files = await readTree(dir);
    device.faults.failNext(2);
    await expectHsmError(session.generateKey({ kty: "EC", ops: ["sign"] }), "DeviceFault", /injected/);
    await expectHsmError(device.partition(0).zeroize(), "DeviceFault");
    expect(await readTree(dir)).toEqual(files);
    expect(await session.listHandles()).toEqual([]);
    expect(await session.generateKey({ kty: "EC", ops: ["sign"] })).toMatchObject({ kty: "EC" });
  });

  test("failNext takes the error code to inject", async () => {
    const { device, session } = await deviceWithSession(1);
    device.faults.failNext(1, "Timeout");
    await expectHsmError(session.listHandles(), "Timeout");
    expect(await session.listHandles()).toEqual([]);
    expect(() => device.faults.failNext(-1)).toThrow(/integer >= 0/);
    expect(() => device.faults.failNext(1, "Nope" as never)).toThrow(/not an hsmpool error code/);
  });

  test("setLatency delays every operation until it is set back to 0", async () => {
    const { device, session } = await deviceWithSession(1);
    const key = await session.generateKey({ kty: "EC", ops: ["sign"] });
    device.faults.setLatency(80);
    const started = performance.now();
    await session.sign(key, "ES256", text("m"));
    expect(performance.now() - started).toBeGreaterThanOrEqual(75);
    // Set back to 0, no operation waits: were the 10-minute latency set just before still in force, the sign
    // would still be waiting when the 30 s guard fires (no upper bound on how long a sign takes on a busy machine).
    device.faults.setLatency(600_000);
    device.faults.setLatency(0);
    const guard = new AbortController();
    const outcome = await Promise.race([
      session.sign(key, "ES256", text("m")).then(() => "signed"),
      sleep(30_000, "still waiting", { signal: guard.signal }),
    ]);
    guard.abort();
    expect(outcome).toBe("signed");
  });

  test("wedge holds operations until release; close fails the held ones", async () => {
    const { device, session } = await deviceWithSession(1);
    const key = await session.generateKey({ kty: "EC", ops: ["sign"] });
    device.faults.wedge();
    let done = false;
    const held = session.sign(key, "ES256", text("m")).then((signature) => {
      done = true;
      return signature;
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(done).toBe(false);
    device.faults.release();
    expect((await held).length).toBe(64);

    device.faults.wedge();
    const stuck = session.listHandles();
    await device.close();
    await expectHsmError(stuck, "ServiceUnavailable", /closed/);
  });
});
