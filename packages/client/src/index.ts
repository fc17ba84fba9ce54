// The customer's side of creating a pool, for deployments started without `hsmpool up` (compose):
// the tenant binding a new pool commits, and the security-domain ceremony that activates it.
export { activateWithCustomerKeys } from "./cli/activation.js";
export { tenantBindingRequest } from "./cli/lifecycle.js";
export { buildProgram, main } from "./cli/main.js";
export * from "./sdk/index.js";
export * from "./tenant/index.js";
