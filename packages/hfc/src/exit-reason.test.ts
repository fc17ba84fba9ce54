import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusalOf } from "./exit-reason.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hsmpool-exit-reason-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function log(name: string, lines: object[]): Promise<string> {
  const path = join(dir, name);
  await appendFile(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
  return path;
}

describe("why a node exited, from its exit status and its own log", () => {
  it("reads the join refusal the node logged (reason and failed check) for this pid only", async () => {
    const path = await log("join.log", [
      { level: 50, pid: 11, msg: "join refused", reason: "attestation", check: "svn", error: "old run" },
      { level: 30, pid: 12, msg: "peer server listening" },
      {
        level: 50,
        pid: 12,
        msg: "join refused",
        reason: "attestation",
        check: "signer",
        error: "every member refused",
      },
    ]);
    expect(await refusalOf(path, { pid: 12, code: 4, signal: null })).toBe(
      "join refused: every member refused, attestation, check signer",
    );
  });

  it("explains exit code 3 with the platform's launch refusal", async () => {
    const path = await log("launch.log", [
      {
        level: 60,
        pid: 7,
        msg: "enclave launch refused",
        code: "LaunchRefused",
        error: "bundle measurement differs",
      },
    ]);
    expect(await refusalOf(path, { pid: 7, code: 3, signal: null })).toBe(
      "enclave launch refused: bundle measurement differs",
    );
  });

  it("explains exit code 2 with the node's last error line", async () => {
    const path = await log("config.log", [
      {
        level: 60,
        pid: 9,
        msg: "node failed to start",
        code: "BadParameter",
        error: "config minPeerSvn: 2 is above this enclave's security version 1",
      },
    ]);
    expect(await refusalOf(path, { pid: 9, code: 2, signal: null })).toBe(
      "bad config: node failed to start: config minPeerSvn: 2 is above this enclave's security version 1",
    );
  });

  it("treats a kill or a crash as worth a restart (no refusal), even with errors in the log", async () => {
    const path = await log("crash.log", [{ level: 50, pid: 5, msg: "peer link down", error: "ECONNRESET" }]);
    expect(await refusalOf(path, { pid: 5, code: null, signal: "SIGKILL" })).toBeNull();
    expect(await refusalOf(path, { pid: 5, code: 1, signal: null })).toBeNull();
  });

  it("still names the refusal when the log is missing", async () => {
    expect(await refusalOf(join(dir, "absent.log"), { pid: 1, code: 3, signal: null })).toBe(
      "enclave launch refused (exit code 3)",
    );
  });
});
