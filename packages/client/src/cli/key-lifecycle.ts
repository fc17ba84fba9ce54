/**
 * `hsmpool keys rotate|versions|update|rotation-policy|deleted|recover|purge`: versions
 * and the key lifecycle on the running pool (writes commit through the primary).
 */
import { fail } from "@hsmpool/errors";
import type { Command } from "commander";
import type { DeletedKeyBundle, RotationPolicyJson, UpdateKeyOptions } from "../sdk/types.js";
import { out, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";
import { parseWholeNumber } from "./inputs.js";
import { collectTag, keyLine, parseOps, parseTime } from "./keys.js";

interface Common {
  json?: boolean;
  runDir?: string;
}

export function registerKeyLifecycleCommands(keys: Command): void {
  registerKeysRotateCommand(keys);
  registerKeysVersionsCommand(keys);
  registerKeysUpdateCommand(keys);
  registerKeysRotationPolicyCommands(keys);
  registerKeysDeletedCommands(keys);
  registerKeysRecoverCommand(keys);
  registerKeysPurgeCommand(keys);
}

function registerKeysRotateCommand(keys: Command): void {
  keys
    .command("rotate")
    .description("make a new version of a key with the same type, size/curve, operations and tags")
    .argument("<name>", "key name")
    .option("--json", "print the new version as JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: Common) => {
      const key = await withPool(resolveRunDir(opts.runDir), (c) => c.rotateKey(name));
      out(opts.json ? JSON.stringify(key) : `rotated ${keyLine(key)}`);
    });
}

function registerKeysVersionsCommand(keys: Command): void {
  keys
    .command("versions")
    .description("list every version of a key, oldest first, with its created/updated stamps")
    .argument("<name>", "key name")
    .option("--json", "print the versions as a JSON array")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: Common) => {
      const list = await withPool(resolveRunDir(opts.runDir), (c) => c.listKeyVersions(name));
      if (opts.json) out(JSON.stringify(list));
      else
        out(
          list
            .map(
              (k) =>
                `${keyLine(k)}, created ${new Date(k.attributes.createdMs).toISOString()}${k.attributes.expiresMs ? `, expires ${new Date(k.attributes.expiresMs).toISOString()}` : ""}`,
            )
            .join("\n"),
        );
    });
}

function registerKeysUpdateCommand(keys: Command): void {
  keys
    .command("update")
    .description("change one version's attributes (default: the latest); other versions stay as they are")
    .argument("<name>", "key name")
    .option("--version <n>", "key version (default: latest)")
    .option("--enable", "enable the version")
    .option("--disable", "disable the version (operations on it are refused)")
    .option("--expires <time>", "not usable after (ISO-8601 or Unix ms; 'none' clears)")
    .option("--not-before <time>", "not usable before (ISO-8601 or Unix ms; 'none' clears)")
    .option("--ops <list>", "allowed operations, comma separated")
    .option(
      "--tags <name=value>",
      "replace the tags (repeatable; --tags '' clears)",
      collectTagOrClear,
      undefined,
    )
    .option("--json", "print the version as JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: Common & {
          version?: string;
          enable?: boolean;
          disable?: boolean;
          expires?: string;
          notBefore?: string;
          ops?: string;
          tags?: Record<string, string>;
        },
      ) => {
        if (opts.enable && opts.disable) fail("BadParameter", "give --enable or --disable, not both");
        const request: UpdateKeyOptions = {
          name,
          ...(opts.version !== undefined
            ? { version: parseWholeNumber("--version", opts.version, 1, 2 ** 31) }
            : {}),
          ...(opts.enable ? { enabled: true } : opts.disable ? { enabled: false } : {}),
          ...(opts.expires !== undefined ? { expiresMs: optionalTime("--expires", opts.expires) } : {}),
          ...(opts.notBefore !== undefined
            ? { notBeforeMs: optionalTime("--not-before", opts.notBefore) }
            : {}),
          ...(opts.ops !== undefined ? { ops: parseOps(opts.ops) } : {}),
          ...(opts.tags !== undefined ? { tags: opts.tags } : {}),
        };
        if (Object.keys(request).filter((k) => k !== "name" && k !== "version").length === 0) {
          fail(
            "BadParameter",
            "keys update needs at least one of --enable, --disable, --expires, --not-before, --ops, --tags",
          );
        }
        const key = await withPool(resolveRunDir(opts.runDir), (c) => c.updateKey(request));
        out(opts.json ? JSON.stringify(key) : `updated ${keyLine(key)}`);
      },
    );
}

function collectTagOrClear(
  value: string,
  previous: Record<string, string> | undefined,
): Record<string, string> {
  return value === "" ? { ...previous } : collectTag(value, previous ?? {});
}

function optionalTime(flag: string, value: string): number | null {
  return value === "none" ? null : parseTime(flag, value);
}

function registerKeysRotationPolicyCommands(keys: Command): void {
  const policy = keys
    .command("rotation-policy")
    .description(
      "a key's automatic rotation policy (the managed-HSM API's lifetimeActions, ISO-8601 durations)",
    );
  registerRotationPolicySetCommand(policy);
  registerRotationPolicyGetCommand(policy);
}

function registerRotationPolicySetCommand(policy: Command): void {
  policy
    .command("set")
    .description("set the policy; the primary rotates on its clock when due, exactly once per due version")
    .argument("<name>", "key name")
    .option("--rotate-after <duration>", "rotate this long after a version is created, e.g. P30D")
    .option("--rotate-before-expiry <duration>", "rotate this long before a version expires, e.g. P7D")
    .option("--notify-before-expiry <duration>", "notify this long before a version expires, e.g. P10D")
    .option("--expires-after <duration>", "versions made by rotation expire this long after, e.g. P90D")
    .option("--json", "print the policy as the API's JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: Common & {
          rotateAfter?: string;
          rotateBeforeExpiry?: string;
          notifyBeforeExpiry?: string;
          expiresAfter?: string;
        },
      ) => {
        const actions: RotationPolicyJson["lifetimeActions"] = [];
        if (opts.rotateAfter)
          actions.push({ trigger: { timeAfterCreate: opts.rotateAfter }, action: { type: "Rotate" } });
        if (opts.rotateBeforeExpiry) {
          actions.push({
            trigger: { timeBeforeExpiry: opts.rotateBeforeExpiry },
            action: { type: "Rotate" },
          });
        }
        if (opts.notifyBeforeExpiry) {
          actions.push({
            trigger: { timeBeforeExpiry: opts.notifyBeforeExpiry },
            action: { type: "Notify" },
          });
        }
        if (actions.length === 0 && !opts.expiresAfter) {
          fail(
            "BadParameter",
            "give at least one of --rotate-after, --rotate-before-expiry, --notify-before-expiry, --expires-after",
          );
        }
        const body: RotationPolicyJson = {
          lifetimeActions: actions,
          ...(opts.expiresAfter ? { attributes: { expiryTime: opts.expiresAfter } } : {}),
        };
        const set = await withPool(resolveRunDir(opts.runDir), (c) => c.setRotationPolicy(name, body));
        out(opts.json ? JSON.stringify(set) : `rotation policy of ${name}: ${describePolicy(set)}`);
      },
    );
}

function registerRotationPolicyGetCommand(policy: Command): void {
  policy
    .command("get")
    .description("show the policy (--json: the API's JSON shape)")
    .argument("<name>", "key name")
    .option("--json", "print the policy as the API's JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: Common) => {
      const got = await withPool(resolveRunDir(opts.runDir), (c) => c.getRotationPolicy(name));
      if (opts.json) out(JSON.stringify(got));
      else
        out(
          got ? `rotation policy of ${name}: ${describePolicy(got)}` : `key ${name} has no rotation policy`,
        );
    });
}

function describePolicy(p: RotationPolicyJson): string {
  const parts = p.lifetimeActions.map((a) => {
    const when = a.trigger.timeAfterCreate
      ? `${a.trigger.timeAfterCreate} after creation`
      : `${a.trigger.timeBeforeExpiry} before expiry`;
    return `${a.action.type.toLowerCase()} ${when}`;
  });
  if (p.attributes?.expiryTime) parts.push(`versions expire ${p.attributes.expiryTime} after rotation`);
  return parts.join("; ");
}

function deletedLine(d: DeletedKeyBundle): string {
  return `${d.key.name} (versions ${d.versions.join(",")}): deleted ${new Date(d.deletedMs).toISOString()}, purge scheduled ${new Date(d.scheduledPurgeMs).toISOString()}`;
}

function registerKeysDeletedCommands(keys: Command): void {
  const deleted = keys.command("deleted").description("soft-deleted keys: recoverable until purged");
  registerDeletedListCommand(deleted);
  registerDeletedGetCommand(deleted);
}

function registerDeletedListCommand(deleted: Command): void {
  deleted
    .command("list", { isDefault: true })
    .description("list soft-deleted keys with their deletion and scheduled purge dates")
    .option("--json", "print them as a JSON array")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: Common) => {
      const list = await withPool(resolveRunDir(opts.runDir), (c) => c.listDeletedKeys());
      if (opts.json) out(JSON.stringify(list));
      else out(list.length === 0 ? "no deleted keys" : list.map(deletedLine).join("\n"));
    });
}

function registerDeletedGetCommand(deleted: Command): void {
  deleted
    .command("get")
    .description("show one soft-deleted key")
    .argument("<name>", "key name")
    .option("--json", "print it as JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: Common) => {
      const d = await withPool(resolveRunDir(opts.runDir), (c) => c.getDeletedKey(name));
      out(opts.json ? JSON.stringify(d) : deletedLine(d));
    });
}

function registerKeysRecoverCommand(keys: Command): void {
  keys
    .command("recover")
    .description("bring a soft-deleted key back with every version")
    .argument("<name>", "key name")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: Common) => {
      const key = await withPool(resolveRunDir(opts.runDir), (c) => c.recoverDeletedKey(name));
      out(`recovered ${keyLine(key)}`);
    });
}

function registerKeysPurgeCommand(keys: Command): void {
  keys
    .command("purge")
    .description("remove a soft-deleted key for good (refused under purge protection before its purge date)")
    .argument("<name>", "key name")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: Common) => {
      await withPool(resolveRunDir(opts.runDir), (c) => c.purgeDeletedKey(name));
      out(`purged ${name}`);
    });
}
