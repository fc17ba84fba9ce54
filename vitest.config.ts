import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests import workspace packages from source, so editing a package never needs a
// rebuild before its dependents' tests see it. Processes spawned by e2e tests run
// the compiled dist/ (scripts/test.mjs builds first).
const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@hsmpool\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
      // Pure subpath exports (e.g. @hsmpool/hfc/healing) map to that folder's index.ts.
      { find: /^@hsmpool\/([a-z-]+)\/([a-z-]+)$/, replacement: `${root}packages/$1/src/$2/index.ts` },
    ],
  },
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    // Bounds, not goals: e2e cases start real processes, and a loaded 2-core CI machine once took
    // over 60 s for a case that takes 7 s on an idle one. Speed is measured in `npm run bench`.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
