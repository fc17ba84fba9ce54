/**
 * How many data-plane gRPC calls this node is serving right now, from the call's start
 * until grpc-js is done with it (its trailers written, or the stream closed).
 * Background work that would delay answers (the key reserve's refill) waits for zero.
 */
import * as grpc from "@grpc/grpc-js";

const STREAM_COUNTED_PER_MESSAGE = "/CryptoSession";

export class CallsInFlight {
  private count = 0;

  get busy(): boolean {
    return this.count > 0;
  }

  /** One operation of a long-lived stream (a crypto session) begins: streams count per message, not per stream. */
  enter(): void {
    this.count++;
  }

  leave(): void {
    this.count--;
  }

  /**
   * A server interceptor counting each call. grpc-js tells every call's end once
   * (onCancel), right after it hands the trailers to HTTP/2, which writes them from a
   * native immediate of the next loop turn: the count drops in an immediate queued
   * behind that write, so what waits for zero runs after the answer has left.
   */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    // An open session is no work: its messages count themselves (enter/leave).
    if (method.path.endsWith(STREAM_COUNTED_PER_MESSAGE)) return new grpc.ServerInterceptingCall(call);
    this.count++;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({ onCancel: () => setImmediate(() => this.count--) }),
    });
  };
}
