/**
 * The pure healing core (subpath `@hsmpool/hfc/healing`): the controller, its data,
 * replacement placement and the persisted-state helpers. Nothing reachable from here
 * does I/O (no fs, no gRPC, no clock), so the simulator runs the same controller the
 * HFC process does. Keep it that way: shell code belongs in ../controller.ts.
 */

export type { MemberSpec } from "@hsmpool/wire";
export type { InventoryRack } from "../placement.js";
export {
  crashLoopOf,
  defaultHealingConfig,
  freshRuntime,
  healingStep,
  initialHealingState,
  nextMemberNumberAfter,
  restartDelayMs,
} from "./controller.js";
export * from "./model.js";
export { type FabricStateFile, type HealingFile, restoreHealingState, toHealingFile } from "./persisted.js";
export { placeReplacement, type ReplacementPlacement } from "./replacement-placement.js";
