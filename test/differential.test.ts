/**
 * Differential test: long random sequences of operations run against turbomdbx
 * and against an in-memory model (sorted maps of hex keys), and every read is
 * compared. Nested write transactions commit or abort, top-level ones commit or
 * abort, an older read snapshot is kept and re-checked while writes go on, and
 * the environment is closed and re-opened several times with a full comparison.
 *
 * TURBOMDBX_SEED=<n> replays one run; TURBOMDBX_SOAK=1 runs far more operations.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as path from "node:path";
import {
  type Env,
  ErrorCode,
  MdbxError,
  open,
  type RangeOptions,
  type ReadTxn,
  type Table,
  type WriteTxn,
} from "../mod.ts";
import { removeDir, tempDir } from "./helpers.ts";
import { prng } from "./children/cache_data.ts";

const SOAK = process.env.TURBOMDBX_SOAK === "1";
const SEED_ENV = process.env.TURBOMDBX_SEED;

// Hex strings sort like the bytes they encode; Buffer's native codec keeps large values cheap.
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");
const unhex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

/** A plain table's model: hex key -> hex value, with a lazily sorted key list. */
class PlainModel {
  map = new Map<string, string>();
  #sorted: string[] | null = null;
  sorted(): string[] {
    return this.#sorted ??= [...this.map.keys()].sort();
  }
  set(k: string, v: string): void {
    if (!this.map.has(k)) this.#sorted = null;
    this.map.set(k, v);
  }
  delete(k: string): boolean {
    this.#sorted = null;
    return this.map.delete(k);
  }
  clone(): PlainModel {
    const m = new PlainModel();
    m.map = new Map(this.map);
    return m;
  }
}

/** A dupsort table's model: hex key -> sorted hex values. */
class DupModel {
  map = new Map<string, string[]>();
  #sorted: string[] | null = null;
  sorted(): string[] {
    return this.#sorted ??= [...this.map.keys()].sort();
  }
  add(k: string, v: string): boolean {
    const vs = this.map.get(k);
    if (!vs) {
      this.map.set(k, [v]);
      this.#sorted = null;
      return true;
    }
    if (vs.includes(v)) return false;
    vs.push(v);
    vs.sort();
    return true;
  }
  delete(k: string, v?: string): boolean {
    const vs = this.map.get(k);
    if (!vs) return false;
    if (v === undefined) {
      this.map.delete(k);
      this.#sorted = null;
      return true;
    }
    const i = vs.indexOf(v);
    if (i < 0) return false;
    vs.splice(i, 1);
    if (vs.length === 0) {
      this.map.delete(k);
      this.#sorted = null;
    }
    return true;
  }
  clone(): DupModel {
    const m = new DupModel();
    for (const [k, vs] of this.map) m.map.set(k, [...vs]);
    return m;
  }
}

interface Model {
  plain: PlainModel;
  dups: DupModel;
}
const cloneModel = (m: Model): Model => ({ plain: m.plain.clone(), dups: m.dups.clone() });

/** The keys of `sorted` that a range selects, in iteration order, before offset/limit. */
function selectKeys(sorted: string[], o: RangeOptions<"binary">): string[] {
  const h = (x: unknown) => hex(x as Uint8Array);
  let keys = sorted;
  if (o.prefix !== undefined) {
    const p = h(o.prefix);
    keys = keys.filter((k) => k.startsWith(p));
  }
  if (o.gte !== undefined) keys = keys.filter((k) => k >= h(o.gte));
  if (o.gt !== undefined) keys = keys.filter((k) => k > h(o.gt));
  if (o.lte !== undefined) keys = keys.filter((k) => k <= h(o.lte));
  if (o.lt !== undefined) keys = keys.filter((k) => k < h(o.lt));
  return o.reverse ? keys.toReversed() : keys;
}

function window<T>(items: T[], o: RangeOptions<"binary">): T[] {
  const from = o.offset ?? 0;
  return items.slice(from, o.limit === undefined ? undefined : from + o.limit);
}

/** One run: `ops` random operations from `seed`, with `reopens` close/open cycles. */
function runDifferential(seed: number, ops: number, reopens: number): void {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(a: readonly T[]) => a[int(a.length)];
  const chance = (p: number) => rnd() < p;

  // Keys over a small alphabet (0x00 and 0xff included) collide often and share prefixes.
  const ALPHA = [0x00, 0x01, 0x41, 0x42, 0x7f, 0xfe, 0xff];
  const randKey = (maxLen = 4) => {
    const n = chance(0.01) ? 0 : 1 + int(maxLen);
    return Uint8Array.from({ length: n }, () => pick(ALPHA));
  };
  const randValue = () => {
    const r = rnd();
    const n = r < 0.05 ? 0 : r < 0.9 ? 1 + int(40) : r < 0.97 ? 100 + int(2000) : 3000 + int(20000);
    const v = new Uint8Array(n);
    for (let i = 0; i < n; i++) v[i] = int(256);
    return v;
  };
  const randDupValue = () => Uint8Array.from({ length: 1 + int(3) }, () => pick(ALPHA));
  const randRange = (): RangeOptions<"binary"> => {
    const o: RangeOptions<"binary"> = {};
    const shape = int(6);
    if (shape === 1) o.prefix = randKey(2);
    if (shape >= 2) {
      if (chance(0.7)) o[chance(0.5) ? "gte" : "gt"] = randKey();
      if (chance(0.7)) o[chance(0.5) ? "lte" : "lt"] = randKey();
    }
    if (chance(0.4)) o.reverse = true;
    if (chance(0.3)) o.limit = int(12);
    if (chance(0.3)) o.offset = int(8);
    return o;
  };

  // Small pages give deep trees, frequent splits and merges, and large values from a few hundred bytes.
  const pageSize = pick([256, 1024, 4096, 4096, 16384]);

  const dir = tempDir("turbomdbx-diff-");
  const dbPath = path.join(dir, "db");
  let step = 0;
  let where = "";
  const ctx = () => `seed ${seed} (replay: TURBOMDBX_SEED=${seed}), page size ${pageSize}, op ${step}/${ops}, ${where}`;
  const eq = (actual: unknown, expected: unknown, what: string) => {
    try {
      assert.deepStrictEqual(actual, expected);
    } catch (e) {
      throw new Error(`${what} differs from the model; ${ctx()}\n${(e as Error).message}`);
    }
  };

  let committed: Model = { plain: new PlainModel(), dups: new DupModel() };
  let env: Env;
  let plain: Table<"binary", "binary">;
  let dups: Table<"binary", "binary">;
  // The plain model is mirrored by two more tables with a get() cache (unbounded, and
  // small enough to evict): every write goes to all three, every get() is compared on all three.
  let plains: Table<"binary", "binary">[];
  const openEnv = () => {
    env = open(dbPath, { sync: "nosync", pageSize, geometry: { upper: "1GiB" } });
    plain = env.table("plain");
    dups = env.table("dups", { dupSort: true });
    plains = [plain, env.table("cached", { cache: true }), env.table("bounded", { cache: { maxEntries: 32 } })];
  };
  // Cache counters summed over every open: proof that the cache paths were exercised.
  const totals = { hits: 0, invalidations: 0, evictions: 0 };
  const closeEnv = () => {
    if (!env?.isOpen) return;
    for (const t of plains.slice(1)) {
      const st = t.cacheStats()!;
      totals.hits += st.hits, totals.invalidations += st.invalidations, totals.evictions += st.evictions;
    }
    env.close();
  };

  /** Compares one random read of `txn` with model `m`. */
  const checkRead = (txn: ReadTxn | WriteTxn, m: Model) => {
    const r = int(10);
    if (r < 3) {
      const k = randKey();
      where = `get ${hex(k)}`;
      for (const t of plains) {
        const v = txn.get(t, k);
        eq(v === undefined ? undefined : hex(v), m.plain.map.get(hex(k)), `get from ${t}`);
        eq(txn.has(t, k), m.plain.map.has(hex(k)), `has in ${t}`);
      }
      const ge = txn.getGreaterOrEqual(plain, k);
      const next = m.plain.sorted().find((x) => x >= hex(k));
      eq(
        ge && { key: hex(ge.key), value: hex(ge.value), exact: ge.exact },
        next === undefined ? undefined : { key: next, value: m.plain.map.get(next), exact: next === hex(k) },
        "getGreaterOrEqual",
      );
    } else if (r < 5) {
      const o = randRange();
      where = `plain range ${JSON.stringify(o, (_, v) => v instanceof Uint8Array ? hex(v) : v)}`;
      const got = [...txn.range(plain, o)].map((e) => [hex(e.key), hex(e.value)]);
      const want = window(selectKeys(m.plain.sorted(), o), o).map((k) => [k, m.plain.map.get(k)!]);
      eq(got, want, "plain range");
      if (chance(0.3)) eq(txn.count(plain, o), want.length, "plain count");
      if (chance(0.3)) eq([...txn.keys(plain, o)].map(hex), want.map((e) => e[0]), "plain keys");
    } else if (r < 7) {
      const k = randKey();
      where = `dups get ${hex(k)}`;
      const vs = m.dups.map.get(hex(k));
      const wc = txn.getWithCount(dups, k);
      eq(
        wc === undefined ? undefined : { value: hex(wc.value), count: wc.count },
        vs && { value: vs[0], count: vs.length },
        "dups getWithCount",
      );
      const reverse = chance(0.3);
      eq([...txn.dups(dups, k, { reverse })].map(hex), vs ? (reverse ? vs.toReversed() : vs) : [], "dups of a key");
    } else {
      const o = randRange();
      const unique = chance(0.3);
      where = `dups range ${JSON.stringify(o, (_, v) => v instanceof Uint8Array ? hex(v) : v)} unique ${unique}`;
      const keys = selectKeys(m.dups.sorted(), o);
      let want: string[][];
      if (unique) {
        want = window(keys.map((k) => [k, m.dups.map.get(k)![0]]), o);
      } else {
        const all = keys.flatMap((k) => {
          const vs = m.dups.map.get(k)!;
          return (o.reverse ? vs.toReversed() : vs).map((v) => [k, v]);
        });
        want = window(all, o);
      }
      const got = [...txn.range(dups, { ...o, uniqueKeys: unique })].map((e) => [hex(e.key), hex(e.value)]);
      eq(got, want, "dups range");
    }
  };

  /** Compares the whole content of both tables with `m`. */
  const checkAll = (txn: ReadTxn | WriteTxn, m: Model, label: string) => {
    where = label;
    eq(
      [...txn.range(plain)].map((e) => [hex(e.key), hex(e.value)]),
      m.plain.sorted().map((k) => [k, m.plain.map.get(k)!]),
      "whole plain table",
    );
    eq(
      [...txn.range(dups)].map((e) => [hex(e.key), hex(e.value)]),
      m.dups.sorted().flatMap((k) => m.dups.map.get(k)!.map((v) => [k, v])),
      "whole dups table",
    );
    eq(txn.stat(plain).entries, m.plain.map.size, "plain entry count");
    for (const t of plains.slice(1)) {
      // twice: the first pass fills the caches, the second answers from them
      for (let pass = 0; pass < 2; pass++) {
        for (const [k, v] of m.plain.map) {
          const got = txn.get(t, unhex(k));
          if (got === undefined || hex(got) !== v) eq(got && hex(got), v, `get ${k} from ${t} (pass ${pass})`);
        }
      }
      eq(txn.stat(t).entries, m.plain.map.size, `entry count of ${t}`);
    }
  };

  /** One random write (or read) in `txn`, mirrored in `m`. */
  const writeOp = (txn: WriteTxn, m: Model) => {
    const r = int(20);
    if (r < 5) {
      const k = randKey(), v = randValue();
      where = `put ${hex(k)} (${v.length} bytes)`;
      if (chance(0.15)) {
        const exists = m.plain.map.has(hex(k));
        for (const t of plains) {
          let refused = false;
          try {
            txn.put(t, k, v, { noOverwrite: true });
          } catch (e) {
            if (!(e instanceof MdbxError) || e.code !== ErrorCode.KEYEXIST) throw e;
            refused = true;
          }
          eq(refused, exists, `put noOverwrite refused (KEYEXIST) in ${t}`);
        }
        if (!exists) m.plain.set(hex(k), hex(v));
      } else {
        for (const t of plains) txn.put(t, k, v);
        m.plain.set(hex(k), hex(v));
      }
    } else if (r < 7) {
      const k = randKey();
      where = `del ${hex(k)}`;
      const existed = m.plain.delete(hex(k));
      for (const t of plains) eq(txn.del(t, k), existed, `del result in ${t}`);
    } else if (r < 9) {
      const k = randKey(), v = chance(0.2) ? undefined : randValue();
      where = `replace ${hex(k)}`;
      for (const t of plains) {
        const old = txn.replace(t, k, v);
        eq(old === undefined ? undefined : hex(old), m.plain.map.get(hex(k)), `replace's previous value in ${t}`);
      }
      if (v === undefined) m.plain.delete(hex(k));
      else m.plain.set(hex(k), hex(v));
    } else if (r < 12) {
      const k = randKey(), v = randDupValue();
      where = `dups put ${hex(k)} ${hex(v)}`;
      if (chance(0.2)) {
        const exists = m.dups.map.get(hex(k))?.includes(hex(v)) ?? false;
        try {
          txn.put(dups, k, v, { noDupData: true });
          eq(exists, false, "put noDupData succeeded");
          m.dups.add(hex(k), hex(v));
        } catch (e) {
          if (!(e instanceof MdbxError) || e.code !== ErrorCode.KEYEXIST) throw e;
          eq(exists, true, "put noDupData failed with KEYEXIST");
        }
      } else {
        txn.put(dups, k, v);
        m.dups.add(hex(k), hex(v));
      }
    } else if (r < 14) {
      const k = randKey();
      if (chance(0.5)) {
        where = `dups del ${hex(k)}`;
        eq(txn.del(dups, k), m.dups.delete(hex(k)), "dups del (all values)");
      } else {
        const vs = m.dups.map.get(hex(k));
        const v = vs && chance(0.8) ? unhex(pick(vs)) : randDupValue();
        where = `dups del ${hex(k)} ${hex(v)}`;
        eq(txn.del(dups, k, v), m.dups.delete(hex(k), hex(v)), "dups del (one value)");
      }
    } else if (r === 14 && chance(0.2)) {
      // bulk: many keys at once (splits, large pages)
      where = "bulk put";
      for (let i = 0; i < 50; i++) {
        const k = randKey(), v = randValue();
        for (const t of plains) txn.put(t, k, v);
        m.plain.set(hex(k), hex(v));
      }
    } else if (r === 15 && chance(0.1)) {
      // bulk delete of a range through the model's keys
      const o = randRange();
      where = "bulk delete";
      for (const k of selectKeys(m.plain.sorted(), o).slice(0, 40)) {
        for (const t of plains) eq(txn.del(t, unhex(k)), true, `bulk del of an existing key in ${t}`);
        m.plain.delete(k);
      }
    } else {
      checkRead(txn, m);
    }
  };

  let snapshot: { txn: ReadTxn; model: Model } | null = null;
  const reopenEvery = Math.max(1, Math.floor(ops / (reopens + 1)));
  openEnv();
  try {
    while (step < ops) {
      // A top-level write transaction with nested ones inside.
      const txn = env!.beginWrite();
      const stack: { txn: WriteTxn; model: Model }[] = [{ txn, model: cloneModel(committed) }];
      const len = 1 + int(60);
      for (let i = 0; i < len && step < ops; i++, step++) {
        const top = stack[stack.length - 1];
        const r = rnd();
        if (r < 0.03 && stack.length < 4) {
          where = "nested begin";
          stack.push({ txn: top.txn.begin(), model: cloneModel(top.model) });
        } else if (r < 0.06 && stack.length > 1) {
          stack.pop();
          const parent = stack[stack.length - 1];
          if (chance(0.5)) {
            where = "nested commit";
            top.txn.commit();
            parent.model = top.model;
          } else {
            where = "nested abort";
            top.txn.abort();
          }
          if (chance(0.3)) checkAll(parent.txn, parent.model, `whole content after ${where}`);
        } else {
          writeOp(top.txn, top.model);
        }
      }
      // End the top level: commit (children merge in order) or abort everything.
      const commit = chance(0.8);
      if (commit) {
        while (stack.length > 1) {
          const top = stack.pop()!;
          top.txn.commit();
          stack[stack.length - 1].model = top.model;
        }
        where = "commit";
        txn.commit();
        committed = stack[0].model;
      } else {
        where = "abort";
        txn.abort(); // aborts open children too
        eq(stack[stack.length - 1].txn.isOpen, false, "nested txn open after its parent aborted");
      }

      // Reads after the write: a fresh snapshot sees exactly the committed model.
      env!.read((r) => {
        for (let i = 0; i < 5; i++) checkRead(r, committed);
      });
      // An older snapshot keeps seeing its own state while writes go on.
      if (snapshot) {
        for (let i = 0; i < 3; i++) checkRead(snapshot.txn, snapshot.model);
        if (chance(0.2)) {
          checkAll(snapshot.txn, snapshot.model, "whole content of an old snapshot");
          snapshot.txn.end();
          snapshot = null;
        }
      } else if (chance(0.1)) {
        snapshot = { txn: env!.beginRead(), model: cloneModel(committed) };
      }

      if (Math.floor(step / reopenEvery) !== Math.floor((step - len) / reopenEvery) && step < ops) {
        where = "reopen";
        snapshot?.txn.end();
        snapshot = null;
        closeEnv();
        openEnv();
        env!.read((r) => checkAll(r, committed, "whole content after re-opening the environment"));
      }
    }
    env!.read((r) => checkAll(r, committed, "whole content at the end"));
    snapshot?.txn.end();
    closeEnv();
    openEnv();
    env!.read((r) => checkAll(r, committed, "whole content after the final re-open"));
    closeEnv();
    where = "cache counters";
    assert.ok(totals.hits > 0, `the get() caches answered nothing: ${JSON.stringify(totals)}`);
    assert.ok(totals.invalidations > 0, `no cache entry was ever invalidated: ${JSON.stringify(totals)}`);
    assert.ok(totals.evictions > 0, `the bounded cache never evicted: ${JSON.stringify(totals)}`);
  } catch (e) {
    if (e instanceof Error && !e.message.includes("TURBOMDBX_SEED")) {
      e.message = `${e.message}\n  at ${ctx()}`;
    }
    throw e;
  } finally {
    try {
      closeEnv();
    } finally {
      removeDir(dir);
    }
  }
}

const seeds = SEED_ENV !== undefined
  ? [Number(SEED_ENV) >>> 0]
  : Array.from({ length: SOAK ? 10 : 2 }, () => Math.floor(Math.random() * 2 ** 32));

for (const seed of seeds) {
  const ops = SOAK ? 50_000 : 2_500;
  test(
    `random put/del/get/range/replace/nested txns on plain, get()-cached and dupsort tables agree with an in-memory model (seed ${seed})`,
    () => {
      runDifferential(seed, ops, SOAK ? 20 : 4);
    },
    { timeout: SOAK ? 1_800_000 : 60_000 },
  );
}
