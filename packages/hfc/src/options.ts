/** Where the HFC finds the node build by default: the sibling package's compiled entry and bundle. */
import { fileURLToPath } from "node:url";

/** `<repo>/packages/node/dist/main.js` (this module sits in hfc/src and hfc/dist alike). */
export const DEFAULT_NODE_MAIN = fileURLToPath(new URL("../../node/dist/main.js", import.meta.url));
/** The signed enclave bundle the nodes launch: the node's dist directory. */
export const DEFAULT_BUNDLE_DIR = fileURLToPath(new URL("../../node/dist", import.meta.url));
