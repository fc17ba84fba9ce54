import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { allocateLoopbackPort, allocateLoopbackPorts, ephemeralRangeStart } from "./ports.js";

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

describe("loopback ports for child processes", () => {
  it("are distinct, bindable, and below the kernel's ephemeral range when it is known", async () => {
    const ports = await allocateLoopbackPorts(8);
    expect(new Set(ports).size).toBe(8);
    ports.push(await allocateLoopbackPort()); // one at a time: drawn the same way
    for (const p of ports) expect(await bindable(p)).toBe(true);
    const start = ephemeralRangeStart();
    if (start !== null && start > 21_000) for (const p of ports) expect(p).toBeLessThan(start);
  });

  it("reads the ephemeral range's first port, and nothing from what it cannot parse", () => {
    expect(ephemeralRangeStart(() => "32768\t60999\n")).toBe(32768);
    expect(ephemeralRangeStart(() => "")).toBeNull();
    expect(
      ephemeralRangeStart(() => {
        throw new Error("ENOENT");
      }),
    ).toBeNull();
  });
});
