/**
 * The node shell's seams: everything it needs from the outside world comes through
 * these interfaces, each with the real implementation here and a simulated one in
 * packages/sim. New shell code takes them from here — never Date.now, setTimeout,
 * node:fs or node:crypto randomness directly.
 */
import { type Clock, systemClock } from "./clock.js";
import type { NodePlatform } from "./platform.js";
import { type Randomness, systemRandomness } from "./random.js";
import { systemPlatform } from "./real-platform.js";
import { type DurableStorage, fileStorage } from "./storage.js";

export { type Clock, sleep, systemClock, type TimerId } from "./clock.js";
export type { HsmDevicePort, HsmPartition, HsmSession } from "./hsm.js";
export type { NodeObserver } from "./observer.js";
export type {
  DataPlane,
  DataPlaneOptions,
  JoinAttempt,
  LaunchedServer,
  NodePlatform,
  PeerHandlers,
  PeerTransport,
  TransportOptions,
} from "./platform.js";
export { type Randomness, systemRandomness } from "./random.js";
export { systemPlatform } from "./real-platform.js";
export { type AppendableFile, type DurableStorage, fileStorage } from "./storage.js";
export {
  isShellVariant,
  NO_VARIANTS,
  SHELL_VARIANTS,
  type ShellVariant,
  type ShellVariants,
} from "./variants.js";

export interface NodeSeams {
  clock: Clock;
  random: Randomness;
  storage: DurableStorage;
  /** The server: enclave launch/quote/seal, HSM device, attested transport, data plane. */
  platform: NodePlatform;
}

export const systemSeams: NodeSeams = {
  clock: systemClock,
  random: systemRandomness,
  storage: fileStorage,
  platform: systemPlatform,
};
