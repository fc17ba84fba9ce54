/**
 * Scenario files on disk: read and validate one, or list the shipped ones
 * (`<repo>/chaos/*.yaml`) with whether each is runnable here.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { SUPPORTED_FAULTS } from "../nemesis/capabilities.js";
import type { Scenario } from "./schema.js";
import { parseScenario } from "./validate.js";

/** `<repo>/chaos/`, from this file's place in packages/chaos/{src,dist}/scenario/. */
export const SHIPPED_SCENARIO_DIR = fileURLToPath(new URL("../../../../chaos/", import.meta.url));

export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(
      code === "ENOENT" ? "NotFound" : "BadParameter",
      code === "ENOENT"
        ? `${file}: no such scenario file (\`hsmpool chaos list\` shows the shipped ones)`
        : `${file}: cannot read it (${code ?? String(e)})`,
      { file },
    );
  }
  return parseScenario(text, file, { supportedFaults: SUPPORTED_FAULTS });
}

export interface ScenarioListing {
  file: string;
  name: string;
  description: string;
  /** Empty when the scenario validates; else its first problem. */
  problem: string;
}

/** Every `*.yaml` in `dir`, validated, sorted by file name. */
export async function listScenarios(dir = SHIPPED_SCENARIO_DIR): Promise<ScenarioListing[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".yaml") || n.endsWith(".yml")).sort();
  const out: ScenarioListing[] = [];
  for (const n of names) {
    const file = join(dir, n);
    try {
      const s = await loadScenario(file);
      out.push({ file, name: s.name, description: s.description, problem: "" });
    } catch (e) {
      if (!isHsmPoolError(e)) throw e;
      const first = e.message.split("\n")[0] ?? e.message;
      out.push({
        file,
        name: n.replace(/\.ya?ml$/, ""),
        description: "",
        problem: first.slice(file.length + 1),
      });
    }
  }
  return out;
}
