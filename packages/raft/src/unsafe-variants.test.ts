import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runTranscript, TranscriptError } from "./testing/transcript.js";
import type { UnsafeVariant } from "./types.js";

/**
 * The deliberately wrong variants (Config.unsafeVariant) exist so checkers can prove
 * they fail. Here each one is shown to break a scenario that passes with the
 * correct core, which also proves those scenarios and the SafetyChecker can fail.
 */
const script = (name: string) => readFileSync(new URL(`./testdata/${name}`, import.meta.url), "utf8");

const cases: [UnsafeVariant, string, RegExp][] = [
  // n1 counts replicas of its term-2 entry and commits it; n5 later overwrites index 3.
  ["commitOldTermEntries", "05-figure8-old-term-not-committed.txt", /commit of n1: expected 2, got 3/],
  // n3 lets the late term-2 MsgApp overwrite 3:3, then applies `stale` where n2 applied 3:3.
  [
    "acceptStaleTermAppend",
    "15-stale-leader-append-ignored.txt",
    /log \(index:term\) of n3|state machine safety/,
  ],
  // Every node votes for every candidate: three leaders in term 2.
  ["voteTwiceInTerm", "02-split-vote.txt", /election safety: .* both led term 2/],
];

describe("unsafe variants break the scenarios that guard against them", () => {
  for (const [variant, file, why] of cases) {
    it(`${variant} fails ${file}`, () => {
      expect(() => runTranscript(script(file))).not.toThrow();
      expect(() => runTranscript(script(file), { unsafeVariant: variant })).toThrow(why);
    });
  }

  it("the state machine safety checker itself catches divergent applies (stale append, expectations removed)", () => {
    const noExpect = script("15-stale-leader-append-ignored.txt")
      .split("\n")
      .filter((l) => !l.startsWith("expect"))
      .join("\n");
    expect(() => runTranscript(noExpect)).not.toThrow();
    expect(() => runTranscript(noExpect, { unsafeVariant: "acceptStaleTermAppend" })).toThrow(
      /state machine safety: n3 applied 2:normal:stale at 3/,
    );
  });

  it("the old-term commit is caught by the checker too, not only by the expect line", () => {
    const noExpect = script("05-figure8-old-term-not-committed.txt")
      .split("\n")
      .filter((l) => !l.startsWith("expect"))
      .join("\n");
    expect(() => runTranscript(noExpect)).not.toThrow();
    expect(() => runTranscript(noExpect, { unsafeVariant: "commitOldTermEntries" })).toThrow(TranscriptError);
    expect(() => runTranscript(noExpect, { unsafeVariant: "commitOldTermEntries" })).toThrow(
      /state machine safety|leader completeness/,
    );
  });
});
