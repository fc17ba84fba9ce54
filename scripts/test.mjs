#!/usr/bin/env node
// `npm test`: build (incremental, and re-sign the node enclave bundle), run every vitest tier that can run on this
// machine, and end with the plain summary line CI reads: "N passed, N failed, N skipped".
// Extra arguments go to vitest (e.g. `npm test -- packages/raft`).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const build = spawnSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
if (build.status !== 0) {
  console.log("build failed");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), "hsmpool-test-"));
const report = join(dir, "vitest.json");
const run = spawnSync(
  "npx",
  [
    "--no-install",
    "vitest",
    "run",
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: "inherit" },
);

let passed = 0;
let failed = 0;
let skipped = 0;
let suiteErrors = 0;
try {
  const j = JSON.parse(readFileSync(report, "utf8"));
  passed = j.numPassedTests;
  failed = j.numFailedTests;
  skipped = j.numPendingTests + j.numTodoTests;
  // A file that fails to load, or whose beforeAll/afterAll fails, is a failure even
  // though none of its tests is (they show as skipped or are missing).
  suiteErrors = j.testResults.filter(
    (f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed"),
  ).length;
} catch {
  suiteErrors = 1;
}
rmSync(dir, { recursive: true, force: true });
failed += suiteErrors;
// vitest failing for any other reason (unhandled error, crash) must not print "0 failed".
if (run.status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
