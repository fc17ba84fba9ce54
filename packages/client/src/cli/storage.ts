/**
 * `hsmpool storage up|down`: a loopback Azure Blob Storage for backups — Azurite, Microsoft's
 * storage emulator (blob service only), started in the background unless the one recorded in
 * the directory still answers; a container and a container SAS URL (what `backup create
 * --storage` takes). `down` stops only a service this command started.
 */
import { spawn } from "node:child_process";
import { openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import {
  BlobServiceClient,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { fail } from "@hsmpool/errors";
import { allocateLoopbackPort, isRunning } from "@hsmpool/wire";
import type { Command } from "commander";
import { out, progress } from "./context.js";

/** Azurite's documented development account (a public, well-known emulator credential, not a secret). */
const DEV_ACCOUNT = "devstoreaccount1";
const DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const CONTAINER = "hsmpool-backups";
const STATE_FILE = "hsmpool-storage.json";
const DEFAULT_DIR = ".hsmpool/azurite";
const START_TIMEOUT_MS = 60_000;
const SAS_VALIDITY_MS = 7 * 24 * 3600_000;

interface StorageState {
  pid: number;
  port: number;
}

function azuriteBlobMain(): string {
  return createRequire(import.meta.url).resolve("azurite/dist/src/blob/main.js");
}

async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/${DEV_ACCOUNT}?comp=list`, {
      signal: AbortSignal.timeout(1000),
    });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function readState(dir: string): Promise<StorageState | null> {
  try {
    return JSON.parse(await readFile(join(dir, STATE_FILE), "utf8")) as StorageState;
  } catch {
    return null;
  }
}

/** Starts (or finds) the blob service of `dir` and returns a container SAS URL. */
export async function storageUp(dirFlag: string | undefined): Promise<{ url: string; started: boolean }> {
  const dir = resolve(dirFlag ?? DEFAULT_DIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let state = await readState(dir);
  let started = false;
  if (!state || !isRunning(state.pid) || !(await answers(state.port))) {
    // Below the ephemeral range: no outgoing connection takes it before Azurite binds it (@hsmpool/wire ports.ts).
    const port = await allocateLoopbackPort();
    const log = openSync(join(dir, "azurite.log"), "a");
    const child = spawn(
      process.execPath,
      [
        azuriteBlobMain(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        String(port),
        "--location",
        dir,
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
      ],
      { detached: true, stdio: ["ignore", log, log] },
    );
    child.unref();
    state = { pid: child.pid ?? 0, port };
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answers(port))) {
      if (!isRunning(state.pid))
        fail("ServiceUnavailable", `Azurite exited at start; see ${join(dir, "azurite.log")}`);
      if (Date.now() > deadline)
        fail("Timeout", `Azurite did not answer on 127.0.0.1:${port}; see ${join(dir, "azurite.log")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await writeFile(join(dir, STATE_FILE), JSON.stringify(state));
    started = true;
  }
  const credential = new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY);
  const service = new BlobServiceClient(`http://127.0.0.1:${state.port}/${DEV_ACCOUNT}`, credential);
  await service.getContainerClient(CONTAINER).createIfNotExists();
  const sas = generateBlobSASQueryParameters(
    {
      containerName: CONTAINER,
      permissions: ContainerSASPermissions.parse("racwdl"),
      startsOn: new Date(Date.now() - 60_000),
      expiresOn: new Date(Date.now() + SAS_VALIDITY_MS),
    },
    credential,
  ).toString();
  return { url: `http://127.0.0.1:${state.port}/${DEV_ACCOUNT}/${CONTAINER}?${sas}`, started };
}

export async function storageDown(dirFlag: string | undefined): Promise<boolean> {
  const dir = resolve(dirFlag ?? DEFAULT_DIR);
  const state = await readState(dir);
  if (!state) return false;
  if (isRunning(state.pid)) {
    try {
      process.kill(state.pid, "SIGTERM");
    } catch {
      // already gone
    }
    for (let i = 0; i < 50 && isRunning(state.pid); i++) await new Promise((r) => setTimeout(r, 100));
  }
  await rm(join(dir, STATE_FILE), { force: true });
  return true;
}

export function registerStorageCommands(program: Command): void {
  const storage = program.command("storage").description("a local Azure Blob Storage (Azurite) for backups");
  registerStorageUpCommand(storage);
  registerStorageDownCommand(storage);
}

function registerStorageUpCommand(storage: Command): void {
  storage
    .command("up")
    .description(
      "start a loopback Azurite blob service (unless the one in --dir answers), create a container, print its SAS URL",
    )
    .option("--dir <dir>", `Azurite's data directory (default ${DEFAULT_DIR})`)
    .option("--json", 'print { "url": ... }')
    .action(async (opts: { dir?: string; json?: boolean }) => {
      const { url, started } = await storageUp(opts.dir);
      if (!opts.json)
        progress(started ? "Azurite blob service started" : "Azurite blob service already running");
      out(opts.json ? JSON.stringify({ url }) : url);
    });
}

function registerStorageDownCommand(storage: Command): void {
  storage
    .command("down")
    .description("stop the Azurite this command started in --dir (its data stays)")
    .option("--dir <dir>", `Azurite's data directory (default ${DEFAULT_DIR})`)
    .action(async (opts: { dir?: string }) => {
      out((await storageDown(opts.dir)) ? "storage stopped" : "no storage was started in that directory");
    });
}
