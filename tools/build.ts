/**
 * Builds the CLI as one self-contained executable with the shared library
 * inside it.
 *
 *   bun tools/build.ts           zig-out/bin/turbomdbx-cli       (bun build --compile)
 *   bun tools/build.ts --deno    zig-out/bin/turbomdbx-cli-deno  (deno compile)
 *
 * Both need the library built first (`./run build`). The Bun binary embeds
 * it through the file import in tools/cli-bun.ts and works offline. The Deno
 * binary embeds it with `--include zig-out/lib/<lib>`, where the loader's
 * local-build lookup finds it; `deno compile` downloads a runtime base the
 * first time, so it works only where that download is reachable (it is not
 * tested here).
 *
 * Runs under Bun or Deno (`deno run -A tools/build.ts`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { libraryFileName } from "../mod.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lib = path.join("zig-out", "lib", libraryFileName());
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

/** The runtime binary: the project's pinned one if installed, else the one on PATH. */
function tool(name: "bun" | "deno"): string {
  if (name === "bun" && isBun) return process.execPath;
  const local = path.join(root, "node_modules", ".bin", name);
  return fs.existsSync(local) ? local : name;
}

function main(argv: string[]): number {
  const deno = argv.includes("--deno");
  if (!fs.existsSync(path.join(root, lib))) {
    console.error(`tools/build.ts: ${lib} is missing; build the library first with \`./run build\``);
    return 2;
  }
  fs.mkdirSync(path.join(root, "zig-out", "bin"), { recursive: true });
  const outfile = path.join("zig-out", "bin", deno ? "turbomdbx-cli-deno" : "turbomdbx-cli");
  const [cmd, args] = deno
    ? [tool("deno"), ["compile", "-A", "--include", lib, "--output", outfile, "tools/turbomdbx.ts"]]
    : [tool("bun"), ["build", "--compile", "tools/cli-bun.ts", "--outfile", outfile]];
  console.log(`$ ${path.basename(cmd)} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error) {
    console.error(`tools/build.ts: could not run ${cmd}: ${r.error.message}`);
    return 2;
  }
  if (r.status !== 0) return r.status ?? 2;
  console.log(`built ${outfile}`);
  return 0;
}

process.exit(main(process.argv.slice(2)));
