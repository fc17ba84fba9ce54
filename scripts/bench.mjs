#!/usr/bin/env node
// `npm run bench`: runs every compiled benchmark (packages/*/dist/bench/*.js) one
// after another, so no two compete for the two cores. Each prints its own ratios
// against a baseline measured in the same run. `npm run bench -- raft` filters.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const filter = process.argv[2] ?? "";
const build = spawnSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
if (build.status !== 0) process.exit(1);
let failures = 0;
for (const pkg of readdirSync("packages").sort()) {
  const dir = join("packages", pkg, "dist", "bench");
  if (!existsSync(dir)) continue;
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".js"))
    .sort()) {
    const path = join(dir, file);
    if (!path.includes(filter)) continue;
    console.log(`\n== ${pkg}/${file.replace(/\.js$/, "")} ==`);
    const r = spawnSync(process.execPath, [path], { stdio: "inherit" });
    if (r.status !== 0) failures++;
  }
}
process.exit(failures === 0 ? 0 : 1);
