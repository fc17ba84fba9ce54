/**
 * Randomness for the node shell (election jitter, backoff, read contexts, request ids,
 * file generations). Production draws from the OS CSPRNG; the simulator passes a
 * seeded stream. Key material is never drawn here: it is made inside the HSM.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";

export interface Randomness {
  /** Uniform in [0, 1). */
  float(): number;
  bytes(n: number): Uint8Array;
  uuid(): string;
}

export const systemRandomness: Randomness = {
  float: () => randomInt(0, 2 ** 47) / 2 ** 47,
  bytes: (n) => new Uint8Array(randomBytes(n)),
  uuid: () => randomUUID(),
};
