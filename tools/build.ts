/**
 * Builds the CLI as one self-contained executable with the shared library
 * inside it.
 *
 * In a checkout (the library built first with `./run build`):
 *
 *   bun tools/build.ts           zig-out/bin/turbomdbx-cli       (bun build --compile)
 *   bun tools/build.ts --deno    zig-out/bin/turbomdbx-cli-deno  (deno compile)
 *
 * From the installed npm package (`npm install turbomdbx` / `bun add turbomdbx`):
 *
 *   bun node_modules/turbomdbx/tools/build.js [--outfile turbomdbx-cli]
 *
 * embeds this platform's installed package library (`@turbomdbx/<platform>`)
 * and checks its SHA-256 when the binary loads it.
 *
 * The Bun binary embeds the library through a `with { type: "file" }` import
 * (tools/cli-bun.ts in a checkout, a generated entry from the package) and
 * works offline. The Deno binary embeds it with `--include zig-out/lib/<lib>`,
 * where the loader's local-build lookup finds it; `deno compile` downloads a
 * runtime base the first time, so it works only where that download is
 * reachable (it is not tested here).
 *
 * Runs under Bun or Deno (`deno run -A tools/build.ts`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { libraryCandidates, libraryFileName } from "../mod.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const lib = path.join("zig-out", "lib", libraryFileName());
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
/** Run from the installed package (transpiled to tools/build.js), not from a checkout. */
const installed = import.meta.url.endsWith(".js");

/** The runtime binary: the running Bun, the project's pinned one if installed, else the one on PATH. */
function tool(name: "bun" | "deno"): string {
  if (name === "bun" && isBun) return process.execPath;
  const local = path.join(root, "node_modules", ".bin", name);
  return fs.existsSync(local) ? local : name;
}

function value(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** The entry for `bun build --compile` from the installed package: the platform package's library, embedded. */
function installedEntry(): string {
  const pkg = libraryCandidates().find((c) => c.from.startsWith("the @turbomdbx/"));
  if (!pkg?.path) {
    throw new Error(
      `this platform's library package is not installed${pkg ? ` (${pkg.from})` : ""}; ` +
        "install turbomdbx with its optional dependencies (npm install turbomdbx / bun add turbomdbx)",
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbomdbx-compile-"));
  const entry = path.join(dir, "cli.js");
  fs.writeFileSync(
    entry,
    `import libraryPath from ${JSON.stringify(pkg.path)} with { type: "file" };\n` +
      `import { run } from ${JSON.stringify(path.join(here, "turbomdbx.js"))};\n` +
      `process.exit(await run(process.argv.slice(2), { libraryPath, verifyLibrary: true }));\n`,
  );
  return entry;
}

function main(argv: string[]): number {
  const deno = argv.includes("--deno");
  let cmd: string, args: string[], cwd: string, outfile: string;
  let cleanup: string | undefined;
  if (installed) {
    if (deno) {
      console.error("tools/build.js: from the installed package, compile with Deno as docs/packaging.md shows");
      return 2;
    }
    outfile = path.resolve(value(argv, "--outfile") ?? "turbomdbx-cli");
    let entry: string;
    try {
      entry = installedEntry();
    } catch (e) {
      console.error(`tools/build.js: ${(e as Error).message}`);
      return 2;
    }
    cleanup = path.dirname(entry);
    [cmd, args, cwd] = [tool("bun"), ["build", "--compile", entry, "--outfile", outfile], process.cwd()];
  } else {
    if (!fs.existsSync(path.join(root, lib))) {
      console.error(`tools/build.ts: ${lib} is missing; build the library first with \`./run build\``);
      return 2;
    }
    fs.mkdirSync(path.join(root, "zig-out", "bin"), { recursive: true });
    outfile = path.join("zig-out", "bin", deno ? "turbomdbx-cli-deno" : "turbomdbx-cli");
    [cmd, args, cwd] = deno
      ? [tool("deno"), ["compile", "-A", "--include", lib, "--output", outfile, "tools/turbomdbx.ts"], root]
      : [tool("bun"), ["build", "--compile", "tools/cli-bun.ts", "--outfile", outfile], root];
  }
  console.log(`$ ${path.basename(cmd)} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd, stdio: "inherit" });
  if (cleanup) fs.rmSync(cleanup, { recursive: true, force: true });
  if (r.error) {
    console.error(`tools/build.ts: could not run ${cmd}: ${r.error.message}`);
    return 2;
  }
  if (r.status !== 0) return r.status ?? 2;
  console.log(`built ${outfile}`);
  return 0;
}

process.exit(main(process.argv.slice(2)));
