export { decodeConfChange, encodeConfChange } from "./confchange-codec.js";
export { RawNode } from "./rawnode.js";
export { isStorageError, MemoryStorage, StorageError } from "./storage.js";
export type * from "./types.js";
export { MESSAGE_TYPES } from "./validate.js";
