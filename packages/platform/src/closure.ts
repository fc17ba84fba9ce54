/**
 * The runtime closure of an enclave bundle: every file outside the bundle that the
 * process running it can load. A real enclave measures every page it is given; here the
 * "enclave" is a Node process, so its code is the bundle plus the packages it imports.
 * Format and rules: docs/enclave-measurement.md.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, sep } from "node:path";
import { fail } from "@hsmpool/errors";
import { type RuntimeClosure, SIGSTRUCT_FILE } from "./types.js";

/** A file to measure: its machine-independent manifest path and where it is on this machine. */
export interface ClosureFile {
  path: string;
  absPath: string;
}

/**
 * Files Node cannot load (TypeScript: Node 20 does not strip types, and newer Nodes refuse to
 * under node_modules; source maps and docs are never executed; PEM files are dependencies'
 * test fixtures, left out of the docker images; .tsbuildinfo is the compiler's cache). Everything
 * else in a package is measured.
 */
const NOT_LOADABLE = /\.(?:[cm]?ts|map|md|markdown|pem|tsbuildinfo)$/i;

/** Walks `dir` (relative `rel`), skipping nested node_modules (each is its own package). */
export function listRegularFiles(
  root: string,
  rel: string,
  out: string[],
  keep: (name: string) => boolean = () => true,
  skipNodeModules = false,
): void {
  for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
    const relPath = rel === "" ? entry.name : `${rel}/${entry.name}`;
    if (relPath.includes("\n")) {
      fail("BadParameter", `file name ${JSON.stringify(relPath)} contains a newline`, { path: relPath });
    }
    if (entry.isDirectory()) {
      if (!(skipNodeModules && entry.name === "node_modules"))
        listRegularFiles(root, relPath, out, keep, skipNodeModules);
    } else if (entry.isFile()) {
      if (keep(entry.name)) out.push(relPath);
    } else {
      // A symlink could point anywhere, so what is measured would not be what runs.
      fail(
        "BadParameter",
        `${join(root, relPath)} is not a regular file or directory (symlinks are refused)`,
        {
          path: join(root, relPath),
        },
      );
    }
  }
}

interface PackageManifest {
  name: string;
  version: string;
  /** Names Node may resolve from this package: dependencies, optional and peer dependencies. */
  required: string[];
  optional: string[];
}

function readManifest(dir: string): PackageManifest {
  const path = join(dir, "package.json");
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    return fail("BadParameter", `runtime package ${path} is unreadable: ${(e as Error).message}`, { path });
  }
  const names = (field: string): string[] =>
    json[field] && typeof json[field] === "object" ? Object.keys(json[field] as object) : [];
  if (typeof json.name !== "string" || typeof json.version !== "string") {
    fail("BadParameter", `runtime package ${path} has no name or version`, { path });
  }
  return {
    name: json.name as string,
    version: json.version as string,
    required: names("dependencies"),
    optional: [...names("optionalDependencies"), ...names("peerDependencies")],
  };
}

/**
 * What CommonJS tries before a package directory of the same name: `node_modules/x.js` is loaded for
 * `require("x")` even when `node_modules/x/` exists beside it.
 */
const SHADOWING_FILES = [".js", ".json", ".node", ".cjs", ".mjs"];

/**
 * The package directory `name` resolves to from `fromDir` as Node finds it: the first
 * `node_modules/<name>` upwards (ESM stops at the first such directory, package.json or not).
 * Anything there that Node would load instead of a measured package (a file of that name, a
 * directory without package.json, whose index.js Node would load) refuses the measurement.
 */
function resolvePackage(
  name: string,
  fromDir: string,
  entries: (dir: string) => Set<string>,
): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    const refuse = (why: string): never =>
      fail("BadParameter", `${candidate} ${why}, so what Node loads for ${name} would not be measured`, {
        path: candidate,
      });
    // One listing of each node_modules (scope) directory answers every lookup in it.
    const here = entries(dirname(candidate));
    const base = basename(candidate);
    for (const ext of SHADOWING_FILES) if (here.has(base + ext)) refuse(`has a ${ext} file beside it`);
    const st = here.has(base) ? statSync(candidate, { throwIfNoEntry: false }) : undefined;
    if (st) {
      if (!st.isDirectory()) refuse("is a file");
      // CommonJS skips node_modules/node_modules, ESM does not: the two would load different code.
      if (basename(dir) === "node_modules") refuse("sits in a nested node_modules/node_modules");
      if (!statSync(join(candidate, "package.json"), { throwIfNoEntry: false }))
        refuse("has no package.json");
      return realpathSync(candidate);
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Directory listings (names), read once per measurement; an absent directory lists nothing. */
function listingCache(): (dir: string) => Set<string> {
  const seen = new Map<string, Set<string>>();
  return (dir) => {
    let names = seen.get(dir);
    if (names === undefined) {
      try {
        names = new Set(readdirSync(dir));
      } catch {
        names = new Set();
      }
      seen.set(dir, names);
    }
    return names;
  };
}

/** A package outside any node_modules is a local (workspace) package: its runtime is package.json + dist/. */
function isLocal(realDir: string): boolean {
  return !realDir.split(sep).includes("node_modules");
}

function packageFiles(realDir: string, prefix: string): ClosureFile[] {
  const rels: string[] = [];
  const keep = (name: string) => !NOT_LOADABLE.test(name);
  if (isLocal(realDir)) {
    rels.push("package.json");
    if (lstatSync(join(realDir, "dist"), { throwIfNoEntry: false })?.isDirectory()) {
      // A signed bundle's own SIGSTRUCT is data the platform reads, and it cannot cover itself.
      listRegularFiles(realDir, "dist", rels, (name) => keep(name) && name !== SIGSTRUCT_FILE, true);
    }
  } else {
    listRegularFiles(realDir, "", rels, keep, true);
  }
  return rels.map((rel) => ({ path: `${prefix}/${rel}`, absPath: join(realDir, rel) }));
}

/**
 * Every file of the runtime closure, with its manifest path: `pkg/<name>@<version>/<file>` for the
 * runtime package and each package reachable from it through dependencies (resolved from the
 * dependent's real directory, so hoisting does not matter), `data/<name>/<file>` for data dirs.
 */
export function runtimeClosureFiles(runtime: RuntimeClosure): ClosureFile[] {
  const root = realpathSync(runtime.packageDir);
  const queue = [root];
  const seen = new Set(queue);
  const files: ClosureFile[] = [];
  const entries = listingCache();
  while (queue.length > 0) {
    const dir = queue.shift() as string;
    const manifest = readManifest(dir);
    files.push(...packageFiles(dir, `pkg/${manifest.name}@${manifest.version}`));
    for (const [names, required] of [
      [manifest.required, true],
      [manifest.optional, false],
    ] as const) {
      for (const name of names) {
        const found = resolvePackage(name, dir, entries);
        if (found === undefined) {
          if (required) {
            fail("BadParameter", `${name}, a dependency of ${manifest.name}, is not installed`, {
              package: manifest.name,
              dependency: name,
            });
          }
          continue;
        }
        if (!seen.has(found)) {
          seen.add(found);
          queue.push(found);
        }
      }
    }
  }
  for (const [name, dir] of Object.entries(runtime.dataDirs ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const rels: string[] = [];
    listRegularFiles(dir, "", rels);
    files.push(...rels.map((rel) => ({ path: `data/${name}/${rel}`, absPath: join(dir, rel) })));
  }
  return files;
}
