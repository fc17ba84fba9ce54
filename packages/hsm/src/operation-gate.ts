/**
 * The entry every device operation goes through: refuse when the device is closed,
 * apply the fault hooks, then run. Keeps the no-fault path to two property reads.
 */
import { fail } from "@hsmpool/errors";
import { FaultInjector } from "./faults.js";

export class OperationGate {
  readonly faults = new FaultInjector();
  private closed = false;

  constructor(private readonly dir: string) {}

  async run<T>(operation: string, task: () => T | Promise<T>): Promise<T> {
    this.assertOpen();
    if (this.faults.active) {
      await this.faults.admit(operation);
      this.assertOpen();
    }
    return task();
  }

  close(): void {
    this.closed = true;
    this.faults.clear();
  }

  private assertOpen(): void {
    if (this.closed) fail("ServiceUnavailable", `HSM device at ${this.dir} is closed; open it again`);
  }
}
