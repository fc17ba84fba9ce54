import { HFC_VARIANTS, type HfcVariant } from "@hsmpool/hfc";
import { SHELL_VARIANTS, type ShellVariant } from "@hsmpool/node";

/**
 * Deliberately wrong behaviours, for checker self-tests only: each breaks one pool
 * invariant on purpose, so a sweep proves the matching checker can fire. All but one
 * are broken variants of the SHIPPED node shell (@hsmpool/node seams/variants.ts:
 * sendBeforePersist, readWithoutBarrier, serveWithoutOwnership, ackBeforeCommit,
 * genesisBeforeCommit, checkpointAfterEffects), switched on through NodeOptions.variants;
 * "divergentDek" is a faulty simulated HSM (the first DEK import stores other material);
 * neverReplace and replaceIntoUsedRack are broken variants of the SHIPPED HFC shell
 * (@hsmpool/hfc variants.ts), caught by the healing scenario.
 */
export type PoolUnsafeMode = ShellVariant | HfcVariant | "divergentDek";

export const POOL_UNSAFE_MODES: readonly PoolUnsafeMode[] = [
  ...SHELL_VARIANTS,
  ...HFC_VARIANTS,
  "divergentDek",
];

/**
 * The scenario whose faults expose each variant: a Genesis accepted or checkpointed at the wrong moment
 * matters only when the proposer is cut off or crashes around its proposal (genesis-crash); the rest show
 * under the random schedule. `sim pool --unsafe-mode <m>` runs it unless --scenario names another.
 */
export const UNSAFE_MODE_SCENARIOS: Readonly<Record<PoolUnsafeMode, string>> = {
  sendBeforePersist: "random",
  readWithoutBarrier: "random",
  serveWithoutOwnership: "random",
  ackBeforeCommit: "random",
  genesisBeforeCommit: "genesis-crash",
  checkpointAfterEffects: "genesis-crash",
  neverReplace: "healing",
  replaceIntoUsedRack: "healing",
  divergentDek: "random",
};

/** The scenario a run uses when none is named: the variant's own, else "random". */
export function defaultPoolScenario(unsafeMode: PoolUnsafeMode | undefined): string {
  return unsafeMode === undefined ? "random" : UNSAFE_MODE_SCENARIOS[unsafeMode];
}
