/**
 * Where the healing state lives in the run dir (shell): members in `pool.json`
 * (with their lifecycle), records/upgrade/pause in `healing.json`, lost servers in
 * `fabric-state.json`. Written before any action that depends on them is performed
 * (fence before kill, joiner before launch), each file only when it changed.
 */

import type { HealingState } from "@hsmpool/healing";
import {
  type FabricStateFile,
  type HealingFile,
  initialHealingState,
  parseFabricStateFile,
  parseHealingFile,
  restoreHealingState,
  toHealingFile,
} from "@hsmpool/healing";
import type { MemberSpec, PoolSpec } from "@hsmpool/wire";
import { PUBLIC_FILE_MODE, poolSpecForFile, type RunPaths } from "@hsmpool/wire";
import type { RunDirFiles } from "./seams.js";

async function readHealingFile(paths: RunPaths, files: RunDirFiles): Promise<HealingFile | undefined> {
  const raw = await files.readJson(paths.healingJson);
  return raw === undefined ? undefined : parseHealingFile(paths.healingJson, raw);
}

async function readFabricStateFile(
  paths: RunPaths,
  files: RunDirFiles,
): Promise<FabricStateFile | undefined> {
  const raw = await files.readJson(paths.fabricStateJson);
  return raw === undefined ? undefined : parseFabricStateFile(paths.fabricStateJson, raw);
}

/**
 * The healing controller's state as the run dir holds it (an HFC resuming after a stop
 * or a crash), or a new pool's; and the control port the previous HFC used (0: none).
 */
export async function loadHealingState(
  paths: RunPaths,
  files: RunDirFiles,
  members: MemberSpec[],
): Promise<{ healing: HealingState; controlPort: number }> {
  const healingFile = await readHealingFile(paths, files);
  if (!healingFile) return { healing: initialHealingState(members), controlPort: 0 };
  const fabric = await readFabricStateFile(paths, files);
  return {
    healing: restoreHealingState(members, healingFile, fabric),
    controlPort: healingFile.controlPort,
  };
}

export class HealingStore {
  private written = new Map<string, string>();

  constructor(
    private readonly paths: RunPaths,
    private readonly files: RunDirFiles,
  ) {}

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
      await this.files.writeJson(path, value, PUBLIC_FILE_MODE);
      this.written.set(path, text);
    }
  }
}
