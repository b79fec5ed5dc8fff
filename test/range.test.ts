import { test } from "./shim.ts";
import assert from "node:assert/strict";
import process from "node:process";
import type { RangeOptions } from "../mod.ts";
import { tempEnv, throwsMdbx } from "./helpers.ts";

const S = { keys: "string", values: "string" } as const;
const soak = process.env.TURBOMDBX_SOAK === "1";

type Pair = [key: string, value: string];

/**
 * The reference: what a range over sorted pairs must yield. ASCII keys, so
 * JavaScript's string order is libmdbx's byte order.
 */
function model(pairs: Pair[], o: RangeOptions<"string">): Pair[] {
  let r = pairs.filter(([k]) =>
    (o.gte === undefined || k >= o.gte) && (o.gt === undefined || k > o.gt) &&
    (o.lte === undefined || k <= o.lte) && (o.lt === undefined || k < o.lt) &&
    (o.prefix === undefined || k.startsWith(o.prefix as string))
  );
  if (o.uniqueKeys) r = r.filter(([k], i) => i === 0 || r[i - 1][0] !== k);
  if (o.reverse) {
    r = r.reverse();
    // one entry per key is the key's first value in either direction
    if (o.uniqueKeys) r = r.map(([k]) => pairs.find(([pk]) => pk === k)!);
  }
  return r.slice(o.offset ?? 0, o.limit === undefined ? undefined : (o.offset ?? 0) + o.limit);
}

function sortPairs(p: Pair[]): Pair[] {
  return p.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
}

/** Every combination of bounds, direction, limit and offset over a set of probe keys. */
function* combinations(probes: string[], prefixes: string[], limits: (number | undefined)[]) {
  const lowers: RangeOptions<"string">[] = [{}, ...probes.flatMap((p) => [{ gte: p }, { gt: p }])];
  const uppers: RangeOptions<"string">[] = [{}, ...probes.flatMap((p) => [{ lte: p }, { lt: p }])];
  const bounds = [
    ...lowers.flatMap((l) => uppers.map((u) => ({ ...l, ...u }))),
    ...prefixes.map((prefix) => ({ prefix })),
  ];
  for (const b of bounds) {
    for (const reverse of [false, true]) {
      for (const limit of limits) {
        for (const offset of [undefined, 0, 1, 4, 50]) {
          const o: RangeOptions<"string"> = { ...b, reverse };
          if (limit !== undefined) o.limit = limit;
          if (offset !== undefined) o.offset = offset;
          yield o;
        }
      }
    }
  }
}

test("range, keys, values and count agree with a sorted-array model for every combination of options", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  // keys with shared prefixes and gaps between them
  const pairs: Pair[] = [];
  for (const p of ["a", "ab", "abc", "b", "ba", "c"]) {
    for (let i = 0; i < 6; i += 2) pairs.push([`${p}/${i}`, `${p}:${i}`]);
  }
  sortPairs(pairs);
  t.env.write((x) => pairs.forEach(([k, v]) => x.put(tbl, k, v)));
  const probes = ["", "a", "a/2", "a/3", "ab/", "abc/4", "b", "ba/0", "c/4", "c/5", "d"];
  const prefixes = ["", "a", "ab", "abc/", "b/2", "c/4", "z", "a/1"];
  let n = 0;
  t.env.read((x) => {
    for (const o of combinations(probes, prefixes, [undefined, 0, 1, 3, 100])) {
      const want = model(pairs, o);
      const label = JSON.stringify(o);
      assert.deepEqual([...x.range(tbl, o)].map((e) => [e.key, e.value]), want, label);
      if (n % 7 === 0) {
        assert.deepEqual([...x.keys(tbl, o)], want.map((p) => p[0]), label);
        assert.deepEqual([...x.values(tbl, o)], want.map((p) => p[1]), label);
        assert.equal(x.count(tbl, o), want.length, label);
      }
      n++;
    }
  });
  assert.ok(n > 5000, `${n} combinations checked`);
});

test("ranges over a dupsort table agree with the model, with and without uniqueKeys", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { ...S, dupSort: true });
  const pairs: Pair[] = [];
  for (const k of ["a", "b", "c", "d", "e"]) {
    const n = k.charCodeAt(0) % 4 + 1; // 1 to 4 values per key
    for (let i = 0; i < n; i++) pairs.push([k, `${k}${i}`]);
  }
  sortPairs(pairs);
  t.env.write((x) => pairs.forEach(([k, v]) => x.put(tbl, k, v)));
  let n = 0;
  t.env.read((x) => {
    for (const o of combinations(["", "a", "b", "c", "cc", "e", "f"], ["b", "x"], [undefined, 1, 3])) {
      for (const uniqueKeys of [false, true]) {
        const oo = { ...o, uniqueKeys };
        const want = model(pairs, oo);
        const label = JSON.stringify(oo);
        assert.deepEqual([...x.range(tbl, oo)].map((e) => [e.key, e.value]), want, label);
        assert.equal(x.count(tbl, oo), want.length, label);
        n++;
      }
    }
    // keys() yields each key once unless asked otherwise; values() yields every value
    assert.deepEqual([...x.keys(tbl)], ["a", "b", "c", "d", "e"]);
    assert.deepEqual([...x.keys(tbl, { reverse: true, limit: 2 })], ["e", "d"]);
    assert.deepEqual([...x.keys(tbl, { uniqueKeys: false })], pairs.map((p) => p[0]));
    assert.deepEqual([...x.values(tbl)], pairs.map((p) => p[1]));
  });
  assert.ok(n > 1000, `${n} combinations checked`);
});

test("dups yields one key's values in order or reverse, with limit and offset", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { keys: "string", values: "uint32", dupSort: true });
  t.env.write((x) => {
    for (let i = 0; i < 100; i++) x.put(tbl, "k", i * 3);
    x.put(tbl, "j", 1);
    x.put(tbl, "l", 2);
  });
  const all = Array.from({ length: 100 }, (_, i) => i * 3);
  t.env.read((x) => {
    assert.deepEqual([...x.dups(tbl, "k")], all);
    assert.deepEqual([...x.dups(tbl, "k", { reverse: true })], [...all].reverse());
    assert.deepEqual([...x.dups(tbl, "k", { offset: 10, limit: 5 })], all.slice(10, 15));
    assert.deepEqual([...x.dups(tbl, "k", { reverse: true, offset: 95 })], [12, 9, 6, 3, 0]);
    assert.deepEqual([...x.dups(tbl, "j")], [1]);
    assert.deepEqual([...x.dups(tbl, "missing")], []);
    assert.deepEqual([...x.dups(tbl, "k", { limit: 0 })], []);
  });
});

test("ranges over integer keys use numeric bounds", () => {
  using t = tempEnv();
  const u = t.env.table("u", { keys: "uint32", values: "uint32" });
  const b = t.env.table("b", { keys: "bigint", values: "string" });
  const keys = [1, 2, 9, 10, 255, 256, 65535, 65536, 2 ** 31, 2 ** 32 - 1];
  t.env.write((x) => {
    keys.forEach((k) => x.put(u, k, k));
    keys.forEach((k) => x.put(b, BigInt(k) << 20n, String(k)));
  });
  t.env.read((x) => {
    assert.deepEqual([...x.keys(u, { gte: 9, lt: 256 })], [9, 10, 255]);
    assert.deepEqual([...x.keys(u, { gt: 10, lte: 65536, reverse: true })], [65536, 65535, 256, 255]);
    assert.deepEqual([...x.values(u, { gt: 2 ** 31 })], [2 ** 32 - 1]);
    assert.deepEqual([...x.keys(b, { gte: 256n << 20n, limit: 2 })], [256n << 20n, 65535n << 20n]);
    assert.deepEqual([...x.values(b, { lt: 10n << 20n, reverse: true })], ["9", "2", "1"]);
  });
});

test("ranges over reverseKeys tables follow the table's order", () => {
  using t = tempEnv();
  const tbl = t.env.table("r", { ...S, reverseKeys: true });
  t.env.write((x) => ["xa", "yb", "za", "ab", "zc"].forEach((k) => x.put(tbl, k, k)));
  t.env.read((x) => {
    assert.deepEqual([...x.keys(tbl)], ["xa", "za", "ab", "yb", "zc"]);
    assert.deepEqual([...x.keys(tbl, { gte: "ya", lt: "yb" })], ["za", "ab"], "bounds compare from the last byte too");
    assert.deepEqual([...x.keys(tbl, { reverse: true, limit: 2 })], ["zc", "yb"]);
  });
});

test("prefix with gte/gt/lte/lt yields the keys under the prefix within the bounds, in every combination", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  const pairs: Pair[] = [];
  for (const p of ["a", "ab", "abc", "b", "ba", "c"]) {
    for (let i = 0; i < 6; i += 2) pairs.push([`${p}/${i}`, `${p}:${i}`]);
  }
  sortPairs(pairs);
  t.env.write((x) => pairs.forEach(([k, v]) => x.put(tbl, k, v)));
  const probes = ["", "a", "a/2", "a/3", "ab", "ab/", "ab/2", "abc/4", "b", "ba/0", "c/4", "d"];
  const lowers: RangeOptions<"string">[] = [{}, ...probes.flatMap((p) => [{ gte: p }, { gt: p }])];
  const uppers: RangeOptions<"string">[] = [{}, ...probes.flatMap((p) => [{ lte: p }, { lt: p }])];
  let n = 0, nonEmpty = 0;
  t.env.read((x) => {
    for (const prefix of ["", "a", "ab", "ab/", "b", "z"]) {
      for (const l of lowers) {
        for (const u of uppers) {
          for (const reverse of [false, true]) {
            const o: RangeOptions<"string"> = { prefix, ...l, ...u, reverse };
            if (n % 3 === 0) o.limit = 2;
            if (n % 5 === 0) o.offset = 1;
            const want = model(pairs, o);
            const label = JSON.stringify(o);
            assert.deepEqual([...x.range(tbl, o)].map((e) => [e.key, e.value]), want, label);
            if (n % 11 === 0) assert.equal(x.count(tbl, o), want.length, label);
            if (want.length) nonEmpty++;
            n++;
          }
        }
      }
    }
  });
  assert.ok(n > 7000 && nonEmpty > 1000, `${n} combinations checked, ${nonEmpty} of them not empty`);
});

test("paging inside a relation prefix: gt the last key read (lt in reverse) reads every key once", () => {
  using t = tempEnv();
  const relations = t.env.table("relations");
  // <src 16B><dir 1B><type 2B><dst 16B>: src 1 and 2, both directions, 50 destinations each
  const key = (src: number, dir: number, dst: number) => {
    const k = new Uint8Array(35);
    k[15] = src;
    k[16] = dir;
    k[34] = dst;
    return k;
  };
  t.env.write((x) => {
    for (const src of [1, 2]) {
      for (const dir of [0, 1]) for (let d = 0; d < 50; d++) x.put(relations, key(src, dir, d), "");
    }
  });
  const prefix = key(1, 0, 0).subarray(0, 17); // <src 1><dir 0>
  for (const reverse of [false, true]) {
    const seen: number[] = [];
    t.env.read((x) => {
      let last: Uint8Array | undefined;
      for (;;) {
        const page = [
          ...x.keys(relations, { prefix, limit: 7, reverse, ...(last && (reverse ? { lt: last } : { gt: last })) }),
        ];
        if (page.length === 0) break;
        for (const k of page) {
          assert.deepEqual(k.subarray(0, 17), prefix, "every key is under the prefix");
          seen.push(k[34]);
        }
        last = page[page.length - 1];
      }
    });
    const all = Array.from({ length: 50 }, (_, i) => i);
    assert.deepEqual(seen, reverse ? all.reverse() : all);
  }
});

test("prefix on a reverseKeys table is a TypeError: keys that start alike are not neighbours there", () => {
  using t = tempEnv();
  const tbl = t.env.table("r", { ...S, reverseKeys: true });
  t.env.write((x) => ["ab", "xa", "ac", "za", "aa", "ba"].forEach((k) => x.put(tbl, k, k)));
  t.env.read((x) => {
    for (const o of [{ prefix: "a" }, { prefix: "a", reverse: true }, { prefix: "a", gte: "a" }]) {
      assert.throws(() => [...x.keys(tbl, o)], /prefix cannot select keys of table "r": it has reverseKeys/);
    }
    // what it used to answer, silently: ["aa"] forward and [] in reverse, where three keys start with "a"
    assert.deepEqual([...x.keys(tbl)].filter((k) => k.startsWith("a")), ["aa", "ab", "ac"]);
  });
});

test("a prefix made of 0xff bytes ranges to the end of the table in both directions", () => {
  using t = tempEnv();
  const tbl = t.env.table("b", { values: "string" });
  const keys = [[0xfe], [0xff], [0xff, 0x00], [0xff, 0xff], [0xff, 0xff, 0x01], [0xff, 0xff, 0xff]];
  t.env.write((x) => keys.forEach((k) => x.put(tbl, new Uint8Array(k), k.join(","))));
  t.env.read((x) => {
    const p = new Uint8Array([0xff, 0xff]);
    assert.deepEqual([...x.values(tbl, { prefix: p })], ["255,255", "255,255,1", "255,255,255"]);
    assert.deepEqual([...x.values(tbl, { prefix: p, reverse: true })], ["255,255,255", "255,255,1", "255,255"]);
    assert.deepEqual([...x.values(tbl, { prefix: new Uint8Array([0xff]), reverse: true, limit: 2 })], [
      "255,255,255",
      "255,255,1",
    ]);
  });
});

test("large entries make the batch buffer grow without losing or reordering anything", () => {
  using t = tempEnv({ geometry: { upper: "128MiB" } });
  const tbl = t.env.table("t", { keys: "uint32" });
  const value = (i: number) => {
    const size = i % 3 === 0 ? 100_000 + i : 10 + i; // 100 KB entries between small ones
    const v = new Uint8Array(size);
    v.fill(i & 0xff);
    v[0] = i >> 8;
    return v;
  };
  const n = 60;
  t.env.write((x) => {
    for (let i = 0; i < n; i++) x.put(tbl, i, value(i));
  });
  t.env.read((x) => {
    const check = (got: { key: number; value: Uint8Array }[], want: number[]) => {
      assert.deepEqual(got.map((e) => e.key), want);
      for (const e of got) assert.deepEqual(e.value, value(e.key), `value of ${e.key}`);
    };
    const all = Array.from({ length: n }, (_, i) => i);
    check([...x.range(tbl)], all);
    check([...x.range(tbl, { reverse: true })], [...all].reverse());
    check([...x.range(tbl, { gte: 5, limit: 20, offset: 3 })], all.slice(8, 28));
    assert.deepEqual([...x.values(tbl, { gt: 50 })].map((v) => v.length), all.slice(51).map((i) => value(i).length));
    assert.deepEqual([...x.keys(tbl)], all, "keys only never fetches the large values");
  });
});

test("long ranges cross batch boundaries exactly, with any limit", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "uint32" });
  const n = soak ? 200_000 : 12_000;
  t.env.write((x) => {
    for (let i = 0; i < n; i++) x.put(tbl, i, i ^ 0x5555, { append: true });
  });
  t.env.read((x) => {
    let i = 0;
    for (const e of x.range(tbl)) {
      assert.equal(e.key, i);
      assert.equal(e.value, i ^ 0x5555);
      i++;
    }
    assert.equal(i, n);
    for (const limit of [15, 16, 17, 80, 81, 337, 1361, 5000, n - 1]) {
      const keys = [...x.keys(tbl, { limit, offset: 7 })];
      assert.equal(keys.length, limit === n - 1 ? n - 7 : limit);
      assert.equal(keys[0], 7);
      assert.equal(keys[keys.length - 1], 7 + keys.length - 1);
    }
    assert.equal(x.count(tbl), n);
    assert.equal(x.count(tbl, { gte: 100, lt: 200 }), 100);
  });
});

test("invalid range options are errors", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  const u = t.env.table("u", { keys: "uint32" });
  t.env.write((x) => x.put(tbl, "k", "v"));
  t.env.read((x) => {
    assert.throws(() => [...x.range(tbl, { gte: "a", gt: "a" })], /at most one of gte\/gt/);
    assert.throws(() => [...x.range(tbl, { lte: "a", lt: "a" })], TypeError);
    assert.throws(() => [...x.range(u, { prefix: "a" })], /prefix needs binary or string keys; table "u" has uint32/);
    assert.throws(() => [...x.range(tbl, { prefix: "a", gte: 5 as never })], TypeError);
    assert.throws(() => [...x.range(tbl, { limit: -1 })], RangeError);
    assert.throws(() => [...x.range(tbl, { offset: 1.5 })], RangeError);
    assert.throws(() => [...x.range(tbl, { offset: -1 })], RangeError);
    assert.throws(() => [...x.range(tbl, { gte: 5 as never })], TypeError);
    assert.throws(() => x.count(tbl, { limit: NaN }), RangeError);
  });
});

test("breaking out of a range releases its cursor, so many abandoned loops leak nothing", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "uint32" });
  t.env.write((x) => {
    for (let i = 0; i < 1000; i++) x.put(tbl, i, i);
  });
  const w = t.env.beginWrite();
  const cursors = (w as unknown as { _c: { cursors: Set<unknown> } })._c.cursors;
  for (let i = 0; i < 10_000; i++) {
    for (const e of w.range(tbl, { gte: i % 1000 })) {
      if (e.key >= 0) break;
    }
  }
  assert.equal(cursors.size, 0, "every cursor was closed");
  w.put(tbl, 5000, 5000);
  w.commit();
  assert.equal(t.env.read((x) => x.get(tbl, 5000)), 5000);
});

test("an exception thrown inside a range loop releases its cursor too", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "uint32" });
  t.env.write((x) => {
    for (let i = 0; i < 100; i++) x.put(tbl, i, i);
  });
  t.env.read((x) => {
    const cursors = (x as unknown as { _c: { cursors: Set<unknown> } })._c.cursors;
    for (let i = 0; i < 1000; i++) {
      assert.throws(() => {
        for (const e of x.range(tbl)) if (e.key === 50) throw new Error("stop");
      }, /stop/);
    }
    assert.equal(cursors.size, 0);
    // an iterator that is closed by return() releases its cursor as well
    const it = x.range(tbl);
    it.next();
    assert.equal(cursors.size, 1);
    it.return!(undefined);
    assert.equal(cursors.size, 0);
  });
});

test("an iterator whose transaction ended throws MDBX_BAD_TXN instead of yielding more", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "uint32" });
  t.env.write((x) => {
    for (let i = 0; i < 100; i++) x.put(tbl, i, i);
  });
  const r = t.env.beginRead();
  const started = r.range(tbl);
  assert.equal(started.next().value!.key, 0);
  const fresh = r.keys(tbl);
  r.end();
  throwsMdbx(() => started.next(), "MDBX_BAD_TXN", /has ended/);
  throwsMdbx(() => fresh.next(), "MDBX_BAD_TXN");
});

test("a write transaction's range sees its own uncommitted writes", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "b", "committed"));
  t.env.write((x) => {
    x.put(tbl, "a", "pending");
    x.del(tbl, "b");
    x.put(tbl, "c", "pending");
    assert.deepEqual([...x.keys(tbl)], ["a", "c"]);
  });
});

test("the range of an empty table, or an empty range, yields nothing", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.read((x) => {
    assert.deepEqual([...x.range(tbl)], []);
    assert.deepEqual([...x.range(tbl, { reverse: true })], []);
    assert.equal(x.count(tbl), 0);
  });
  t.env.write((x) => x.put(tbl, "m", "v"));
  t.env.read((x) => {
    assert.deepEqual([...x.range(tbl, { gt: "m" })], []);
    assert.deepEqual([...x.range(tbl, { gte: "n", lte: "a" })], [], "lower bound above the upper bound");
    assert.deepEqual([...x.range(tbl, { gte: "m", lt: "m" })], []);
    assert.deepEqual([...x.range(tbl, { gte: "m", lte: "m" })].map((e) => e.key), ["m"]);
  });
});
