/**
 * The get() cache: the evidence for its targets, in one run, in one process.
 *
 *   bun bench/cache.bench.ts [--records N] [--values 100,1000] [--sources N] [--batch N] [--json] [--out FILE]
 *   deno run -A --v8-flags=--expose-gc bench/cache.bench.ts [...]
 *
 * Per data set (N random 16-byte keys; values of 100 and of 1000 bytes) two
 * databases hold the same records: "cached" (the objects table opened with
 * `cache: true`) and "plain" (no cache anywhere in the environment), plus an
 * lmdb-js store.
 *
 *  - memory: the cached environment is opened with a bounded cache
 *    (`maxEntries: N`), every record is read once, and the slot table's bytes
 *    per entry and the process's memory growth are taken; then again with the
 *    unbounded cache, which stays open (and warm) for the rest;
 *  - reads, uniform and Zipf(0.99): 10,000 reads of existing keys per iteration
 *    (one read transaction each), every way turbomdbx offers beside every
 *    baseline, all in one paired run: uncached `get()` one by one (the baseline
 *    every speedup is taken against) and `getInto()`; cached `get()`,
 *    `getInto()`, `getMany()` and `getManyInto()` (batches of --batch keys) and
 *    uncached `getManyInto()`; native C loops on the same handles: `mdbx_get` +
 *    copy, libmdbx's own `mdbx_cache_get` + copy (one entry per record), turbomdbx's
 *    cache one key per call and in batches (what the FFI costs); lmdb-js
 *    `getBinaryFast()`; two floors measured in C on buffers of the same
 *    sizes as the slot table and the data: a slot read then a value read per
 *    key, one key after the other ("2 dependent reads"), and the same in
 *    prefetched groups of 16 ("prefetched batch"); and the runtime's own floor
 *    for an allocating read, one fresh Uint8Array of the value's size per key
 *    ("allocate each result"), from which the ceilings of `get()` and
 *    `getMany()` are reported;
 *  - relation: per source, its index keys (`<src 16B><dir 1B><type 2B><dst 16B>`,
 *    40 to 60 per source) and the object each names: the uncached `keys()` +
 *    `get()` loop (the baseline), the same loop on the cached objects table
 *    (and with `getInto()`, which allocates no value),
 *    `follow()` and `followBatches()` (cached), and `follow()` uncached;
 *  - writes: 100,000 random puts in one committed transaction, and 100 one-put
 *    transactions (nosync), into the cached environment against the plain one.
 *
 * Ratios are medians over paired rounds of the per-round ratios
 * (bench/lib/paired.ts); the summary lists every target with its measured
 * figure and ok or MISS. See docs/benchmarks.md, "get() cache".
 *
 * @module
 */
import { open as lmdbOpen, type RootDatabase } from "lmdb";
import process from "node:process";
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import { type CacheOptions, type Env, loadLibrary, open, type Table } from "../mod.ts";
import { log, machineInfo, parseArgs, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { Batches, Dataset, fillRandom, type KeySample, prng, zipf } from "./lib/data.ts";
import { harnessPath, loadHarness } from "./lib/native.ts";
import { type Paired, pairRatio, runPaired } from "./lib/paired.ts";
import { type Impl, ns, table } from "./lib/report.ts";

const KEY_SIZE = 16;
const GET_BATCH = 10_000;
const SAMPLE = 1 << 19;
const ZIPF_S = 0.99;
const PUTS_PER_TXN = 100_000;
const COMMITS = 100;
const LOAD_TXN = 100_000;
const REL_BATCH = 100;
const REL_MIN = 40;
const REL_MAX = 60;
const REL_KEY = KEY_SIZE + 1 + 2 + KEY_SIZE;
/** The floors prefetch in groups of this many keys (as native/cache.c does). */
const FLOOR_GROUP = 16;
/** The timed cached gets must be hits at least this often, or the measurement is not of the cache. */
const HIT_RATE_MIN = 0.99;

const USAGE = `usage: cache.bench.ts [--records N] [--values 100,1000] [--sources N] [--batch N] [--json] [--out FILE]
                      [--rounds N] [--filter REGEX] [--dir PATH]
  --records N      records per data set (default 1000000; e.g. 20000 for a quick run)
  --values LIST    value sizes in bytes, one data set each (default 100,1000)
  --sources N      sources of the relation workload (default 100000; at most --records)
  --batch N        keys per getMany()/getManyInto() call (default 100; divides 10000)
  --json           print one JSON document on stdout (progress goes to stderr)
  --out FILE       also write the JSON document to FILE
  --rounds N       minimum paired rounds per workload (default 9)
  --filter REGEX   only workloads whose id matches, e.g. "uniform", "1000B", "put|commit"
  --dir PATH       where the temporary databases go (default: the OS temp dir)`;

// --sources and --batch are this suite's own; the rest are the shared options of bench/lib/cli.ts
let sources = 100_000;
let many = 100;
const rest: string[] = [];
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    if (flag === "-h" || flag === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else if (flag === "--sources") {
      const n = Number((inline ?? argv[++i] ?? "").replaceAll("_", ""));
      if (!Number.isSafeInteger(n) || n < REL_BATCH) {
        console.error(`--sources must be an integer >= ${REL_BATCH}\n${USAGE}`);
        process.exit(2);
      }
      sources = n;
    } else if (flag === "--batch") {
      const n = Number(inline ?? argv[++i] ?? "");
      if (!Number.isSafeInteger(n) || n < 1 || GET_BATCH % n !== 0) {
        console.error(`--batch must be an integer that divides ${GET_BATCH}\n${USAGE}`);
        process.exit(2);
      }
      many = n;
    } else rest.push(argv[i]);
  }
}
const args = parseArgs(rest);
const scratch = scratchDir(args.dir);
const lib = loadLibrary();
const harness = await loadHarness(harnessPath(lib.path));
const geometry = { upper: "64GiB", growth: "256MiB" };
const LMDB_MAP = 64 * 1024 ** 3;
/** Stamps the values of the write workloads, so that no put rewrites the value a key already has. */
let stamp = 1;

type Bin = Table<"binary", "binary">;
type Lmdb = RootDatabase<Uint8Array, Uint8Array>;
type Fns = Map<Impl | string, () => unknown>;

function fail(what: string, r: number): never {
  throw new Error(`${what} failed: ${r}`);
}

function wanted(id: string): boolean {
  return !args.filter || args.filter.test(id);
}

// --- memory -------------------------------------------------------------------------------------------------------

interface Mem {
  rss: number;
  /** Anonymous resident memory (Linux RssAnon): rss without the pages of the memory-mapped files. */
  rssAnon: number;
  heapUsed: number;
  arrayBuffers: number;
}

/** Forces a full garbage collection where the runtime allows it; false if it cannot. */
function collectGarbage(): boolean {
  const g = globalThis as { Bun?: { gc(sync: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else if (typeof g.gc === "function") g.gc();
  else return false;
  return true;
}

/** Two full collections with pauses, so that memory freed in the background (array buffers) is returned. */
async function settle(): Promise<boolean> {
  const gc = collectGarbage();
  await new Promise((r) => setTimeout(r, 200));
  collectGarbage();
  await new Promise((r) => setTimeout(r, 200));
  return gc;
}

function memory(): Mem {
  const m = process.memoryUsage() as { rss: number; heapUsed: number; arrayBuffers?: number };
  let rssAnon = NaN;
  try {
    const kb = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (kb) rssAnon = Number(kb[1]) * 1024;
  } catch {
    // not Linux
  }
  return { rss: m.rss, rssAnon, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers ?? NaN };
}

/** Minor page faults of the process so far (NaN where the runtime does not tell). */
function pageFaults(): number {
  const r = (process as { resourceUsage?: () => { minorPageFault: number } }).resourceUsage?.();
  return r ? r.minorPageFault : NaN;
}

/** What filling a cache with every record cost. */
interface MemoryResult {
  dataset: string;
  cache: "bounded" | "unbounded";
  entries: number;
  capacity: number;
  /** table.cacheStats().bytes: the slot table. */
  bytes: number;
  bytesPerEntry: number;
  /** Growth from before to after filling, after a full GC (when `gc` is true). */
  rssGrowth: number;
  /** Growth of anonymous resident memory (rss without mapped file pages; Linux only). */
  rssAnonGrowth: number;
  heapGrowth: number;
  arrayBuffersGrowth: number;
  /** rssAnonGrowth / entries. */
  rssPerEntry: number;
  gc: boolean;
  /** ns per get while filling (every get a miss that inserts). */
  fillNsPerGet: number;
}

// --- loading ------------------------------------------------------------------------------------------------------

function loadObjects(env: Env, t: Bin, ds: Dataset): void {
  for (let i = 0; i < ds.count;) {
    const end = Math.min(ds.count, i + LOAD_TXN);
    env.write((txn) => {
      for (; i < end; i++) txn.put(t, ds.key(i), ds.value(i));
    });
  }
}

function compareKeys(a: Uint8Array, ao: number, b: Uint8Array, bo: number, len: number): number {
  for (let i = 0; i < len; i++) {
    const d = a[ao + i] - b[bo + i];
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The relation index: for each of the first `s` records (the sources), 40 to 60
 * keys `<src><dir><type><dst>` with a random direction (0 or 1), type (0 to 3)
 * and destination (any record, uniformly), in key order. Returns the keys back
 * to back and their count.
 */
function relationKeys(ds: Dataset, s: number, seed: number): { keys: Uint8Array; count: number } {
  const rand = prng(seed);
  const order = Array.from({ length: s }, (_, i) => i);
  order.sort((a, b) => compareKeys(ds.keys, a * KEY_SIZE, ds.keys, b * KEY_SIZE, KEY_SIZE));
  const keys = new Uint8Array(s * REL_MAX * REL_KEY);
  let count = 0;
  const edge = new Uint8Array(REL_MAX * REL_KEY);
  const idx: number[] = [];
  for (const src of order) {
    const n = REL_MIN + (rand() % (REL_MAX - REL_MIN + 1));
    idx.length = 0;
    for (let e = 0; e < n; e++) {
      const o = e * REL_KEY, dst = rand() % ds.count, r = rand();
      edge.set(ds.key(src), o);
      edge[o + 16] = r & 1;
      edge[o + 17] = 0;
      edge[o + 18] = (r >>> 1) & 3;
      edge.set(ds.key(dst), o + 19);
      idx.push(e);
    }
    idx.sort((a, b) => compareKeys(edge, a * REL_KEY, edge, b * REL_KEY, REL_KEY));
    for (let j = 0; j < idx.length; j++) {
      const o = idx[j] * REL_KEY;
      if (count > 0 && compareKeys(keys, (count - 1) * REL_KEY, edge, o, REL_KEY) === 0) continue; // a duplicate
      keys.set(edge.subarray(o, o + REL_KEY), count * REL_KEY);
      count++;
    }
  }
  return { keys: keys.subarray(0, count * REL_KEY), count };
}

function loadRelations(env: Env, t: Bin, rel: { keys: Uint8Array; count: number }): void {
  const empty = new Uint8Array(0);
  for (let i = 0; i < rel.count;) {
    const end = Math.min(rel.count, i + LOAD_TXN * 5);
    env.write((txn) => {
      for (; i < end; i++) txn.put(t, rel.keys.subarray(i * REL_KEY, (i + 1) * REL_KEY), empty, { append: true });
    });
  }
}

function openLmdb(path: string): Lmdb {
  return lmdbOpen<Uint8Array, Uint8Array>({
    path,
    keyEncoding: "binary",
    encoding: "binary",
    compression: false,
    mapSize: LMDB_MAP,
    noSync: true,
  }) as Lmdb;
}

/** Touches every page of a table once (a native cursor scan), so no timing pays for first-touch page faults. */
function touch(env: Env, t: Table): number {
  const sum = new Float64Array(1);
  return env.read((txn) => harness.scan(txn.unsafeHandle, t.dbi, sum));
}

// --- results ------------------------------------------------------------------------------------------------------

/** One line of the summary: a target, what was measured, ok or MISS. */
interface Target {
  dataset: string;
  /** What is compared, e.g. "Zipf get: uncached / cached". */
  name: string;
  /** The measured figure (a speedup "x", a ratio "x", or bytes "B"). */
  value: number;
  unit: "x" | "B";
  /** value must be >= bound ("min") or <= bound ("max"). */
  kind: "min" | "max";
  bound: number;
  met: boolean;
  /** Paired rounds behind the figure (0 for memory). */
  rounds: number;
}

const targets: Target[] = [];
const paired: Paired[] = [];
const memoryResults: MemoryResult[] = [];
const hitRates: { dataset: string; workload: string; impl: string; hits: number; lookups: number; rate: number }[] = [];
const perOp: {
  dataset: string;
  workload: string;
  ops: number;
  unit: string;
  ns: Partial<Record<string, number>>;
  /** Minor page faults per operation while timed (fresh memory touched: result slabs, dirty pages, …). */
  faults: Partial<Record<string, number>>;
}[] = [];

function addTarget(t: Omit<Target, "met">): void {
  const met = Number.isFinite(t.value) && (t.kind === "min" ? t.value >= t.bound : t.value <= t.bound);
  targets.push({ ...t, met });
}

/** Speedup of turbomdbx (cached) over `impl` in a paired run: the inverse of the median ratio. */
function speedup(p: Paired | undefined, impl: Impl): number {
  const r = p?.ratio[impl];
  return r === undefined ? NaN : 1 / r;
}

function pairedRun(dataset: string, workload: string, fns: Fns, ops: number, unit: string, budgetMs = 3000): Paired {
  // JIT warm-up outside the timing: a few iterations of each
  for (let i = 0; i < 3; i++) for (const f of fns.values()) f();
  // page faults per implementation (one getrusage per iteration, next to thousands of operations)
  const faults = new Map<string, number>(), calls = new Map<string, number>();
  const counted: Fns = new Map();
  for (const [impl, f] of fns) {
    faults.set(impl, 0);
    calls.set(impl, 0);
    counted.set(impl, () => {
      const f0 = pageFaults();
      const v = f();
      faults.set(impl, faults.get(impl)! + pageFaults() - f0);
      calls.set(impl, calls.get(impl)! + 1);
      return v;
    });
  }
  const p = runPaired(dataset, workload, counted, { minRounds: args.rounds || 9, budgetMs, maxRounds: 201 });
  paired.push(p);
  const nsPer: Partial<Record<string, number>> = {}, faultsPer: Partial<Record<string, number>> = {};
  for (const [impl, ms] of Object.entries(p.medianMs)) nsPer[impl] = (ms! * 1e6) / ops;
  for (const [impl, n] of faults) faultsPer[impl] = n / (calls.get(impl)! * ops);
  perOp.push({ dataset, workload, ops, unit, ns: nsPer, faults: faultsPer });
  const rs = Object.entries(p.ratio).map(([k, v]) => `${k} ${(1 / v!).toFixed(2)}x`).join(", ");
  log(`  ${workload}: ${p.rounds} rounds; cached turbomdbx faster than: ${rs}`);
  return p;
}

// --- one data set -------------------------------------------------------------------------------------------------

async function runDataset(ds: Dataset, label: string): Promise<void> {
  const n = ds.count, vs = ds.valueSize;
  const dir = scratch.path;
  const closers: (() => void)[] = [];
  try {
    let t0 = performance.now();
    const pathP = join(dir, `plain-${label}`), pathC = join(dir, `cached-${label}`);
    const envP = open(pathP, { sync: "nosync", geometry });
    closers.push(() => envP.close());
    const tp = envP.table("objects") as Bin;
    const relP = envP.table("relations") as Bin;
    loadObjects(envP, tp, ds);
    {
      // the cached environment is loaded without a cache: the memory phase reopens it
      const e = open(pathC, { sync: "nosync", geometry });
      loadObjects(e, e.table("objects") as Bin, ds);
      e.close();
    }
    log(`  objects: 2 x ${n} records in ${since(t0)}`);
    t0 = performance.now();
    const s = Math.min(sources, n);
    const rel = relationKeys(ds, s, 5);
    loadRelations(envP, relP, rel);
    {
      const e = open(pathC, { sync: "nosync", geometry });
      loadRelations(e, e.table("relations") as Bin, rel);
      e.close();
    }
    const edges = rel.count;
    log(`  relations: 2 x ${edges} index keys for ${s} sources in ${since(t0)}`);
    t0 = performance.now();
    const ldb = openLmdb(join(dir, `lmdb-${label}`));
    closers.push(() => ldb.close());
    for (let i = 0; i < n;) {
      const end = Math.min(n, i + LOAD_TXN);
      ldb.transactionSync(() => {
        for (; i < end; i++) ldb.put(ds.key(i), ds.value(i));
      });
    }
    log(`  lmdb-js: ${n} records in ${since(t0)}`);

    // --- memory: bounded, then unbounded (kept open, warm) ---
    let envC: Env | null = null, tc: Bin | null = null, relC: Bin | null = null;
    for (const kind of ["bounded", "unbounded"] as const) {
      const cache: CacheOptions | true = kind === "bounded" ? { maxEntries: n } : true;
      const e = open(pathC, { sync: "nosync", geometry });
      const t = e.table("objects", { cache }) as Bin;
      touch(e, t);
      const gc = await settle();
      const m0 = memory();
      const f0 = performance.now();
      e.read((txn) => {
        for (let i = 0; i < n; i++) if (txn.get(t, ds.key(i)) === undefined) throw new Error(`record ${i} is missing`);
      });
      const fillMs = performance.now() - f0;
      await settle();
      const m1 = memory();
      const st = t.cacheStats()!;
      const r: MemoryResult = {
        dataset: label,
        cache: kind,
        entries: st.entries,
        capacity: st.capacity,
        bytes: st.bytes,
        bytesPerEntry: st.bytes / st.entries,
        rssGrowth: m1.rss - m0.rss,
        rssAnonGrowth: m1.rssAnon - m0.rssAnon,
        heapGrowth: m1.heapUsed - m0.heapUsed,
        arrayBuffersGrowth: m1.arrayBuffers - m0.arrayBuffers,
        rssPerEntry: (m1.rssAnon - m0.rssAnon) / st.entries,
        gc,
        fillNsPerGet: (fillMs * 1e6) / n,
      };
      memoryResults.push(r);
      log(
        `  memory, ${kind} cache: ${st.entries} entries, ${st.bytes} bytes (${r.bytesPerEntry.toFixed(1)} B/entry), ` +
          `anonymous rss +${(r.rssAnonGrowth / 2 ** 20).toFixed(1)} MiB, heap +${
            (r.heapGrowth / 2 ** 20).toFixed(1)
          } MiB` +
          (gc ? "" : " (no forced GC: run Deno with --v8-flags=--expose-gc)"),
      );
      if (st.entries !== n) log(`  WARNING: ${st.entries} entries cached, expected ${n}`);
      addTarget({
        dataset: label,
        name: `memory: slot bytes per entry, ${kind} cache`,
        value: r.bytesPerEntry,
        unit: "B",
        kind: "max",
        bound: 32,
        rounds: 0,
      });
      if (kind === "bounded") e.close();
      else {
        envC = e;
        tc = t;
        relC = e.table("relations") as Bin;
        closers.push(() => e.close());
      }
    }
    const env = envC!, t = tc!, relCached = relC!;
    touch(env, relCached);
    touch(envP, tp);
    touch(envP, relP);
    let lsum = 0;
    for (const { value } of ldb.getRange()) lsum += value[0];
    if (lsum < 0) log(String(lsum));

    // --- native mdbx_cache_get: one entry per record, every entry filled once ---
    const esize = harness.cacheEntrySize();
    const entries = new Uint8Array(n * esize);
    harness.cacheInit(entries, n);
    const nativeHits = new Float64Array(1);
    {
      const all = new Uint32Array(n).map((_, i) => i);
      const r = envP.read((txn) =>
        harness.cacheGet(txn.unsafeHandle, tp.dbi, ds.keys, KEY_SIZE, all, n, entries, nativeHits, null, 0)
      );
      if (r < 0) fail("tmb_cache_get (fill)", r);
    }

    // --- the floors: a slot table of the cache's size whose 16-byte slots hold random offsets into a buffer as large
    //     as the data; a lookup reads a slot, then the value there (native/bench.c tmb_floor) ---
    const st = t.cacheStats()!;
    const dataBytes = env.read((txn) => {
      const x = txn.stat(t);
      return (x.branchPages + x.leafPages + x.largePages) * x.pageSize;
    });
    const floorSlots = new Uint8Array(st.capacity * 16);
    const floorBuf = new Uint8Array(dataBytes);
    fillRandom(floorBuf, prng(9)); // written, so every page is a page of its own (not the shared zero page)
    {
      const dv = new DataView(floorSlots.buffer), rand = prng(10), span = dataBytes - vs;
      for (let i = 0; i < st.capacity; i++) dv.setUint32(i * 16, rand() % span, true);
    }

    // --- reads: every way, one paired run per key distribution ---
    const ctable = () => (t as unknown as { cache: { h: unknown } }).cache.h;
    const readFns = (sample: KeySample): Fns => {
      const fns: Fns = new Map();
      const list = sample.list, index = sample.index!;
      const batches = () => new Batches(sample, GET_BATCH);
      const target = new Uint8Array(vs), dst = new Uint8Array(GET_BATCH * (vs + 8));
      const pos = new Int32Array(2 * GET_BATCH);
      // the key arrays of getMany, made once (a caller has its keys in an array already)
      const groups: Uint8Array[][] = [];
      for (let i = 0; i + many <= list.length; i += many) groups.push(list.slice(i, i + many));
      const inTxn = (e: Env, body: (txn: ReturnType<Env["beginRead"]>, base: number, b: Batches) => number) => {
        const b = batches();
        return () => {
          const bi = b.next();
          const txn = e.beginRead();
          const s = body(txn, bi * GET_BATCH, b);
          txn.end();
          if (s < 0) throw new Error(`a native loop failed: ${s}`);
          return s;
        };
      };
      const get = (tt: Bin) => (txn: ReturnType<Env["beginRead"]>, base: number) => {
        let s = 0;
        for (let i = base; i < base + GET_BATCH; i++) {
          const v = txn.get(tt, list[i])!;
          s += v[0] + v[v.length - 1];
        }
        return s;
      };
      const getInto = (tt: Bin) => (txn: ReturnType<Env["beginRead"]>, base: number) => {
        let s = 0;
        for (let i = base; i < base + GET_BATCH; i++) {
          const n = txn.getInto(tt, list[i], target);
          s += target[0] + target[n - 1];
        }
        return s;
      };
      const getManyInto = (tt: Bin) => (txn: ReturnType<Env["beginRead"]>, base: number) => {
        let s = 0;
        for (let g = base / many, end = (base + GET_BATCH) / many; g < end; g++) {
          const keys = groups[g];
          txn.getManyInto(tt, keys, dst, pos);
          for (let j = 0; j < keys.length; j++) s += dst[pos[2 * j]] + dst[pos[2 * j] + pos[2 * j + 1] - 1];
        }
        return s;
      };
      fns.set("uncached get()", inTxn(envP, get(tp)));
      fns.set("uncached getInto()", inTxn(envP, getInto(tp)));
      fns.set("get()", inTxn(env, get(t)));
      fns.set("getInto()", inTxn(env, getInto(t)));
      fns.set(
        "getMany()",
        inTxn(env, (txn, base) => {
          let s = 0;
          for (let g = base / many, end = (base + GET_BATCH) / many; g < end; g++) {
            for (const v of txn.getMany(t, groups[g])) s += v![0] + v![v!.length - 1];
          }
          return s;
        }),
      );
      fns.set("getManyInto()", inTxn(env, getManyInto(t)));
      fns.set("uncached getManyInto()", inTxn(envP, getManyInto(tp)));
      fns.set(
        "C mdbx_get",
        inTxn(
          envP,
          (txn, _, b) =>
            harness.getCopy(txn.unsafeHandle, tp.dbi, b.flat(_ / GET_BATCH), KEY_SIZE, GET_BATCH, dst, dst.length),
        ),
      );
      fns.set(
        "C mdbx_cache_get",
        inTxn(envP, (txn, base, b) => {
          const idx = index.subarray(base, base + GET_BATCH);
          return harness.cacheGet(
            txn.unsafeHandle,
            tp.dbi,
            b.flat(base / GET_BATCH),
            KEY_SIZE,
            idx,
            GET_BATCH,
            entries,
            nativeHits,
            dst,
            dst.length,
          );
        }),
      );
      const snapOf = (txn: ReturnType<Env["beginRead"]>) => txn.id;
      fns.set(
        "C cache, 1 key per call",
        inTxn(
          env,
          (txn, base, b) =>
            harness.tcGet(
              ctable(),
              txn.unsafeHandle,
              t.dbi,
              snapOf(txn),
              b.flat(base / GET_BATCH),
              KEY_SIZE,
              GET_BATCH,
              dst,
              dst.length,
            ),
        ),
      );
      fns.set(
        "C cache, batched",
        inTxn(env, (txn, base, b) =>
          harness.tcGetMany(
            ctable(),
            txn.unsafeHandle,
            t.dbi,
            snapOf(txn),
            b.flat(base / GET_BATCH),
            KEY_SIZE,
            GET_BATCH,
            many,
            dst,
            dst.length,
            pos,
          )),
      );
      {
        const b = batches();
        fns.set("lmdb-js getBinaryFast", () => {
          const base = b.next() * GET_BATCH;
          let s = 0;
          for (let i = base; i < base + GET_BATCH; i++) {
            const v = ldb.getBinaryFast(list[i])!;
            s += v[0] + v[v.length - 1];
          }
          return s;
        });
      }
      {
        // what a result of its own costs this runtime, with no database at all: one fresh Uint8Array of the
        // value's size per key, copied from a hot buffer (get() and getMany() pay it on every key; getInto() and
        // getManyInto() do not)
        const b = batches(), hot = new Uint8Array(64 * 1024 + vs);
        fillRandom(hot, prng(11));
        fns.set("floor: allocate each result", () => {
          const base = b.next() * GET_BATCH;
          let s = 0;
          for (let i = base; i < base + GET_BATCH; i++) {
            const o = (i * 64) & 0xffff, v = hot.slice(o, o + vs);
            s += v[0] + v[v.length - 1];
          }
          return s;
        });
      }
      for (
        const [name, group] of [["floor: 2 dependent reads", 1], ["floor: prefetched batch", FLOOR_GROUP]] as const
      ) {
        const b = batches();
        fns.set(
          name,
          () => harness.floor(floorSlots, st.capacity, floorBuf, b.flat(b.next()), KEY_SIZE, GET_BATCH, vs, group, dst),
        );
      }
      return fns;
    };

    const uniform = ds.sample(SAMPLE, 2), skewed = ds.pick(zipf(SAMPLE, n, ZIPF_S, 3));
    for (const [dist, sample] of [["uniform", uniform], ["zipf", skewed]] as const) {
      const workload = dist;
      if (!wanted(`${label} ${workload}`)) continue;
      const fns = readFns(sample);
      // the same answers from every implementation (the floors read other bytes)
      const sums = new Map([...fns].filter(([k]) => !k.startsWith("floor")).map(([k, f]) => [k, f()]));
      if (new Set(sums.values()).size !== 1) {
        throw new Error(`${workload}: checksums differ: ${JSON.stringify([...sums])}`);
      }
      // every key of the sample read once through the cache (it holds every record already) ...
      env.read((txn) => {
        for (const k of sample.list) txn.get(t, k);
      });
      // ... and what follows is hits
      const c0 = t.cacheStats()!, n0 = nativeHits[0];
      let calls = 0;
      const nc = fns.get("C mdbx_cache_get")!;
      fns.set("C mdbx_cache_get", () => (calls++, nc()));
      const p = pairedRun(label, workload, fns, GET_BATCH, "get", 6000);
      const c1 = t.cacheStats()!;
      recordHits(label, workload, "turbomdbx", c1.hits - c0.hits, c1.hits + c1.misses - c0.hits - c0.misses);
      recordHits(label, workload, "native-cache", nativeHits[0] - n0, calls * GET_BATCH);
      const zipfian = dist === "zipf", small = vs <= 100;
      const what = zipfian ? "Zipf(0.99)" : "uniform";
      const up = (impl: string) => pairRatio(p, "uncached get()", impl);
      const target = (name: string, value: number, kind: "min" | "max", bound: number) =>
        addTarget({ dataset: label, name, value, unit: "x", kind, bound, rounds: p.rounds });
      target(
        `${what}: getManyInto() cached / get() uncached`,
        up("getManyInto()"),
        "min",
        small ? (zipfian ? 15 : 12) : (zipfian ? 10 : 7),
      );
      target(
        `${what}: getMany() cached / get() uncached`,
        up("getMany()"),
        "min",
        small ? (zipfian ? 15 : 12) : (zipfian ? 10 : 7),
      );
      target(
        `${what}: getManyInto() cached / C mdbx_cache_get`,
        pairRatio(p, "C mdbx_cache_get", "getManyInto()"),
        "min",
        1,
      );
      target(`${what}: getManyInto() uncached / get() uncached`, up("uncached getManyInto()"), "min", 1);
      // the batch against the allocation-free uncached read: what the cache gives when neither side allocates
      target(
        `${what}: getManyInto() cached / getInto() uncached (reported)`,
        pairRatio(p, "uncached getInto()", "getManyInto()"),
        "max",
        Infinity,
      );
      if (small) {
        const single = runtimeInfo().runtime === "bun" ? 4 : 3;
        target(`${what}: getInto() cached / get() uncached`, up("getInto()"), "min", single);
        target(`${what}: get() cached / get() uncached`, up("get()"), "min", single);
        target(
          `${what}: getInto() cached / getInto() uncached`,
          pairRatio(p, "uncached getInto()", "getInto()"),
          "min",
          single,
        );
      }
      target(
        `${what}: getInto() cached / lmdb-js getBinaryFast`,
        pairRatio(p, "lmdb-js getBinaryFast", "getInto()"),
        "min",
        1,
      );
      target(
        `${what}: getManyInto() cached / floor, prefetched batch (reported)`,
        pairRatio(p, "getManyInto()", "floor: prefetched batch"),
        "max",
        Infinity,
      );
      target(
        `${what}: getInto() cached / floor, 2 dependent reads (reported)`,
        pairRatio(p, "getInto()", "floor: 2 dependent reads"),
        "max",
        Infinity,
      );
      // the ceilings of the allocating reads: a result of its own per key costs what the allocation floor costs,
      // however fast the lookup (medians per key; reported, not targets)
      const med = (impl: string) => p.medianMs[impl]!;
      const alloc = med("floor: allocate each result");
      target(
        `${what}: ceiling of get() cached / get() uncached: uncached get() / (getInto() cached + allocation) (reported)`,
        med("uncached get()") / (med("getInto()") + alloc),
        "max",
        Infinity,
      );
      target(
        `${what}: ceiling of getMany() / get() uncached: uncached get() / (getManyInto() + allocation) (reported)`,
        med("uncached get()") / (med("getManyInto()") + alloc),
        "max",
        Infinity,
      );
    }

    // --- relation: a prefix scan of a source's index keys, then the object each one names ---
    if (wanted(`${label} relation`)) {
      const perm = new Uint32Array(s).map((_, i) => i);
      const rand = prng(6);
      for (let i = s - 1; i > 0; i--) {
        const j = rand() % (i + 1);
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      const srcs = ds.pick(perm);
      const per = (e: Env, body: (txn: ReturnType<Env["beginRead"]>, src: Uint8Array) => number) => {
        const b = new Batches(srcs, REL_BATCH);
        const list = srcs.list;
        return () => {
          const base = b.next() * REL_BATCH;
          const txn = e.beginRead();
          let sum = 0;
          for (let i = base; i < base + REL_BATCH; i++) sum += body(txn, list[i]);
          txn.end();
          return sum;
        };
      };
      const loop = (ri: Bin, objects: Bin) => (txn: ReturnType<Env["beginRead"]>, src: Uint8Array) => {
        let sum = 0;
        for (const k of txn.keys(ri, { prefix: src })) {
          const v = txn.get(objects, k.subarray(19, REL_KEY))!;
          sum += v[0] + v[v.length - 1];
        }
        return sum;
      };
      // the same loop without a value of its own per destination: what the loop costs less one allocation per step
      const into = new Uint8Array(vs);
      const loopInto = (ri: Bin, objects: Bin) => (txn: ReturnType<Env["beginRead"]>, src: Uint8Array) => {
        let sum = 0;
        for (const k of txn.keys(ri, { prefix: src })) {
          const n = txn.getInto(objects, k.subarray(19, REL_KEY), into);
          sum += into[0] + into[n - 1];
        }
        return sum;
      };
      const follow = (ri: Bin, objects: Bin) => (txn: ReturnType<Env["beginRead"]>, src: Uint8Array) => {
        let sum = 0;
        for (const { value } of txn.follow(ri, src, objects, { at: 19, length: KEY_SIZE })) {
          sum += value![0] + value![value!.length - 1];
        }
        return sum;
      };
      const fns: Fns = new Map<string, () => unknown>([
        ["uncached keys() + get()", per(envP, loop(relP, tp))],
        ["keys() + get()", per(env, loop(relCached, t))],
        ["keys() + getInto()", per(env, loopInto(relCached, t))],
        ["follow()", per(env, follow(relCached, t))],
        [
          "followBatches()",
          per(env, (txn, src) => {
            let sum = 0;
            for (const b of txn.followBatches(relCached, src, t, { at: 19, length: KEY_SIZE })) {
              const l = b.layout, bytes = b.bytes;
              for (let i = 0; i < b.count; i++) sum += bytes[l[4 * i + 2]] + bytes[l[4 * i + 2] + l[4 * i + 3] - 1];
            }
            return sum;
          }),
        ],
        ["uncached follow()", per(envP, follow(relP, tp))],
      ]);
      const sums = new Set([...fns.values()].map((f) => f()));
      if (sums.size !== 1) throw new Error(`relation: checksums differ (${[...sums]})`);
      const c0 = t.cacheStats()!;
      const p = pairedRun(label, "relation", fns, REL_BATCH, "source", 4000);
      const c1 = t.cacheStats()!;
      recordHits(label, "relation", "turbomdbx", c1.hits - c0.hits, c1.hits + c1.misses - c0.hits - c0.misses);
      const fan = Math.round(edges / s);
      const target = (name: string, impl: string, bound: number) =>
        addTarget({
          dataset: label,
          name: `relation (~${fan} per source): ${name}`,
          value: pairRatio(p, "uncached keys() + get()", impl),
          unit: "x",
          kind: "min",
          bound,
          rounds: p.rounds,
        });
      target("follow() cached / keys() + get() uncached", "follow()", 10);
      target("followBatches() cached / keys() + get() uncached", "followBatches()", 10);
      target("keys() + get() cached / uncached", "keys() + get()", 3);
      target("follow() uncached / keys() + get() uncached", "uncached follow()", 1);
      addTarget({
        dataset: label,
        name: `relation (~${fan} per source): keys() + getInto() cached / keys() + get() uncached (reported)`,
        value: pairRatio(p, "uncached keys() + get()", "keys() + getInto()"),
        unit: "x",
        kind: "max",
        bound: Infinity,
        rounds: p.rounds,
      });
    }

    // --- writes: cached environment (relocation tracking on) against the plain one ---
    const value = ds.value(7).slice(), vstamp = new DataView(value.buffer);
    if (wanted(`${label} put`)) {
      const puts = ds.sample(Math.min(PUTS_PER_TXN, n), 4);
      const p = puts.list.length;
      const putFn = (e: Env, tt: Bin) => () => {
        vstamp.setUint32(0, stamp++, true);
        const w = e.beginWrite();
        for (let i = 0; i < p; i++) w.put(tt, puts.list[i], value);
        w.commit();
      };
      const fns: Fns = new Map<Impl, () => unknown>([["turbomdbx", putFn(env, t)], ["uncached", putFn(envP, tp)]]);
      const pr = pairedRun(label, "put", fns, p, "put", 1);
      addTarget({
        dataset: label,
        name: `${p / 1000}k random puts per committed txn: throughput cached / plain`,
        value: speedup(pr, "uncached"),
        unit: "x",
        kind: "min",
        bound: 0.9,
        rounds: pr.rounds,
      });
    }
    if (wanted(`${label} commit`)) {
      const keys = ds.sample(1 << 15, 7);
      const commitFn = (e: Env, tt: Bin) => {
        const b = new Batches(keys, COMMITS);
        return () => {
          const base = b.next() * COMMITS;
          for (let i = base; i < base + COMMITS; i++) {
            vstamp.setUint32(0, stamp++, true);
            e.write((w) => w.put(tt, keys.list[i], value));
          }
        };
      };
      const fns: Fns = new Map<Impl, () => unknown>([
        ["turbomdbx", commitFn(env, t)],
        ["uncached", commitFn(envP, tp)],
      ]);
      const pr = pairedRun(label, "commit", fns, COMMITS, "commit");
      addTarget({
        dataset: label,
        name: "1 put per txn (nosync): throughput cached / plain",
        value: speedup(pr, "uncached"),
        unit: "x",
        kind: "min",
        bound: 0.9,
        rounds: pr.rounds,
      });
    }
  } finally {
    for (const close of closers.reverse()) close();
  }
}

function recordHits(dataset: string, workload: string, impl: string, hits: number, lookups: number): void {
  const rate = lookups > 0 ? hits / lookups : NaN;
  hitRates.push({ dataset, workload, impl, hits, lookups, rate });
  if (!(rate >= HIT_RATE_MIN)) {
    throw new Error(
      `${dataset} ${workload}: ${impl} answered ${hits} of ${lookups} lookups from its cache: not a hit measurement`,
    );
  }
}

// --- main ---------------------------------------------------------------------------------------------------------
const t0 = performance.now();
const info = { ...runtimeInfo(), ...machineInfo() };
log(
  `turbomdbx get() cache benchmarks: ${info.runtime} ${info.version}, ${info.cores} x ${info.cpu}, ` +
    `${args.records} records, values ${
      args.valueSizes.join(" and ")
    } bytes, ${sources} sources, scratch ${scratch.path}`,
);
try {
  for (const vs of args.valueSizes) {
    const label = `${vs}B`;
    log(`data set ${label}: ${args.records} x (16-byte key, ${vs}-byte value)`);
    await runDataset(new Dataset(args.records, KEY_SIZE, vs, 1), label);
  }
} finally {
  scratch.remove();
  harness.close();
}

const doc = {
  suite: "cache",
  date: new Date().toISOString(),
  ...info,
  records: args.records,
  sources,
  keySize: KEY_SIZE,
  valueSizes: args.valueSizes,
  getBatch: GET_BATCH,
  sample: SAMPLE,
  zipf: ZIPF_S,
  note: "ratios are medians over paired rounds; per-operation figures are paired medians / operations per iteration",
  targets,
  memory: memoryResults,
  hitRates,
  perOperationNs: perOp,
  paired,
};
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + "\n");
if (args.json) console.log(JSON.stringify(doc, null, 2));
else console.log("\n" + report());
log(`done in ${since(t0)}`);

function fmtFaults(f: number | undefined): string {
  return f === undefined || !Number.isFinite(f) ? "-" : (f * 1000).toFixed(1);
}

function report(): string {
  /** The implementation every speedup of a workload is taken against. */
  const baselineOf = (w: string) =>
    w === "relation" ? "uncached keys() + get()" : w === "put" || w === "commit" ? "uncached" : "uncached get()";
  let out = "time per operation: median over paired rounds, and the speedup over the workload's baseline " +
    "(the median of the per-round ratios)\n";
  for (const r of perOp) {
    const p = paired.find((x) => x.dataset === r.dataset && x.workload === r.workload)!;
    const base = baselineOf(r.workload);
    const rows = [["implementation", `per ${r.unit}`, `speedup over ${base}`, "page faults / 1000"]];
    for (const impl of Object.keys(r.ns)) {
      const x = pairRatio(p, base, impl);
      rows.push([
        impl,
        ns(r.ns[impl] ?? NaN),
        Number.isFinite(x) ? `${x.toFixed(2)}x` : "-",
        fmtFaults(r.faults[impl]),
      ]);
    }
    out += `\n${r.dataset} ${r.workload} (${p.rounds} rounds)\n\n${table(rows)}\n`;
  }
  const mrows = [[
    "data",
    "cache",
    "entries",
    "slot bytes",
    "B/entry",
    "anon rss growth",
    "per entry",
    "heap growth",
    "fill (ns/get)",
  ]];
  for (const m of memoryResults) {
    mrows.push([
      m.dataset,
      m.cache,
      String(m.entries),
      `${(m.bytes / 2 ** 20).toFixed(1)} MiB`,
      m.bytesPerEntry.toFixed(1),
      `${(m.rssAnonGrowth / 2 ** 20).toFixed(1)} MiB`,
      `${m.rssPerEntry.toFixed(1)} B`,
      `${(m.heapGrowth / 2 ** 20).toFixed(1)} MiB${m.gc ? "" : " (no GC)"}`,
      m.fillNsPerGet.toFixed(0),
    ]);
  }
  out += "\nmemory of a cache holding every record\n\n" + table(mrows);
  const trows = [["data", "target", "measured", "target", "rounds", ""]];
  for (const t of targets) {
    const reported = t.bound === Infinity;
    trows.push([
      t.dataset,
      t.name,
      t.unit === "B" ? `${t.value.toFixed(1)} B` : `${t.value.toFixed(2)}x`,
      reported ? "-" : `${t.kind === "min" ? ">=" : "<="} ${t.bound}${t.unit === "B" ? " B" : "x"}`,
      t.rounds ? String(t.rounds) : "-",
      reported ? "" : t.met ? "ok" : "MISS",
    ]);
  }
  out += "\n\ntargets (speedups are medians of per-round ratios)\n\n" + table(trows);
  const rate = hitRates.filter((h) => h.impl === "turbomdbx").map((h) => h.rate);
  if (rate.length) {
    out += `\n\ncached lookups answered by the cache while timed: ${
      (Math.min(...rate) * 100).toFixed(2)
    }% at least (every read workload)`;
  }
  return out;
}
