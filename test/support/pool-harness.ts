/**
 * Helpers for process e2e tests of a pool: temp dirs, the real `hsmpool` CLI as a
 * child process (the compiled dist, as a user runs it), condition waits with
 * deadlines (never fixed sleeps), and a cleanup that leaves no process behind.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(REPO, "packages/client/bin/hsmpool.js");

/**
 * `npm test` builds with `tsc -b` only; the node's enclave bundle must also carry a
 * SIGSTRUCT for its current measurement or the platform refuses to launch it. The
 * node package's signing script does that (and nothing when already signed).
 */
export function ensureSignedNodeBundle(): void {
  execFileSync(process.execPath, [join(REPO, "packages/node/scripts/sign-bundle.mjs"), "--quiet"], {
    stdio: "inherit",
  });
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PoolDirs {
  root: string;
  runDir: string;
  fabricDir: string;
}

export async function tempPoolDirs(prefix: string): Promise<PoolDirs> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  return { root, runDir: join(root, "run"), fabricDir: join(root, "fabric") };
}

/** What `hsmpool endpoint --json` prints: the pool's REST endpoint for the Azure SDK. */
export interface RestEndpoint {
  url: string;
  caFile: string;
  resource: string;
  tenant: string;
}

export interface PoolWithEndpoint {
  dirs: PoolDirs;
  /** The customer directory `up` made (HSMPOOL_TENANT), outside the run dir. */
  tenantDir: string;
  endpoint: RestEndpoint;
  /** The endpoint's TLS trust: the fabric CA, PEM. */
  ca: string;
}

/**
 * Starts a pool with `hsmpool up` in fresh temp dirs (its customer directory beside the
 * run dir) and reads its REST endpoint: the set-up every REST and Azure SDK e2e shares.
 */
export async function startPoolWithEndpoint(prefix: string): Promise<PoolWithEndpoint> {
  ensureSignedNodeBundle();
  const dirs = await tempPoolDirs(prefix);
  const tenantDir = join(dirs.root, "tenant");
  const env = { HSMPOOL_TENANT: tenantDir };
  const up = await cli(
    ["up", "--run-dir", dirs.runDir, "--fabric-dir", dirs.fabricDir, "--timeout-ms", "120000"],
    {
      env,
      timeoutMs: 180_000,
    },
  );
  if (up.code !== 0) throw new Error(`hsmpool up failed (${up.code}):\n${up.stderr}`);
  const printed = await cli(["endpoint", "--json", "--run-dir", dirs.runDir], { env });
  if (printed.code !== 0) throw new Error(`hsmpool endpoint failed: ${printed.stderr}`);
  const endpoint = JSON.parse(printed.stdout) as RestEndpoint;
  return { dirs, tenantDir, endpoint, ca: await readFile(endpoint.caFile, "utf8") };
}

/** Everything any CLI call printed, for the leak scan. */
export const transcript: string[] = [];

export function cli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += String(d);
    });
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `hsmpool ${args.join(" ")} did not finish within ${opts.timeoutMs ?? 120_000} ms\n${stderr}`,
        ),
      );
    }, opts.timeoutMs ?? 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      transcript.push(`$ hsmpool ${args.join(" ")}\n${stdout}${stderr}`);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Polls `probe` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
  pollMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The HFC and node pids a run dir recorded. */
export async function recordedPids(runDir: string): Promise<number[]> {
  const pids: number[] = [];
  const hfc = await readFile(join(runDir, "hfc.json"), "utf8").catch(() => "");
  if (hfc) pids.push((JSON.parse(hfc) as { pid: number }).pid);
  const nodes = await readFile(join(runDir, "pids.json"), "utf8").catch(() => "");
  if (nodes) pids.push(...Object.values(JSON.parse(nodes) as Record<string, number>));
  return pids;
}

/** `hsmpool down`, then SIGKILL whatever of this run dir still lives (by recorded pid and command line). */
export async function stopEverything(dirs: PoolDirs): Promise<void> {
  const before = await recordedPids(dirs.runDir);
  await cli(["down", "--run-dir", dirs.runDir], { timeoutMs: 60_000 }).catch(() => undefined);
  for (const pid of [...before, ...(await recordedPids(dirs.runDir))]) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (alive(pid) && cmdline.includes(dirs.root)) process.kill(pid, "SIGKILL");
  }
}

/** Every regular file under `dir`, recursively. */
export async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(path)));
    else if (entry.isFile() || (await stat(path)).isFile()) out.push(path);
  }
  return out;
}

export async function removeDirs(dirs: PoolDirs): Promise<void> {
  await rm(dirs.root, { recursive: true, force: true });
}

/** The forms a secret could take in a file or a log: raw bytes, hex, base64, base64url. */
export function encodingsOf(secret: Uint8Array): Buffer[] {
  const b = Buffer.from(secret);
  return [
    b,
    Buffer.from(b.toString("hex")),
    Buffer.from(b.toString("base64").replace(/=+$/, "")),
    Buffer.from(b.toString("base64url")),
  ];
}
