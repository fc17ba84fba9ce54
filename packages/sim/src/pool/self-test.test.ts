import { describe, expect, it, vi } from "vitest";
import { US_PER_S } from "../scheduler.js";
import type { PoolInvariantName } from "./checker.js";
import { runPoolSim } from "./run.js";
import { runPoolSweep } from "./sweep.js";
import { POOL_UNSAFE_MODES, type PoolUnsafeMode, UNSAFE_MODE_SCENARIOS } from "./unsafe.js";

// Each run boots the shipped node in virtual time: bounds are generous for a loaded machine (behaviour is checked, not speed).
vi.setConfig({ testTimeout: 1_200_000, hookTimeout: 1_200_000 });

/**
 * Checker self-tests: with a deliberately broken variant of the SHIPPED node shell
 * (@hsmpool/node seams/variants.ts) or a faulty simulated HSM, the simulator must find
 * a violation of the matching invariant within a bounded number of seeds — proof that
 * each pool checker can fail. The same scenarios pass with the correct shell (the
 * sweeps and scenario tests).
 */
const MAX_SEEDS = 40;

/**
 * Each variant runs its own scenario (UNSAFE_MODE_SCENARIOS, as `hsmpool sim pool --unsafe-mode` does).
 * `alsoBreaks`: another invariant the same bug may break first on some seeds; the sweep goes on past
 * those until the named invariant fires, so every checker is shown able to fail.
 */
const CASES: {
  mode: PoolUnsafeMode;
  invariant: PoolInvariantName;
  what: string;
  alsoBreaks?: PoolInvariantName[];
  /** What the violation must say (when the invariant alone does not pin the bug down). */
  says?: RegExp;
}[] = [
  {
    mode: "serveWithoutOwnership",
    invariant: "no-op-without-ownership",
    what: "a member serving get/sign before it holds the DEK",
  },
  {
    mode: "genesisBeforeCommit",
    invariant: "one-owner-root",
    what: "a primary treating its own Genesis as committed when it proposes it",
  },
  {
    mode: "ackBeforeCommit",
    invariant: "acked-create-kept",
    what: "creates (and deletes) acknowledged before their entry commits",
    // An early-acknowledged write that a later read misses (or still sees) breaks linearizability
    // even when the entry does commit in the end.
    alsoBreaks: ["linearizable-key-store"],
  },
  {
    mode: "divergentDek",
    invariant: "same-dek",
    what: "one member's HSM holding other material under the DEK's id",
  },
  {
    mode: "checkpointAfterEffects",
    invariant: "checkpoint-before-genesis",
    what: "a shell that sends the Genesis proposal before writing the checkpoint that records it",
  },
  {
    mode: "readWithoutBarrier",
    invariant: "linearizable-key-store",
    what: "gets and signs without the ReadIndex barrier",
  },
  {
    mode: "sendBeforePersist",
    invariant: "persist-before-send",
    what: "a Raft driver that sends a Ready's messages before its entries are on disk",
  },
  // Broken variants of the shipped HFC shell, caught by the healing scenario's "healed" invariant.
  {
    mode: "neverReplace",
    invariant: "liveness",
    what: "an HFC supervisor that never launches the replacement of a lost member",
    says: /healed: .*(not running|voters|lost server)/,
  },
  {
    mode: "replaceIntoUsedRack",
    invariant: "liveness",
    what: "an HFC supervisor that launches a replacement into a rack a live member uses",
    says: /healed: .*share a rack/,
  },
];

describe("the pool simulator catches a deliberately broken node shell", () => {
  it("every unsafe mode has a case here", () => {
    expect(CASES.map((c) => c.mode).sort()).toEqual([...POOL_UNSAFE_MODES].sort());
  });

  it.each(CASES)("$mode ($what) violates $invariant", async ({ mode, invariant, alsoBreaks = [], says }) => {
    const others: string[] = [];
    for (let seed = 1; seed <= MAX_SEEDS; seed++) {
      const r = await runPoolSim({ seed, unsafeMode: mode });
      if (r.ok) continue;
      expect(r.scenario).toBe(UNSAFE_MODE_SCENARIOS[mode]);
      if (r.violation?.invariant === invariant && (!says || says.test(r.violation.message))) {
        const healing = UNSAFE_MODE_SCENARIOS[mode] === "healing";
        expect(r.simulatedUs).toBeLessThanOrEqual((healing ? 60 : 30) * US_PER_S);
        expect(r.replayCommand).toContain(`--seed ${seed} --scenario ${r.scenario} --unsafe-mode ${mode}`);
        return;
      }
      if (r.violation?.invariant !== invariant)
        expect(alsoBreaks, `${r.violation?.message} (${r.replayCommand})`).toContain(r.violation?.invariant);
      others.push(`seed ${seed}: ${r.violation?.invariant}`);
    }
    expect.fail(`no seed in 1..${MAX_SEEDS} violated ${invariant} (${others.join("; ") || "all passed"})`);
  });

  it("a failing seed replays to the same violation and trace hash", async () => {
    const s = await runPoolSweep({
      from: 1,
      count: MAX_SEEDS,
      unsafeMode: "ackBeforeCommit",
      stopAfterFailures: 1,
    });
    const f = s.failures[0]!;
    const again = await runPoolSim({ seed: f.seed, unsafeMode: "ackBeforeCommit" });
    expect(again.traceHash).toBe(f.traceHash);
    expect(again.violation).toEqual(f.violation);
    expect(f.replayCommand).toBe(
      `npx hsmpool sim pool --seed ${f.seed} --scenario random --unsafe-mode ackBeforeCommit --transcript`,
    );
  });
});
