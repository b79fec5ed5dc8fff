/**
 * Lays out the npm packages and the JSR package of a release (docs/packaging.md).
 *
 *   ./run release                         every platform built with Zig, then this with --pack --dry-run
 *   bun tools/release.ts [options]        the layout only, from libraries already built
 *   bun tools/release.ts versions         check that the versions are in step (./run check)
 *   bun tools/release.ts targets          print the Zig target of every platform, one a line
 *
 * Options:
 *   --out DIR        where to lay it out (default dist/; emptied first)
 *   --libs cross     take each platform's library from zig-out/cross/<zig target>/lib (default)
 *   --libs host      only this host's platform, from zig-out/lib (the tests' quick layout)
 *   --pack           `npm pack` every npm package into DIR/tarballs/
 *   --dry-run        `deno publish --dry-run` of DIR/jsr
 *
 * One source of truth for the version: package.json. deno.json must say the
 * same (checked), and every package written here takes it: the platform
 * packages, the main package's exact optionalDependencies on them, the JSR
 * package and its npm: imports, and src/ffi/prebuilt.ts in both packages.
 * Every library's exported symbols are checked against src/ffi/symbols.ts
 * (tools/exports.ts) and its SHA-256 recorded in the prebuilt.ts of the
 * packages that load it.
 *
 * Runs under Bun (the npm package's JavaScript is transpiled with
 * Bun.Transpiler: Deno does not run TypeScript from node_modules).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { hostTargets, PLATFORM_TARGETS, type PlatformTarget, sha256File } from "../src/ffi/library.ts";
import { symbols } from "../src/ffi/symbols.ts";
import { checkExports } from "./exports.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MDBX_VERSION = "0.14.3";
const MAIN = "turbomdbx";

interface Manifest {
  name: string;
  version: string;
  [key: string]: unknown;
}

function readJson(file: string): Manifest {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + "\n");
}

/** The release version: package.json's; deno.json must agree. Throws naming both otherwise. */
export function checkVersions(dir = root): string {
  const npm = readJson(path.join(dir, "package.json")).version;
  const deno = readJson(path.join(dir, "deno.json")).version;
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(npm)) {
    throw new Error(`package.json: version ${JSON.stringify(npm)} is not a semantic version`);
  }
  if (npm !== deno) {
    throw new Error(
      `versions out of step: package.json says ${npm}, deno.json says ${deno}. package.json is the source of ` +
        "truth: set deno.json's version to the same.",
    );
  }
  return npm;
}

/** Every .ts file under a folder of the checkout, relative to the checkout. */
function tsFiles(rel: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const p = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** The source files of the library a package carries (the CLI and compile tool too). */
function sourceFiles(): string[] {
  return ["mod.ts", ...tsFiles("src"), "tools/turbomdbx.ts", "tools/build.ts"];
}

/** src/ffi/prebuilt.ts for a package. */
function prebuiltSource(distribution: "npm" | "jsr", version: string, sha: Record<string, string>): string {
  const lines = [
    "/**",
    ` * Written by tools/release.ts for the ${distribution} package of turbomdbx ${version}: the SHA-256 of`,
    " * each platform's library, checked before it is loaded. See the checkout's copy for the fields.",
    " *",
    " * @module",
    " */",
    "",
    "/** How a distribution finds and vouches for the prebuilt libraries. */",
    "export interface Prebuilt {",
    '  readonly distribution: "source" | "npm" | "jsr";',
    "  readonly version: string | undefined;",
    "  readonly sha256: Readonly<Record<string, string>>;",
    "  readonly importPackage?: (target: string) => Promise<string | undefined>;",
    "}",
    "",
    "/** This copy's distribution. */",
    "export const prebuilt: Prebuilt = {",
    `  distribution: ${JSON.stringify(distribution)},`,
    `  version: ${JSON.stringify(version)},`,
    `  sha256: ${JSON.stringify(sha, null, 4).replace(/\n}$/, "\n  }")},`,
  ];
  if (distribution === "jsr") {
    // One literal npm: specifier per target: Deno's module graph (and deno
    // compile) sees them; only the host's is imported at run time.
    lines.push("  async importPackage(target: string): Promise<string | undefined> {", "    switch (target) {");
    for (const t of PLATFORM_TARGETS) {
      lines.push(
        `      case ${JSON.stringify(t.name)}:`,
        `        return (await import(${JSON.stringify(`npm:${t.packageName}@${version}`)})).path;`,
      );
    }
    lines.push("    }", "    return undefined;", "  },");
  }
  lines.push("};", "");
  return lines.join("\n");
}

/** TypeScript to JavaScript with relative `.ts` specifiers turned into `.js`. */
function transpile(source: string, file: string): string {
  const Bun = (globalThis as { Bun?: { Transpiler: new (o: object) => { transformSync(s: string): string } } }).Bun;
  if (!Bun) throw new Error("tools/release.ts runs under Bun (it transpiles with Bun.Transpiler)");
  const js = new Bun.Transpiler({ loader: "ts", target: "browser" }).transformSync(source);
  const out = js.replace(/((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g, "$1$2.js$3");
  if (/["']\.{1,2}\/[^"']+\.ts["']/.test(out)) {
    throw new Error(`${file}: a relative .ts import was left after transpiling`);
  }
  return out;
}

function copyText(from: string, to: string, transform?: (s: string) => string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const s = fs.readFileSync(from, "utf8");
  fs.writeFileSync(to, transform ? transform(s) : s);
}

function describe(t: PlatformTarget): string {
  const os = t.os === "linux" ? "Linux" : t.os === "darwin" ? "macOS" : "Windows";
  return `${os} ${t.cpu}${t.libc ? ` (${t.libc})` : ""}`;
}

/** One platform package: the library, its manifest with os/cpu/libc, and an index that gives its path. */
function layoutPlatform(dir: string, t: PlatformTarget, lib: string, version: string, sha: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(lib, path.join(dir, t.file));
  fs.chmodSync(path.join(dir, t.file), 0o755);
  writeJson(path.join(dir, "package.json"), {
    name: t.packageName,
    version,
    description: `The turbomdbx shared library (libmdbx ${MDBX_VERSION}, patched) for ${describe(t)}.`,
    license: "Apache-2.0",
    type: "module",
    os: [t.os],
    cpu: [t.cpu],
    ...(t.libc ? { libc: [t.libc] } : {}),
    main: "./index.js",
    types: "./index.d.ts",
    exports: {
      ".": { types: "./index.d.ts", default: "./index.js" },
      [`./${t.file}`]: `./${t.file}`,
      "./package.json": "./package.json",
    },
    files: [t.file, "index.js", "index.d.ts", "README.md", "LICENSE"],
    turbomdbx: { target: t.name, zig: t.zig, libmdbx: MDBX_VERSION, sha256: sha },
  });
  fs.writeFileSync(
    path.join(dir, "index.js"),
    `/** The file URL of this package's library (turbomdbx loads it after checking its SHA-256). */\n` +
      `export const path = new URL(${JSON.stringify(`./${t.file}`)}, import.meta.url).href;\n`,
  );
  fs.writeFileSync(
    path.join(dir, "index.d.ts"),
    `/** The file URL of this package's library (turbomdbx loads it after checking its SHA-256). */\n` +
      `export declare const path: string;\n`,
  );
  fs.writeFileSync(
    path.join(dir, "README.md"),
    `# ${t.packageName}\n\nThe prebuilt turbomdbx library for ${describe(t)}: libmdbx ${MDBX_VERSION} with ` +
      `turbomdbx's patches, built with Zig for \`${t.zig}\`. Install \`${MAIN}\` instead: it depends on this ` +
      `package for this platform and checks this file's SHA-256 (\`${sha}\`) before loading it.\n\n` +
      "libmdbx is Apache-2.0 licensed, as is turbomdbx (LICENSE).\n",
  );
  fs.copyFileSync(path.join(root, "LICENSE"), path.join(dir, "LICENSE"));
}

/** The main npm package: JavaScript for the runtimes, the TypeScript sources as its types. */
function layoutMain(dir: string, version: string, sha: Record<string, string>): void {
  for (const rel of sourceFiles()) {
    const src = rel === "src/ffi/prebuilt.ts"
      ? prebuiltSource("npm", version, sha)
      : fs.readFileSync(path.join(root, rel), "utf8");
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), src);
    let js = transpile(src, rel);
    if (rel === "tools/turbomdbx.ts") js = "#!/usr/bin/env bun\n" + js;
    fs.writeFileSync(path.join(dir, rel.replace(/\.ts$/, ".js")), js);
  }
  fs.chmodSync(path.join(dir, "tools/turbomdbx.js"), 0o755);
  const pkg = readJson(path.join(root, "package.json"));
  writeJson(path.join(dir, "package.json"), {
    name: MAIN,
    version,
    description: pkg.description,
    license: pkg.license,
    type: "module",
    main: "./mod.js",
    types: "./mod.ts",
    exports: {
      ".": { types: "./mod.ts", default: "./mod.js" },
      "./cli": { types: "./tools/turbomdbx.ts", default: "./tools/turbomdbx.js" },
      "./package.json": "./package.json",
    },
    bin: { turbomdbx: "tools/turbomdbx.js" },
    files: ["mod.js", "mod.ts", "src/", "tools/", "README.md", "LICENSE"],
    optionalDependencies: Object.fromEntries(PLATFORM_TARGETS.map((t) => [t.packageName, version])),
  });
  fs.copyFileSync(path.join(root, "README.md"), path.join(dir, "README.md"));
  fs.copyFileSync(path.join(root, "LICENSE"), path.join(dir, "LICENSE"));
}

/** The JSR package: the TypeScript as it is, with a prebuilt.ts that imports the npm platform packages. */
function layoutJsr(dir: string, version: string, sha: Record<string, string>): void {
  for (const rel of sourceFiles()) {
    if (rel === "tools/build.ts") continue; // Bun's single-binary tool: npm package only
    const to = path.join(dir, rel);
    if (rel === "src/ffi/prebuilt.ts") {
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.writeFileSync(to, prebuiltSource("jsr", version, sha));
    } else copyText(path.join(root, rel), to);
  }
  const deno = readJson(path.join(root, "deno.json"));
  writeJson(path.join(dir, "deno.json"), {
    name: deno.name,
    version,
    license: deno.license,
    exports: { ".": "./mod.ts", "./cli": "./tools/turbomdbx.ts" },
    ...(deno.imports ? { imports: deno.imports } : {}),
    publish: { include: ["mod.ts", "src/", "tools/", "README.md", "LICENSE", "deno.json"] },
  });
  fs.copyFileSync(path.join(root, "README.md"), path.join(dir, "README.md"));
  fs.copyFileSync(path.join(root, "LICENSE"), path.join(dir, "LICENSE"));
}

/** Re-reads a laid-out release and fails unless every version and hash agrees. */
export function checkDist(out: string, version: string, sha: Record<string, string>): void {
  const problems: string[] = [];
  const main = readJson(path.join(out, "npm", MAIN, "package.json"));
  if (main.version !== version) problems.push(`${MAIN}: version ${main.version}`);
  for (const [name, v] of Object.entries(main.optionalDependencies as Record<string, string>)) {
    if (v !== version) problems.push(`${MAIN}: optionalDependencies ${name}@${v}`);
  }
  for (const name of Object.keys(sha)) {
    const t = PLATFORM_TARGETS.find((x) => x.name === name)!;
    const p = readJson(path.join(out, "npm", name, "package.json"));
    if (p.version !== version) problems.push(`${t.packageName}: version ${p.version}`);
    const got = sha256File(path.join(out, "npm", name, t.file));
    if (got !== sha[name]) problems.push(`${t.packageName}: ${t.file} is ${got}, recorded ${sha[name]}`);
  }
  const jsr = readJson(path.join(out, "jsr", "deno.json"));
  if (jsr.version !== version) problems.push(`jsr: version ${jsr.version}`);
  for (const dist of ["npm/turbomdbx", "jsr"]) {
    const text = fs.readFileSync(path.join(out, dist, "src/ffi/prebuilt.ts"), "utf8");
    if (!text.includes(`version: ${JSON.stringify(version)}`)) problems.push(`${dist}: prebuilt.ts version`);
    for (const [name, h] of Object.entries(sha)) {
      if (!text.includes(`"${name}": "${h}"`)) problems.push(`${dist}: prebuilt.ts lacks ${name}'s SHA-256`);
    }
  }
  if (problems.length) throw new Error(`release layout in ${out} is inconsistent:\n  ${problems.join("\n  ")}`);
}

function tool(name: "deno" | "npm"): string {
  if (name === "npm") return "npm";
  const local = path.join(root, "node_modules", ".bin", name);
  return fs.existsSync(local) ? local : name;
}

function sh(cmd: string, args: string[], cwd: string): void {
  console.log(`$ (cd ${path.relative(root, cwd) || "."} && ${path.basename(cmd)} ${args.join(" ")})`);
  const r = spawnSync(cmd, args, { cwd, stdio: "inherit" });
  if (r.error) throw new Error(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args.join(" ")} failed with exit ${r.status}`);
}

/** Lays out a release; returns the SHA-256 of each platform's library. */
export function release(
  options: { out: string; libs: "cross" | "host"; pack?: boolean; dryRun?: boolean },
): Record<string, string> {
  const version = checkVersions();
  const out = path.resolve(options.out);
  const host = hostTargets({ os: process.platform, arch: process.arch })[0];
  const libs = new Map<PlatformTarget, string>();
  if (options.libs === "host") {
    if (!host) throw new Error(`no platform target fits this host (${process.platform}-${process.arch})`);
    libs.set(host, path.join(root, "zig-out", "lib", host.file));
  } else {
    for (const t of PLATFORM_TARGETS) libs.set(t, path.join(root, "zig-out", "cross", t.zig, "lib", t.file));
  }
  for (const [t, lib] of libs) {
    if (!fs.existsSync(lib)) {
      throw new Error(
        `${path.relative(root, lib)} is missing: build it first (${
          options.libs === "host" ? "./run build" : `./run cross ${t.zig}, or ./run release`
        })`,
      );
    }
    const problems = checkExports(lib, Object.keys(symbols));
    if (problems.length) throw new Error(`${path.relative(root, lib)} (${t.name}): ${problems.join("; ")}`);
  }
  fs.rmSync(out, { recursive: true, force: true });
  const sha: Record<string, string> = {};
  for (const [t, lib] of libs) {
    sha[t.name] = sha256File(lib);
    layoutPlatform(path.join(out, "npm", t.name), t, lib, version, sha[t.name]);
  }
  layoutMain(path.join(out, "npm", MAIN), version, sha);
  layoutJsr(path.join(out, "jsr"), version, sha);
  checkDist(out, version, sha);
  writeJson(path.join(out, "release.json"), {
    version,
    libmdbx: MDBX_VERSION,
    libraries: Object.fromEntries(
      [...libs.keys()].map((t) => [t.name, { package: t.packageName, zig: t.zig, file: t.file, sha256: sha[t.name] }]),
    ),
  });
  if (options.pack) {
    const tarballs = path.join(out, "tarballs");
    fs.mkdirSync(tarballs, { recursive: true });
    for (const name of [...[...libs.keys()].map((t) => t.name), MAIN]) {
      sh(tool("npm"), ["pack", "--silent", "--pack-destination", tarballs], path.join(out, "npm", name));
    }
  }
  if (options.dryRun) sh(tool("deno"), ["publish", "--dry-run", "--allow-dirty"], path.join(out, "jsr"));
  return sha;
}

function main(argv: string[]): number {
  try {
    if (argv[0] === "versions") {
      console.log(`versions in step: ${checkVersions()}`);
      return 0;
    }
    if (argv[0] === "targets") {
      for (const t of PLATFORM_TARGETS) console.log(t.zig);
      return 0;
    }
    const value = (flag: string, fallback: string) => {
      const i = argv.indexOf(flag);
      return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
    };
    const libs = value("--libs", "cross");
    if (libs !== "cross" && libs !== "host") throw new Error(`--libs takes cross or host, not ${libs}`);
    const out = value("--out", path.join(root, "dist"));
    const sha = release({ out, libs, pack: argv.includes("--pack"), dryRun: argv.includes("--dry-run") });
    console.log(`release ${checkVersions()} laid out in ${out}:`);
    for (const [name, h] of Object.entries(sha)) console.log(`  @turbomdbx/${name}  sha256 ${h}`);
    return 0;
  } catch (e) {
    console.error(`tools/release.ts: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
