export { buildProgram, main } from "./cli/main.js";
export * from "./sdk/index.js";
