import { describe, expect, it } from "vitest";
import { HistoryBuilder } from "../testing/history-builder.js";
import { checkDurability } from "./durability.js";

const finalGet = (h: HistoryBuilder, key: string, version: number | "absent") => {
  h.invoke(99, "get", key, undefined);
  const last = h.events.at(-1);
  if (last && last.process !== "nemesis") last.final = true;
  return version === "absent" ? h.notFound(99, { final: true }) : h.ok(99, { version }, { final: true });
};

describe("durability checker", () => {
  it("passes when every acknowledged create and delete shows in the final reads", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "a")
      .ok(0, { version: 1 })
      .invoke(0, "create", "b")
      .ok(0, { version: 1 })
      .invoke(1, "delete", "b")
      .ok(1);
    finalGet(h, "a", 1);
    finalGet(h, "b", "absent");
    const r = checkDurability(h.events, ["a", "b"]);
    expect(r.valid).toBe(true);
    expect(r.summary).toBe("3 acknowledged writes, all reflected in the final reads");
  });

  it("flags an acknowledged create that is gone at the end with no delete to explain it", () => {
    const h = new HistoryBuilder().invoke(0, "create", "a").ok(0, { version: 1 });
    finalGet(h, "a", "absent");
    const r = checkDurability(h.events, ["a"]);
    expect(r.valid).toBe(false);
    expect(r.summary).toMatch(
      /create of a acknowledged version 1 and no delete or purge could follow it, but the final read saw no key/,
    );
  });

  it("flags a final version older than an acknowledged one", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "a")
      .ok(0, { version: 1 })
      .invoke(0, "create", "a")
      .ok(0, { version: 2 });
    finalGet(h, "a", 1);
    expect(checkDurability(h.events, ["a"]).valid).toBe(false);
  });

  it("accepts a missing key when a delete with an unknown outcome may have come after the create", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "a")
      .ok(0, { version: 1 })
      .invoke(1, "delete", "a")
      .unknown(1);
    finalGet(h, "a", "absent");
    expect(checkDurability(h.events, ["a"]).valid).toBe(true);
  });

  it("flags an acknowledged delete that is undone at the end", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "a")
      .ok(0, { version: 1 })
      .invoke(1, "delete", "a")
      .ok(1);
    finalGet(h, "a", 1);
    const r = checkDurability(h.events, ["a"]);
    expect(r.valid).toBe(false);
    expect(r.summary).toMatch(/delete of a was acknowledged/);
  });

  it("says unknown when a key with acknowledged writes could not be read at the end", () => {
    const h = new HistoryBuilder().invoke(0, "create", "a").ok(0, { version: 1 });
    h.invoke(99, "get", "a");
    (h.events.at(-1) as { final?: boolean }).final = true;
    h.fail(99, "Timeout", { final: true });
    expect(checkDurability(h.events, ["a"]).valid).toBe("unknown");
  });
});
