/**
 * The get() cache (src/cache.ts) must give results identical to an uncached
 * get for every reader at every snapshot, in every process. Every check here
 * is differential: the cached `txn.get()` against an uncached read of the same
 * key in the same transaction (`getWithCount()`/`unsafeGetView()`, native lookups
 * that never go through the cache, or a `range()` scan), byte for byte. And
 * every test also asserts that the cache was exercised (hits, invalidations,
 * evictions): a differential that never hits proves nothing.
 *
 * TURBOMDBX_SEED=<n> replays one random run (the seed is in every assertion
 * message; the two-process test also depends on how the processes interleave);
 * TURBOMDBX_SOAK=1 runs far longer workloads.
 *
 * Negative controls: native/test/cache.c turns each validity check of the
 * native cache off in turn (tm_cache_test_disable: the version, the retired
 * pages, the page header, the key on the page, other processes' commits) and
 * shows that its workloads then see wrong answers; the same C test runs the
 * lookups (single and batched) against mdbx_get under a seeded workload.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { type CacheStats, type Env, MdbxError, open, type ReadTxn, type Table, type WriteTxn } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir, tempEnv } from "./helpers.ts";
import {
  compareBytes,
  Differ,
  hex,
  int,
  makeKeys,
  makeValue,
  prng,
  sameBytes,
  stampOf,
  valueSize,
  WATCHED,
} from "./children/cache_data.ts";

const SOAK = process.env.TURBOMDBX_SOAK === "1";
const SEED_ENV = process.env.TURBOMDBX_SEED;

type Bin = Table<"binary", "binary">;

function seedFor(salt: number): number {
  return SEED_ENV !== undefined ? Number(SEED_ENV) >>> 0 : (Date.now() ^ (salt * 0x9e3779b1)) >>> 0;
}

/** Sums cache statistics (of several tables, or of one table across reopenings). */
function addStats(into: CacheStats, s: CacheStats | null): CacheStats {
  if (s === null) return into;
  into.hits += s.hits;
  into.misses += s.misses;
  into.invalidations += s.invalidations;
  into.evictions += s.evictions;
  return into;
}
const noStats = (): CacheStats => ({
  hits: 0,
  misses: 0,
  invalidations: 0,
  evictions: 0,
  entries: 0,
  capacity: 0,
  bytes: 0,
  shared: false,
});

// ---------------------------------------------------------------------------
// 1. The long random differential
// ---------------------------------------------------------------------------

interface Pinned {
  txn: ReadTxn;
  /** Commits left before it ends. */
  life: number;
}

/**
 * One seeded run: a cached table "t" takes the whole workload; the main table
 * (also cached) takes a few writes now and then, so that write transactions
 * read an untouched cached table (hits inside a write transaction, and inserts
 * from one) while its tree pages move because named tables change.
 */
class Workload {
  readonly rng: () => number;
  readonly keys: Uint8Array[];
  readonly differ: Differ;
  /** Indices of the keys every reader reads often. */
  readonly hot: number[] = [];
  env!: Env;
  t!: Bin;
  main!: Bin;
  readers: Pinned[] = [];
  /** Key indices changed by the current top-level write transaction. */
  touched = new Set<number>();
  stamp = 1;
  stats = noStats();
  commits = 0;
  aborts = 0;
  defrags: number[] = [];
  reopens = 0;
  fullChecks = 0;
  largeValues = 0;
  /** Cache hits and misses of fresh readers reading the present keys of the hot set (each twice). */
  hotHits = 0;
  hotMisses = 0;
  /** Write transactions left that favour puts (after heavy deletes). */
  refill = 0;
  /** Present keys at each full check (how full the table was). */
  present: number[] = [];

  constructor(
    readonly seed: number,
    readonly dbPath: string,
    readonly nKeys: number,
    readonly pageSize: number,
    readonly writeMap: boolean,
  ) {
    this.rng = prng(seed);
    this.keys = makeKeys(nKeys, seed);
    this.differ = new Differ(
      `seed ${seed} (replay: TURBOMDBX_SEED=${seed}), page size ${pageSize}${writeMap ? ", writeMap" : ""}`,
    );
    for (let j = 0; j < Math.min(200, nKeys / 4); j++) this.hot.push(int(this.rng, 0, nKeys - 1));
    this.openEnv();
  }

  openEnv(): void {
    this.env = open(this.dbPath, { sync: "lazy", pageSize: this.pageSize, maxReaders: 64, writeMap: this.writeMap });
    this.t = this.env.table("t", { cache: true });
    this.main = this.env.table(null, { cache: true });
    assert.equal(this.t.cacheStats()!.entries, 0, "a reopened environment starts with an empty cache");
    // a relation index over the 16-byte keys of t: [group][key], followed into t by follow()
    this.idx = this.env.table("idx");
    if (this.env.read((r) => r.stat(this.idx).entries) === 0) {
      this.env.write((w) => {
        for (let i = 0; i < this.nKeys; i++) {
          const k = this.key(i);
          if (k.length !== 16) continue;
          const ik = new Uint8Array(17);
          ik[0] = i % 8;
          ik.set(k, 1);
          w.put(this.idx, ik, new Uint8Array(0));
        }
      });
    }
  }

  idx!: Bin;

  /** follow() over one group of the index against uncached reads of each object, in `txn`. */
  checkFollow(txn: ReadTxn | WriteTxn, where: string): void {
    const g = int(this.rng, 0, 7);
    let n = 0;
    for (const { key, value } of txn.follow(this.idx, Uint8Array.of(g), this.t, { at: 1, length: 16 })) {
      const want = txn.getWithCount(this.t, key.subarray(1))?.value;
      this.differ.compared++;
      n++;
      if (!sameBytes(value, want)) this.differ.record(`${where}: follow, group ${g}, key ${hex(key)}`, want, value);
    }
    if (n === 0) this.differ.record(`${where}: follow of group ${g} yielded nothing`, undefined, undefined);
  }

  closeEnv(): void {
    for (const r of this.readers) r.txn.end();
    this.readers = [];
    addStats(this.stats, this.t.cacheStats());
    addStats(this.stats, this.main.cacheStats());
    this.env.close();
  }

  key(i: number): Uint8Array {
    return this.keys[i];
  }

  value(): Uint8Array {
    const v = makeValue(this.rng, valueSize(this.rng, this.pageSize), this.stamp++);
    if (v.length > this.pageSize / 2) this.largeValues++;
    return v;
  }

  /**
   * Compares, in `txn` and on both cached tables: the keys the last write
   * transaction touched, `hot` keys of the hot set (read often, so mostly cached:
   * these are the entries that go stale when their pages move) and `n` random keys.
   */
  checkSample(txn: ReadTxn | WriteTxn, hot: number, n: number, where: string): void {
    const d = this.differ;
    for (const i of this.touched) d.check(txn, this.t, this.key(i), `${where}, touched #${i}`);
    const h0 = int(this.rng, 0, this.hot.length - 1);
    for (let j = 0; j < hot && j < this.hot.length; j++) {
      const i = this.hot[(h0 + j) % this.hot.length];
      d.check(txn, this.t, this.key(i), `${where}, hot #${i}`);
    }
    for (let j = 0; j < n; j++) {
      const i = int(this.rng, 0, this.nKeys - 1);
      d.check(txn, this.t, this.key(i), `${where}, #${i}`);
    }
    for (let j = 0; j < 4; j++) {
      const i = int(this.rng, 0, 63);
      d.check(txn, this.main, this.key(i), `${where}, main #${i}`);
    }
    // the same in batches: touched, hot and random keys, some of them twice
    const batch: Uint8Array[] = [];
    for (const i of this.touched) if (batch.length < 40) batch.push(this.key(i));
    for (let j = 0; j < hot + n && j < 120; j++) {
      const i = j & 1 ? this.hot[int(this.rng, 0, this.hot.length - 1)] : int(this.rng, 0, this.nKeys - 1);
      batch.push(this.key(i));
      if (j % 17 === 0) batch.push(this.key(i));
    }
    d.checkMany(txn, this.t, batch, `${where}, batch`);
    if (this.rng() < 0.15) this.checkFollow(txn, where);
  }

  /** Every key: the cached get against a range() scan of the same snapshot (absent keys too). */
  fullCheck(txn: ReadTxn, where: string): void {
    this.fullChecks++;
    const present = new Map<string, Uint8Array>();
    for (const { key, value } of txn.range(this.t)) present.set(hex(key), value);
    this.present.push(present.size);
    for (let i = 0; i < this.nKeys; i++) {
      const k = this.key(i);
      const want = present.get(hex(k));
      const got = txn.get(this.t, k);
      this.differ.compared++;
      if (!sameBytes(got, want)) this.differ.record(`${where}, full check #${i} ${hex(k)} vs range()`, want, got);
    }
  }

  /** After a top-level commit or abort: every pinned reader and a fresh one. */
  checkReaders(where: string): void {
    for (const r of this.readers) this.checkSample(r.txn, 40, 8, `${where}, reader @${r.txn.id}`);
    const fresh = this.env.beginRead();
    try {
      // the hot set first: how many entries of its present keys survived the last commit
      for (const i of this.hot) {
        const before = this.t.cacheStats()!;
        const v = this.differ.check(fresh, this.t, this.key(i), `${where}, fresh reader, hot #${i}`);
        const after = this.t.cacheStats()!;
        if (v !== undefined) {
          this.hotHits += after.hits - before.hits;
          this.hotMisses += after.misses - before.misses;
        }
      }
      this.checkSample(fresh, 0, 24, `${where}, fresh reader @${fresh.id}`);
      if (int(this.rng, 0, 24) === 0) this.fullCheck(fresh, `${where}, fresh reader @${fresh.id}`);
    } finally {
      fresh.end();
    }
    if (this.readers.length > 0 && int(this.rng, 0, 30) === 0) {
      const r = this.readers[int(this.rng, 0, this.readers.length - 1)];
      this.fullCheck(r.txn, `${where}, reader @${r.txn.id}`);
    }
  }

  /** Begins and ends pinned readers at random moments. */
  churnReaders(): void {
    for (const r of this.readers) if (--r.life <= 0) r.txn.end();
    this.readers = this.readers.filter((r) => r.txn.isOpen);
    if (this.readers.length < 5 && this.rng() < 0.35) {
      this.readers.push({ txn: this.env.beginRead(), life: int(this.rng, 1, 40) });
    }
  }

  /** Deletes the keys of [from, to) through a cursor, one by one. */
  rangeDelete(txn: WriteTxn, from: number, to: number): void {
    const end = this.key(Math.min(to, this.nKeys - 1));
    const c = txn.cursor(this.t);
    let e = c.setRange(this.key(from));
    while (e !== undefined && (to >= this.nKeys || compareBytes(e.key, end) < 0)) {
      c.del();
      e = c.next();
    }
    c.close();
    for (let i = from; i < to && i < this.nKeys; i++) this.touched.add(i);
  }

  /** Random changes; `depth` > 0 inside nested transactions. */
  ops(txn: WriteTxn, n: number, depth: number, putBias: number): void {
    for (let j = 0; j < n; j++) {
      const x = this.rng();
      const i = int(this.rng, 0, this.nKeys - 1);
      if (x < putBias) {
        txn.put(this.t, this.key(i), this.value());
        this.touched.add(i);
      } else if (x < putBias + 0.1) {
        txn.del(this.t, this.key(i));
        this.touched.add(i);
      } else if (x < putBias + 0.105) {
        this.rangeDelete(txn, i, i + int(this.rng, 1, 30));
      } else if (x < putBias + 0.25) {
        // a write transaction reads its own writes (the table is dirty: the cache stands aside)
        const k = [...this.touched];
        const pick = k.length > 0 && this.rng() < 0.7 ? k[int(this.rng, 0, k.length - 1)] : i;
        this.differ.check(txn, this.t, this.key(pick), `write txn depth ${depth}, #${pick}`);
        this.differ.check(txn, this.main, this.key(pick & 63), `write txn depth ${depth}, main #${pick & 63}`);
      } else if (x < putBias + 0.28 && depth < 2 && !this.writeMap) {
        // (libmdbx has no nested transactions with writeMap)
        const child = txn.begin();
        this.ops(child, int(this.rng, 1, 25), depth + 1, putBias);
        if (this.rng() < 0.5) child.commit();
        else child.abort();
        this.differ.check(txn, this.t, this.key(i), `after a nested txn at depth ${depth}, #${i}`);
      } else if (x < putBias + 0.29) {
        txn.put(this.main, this.key(i & 63), this.value());
      }
    }
  }

  /** One top-level write transaction: committed, or now and then aborted. */
  writeTxn(): void {
    this.touched.clear();
    const txn = this.env.beginWrite();
    try {
      // reads of the untouched cached main table in a write transaction
      for (let j = 0; j < 3; j++) {
        const i = int(this.rng, 0, 63);
        this.differ.check(txn, this.main, this.key(i), `write txn start, main #${i}`);
      }
      if (this.rng() < 0.01) {
        // clear the table, then put back about half of the keys
        txn.clear(this.t);
        for (let i = 0; i < this.nKeys; i++) this.touched.add(i);
        this.differ.check(txn, this.t, this.key(0), "after clear()");
        for (let i = 0; i < this.nKeys; i++) if (this.rng() < 0.5) txn.put(this.t, this.key(i), this.value());
      }
      // few keys left: refill faster
      const putBias = this.refill > 0 ? 0.7 : 0.5;
      if (this.refill > 0) this.refill--;
      this.ops(txn, int(this.rng, 1, this.rng() < 0.1 ? 400 : 40), 0, putBias);
      if (this.rng() < 0.12) {
        txn.abort();
        this.aborts++;
        this.checkReaders(`after abort ${this.aborts}`);
      } else {
        txn.commit();
        this.commits++;
        this.checkReaders(`after commit ${this.commits}`);
      }
    } finally {
      txn.abort();
    }
  }

  /** Deletes most keys (big cursor range deletes), then defragments the file. */
  heavyDeleteAndDefrag(): void {
    this.touched.clear();
    this.env.write((txn) => {
      for (let from = int(this.rng, 0, 40); from < this.nKeys; from += int(this.rng, 60, 160)) {
        this.rangeDelete(txn, from, from + int(this.rng, 40, 120));
      }
    });
    this.commits++;
    this.checkReaders("after heavy deletes");
    // pinned readers hold pages that defrag must leave alone: every other time let them go first
    if (this.defrags.length % 2 === 0 || this.rng() < 0.3) {
      for (const r of this.readers) r.txn.end();
      this.readers = [];
    }
    const r = this.env.defrag({ timeLimitSeconds: 1 });
    if (process.env.TURBOMDBX_CACHE_VERBOSE) {
      console.log(this.readers.length, JSON.stringify(r), JSON.stringify(this.env.gcInfo()));
    }
    this.refill = 40;
    this.defrags.push(r.pagesMoved);
    this.touched.clear();
    this.checkReaders(`after defrag ${this.defrags.length} (moved ${r.pagesMoved} pages)`);
  }

  run(txns: number): void {
    // start with every key present
    this.env.write((txn) => {
      for (let i = 0; i < this.nKeys; i++) txn.put(this.t, this.key(i), this.value());
      for (let i = 0; i < 64; i++) txn.put(this.main, this.key(i), this.value());
    });
    const defragEvery = Math.max(40, Math.floor(txns / 4)), reopenEvery = Math.max(60, Math.floor(txns / 4) + 7);
    for (let n = 1; n <= txns; n++) {
      this.churnReaders();
      this.writeTxn();
      if (n % defragEvery === 0) this.heavyDeleteAndDefrag();
      if (n % reopenEvery === 0) {
        this.closeEnv();
        this.reopens++;
        this.openEnv();
        this.checkReaders(`after reopen ${this.reopens}`);
      }
    }
    const r = this.env.beginRead();
    try {
      this.fullCheck(r, "at the end");
    } finally {
      r.end();
    }
    this.closeEnv();
  }
}

function differential(pageSize: number, txns: number, nKeys: number, salt: number, writeMap = false) {
  return () => {
    const seed = seedFor(salt);
    const dir = tempDir("turbomdbx-cache-");
    try {
      const w = new Workload(seed, path.join(dir, "db"), nKeys, pageSize, writeMap);
      w.run(txns);
      const s = w.stats, d = w.differ;
      const summary = ` (commits ${w.commits}, aborts ${w.aborts}, defrags moved ${w.defrags.join("/")} pages, ` +
        `reopens ${w.reopens}, full checks ${w.fullChecks} (keys present ${
          w.present.join(",")
        }), large values ${w.largeValues}; cache hits ${s.hits}, ` +
        `misses ${s.misses}, invalidations ${s.invalidations}; hot set hits ${w.hotHits}, misses ${w.hotMisses})`;
      if (process.env.TURBOMDBX_CACHE_VERBOSE) console.log(d.message(summary));
      assert.equal(d.mismatches, 0, d.message(summary));
      assert.ok(d.compared > 10_000, `too few comparisons: ${d.message(summary)}`);
      // every other read is the second read of a key, and most keys are present: a working cache hits often
      assert.ok(s.hits > 0.2 * (s.hits + s.misses), `the cache hardly hit: ${d.message(summary)}`);
      // and a fresh reader finds most of the hot set still cached after a commit
      assert.ok(w.hotHits > 0.5 * (w.hotHits + w.hotMisses), `the hot set hardly hit: ${d.message(summary)}`);
      assert.ok(s.invalidations > 0, `nothing was invalidated: ${d.message(summary)}`);
      assert.ok(w.defrags.some((m) => m > 0), `defrag never moved a page: ${d.message(summary)}`);
      assert.ok(w.reopens >= 2 && w.largeValues > 0, d.message(summary));
    } finally {
      removeDir(dir);
    }
  };
}

test(
  "the cached get() equals the uncached one for every reader at every snapshot through a long random workload",
  differential(4096, SOAK ? 6000 : 420, SOAK ? 8000 : 2500, 1),
  { timeout: SOAK ? 3_600_000 : 120_000 },
);

test(
  "the cached get() equals the uncached one with small pages (deep trees, many splits, merges and overflow values)",
  differential(512, SOAK ? 3000 : 160, SOAK ? 4000 : 900, 2),
  { timeout: SOAK ? 3_600_000 : 120_000 },
);

test(
  "the cached get() equals the uncached one with writeMap (dirty pages written in place in the map)",
  differential(4096, SOAK ? 3000 : 160, SOAK ? 4000 : 1500, 6, true),
  { timeout: SOAK ? 3_600_000 : 120_000 },
);

/** 16-byte keys for the small tests. */
const k16 = (i: number) => {
  const k = new Uint8Array(16);
  new DataView(k.buffer).setUint32(0, i);
  k[15] = 0x5a;
  return k;
};
const val = (s: string) => new TextEncoder().encode(s);

test("a reader pinned between a page's retirement and the page's reuse reads its own snapshot, not the reused page", () => {
  // The page-header check of GetCache.lookup() is what this needs: the entries
  // point to a page that was retired, reused and retired again, and the pinned
  // reader's snapshot lies between the first retirement and the second one.
  const seed = seedFor(3);
  const rng = prng(seed);
  using t = tempEnv();
  const env = t.env;
  const tbl: Bin = env.table("t", { cache: true });
  const differ = new Differ(`seed ${seed} (replay: TURBOMDBX_SEED=${seed})`);
  const N = 40; // a small table: one or two leaf pages, copied on every write
  env.write((x) => {
    for (let i = 0; i < N; i++) x.put(tbl, k16(i), makeValue(rng, int(rng, 4, 60), i));
  });
  for (let round = 0; round < 6; round++) {
    // cache every key where it is now
    env.read((r) => {
      for (let i = 0; i < N; i++) differ.check(r, tbl, k16(i), `round ${round}, caching`);
    });
    // one key changes: its page (and the entries pointing to it) is retired...
    env.write((x) => x.put(tbl, k16(N), makeValue(rng, 8, round)));
    // ...and this reader's snapshot is the first without that page version
    const pinned = env.beginRead();
    // every key changes, again and again (sizes too, so nodes move), and nobody
    // reads them: the retired pages are reused by these commits and retired again
    for (let c = 0; c < 12; c++) {
      env.write((x) => {
        for (let i = 0; i < N; i++) x.put(tbl, k16(i), makeValue(rng, int(rng, 4, 60), 1000 * round + c));
      });
    }
    for (let i = 0; i < N; i++) differ.check(pinned, tbl, k16(i), `round ${round}, pinned reader @${pinned.id}`);
    pinned.end();
  }
  const s = tbl.cacheStats()!;
  assert.equal(differ.mismatches, 0, differ.message());
  assert.ok(s.hits > 0 && s.invalidations > 0, `${differ.message()} ${JSON.stringify(s)}`);
});

test("a write transaction reads its own writes through a cached table; untouched cached tables hit inside it", () => {
  using t = tempEnv();
  const env = t.env;
  const a: Bin = env.table("a", { cache: true }), b: Bin = env.table("b", { cache: true });
  const N = 100;
  const orig = (tbl: string, i: number) => val(`${tbl}:${i}:${"o".repeat(i % 37)}`);
  env.write((x) => {
    for (let i = 0; i < N; i++) {
      x.put(a, k16(i), orig("a", i));
      x.put(b, k16(i), orig("b", i));
    }
  });
  env.read((r) => {
    for (let i = 0; i < N; i++) r.get(a, k16(i)), r.get(b, k16(i));
  });
  const differ = new Differ("write transaction");
  const w = env.beginWrite();
  try {
    // before a write, the write transaction reads "a" from the cache
    let s = a.cacheStats()!;
    assert.deepEqual(w.get(a, k16(1)), orig("a", 1));
    assert.equal(a.cacheStats()!.hits, s.hits + 1, "an untouched cached table hits in a write transaction");
    w.put(a, k16(1), val("new 1, longer than before"));
    assert.deepEqual(w.get(a, k16(1)), val("new 1, longer than before"), "put, then get: the new value");
    w.put(a, k16(5), val("5"));
    assert.deepEqual(w.get(a, k16(5)), val("5"), "a shrinking update");
    assert.equal(w.del(a, k16(2)), true);
    assert.equal(w.get(a, k16(2)), undefined, "del, then get: undefined");
    w.put(a, k16(1000), val("inserted"));
    assert.deepEqual(w.get(a, k16(1000)), val("inserted"), "an insert");
    assert.deepEqual(w.replace(a, k16(6), val("replaced")), orig("a", 6));
    assert.deepEqual(w.get(a, k16(6)), val("replaced"), "replace, then get");
    w.unsafeReserve(a, k16(7), 3).set(val("res"));
    assert.deepEqual(w.get(a, k16(7)), val("res"), "reserve, then get");
    const c = w.cursor(a);
    c.set(k16(8));
    c.del();
    c.put(k16(9), val("by cursor"));
    c.close();
    assert.equal(w.get(a, k16(8)), undefined, "a cursor delete");
    assert.deepEqual(w.get(a, k16(9)), val("by cursor"), "a cursor put");

    // a nested transaction sees its parent's writes, and its own
    const child = w.begin();
    assert.deepEqual(child.get(a, k16(1)), val("new 1, longer than before"));
    assert.equal(child.get(a, k16(2)), undefined);
    child.put(a, k16(3), val("child 3"));
    child.del(a, k16(4));
    assert.deepEqual(child.get(a, k16(3)), val("child 3"));
    assert.equal(child.get(a, k16(4)), undefined);
    // an aborted child leaves the parent as it was
    child.abort();
    assert.deepEqual(w.get(a, k16(3)), orig("a", 3), "after the child's abort the old value is back");
    assert.deepEqual(w.get(a, k16(4)), orig("a", 4), "after the child's abort the deleted key is back");
    const child2 = w.begin();
    const grandchild = child2.begin();
    grandchild.put(a, k16(3), val("grandchild 3"));
    grandchild.commit();
    assert.deepEqual(child2.get(a, k16(3)), val("grandchild 3"));
    child2.commit();
    assert.deepEqual(w.get(a, k16(3)), val("grandchild 3"), "a committed child's write reaches the parent");

    // "b" was never written here: every read is a hit, also in a nested transaction
    s = b.cacheStats()!;
    for (let i = 0; i < N; i++) assert.deepEqual(w.get(b, k16(i)), orig("b", i));
    const child3 = w.begin();
    for (let i = 0; i < N; i++) assert.deepEqual(child3.get(b, k16(i)), orig("b", i));
    child3.abort();
    const s2 = b.cacheStats()!;
    assert.equal(s2.hits - s.hits, 2 * N, "reads of an untouched cached table in a write transaction are hits");
    assert.equal(s2.misses, s.misses);

    for (let i = 0; i < N + 10; i++) differ.check(w, a, k16(i), "write transaction, a");
    for (let i = 0; i < N + 10; i++) differ.check(w, b, k16(i), "write transaction, b");
    // clear(): everything is gone for this transaction
    w.clear(a);
    for (let i = 0; i < N; i++) assert.equal(w.get(a, k16(i)), undefined, "after clear()");
  } finally {
    w.abort();
  }
  // the abort brings back every old value, through the cache too
  env.read((r) => {
    for (let i = 0; i < N + 10; i++) {
      assert.deepEqual(r.get(a, k16(i)), i < N ? orig("a", i) : undefined, `after abort, key ${i}`);
      differ.check(r, a, k16(i), "after the abort");
    }
    assert.equal(r.get(a, k16(1000)), undefined);
  });
  // and a commit publishes them
  env.write((x) => {
    x.put(a, k16(1), val("committed"));
    assert.deepEqual(x.get(a, k16(1)), val("committed"));
  });
  env.read((r) => {
    assert.deepEqual(r.get(a, k16(1)), val("committed"));
    assert.deepEqual(r.get(a, k16(1)), val("committed"));
  });
  assert.equal(differ.mismatches, 0, differ.message());
});

test("after an aborted drop, writes through the old handle are seen by the cached reads of a new handle", () => {
  using t = tempEnv();
  const env = t.env;
  const old: Bin = env.table("d", { cache: true });
  env.write((x) => x.put(old, k16(1), val("one")));
  const w = env.beginWrite();
  w.drop(old);
  w.abort();
  // the table is still there; the environment hands out a new handle for it
  const d: Bin = env.table("d", { cache: true });
  env.read((r) => {
    assert.deepEqual(r.get(d, k16(1)), val("one"));
    assert.deepEqual(r.get(d, k16(1)), val("one"));
  });
  assert.ok(d.cacheStats()!.hits > 0);
  env.write((x) => {
    x.put(old, k16(1), val("two"));
    assert.deepEqual(x.get(d, k16(1)), val("two"), "a write transaction reads its own write through any handle");
    x.del(old, k16(1));
    assert.equal(x.get(d, k16(1)), undefined);
  });
  env.read((r) => assert.equal(r.get(d, k16(1)), undefined));
});

test("integer keys, string keys of 5 to 40 bytes and string values: cached answers equal uncached ones", () => {
  const seed = seedFor(7);
  const rng = prng(seed);
  using t = tempEnv();
  const env = t.env;
  const ints = env.table("ints", { keys: "uint32", values: "string", cache: true });
  const strs = env.table("strs", { keys: "string", values: "uint64", cache: true });
  // keyBytes no longer limits anything: keys are compared on the page, not stored in the slot
  const tiny = env.table("tiny", { keys: "string", values: "string", cache: { keyBytes: 4 } });
  const name = (i: number) => `key-${i}-${"k".repeat(i % 30)}`; // 5 to 40 bytes
  let mismatches = 0;
  const details: string[] = [];
  const same = (what: string, got: unknown, want: unknown) => {
    if (got !== want) {
      mismatches++;
      if (details.length < 10) details.push(`${what}: cached ${got}, uncached ${want}`);
    }
  };
  const readers: ReadTxn[] = [];
  for (let round = 0; round < 40; round++) {
    env.write((x) => {
      for (let j = 0; j < 60; j++) {
        const i = int(rng, 0, 299);
        if (rng() < 0.75) {
          x.put(ints, i, "v".repeat(int(rng, 0, 700)) + round);
          x.put(strs, name(i), round * 1000 + i);
          x.put(tiny, name(i), `${round}`);
        } else {
          x.del(ints, i);
          x.del(strs, name(i));
          x.del(tiny, name(i));
        }
      }
    });
    if (readers.length > 2) readers.shift()!.end();
    readers.push(env.beginRead());
    for (const r of readers) {
      for (let j = 0; j < 100; j++) {
        const i = int(rng, 0, 299);
        for (let n = 0; n < 2; n++) {
          same(`ints ${i} @${r.id}`, r.get(ints, i), r.getWithCount(ints, i)?.value);
          same(`strs ${name(i)} @${r.id}`, r.get(strs, name(i)), r.getWithCount(strs, name(i))?.value);
          same(`tiny ${name(i)} @${r.id}`, r.get(tiny, name(i)), r.getWithCount(tiny, name(i))?.value);
        }
      }
    }
  }
  for (const r of readers) r.end();
  const msg = `seed ${seed} (replay: TURBOMDBX_SEED=${seed}): ${mismatches} differences\n  ${details.join("\n  ")}`;
  assert.equal(mismatches, 0, msg);
  const si = ints.cacheStats()!, ss = strs.cacheStats()!, st = tiny.cacheStats()!;
  assert.ok(si.hits > 0 && si.invalidations > 0, `uint32 keys: ${JSON.stringify(si)}`);
  assert.ok(ss.hits > 0 && ss.invalidations > 0, `string keys of 5 to 40 bytes: ${JSON.stringify(ss)}`);
  assert.ok(st.hits > 0 && st.invalidations > 0, `string keys with keyBytes 4: ${JSON.stringify(st)}`);
});

test("a bounded cache never holds more than maxEntries, evicts, and still answers exactly", () => {
  const seed = seedFor(4);
  const rng = prng(seed);
  using t = tempEnv();
  const env = t.env;
  const tbl: Bin = env.table("t", { cache: { maxEntries: 1000 } });
  const N = 10_000;
  env.write((x) => {
    for (let i = 0; i < N; i++) x.put(tbl, k16(i), makeValue(rng, int(rng, 0, 300), i));
  });
  const differ = new Differ(`seed ${seed} (replay: TURBOMDBX_SEED=${seed})`);
  let maxSeen = 0;
  for (let round = 0; round < 30; round++) {
    const r = env.beginRead();
    try {
      for (let j = 0; j < 1500; j++) {
        // half of the reads go to 800 hot keys (they should mostly stay cached), half anywhere
        const i = rng() < 0.5 ? int(rng, 0, 799) * 11 : int(rng, 0, N - 1);
        differ.check(r, tbl, k16(i), `round ${round}`);
        if ((j & 63) === 0) maxSeen = Math.max(maxSeen, tbl.cacheStats()!.entries);
      }
    } finally {
      r.end();
    }
    maxSeen = Math.max(maxSeen, tbl.cacheStats()!.entries);
    env.write((x) => {
      for (let j = 0; j < 50; j++) {
        const i = int(rng, 0, N - 1);
        if (rng() < 0.8) x.put(tbl, k16(i), makeValue(rng, int(rng, 0, 300), round));
        else x.del(tbl, k16(i));
      }
    });
  }
  const s = tbl.cacheStats()!;
  assert.equal(differ.mismatches, 0, differ.message());
  assert.ok(maxSeen <= 1000 && s.entries <= 1000, `entries went up to ${maxSeen}: ${JSON.stringify(s)}`);
  assert.ok(maxSeen >= 900, `the cache did not fill: ${maxSeen}`);
  assert.ok(s.evictions > 0 && s.hits > 0.25 * (s.hits + s.misses), JSON.stringify(s));
  assert.ok(s.capacity >= 1000 && s.capacity < 2048, `the slot table is sized for maxEntries: ${s.capacity}`);
});

test("an unbounded cache stays within 32 slot bytes per entry as it grows, and keeps its entries (16-byte keys)", () => {
  using t = tempEnv();
  const env = t.env;
  const tbl: Bin = env.table("t", { cache: true });
  const N = 120_000;
  env.write((x) => {
    for (let i = 0; i < N; i++) x.put(tbl, k16(i), val(`v${i}`));
  });
  let worst = 0, grew = 0, capacity = tbl.cacheStats()!.capacity;
  env.read((r) => {
    for (let i = 0; i < N; i++) {
      assert.equal(r.get(tbl, k16(i))?.length, `v${i}`.length);
      const s = tbl.cacheStats()!;
      if (s.capacity !== capacity) {
        grew++;
        capacity = s.capacity;
      }
      // from the first growth on: the load is between 0.75 / 1.5 and 0.75, so 16-byte slots cost 21 to 32 bytes
      if (grew > 0) worst = Math.max(worst, s.bytes / s.entries);
    }
  });
  const s = tbl.cacheStats()!;
  assert.equal(s.entries, N);
  assert.ok(grew >= 10, `the table grew ${grew} times`);
  assert.ok(worst <= 32.1 && worst > 20, `worst slot bytes per entry ${worst.toFixed(1)}: ${JSON.stringify(s)}`);
  // and every entry is still found after all that rehashing
  const before = s.hits;
  env.read((r) => {
    for (let i = 0; i < N; i++) assert.equal(r.get(tbl, k16(i))?.length, `v${i}`.length);
  });
  assert.equal(tbl.cacheStats()!.hits - before, N);
});

test("a parked reader reads from the tree; a reset reader refuses reads; renew() reads the new snapshot through the cache", () => {
  using t = tempEnv();
  const env = t.env;
  const tbl: Bin = env.table("t", { cache: true });
  const N = 50;
  const v = (gen: number, i: number) => val(`gen ${gen} key ${i} ${"x".repeat((gen * 7 + i) % 23)}`);
  env.write((x) => {
    for (let i = 0; i < N; i++) x.put(tbl, k16(i), v(1, i));
  });
  const differ = new Differ("parked reader");
  const r = env.beginRead();
  try {
    for (let i = 0; i < N; i++) differ.check(r, tbl, k16(i), "before park");
    env.write((x) => {
      for (let i = 0; i < N; i++) x.put(tbl, k16(i), v(2, i));
    });
    r.park();
    const s = tbl.cacheStats()!;
    for (let i = 0; i < N; i++) assert.deepEqual(r.get(tbl, k16(i)), v(1, i), "a parked reader keeps its snapshot");
    assert.equal(tbl.cacheStats()!.hits, s.hits, "a parked reader does not read through the cache");
    assert.equal(r.unpark(), true, "the snapshot was kept");
    for (let i = 0; i < N; i++) differ.check(r, tbl, k16(i), "after unpark");
    assert.ok(tbl.cacheStats()!.hits > s.hits, "an unparked reader reads through the cache again");
    // parked without autoUnpark: reads fail as they do without a cache
    r.park(false);
    assert.throws(() => r.getWithCount(tbl, k16(0)), MdbxError);
    assert.throws(() => r.get(tbl, k16(0)), MdbxError);
    r.unpark();
    assert.deepEqual(r.get(tbl, k16(0)), v(1, 0));

    // reset: the snapshot is released; a cached read must not answer from it
    r.reset();
    assert.throws(() => r.getWithCount(tbl, k16(0)), MdbxError);
    assert.throws(() => r.get(tbl, k16(0)), MdbxError, "a reset reader's cached read throws like the uncached one");
    env.write((x) => {
      for (let i = 0; i < N; i += 2) x.put(tbl, k16(i), v(3, i));
      x.del(tbl, k16(1));
    });
    r.renew();
    for (let i = 0; i < N; i++) {
      const want = i === 1 ? undefined : v(i % 2 === 0 ? 3 : 2, i);
      assert.deepEqual(r.get(tbl, k16(i)), want, `renewed reader, key ${i}`);
      differ.check(r, tbl, k16(i), "after renew");
    }
  } finally {
    r.end();
  }
  assert.equal(differ.mismatches, 0, differ.message());
});

test("a dropped cached table's handle throws and a re-created one starts empty; after close a cached read throws", () => {
  const dir = tempDir("turbomdbx-cache-");
  try {
    const env = open(path.join(dir, "db"), { sync: "lazy" });
    const d: Bin = env.table("d", { cache: true });
    env.write((x) => {
      for (let i = 0; i < 20; i++) x.put(d, k16(i), val(`old ${i}`));
    });
    env.read((r) => {
      for (let i = 0; i < 20; i++) r.get(d, k16(i)), r.get(d, k16(i));
    });
    assert.equal(d.cacheStats()!.entries, 20);
    env.write((x) => x.drop(d));
    assert.throws(() => env.read((r) => r.get(d, k16(1))), MdbxError, "the dropped table's handle is unusable");
    assert.throws(() => env.write((x) => x.put(d, k16(1), val("x"))), MdbxError);
    const d2: Bin = env.table("d", { cache: true });
    assert.notEqual(d2, d);
    const s = d2.cacheStats()!;
    assert.equal(s.entries + s.hits + s.misses, 0, "a re-created table starts with an empty cache");
    env.read((r) => {
      for (let i = 0; i < 20; i++) assert.equal(r.get(d2, k16(i)), undefined);
    });
    env.write((x) => {
      for (let i = 0; i < 10; i++) x.put(d2, k16(i), val(`new ${i}`));
    });
    const differ = new Differ("re-created table");
    env.read((r) => {
      for (let i = 0; i < 20; i++) {
        assert.deepEqual(r.get(d2, k16(i)), i < 10 ? val(`new ${i}`) : undefined);
        differ.check(r, d2, k16(i), "re-created");
      }
    });
    assert.equal(differ.mismatches, 0, differ.message());
    assert.ok(d2.cacheStats()!.hits > 0);

    // close: the reader's cached reads throw; values read before stay (they are copies)
    const r = env.beginRead();
    const before = r.get(d2, k16(3));
    assert.deepEqual(r.get(d2, k16(3)), before);
    env.close();
    assert.throws(() => r.get(d2, k16(3)), MdbxError);
    assert.throws(() => env.read((x) => x.get(d2, k16(3))), MdbxError);
    assert.deepEqual(before, val("new 3"));
    // reopened: a new cache, the same answers
    const env2 = open(path.join(dir, "db"), { sync: "lazy" });
    try {
      const d3: Bin = env2.table("d", { cache: true });
      env2.read((x) => {
        assert.deepEqual(x.get(d3, k16(3)), val("new 3"));
        assert.deepEqual(x.get(d3, k16(3)), val("new 3"));
      });
      assert.equal(d3.cacheStats()!.hits, 1);
    } finally {
      env2.close();
    }
  } finally {
    removeDir(dir);
  }
});

// ---------------------------------------------------------------------------
// Another process writes
// ---------------------------------------------------------------------------

/** Runs test/children/<script> in this runtime; resolves with its exit code, stdout and stderr. */
function runChild(
  script: string,
  args: string[],
): { done: Promise<{ code: number | null; out: string; err: string }> } {
  const file = fileURLToPath(new URL(`./children/${script}`, import.meta.url));
  const { cmd, args: argv } = runtimeCommand(file, args);
  const proc = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  proc.stdout!.setEncoding("utf8");
  proc.stderr!.setEncoding("utf8");
  proc.stdout!.on("data", (s: string) => out += s);
  proc.stderr!.on("data", (s: string) => err += s);
  return { done: new Promise((resolve) => proc.on("close", (code) => resolve({ code, out, err }))) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("a reader's cached get() follows another process's commits exactly (fresh and long-lived readers)", async () => {
  const seed = seedFor(5);
  const rng = prng(seed);
  const N = 1500;
  const keys = makeKeys(N, seed);
  const dir = tempDir("turbomdbx-cache-mp-");
  const env = open(path.join(dir, "db"), { sync: "lazy" });
  const long: { txn: ReadTxn; until: number }[] = [];
  try {
    const tbl: Bin = env.table("t", { cache: true });
    env.write((x) => {
      for (let i = 0; i < N; i++) x.put(tbl, keys[i], makeValue(rng, valueSize(rng), 0));
    });
    const differ = new Differ(`seed ${seed} (replay: TURBOMDBX_SEED=${seed})`);
    const stamps = new Set<number>();
    const child = runChild("cache_writer.ts", [
      path.join(dir, "db"),
      "run",
      SOAK ? "30000" : "2500",
      String(seed),
      String(N),
    ]);
    let exited = false;
    const result = child.done.finally(() => exited = true);
    let rounds = 0, ownCommits = 0;
    const check = (txn: ReadTxn, where: string, n: number) => {
      for (let i = 0; i < WATCHED; i++) {
        const v = differ.check(txn, tbl, keys[i], `${where}, watched #${i}`);
        if (v !== undefined) stamps.add(stampOf(v));
      }
      for (let j = 0; j < n; j++) {
        const i = int(rng, 0, N - 1);
        differ.check(txn, tbl, keys[i], `${where}, #${i}`);
      }
    };
    while (!exited) {
      rounds++;
      const fresh = env.beginRead();
      try {
        check(fresh, `round ${rounds}, fresh reader @${fresh.id}`, 40);
      } finally {
        fresh.end();
      }
      // long-lived readers: begun at random moments, kept for a random while, checked every round
      const now = Date.now();
      for (const r of long) {
        if (now > r.until) r.txn.end();
        else check(r.txn, `round ${rounds}, long-lived reader @${r.txn.id}`, 10);
      }
      for (let j = long.length - 1; j >= 0; j--) if (!long[j].txn.isOpen) long.splice(j, 1);
      if (long.length < 3 && rng() < 0.2) long.push({ txn: env.beginRead(), until: now + int(rng, 20, 600) });
      // now and then this process commits too, interleaved with the other one's commits
      if (rng() < 0.05) {
        env.write((x) => {
          for (let j = 0; j < 5; j++) {
            const i = int(rng, WATCHED, N - 1);
            if (rng() < 0.7) x.put(tbl, keys[i], makeValue(rng, valueSize(rng), 1 << 30));
            else x.del(tbl, keys[i]);
          }
        });
        ownCommits++;
      }
      await tick();
    }
    const { code, out, err } = await result;
    assert.equal(code, 0, `the writer failed: ${err}`);
    const m = /^done (.*)$/m.exec(out);
    assert.ok(m, `no summary from the writer: ${out} ${err}`);
    const summary = JSON.parse(m[1]);
    const s = tbl.cacheStats()!;
    const info = ` (rounds ${rounds}, own commits ${ownCommits}, the writer's commits ${summary.commits}, ` +
      `defrag moved ${summary.defragMoved} pages there; distinct watched values seen ${stamps.size}; ` +
      `cache hits ${s.hits}, misses ${s.misses}, invalidations ${s.invalidations})`;
    if (process.env.TURBOMDBX_CACHE_VERBOSE) console.log(differ.message(info), summary);
    assert.equal(differ.mismatches, 0, differ.message(info));
    assert.equal(summary.mismatches, 0, `in the writer: ${summary.message}`);
    assert.ok(stamps.size >= 10, `this process hardly saw the other one's commits: ${differ.message(info)}`);
    assert.ok(s.invalidations > 0 && s.hits > 0, differ.message(info));
    // after the writer is gone: one more full comparison
    env.read((r) => {
      const present = new Map<string, Uint8Array>();
      for (const { key, value } of r.range(tbl)) present.set(hex(key), value);
      for (const k of keys) {
        const got = r.get(tbl, k), want = present.get(hex(k));
        if (!sameBytes(got, want)) differ.record(`at the end, ${hex(k)}`, want, got);
      }
    });
    assert.equal(differ.mismatches, 0, differ.message(info));
  } finally {
    for (const r of long) r.txn.end();
    env.close();
    removeDir(dir);
  }
}, { timeout: SOAK ? 600_000 : 60_000 });

test("another process dropping a cached table: this process goes on, and reads of that table fail as uncached ones do", async () => {
  const dir = tempDir("turbomdbx-cache-mp-");
  const env = open(path.join(dir, "db"), { sync: "lazy" });
  try {
    const d: Bin = env.table("d", { cache: true }), u: Bin = env.table("u", { cache: true });
    const plain: Bin = env.table("plain");
    env.write((x) => {
      for (let i = 0; i < 10; i++) x.put(d, k16(i), val(`d${i}`)), x.put(u, k16(i), val(`u${i}`));
    });
    env.read((r) => {
      for (let i = 0; i < 10; i++) r.get(d, k16(i)), r.get(d, k16(i)), r.get(u, k16(i)), r.get(u, k16(i));
    });
    assert.equal(d.cacheStats()!.entries, 10);
    const { code, out, err } = await runChild("cache_writer.ts", [path.join(dir, "db"), "drop", "d"]).done;
    assert.equal(code, 0, err);
    assert.equal(out.trim(), "dropped");
    // the other cached table and the environment keep working
    env.read((r) => {
      for (let i = 0; i < 10; i++) assert.deepEqual(r.get(u, k16(i)), val(`u${i}`));
    });
    env.write((x) => x.put(plain, k16(1), val("still writable")));
    env.write((x) => x.put(u, k16(1), val("u1 again")));
    env.read((r) => assert.deepEqual(r.get(u, k16(1)), val("u1 again")));
    // the dropped table: no answer from the cache, the same error as the uncached read
    assert.equal(d.cacheStats()!.entries, 0);
    env.read((r) => {
      let uncached: unknown, cached: unknown;
      try {
        uncached = r.getWithCount(d, k16(1));
      } catch (e) {
        uncached = e instanceof MdbxError ? e.codeName : e;
      }
      try {
        cached = r.get(d, k16(1));
      } catch (e) {
        cached = e instanceof MdbxError ? e.codeName : e;
      }
      assert.deepEqual(cached, uncached === undefined ? undefined : uncached);
      assert.notDeepEqual(cached, val("d1"));
    });
  } finally {
    env.close();
    removeDir(dir);
  }
});
