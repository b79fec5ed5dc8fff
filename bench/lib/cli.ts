/**
 * Command line, scratch directory and runtime facts shared by the benchmarks.
 * Uses node: built-ins, which Deno and Bun both provide.
 *
 * @module
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Parsed options of a benchmark run. */
export interface BenchArgs {
  /** Records per data set (default 1,000,000). */
  records: number;
  /** Value sizes of the data sets, in bytes (default 100 and 1000). */
  valueSizes: number[];
  /** Print one JSON document on stdout instead of tables. */
  json: boolean;
  /** Run only benchmarks whose name matches. */
  filter?: RegExp;
  /** Also run the profiling micro-benchmarks (FFI call, copy, slice). */
  profile: boolean;
  /** Parent of the scratch directory (default: the OS temp dir). */
  dir: string;
  /** Also write the JSON document to this file (tables still print). */
  out?: string;
  /** Minimum paired rounds per workload for the ratios (0: ratios of mitata's medians only). */
  rounds: number;
}

const USAGE =
  `usage: core.bench.ts [--records N] [--values 100,1000] [--json] [--profile] [--rounds N] [--filter REGEX] [--dir PATH]
  --records N      records per data set (default 1000000; e.g. 20000 for a quick run)
  --values LIST    value sizes in bytes, one data set each (default 100,1000)
  --json           print one JSON document on stdout (progress goes to stderr)
  --profile        also time the parts of a get: FFI call, raw tm_get, value copy
  --filter REGEX   only benchmarks whose name matches, e.g. "get" or "100B"
  --dir PATH       where the temporary databases go (default: the OS temp dir)
  --out FILE       also write the JSON document to FILE
  --rounds N       paired rounds per workload for the ratios (default 9; 0 = ratios of mitata's medians)`;

/** Parses the process arguments; prints usage and exits on --help or a bad option. */
export function parseArgs(argv: string[] = process.argv.slice(2)): BenchArgs {
  const a: BenchArgs = {
    records: 1_000_000,
    valueSizes: [100, 1000],
    json: false,
    profile: false,
    dir: tmpdir(),
    rounds: 9,
  };
  const bad = (msg: string): never => {
    console.error(`${msg}\n${USAGE}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? bad(`${flag} needs a value`);
    switch (flag) {
      case "--records": {
        const n = Number(value().replaceAll("_", ""));
        if (!Number.isSafeInteger(n) || n < 1000) bad("--records must be an integer >= 1000");
        a.records = n;
        break;
      }
      case "--values": {
        const sizes = value().split(",").map(Number);
        if (!sizes.length || sizes.some((n) => !Number.isInteger(n) || n < 4 || n > 65536)) {
          bad("--values must list sizes from 4 to 65536 bytes");
        }
        a.valueSizes = sizes;
        break;
      }
      case "--json":
        a.json = true;
        break;
      case "--profile":
        a.profile = true;
        break;
      case "--filter":
        a.filter = new RegExp(value());
        break;
      case "--dir":
        a.dir = value();
        break;
      case "--out":
        a.out = value();
        break;
      case "--rounds": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 0) bad("--rounds must be an integer >= 0");
        a.rounds = n;
        break;
      }
      case "-h":
      case "--help":
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        bad(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

/**
 * A fresh scratch directory that `remove()` deletes. It holds the pid of its
 * process; scratch directories of processes that no longer run (a run stopped
 * with Ctrl-C leaves its databases behind) are deleted first. No signal
 * handler: in Deno one would keep Ctrl-C from stopping a running benchmark.
 */
export function scratchDir(parent: string): { path: string; remove(): void } {
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(parent, name);
    let pid = NaN;
    try {
      pid = Number(readFileSync(join(dir, "pid"), "utf8"));
    } catch {
      continue; // not ours, or still being created
    }
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) rmSync(dir, { recursive: true, force: true });
  }
  const path = mkdtempSync(join(parent, PREFIX));
  writeFileSync(join(path, "pid"), String(process.pid));
  let removed = false;
  return {
    path,
    remove() {
      if (removed) return;
      removed = true;
      rmSync(path, { recursive: true, force: true });
    },
  };
}

const PREFIX = "turbomdbx-bench-";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** Progress lines go to stderr, so stdout holds only the report (or the JSON). */
export function log(msg: string): void {
  console.error(msg);
}

/** Runtime name and version. */
export function runtimeInfo(): { runtime: "deno" | "bun"; version: string } {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  return g.Deno ? { runtime: "deno", version: g.Deno.version.deno } : { runtime: "bun", version: g.Bun!.version };
}

/** CPU model and count. */
export function machineInfo(): { cpu: string; cores: number } {
  const c = cpus();
  return { cpu: c[0]?.model ?? "unknown", cores: c.length };
}

/** Time since `t0` as "1.2 s". */
export function since(t0: number): string {
  return `${((performance.now() - t0) / 1000).toFixed(1)} s`;
}
