/**
 * The pure part of membership (subpath `@hsmpool/node/membership`): the primary's join
 * and membership-change rules. The joiner and the driver carry gRPC and timers and are
 * deliberately not exported here, so the simulator can reuse these rules without I/O.
 */
export * from "./join-rules.js";
