/**
 * The node process refuses to run code the platform does not launch, and refuses
 * bad configs, with the exit codes main.ts documents (3 launch refused, 2 bad config).
 */
import { spawn } from "node:child_process";
import {
  appendFile,
  copyFile,
  cp,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";
import {
  type Fabric,
  loadOrCreateSigningKey,
  type RuntimeClosure,
  readSigstruct,
  runtimeClosureFiles,
  signBundle,
  verifyBundle,
} from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeConfig } from "./config.js";
import { BUNDLE_DIR, buildAndSignNode, freePort, PACKAGE_DIR, REPO_ROOT } from "./testing/cluster.js";
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

/**
 * Runs the node (`main`, default the built bundle's) with `config` written to a file, and a chaos.json
 * beside it when given; returns its exit code and output once it exits, or once `until` matches its
 * output (or after 60 s: then it is killed and the code is null).
 */
async function runNode(
  config: unknown,
  opts: { main?: string; chaos?: object; until?: RegExp } = {},
): Promise<{ code: number | null; output: string }> {
  const dir = await tempDir("hsmpool-node-launch-cfg-");
  const path = join(dir, "config.json");
  await writeFile(path, JSON.stringify(config));
  if (opts.chaos) await writeFile(join(dir, "chaos.json"), JSON.stringify(opts.chaos));
  const child = spawn(process.execPath, [opts.main ?? join(BUNDLE_DIR, "main.js"), "--config", path], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const matched = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 60_000);
    const onData = (d: Buffer) => {
      output += d;
      if (opts.until?.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then(() => clearTimeout(timer));
  });
  if (!opts.until) return { code: await exited, output };
  const done = await Promise.race([exited.then((code) => ({ code })), matched.then(() => null)]);
  if (done) return { code: done.code, output };
  child.kill("SIGKILL");
  await exited;
  return { code: null, output };
}

function loggedCheck(output: string): unknown {
  const line = output.split("\n").find((l) => l.includes("enclave launch refused"));
  return line ? (JSON.parse(line) as { details?: { check?: string } }).details?.check : undefined;
}

describe("test hooks live only in debug enclaves", () => {
  const unsafe = { unsafeAckBeforeCommit: true, faults: { clock: { offsetMs: 5000 } } };

  it("a production bundle ignores chaos.json and says so: the unsafe mode stays off", async () => {
    const { output } = await runNode(await configFor(BUNDLE_DIR), {
      chaos: unsafe,
      until: /peer server listening/,
    });
    expect(output).toContain("chaos.json IGNORED: this is a production (non-debug) enclave");
    expect(output).not.toContain("TEST-ONLY chaos hooks enabled");
    expect(output).not.toMatch(/"unsafeAckBeforeCommit":true/);
  }, 90_000);

  it("a debug-signed bundle honours the same file", async () => {
    const copy = join(await tempDir("hsmpool-node-debug-"), "bundle");
    await cp(BUNDLE_DIR, copy, { recursive: true });
    const { key } = await loadOrCreateSigningKey(join(REPO_ROOT, ".hsmpool", "dev-signing-key.pem"));
    await signBundle(copy, key, { productId: 1, svn: 1, debug: true }, nodeRuntimeClosure());
    const { output } = await runNode(await configFor(copy), {
      chaos: unsafe,
      until: /TEST-ONLY chaos hooks enabled/,
    });
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

/**
 * A copy of the node's runtime closure (and nothing else) in a temporary tree laid out as the
 * repository is: the packages, node_modules with the workspace links, proto/. Never edit the
 * checkout's own node_modules in a test: other worktrees and runs share nothing, but this one's
 * later tests would launch the edited code.
 */
async function copyOfClosure(): Promise<{ root: string; dist: string; runtime: RuntimeClosure }> {
  const root = await tempDir("hsmpool-node-closure-");
  for (const f of runtimeClosureFiles(nodeRuntimeClosure(PACKAGE_DIR))) {
    const rel = relative(REPO_ROOT, f.absPath);
    if (rel.startsWith("..")) throw new Error(`${f.absPath} is outside the repository`);
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await copyFile(f.absPath, join(root, rel));
  }
  const dist = join(root, relative(REPO_ROOT, BUNDLE_DIR));
  await cp(BUNDLE_DIR, dist, { recursive: true });
  const links = join(REPO_ROOT, "node_modules", "@hsmpool");
  await mkdir(join(root, "node_modules", "@hsmpool"), { recursive: true });
  for (const name of await readdir(links)) {
    const target = await readlink(join(links, name)).catch(() => null);
    if (target !== null) await symlink(target, join(root, "node_modules", "@hsmpool", name));
  }
  return { root, dist, runtime: { packageDir: dirname(dist), dataDirs: { proto: join(root, "proto") } } };
}

describe("the runtime closure is measured (docs/enclave-measurement.md)", () => {
  it("a copy of the closure elsewhere has the signed MRENCLAVE and runs; one byte more in a dependency refuses the launch", async () => {
    const signed = (await readSigstruct(BUNDLE_DIR)).mrenclave;
    const copy = await copyOfClosure();
    expect((await verifyBundle(copy.dist, copy.runtime)).mrenclave).toBe(signed);
    const main = join(copy.dist, "main.js");
    const ran = await runNode(await configFor(copy.dist), { main, until: /peer server listening/ });
    expect(ran.output).toContain("peer server listening");

    const grpcFile = join(copy.root, "node_modules/@grpc/grpc-js/build/src/index.js");
    await appendFile(grpcFile, "\n");
    const refused = await runNode(await configFor(copy.dist), { main });
    expect(refused.code).toBe(3);
    expect(loggedCheck(refused.output)).toBe("measurement");
    expect(refused.output).toContain(`does not match the signed MRENCLAVE ${signed}`);
  }, 120_000);

  it("so does one byte more in a workspace package's dist or in a proto file", async () => {
    for (const edited of ["packages/hsm/dist/index.js", "proto/pool.proto"]) {
      const copy = await copyOfClosure();
      await appendFile(join(copy.root, edited), "\n");
      const e = await verifyBundle(copy.dist, copy.runtime).then(
        () => null,
        (err: unknown) => err,
      );
      expect([edited, isHsmPoolError(e, "LaunchRefused") && e.details?.check]).toEqual([
        edited,
        "measurement",
      ]);
    }
  }, 120_000);
});
