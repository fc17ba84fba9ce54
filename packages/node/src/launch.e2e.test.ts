/**
 * The node process refuses to run code the platform does not launch, and refuses
 * bad configs, with the exit codes main.ts documents (3 launch refused, 2 bad config).
 */
import { spawn } from "node:child_process";
import { appendFile, cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Fabric, loadOrCreateSigningKey, signBundle } from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeConfig } from "./config.js";
import { BUNDLE_DIR, buildAndSignNode, freePort, REPO_ROOT } from "./testing/cluster.js";
import { makeFabric, removeTempDirs, tempDir } from "./testing/fixtures.js";

let root: string;
let fabric: Fabric;

beforeAll(async () => {
  buildAndSignNode();
  root = await tempDir("hsmpool-node-launch-");
  fabric = await makeFabric(root, 1);
}, 120_000);

afterAll(removeTempDirs);

async function configFor(bundleDir: string): Promise<NodeConfig> {
  const state = await tempDir("hsmpool-node-launch-state-");
  return {
    nodeId: "n1",
    poolId: "pool-launch",
    mode: "bootstrap",
    fabricDir: fabric.dir,
    serverId: fabric.servers()[0]!.id,
    partition: 0,
    bundleDir,
    stateDir: state,
    peerListen: `127.0.0.1:${await freePort()}`,
    dataListen: `127.0.0.1:${await freePort()}`,
    peers: [],
    hfcAddress: "127.0.0.1:1",
    fabricCaCertPath: join(root, "missing-ca.crt"),
    electionTickMs: 100,
    electionTicks: 10,
    electionJitterTicks: 5,
    heartbeatTicks: 1,
    snapshotEveryEntries: 1000,
    identity: null,
    replaces: null,
    minPeerSvn: null,
    joinTimeoutMs: 120_000,
    recover: false,
  };
}

/** Runs the node with `config` (written to a file) and returns its exit code and output. */
async function runNode(config: unknown): Promise<{ code: number | null; output: string }> {
  const path = join(await tempDir("hsmpool-node-launch-cfg-"), "config.json");
  await writeFile(path, JSON.stringify(config));
  const child = spawn(process.execPath, [join(BUNDLE_DIR, "main.js"), "--config", path], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, output };
}

/** Runs the node with `config` and a chaos.json beside it until `done` matches its output (or 60 s), then kills it. */
async function runWithChaosFile(config: NodeConfig, chaos: object, done: RegExp): Promise<string> {
  const dir = await tempDir("hsmpool-node-chaos-cfg-");
  const path = join(dir, "config.json");
  await writeFile(path, JSON.stringify(config));
  await writeFile(join(dir, "chaos.json"), JSON.stringify(chaos));
  const child = spawn(process.execPath, [join(BUNDLE_DIR, "main.js"), "--config", path], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 60_000);
    const onData = (d: Buffer) => {
      output += d;
      if (done.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  child.kill("SIGKILL");
  await exited;
  return output;
}

function loggedCheck(output: string): unknown {
  const line = output.split("\n").find((l) => l.includes("enclave launch refused"));
  return line ? (JSON.parse(line) as { details?: { check?: string } }).details?.check : undefined;
}

describe("test hooks live only in debug enclaves", () => {
  const unsafe = { unsafeAckBeforeCommit: true, faults: { clock: { offsetMs: 5000 } } };

  it("a production bundle ignores chaos.json and says so: the unsafe mode stays off", async () => {
    const output = await runWithChaosFile(await configFor(BUNDLE_DIR), unsafe, /peer server listening|exit/);
    expect(output).toContain("chaos.json IGNORED: this is a production (non-debug) enclave");
    expect(output).not.toContain("TEST-ONLY chaos hooks enabled");
    expect(output).not.toMatch(/"unsafeAckBeforeCommit":true/);
  }, 90_000);

  it("a debug-signed bundle honours the same file", async () => {
    const copy = join(await tempDir("hsmpool-node-debug-"), "bundle");
    await cp(BUNDLE_DIR, copy, { recursive: true });
    const { key } = await loadOrCreateSigningKey(join(REPO_ROOT, ".hsmpool", "dev-signing-key.pem"));
    await signBundle(copy, key, { productId: 1, svn: 1, debug: true }, nodeRuntimeClosure());
    const output = await runWithChaosFile(
      await configFor(copy),
      unsafe,
      /TEST-ONLY chaos hooks enabled|exit/,
    );
    expect(output).toContain("TEST-ONLY chaos hooks enabled");
    expect(output).toMatch(/"unsafeAckBeforeCommit":true/);
    expect(output).not.toContain("IGNORED");
  }, 90_000);
});

describe("node launch", () => {
  it("exits 3 when the bundle was changed after signing (measurement)", async () => {
    const copy = join(await tempDir("hsmpool-node-tampered-"), "bundle");
    await cp(BUNDLE_DIR, copy, { recursive: true });
    await appendFile(join(copy, "config.js"), "\n// one more line\n");
    const { code, output } = await runNode(await configFor(copy));
    expect(code).toBe(3);
    expect(loggedCheck(output)).toBe("measurement");
  });

  it("exits 3 when the bundle carries no SIGSTRUCT", async () => {
    const copy = join(await tempDir("hsmpool-node-unsigned-"), "bundle");
    await cp(BUNDLE_DIR, copy, { recursive: true });
    await rm(join(copy, "sigstruct.bin"));
    const { code, output } = await runNode(await configFor(copy));
    expect(code).toBe(3);
    expect(loggedCheck(output)).toBe("sigstruct");
  });

  it("exits 2 naming the field when the config is invalid, before launching anything", async () => {
    const config = { ...(await configFor(BUNDLE_DIR)), peerListen: "not an address" };
    const { code, output } = await runNode(config);
    expect(code).toBe(2);
    expect(output).toContain("config peerListen");
    expect(await readFile(join(config.stateDir, "partition-credential.sealed")).catch(() => null)).toBeNull();
  });

  it("exits 2 when minPeerSvn is above the enclave's own SVN, before its partition is touched", async () => {
    const config = { ...(await configFor(BUNDLE_DIR)), minPeerSvn: 2 };
    const { code, output } = await runNode(config);
    expect(code).toBe(2);
    expect(output).toContain("config minPeerSvn: 2 is above this enclave's own SVN 1");
    expect(await readFile(join(config.stateDir, "partition-credential.sealed")).catch(() => null)).toBeNull();
  });
});
