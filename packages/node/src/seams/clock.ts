/** The node's clock seam is the one both process shells share (@hsmpool/wire clock.ts). */
export { type Clock, sleep, systemClock, type TimerId } from "@hsmpool/wire";
