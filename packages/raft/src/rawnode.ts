import type { ConfChange, Config, ConfState, Message, Ready, Status } from "./types.js";

/**
 * The application-facing handle on one Raft member (etcd's RawNode). Pure: it never
 * reads a clock, socket, file or Math.random; time arrives as tick(), randomness via
 * Config.random, messages via step(), and all output leaves through ready().
 */
export class RawNode {
  constructor(_config: Config) {
    throw new Error("not implemented");
  }
  tick(): void {
    throw new Error("not implemented");
  }
  step(_m: Message): void {
    throw new Error("not implemented");
  }
  propose(_data: Uint8Array): void {
    throw new Error("not implemented");
  }
  proposeConfChange(_cc: ConfChange): void {
    throw new Error("not implemented");
  }
  applyConfChange(_cc: ConfChange): ConfState {
    throw new Error("not implemented");
  }
  transferLeadership(_to: string): void {
    throw new Error("not implemented");
  }
  readIndex(_requestCtx: Uint8Array): void {
    throw new Error("not implemented");
  }
  campaign(): void {
    throw new Error("not implemented");
  }
  hasReady(): boolean {
    throw new Error("not implemented");
  }
  /**
   * Persist-before-send: durably persist rd.snapshot, rd.entries and rd.hardState,
   * THEN send rd.messages, then apply rd.committedEntries, then call advance().
   */
  ready(): Ready {
    throw new Error("not implemented");
  }
  advance(_rd?: Ready): void {
    throw new Error("not implemented");
  }
  status(): Status {
    throw new Error("not implemented");
  }
  reportUnreachable(_id: string): void {
    throw new Error("not implemented");
  }
  reportSnapshot(_id: string, _ok: boolean): void {
    throw new Error("not implemented");
  }
}
