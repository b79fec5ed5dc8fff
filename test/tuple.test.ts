/**
 * Tuple keys (the FoundationDB tuple encoding) and the ordered scalar key
 * kinds: the spec's test vectors, byte order against a model comparator over
 * thousands of seeded random tuples, round trips, prefix scans (plain and in
 * concurrent transactions), int64/float64 order.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { packTuple, type Tuple, type TupleElement, unpackTuple } from "../mod.ts";
import { tempEnv } from "./helpers.ts";
import { compareBytes, int, prng } from "./children/cache_data.ts";

const SEED = Number(process.env.TURBOMDBX_SEED ?? 14014);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

// ------------------------------------------------------------------ the model

/** The natural order of tuple elements, as documented in docs/encodings.md: by type, then by value. */
function rank(v: TupleElement): number {
  if (v === null) return 0;
  if (v instanceof Uint8Array) return 1;
  if (typeof v === "string") return 2;
  if (Array.isArray(v)) return 3;
  if (typeof v === "bigint") return 4;
  if (typeof v === "number") return 5;
  return v ? 7 : 6;
}

/** Strings compare by Unicode code points (which is the order of their UTF-8 bytes). */
function compareStrings(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!), y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function compareElements(a: TupleElement, b: TupleElement): number {
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  if (a instanceof Uint8Array) return compareBytes(a, b as Uint8Array);
  if (typeof a === "string") return compareStrings(a, b as string);
  if (Array.isArray(a)) return compareTuples(a, b as readonly TupleElement[]);
  if (typeof a === "bigint") return a < (b as bigint) ? -1 : a > (b as bigint) ? 1 : 0;
  if (typeof a === "number") return a < (b as number) ? -1 : a > (b as number) ? 1 : 0;
  return 0;
}

function compareTuples(a: readonly TupleElement[], b: readonly TupleElement[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareElements(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

const STRINGS = ["", "a", "ab", "b", "\0", "a\0b", "é", "z", "😀", "\uffff", "follows", "likes", "A"];
const NUMBERS = [0, -0, 1, -1, 1.5, -1.5, 2, 255, 256, -256, 1e300, -1e300, 5e-324, Infinity, -Infinity, 2 ** 53];
const BIGINTS = [
  0n,
  1n,
  -1n,
  255n,
  256n,
  -255n,
  -256n,
  2n ** 64n,
  -(2n ** 64n),
  2n ** 63n - 1n,
  -(2n ** 63n),
  10n ** 30n,
];

function randomElement(rng: () => number, depth: number): TupleElement {
  switch (int(rng, 0, depth > 1 ? 7 : 8)) {
    case 0:
      return null;
    case 1:
      return Uint8Array.from({ length: int(rng, 0, 4) }, () => [0, 0xff, 1, 0x80][int(rng, 0, 3)]);
    case 2:
      return STRINGS[int(rng, 0, STRINGS.length - 1)];
    case 3:
      return rng() < 0.5 ? NUMBERS[int(rng, 0, NUMBERS.length - 1)] : (rng() - 0.5) * 10 ** int(rng, 0, 12);
    case 4:
      return rng() < 0.5 ? BIGINTS[int(rng, 0, BIGINTS.length - 1)] : BigInt(int(rng, -70000, 70000));
    case 5:
      return rng() < 0.5;
    case 6:
    case 7:
      return int(rng, -3, 3); // small numbers: many equal prefixes
    default:
      return randomTuple(rng, depth + 1, 3);
  }
}

function randomTuple(rng: () => number, depth = 0, max = 5): TupleElement[] {
  return Array.from({ length: int(rng, 0, max) }, () => randomElement(rng, depth));
}

/** What a tuple reads back as: -0 becomes 0; everything else as written. */
function normalized(t: readonly TupleElement[]): Tuple {
  return t.map((v) => (Array.isArray(v) ? normalized(v) : Object.is(v, -0) ? 0 : v)) as Tuple;
}

// ------------------------------------------------------------------ the spec

test("tuple encoding matches the FoundationDB tuple spec's test vectors", () => {
  const enc = new TextEncoder();
  assert.equal(hex(packTuple([enc.encode("foo\0bar")])), "01 66 6f 6f 00 ff 62 61 72 00");
  assert.equal(hex(packTuple(["F\u00d4O\u0000bar"])), "02 46 c3 94 4f 00 ff 62 61 72 00");
  assert.equal(hex(packTuple([-5551212n])), "11 ab 4b 93");
  assert.equal(hex(packTuple([0n, 1n, -1n])), "14 15 01 13 fe");
  assert.equal(hex(packTuple([null, false, true])), "00 26 27");
  assert.equal(hex(packTuple([[]])), "05 00");
  assert.equal(hex(packTuple([[null]])), "05 00 ff 00");
  assert.equal(hex(packTuple([1])), "21 bf f0 00 00 00 00 00 00");
  assert.equal(hex(packTuple([-1])), "21 40 0f ff ff ff ff ff ff");
  assert.equal(hex(packTuple([2n ** 64n])), "1d 09 01 00 00 00 00 00 00 00 00");
  assert.equal(hex(packTuple([-(2n ** 64n)])), "0b f6 fe ff ff ff ff ff ff ff ff");
  // the spec's 32-bit float vector (written by other bindings) reads as a number
  assert.deepEqual(unpackTuple(Uint8Array.from([0x20, 0x3d, 0xd7, 0xff, 0xff])), [-42]);
  assert.deepEqual(unpackTuple(Uint8Array.from([0x11, 0xab, 0x4b, 0x93])), [-5551212n]);
});

test("tuple elements read back with their types; -0 reads as 0; NaN and other types are refused", () => {
  const t = ["s", 1.5, 7, 7n, -(2n ** 70n), true, false, null, Uint8Array.from([0, 255, 0]), [1, [null, "x"], []]];
  assert.deepEqual(unpackTuple(packTuple(t as TupleElement[])), t);
  assert.deepEqual(unpackTuple(packTuple([-0])), [0]);
  assert.throws(() => packTuple([NaN]), (e) => e instanceof RangeError && /element 0 is NaN/.test(e.message));
  assert.throws(() => packTuple([1, [2, undefined as never]]), /element 1\.1 is undefined/);
  assert.throws(() => packTuple([{} as never]), TypeError);
  assert.throws(() => packTuple([new Date() as never]), /element 0 is Date/);
  assert.throws(() => unpackTuple(Uint8Array.from([0x02, 0x61])), /unterminated/);
  assert.throws(() => unpackTuple(Uint8Array.from([0x99])), /type code 0x99/);
});

test("the byte order of encoded tuples equals the model order over thousands of random tuples", () => {
  const rng = prng(SEED);
  const tuples = Array.from({ length: 4000 }, () => randomTuple(rng));
  const enc = tuples.map((t) => packTuple(t));
  let checked = 0;
  for (let i = 0; i < tuples.length; i++) {
    // round trip
    assert.deepEqual(unpackTuple(enc[i]), normalized(tuples[i]), `round trip of seed ${SEED} tuple ${i}`);
    // against a few random others and its neighbour
    for (const j of [i + 1, int(rng, 0, tuples.length - 1), int(rng, 0, tuples.length - 1)]) {
      if (j >= tuples.length) continue;
      const m = Math.sign(compareTuples(tuples[i], tuples[j])), b = Math.sign(compareBytes(enc[i], enc[j]));
      assert.equal(b, m, `seed ${SEED}: order of ${i} and ${j}: bytes ${hex(enc[i])} vs ${hex(enc[j])}`);
      checked++;
    }
    // the encoding of every leading part is a byte prefix of the whole
    const k = int(rng, 0, tuples[i].length);
    const p = packTuple(tuples[i].slice(0, k));
    assert.deepEqual(enc[i].subarray(0, p.length), p);
  }
  assert.ok(checked > 10_000, `${checked} pairs compared`);
  // and a full sort agrees
  const byModel = tuples.map((_, i) => i).sort((a, b) => compareTuples(tuples[a], tuples[b]) || a - b);
  const byBytes = tuples.map((_, i) => i).sort((a, b) => compareBytes(enc[a], enc[b]) || a - b);
  for (let i = 0; i < byModel.length; i++) {
    assert.equal(compareTuples(tuples[byModel[i]], tuples[byBytes[i]]), 0, `sorted position ${i}`);
  }
});

test("a tuple table keeps its keys in model order and scans tuple prefixes", () => {
  using t = tempEnv();
  const rel = t.env.table("rel", { keys: "tuple", values: "msgpack" });
  const rng = prng(SEED + 1);
  const keys: TupleElement[][] = [];
  t.env.write((txn) => {
    for (let i = 0; i < 3000; i++) {
      const k = [int(rng, 0, 9), ["in", "out"][int(rng, 0, 1)], ...randomTuple(rng, 1, 3)];
      keys.push(k);
      txn.put(rel, k, { i });
    }
  });
  const unique = new Map(keys.map((k) => [hex(packTuple(k)), normalized(k)]));
  const model = [...unique.values()].sort(compareTuples);
  t.env.read((txn) => {
    assert.deepEqual([...txn.keys(rel)], model);
    for (const src of [0, 3, 9]) {
      for (const dir of ["in", "out"]) {
        const want = model.filter((k) => k[0] === src && k[1] === dir);
        assert.deepEqual([...txn.keys(rel, { prefix: [src, dir] })], want, `prefix [${src}, ${dir}]`);
        assert.equal(txn.count(rel, { prefix: [src, dir] }), want.length);
        assert.deepEqual([...txn.keys(rel, { prefix: [src, dir], reverse: true })], want.reverse());
      }
      assert.deepEqual([...txn.keys(rel, { prefix: [src] })], model.filter((k) => k[0] === src));
    }
    // a page inside a prefix: the prefix and a bound together
    const all = model.filter((k) => k[0] === 4 && k[1] === "out");
    if (all.length > 2) {
      assert.deepEqual([...txn.keys(rel, { prefix: [4, "out"], gt: all[1] })], all.slice(2));
    }
    // bounds are tuples too
    assert.deepEqual([...txn.keys(rel, { gte: [2], lt: [3] })], model.filter((k) => k[0] === 2));
  });
});

test("concurrent transactions read tuple prefixes merged with their own writes", async () => {
  using t = tempEnv();
  const rel = t.env.table("rel", { keys: "tuple", values: "msgpack" });
  t.env.write((txn) => {
    for (const d of [1, 2, 3]) txn.put(rel, ["a", "out", d], d);
    txn.put(rel, ["a", "in", 9], 9);
    txn.put(rel, ["b", "out", 1], 1);
  });
  const tx = t.env.beginConcurrent();
  await tx.put(rel, ["a", "out", 2.5], 2.5);
  await tx.del(rel, ["a", "out", 1]);
  const keys: unknown[] = [];
  for await (const k of tx.keys(rel, { prefix: ["a", "out"] })) keys.push(k);
  assert.deepEqual(keys, [["a", "out", 2], ["a", "out", 2.5], ["a", "out", 3]]);
  assert.equal(await tx.count(rel, { prefix: ["a"] }), 4);
  await tx.commit();
  assert.deepEqual(t.env.read((txn) => [...txn.values(rel, { prefix: ["a", "out"] })]), [2, 2.5, 3]);
});

test("follow() takes a tuple prefix; the destination's place in the key is packTuple(prefix).length", () => {
  using t = tempEnv();
  const rel = t.env.table("rel", { keys: "tuple", values: "msgpack" });
  const objects = t.env.table("objects", { keys: "tuple", values: "msgpack" });
  t.env.write((txn) => {
    for (const id of [10, 20, 30]) txn.put(objects, [id], { id });
    for (const dst of [20, 30]) txn.put(rel, [10, "out", "follows", dst], null);
    txn.put(rel, [10, "out", "likes", 10], null);
  });
  t.env.read((txn) => {
    // ids are numbers: each encodes to 9 bytes, which is the key of [id] in `objects`
    const prefix = [10, "out", "follows"] as const;
    const at = packTuple(prefix).length;
    const got = [...txn.follow(rel, prefix, objects, { at, length: 9 })].map((e) => [e.key, e.value]);
    assert.deepEqual(got, [[[10, "out", "follows", 20], { id: 20 }], [[10, "out", "follows", 30], { id: 30 }]]);
  });
});

test("int64 keys sort in signed numeric order and read back as bigints", () => {
  using t = tempEnv();
  const tbl = t.env.table("i", { keys: "int64", values: "string" });
  const rng = prng(SEED + 2);
  const vals = new Set<bigint>([0n, -1n, 1n, -(2n ** 63n), 2n ** 63n - 1n, -(2n ** 32n), 2n ** 32n, -(2n ** 53n)]);
  for (let i = 0; i < 2000; i++) {
    const hi = BigInt(int(rng, -(2 ** 31), 2 ** 31 - 1)), lo = BigInt(int(rng, 0, 2 ** 32 - 1));
    vals.add(rng() < 0.5 ? (hi << 32n) | lo : BigInt(int(rng, -1000, 1000)));
  }
  t.env.write((txn) => {
    for (const v of vals) txn.put(tbl, v, String(v));
    txn.put(tbl, -7, "number -7"); // safe-integer numbers are accepted
  });
  vals.add(-7n);
  const model = [...vals].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  t.env.read((txn) => {
    assert.deepEqual([...txn.keys(tbl)], model);
    assert.equal(txn.get(tbl, -7n), "number -7");
    assert.deepEqual([...txn.keys(tbl, { gte: -1, lt: 2 })], model.filter((v) => v >= -1n && v < 2n));
  });
  t.env.write((txn) => {
    assert.throws(
      () => txn.put(tbl, 2n ** 63n, "x"),
      (e) => e instanceof RangeError && /64 signed bits/.test(e.message),
    );
    assert.throws(() => txn.put(tbl, 1.5, "x"), RangeError);
    assert.throws(() => txn.put(tbl, "1" as never, "x"), RangeError);
  });
});

test("float64 keys sort in numeric order, from -Infinity to Infinity; NaN is refused", () => {
  using t = tempEnv();
  const tbl = t.env.table("f", { keys: "float64", values: "uint32" });
  const rng = prng(SEED + 3);
  const vals = new Set<number>([0, -Infinity, Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, 1e308, -1e308, 0.1]);
  for (let i = 0; i < 2000; i++) vals.add((rng() - 0.5) * 10 ** int(rng, -20, 20));
  t.env.write((txn) => {
    for (const v of vals) txn.put(tbl, v, 1);
    txn.put(tbl, -0, 2); // the same key as 0
  });
  const model = [...vals].sort((a, b) => a - b);
  t.env.read((txn) => {
    assert.deepEqual([...txn.keys(tbl)], model);
    assert.equal(txn.get(tbl, 0), 2);
    assert.deepEqual([...txn.keys(tbl, { gt: -1, lte: 1 })], model.filter((v) => v > -1 && v <= 1));
  });
  t.env.write((txn) => {
    assert.throws(() => txn.put(tbl, NaN, 1), (e) => e instanceof RangeError && /NaN/.test(e.message));
    assert.throws(() => txn.put(tbl, 1n as never, 1), TypeError);
  });
});

test("prefix needs keys that have one: int64 and float64 refuse it", () => {
  using t = tempEnv();
  const tbl = t.env.table("i", { keys: "int64" });
  t.env.read((txn) => {
    assert.throws(() => [...txn.keys(tbl, { prefix: "a" as never })], /prefix needs binary or string keys/);
  });
});
