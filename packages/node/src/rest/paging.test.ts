import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { pageOf } from "./paging.js";
import type { RestRequest } from "./types.js";

const request = (query: string): RestRequest => ({
  params: {},
  query: new URLSearchParams(query),
  body: {},
  baseUrl: "https://127.0.0.1:1",
  apiVersion: "7.5",
});

/** Follows nextLinks from the first page, as the SDK does. */
function allPages(items: string[], max: number): { pages: number; seen: string[] } {
  let query = `maxresults=${max}`;
  const seen: string[] = [];
  for (let pages = 1; ; pages++) {
    const page = pageOf(
      items,
      (s) => s,
      (s) => s,
      request(query),
      "/keys",
    );
    seen.push(...(page.value as string[]));
    if (page.nextLink === null) return { pages, seen };
    query = new URL(page.nextLink).search.slice(1);
  }
}

describe("paging with maxresults and nextLink", () => {
  test("following nextLinks yields every item once, in order, in ceil(n/max) pages", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { maxLength: 80 }),
        fc.integer({ min: 1, max: 25 }),
        (names, max) => {
          const items = [...names].sort();
          const { pages, seen } = allPages(items, max);
          expect(seen).toEqual(items);
          expect(pages).toBe(Math.max(1, Math.ceil(items.length / max)));
        },
      ),
    );
  });

  test("the nextLink keeps the api-version and the page size", () => {
    const page = pageOf(
      ["a", "b", "c"],
      (s) => s,
      (s) => s,
      request("maxresults=2"),
      "/keys",
    );
    expect(page.nextLink).toMatch(
      /^https:\/\/127\.0\.0\.1:1\/keys\?api-version=7\.5&\$skiptoken=[A-Za-z0-9_-]+&maxresults=2$/,
    );
  });

  test.each(["0", "26", "x", "-1", "2.5"])("maxresults=%s is BadParameter", (v) => {
    let error: unknown;
    try {
      pageOf(
        ["a"],
        (s) => s,
        (s) => s,
        request(`maxresults=${v}`),
        "/keys",
      );
    } catch (e) {
      error = e;
    }
    expect(isHsmPoolError(error, "BadParameter")).toBe(true);
  });
});
