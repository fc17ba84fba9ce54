export { buildProgram, main } from "./cli/main.js";
export * from "./sdk/index.js";
export * from "./tenant/index.js";
