import { type Link, linksCut, type PartitionShape, Prng } from "@hsmpool/faults";
import { describe, expect, it } from "vitest";
import { Network } from "./network.js";

const N3 = ["n1", "n2", "n3"];
const N5 = ["n1", "n2", "n3", "n4", "n5"];
const fmt = (links: Link[]) => links.map((l) => `${l.from}>${l.to}`).sort();

describe("partition shapes cut exactly the intended directed links", () => {
  const table: [string, PartitionShape, readonly string[], string[]][] = [
    ["one-way n1 -> n2", { kind: "one-way", from: ["n1"], to: ["n2"] }, N3, ["n1>n2"]],
    ["one-way n1 -> {n2,n3}", { kind: "one-way", from: ["n1"], to: ["n2", "n3"] }, N3, ["n1>n2", "n1>n3"]],
    ["isolate n2 (3 nodes)", { kind: "isolate", node: "n2" }, N3, ["n1>n2", "n2>n1", "n2>n3", "n3>n2"]],
    [
      "majority/minority {n1,n2} | {n3,n4,n5}",
      {
        kind: "halves",
        sides: [
          ["n1", "n2"],
          ["n3", "n4", "n5"],
        ],
      },
      N5,
      [
        "n1>n3",
        "n1>n4",
        "n1>n5",
        "n2>n3",
        "n2>n4",
        "n2>n5",
        "n3>n1",
        "n3>n2",
        "n4>n1",
        "n4>n2",
        "n5>n1",
        "n5>n2",
      ],
    ],
    [
      "bridge {n1,n2} <- n3 -> {n4,n5}",
      { kind: "bridge", left: ["n1", "n2"], bridge: "n3", right: ["n4", "n5"] },
      N5,
      ["n1>n4", "n1>n5", "n2>n4", "n2>n5", "n4>n1", "n4>n2", "n5>n1", "n5>n2"],
    ],
    [
      "majorities ring of 5 (each sees itself and its two ring neighbours)",
      { kind: "ring", order: ["n1", "n2", "n3", "n4", "n5"] },
      N5,
      ["n1>n3", "n1>n4", "n2>n4", "n2>n5", "n3>n1", "n3>n5", "n4>n1", "n4>n2", "n5>n2", "n5>n3"],
    ],
    ["majorities ring of 3 cuts nothing (every pair is adjacent)", { kind: "ring", order: N3 }, N3, []],
  ];

  for (const [name, shape, members, expected] of table) {
    it(name, () => {
      expect(fmt(linksCut(shape, members))).toEqual([...expected].sort());
    });
  }

  it("in a majorities ring every node reaches a majority, and no two reach the same one", () => {
    const cut = new Set(fmt(linksCut({ kind: "ring", order: N5 }, N5)));
    const sees = N5.map((a) => N5.filter((b) => a === b || !cut.has(`${a}>${b}`)).join(","));
    for (const s of sees) expect(s.split(",").length).toBeGreaterThanOrEqual(3);
    expect(new Set(sees).size).toBe(N5.length);
  });

  it("the network drops exactly the cut links, in both send and delivery checks, until healed", () => {
    const net = new Network(Prng.fromSeed(1));
    const shape: PartitionShape = { kind: "bridge", left: ["n1", "n2"], bridge: "n3", right: ["n4", "n5"] };
    const cut = new Set(fmt(linksCut(shape, N5)));
    net.partition("p", linksCut(shape, N5));
    for (const a of N5) {
      for (const b of N5) {
        if (a === b) continue;
        const isCut = cut.has(`${a}>${b}`);
        expect(net.isCut(a, b)).toBe(isCut);
        expect(net.send(a, b, 0).length).toBe(isCut ? 0 : 1);
      }
    }
    net.healPartition("p");
    for (const a of N5) for (const b of N5) expect(net.isCut(a, b)).toBe(false);
  });

  it("overlapping partitions keep a link cut until the last one heals", () => {
    const net = new Network(Prng.fromSeed(1));
    net.partition("a", linksCut({ kind: "isolate", node: "n1" }, N3));
    net.partition("b", linksCut({ kind: "one-way", from: ["n1"], to: ["n2"] }, N3));
    net.healPartition("a");
    expect(net.isCut("n1", "n2")).toBe(true);
    expect(net.isCut("n2", "n1")).toBe(false);
    net.healPartition("b");
    expect(net.isCut("n1", "n2")).toBe(false);
  });
});
