#!/usr/bin/env node
// `npm run bench`: runs every compiled benchmark (packages/*/dist/bench/*.js) one
// after another, so no two compete for the two cores. Each prints its own ratios
// against a baseline measured in the same run. `npm run bench -- raft` filters;
// `npm run bench -- --json out.json [filter]` also writes every figure as JSON.
//
// Figures: a benchmark prints a line `bench-figure {"name","value","unit","goal"?,"met"?}`
// (JSON after the prefix) for each figure it measured; this script collects them, writes
// the array to the --json file and prints every goal as met / NOT met at the end.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const FIGURE_PREFIX = "bench-figure ";
const args = process.argv.slice(2);
const jsonAt = args.indexOf("--json");
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
if (jsonAt >= 0 && !jsonFile) {
  console.error("bench: --json needs a file name");
  process.exit(2);
}
const filter = args.filter((_, i) => jsonAt < 0 || (i !== jsonAt && i !== jsonAt + 1))[0] ?? "";

/** Runs one benchmark, echoing its output and collecting its figure lines. */
function runBenchmark(path, figures) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "inherit"] });
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!line.startsWith(FIGURE_PREFIX)) return console.log(line);
      try {
        figures.push(JSON.parse(line.slice(FIGURE_PREFIX.length)));
      } catch {
        console.log(line);
      }
    });
    child.on("close", (code) => resolve(code));
  });
}

const build = spawnSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
if (build.status !== 0) process.exit(1);
let failures = 0;
const figures = [];
for (const pkg of readdirSync("packages").sort()) {
  const dir = join("packages", pkg, "dist", "bench");
  if (!existsSync(dir)) continue;
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".js"))
    .sort()) {
    const path = join(dir, file);
    if (!path.includes(filter)) continue;
    console.log(`\n== ${pkg}/${file.replace(/\.js$/, "")} ==`);
    if ((await runBenchmark(path, figures)) !== 0) failures++;
  }
}
if (figures.length > 0) {
  console.log("\n== figures ==");
  for (const f of figures) {
    const goal = f.goal === undefined ? "" : `  goal ${f.goal}: ${f.met ? "met" : "NOT met"}`;
    console.log(`${f.name}: ${f.value}${f.unit ? ` ${f.unit}` : ""}${goal}`);
  }
}
if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(figures, null, 2)}\n`);
process.exit(failures === 0 ? 0 : 1);
