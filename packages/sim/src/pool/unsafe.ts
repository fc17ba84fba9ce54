import { SHELL_VARIANTS, type ShellVariant } from "@hsmpool/node";

/**
 * Deliberately wrong behaviours, for checker self-tests only: each breaks one pool
 * invariant on purpose, so a sweep proves the matching checker can fire. All but one
 * are broken variants of the SHIPPED node shell (@hsmpool/node seams/variants.ts:
 * sendBeforePersist, readWithoutBarrier, serveWithoutOwnership, ackBeforeCommit,
 * genesisBeforeCommit, checkpointAfterEffects), switched on through NodeOptions.variants;
 * "divergentDek" is a faulty simulated HSM (the first DEK import stores other material).
 */
export type PoolUnsafeMode = ShellVariant | "divergentDek";

export const POOL_UNSAFE_MODES: readonly PoolUnsafeMode[] = [...SHELL_VARIANTS, "divergentDek"];
