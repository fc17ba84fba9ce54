import { spawn } from "node:child_process";
import { once } from "node:events";
import { findProcessesByConfig, isRunning } from "@hsmpool/wire";
import { describe, expect, it } from "vitest";
import { adoptNode } from "./launcher.js";

function sleeper(configPath: string) {
  return spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)", "--", "--config", configPath], {
    stdio: "ignore",
  });
}

describe("finding and watching node processes another HFC started", () => {
  it("finds a running process by the config path on its command line, and only that one", async () => {
    const path = `/tmp/hsmpool-test-${process.pid}/nodes/n1/config.json`;
    const child = sleeper(path);
    try {
      await once(child, "spawn");
      const found = findProcessesByConfig([path, `${path}.other`]);
      expect(found.get(path)).toBe(child.pid);
      expect(found.has(`${path}.other`)).toBe(false);
    } finally {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    expect(findProcessesByConfig([path]).size).toBe(0);
  });

  it("an adopted process's exit is noticed by polling", async () => {
    const child = sleeper("/tmp/none/config.json");
    await once(child, "spawn");
    const adopted = adoptNode("n1", child.pid as number, 20);
    expect(isRunning(child.pid as number)).toBe(true);
    child.kill("SIGKILL");
    await expect(adopted.exited).resolves.toEqual({ code: null, signal: null });
    expect(adopted.adopted).toBe(true);
  });
});
