/**
 * Deliberately broken variants of the shipped HFC shell, for checker self-tests: the
 * simulator (`hsmpool sim pool --unsafe-mode <variant>`, healing scenario) switches one
 * on to prove its healing sweep catches it. They are passed only in code (Supervision's
 * `variants`); no file, flag or environment variable the HFC process reads can set one.
 */
export const HFC_VARIANTS = [
  /** Supervisor: a joiner (the replacement of a lost member) is never launched. */
  "neverReplace",
  /** Supervisor: a joiner is launched on a spare server in a rack a live member already uses. */
  "replaceIntoUsedRack",
] as const;

export type HfcVariant = (typeof HFC_VARIANTS)[number];

export function isHfcVariant(name: string): name is HfcVariant {
  return (HFC_VARIANTS as readonly string[]).includes(name);
}
