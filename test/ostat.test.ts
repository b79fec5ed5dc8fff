/**
 * Order statistics through the API (`txn.count`, `rank`, `at`, `sample`,
 * `range({ offset })`) against a model kept in JavaScript: a sorted list of
 * every key/value pair, changed alongside the database by a seeded workload of
 * bulk puts (splits), deletes of single entries and runs (merges), nested
 * transactions that commit or abort, aborted write transactions, and readers
 * pinned at older snapshots (each with its own copy of the model). Small pages
 * make the trees deep. Plain and dupsort tables; every answer in write
 * transactions too (their own writes counted). The file then passes the stock
 * mdbx_chk: nothing here changes the format.
 *
 * TURBOMDBX_SEED=<n> replays a run; TURBOMDBX_SOAK=1 runs longer.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import process from "node:process";
import {
  configureOrderStatistics,
  type Env,
  orderStatistics,
  type ReadTxn,
  type Table,
  type Txn,
  type WriteTxn,
} from "../mod.ts";
import { assertStockChk, tempEnv } from "./helpers.ts";
import { compareBytes, int, prng } from "./children/cache_data.ts";

const SOAK = process.env.TURBOMDBX_SOAK === "1";
const SEED = process.env.TURBOMDBX_SEED ? Number(process.env.TURBOMDBX_SEED) : Date.now() % 1_000_000_007;
const why = `seed ${SEED} (replay: TURBOMDBX_SEED=${SEED})`;

type Pair = [Uint8Array, Uint8Array];

function cmpPair(a: Pair, b: Pair, dup: boolean): number {
  const c = compareBytes(a[0], b[0]);
  return c !== 0 || !dup ? c : compareBytes(a[1], b[1]);
}

/** The sorted list of pairs a table should hold; a dupsort table has several values per key. */
class Model {
  pairs: Pair[] = [];
  constructor(readonly dup: boolean) {}
  clone(): Model {
    const m = new Model(this.dup);
    m.pairs = this.pairs.slice();
    return m;
  }
  /** Index of the first pair >= p (by key only when !dup, or with keyOnly). */
  lower(k: Uint8Array, v?: Uint8Array): number {
    let lo = 0, hi = this.pairs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const p = this.pairs[mid];
      const c = compareBytes(p[0], k) || (v === undefined ? 0 : compareBytes(p[1], v));
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  put(k: Uint8Array, v: Uint8Array): void {
    const i = this.dup ? this.lower(k, v) : this.lower(k);
    const here = this.pairs[i];
    if (here && cmpPair(here, [k, v], this.dup) === 0) {
      if (!this.dup) this.pairs[i] = [k, v];
      return;
    }
    if (!this.dup && here && compareBytes(here[0], k) === 0) this.pairs[i] = [k, v];
    else this.pairs.splice(i, 0, [k, v]);
  }
  delKey(k: Uint8Array): void {
    const i = this.lower(k);
    let j = i;
    while (j < this.pairs.length && compareBytes(this.pairs[j][0], k) === 0) j++;
    this.pairs.splice(i, j - i);
  }
  /** The distinct keys' first pairs. */
  firsts(): Pair[] {
    const out: Pair[] = [];
    for (const p of this.pairs) if (out.length === 0 || compareBytes(out[out.length - 1][0], p[0]) !== 0) out.push(p);
    return out;
  }
}

function key(n: number, len = 6): Uint8Array {
  const k = new Uint8Array(len);
  new DataView(k.buffer).setUint32(0, n);
  return k;
}

function bytesEq(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(compareBytes(a, b), 0, `${what}: ${Array.from(a)} vs ${Array.from(b)} (${why})`);
}

/** Every question of the API against the model, for this transaction. */
function verify(txn: Txn, t: Table<"binary", "binary">, m: Model, rng: () => number, where: string): void {
  const all = m.pairs, firsts = m.firsts();
  for (const unique of m.dup ? [false, true] : [false]) {
    const list = unique ? firsts : all;
    const o = unique ? { uniqueKeys: true } : {};
    assert.equal(txn.count(t, o), list.length, `${where}: count of all (${why})`);
    for (let i = 0; i < 8; i++) {
      // a bound: an existing key or a random one
      const probe = () => (list.length && rng() < 0.6 ? list[int(rng, 0, list.length - 1)][0] : key(int(rng, 0, 3000)));
      const a = probe(), b = probe();
      const below = (k: Uint8Array, le: boolean) =>
        list.filter((p) => {
          const c = compareBytes(p[0], k);
          return c < 0 || (le && c === 0);
        }).length;
      assert.equal(txn.rank(t, a, o), below(a, false), `${where}: rank (${why})`);
      const gt = rng() < 0.5, lte = rng() < 0.5;
      const lo = below(a, gt), hi = below(b, lte);
      const want = Math.max(0, hi - lo);
      const range = { [gt ? "gt" : "gte"]: a, [lte ? "lte" : "lt"]: b, ...o };
      assert.equal(txn.count(t, range), want, `${where}: count of a range (${why})`);
      // with offset and limit, as range() yields
      const offset = int(rng, 0, 5), limit = int(rng, 0, 50);
      assert.equal(txn.count(t, { ...range, offset, limit }), Math.max(0, Math.min(want - offset, limit)), where);
      // range({ offset }) by position against the model's slice, both directions
      const rev = rng() < 0.5;
      const got = [...txn.range(t, { ...range, offset, limit: 4, reverse: rev })];
      const slice = rev
        ? list.slice(lo, Math.max(lo, hi)).reverse().slice(offset, offset + 4)
        : list.slice(lo, Math.max(lo, hi)).slice(offset, offset + 4);
      assert.equal(got.length, slice.length, `${where}: range with offset ${offset} reverse ${rev} (${why})`);
      got.forEach((e, j) => {
        bytesEq(e.key, slice[j][0], `${where}: range offset key ${j}`);
        bytesEq(e.value, slice[j][1], `${where}: range offset value ${j}`);
      });
    }
    // ranks of (key, value) pairs, present and absent
    for (let i = 0; m.dup && !unique && list.length && i < 6; i++) {
      const [k, v0] = list[int(rng, 0, list.length - 1)];
      const v = v0.slice();
      if (rng() < 0.4) v[v.length - 1] ^= 1;
      const want = list.filter((p) => cmpPair(p, [k, v], true) < 0).length;
      assert.equal(txn.rank(t, k, { value: v }), want, `${where}: rank of a pair (${why})`);
    }
    // positions: both ends, past them, from the end, random
    const n = list.length;
    for (const i of [0, n - 1, n, -1, -n, -n - 1, int(rng, 0, n), int(rng, 0, n), -int(rng, 1, n + 1)]) {
      const e = txn.at(t, i, o);
      const j = i < 0 ? n + i : i;
      if (j < 0 || j >= n) {
        assert.equal(e, undefined, `${where}: at(${i}) of ${n} (${why})`);
        continue;
      }
      assert.ok(e, `${where}: at(${i}) of ${n} (${why})`);
      bytesEq(e.key, list[j][0], `${where}: at(${i}) key`);
      bytesEq(e.value, list[j][1], `${where}: at(${i}) value`);
    }
    // a sample: distinct, in order, inside the range, of the right size
    const k = int(rng, 0, 12);
    const s = txn.sample(t, k, { ...o, random: rng });
    assert.equal(s.length, Math.min(k, n), `${where}: sample size (${why})`);
    let last = -1;
    for (const e of s) {
      const idx = list.findIndex((p) => compareBytes(p[0], e.key) === 0 && compareBytes(p[1], e.value) === 0);
      assert.ok(idx > last, `${where}: sample entries are in the table, distinct and in order (${why})`);
      last = idx;
    }
  }
}

function changer(t: Table<"binary", "binary">, dupSort: boolean, rng: () => number) {
  return (txn: WriteTxn, m: Model, ops: number) => {
    for (let i = 0; i < ops; i++) {
      const r = rng();
      if (r < 0.6) {
        const base = int(rng, 0, dupSort ? 200 : 3000), run = int(rng, 1, 40);
        for (let j = 0; j < run; j++) {
          const k = key(dupSort ? base : base + j);
          const v = new Uint8Array(int(rng, 4, 14)).map(() => int(rng, 0, 255));
          txn.put(t, k, v);
          m.put(k, v);
        }
      } else {
        // delete a key (every value) or a run of keys
        const start = int(rng, 0, dupSort ? 200 : 3000), run = r < 0.85 ? 1 : int(rng, 5, 80);
        for (const e of [...txn.keys(t, { gte: key(start), limit: run })]) {
          txn.del(t, e);
          m.delKey(e);
        }
      }
    }
  };
}

function workload(env: Env, rounds: number, dupSort: boolean, seed: number): void {
  const rng = prng(seed);
  const t = env.table(dupSort ? "dups" : "plain", { dupSort });
  const model = new Model(dupSort);
  const pinned: { txn: ReadTxn; model: Model }[] = [];
  const change = changer(t, dupSort, rng);
  for (let round = 0; round < rounds; round++) {
    const where = `${t} round ${round}`;
    const w = env.beginWrite();
    const mw = model.clone();
    change(w, mw, int(rng, 1, round < 3 ? 25 : 6));
    if (rng() < 0.5) verify(w, t, mw, rng, `${where} write txn`);
    if (rng() < 0.4) {
      const nested = w.begin();
      const mn = mw.clone();
      change(nested, mn, int(rng, 1, 5));
      verify(nested, t, mn, rng, `${where} nested txn`);
      if (rng() < 0.5) {
        nested.commit();
        mw.pairs = mn.pairs;
      } else nested.abort();
      verify(w, t, mw, rng, `${where} after nested`);
    }
    if (rng() < 0.1) w.abort();
    else {
      w.commit();
      model.pairs = mw.pairs;
    }
    const r = env.beginRead();
    verify(r, t, model, rng, `${where} committed`);
    if (rng() < 0.3 && pinned.length < 3) pinned.push({ txn: r, model: model.clone() });
    else r.abort();
    if (pinned.length && rng() < 0.5) {
      const i = int(rng, 0, pinned.length - 1);
      verify(pinned[i].txn, t, pinned[i].model, rng, `${where} pinned snapshot`);
      if (rng() < 0.3) pinned.splice(i, 1)[0].txn.abort();
    }
  }
  for (const p of pinned) p.txn.abort();
}

test("count, rank, at, sample and range offsets match a model over splits, merges, nested and pinned snapshots (plain table)", () => {
  using db = tempEnv({ pageSize: 512 });
  workload(db.env, SOAK ? 300 : 40, false, SEED);
  db.env.read((txn) => {
    const st = orderStatistics(txn);
    assert.ok(st.hits > 0 && st.entries > 0, `the memo was used: ${JSON.stringify(st)}`);
  });
  db.env.close();
  assertStockChk(db.path);
});

test("count, rank, at, sample and range offsets match a model on a dupsort table (values and unique keys)", () => {
  using db = tempEnv({ pageSize: 512 });
  workload(db.env, SOAK ? 300 : 40, true, SEED + 1);
  db.env.close();
  assertStockChk(db.path);
});

test("a tiny memo budget turns the memo over and every answer stays exact", () => {
  using db = tempEnv({ pageSize: 512 });
  db.env.read((txn) => configureOrderStatistics(txn, { budget: 1, clear: true }));
  workload(db.env, SOAK ? 100 : 15, false, SEED + 2);
  db.env.read((txn) => assert.ok(orderStatistics(txn).turnovers > 0, "turnovers"));
});

test("rebuild switches: counts stay exact on the new file, for a reader pinned on the old one, and with writes during the copy", async () => {
  using db = tempEnv({ pageSize: 512 }, "turbomdbx-ostat-rebuild-");
  const { env } = db;
  const rng = prng(SEED + 4);
  for (const dupSort of [false, true]) {
    const t = env.table(dupSort ? "dups" : "plain", { dupSort });
    const model = new Model(dupSort);
    const change = changer(t, dupSort, rng);
    for (let i = 0; i < 3; i++) env.write((w) => change(w, model, 20));
    env.read((txn) => verify(txn, t, model, rng, `${t} before the rebuilds`)); // memo warm on the first file
    for (let r = 0; r < 2; r++) {
      const old = env.beginRead(), oldModel = model.clone();
      const p = env.rebuild();
      for (let i = 0; i < 3; i++) env.write((w) => change(w, model, 5)); // while the copy runs
      await p;
      env.read((txn) => verify(txn, t, model, rng, `${t} after rebuild ${r}`));
      verify(old, t, oldModel, rng, `${t} pinned on the file before rebuild ${r}`);
      old.end();
      env.write((w) => {
        change(w, model, 5);
        verify(w, t, model, rng, `${t} write txn after rebuild ${r}`);
      });
      env.read((txn) => verify(txn, t, model, rng, `${t} committed after rebuild ${r}`));
    }
  }
  env.close();
  assertStockChk(db.path);
});

test("count() gives what walking the range gives, for every option of range()", () => {
  using db = tempEnv();
  const t = db.env.table("t", { keys: "string", values: "string" });
  db.env.write((txn) => {
    for (let i = 0; i < 5000; i++) txn.put(t, `k${String(i).padStart(5, "0")}`, `v${i}`);
  });
  db.env.read((txn) => {
    const cases = [
      {},
      { gte: "k01000" },
      { gt: "k01000", lt: "k02000" },
      { gte: "k01000", lte: "k02000", reverse: true },
      { prefix: "k012" },
      { prefix: "k012", gt: "k01234" },
      { offset: 10, limit: 20 },
      { gte: "zzz" },
      { lt: "a" },
      { gte: "k03000", lt: "k02000" },
    ];
    for (const o of cases) assert.equal(txn.count(t, o), txn._countWalk(t, o), JSON.stringify(o));
  });
});

test("order statistics refuse bad arguments with typed errors", () => {
  using db = tempEnv();
  const t = db.env.table("t");
  db.env.read((txn) => {
    assert.throws(() => txn.at(t, 1.5), RangeError);
    assert.throws(() => txn.at(t, Number.NaN), RangeError);
    assert.throws(() => txn.sample(t, -1), RangeError);
    assert.throws(() => txn.sample(t, 2, { random: 3 as unknown as () => number }), TypeError);
    assert.throws(() => txn.count(t, { offset: -1 }), RangeError);
    assert.throws(() => txn.count(t, { gte: new Uint8Array(1), gt: new Uint8Array(1) }), TypeError);
    assert.throws(() => txn.rank(t, 5 as unknown as Uint8Array), TypeError);
    assert.throws(() => txn.rank(t, new Uint8Array(1), { value: new Uint8Array(1) }), TypeError); // not dupSort
    assert.equal(txn.at(t, 0), undefined);
    assert.equal(txn.at(t, -1), undefined);
    assert.deepEqual(txn.sample(t, 3), []);
    assert.equal(txn.count(t), 0);
  });
});

test("sample() draws every entry about equally often", () => {
  using db = tempEnv();
  const t = db.env.table("t", { keys: "uint32" });
  db.env.write((txn) => {
    for (let i = 0; i < 20; i++) txn.put(t, i, new Uint8Array([i]));
  });
  const rng = prng(SEED + 3);
  const seen = new Array(20).fill(0);
  db.env.read((txn) => {
    for (let r = 0; r < 2000; r++) for (const e of txn.sample(t, 3, { random: rng })) seen[e.key as number]++;
  });
  // 6000 draws over 20 entries: 300 expected each; a fair sampler stays far inside [200, 400]
  for (const [i, c] of seen.entries()) assert.ok(c > 200 && c < 400, `entry ${i} drawn ${c} times (${why})`);
});

test("integer keys and integer dupsort values: ranks, pairs and positions follow the numeric order", () => {
  using db = tempEnv({ pageSize: 512 });
  const t = db.env.table("ints", { keys: "uint32", values: "uint32", dupSort: true });
  db.env.write((txn) => {
    for (let k = 0; k < 300; k++) for (let v = 0; v < (k % 7) * 40; v += 3) txn.put(t, k * 1000, v * 65537);
  });
  // the model: every (k, v) in numeric order
  const pairs: [number, number][] = [];
  for (let k = 0; k < 300; k++) for (let v = 0; v < (k % 7) * 40; v += 3) pairs.push([k * 1000, v * 65537]);
  db.env.read((txn) => {
    assert.equal(txn.count(t), pairs.length);
    const rng = prng(SEED + 5);
    for (let i = 0; i < 200; i++) {
      const j = int(rng, 0, pairs.length - 1), [k, v] = pairs[j];
      assert.equal(txn.rank(t, k, { value: v }), j, `rank of (${k}, ${v}) (${why})`);
      assert.equal(txn.rank(t, k, { value: v + 1 }), j + 1, `rank of (${k}, ${v + 1}) (${why})`);
      assert.equal(txn.rank(t, k), pairs.findIndex((p) => p[0] === k), `rank of ${k}`);
      const e = txn.at(t, j)!;
      assert.deepEqual([e.key, e.value], [k, v], `at(${j}) (${why})`);
    }
    assert.equal(txn.count(t, { uniqueKeys: true }), new Set(pairs.map((p) => p[0])).size);
  });
});
