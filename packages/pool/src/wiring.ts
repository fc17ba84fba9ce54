/**
 * Glue between the two state machines: which ownership inputs an applied log entry
 * produces. The shell calls this for every KeyStore.apply outcome (and, after
 * restoring a snapshot, feeds genesisApplied / memberSyncedApplied from the store).
 */
import type { ApplyOutcome } from "./keystore.js";
import type { OwnershipInput } from "./ownership-types.js";

export function ownershipInputsOf(outcome: ApplyOutcome): OwnershipInput[] {
  switch (outcome.kind) {
    case "genesisAccepted":
      return [{ kind: "genesisApplied", genesis: outcome.genesis }];
    case "memberSynced":
      return [{ kind: "memberSyncedApplied", memberId: outcome.memberId }];
    case "memberRemoved":
      return [{ kind: "memberRemovedApplied", memberId: outcome.memberId }];
    default:
      return [];
  }
}
