/**
 * The packages as users get them (docs/packaging.md): tools/release.ts lays out
 * this host's platform package, the main npm package and the JSR package from
 * the library already built in zig-out/lib; `npm pack` packs them; the
 * tarballs are installed offline into a fresh project in the temp folder,
 * which then runs a program under Bun and under Deno (npm: specifier with a
 * node_modules folder), and from a JSR registry served on 127.0.0.1.
 *
 * @module
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { libraryFileName, libraryInfo, runtime } from "../mod.ts";
import { hostTargets, sha256File } from "../src/ffi/library.ts";
import { checkVersions } from "../tools/release.ts";
import { checkExports, readExports } from "../tools/exports.ts";
import { serveRegistry } from "./children/package_registry.ts";
import { symbols } from "../src/ffi/symbols.ts";
import { removeDir, tempDir } from "./helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: "bun" | "deno") => path.join(root, "node_modules", ".bin", name);
const hostLib = path.join(root, "zig-out", "lib", libraryFileName());
const host = hostTargets({ os: process.platform, arch: process.arch })[0];
const version = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version as string;
const appSource = path.join(root, "test", "children", "package_app.ts");

/** The environment of every child: no TURBOMDBX_LIB (the package must find its own library), caches inside `work`. */
function childEnv(work: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "TURBOMDBX_LIB") env[k] = v;
  return {
    ...env,
    npm_config_cache: process.env.npm_config_cache ?? path.join(root, ".tools", "npm-cache"),
    npm_config_update_notifier: "false",
    DENO_DIR: path.join(work, "deno-dir"),
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
    ...extra,
  };
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout: 180_000 });
  if (r.error) throw r.error;
  return { status: r.status, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

/** The RESULT line a package_app run printed. */
function result(out: string): Record<string, unknown> & { info?: Record<string, unknown>; error?: string } {
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  assert.ok(line, `the program printed no RESULT line:\n${out}`);
  return JSON.parse(line.slice("RESULT ".length));
}

interface Installed {
  work: string;
  dist: string;
  /** The project the tarballs were installed into. */
  app: string;
  tarballs: string[];
}

let installed: Installed | undefined;

/** Once per test process: release layout, npm pack, offline install into a fresh project. */
function install(): Installed {
  if (installed) return installed;
  assert.ok(host, `no prebuilt target fits ${process.platform}-${process.arch}`);
  assert.ok(fs.existsSync(hostLib), `${hostLib} is missing: ./run build first`);
  const work = tempDir("turbomdbx-package-");
  const dist = path.join(work, "dist");
  const env = childEnv(work);
  const r = run(
    bin("bun"),
    [path.join(root, "tools", "release.ts"), "--libs", "host", "--out", dist, "--pack"],
    root,
    env,
  );
  assert.equal(r.status, 0, r.out);
  const tarballs = fs.readdirSync(path.join(dist, "tarballs")).sort();
  const app = path.join(work, "app");
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  // the tarballs are copied into the project: nothing it installs points back at the checkout
  for (const t of tarballs) fs.copyFileSync(path.join(dist, "tarballs", t), path.join(app, t));
  const npm = run(
    "npm",
    ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", ...tarballs.map((t) => `./${t}`)],
    app,
    env,
  );
  assert.equal(npm.status, 0, npm.out);
  fs.copyFileSync(appSource, path.join(app, "package_app.ts"));
  installed = { work, dist, app, tarballs };
  process.on("exit", () => removeDir(work));
  return installed;
}

/** A copy of the installed project (to damage without touching the shared one). */
function copyApp(name: string): string {
  const { work, app } = install();
  const copy = path.join(work, name);
  fs.rmSync(copy, { recursive: true, force: true });
  fs.cpSync(app, copy, { recursive: true });
  return copy;
}

/** Writes the project's entry, which imports turbomdbx statically from `specifier`, and runs it. */
function runApp(
  app: string,
  which: "bun" | "deno",
  specifier: string,
  env: Record<string, string>,
  flags: string[] = [],
  execute = true,
) {
  const entry = `entry_${which}.ts`;
  fs.writeFileSync(
    path.join(app, entry),
    `import * as turbomdbx from ${JSON.stringify(specifier)};\nimport { main } from "./package_app.ts";\n` +
      `await main(turbomdbx, ${JSON.stringify(path.join(app, `db-${which}`))});\n`,
  );
  if (!execute) return { status: 0, out: "" };
  const args = which === "bun" ? [entry] : ["run", ...flags, entry];
  return run(bin(which), args, app, env);
}

/** The Deno permissions README gives for the packages: FFI, and reading the library to check it. */
const DENO_NPM_FLAGS = ["--allow-ffi", "--allow-read"];

/** Runs the project's program under the runtime running this test, importing turbomdbx as its users do. */
function runHere(app: string) {
  const specifier = runtime === "bun" ? "turbomdbx" : "npm:turbomdbx";
  return runApp(app, runtime, specifier, childEnv(install().work), DENO_NPM_FLAGS);
}

function assertWorked(r: { status: number | null; out: string }, which: string, app: string) {
  assert.equal(r.status, 0, r.out);
  const res = result(r.out);
  assert.equal(res.error, undefined, `${which}: ${res.error}`);
  assert.equal(res.first, '{"i":7}');
  assert.deepEqual(res.batch, ['{"i":1}', '{"i":2}', undefined].map((x) => x ?? null));
  assert.equal(res.again, '{"i":7}');
  assert.ok((res.hits as number) >= 1, `the second read is a cache hit: ${JSON.stringify(res)}`);
  assert.equal(res.counter, 20, "20 concurrent increments, none lost");
  const info = res.info!;
  assert.equal(info.from, `the ${host!.packageName} package`);
  assert.equal(info.verified, true);
  assert.equal(info.platform, host!.name);
  assert.equal(info.sha256, sha256File(hostLib));
  assert.equal(info.distribution, "npm");
  assert.equal(info.version, version);
  assert.equal(info.mdbxVersion, "0.14.3");
  assert.equal(info.patchLevel, "turbomdbx-4");
  assert.ok(
    (info.path as string).startsWith(path.join(app, "node_modules", ...host!.packageName.split("/"))),
    `loaded from the installed package: ${info.path}`,
  );
  return info;
}

test("npm pack: the platform package holds the library with os/cpu/libc; the main package pins it as optional", () => {
  const { dist, tarballs, app } = install();
  const pkgFile = `${host!.packageName.slice(1).replace("/", "-")}-${version}.tgz`;
  assert.deepEqual(tarballs, [pkgFile, `turbomdbx-${version}.tgz`].sort());
  const platform = JSON.parse(
    fs.readFileSync(path.join(app, "node_modules", ...host!.packageName.split("/"), "package.json"), "utf8"),
  );
  assert.deepEqual([platform.os, platform.cpu], [[host!.os], [host!.cpu]]);
  if (host!.libc) assert.deepEqual(platform.libc, [host!.libc]);
  const main = JSON.parse(fs.readFileSync(path.join(app, "node_modules", "turbomdbx", "package.json"), "utf8"));
  assert.equal(main.version, version);
  assert.equal(main.optionalDependencies[host!.packageName], version);
  assert.equal(Object.keys(main.optionalDependencies).length, 7, "every platform is an optional dependency");
  // the main package ships JavaScript for the runtimes (Deno runs no TypeScript from node_modules), no tests or build
  const files = spawnSync("tar", ["tzf", path.join(dist, "tarballs", `turbomdbx-${version}.tgz`)], { encoding: "utf8" })
    .stdout.split("\n").filter(Boolean);
  for (
    const f of [
      "package/mod.js",
      "package/src/ffi/library.js",
      "package/src/ffi/prebuilt.js",
      "package/tools/turbomdbx.js",
    ]
  ) {
    assert.ok(files.includes(f), `${f} in ${files.join(" ")}`);
  }
  assert.ok(!files.some((f) => /^package\/(test|bench|native|zig-out)\//.test(f)), files.join(" "));
  // the recorded hash is the library's, and the library's exports are the FFI table's
  const prebuilt = fs.readFileSync(path.join(app, "node_modules", "turbomdbx", "src", "ffi", "prebuilt.js"), "utf8");
  assert.ok(prebuilt.includes(sha256File(hostLib)), prebuilt);
}, { timeout: 180_000 });

test("the installed npm package runs under Bun: open, write, cached reads, concurrent transactions", () => {
  const { app, work } = install();
  assertWorked(runApp(app, "bun", "turbomdbx", childEnv(work)), "bun", app);
}, { timeout: 180_000 });

test("a bundle made with bun build finds the platform package at run time", () => {
  const { app, work } = install();
  const env = childEnv(work);
  runApp(app, "bun", "turbomdbx", env, [], false); // writes entry_bun.ts
  const b = run(bin("bun"), ["build", "entry_bun.ts", "--target=bun", "--outfile", "out/bundle.js"], app, env);
  assert.equal(b.status, 0, b.out);
  assertWorked(run(bin("bun"), [path.join("out", "bundle.js")], app, env), "bundle", app);
}, { timeout: 180_000 });

test("the installed npm package runs under Deno with an npm: specifier and a node_modules folder", () => {
  const { app, work } = install();
  assertWorked(runApp(app, "deno", "npm:turbomdbx", childEnv(work), DENO_NPM_FLAGS), "deno", app);
}, { timeout: 180_000 });

test("a tampered library in the platform package is refused before it is loaded, with MDBX_EBADSIGN", () => {
  const app = copyApp("tampered");
  const lib = path.join(app, "node_modules", ...host!.packageName.split("/"), host!.file);
  const bytes = fs.readFileSync(lib);
  bytes[bytes.length - 100] ^= 0xff; // one byte of the tail, the library still loads if nobody checks
  fs.writeFileSync(lib, bytes);
  const r = runHere(app);
  const res = result(r.out);
  assert.equal(res.name, "MdbxError", r.out);
  assert.equal(res.codeName, "MDBX_EBADSIGN");
  assert.match(
    res.error!,
    new RegExp(`refusing to load ${lib.replaceAll(".", "\\.")} \\(the ${host!.packageName} package\\)`),
  );
  assert.ok(res.error!.includes(sha256File(hostLib)), "names the recorded SHA-256");
  assert.ok(res.error!.includes(sha256File(lib)), "names the file's SHA-256");
  assert.match(res.error!, new RegExp(`reinstall ${host!.packageName}@${version.replaceAll(".", "\\.")}`));
}, { timeout: 180_000 });

test("a missing platform package fails with what was tried and what to install", () => {
  const app = copyApp("missing");
  fs.rmSync(path.join(app, "node_modules", "@turbomdbx"), { recursive: true });
  const r = runHere(app);
  const res = result(r.out);
  assert.match(res.error!, /could not load the turbomdbx shared library/);
  assert.match(res.error!, new RegExp(`Tried:\\n\\s+the ${host!.packageName} package: not installed`));
  assert.ok(res.error!.includes(`npm install ${host!.packageName}@${version}`), r.out);
  assert.ok(res.error!.includes(`bun add ${host!.packageName}@${version}`), r.out);
}, { timeout: 180_000 });

// The binary is built with Bun either way: once per suite run (under bun test) is enough.
test("bun build --compile of the CLI from the installed package embeds and verifies the library", () => {
  const { app, work } = install();
  const env = childEnv(work);
  // the package's bin, as `bunx turbomdbx` runs it: the installed package's library, verified
  const viaBin = run(bin("bun"), [path.join("node_modules", ".bin", "turbomdbx"), "library"], app, env);
  assert.equal(viaBin.status, 0, viaBin.out);
  assert.match(viaBin.out, new RegExp(`from\\s+the ${host!.packageName} package`));
  assert.match(viaBin.out, /verified\s+yes/);
  const r = run(
    bin("bun"),
    [path.join("node_modules", "turbomdbx", "tools", "build.js"), "--outfile", "cli"],
    app,
    env,
  );
  assert.equal(r.status, 0, r.out);
  // the binary runs from elsewhere, with no node_modules around it
  const away = path.join(work, "away");
  fs.mkdirSync(away, { recursive: true });
  fs.renameSync(path.join(app, "cli"), path.join(away, "cli"));
  const made = runApp(app, "bun", "turbomdbx", env); // a database to look into
  assert.equal(made.status, 0, made.out);
  const stat = run(path.join(away, "cli"), ["tables", path.join(app, "db-bun")], away, env);
  assert.equal(stat.status, 0, stat.out);
  assert.match(stat.out, /objects\s+100\s/);
  const info = run(path.join(away, "cli"), ["library"], away, env);
  assert.equal(info.status, 0, info.out);
  assert.match(info.out, /verified\s+yes/);
  assert.match(info.out, new RegExp(`sha256\\s+${sha256File(hostLib)}`));
}, { ignore: runtime !== "bun", timeout: 180_000 });

// The importer is Deno either way: once per suite run (under deno test) is enough.
test(
  "jsr:@turbomdbx/turbomdbx from a JSR registry on 127.0.0.1: Deno fetches the platform package and verifies it",
  async () => {
    const { work, dist } = install();
    const registry = await serveRegistry(dist);
    try {
      const app = path.join(work, "jsr-app");
      fs.mkdirSync(app, { recursive: true });
      fs.copyFileSync(appSource, path.join(app, "package_app.ts"));
      const entry = path.join(app, "entry.ts");
      fs.writeFileSync(
        entry,
        `import * as turbomdbx from "jsr:@turbomdbx/turbomdbx";\nimport { main } from "./package_app.ts";\n` +
          `await main(turbomdbx, ${JSON.stringify(path.join(app, "db"))});\n`,
      );
      const denoDir = path.join(work, "jsr-deno-dir"); // a fresh cache: everything comes from the registries
      const env = childEnv(work, { DENO_DIR: denoDir, JSR_URL: registry.jsrUrl, NPM_CONFIG_REGISTRY: registry.npmUrl });
      // the server answers in this process: the children run asynchronously
      const deno = (args: string[]) =>
        new Promise<{ status: number | null; out: string }>((resolve, reject) => {
          const c = spawn(bin("deno"), args, { cwd: app, env });
          let out = "";
          c.stdout.on("data", (d) => out += d);
          c.stderr.on("data", (d) => out += d);
          c.on("error", reject);
          c.on("close", (status) => resolve({ status, out }));
        });
      const r = await deno(["run", ...DENO_NPM_FLAGS, entry]);
      assert.equal(r.status, 0, r.out);
      const res = result(r.out);
      assert.equal(res.error, undefined, String(res.error));
      assert.equal(res.counter, 20);
      assert.equal(res.again, '{"i":7}');
      const info = res.info!;
      assert.equal(info.distribution, "jsr");
      assert.equal(info.verified, true);
      assert.equal(info.from, `the ${host!.packageName} package`);
      assert.ok((info.path as string).startsWith(path.join(denoDir, "npm")), `in Deno's npm cache: ${info.path}`);
      // what Deno fetched: the JSR package (meta, version manifest, files) and only this platform's tarball
      assert.ok(registry.requests.includes("/jsr/@turbomdbx/turbomdbx/meta.json"), registry.requests.join(" "));
      assert.ok(registry.requests.includes(`/jsr/@turbomdbx/turbomdbx/${version}_meta.json`));
      assert.ok(registry.requests.includes(`/jsr/@turbomdbx/turbomdbx/${version}/src/ffi/library.ts`));
      const tgz = registry.requests.filter((u) => u.endsWith(".tgz"));
      assert.deepEqual(tgz, [`/npm/-/${host!.packageName.slice(1).replace("/", "-")}-${version}.tgz`]);
      // the package's CLI export, run straight from the registry
      const cli = await deno(["run", ...DENO_NPM_FLAGS, "jsr:@turbomdbx/turbomdbx/cli", "library"]);
      assert.equal(cli.status, 0, cli.out);
      assert.match(cli.out, /verified\s+yes/);
      assert.match(cli.out, new RegExp(`turbomdbx\\s+${version.replaceAll(".", "\\.")} \\(jsr, deno\\)`));
      // the copy in Deno's cache is checked on every load, not only when it was downloaded
      const cached = info.path as string;
      const bytes = fs.readFileSync(cached);
      bytes[bytes.length - 100] ^= 0xff;
      fs.writeFileSync(cached, bytes);
      const tampered = result((await deno(["run", ...DENO_NPM_FLAGS, entry])).out);
      assert.equal(tampered.codeName, "MDBX_EBADSIGN", JSON.stringify(tampered));
      assert.ok(tampered.error!.includes(`refusing to load ${cached}`), JSON.stringify(tampered));
    } finally {
      await registry.close();
    }
  },
  { ignore: runtime !== "deno", timeout: 180_000 },
);

test("every library exports the FFI table's symbols, read from its own export table", () => {
  const { readdirSync, existsSync } = fs;
  const wanted = Object.keys(symbols);
  assert.deepEqual(checkExports(hostLib, wanted), []);
  assert.equal(
    readExports(hostLib).format,
    process.platform === "darwin" ? "mach-o" : process.platform === "win32" ? "pe" : "elf",
  );
  // negative control: the same file with one exported name spelled differently
  const dir = tempDir();
  try {
    const bytes = fs.readFileSync(hostLib);
    const at = bytes.indexOf(Buffer.from("tm_build_info\0"));
    assert.ok(at > 0);
    bytes[at + 3] = "X".charCodeAt(0);
    const bad = path.join(dir, libraryFileName());
    fs.writeFileSync(bad, bytes);
    assert.deepEqual(checkExports(bad, wanted), ["does not export tm_build_info"]);
  } finally {
    removeDir(dir);
  }
  // the cross builds present (CI's cross step builds aarch64-linux-gnu before the tests)
  const cross = path.join(root, "zig-out", "cross");
  for (const t of existsSync(cross) ? readdirSync(cross) : []) {
    const file = ["libturbomdbx.so", "libturbomdbx.dylib", "turbomdbx.dll"].map((f) => path.join(cross, t, "lib", f))
      .find((f) => existsSync(f));
    if (!file) continue;
    const machine = t.startsWith("aarch64") ? "aarch64" : "x86_64";
    assert.deepEqual(checkExports(file, wanted, machine), [], `${t}: ${file}`);
  }
}, { timeout: 180_000 });

test("versions are kept in step: package.json is the source, deno.json must agree", () => {
  assert.equal(checkVersions(root), version);
  const dir = tempDir();
  try {
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "turbomdbx", version: "1.2.3" }));
    fs.writeFileSync(path.join(dir, "deno.json"), JSON.stringify({ name: "@turbomdbx/turbomdbx", version: "1.2.4" }));
    assert.throws(() => checkVersions(dir), /package\.json says 1\.2\.3, deno\.json says 1\.2\.4/);
  } finally {
    removeDir(dir);
  }
}, { timeout: 180_000 });

test("libraryInfo() in a checkout: the local build, unverified, with libmdbx's version and the build target", () => {
  const info = libraryInfo();
  assert.equal(info.path, hostLib);
  assert.equal(info.from, "the local build");
  assert.equal(info.verified, false);
  assert.equal(info.sha256, undefined);
  assert.equal(info.distribution, "source");
  assert.equal(info.version, undefined);
  assert.equal(info.mdbxVersion, "0.14.3");
  assert.match(info.mdbxDescribe, /^v0\.14\.3-/);
  assert.equal(info.patchLevel, "turbomdbx-4");
  assert.equal(info.target.split("-")[0], readExports(hostLib).machine, "the triple names this machine's CPU");
}, {
  // with TURBOMDBX_LIB the suite runs on another library, not the local build
  ignore: process.env.TURBOMDBX_LIB !== undefined,
  timeout: 180_000,
});

test("a checkout records no SHA-256: loadLibrary(path, { verify: true }) is refused with MDBX_EBADSIGN", () => {
  const dir = tempDir();
  try {
    const script = path.join(dir, "verify.ts");
    fs.writeFileSync(
      script,
      `import { loadLibrary } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};\n` +
        `try { loadLibrary(${JSON.stringify(hostLib)}, { verify: true }); console.log("LOADED"); }\n` +
        `catch (e) { console.log("ERROR " + e.codeName + " " + e.message); }\n`,
    );
    const r = run(process.execPath, runtime === "deno" ? ["run", "-A", script] : [script], dir, childEnv(dir));
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /ERROR MDBX_EBADSIGN .*cannot be verified: this copy of turbomdbx is a checkout/);
  } finally {
    removeDir(dir);
  }
}, { timeout: 180_000 });
