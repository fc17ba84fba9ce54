/** The pool commands' handling of user mistakes: one line on stderr, non-zero exit, nothing started. */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runCli } from "./testing/run-cli.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hsmpool-cli-pool-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const run = runCli;

/** A user mistake: exit 1, exactly one `hsmpool: ... [Code]` line, nothing on stdout, no stack trace. */
function expectOneLine(
  r: { code: number; stdout: string; stderr: string },
  code: string,
  message: RegExp,
): void {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr.split("\n").filter((l) => l !== "")).toHaveLength(1);
  expect(r.stderr).toMatch(new RegExp(`^hsmpool: .* \\[${code}\\]\\n$`));
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe("pool commands without a running pool", () => {
  it("status, kill, keys, sign and down say that no pool runs in the run dir", async () => {
    const runDir = join(dir, "empty");
    for (const args of [
      ["status"],
      ["status", "--json"],
      ["kill", "primary"],
      ["kill", "--server", "r1-s1"],
      ["upgrade", "--bundle", "/some/bundle"],
      ["healing", "pause"],
      ["healing", "resume"],
      ["status", "--watch", "--until", "healthy"],
      ["keys", "list"],
      ["sign", "k", "--alg", "ES256", "--text", "hi"],
      ["down"],
    ]) {
      expectOneLine(await run(...args, "--run-dir", runDir), "NotFound", /no pool is running in .*empty/);
    }
  });

  it("takes the run dir from HSMPOOL_RUN_DIR when --run-dir is not given", async () => {
    vi.stubEnv("HSMPOOL_RUN_DIR", join(dir, "from-env"));
    try {
      expectOneLine(await run("status"), "NotFound", /from-env/);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("explains a stale hfc.json whose HFC process is gone", async () => {
    const runDir = join(dir, "stale");
    await mkdir(runDir, { recursive: true });
    await writeFile(
      join(runDir, "hfc.json"),
      JSON.stringify({
        pid: 2 ** 22 + 12345,
        controlAddress: "127.0.0.1:1",
        poolId: "p",
        fabricDir: "/f",
        startedMs: 1,
      }),
    );
    expectOneLine(await run("status", "--run-dir", runDir), "NotFound", /is gone/);
  });
});

describe("argument mistakes are refused before anything is contacted", () => {
  const runDir = () => join(dir, "never-created");

  it.each([
    [["sign", "k", "--alg", "ES256"], /exactly one of --data <base64>, --text <string>, --file <path>/],
    [["sign", "k", "--alg", "ES256", "--text", "a", "--data", "YQ=="], /exactly one of/],
    [["sign", "k", "--alg", "ES256", "--data", "not base64!"], /--data must be base64/],
    [["sign", "k", "--alg", "ES256", "--file", "/nonexistent/file"], /cannot read --file/],
    [["verify", "k", "--alg", "ES256", "--text", "a", "--signature", "%%%"], /--signature must be base64/],
    [["decrypt", "k", "--alg", "A256GCM"], /exactly one of --ciphertext <base64> or --input <file>/],
    [["kill", "primary", "--signal", "SIGHUP"], /--signal must be one of SIGKILL, SIGTERM, SIGSTOP, SIGCONT/],
    [["up", "--timeout-ms", "soon"], /--timeout-ms must be a whole number/],
    [["up", "--failure-threshold", "0"], /--failure-threshold must be a whole number from 1 to 100/],
    [["status", "--max-updates", "3"], /--max-updates only applies with --watch/],
    [["status", "--until", "healthy"], /--until only applies with --watch/],
    [["status", "--timeout-ms", "1000"], /--timeout-ms only applies with --watch/],
    [["status", "--watch", "--until", "green"], /--until must be "healthy", got "green"/],
    [["status", "--watch", "--timeout-ms", "soon"], /--timeout-ms must be a whole number/],
    [["kill", "n1", "--server", "r1-s1"], /give either a target or --server <id>, not both/],
    [["kill"], /name a target \(primary, secondary or a member id\) or --server <id>/],
    [["up", "--join-timeout-ms", "10"], /--join-timeout-ms must be a whole number from 1000 to 3600000/],
    [["upgrade", "--bundle", "/b", "--timeout-ms", "0"], /--timeout-ms must be a whole number from 1000/],
    [["keys", "create", "k", "--kty", "EC", "--tag", "novalue"], /--tag must look like name=value/],
    [["keys", "create", "k", "--kty", "EC", "--expires", "someday"], /--expires must be an ISO-8601 date/],
    [["keys", "create", "k", "--kty", "RSA", "--size", "big"], /--size must be a whole number/],
    [
      ["keys", "create", "k", "--kty", "EC", "--crv", "P-256", "--curve", "P-384"],
      /--crv P-256 and --curve P-384 disagree/,
    ],
    [["logs", "n1", "--lines", "-3"], /--lines must be a whole number/],
  ])("%j", async (args, message) => {
    expectOneLine(await run(...args, "--run-dir", runDir()), "BadParameter", message);
    await expect(readdir(runDir())).rejects.toThrow(/ENOENT/);
  });

  it("upgrade needs --bundle (one commander error line, exit 2)", async () => {
    const r = await run("upgrade", "--run-dir", runDir());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: required option '--bundle <dir>' not specified\n/);
  });

  it("a missing required option is one commander error line and exit 2", async () => {
    const r = await run("keys", "create", "k", "--run-dir", runDir());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: required option '--kty <type>' not specified\n/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("logs of an unknown member lists the members", async () => {
    const runDir = join(dir, "with-pool-json");
    await mkdir(runDir, { recursive: true });
    const member = (id: string, p: number) => ({
      id,
      serverId: `r${p}-s1`,
      rackId: `rack-${p}`,
      partition: 0,
      peerAddress: `127.0.0.1:${7100 + p}`,
      dataAddress: `127.0.0.1:${7200 + p}`,
      bundleDir: "/b",
    });
    await writeFile(
      join(runDir, "pool.json"),
      JSON.stringify({
        poolId: "pool-x",
        placementSeed: 1,
        members: [member("n1", 1), member("n2", 2)],
        createdMs: 1,
      }),
    );
    expectOneLine(
      await run("logs", "n9", "--run-dir", runDir),
      "NotFound",
      /no member "n9" \(members: n1, n2, or hfc\)/,
    );
    expectOneLine(await run("logs", "n1", "--run-dir", runDir), "NotFound", /no log at .*node\.log yet/);
  });
});
