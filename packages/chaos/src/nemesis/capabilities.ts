/**
 * Which nemeses this harness can inject today. A scenario that asks for anything
 * else is refused at validation ("not supported yet: <nemesis>") instead of running
 * without its faults.
 */
import type { FaultKind } from "../scenario/schema.js";

export const SUPPORTED_FAULTS: ReadonlySet<FaultKind> = new Set<FaultKind>([
  "kill",
  "pause",
  "partition",
  "link",
  "hsm",
  "disk",
  "clock",
  "server-loss",
  "rack-loss",
  "random",
]);
