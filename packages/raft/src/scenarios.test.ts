import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runTranscript, TranscriptError } from "./testing/transcript.js";

const dir = new URL("./testdata/", import.meta.url);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".txt"))
  .sort();

function title(script: string): string {
  return script.split("\n")[0]!.replace(/^#\s*/, "");
}

describe("transcript scenarios (src/testdata/*.txt)", () => {
  for (const f of files) {
    const script = readFileSync(new URL(f, dir), "utf8");
    it(`${f}: ${title(script)}`, () => {
      runTranscript(script);
    });
  }
});

describe("the transcript runner can fail", () => {
  const base = "cluster n1 n2 n3\ncampaign n1\ndeliver\n";

  it("a wrong expectation fails and names its line", () => {
    expect(() => runTranscript(`${base}expect leader n2`)).toThrow(TranscriptError);
    expect(() => runTranscript(`${base}expect leader n2`)).toThrow(/line 4: expect leader n2/);
    expect(() => runTranscript(`${base}expect commit all 3`)).toThrow(/commit of n1: expected 3, got 2/);
  });

  it("an expected refusal that does not happen fails", () => {
    expect(() => runTranscript(`${base}propose n1 x => error NotLeader`)).toThrow(/the action succeeded/);
  });

  it("an unexpected refusal fails, and so does the wrong code or detail", () => {
    expect(() => runTranscript(`cluster n1 n2 n3 noforward\n${base.slice(17)}propose n2 x`)).toThrow(
      /not leader, leader is n1/,
    );
    expect(() =>
      runTranscript(`cluster n1 n2 n3 noforward\n${base.slice(17)}propose n2 x => error Conflict`),
    ).toThrow(/expected error Conflict, got NotLeader/);
    expect(() =>
      runTranscript(`cluster n1 n2 n3 noforward\n${base.slice(17)}propose n2 x => error NotLeader leader=n3`),
    ).toThrow(/expected error detail leader=n3, got n1/);
  });

  it("unknown commands are rejected rather than ignored", () => {
    expect(() => runTranscript(`${base}teleport n1`)).toThrow(/unknown command teleport/);
    expect(() => runTranscript(`${base}expect happiness n1`)).toThrow(/unknown expectation happiness/);
  });
});
