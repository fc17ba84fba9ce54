#!/usr/bin/env node
import { spawnSync } from "node:child_process";
// `npm run docker:build`: the container images, built offline (nothing is ever pulled).
//
//  1. Engine: scripts/docker-engine.mjs (installs Debian's docker.io and starts dockerd when needed; idempotent).
//  2. hsmpool-base:<node sha256/12> (+ :latest): made with `docker import` from a root filesystem holding this
//     machine's node binary, the libraries `ldd` lists for it, CA certificates, /etc/passwd, a world-writable /tmp
//     and tini as entrypoint. Labelled with the node binary's hash and rebuilt only when node changes. It has no
//     shell, so the Dockerfiles use exec-form instructions only.
//  3. The app context (.hsmpool/docker/context): the root package.json, proto/, every workspace package's
//     package.json + dist/ (+ bin/), and only the production dependencies they reach (no compilers or test tools).
//  4. hsmpool-node:latest and hsmpool-hfc:latest from deploy/node.Dockerfile and deploy/hfc.Dockerfile on top of
//     the base (legacy builder: it never pulls an image that is present locally).
//
// Usage: node scripts/docker-build.mjs [--quiet]   (run `npm run build` first: the images copy the built dist/)
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { aptInstall, dockerCli, ensureEngine } from "./docker-engine.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const work = join(repo, ".hsmpool", "docker");
export const BASE_IMAGE = "hsmpool-base";
export const NODE_IMAGE = "hsmpool-node:latest";
export const HFC_IMAGE = "hsmpool-hfc:latest";
const NODE_HASH_LABEL = "org.hsmpool.node-sha256";
const quiet = process.argv.includes("--quiet");
const say = (line) => {
  if (!quiet) process.stderr.write(`docker-build: ${line}\n`);
};

function docker(args, { input, capture = false } = {}) {
  const r = spawnSync(dockerCli(), args, {
    encoding: "utf8",
    input,
    stdio: [input === undefined ? "ignore" : "pipe", capture || quiet ? "pipe" : "inherit", "pipe"],
    env: { ...process.env, DOCKER_BUILDKIT: "0" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(
      `docker ${args.slice(0, 2).join(" ")} failed: ${(r.stderr ?? "").trim().split("\n").at(-1)}`,
    );
  }
  return (r.stdout ?? "").trim();
}

async function sha256File(path) {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest("hex");
}

function imageLabel(image, label) {
  const r = spawnSync(
    dockerCli(),
    ["image", "inspect", "--format", `{{index .Config.Labels "${label}"}}`, image],
    {
      encoding: "utf8",
    },
  );
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The shared libraries the dynamic loader maps for `binary`, as absolute paths (the loader included). */
function sharedLibraries(binary) {
  const r = spawnSync("ldd", [binary], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ldd ${binary} failed: ${r.stderr.trim()}`);
  const libs = [];
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** Copies `src` to `root` + `dest` (the file the path resolves to, under the path asked for). */
function place(root, src, dest = src) {
  const target = join(root, dest);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(realpathSync(src), target);
  return target;
}

async function buildBaseImage() {
  const nodeBinary = realpathSync(process.execPath);
  const nodeHash = await sha256File(nodeBinary);
  const tag = `${BASE_IMAGE}:${nodeHash.slice(0, 12)}`;
  if (imageLabel(tag, NODE_HASH_LABEL) === nodeHash) {
    docker(["tag", tag, `${BASE_IMAGE}:latest`]);
    say(`base image ${tag} is current (node ${process.version})`);
    return;
  }
  const findTini = () => ["/usr/bin/tini-static", "/usr/bin/tini"].find((p) => existsSync(p));
  if (!findTini()) {
    const why = aptInstall(["tini"], (line) => say(line));
    if (why) throw new Error(`tini (the images' init) is missing: ${why}`);
  }
  const tini = findTini();
  if (!tini) throw new Error("tini is missing after installing Debian's tini package");
  say(`making base image ${tag} from ${nodeBinary} (node ${process.version})`);
  const root = join(work, "rootfs");
  rmSync(root, { recursive: true, force: true });
  chmodSync(place(root, nodeBinary, "/usr/local/bin/node"), 0o755);
  for (const lib of sharedLibraries(nodeBinary)) place(root, lib);
  chmodSync(place(root, tini, "/sbin/tini"), 0o755);
  place(root, "/etc/ssl/certs/ca-certificates.crt");
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(
    join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
  );
  writeFileSync(join(root, "etc/group"), "root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n");
  writeFileSync(join(root, "etc/nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
  for (const dir of ["tmp", "root", "home/node", "app"]) mkdirSync(join(root, dir), { recursive: true });
  chmodSync(join(root, "tmp"), 0o1777);
  const tarball = join(work, "base-rootfs.tar");
  const tar = spawnSync(
    "tar",
    ["-C", root, "--numeric-owner", "--owner=0", "--group=0", "-cf", tarball, "."],
    {
      encoding: "utf8",
    },
  );
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr.trim()}`);
  docker(
    [
      "import",
      "--change",
      'ENTRYPOINT ["/sbin/tini", "--"]',
      "--change",
      "ENV PATH=/usr/local/bin:/usr/bin:/bin",
      "--change",
      `LABEL ${NODE_HASH_LABEL}=${nodeHash} org.hsmpool.node-version=${process.version}`,
      tarball,
      tag,
    ],
    { capture: true },
  );
  docker(["tag", tag, `${BASE_IMAGE}:latest`]);
  rmSync(root, { recursive: true, force: true });
  rmSync(tarball, { force: true });
}

/** Resolves `name` from `fromDir` the way Node does (nearest node_modules upwards); undefined when absent. */
function resolvePackageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === repo || dirname(dir) === dir) return undefined;
  }
}

/** Every installed package directory the workspace packages reach through `dependencies`/`optionalDependencies`. */
function productionPackages(workspaceDirs) {
  const seen = new Set();
  const queue = [...workspaceDirs];
  while (queue.length > 0) {
    const dir = queue.pop();
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const deps = { ...manifest.optionalDependencies, ...manifest.dependencies };
    for (const name of Object.keys(deps)) {
      const found = resolvePackageDir(name, dir);
      if (!found) {
        if (manifest.optionalDependencies?.[name] !== undefined) continue;
        throw new Error(
          `${name} (needed by ${relative(repo, dir) || "the root"}) is not installed: run npm ci`,
        );
      }
      if (seen.has(found)) continue;
      seen.add(found);
      // Workspace packages are symlinks to packages/<name>: their own files are copied separately.
      if (realpathSync(found).startsWith(join(repo, "packages"))) continue;
      queue.push(realpathSync(found));
    }
  }
  return [...seen];
}

function stageContext() {
  const rootManifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
  const workspaces = rootManifest.workspaces.map((w) => join(repo, w));
  for (const ws of workspaces) {
    if (!existsSync(join(ws, "dist")))
      throw new Error(`${relative(repo, ws)}/dist is missing: run npm run build first`);
  }
  if (!existsSync(join(repo, "packages/node/dist/sigstruct.bin"))) {
    throw new Error("packages/node/dist is not signed: run npm run build first");
  }
  const app = join(work, "context", "app");
  rmSync(join(work, "context"), { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  const slim = { name: rootManifest.name, version: rootManifest.version, private: true, type: "module" };
  writeFileSync(join(app, "package.json"), `${JSON.stringify(slim, null, 2)}\n`);
  cpSync(join(repo, "proto"), join(app, "proto"), { recursive: true });
  cpSync(join(repo, "deploy", "entry"), join(app, "deploy", "entry"), { recursive: true });
  for (const ws of workspaces) {
    const rel = relative(repo, ws);
    for (const part of ["package.json", "dist", "bin"]) {
      if (existsSync(join(ws, part))) cpSync(join(ws, part), join(app, rel, part), { recursive: true });
    }
  }
  let count = 0;
  for (const dir of productionPackages(workspaces)) {
    const rel = relative(repo, dir);
    const real = realpathSync(dir);
    mkdirSync(dirname(join(app, rel)), { recursive: true });
    if (real.startsWith(join(repo, "packages"))) {
      symlinkSync(relative(dirname(dir), real), join(app, rel));
    } else {
      // No source maps, and no PEM files (test fixtures of dependencies): an image holds no key of any kind.
      cpSync(dir, join(app, rel), { recursive: true, filter: (src) => !/\.(map|pem)$/.test(src) });
      count++;
    }
  }
  say(`app context staged: ${workspaces.length} workspace packages, ${count} production dependencies`);
  return join(work, "context");
}

function buildAppImage(dockerfile, image, context) {
  say(`building ${image} (${relative(repo, dockerfile)})`);
  docker(["build", "--pull=false", "-f", dockerfile, "-t", image, context], { capture: quiet });
}

async function main() {
  mkdirSync(work, { recursive: true });
  const engine = await ensureEngine({ say });
  if (!engine.ok) {
    process.stderr.write(`docker-build: no Docker engine: ${engine.reason}\n`);
    process.exit(3);
  }
  await buildBaseImage();
  const context = stageContext();
  buildAppImage(join(repo, "deploy", "node.Dockerfile"), NODE_IMAGE, context);
  buildAppImage(join(repo, "deploy", "hfc.Dockerfile"), HFC_IMAGE, context);
  say(`done: ${NODE_IMAGE}, ${HFC_IMAGE} (docker-compose -f deploy/docker-compose.yml up -d)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await main();
  } catch (e) {
    process.stderr.write(`docker-build: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
