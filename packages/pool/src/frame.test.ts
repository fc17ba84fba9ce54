import { describe, expect, it } from "vitest";
import { FRAME_HASH_BYTES_PER_STEP, frame, frameSteps, unframe, unframeVersionsSteps } from "./frame.js";

const FORMAT = { magic: "TST1", version: 3, what: "test frame" } as const;

describe("frame in steps", () => {
  it("pauses once per FRAME_HASH_BYTES_PER_STEP hashed and gives frame()'s bytes", () => {
    for (const size of [0, 1, FRAME_HASH_BYTES_PER_STEP - 5, FRAME_HASH_BYTES_PER_STEP * 2 + 7]) {
      const payload = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 0xff);
      const steps = frameSteps(FORMAT, payload);
      let pauses = 0;
      let step = steps.next();
      for (; !step.done; step = steps.next()) pauses++;
      // The hashed body is the 5-byte header plus the payload.
      expect(pauses).toBe(Math.ceil((size + 5) / FRAME_HASH_BYTES_PER_STEP) - 1);
      expect(step.value).toEqual(frame(FORMAT, payload));
      expect(unframe(FORMAT, step.value).raw(size, "payload")).toEqual(payload);
      // Unframed in steps: the same pauses and payload; a flipped byte still fails its checksum.
      const back = unframeVersionsSteps(FORMAT, [FORMAT.version], step.value);
      let backPauses = 0;
      let back1 = back.next();
      for (; !back1.done; back1 = back.next()) backPauses++;
      expect(backPauses).toBe(pauses);
      expect(back1.value.reader.raw(size, "payload")).toEqual(payload);
      const corrupt = Uint8Array.from(step.value);
      corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] ?? 0) ^ 1;
      const broken = unframeVersionsSteps(FORMAT, [FORMAT.version], corrupt);
      expect(() => {
        while (!broken.next().done);
      }).toThrow(/failed its checksum/);
    }
  });
});
