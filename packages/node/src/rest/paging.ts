/**
 * Key Vault paging: `maxresults` (1..25, default 25) items per page and a `nextLink`
 * carrying `$skiptoken` = the sort key of the last item returned (base64url), so a
 * page is stable while items are added or removed between requests.
 */
import { fail } from "@hsmpool/errors";
import type { RestRequest } from "./types.js";

export const MAX_RESULTS = 25;

function maxResultsOf(query: URLSearchParams): number {
  const raw = query.get("maxresults");
  if (raw === null || raw === "") return MAX_RESULTS;
  const n = /^\d{1,3}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= MAX_RESULTS)) {
    return fail(
      "BadParameter",
      `maxresults must be a whole number from 1 to ${MAX_RESULTS} (got ${JSON.stringify(raw)})`,
      {
        field: "maxresults",
      },
    );
  }
  return n;
}

function afterOf(query: URLSearchParams): string | null {
  const token = query.get("$skiptoken");
  if (token === null || token === "") return null;
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(token))
    return fail("BadParameter", "$skiptoken is not one this endpoint issued", { field: "$skiptoken" });
  return Buffer.from(token, "base64url").toString("utf8");
}

/** One page of `items` (already in sort-key order) rendered with `render`. */
export function pageOf<T>(
  items: readonly T[],
  sortKey: (item: T) => string,
  render: (item: T) => unknown,
  r: RestRequest,
  path: string,
): { value: unknown[]; nextLink: string | null } {
  const max = maxResultsOf(r.query);
  const after = afterOf(r.query);
  const rest = after === null ? items : items.filter((i) => sortKey(i) > after);
  const page = rest.slice(0, max);
  const last = page.at(-1);
  const nextLink =
    rest.length > max && last !== undefined
      ? `${r.baseUrl}${path}?api-version=${r.apiVersion}&$skiptoken=${Buffer.from(sortKey(last)).toString("base64url")}&maxresults=${max}`
      : null;
  return { value: page.map(render), nextLink };
}
