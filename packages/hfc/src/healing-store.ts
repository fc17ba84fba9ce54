/**
 * Where the healing state lives in the run dir (shell): members in `pool.json`
 * (with their lifecycle), records/upgrade/pause in `healing.json`, lost servers in
 * `fabric-state.json`. Written before any action that depends on them is performed
 * (fence before kill, joiner before launch), each file only when it changed.
 */

import { writeJsonAtomic } from "@hsmpool/files";
import type { HealingState } from "@hsmpool/healing";
import {
  type FabricStateFile,
  type HealingFile,
  parseFabricStateFile,
  parseHealingFile,
  toHealingFile,
} from "@hsmpool/healing";
import type { PoolSpec } from "@hsmpool/wire";
import { PUBLIC_FILE_MODE, poolSpecForFile, type RunPaths, readJson } from "@hsmpool/wire";

export async function readHealingFile(paths: RunPaths): Promise<HealingFile | undefined> {
  const raw = await readJson(paths.healingJson);
  return raw === undefined ? undefined : parseHealingFile(paths.healingJson, raw);
}

export async function readFabricStateFile(paths: RunPaths): Promise<FabricStateFile | undefined> {
  const raw = await readJson(paths.fabricStateJson);
  return raw === undefined ? undefined : parseFabricStateFile(paths.fabricStateJson, raw);
}

export class HealingStore {
  private written = new Map<string, string>();

  constructor(private readonly paths: RunPaths) {}

  /** Writes whichever of the three files changed since the last save. */
  async save(pool: PoolSpec, state: HealingState, controlPort: number): Promise<void> {
    const fabric: FabricStateFile = { version: 1, lostServers: state.lostServers };
    const files: [string, unknown][] = [
      [this.paths.poolJson, poolSpecForFile(this.paths.runDir, { ...pool, members: state.members })],
      [this.paths.healingJson, toHealingFile(state, controlPort)],
      [this.paths.fabricStateJson, fabric],
    ];
    for (const [path, value] of files) {
      const text = JSON.stringify(value);
      if (this.written.get(path) === text) continue;
      await writeJsonAtomic(path, value, PUBLIC_FILE_MODE);
      this.written.set(path, text);
    }
  }
}
