/**
 * @hsmpool/faults: what the simulator and the chaos harness share to make seeded
 * fault schedules: the splittable PRNG and the network partition shapes. Pure.
 */

export { describeShape, type Link, linksCut, type NodeName, type PartitionShape } from "./partitions.js";
export { Prng, splitmix64 } from "./prng.js";
