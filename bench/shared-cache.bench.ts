/**
 * The get() cache shared by every process (issue 11): readers in several
 * processes while another process commits, the shared cache beside the
 * per-process one measured the same way in one run.
 *
 *   bun bench/shared-cache.bench.ts [--records N] [--readers N] [--rate N] [--rounds N] [--json] [--out FILE]
 *   deno run -A --v8-flags=--expose-gc bench/shared-cache.bench.ts [...]
 *
 * One database, two tables with the same N records (16-byte random keys,
 * 100-byte values): "objects" with a get() cache and "mirror" without. For
 * each mode, "shared" (the default: one cache in the sidecar beside the lock
 * file) and "private" (`cache: { shared: false }`, each process its own, as
 * before issue 11), this process starts:
 *
 *  - one writer process committing --rate small transactions a second (each
 *    rewrites one random record in both tables, nosync), paced by the clock;
 *  - --readers reader processes: each reads every record once through the
 *    cache (warm-up), notes its memory, then runs paired rounds of 10,000
 *    uniform random reads in one read transaction each: cached `getInto()`
 *    and `get()` on "objects" beside uncached `getInto()` and `get()` on
 *    "mirror" (same records, same write load), in a rotating order.
 *
 * Every figure is a median of per-round ratios inside one reader process
 * (bench/lib/paired.ts), then the median over the readers; the same ratios of
 * CPU time (process.cpuUsage) are printed beside, since the readers and the
 * writer share the cores. Memory, after each reader's warm-up: the cache's
 * memory summed over the readers — for the shared cache the proportional set
 * size (Linux PSS: a page mapped by k processes counts 1/k in each) of the
 * reader's mappings of the sidecar, so one resident copy sums to its size; for
 * private caches each reader's slot table — and each reader's whole PSS and
 * RSS.
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { open, type Table } from "../mod.ts";
import { log, machineInfo, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { Dataset, prng } from "./lib/data.ts";
import { pairRatio, runPaired } from "./lib/paired.ts";
import { table } from "./lib/report.ts";

type Bin = Table<"binary", "binary">;
const KEY = 16, VALUE = 100, BATCH = 10_000;
/** Target: a reader's cached read over the uncached one, with the shared cache, under the write load. */
const SPEEDUP_MIN = 3;

const USAGE =
  `usage: shared-cache.bench.ts [--records N] [--readers N] [--rate N] [--rounds N] [--json] [--out FILE] [--dir PATH]
  --records N   records in each table (default 200000)
  --readers N   reader processes (default 4)
  --rate N      the writer's commits per second (default 1000)
  --rounds N    paired rounds per reader (default 15)
  --json        print one JSON document on stdout (progress goes to stderr)
  --out FILE    also write the JSON document to FILE
  --dir PATH    where the temporary database goes (default: the OS temp dir)`;

const argv = process.argv.slice(2);

/** Reads /proc/self/smaps_rollup (Linux): proportional and resident set sizes, in bytes. */
function memory(): { rss: number; pss: number; pssAnon: number; pssFile: number } {
  const out = { rss: process.memoryUsage().rss, pss: NaN, pssAnon: NaN, pssFile: NaN };
  try {
    const s = readFileSync("/proc/self/smaps_rollup", "utf8");
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN) * 1024;
    out.rss = kb("Rss");
    out.pss = kb("Pss");
    out.pssAnon = kb("Pss_Anon");
    out.pssFile = kb("Pss_File") + (kb("Pss_Shmem") || 0);
  } catch {
    // not Linux: PSS unknown
  }
  return out;
}

/** Proportional and resident size of this process's mappings of the sidecar (files ending in ".tmcache"). */
function sidecarMemory(): { pss: number; rss: number } {
  let pss = 0, rss = 0, inSidecar = false;
  try {
    for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inSidecar = line.trimEnd().endsWith(".tmcache");
      else if (inSidecar && line.startsWith("Pss:")) pss += Number(line.split(/\s+/)[1]) * 1024;
      else if (inSidecar && line.startsWith("Rss:")) rss += Number(line.split(/\s+/)[1]) * 1024;
    }
  } catch {
    return { pss: NaN, rss: NaN };
  }
  return { pss, rss };
}

function openTables(db: string, shared: boolean) {
  const env = open(db, { sync: "nosync" });
  const objects: Bin = env.table("objects", { cache: { shared } });
  const mirror: Bin = env.table("mirror");
  return { env, objects, mirror };
}

// ------------------------------------------------------------------------------------------------ children ---

if (argv[0] === "--child") {
  const [, role, db, mode, recordsS, paramS] = argv;
  const records = Number(recordsS), shared = mode === "shared";
  const ds = new Dataset(records, KEY, VALUE, 1);
  const { env, objects, mirror } = openTables(db, shared);
  const say = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");
  if (role === "writer") {
    const rate = Number(paramS), rand = prng(process.pid), value = new Uint8Array(VALUE);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const t0 = performance.now();
    let commits = 0, lastReport = t0;
    for (;;) {
      const i = rand() % records;
      value.set(ds.value(i));
      new DataView(value.buffer).setUint32(0, commits, true);
      env.write((w) => {
        w.put(objects, ds.key(i), value);
        w.put(mirror, ds.key(i), value);
      });
      commits++;
      const now = performance.now(), due = t0 + (commits * 1000) / rate;
      if (due > now) Atomics.wait(sleeper, 0, 0, due - now);
      if (now - lastReport > 500) {
        say({ commits, seconds: (now - t0) / 1000 });
        lastReport = now;
      }
    }
  } else {
    const rounds = Number(paramS), rand = prng(process.pid ^ 0x5bd1);
    const target = new Uint8Array(VALUE);
    // the keys a caller already has (one array of key objects, made once)
    const sample = Array.from({ length: BATCH * 8 }, () => ds.key(rand() % records));
    // warm-up: every record once through the cache
    env.read((r) => {
      for (let i = 0; i < records; i++) r.getInto(objects, ds.key(i), target);
    });
    const mem = memory(), slots = objects.cacheStats()!.bytes, sidecar = sidecarMemory();
    const s0 = objects.cacheStats()!;
    let next = 0;
    const pass = (body: (r: ReturnType<typeof env.beginRead>, base: number) => number) => () => {
      const base = (next++ % 8) * BATCH;
      const r = env.beginRead();
      const s = body(r, base);
      r.end();
      return s;
    };
    const into = (t: Bin) => (r: ReturnType<typeof env.beginRead>, base: number) => {
      let s = 0;
      for (let i = base; i < base + BATCH; i++) s += r.getInto(t, sample[i], target) + target[5];
      return s;
    };
    const get = (t: Bin) => (r: ReturnType<typeof env.beginRead>, base: number) => {
      let s = 0;
      for (let i = base; i < base + BATCH; i++) s += r.get(t, sample[i])![5];
      return s;
    };
    const fns = new Map<string, () => unknown>([
      ["cached getInto()", pass(into(objects))],
      ["cached get()", pass(get(objects))],
      ["uncached getInto()", pass(into(mirror))],
      ["uncached get()", pass(get(mirror))],
    ]);
    // CPU time of each pass too (process.cpuUsage: user + system): what a get costs this process, without the
    // time it waited for a core (4 readers and a writer share 2 cores here)
    const cpu = new Map<string, number[]>();
    const timed = new Map<string, () => unknown>();
    for (const [name, f] of fns) {
      cpu.set(name, []);
      timed.set(name, () => {
        const c0 = process.cpuUsage();
        const v = f();
        const c1 = process.cpuUsage(c0);
        cpu.get(name)!.push((c1.user + c1.system) / 1000);
        return v;
      });
    }
    const p = runPaired(mode, "reads", timed, { minRounds: rounds, maxRounds: rounds, budgetMs: 0 });
    const cpuRatio = (a: string, b: string) => {
      const ta = cpu.get(a)!, tb = cpu.get(b)!;
      const r = ta.map((t, i) => t / Math.max(tb[i], 1e-3)).sort((x, y) => x - y);
      return r.length % 2 ? r[r.length >> 1] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2;
    };
    const s1 = objects.cacheStats()!;
    say({
      ratio: {
        getIntoOverGet: pairRatio(p, "uncached get()", "cached getInto()"),
        getIntoOverGetInto: pairRatio(p, "uncached getInto()", "cached getInto()"),
        getOverGet: pairRatio(p, "uncached get()", "cached get()"),
      },
      cpuRatio: {
        getIntoOverGet: cpuRatio("uncached get()", "cached getInto()"),
        getIntoOverGetInto: cpuRatio("uncached getInto()", "cached getInto()"),
        getOverGet: cpuRatio("uncached get()", "cached get()"),
      },
      nsPerGet: Object.fromEntries(Object.entries(p.medianMs).map(([k, v]) => [k, (v! * 1e6) / BATCH])),
      hitRate: (s1.hits - s0.hits) / (s1.hits + s1.misses - s0.hits - s0.misses),
      invalidations: s1.invalidations - s0.invalidations,
      shared: s1.shared,
      slots,
      sidecar,
      mem,
      rounds: p.rounds,
    });
  }
  env.close();
  process.exit(0);
}

// ------------------------------------------------------------------------------------------------- parent ---

let records = 200_000, readers = 4, rate = 1000, rounds = 15, json = false, out = "", dirArg = "";
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split(/=(.*)/s, 2);
  const value = () => inline ?? argv[++i] ?? "";
  const num = (min: number) => {
    const n = Number(value().replaceAll("_", ""));
    if (!Number.isSafeInteger(n) || n < min) {
      console.error(`${flag} must be an integer >= ${min}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  if (flag === "--records") records = num(1000);
  else if (flag === "--readers") readers = num(1);
  else if (flag === "--rate") rate = num(1);
  else if (flag === "--rounds") rounds = num(3);
  else if (flag === "--json") json = true;
  else if (flag === "--out") out = value();
  else if (flag === "--dir") dirArg = value();
  else if (flag === "-h" || flag === "--help") {
    console.log(USAGE);
    process.exit(0);
  } else {
    console.error(`unknown option ${argv[i]}\n${USAGE}`);
    process.exit(2);
  }
}

const self = fileURLToPath(import.meta.url);
const isDeno = runtimeInfo().runtime === "deno";
function spawnChild(args: string[]) {
  const cmd = process.execPath;
  const full = isDeno ? ["run", "-A", self, "--child", ...args] : [self, "--child", ...args];
  const proc = spawn(cmd, full, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  proc.stdout!.setEncoding("utf8");
  proc.stderr!.setEncoding("utf8");
  proc.stdout!.on("data", (s: string) => stdout += s);
  proc.stderr!.on("data", (s: string) => stderr += s);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    proc.on("close", (code) => resolve({ code, stdout, stderr }))
  );
  return { proc, done, lines: () => stdout.trim().split("\n").filter(Boolean) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// deno-lint-ignore no-explicit-any
type ReaderResult = Record<string, any>;
interface ModeResult {
  mode: "shared" | "private";
  readers: ReaderResult[];
  writerCommitsPerSecond: number;
  speedup: { getIntoOverGet: number; getIntoOverGetInto: number; getOverGet: number };
  /** The same ratios of CPU time (process.cpuUsage) per pass. */
  cpuSpeedup: { getIntoOverGet: number; getIntoOverGetInto: number; getOverGet: number };
  pssSum: number;
  rssSum: number;
  /** The cache's memory summed over the readers: PSS of the sidecar (shared), or each reader's slot table (private). */
  cacheSum: number;
  slotBytes: number;
}

const t0 = performance.now();
const info = { ...runtimeInfo(), ...machineInfo() };
log(
  `shared get() cache: ${info.runtime} ${info.version}, ${info.cores} x ${info.cpu}; ${records} records, ` +
    `${readers} reader processes, 1 writer at ${rate} commits/s, ${rounds} paired rounds per reader`,
);
const scratch = scratchDir(dirArg || (await import("node:os")).tmpdir());
const results: ModeResult[] = [];
try {
  const db = join(scratch.path, "db");
  {
    const ds = new Dataset(records, KEY, VALUE, 1);
    const { env, objects, mirror } = openTables(db, true);
    for (let i = 0; i < records;) {
      const end = Math.min(records, i + 100_000);
      env.write((w) => {
        for (; i < end; i++) w.put(objects, ds.key(i), ds.value(i)), w.put(mirror, ds.key(i), ds.value(i));
      });
    }
    env.close();
    log(`  loaded 2 x ${records} records in ${since(t0)}`);
  }
  for (const mode of ["shared", "private"] as const) {
    const tm = performance.now();
    const writer = spawnChild(["writer", db, mode, String(records), String(rate)]);
    const rs = Array.from({ length: readers }, () => spawnChild(["reader", db, mode, String(records), String(rounds)]));
    const done = await Promise.all(rs.map((r) => r.done));
    writer.proc.kill();
    await writer.done;
    const wl = writer.lines().map((l) => JSON.parse(l));
    const last = wl[wl.length - 1] ?? { commits: 0, seconds: 1 };
    const readerResults = done.map((d, i) => {
      if (d.code !== 0) throw new Error(`reader ${i} (${mode}) failed: ${d.stderr}`);
      return JSON.parse(d.stdout.trim().split("\n").pop()!);
    });
    const r: ModeResult = {
      mode,
      readers: readerResults,
      writerCommitsPerSecond: last.commits / last.seconds,
      speedup: {
        getIntoOverGet: median(readerResults.map((x) => x.ratio.getIntoOverGet)),
        getIntoOverGetInto: median(readerResults.map((x) => x.ratio.getIntoOverGetInto)),
        getOverGet: median(readerResults.map((x) => x.ratio.getOverGet)),
      },
      cpuSpeedup: {
        getIntoOverGet: median(readerResults.map((x) => x.cpuRatio.getIntoOverGet)),
        getIntoOverGetInto: median(readerResults.map((x) => x.cpuRatio.getIntoOverGetInto)),
        getOverGet: median(readerResults.map((x) => x.cpuRatio.getOverGet)),
      },
      pssSum: readerResults.reduce((s, x) => s + x.mem.pss, 0),
      rssSum: readerResults.reduce((s, x) => s + x.mem.rss, 0),
      cacheSum: mode === "shared"
        ? readerResults.reduce((s, x) => s + x.sidecar.pss, 0)
        : readerResults.reduce((s, x) => s + x.slots, 0),
      slotBytes: readerResults[0].slots,
    };
    results.push(r);
    log(
      `  ${mode}: writer ${r.writerCommitsPerSecond.toFixed(0)} commits/s; readers' speedups (getInto/get, ` +
        `getInto/getInto, get/get) ${r.speedup.getIntoOverGet.toFixed(2)}x ${
          r.speedup.getIntoOverGetInto.toFixed(2)
        }x ` +
        `${r.speedup.getOverGet.toFixed(2)}x (CPU time: ${r.cpuSpeedup.getIntoOverGet.toFixed(2)}x ` +
        `${r.cpuSpeedup.getIntoOverGetInto.toFixed(2)}x ${r.cpuSpeedup.getOverGet.toFixed(2)}x); hit rates ${
          readerResults.map((x) => (x.hitRate * 100).toFixed(1) + "%").join(" ")
        }; PSS sum ${(r.pssSum / 2 ** 20).toFixed(1)} MiB (${since(tm)})`,
    );
  }
} finally {
  scratch.remove();
}

const [sh, pr] = results;
const targets = [
  {
    name: "shared cache: reader's cached getInto() / uncached get(), under the writer",
    value: sh.speedup.getIntoOverGet,
    bound: SPEEDUP_MIN,
  },
  {
    name: "shared cache: reader's cached getInto() / uncached getInto() (reported)",
    value: sh.speedup.getIntoOverGetInto,
    bound: -Infinity,
  },
  {
    name: "shared cache: reader's cached get() / uncached get() (reported)",
    value: sh.speedup.getOverGet,
    bound: -Infinity,
  },
  {
    name: "private caches (as before): cached getInto() / uncached get() (reported beside)",
    value: pr.speedup.getIntoOverGet,
    bound: -Infinity,
  },
  {
    name: "private caches: cached getInto() / uncached getInto() (reported)",
    value: pr.speedup.getIntoOverGetInto,
    bound: -Infinity,
  },
  {
    name: "private caches: cached get() / uncached get() (reported)",
    value: pr.speedup.getOverGet,
    bound: -Infinity,
  },
  {
    // one copy of the shared cache's memory over all readers (the sidecar's PSS sums to what is resident once),
    // against one slot table per reader for private caches
    name: "memory: readers' private slot tables / readers' share of the sidecar (PSS)",
    value: pr.cacheSum / sh.cacheSum,
    bound: readers * 0.75,
  },
  {
    name: "memory: readers' share of the sidecar (PSS) / one slot table (reported)",
    value: sh.cacheSum / sh.slotBytes,
    bound: -Infinity,
  },
].map((t) => ({ ...t, met: t.value >= t.bound }));

const doc = {
  suite: "shared-cache",
  date: new Date().toISOString(),
  ...info,
  records,
  readers,
  rate,
  rounds,
  note: "speedups: per reader, the median of per-round ratios; then the median over readers. PSS from " +
    "/proc/self/smaps_rollup after each reader's warm-up",
  targets,
  modes: results,
};
if (out) writeFileSync(out, JSON.stringify(doc, null, 2) + "\n");
if (json) console.log(JSON.stringify(doc, null, 2));
else {
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const rows = [[
    "mode",
    "writer commits/s",
    "getInto / get",
    "getInto / getInto",
    "get / get",
    "hit rate",
    "cache memory (sum)",
    "PSS sum",
    "RSS sum",
    "slot table",
  ]];
  for (const r of results) {
    rows.push([
      r.mode,
      r.writerCommitsPerSecond.toFixed(0),
      `${r.speedup.getIntoOverGet.toFixed(2)}x`,
      `${r.speedup.getIntoOverGetInto.toFixed(2)}x`,
      `${r.speedup.getOverGet.toFixed(2)}x`,
      `${(median(r.readers.map((x) => x.hitRate)) * 100).toFixed(1)}%`,
      mb(r.cacheSum),
      mb(r.pssSum),
      mb(r.rssSum),
      mb(r.slotBytes),
    ]);
  }
  console.log(`\n${readers} readers, 1 writer; cached over uncached reads in each reader (median over readers)\n`);
  console.log(table(rows));
  const trows = [["target", "measured", "target", ""]];
  for (const t of targets) {
    const reported = t.bound === -Infinity;
    trows.push([
      t.name,
      `${t.value.toFixed(2)}x`,
      reported ? "-" : `>= ${t.bound}`,
      reported ? "" : t.met ? "ok" : "MISS",
    ]);
  }
  console.log("\n" + table(trows));
}
log(`done in ${since(t0)}`);
