/**
 * Verifier policy files: JSON, validated by the platform's parsePolicy. Example:
 *   { "allowedSigners": [{ "mrsigner": "<64 hex>", "productId": 1, "minSvn": 2 }],
 *     "allowedMeasurements": ["<64 hex>"], "allowDebug": false }
 */
import { readFile } from "node:fs/promises";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { type Policy, parsePolicy } from "@hsmpool/platform";

/** A policy is a few lines; anything far bigger is the wrong file. */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

/** Reads and validates a policy file; BadParameter naming the file (and the field, when one is wrong). */
export async function loadPolicyFile(path: string): Promise<Policy> {
  if (typeof path !== "string" || path.length === 0) {
    fail("BadParameter", "policy file path must be a non-empty string", { field: "path" });
  }
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.byteLength > MAX_POLICY_FILE_BYTES) {
      fail("BadParameter", `policy file ${path} is larger than ${MAX_POLICY_FILE_BYTES} bytes`, {
        file: path,
      });
    }
    text = bytes.toString("utf8");
  } catch (e) {
    if (isHsmPoolError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "does not exist"
        : code === "EISDIR"
          ? "is a directory"
          : code === "EACCES"
            ? "is not readable (permission denied)"
            : `cannot be read (${code ?? String(e)})`;
    return fail("BadParameter", `policy file ${path} ${why}`, { file: path, reason: code });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return fail("BadParameter", `policy file ${path} is not valid JSON: ${(e as Error).message}`, {
      file: path,
    });
  }
  try {
    return parsePolicy(data);
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter")) {
      fail("BadParameter", `policy file ${path}: ${e.message}`, { ...e.details, file: path });
    }
    throw e;
  }
}
