/**
 * Fault hooks for chaos work: every device operation passes through `admit()` first,
 * which can hold it (wedge), delay it (latency) or fail it (failNext). Inactive hooks
 * cost one property read per operation.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type ErrorCode, fail, HsmPoolError, isErrorCode } from "@hsmpool/errors";

/** What tests and the chaos harness can do to a device. */
export interface FaultHooks {
  /** The next `count` operations fail with `code` (default DeviceFault) and change nothing. */
  failNext(count: number, code?: ErrorCode): void;
  /** Every operation waits `latencyMs` before it runs (0 turns it off). */
  setLatency(latencyMs: number): void;
  /** Operations that start from now on wait until release(). */
  wedge(): void;
  release(): void;
  /** Turns every fault off and releases wedged operations. */
  clear(): void;
}

export class FaultInjector implements FaultHooks {
  private failRemaining = 0;
  private failCode: ErrorCode = "DeviceFault";
  private latencyMs = 0;
  private wedged: { promise: Promise<void>; release: () => void } | undefined;
  /** True when any hook is set, so admit() can be skipped on the fast path. */
  active = false;

  failNext(count: number, code: ErrorCode = "DeviceFault"): void {
    if (!Number.isSafeInteger(count) || count < 0)
      fail("BadParameter", `failNext count must be an integer >= 0; got ${count}`);
    if (!isErrorCode(code))
      fail("BadParameter", `failNext code ${JSON.stringify(code)} is not an hsmpool error code`);
    this.failRemaining = count;
    this.failCode = code;
    this.refresh();
  }

  setLatency(latencyMs: number): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0)
      fail("BadParameter", `latency must be >= 0 ms; got ${latencyMs}`);
    this.latencyMs = latencyMs;
    this.refresh();
  }

  wedge(): void {
    if (this.wedged) return;
    let release = () => {};
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.wedged = { promise, release };
    this.refresh();
  }

  release(): void {
    const wedged = this.wedged;
    this.wedged = undefined;
    this.refresh();
    wedged?.release();
  }

  clear(): void {
    this.failRemaining = 0;
    this.latencyMs = 0;
    this.release();
  }

  /** Runs the hooks for one operation: wait while wedged, then latency, then maybe fail. */
  async admit(operation: string): Promise<void> {
    while (this.wedged) await this.wedged.promise;
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    if (this.failRemaining > 0) {
      this.failRemaining--;
      this.refresh();
      throw new HsmPoolError(this.failCode, `HSM device fault (injected): ${operation} failed`, {
        injected: true,
      });
    }
  }

  private refresh(): void {
    this.active = this.failRemaining > 0 || this.latencyMs > 0 || this.wedged !== undefined;
  }
}
