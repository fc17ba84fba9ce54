/**
 * Deliberately broken variants of the shipped shell code, for checker self-tests: the
 * simulator (`hsmpool sim pool --unsafe-mode <variant>`) and tests switch one on to
 * prove a sweep catches it. They are passed only in code (NodeOptions.variants); no
 * config file, flag or environment variable a production node reads can set one.
 */
export const SHELL_VARIANTS = [
  /** RaftDriver: a Ready's messages leave before its entries and hard state are on disk. */
  "sendBeforePersist",
  /** KeyService: gets and crypto operations skip the ReadIndex barrier (stale reads). */
  "readWithoutBarrier",
  /** KeyService: reads and signs skip the ownership check (served before the DEK is held). */
  "serveWithoutOwnership",
  /** KeyService: a create is answered when proposed, not when its entry applies. */
  "ackBeforeCommit",
  /** OwnershipDriver: the proposer feeds its own Genesis back as committed when it proposes it. */
  "genesisBeforeCommit",
  /** OwnershipDriver: the checkpoint is written after the step's effects ran. */
  "checkpointAfterEffects",
] as const;

export type ShellVariant = (typeof SHELL_VARIANTS)[number];

/** The broken variants a node runs with: empty in every real process. */
export type ShellVariants = ReadonlySet<ShellVariant>;

export const NO_VARIANTS: ShellVariants = new Set();

export function isShellVariant(name: string): name is ShellVariant {
  return (SHELL_VARIANTS as readonly string[]).includes(name);
}
