import { isHsmPoolError } from "@hsmpool/errors";
import { type Entry, MESSAGE_TYPES, type Message } from "@hsmpool/raft";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clusterProto, messageFromWire, messageToWire, type RaftMessageWire } from "./cluster-proto.js";

const TYPES = [...MESSAGE_TYPES];
const id = fc.constantFrom("n1", "n2", "n3", "node-with.long_id-7");
const index = fc.nat({ max: 2 ** 40 });
const bytes = fc.uint8Array({ maxLength: 64 });

const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: index,
  index,
  type: fc.constantFrom("normal" as const, "confChange" as const),
  data: bytes,
});

const messageArb: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.constantFrom(...TYPES),
    from: id,
    to: id,
    term: index,
    logTerm: index,
    index,
    entries: fc.array(entryArb, { maxLength: 4 }),
    commit: index,
    reject: fc.boolean(),
    rejectHint: index,
    snapshot: fc.record({
      meta: fc.record({
        index,
        term: index,
        conf: fc.record({ voters: fc.array(id, { maxLength: 3 }), learners: fc.array(id, { maxLength: 2 }) }),
      }),
      data: bytes,
    }),
    context: bytes,
  },
  { requiredKeys: ["type", "from", "to", "term"] },
);

/** What a message looks like after the wire: an absent entry list is empty for MsgApp/MsgProp, else absent. */
function normalised(m: Message): Message {
  const out: Message = { ...m };
  const carriesEntries = m.type === "MsgApp" || m.type === "MsgProp";
  if (carriesEntries) out.entries = m.entries ?? [];
  else if (!m.entries || m.entries.length === 0) delete out.entries;
  return out;
}

function overTheWire(m: Message): Message {
  const method = clusterProto().raftService.Send!;
  const wire = method.requestDeserialize(method.requestSerialize(messageToWire(m))) as RaftMessageWire;
  return messageFromWire(wire);
}

describe("Raft messages on the cluster transport", () => {
  it("round-trip through the protobuf encoding unchanged (optional fields keep their presence)", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        expect(overTheWire(m)).toEqual(normalised(m));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a zero commit apart from an absent one", () => {
    const m: Message = { type: "MsgHeartbeat", from: "n1", to: "n2", term: 3, commit: 0 };
    expect(overTheWire(m)).toEqual(m);
    const { commit: _c, ...without } = m;
    expect(overTheWire(without)).toEqual(without);
  });

  it("refuses unknown message and entry types with BadParameter", () => {
    const good = messageToWire({ type: "MsgApp", from: "n1", to: "n2", term: 1, entries: [] });
    for (const wire of [
      { ...good, type: "MsgBogus" },
      { ...good, entries: [{ term: 1, index: 1, type: "weird", data: new Uint8Array() }] },
    ]) {
      let error: unknown;
      try {
        messageFromWire(wire);
      } catch (e) {
        error = e;
      }
      expect(isHsmPoolError(error, "BadParameter")).toBe(true);
    }
  });
});
