/**
 * The core benchmark suite: turbomdbx against native C loops on the same
 * handles (native/bench.c) and against lmdb-js, in the same process, on the
 * same data, in the same run.
 *
 *   bun bench/core.bench.ts [--records N] [--values 100,1000] [--json] [--profile]
 *   deno run -A bench/core.bench.ts [...]
 *
 * Per data set (N random 16-byte keys; values of 100 and of 1000 bytes):
 *  - get: uniform random gets of existing keys, 1000 per iteration, in a read
 *    transaction begun and ended per iteration;
 *  - scan: a full forward cursor scan;
 *  - put: 100k random puts (existing keys) in one write transaction, aborted so
 *    every iteration starts from the same database;
 *  - commit: one put per write transaction, nosync and durable (separate
 *    databases preloaded with up to 100k of the records).
 *
 * Results: mitata's table, then a summary of median time per operation and the
 * ratios turbomdbx / native and turbomdbx / lmdb-js (see docs/benchmarks.md).
 *
 * @module
 */
import { bench, group, run, summary } from "mitata";
import { ABORT, open as lmdbOpen, type RootDatabase } from "lmdb";
import process from "node:process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { type Env, open, type Table } from "../mod.ts";
import { loadBackend } from "../src/ffi/mod.ts";
import { log, machineInfo, parseArgs, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { Batches, Dataset, type KeySample } from "./lib/data.ts";
import { harnessPath, loadHarness } from "./lib/native.ts";
import { type Paired, runPaired } from "./lib/paired.ts";
import {
  collect,
  type Impl,
  ratios,
  type Result,
  type Spec,
  summary as summaryTable,
  WORKLOADS,
} from "./lib/report.ts";

const KEY_SIZE = 16;
const GET_BATCH = 1000;
const SAMPLE = 1 << 18;
const PUTS_PER_TXN = 100_000;
const LOAD_TXN = 100_000;
const COMMIT_RECORDS = 100_000;
const COMMITS_NOSYNC = 100;
const COMMITS_DURABLE = 10;

const args = parseArgs();
const scratch = scratchDir(args.dir);
const lib = loadBackend(); // the backend itself: the profile calls native functions directly
const harness = await loadHarness(harnessPath(lib.path));
const geometry = { upper: "64GiB", growth: "256MiB" };
const LMDB_MAP = 64 * 1024 ** 3;
/** Stamps commit values (see the commit workloads); shared so a stamp is never reused. */
let stamp = 1;

type Bin = Table<"binary", "binary">;
type Lmdb = RootDatabase<Uint8Array, Uint8Array>;

/** What one data set leaves open until its benchmarks have run. */
interface Stores {
  closers: (() => void)[];
  /** The iteration functions of each workload, for the paired rounds. */
  workloads: Map<string, Map<Impl, () => unknown>>;
}

function fail(what: string, r: number): never {
  throw new Error(`${what} failed: ${r}`);
}

function loadTurbomdbx(env: Env, t: Bin, ds: Dataset, count: number): void {
  for (let i = 0; i < count;) {
    const end = Math.min(count, i + LOAD_TXN);
    env.write((txn) => {
      for (; i < end; i++) txn.put(t, ds.key(i), ds.value(i));
    });
  }
}

function loadLmdb(db: Lmdb, ds: Dataset, count: number): void {
  for (let i = 0; i < count;) {
    const end = Math.min(count, i + LOAD_TXN);
    db.transactionSync(() => {
      for (; i < end; i++) db.put(ds.key(i), ds.value(i));
    });
  }
}

function openLmdb(path: string, options: Record<string, unknown>): Lmdb {
  return lmdbOpen<Uint8Array, Uint8Array>({
    path,
    keyEncoding: "binary",
    encoding: "binary",
    compression: false,
    mapSize: LMDB_MAP,
    ...options,
  }) as Lmdb;
}

function same(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Opens, loads and checks the stores of one data set, and registers its benchmarks. */
function setUp(ds: Dataset, label: string, specs: Map<string, Spec>): Stores {
  const closers: (() => void)[] = [];
  const dir = scratch.path;
  const n = ds.count;
  let t0 = performance.now();

  // The main stores: N records each.
  const env = open(join(dir, `tm-${label}`), { sync: "nosync", geometry });
  closers.push(() => env.close());
  const t = env.table("data") as Bin;
  loadTurbomdbx(env, t, ds, n);
  env.sync(true);
  log(`  turbomdbx: ${n} records in ${since(t0)}`);
  t0 = performance.now();
  const ldb = openLmdb(join(dir, `lmdb-${label}`), { noSync: true });
  closers.push(() => ldb.close());
  loadLmdb(ldb, ds, n);
  log(`  lmdb-js:   ${n} records in ${since(t0)}`);

  const entries = env.read((txn) => txn.stat(t).entries);
  const lentries = (ldb.getStats() as { entryCount: number }).entryCount;
  if (entries !== n || lentries !== n) {
    throw new Error(`expected ${n} entries, turbomdbx has ${entries}, lmdb-js ${lentries}`);
  }

  // The commit stores: up to COMMIT_RECORDS records, one per durability mode.
  t0 = performance.now();
  const k = Math.min(n, COMMIT_RECORDS);
  const cenv = {
    nosync: open(join(dir, `tm-${label}-nosync`), { sync: "nosync", geometry }),
    durable: open(join(dir, `tm-${label}-durable`), { sync: "durable", geometry }),
  };
  const cdb = {
    nosync: openLmdb(join(dir, `lmdb-${label}-nosync`), { noSync: true }),
    // overlappingSync (lmdb-js's default) flushes after the commit returns; off, each commit syncs as MDBX does.
    durable: openLmdb(join(dir, `lmdb-${label}-durable`), { overlappingSync: false }),
  };
  const ct = { nosync: cenv.nosync.table("data") as Bin, durable: cenv.durable.table("data") as Bin };
  for (const mode of ["nosync", "durable"] as const) {
    closers.push(() => cenv[mode].close(), () => cdb[mode].close());
    loadTurbomdbx(cenv[mode], ct[mode], ds, k);
    loadLmdb(cdb[mode], ds, k);
  }
  log(`  commit stores: 2 x 2 x ${k} records in ${since(t0)}`);

  // Same answers from all three before timing anything.
  const probe = ds.key(n >> 1), want = ds.value(n >> 1);
  const dst = new Uint8Array(64 * 1024);
  env.read((txn) => {
    if (!same(txn.get(t, probe), want) || !same(txn.unsafeGetView(t, probe)?.slice(), want)) {
      throw new Error("turbomdbx get mismatch");
    }
    const r = harness.getCopy(txn.unsafeHandle, t.dbi, probe, KEY_SIZE, 1, dst, dst.length);
    if (r < 0 || !same(dst.subarray(0, want.length), want)) throw new Error(`native get mismatch (${r})`);
  });
  // Touch every page of both files once, so that no benchmark pays for first-touch page faults of the maps.
  t0 = performance.now();
  const warm = new Float64Array(1);
  env.read((txn) => harness.scan(txn.unsafeHandle, t.dbi, warm));
  let lsum = 0;
  for (const { value } of ldb.getRange()) lsum += value[0];
  log(`  warm-up scans: ${since(t0)} (${warm[0] + lsum})`);
  const lv = ldb.getBinaryFast(probe);
  if (!same(lv?.subarray(0, want.length), want) || lv!.length !== want.length) throw new Error("lmdb-js get mismatch");

  const gets = ds.sample(SAMPLE, 2);
  const puts = ds.sample(Math.min(PUTS_PER_TXN, n), 3);
  const commits = ds.sample(SAMPLE, 4, k);
  const value = ds.value(7);

  const workloads = new Map<string, Map<Impl, () => unknown>>();
  const add: Add = (workload, impl, what, ops, f) => {
    const id = `${label} ${workload} ${impl}: ${what}`;
    specs.set(id, { id, dataset: label, workload, impl, what, ops });
    bench(id, f);
    if (impl === "profile" || (args.filter && !args.filter.test(id))) return;
    if (!workloads.has(workload)) workloads.set(workload, new Map());
    workloads.get(workload)!.set(impl, f);
  };
  const title = (w: string) => `${label} values, ${WORKLOADS.find((x) => x.key === w)!.label}`;

  // --- random get ---
  group(title("get"), () => {
    summary(() => {
      const b = new Batches(gets, GET_BATCH);
      const list = gets.list;
      add("get", "turbomdbx", "txn.get() x1000", GET_BATCH, () => {
        const base = b.next() * GET_BATCH;
        const txn = env.beginRead();
        let s = 0;
        for (let i = base; i < base + GET_BATCH; i++) {
          const v = txn.get(t, list[i])!;
          s += v[0] + v[v.length - 1];
        }
        txn.end();
        return s;
      });
      const bn = new Batches(gets, GET_BATCH);
      add("get", "native", "mdbx_get + memcpy x1000", GET_BATCH, () => {
        const keys = bn.flat(bn.next());
        const txn = env.beginRead();
        const r = harness.getCopy(txn.unsafeHandle, t.dbi, keys, KEY_SIZE, GET_BATCH, dst, dst.length);
        txn.end();
        return r < 0 ? fail("tmb_get_copy", r) : r;
      });
      addLmdbGet(ldb, gets, "get");
    });
  });

  // the workload key stays "getView" so that earlier --json results compare
  group(title("getView"), () => {
    summary(() => {
      const b = new Batches(gets, GET_BATCH);
      const list = gets.list;
      add("getView", "turbomdbx", "txn.unsafeGetView() x1000", GET_BATCH, () => {
        const base = b.next() * GET_BATCH;
        const txn = env.beginRead();
        let s = 0;
        for (let i = base; i < base + GET_BATCH; i++) {
          const v = txn.unsafeGetView(t, list[i])!;
          s += v[0] + v[v.length - 1];
        }
        txn.end();
        return s;
      });
      const bn = new Batches(gets, GET_BATCH);
      add("getView", "native", "mdbx_get x1000", GET_BATCH, () => {
        const keys = bn.flat(bn.next());
        const txn = env.beginRead();
        const r = harness.get(txn.unsafeHandle, t.dbi, keys, KEY_SIZE, GET_BATCH);
        txn.end();
        return r < 0 ? fail("tmb_get", r) : r;
      });
      addLmdbGet(ldb, gets, "getView");
    });
  });

  function addLmdbGet(db: Lmdb, sample: KeySample, workload: string) {
    const b = new Batches(sample, GET_BATCH);
    const list = sample.list;
    add(workload, "lmdb-js", "getBinaryFast() x1000", GET_BATCH, () => {
      const base = b.next() * GET_BATCH;
      let s = 0;
      for (let i = base; i < base + GET_BATCH; i++) {
        const v = db.getBinaryFast(list[i])!;
        s += v[0] + v[v.length - 1];
      }
      return s;
    });
  }

  // --- full scan ---
  group(title("scan"), () => {
    summary(() => {
      add("scan", "turbomdbx", `txn.range() over ${n}`, n, () => {
        const txn = env.beginRead();
        let s = 0, c = 0;
        for (const { key, value } of txn.range(t)) {
          s += key[0] + value[0];
          c++;
        }
        txn.end();
        return c === n ? s : fail("range count", c);
      });
      const sum = new Float64Array(1);
      add("scan", "native", `cursor loop over ${n}`, n, () => {
        const txn = env.beginRead();
        const c = harness.scan(txn.unsafeHandle, t.dbi, sum);
        txn.end();
        return c === n ? sum[0] : fail("tmb_scan", c);
      });
      add("scan", "lmdb-js", `getRange() over ${n}`, n, () => {
        let s = 0, c = 0;
        for (const { key, value } of ldb.getRange()) {
          s += key[0] + value[0];
          c++;
        }
        return c === n ? s : fail("getRange count", c);
      });
    });
  });

  // --- random put, one transaction (aborted) ---
  const p = puts.list.length;
  group(title("put"), () => {
    summary(() => {
      add("put", "turbomdbx", `txn.put() x${p}, abort`, p, () => {
        const txn = env.beginWrite();
        const list = puts.list;
        for (let i = 0; i < p; i++) txn.put(t, list[i], value);
        txn.abort();
      });
      add("put", "native", `mdbx_put x${p}, abort`, p, () => {
        const txn = env.beginWrite();
        const r = harness.put(txn.unsafeHandle, t.dbi, puts.flat, KEY_SIZE, p, value, value.length, 0);
        txn.abort();
        if (r < 0) fail("tmb_put", r);
      });
      add("put", "lmdb-js", `transactionSync(put x${p}), ABORT`, p, () => {
        const list = puts.list;
        ldb.transactionSync(() => {
          for (let i = 0; i < p; i++) ldb.put(list[i], value);
          return ABORT;
        });
      });
    });
  });

  // --- one put per transaction ---
  // Every commit writes a value stamped with a new number: libmdbx skips a put
  // of the value a key already has, and would then commit (and sync) nothing.
  const cval = value.slice(), cstamp = new DataView(cval.buffer);
  for (const [mode, per] of [["nosync", COMMITS_NOSYNC], ["durable", COMMITS_DURABLE]] as const) {
    const workload = mode === "nosync" ? "commitNosync" : "commitDurable";
    const e = cenv[mode], tt = ct[mode], db = cdb[mode];
    group(title(workload), () => {
      summary(() => {
        const b = new Batches(commits, per);
        add(workload, "turbomdbx", `env.write(put) x${per}`, per, () => {
          const list = commits.list;
          const base = b.next() * per;
          for (let i = base; i < base + per; i++) {
            cstamp.setUint32(0, stamp++, true);
            e.write((txn) => txn.put(tt, list[i], cval));
          }
        });
        const bn = new Batches(commits, per);
        add(workload, "native", `begin+put+commit x${per}`, per, () => {
          const r = harness.putTxns(
            e.unsafeHandle,
            tt.dbi,
            bn.flat(bn.next()),
            KEY_SIZE,
            per,
            cval,
            cval.length,
            stamp,
          );
          stamp += per;
          if (r < 0) fail("tmb_put_txns", r);
        });
        const bl = new Batches(commits, per);
        add(workload, "lmdb-js", `putSync() x${per}`, per, () => {
          const list = commits.list;
          const base = bl.next() * per;
          for (let i = base; i < base + per; i++) {
            cstamp.setUint32(0, stamp++, true);
            db.putSync(list[i], cval);
          }
        });
      });
    });
  }

  if (args.profile) addProfile(env, t, cenv.nosync, ct.nosync, gets, label, ds.valueSize, add);
  return { closers, workloads };
}

type Add = (workload: string, impl: Spec["impl"], what: string, ops: number, f: () => unknown) => void;

/**
 * Micro-benchmarks that take the turbomdbx paths apart: the FFI call, the raw
 * wrapper, the copy of the value (slice vs a slab), the view of unsafeGetView, a
 * read transaction, a one-put write transaction. Each runs 1000 operations per
 * iteration unless it says otherwise.
 */
function addProfile(env: Env, t: Bin, cenv: Env, ct: Bin, gets: KeySample, label: string, valueSize: number, add: Add) {
  const out = new Uint8Array(64 * 1024);
  const list = gets.list;
  const keys = gets.flat.subarray(0, GET_BATCH * KEY_SIZE);
  const fn = lib.fn;
  const ref = new Float64Array(2), refBytes = new Uint8Array(ref.buffer);
  const rc = new Uint8Array(8);
  const value = new Uint8Array(valueSize), vstamp = new DataView(value.buffer);
  const N = GET_BATCH;
  group(`${label} values, profile (per operation)`, () => {
    let txn = env.beginRead();
    const h = () => (txn.isOpen ? txn : (txn = env.beginRead())).unsafeHandle as never;
    add("profile", "profile", "FFI call of an empty C function (tm_get's signature)", N, () => {
      const th = h();
      let s = 0;
      for (let i = 0; i < N; i++) s += harness.nop(th, t.dbi, list[i], KEY_SIZE, out, out.length);
      return s;
    });
    add("profile", "profile", "native mdbx_get + memcpy (one FFI call per 1000)", N, () => {
      return harness.getCopy(h(), t.dbi, keys, KEY_SIZE, N, out, out.length);
    });
    add("profile", "profile", "raw fn.tm_get into a reused buffer (FFI + mdbx_get + memcpy)", N, () => {
      const th = h();
      let s = 0;
      for (let i = 0; i < N; i++) s += fn.tm_get(th, t.dbi, list[i], KEY_SIZE, out, out.length);
      return s;
    });
    add("profile", "profile", "raw fn.tm_get + out.slice(0, n) (what txn.get() does)", N, () => {
      const th = h();
      let s = 0;
      for (let i = 0; i < N; i++) {
        const n = fn.tm_get(th, t.dbi, list[i], KEY_SIZE, out, out.length);
        const v = out.slice(0, n);
        s += v[0] + v[n - 1];
      }
      return s;
    });
    let slab = new Uint8Array(256 * 1024), off = 0;
    add("profile", "profile", "raw fn.tm_get + copy into a 256 KiB slab + subarray", N, () => {
      const th = h();
      let s = 0;
      for (let i = 0; i < N; i++) {
        const n = fn.tm_get(th, t.dbi, list[i], KEY_SIZE, out, out.length);
        if (off + n > slab.length) (slab = new Uint8Array(256 * 1024)), (off = 0);
        slab.set(out.subarray(0, n), off);
        const v = slab.subarray(off, off + n);
        off = (off + n + 7) & ~7;
        s += v[0] + v[n - 1];
      }
      return s;
    });
    add("profile", "profile", "txn.get() (in one long read txn)", N, () => {
      const tx = txn.isOpen ? txn : (txn = env.beginRead());
      let s = 0;
      for (let i = 0; i < N; i++) {
        const v = tx.get(t, list[i])!;
        s += v[0] + v[v.length - 1];
      }
      return s;
    });
    add("profile", "profile", "raw fn.tm_get_ref + backend.view() + new Uint8Array (unsafeGetView's view)", N, () => {
      const th = h();
      let s = 0;
      for (let i = 0; i < N; i++) {
        fn.tm_get_ref(th, t.dbi, list[i], KEY_SIZE, refBytes);
        const v = new Uint8Array(lib.view(ref[0], ref[1]));
        s += v[0] + v[v.length - 1];
      }
      return s;
    });
    add("profile", "profile", `Uint8Array.slice of ${valueSize} bytes`, N, () => {
      let s = 0;
      for (let i = 0; i < N; i++) {
        const v = out.slice(0, valueSize);
        s += v[0] + v[valueSize - 1];
      }
      return s;
    });
    add("profile", "profile", "Uint8Array.slice of 16 bytes (a key)", N, () => {
      let s = 0;
      for (let i = 0; i < N; i++) {
        const v = out.slice(0, 16);
        s += v[0] + v[15];
      }
      return s;
    });
    add("profile", "profile", "env.beginRead() + txn.end()", 1, () => {
      env.beginRead().end();
    });
    const eh = env.unsafeHandle as never;
    add("profile", "profile", "raw fn.tm_txn_begin + fn.tm_txn_abort (read)", 1, () => {
      fn.tm_txn_abort(fn.tm_txn_begin(eh, null as never, 0x20000, rc));
    });
    const ceh = cenv.unsafeHandle as never;
    add("profile", "profile", "raw fn.tm_txn_begin + tm_put + tm_txn_commit (nosync)", 1, () => {
      const w = fn.tm_txn_begin(ceh, null as never, 0, rc);
      vstamp.setUint32(0, stamp++, true);
      fn.tm_put(w, ct.dbi, list[0], KEY_SIZE, value, valueSize, 0);
      fn.tm_txn_commit(w);
    });
    add("profile", "profile", "env.write(put) (nosync)", 1, () => {
      vstamp.setUint32(0, stamp++, true);
      cenv.write((w) => w.put(ct, list[0], value));
    });
    add("profile", "profile", "native begin + put + commit (nosync)", 1, () => {
      harness.putTxns(ceh, ct.dbi, keys, KEY_SIZE, 1, value, valueSize, stamp++);
    });
  });
}

// --- main ---
const t0 = performance.now();
const info = { ...runtimeInfo(), ...machineInfo() };
log(
  `turbomdbx core benchmarks: ${info.runtime} ${info.version}, ${info.cores} x ${info.cpu}, ` +
    `${args.records} records, values ${args.valueSizes.join(" and ")} bytes, scratch ${scratch.path}`,
);
const results: Result[] = [];
const paired: Paired[] = [];
try {
  for (const vs of args.valueSizes) {
    const label = `${vs}B`;
    log(`data set ${label}: ${args.records} x (16-byte key, ${vs}-byte value)`);
    const ds = new Dataset(args.records, KEY_SIZE, vs, 1);
    const specs = new Map<string, Spec>();
    const stores = setUp(ds, label, specs);
    try {
      const res = await run({
        format: args.json ? "quiet" : "mitata",
        colors: !args.json && process.stdout.isTTY === true,
        filter: args.filter,
        throw: true,
      });
      results.push(...collect(res.benchmarks, specs));
      if (args.rounds > 0) {
        log(`paired rounds (${label}):`);
        for (const [workload, fns] of stores.workloads) {
          if (!fns.has("turbomdbx") || fns.size < 2) continue;
          const p = runPaired(label, workload, fns, { minRounds: args.rounds });
          paired.push(p);
          const rs = Object.entries(p.ratio).map(([k, v]) => `/${k} ${v!.toFixed(2)}x`).join(", ");
          log(`  ${workload}: ${p.rounds} rounds, turbomdbx ${rs}`);
        }
      }
    } finally {
      for (const close of stores.closers.reverse()) close();
    }
  }
} finally {
  scratch.remove();
}

const rs = ratios(results, paired);
const doc = {
  suite: "core",
  date: new Date().toISOString(),
  ...info,
  records: args.records,
  keySize: KEY_SIZE,
  valueSizes: args.valueSizes,
  unit: "ns per operation (median of iterations / operations per iteration)",
  benchmarks: results.map((r) => ({
    id: r.id,
    dataset: r.dataset,
    workload: r.workload,
    impl: r.impl,
    what: r.what,
    opsPerIteration: r.ops,
    medianNs: r.median,
    p75Ns: r.p75,
    p99Ns: r.p99,
    samples: r.samples,
  })),
  ratios: rs,
  paired,
};
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + "\n");
if (args.json) console.log(JSON.stringify(doc, null, 2));
else console.log(`\n${summaryTable(results, rs, paired)}`);
log(`done in ${since(t0)}`);
