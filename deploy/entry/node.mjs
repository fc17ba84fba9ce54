#!/usr/bin/env node
// Entry of the compose node services (deploy/docker-compose.yml): `node.mjs --config <run>/nodes/<id>/config.json`.
// Compose starts these containers before the HFC has placed the pool, so this waits until the member's config exists
// and was written by the HFC that is running now (its hfcAddress is the one in <run>/hfc.json), then runs the node
// (packages/node/dist/main.js) in this process. The HFC's Docker launcher (re)starts the container whenever it
// launches the member, so a killed container comes back through the HFC, not through a Docker restart policy.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";

const NODE_MAIN = "/app/packages/node/dist/main.js";
const POLL_MS = 200;

const at = process.argv.indexOf("--config");
const configPath = at > 0 ? process.argv[at + 1] : undefined;
if (!configPath) {
  process.stderr.write("usage: node.mjs --config <run>/nodes/<id>/config.json\n");
  process.exit(2);
}
const runDir = dirname(dirname(dirname(configPath)));

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

let said = false;
for (;;) {
  const config = readJson(configPath);
  const hfc = readJson(join(runDir, "hfc.json"));
  if (config && hfc && config.hfcAddress === hfc.controlAddress) break;
  if (!said) {
    process.stdout.write(
      `${JSON.stringify({ msg: "waiting for the HFC to configure this member", configPath })}\n`,
    );
    said = true;
  }
  await new Promise((r) => setTimeout(r, POLL_MS));
}
process.argv = [process.argv[0] ?? "node", NODE_MAIN, "--config", configPath];
await import(NODE_MAIN);
