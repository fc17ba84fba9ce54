#!/usr/bin/env node
// Entry of the hsmpool-hfc image: creates the simulated fabric on first start (3 racks x 2 servers, an HSM device
// per server: what `hsmpool up` does on the host), then runs the HFC process with the given arguments.
// Defaults suit deploy/docker-compose.yml: run dir /app/.hsmpool/run, fabric /app/.hsmpool/fabric, and each node
// launched in its own container (the HFC's Docker launcher, through the mounted Docker socket).
import { DEFAULT_PARTITION_COUNT, HsmDevice } from "@hsmpool/hsm";
import { initFabric, openFabric } from "@hsmpool/platform";

const HFC_MAIN = "/app/packages/hfc/dist/main.js";
const DEFAULTS = {
  "--run-dir": "/app/.hsmpool/run",
  "--fabric-dir": "/app/.hsmpool/fabric",
  "--launcher": "docker",
};

const args = process.argv.slice(2);
for (const [flag, value] of Object.entries(DEFAULTS)) if (!args.includes(flag)) args.push(flag, value);
const fabricDir = args[args.indexOf("--fabric-dir") + 1];

try {
  await openFabric(fabricDir);
} catch {
  process.stderr.write(`hfc-entry: no fabric in ${fabricDir}: creating one\n`);
  await initFabric(fabricDir, { onProgress: (line) => process.stderr.write(`hfc-entry:   ${line}\n`) });
  for (const server of (await openFabric(fabricDir)).servers()) {
    await (await HsmDevice.create(server.hsmDir, { partitionCount: DEFAULT_PARTITION_COUNT })).close();
  }
}
process.stderr.write(`hfc-entry: starting the HFC (${args.join(" ")})\n`);
process.argv = [process.argv[0] ?? "node", HFC_MAIN, ...args];
await import(HFC_MAIN);
