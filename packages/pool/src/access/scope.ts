/** RBAC scopes: `/`, `/keys`, `/keys/<name>`; an assignment at a scope covers every scope below it. */
import { KEY_NAME } from "../key-request.js";
import { bad } from "../validate.js";
import type { Scope } from "./types.js";

export const ROOT_SCOPE: Scope = "/";
export const KEYS_SCOPE: Scope = "/keys";

export function keyScope(name: string): Scope {
  return `/keys/${name}`;
}

/** Normalises `keys`, `/keys/`, `/keys/k1` etc. to canonical form; anything else is BadParameter. */
export function normalizeScope(input: unknown, field = "scope"): Scope {
  if (typeof input !== "string") return bad(field, `${field} must be "/", "/keys" or "/keys/<key name>"`);
  let s = input.trim();
  if (s !== "/" && !s.startsWith("/")) s = `/${s}`;
  if (s.length > 1 && s.endsWith("/")) s = s.slice(0, -1);
  if (s === "/" || s === "/keys") return s;
  const name = s.startsWith("/keys/") ? s.slice("/keys/".length) : "";
  if (KEY_NAME.test(name)) return s;
  return bad(
    field,
    `${field} must be "/", "/keys" or "/keys/<key name>" (got ${JSON.stringify(input).slice(0, 80)})`,
  );
}

/** Does an assignment at `assigned` apply to a request at `requested`? (both canonical) */
export function scopeCovers(assigned: Scope, requested: Scope): boolean {
  return assigned === "/" || assigned === requested || requested.startsWith(`${assigned}/`);
}
