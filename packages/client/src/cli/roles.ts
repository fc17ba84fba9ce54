/**
 * `hsmpool role definition list|show|create|delete` and `hsmpool role assignment
 * create|delete|list`: local RBAC of the running pool, acting as `--as` of `--tenant`.
 * Principals are named as the tenant directory knows them (or by object id).
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fail } from "@hsmpool/errors";
import { normalizeScope } from "@hsmpool/pool";
import type { Command } from "commander";
import type { PoolClient } from "../sdk/pool-client.js";
import type { RoleAssignment, RoleDefinition } from "../sdk/types.js";
import { TenantDirectory } from "../tenant/tenant-dir.js";
import { out, RUN_DIR_HELP, resolveRunDir, selectedTenantDir, withPool } from "./context.js";

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function findRole(definitions: RoleDefinition[], nameOrId: string): RoleDefinition {
  const wanted = nameOrId.trim().toLowerCase();
  const role = definitions.find((d) => d.id.toLowerCase() === wanted || d.roleName.toLowerCase() === wanted);
  if (!role) {
    fail(
      "NotFound",
      `no role definition named or with id ${JSON.stringify(nameOrId)} (see \`hsmpool role definition list\`)`,
    );
  }
  return role;
}

async function tenantOrNull(): Promise<TenantDirectory | null> {
  return TenantDirectory.open(selectedTenantDir()).catch(() => null);
}

/** A principal name of the tenant directory, or an object id as is. */
async function principalIdOf(assignee: string): Promise<string> {
  if (GUID.test(assignee)) return assignee.toLowerCase();
  const tenant = await TenantDirectory.open(selectedTenantDir());
  return tenant.principal(assignee).oid;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function definitionLine(d: RoleDefinition): string {
  const actions = d.permissions.reduce((n, p) => n + p.dataActions.length, 0);
  return `${d.roleName}  ${d.id}  ${d.roleType}  ${actions} data action(s)`;
}

async function assignmentLines(client: PoolClient, assignments: RoleAssignment[]): Promise<string[]> {
  const definitions = await client.listRoleDefinitions().catch(() => [] as RoleDefinition[]);
  const tenant = await tenantOrNull();
  return assignments.map((a) => {
    const role = definitions.find((d) => d.id === a.roleDefinitionId)?.roleName ?? a.roleDefinitionId;
    const who = tenant?.nameOf(a.principalId);
    return `${a.id}  ${role}  ${who ? `${who} (${a.principalId})` : a.principalId}  ${a.scope}`;
  });
}

export function registerRoleCommands(program: Command): void {
  const role = program
    .command("role")
    .description("local RBAC of the running pool: role definitions and assignments");
  registerDefinitionCommands(role.command("definition").description("built-in and custom role definitions"));
  registerAssignmentCommands(role.command("assignment").description("who holds which role at which scope"));
}

function registerDefinitionCommands(definition: Command): void {
  registerDefinitionListCommand(definition);
  registerDefinitionShowCommand(definition);
  registerDefinitionCreateCommand(definition);
  registerDefinitionDeleteCommand(definition);
}

function registerDefinitionListCommand(definition: Command): void {
  definition
    .command("list")
    .description("list role definitions (the nine built-in Managed HSM roles and custom ones)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--json", "print JSON")
    .action(async (opts: { runDir?: string; json?: boolean }) => {
      await withPool(resolveRunDir(opts.runDir), async (client) => {
        const defs = await client.listRoleDefinitions();
        out(opts.json ? JSON.stringify(defs, null, 2) : defs.map(definitionLine).join("\n"));
      });
    });
}

function registerDefinitionShowCommand(definition: Command): void {
  definition
    .command("show")
    .description("print one role definition as JSON")
    .argument("<role>", "role name or id")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (nameOrId: string, opts: { runDir?: string }) => {
      await withPool(resolveRunDir(opts.runDir), async (client) => {
        out(JSON.stringify(findRole(await client.listRoleDefinitions(), nameOrId), null, 2));
      });
    });
}

function registerDefinitionCreateCommand(definition: Command): void {
  definition
    .command("create")
    .description("create (or update) a custom role from --file or from flags")
    .option(
      "--file <json>",
      "a role definition: { roleName, description, permissions: [{ dataActions, notDataActions }] }",
    )
    .option("--role-name <name>", "role name (with --data-actions)")
    .option("--description <text>", "description", "")
    .option("--data-actions <list>", "comma-separated data actions (Microsoft.KeyVault/managedHsm/...)")
    .option("--not-data-actions <list>", "comma-separated data actions to subtract")
    .option("--id <guid>", "role definition id (default: a new GUID)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (opts: {
        file?: string;
        roleName?: string;
        description: string;
        dataActions?: string;
        notDataActions?: string;
        id?: string;
        runDir?: string;
      }) => {
        let body: Partial<RoleDefinition>;
        if (opts.file !== undefined) {
          const text = await readFile(opts.file, "utf8").catch(() =>
            fail("NotFound", `cannot read ${opts.file}`),
          );
          try {
            body = JSON.parse(text) as Partial<RoleDefinition>;
          } catch {
            return fail("BadParameter", `${opts.file} is not JSON`);
          }
        } else {
          if (opts.roleName === undefined || opts.dataActions === undefined) {
            fail("BadParameter", "give --file, or --role-name with --data-actions");
          }
          body = {
            roleName: opts.roleName,
            description: opts.description,
            permissions: [
              {
                actions: [],
                notActions: [],
                dataActions: list(opts.dataActions),
                notDataActions: list(opts.notDataActions),
              },
            ],
          };
        }
        const def: RoleDefinition = {
          id: opts.id ?? body.id ?? randomUUID(),
          roleName: body.roleName ?? "",
          description: body.description ?? "",
          roleType: "CustomRole",
          assignableScopes: body.assignableScopes ?? ["/"],
          permissions: (body.permissions ?? []).map((p) => ({
            actions: p.actions ?? [],
            notActions: p.notActions ?? [],
            dataActions: p.dataActions ?? [],
            notDataActions: p.notDataActions ?? [],
          })),
        };
        await withPool(resolveRunDir(opts.runDir), async (client) => {
          const created = await client.putRoleDefinition(def);
          out(`role ${created.roleName} (${created.id}) saved`);
        });
      },
    );
}

function registerDefinitionDeleteCommand(definition: Command): void {
  definition
    .command("delete")
    .description("delete a custom role definition (not while it is assigned)")
    .argument("<role>", "role name or id")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (nameOrId: string, opts: { runDir?: string }) => {
      await withPool(resolveRunDir(opts.runDir), async (client) => {
        const role = findRole(await client.listRoleDefinitions(), nameOrId);
        await client.deleteRoleDefinition(role.id);
        out(`role ${role.roleName} (${role.id}) deleted`);
      });
    });
}

function registerAssignmentCommands(assignment: Command): void {
  registerAssignmentCreateCommand(assignment);
  registerAssignmentDeleteCommand(assignment);
  registerAssignmentListCommand(assignment);
}

function registerAssignmentCreateCommand(assignment: Command): void {
  assignment
    .command("create")
    .description("give a principal a role at a scope (/, /keys or /keys/<name>)")
    .requiredOption("--role <role>", 'role name or id, e.g. "Managed HSM Crypto User"')
    .requiredOption("--assignee <principal>", "principal name in the tenant directory, or object id")
    .option("--scope <scope>", "/, /keys or /keys/<name>", "/")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { role: string; assignee: string; scope: string; runDir?: string }) => {
      const scope = normalizeScope(opts.scope, "--scope");
      const principalId = await principalIdOf(opts.assignee);
      await withPool(resolveRunDir(opts.runDir), async (client) => {
        const role = findRole(await client.listRoleDefinitions(), opts.role);
        const a = await client.putRoleAssignment({
          id: randomUUID(),
          scope,
          roleDefinitionId: role.id,
          principalId,
        });
        out(`${opts.assignee} holds ${role.roleName} at ${a.scope} (assignment ${a.id})`);
      });
    });
}

function registerAssignmentDeleteCommand(assignment: Command): void {
  assignment
    .command("delete")
    .description("remove a role assignment, by --id or by --role/--assignee/--scope")
    .option("--id <guid>", "assignment id")
    .option("--role <role>", "role name or id")
    .option("--assignee <principal>", "principal name in the tenant directory, or object id")
    .option("--scope <scope>", "/, /keys or /keys/<name>", "/")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (opts: { id?: string; role?: string; assignee?: string; scope: string; runDir?: string }) => {
        await withPool(resolveRunDir(opts.runDir), async (client) => {
          let id = opts.id;
          if (id === undefined) {
            if (opts.role === undefined || opts.assignee === undefined) {
              fail("BadParameter", "give --id, or --role with --assignee (and --scope)");
            }
            const scope = normalizeScope(opts.scope, "--scope");
            const principalId = await principalIdOf(opts.assignee);
            const role = findRole(await client.listRoleDefinitions(), opts.role);
            const match = (await client.listRoleAssignments(scope)).find(
              (a) => a.principalId === principalId && a.roleDefinitionId === role.id && a.scope === scope,
            );
            if (!match) fail("NotFound", `${opts.assignee} holds no ${role.roleName} assignment at ${scope}`);
            id = match.id;
          }
          await client.deleteRoleAssignment(id);
          out(`role assignment ${id} deleted`);
        });
      },
    );
}

function registerAssignmentListCommand(assignment: Command): void {
  assignment
    .command("list")
    .description("list role assignments (all, or those at, above or below --scope)")
    .option("--scope <scope>", "/, /keys or /keys/<name>")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--json", "print JSON")
    .action(async (opts: { scope?: string; runDir?: string; json?: boolean }) => {
      const scope = opts.scope === undefined ? "" : normalizeScope(opts.scope, "--scope");
      await withPool(resolveRunDir(opts.runDir), async (client) => {
        const assignments = await client.listRoleAssignments(scope);
        out(
          opts.json
            ? JSON.stringify(assignments, null, 2)
            : (await assignmentLines(client, assignments)).join("\n"),
        );
      });
    });
}
