/**
 * Batched reads (`getMany`, `getManyInto`) and relation traversal (`follow`,
 * `followBatches`): the same answers as `get()` one key at a time and as a
 * `keys()` + `get()` loop, on cached and uncached tables, in read and write
 * transactions; and clear errors for misuse. The cache's exactness under
 * concurrent change is covered by test/cache.test.ts (its differential checks
 * batches too) and native/test/cache.c.
 *
 * @module
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { ErrorCode, MdbxError, type ReadTxn, type Table } from "../mod.ts";
import { tempEnv, throwsMdbx } from "./helpers.ts";
import { int, prng } from "./children/cache_data.ts";

type Bin = Table<"binary", "binary">;
const enc = new TextEncoder();

function id(n: number): Uint8Array {
  const k = new Uint8Array(16);
  new DataView(k.buffer).setUint32(12, n);
  k[0] = 0x5a;
  return k;
}

function objectValue(n: number, round = 0): Uint8Array {
  return enc.encode(`object ${n} round ${round} `.repeat(1 + (n % 5)));
}

/** A relation key <src 16><dir 1><type 2><dst 16>. */
function rel(src: number, dir: number, type: number, dst: number): Uint8Array {
  const k = new Uint8Array(35);
  k.set(id(src), 0);
  k[16] = dir;
  k[18] = type;
  k.set(id(dst), 19);
  return k;
}

for (const cache of [false, true]) {
  const which = cache ? "cached" : "uncached";

  test(`getMany returns the values of the keys in order, undefined where absent (${which} table)`, () => {
    using t = tempEnv();
    const objects: Bin = t.env.table("objects", { cache });
    t.env.write((w) => {
      for (let n = 0; n < 500; n++) if (n % 7 !== 3) w.put(objects, id(n), objectValue(n));
      w.put(objects, id(1000), new Uint8Array(0)); // an empty value is a value
      w.put(objects, id(1001), new Uint8Array(20_000).fill(9)); // a large value (overflow pages)
    });
    const rng = prng(11);
    const keys = Array.from({ length: 3000 }, () => id(int(rng, 0, 519))); // more than one chunk, repeats
    keys.push(id(1000), id(1001), id(999_999));
    for (let pass = 0; pass < 2; pass++) { // with a cache: a fill, then hits
      t.env.read((r) => {
        const got = r.getMany(objects, keys);
        assert.equal(got.length, keys.length);
        for (let i = 0; i < keys.length; i++) assert.deepEqual(got[i], r.get(objects, keys[i]), `key ${i}`);
        assert.deepEqual(got[keys.length - 3], new Uint8Array(0));
        assert.equal(got[keys.length - 2]!.length, 20_000);
        assert.equal(got[keys.length - 1], undefined);
        assert.deepEqual(r.getMany(objects, []), []);
      });
    }
    if (cache) assert.ok(objects.cacheStats()!.hits > 3000, JSON.stringify(objects.cacheStats()));
  });

  test(`getManyInto packs values into one buffer, stops when it is full and goes on from start (${which} table)`, () => {
    using t = tempEnv();
    const objects: Bin = t.env.table("objects", { cache });
    t.env.write((w) => {
      for (let n = 0; n < 100; n++) if (n !== 50) w.put(objects, id(n), objectValue(n));
    });
    const keys = Array.from({ length: 100 }, (_, n) => id(n));
    t.env.read((r) => {
      const want = keys.map((k) => r.get(objects, k));
      const total = want.reduce((s, v) => s + (v?.length ?? 0), 0);
      const pos = new Int32Array(2 * keys.length);
      // room for everything
      const big = new Uint8Array(total + 10);
      assert.equal(r.getManyInto(objects, keys, big, pos), keys.length);
      for (let i = 0; i < keys.length; i++) {
        if (want[i] === undefined) assert.equal(pos[2 * i + 1], -1, `absent key ${i}`);
        else assert.deepEqual(big.subarray(pos[2 * i], pos[2 * i] + pos[2 * i + 1]), want[i], `key ${i}`);
      }
      // a small target: several calls, each starting where the last one stopped
      const small = new Uint8Array(400);
      let calls = 0;
      for (let start = 0; start < keys.length; calls++) {
        const end = r.getManyInto(objects, keys, small, pos, start);
        assert.ok(end > start && end <= keys.length);
        for (let i = start; i < end; i++) {
          const got = pos[2 * i + 1] < 0 ? undefined : small.slice(pos[2 * i], pos[2 * i] + pos[2 * i + 1]);
          assert.deepEqual(got, want[i], `key ${i} (call ${calls})`);
        }
        start = end;
      }
      assert.ok(calls > 5, `${calls} calls`);
      // a first value that cannot fit at all: a RangeError that says its size, nothing copied
      assert.throws(() => r.getManyInto(objects, keys, new Uint8Array(3), pos, 1), (e: unknown) => {
        assert.ok(e instanceof RangeError);
        assert.match(e.message, new RegExp(`${want[1]!.length} bytes`));
        return true;
      });
    });
  });

  test(`follow yields each index key with its object, as a keys() + get() loop does (${which} objects table)`, () => {
    using t = tempEnv();
    const objects: Bin = t.env.table("objects", { cache });
    const relations: Bin = t.env.table("relations");
    const rng = prng(5);
    const edges = new Map<number, Uint8Array[]>();
    t.env.write((w) => {
      for (let n = 0; n < 400; n++) if (n % 11 !== 0) w.put(objects, id(n), objectValue(n)); // some dangling
      for (let src = 0; src < 60; src++) {
        const list: Uint8Array[] = [];
        const count = src === 7 ? 3000 : int(rng, 0, 59); // one source with many: several batches
        for (let e = 0; e < count; e++) {
          const k = rel(src, int(rng, 0, 1), int(rng, 0, 2), int(rng, 0, 399));
          w.put(relations, k, new Uint8Array(0));
          list.push(k);
        }
        edges.set(src, list);
      }
    });
    const loop = (r: ReadTxn, prefix: Uint8Array) => {
      const out: { key: Uint8Array; value: Uint8Array | undefined }[] = [];
      for (const key of r.keys(relations, { prefix })) out.push({ key, value: r.get(objects, key.subarray(19, 35)) });
      return out;
    };
    for (let pass = 0; pass < 2; pass++) {
      t.env.read((r) => {
        for (let src = 0; src < 60; src++) {
          for (const prefix of [id(src), rel(src, 1, 0, 0).subarray(0, 17)]) {
            const want = loop(r, prefix);
            const got = [...r.follow(relations, prefix, objects, { at: 19, length: 16 })];
            assert.deepEqual(got, want, `source ${src}, prefix of ${prefix.length} bytes`);
            // the allocation-free form: the same bytes, batch by batch
            const flat: { key: Uint8Array; value: Uint8Array | undefined }[] = [];
            for (const b of r.followBatches(relations, prefix, objects, { at: 19, length: 16 })) {
              for (let i = 0; i < b.count; i++) {
                const l = b.layout;
                flat.push({
                  key: b.bytes.slice(l[4 * i], l[4 * i] + l[4 * i + 1]),
                  value: l[4 * i + 3] < 0 ? undefined : b.bytes.slice(l[4 * i + 2], l[4 * i + 2] + l[4 * i + 3]),
                });
              }
            }
            assert.deepEqual(flat, want, `batches of source ${src}`);
          }
        }
        assert.ok(loop(r, id(7)).length > 1000); // more than one batch of a 64 KiB buffer
        // limit, and breaking out early
        assert.equal([...r.follow(relations, id(7), objects, { at: 19, length: 16, limit: 5 })].length, 5);
        for (const _ of r.follow(relations, id(7), objects, { at: 19, length: 16 })) break;
        // a slice past the end of short keys: no object
        const short = [...r.follow(relations, id(7), objects, { at: 30, length: 16 })];
        assert.ok(short.length > 0 && short.every((e) => e.value === undefined));
        assert.deepEqual([...r.follow(relations, id(999), objects, { at: 19, length: 16 })], []);
      });
    }
    if (cache) assert.ok(objects.cacheStats()!.hits > 1000, JSON.stringify(objects.cacheStats()));
  });

  test(`in a write transaction getMany and follow see its own writes (${which} objects table)`, () => {
    using t = tempEnv();
    const objects: Bin = t.env.table("objects", { cache });
    const relations: Bin = t.env.table("relations");
    t.env.write((w) => {
      for (let n = 0; n < 50; n++) w.put(objects, id(n), objectValue(n));
      for (let n = 0; n < 50; n++) w.put(relations, rel(1, 0, 0, n), new Uint8Array(0));
    });
    t.env.read((r) => r.getMany(objects, Array.from({ length: 50 }, (_, n) => id(n)))); // fill the cache
    t.env.write((w) => {
      // untouched so far: the cache may answer
      assert.deepEqual(w.getMany(objects, [id(3)]), [objectValue(3)]);
      w.put(objects, id(3), objectValue(3, 1));
      w.del(objects, id(4));
      w.put(relations, rel(1, 0, 0, 60), new Uint8Array(0));
      w.put(objects, id(60), objectValue(60, 1));
      assert.deepEqual(w.getMany(objects, [id(3), id(4), id(60)]), [objectValue(3, 1), undefined, objectValue(60, 1)]);
      const seen = new Map<number, Uint8Array | undefined>();
      for (const { key, value } of w.follow(relations, id(1), objects, { at: 19, length: 16 })) {
        seen.set(new DataView(key.buffer, key.byteOffset + 19).getUint32(12), value);
      }
      assert.equal(seen.size, 51);
      assert.deepEqual(seen.get(3), objectValue(3, 1));
      assert.equal(seen.get(4), undefined);
      assert.deepEqual(seen.get(60), objectValue(60, 1));
    });
  });
}

test("getMany and follow decode values with the table's value kind", () => {
  using t = tempEnv();
  const names = t.env.table("names", { keys: "uint32", values: "string", cache: true });
  const index = t.env.table("index", { keys: "string", values: "string" });
  const byName = t.env.table("byName", { keys: "string", values: "uint64" });
  t.env.write((w) => {
    for (let n = 0; n < 20; n++) w.put(names, n, `name-${n}`);
    for (let n = 0; n < 20; n++) w.put(index, `group/${n % 2}/name-${n}`, "");
    for (let n = 0; n < 20; n++) w.put(byName, `name-${n}`, n * 1000);
  });
  t.env.read((r) => {
    assert.deepEqual(r.getMany(names, [0, 5, 99]), ["name-0", "name-5", undefined]);
    const got = [...r.follow(index, "group/1/", byName, { at: 8, length: 6 })];
    // keys "group/1/name-1", "group/1/name-11", ..., "group/1/name-9": the slice [8, 14) is "name-<first digit>"
    assert.equal(got.length, 10);
    for (const e of got) assert.equal(e.value, Number(e.key[13]) * 1000, JSON.stringify(e));
  });
});

test("batched reads refuse misuse with clear errors", () => {
  using t = tempEnv();
  const objects: Bin = t.env.table("objects", { cache: true });
  const dups = t.env.table("dups", { dupSort: true });
  const ints = t.env.table("ints", { keys: "uint32" });
  t.env.write((w) => w.put(objects, id(1), objectValue(1)));
  const r = t.env.beginRead();
  assert.throws(() => r.getMany(objects, "not an array" as unknown as Uint8Array[]), TypeError);
  assert.throws(() => r.getMany(objects, [id(1), 42 as unknown as Uint8Array]), TypeError);
  assert.throws(() => r.getManyInto(objects, [id(1)], new Uint8Array(10), new Int32Array(1)), /positions/);
  assert.throws(() => r.getManyInto(objects, [id(1)], [] as unknown as Uint8Array, new Int32Array(2)), TypeError);
  assert.throws(() => r.getManyInto(objects, [id(1)], new Uint8Array(99), new Int32Array(2), 5), RangeError);
  assert.throws(() => r.follow(objects, id(1), objects, { at: -1, length: 16 }).next(), RangeError);
  assert.throws(() => r.follow(objects, id(1), objects, undefined as never).next(), RangeError);
  assert.throws(() => r.follow(dups, "a", objects, { at: 0, length: 1 }).next(), /dupSort/);
  assert.throws(() => r.follow(ints as never, 1 as never, objects, { at: 0, length: 1 }).next(), /binary or string/);
  r.end();
  throwsMdbx(() => r.getMany(objects, [id(1)]), "MDBX_BAD_TXN");
  throwsMdbx(() => r.getManyInto(objects, [id(1)], new Uint8Array(99), new Int32Array(2)), "MDBX_BAD_TXN");
  throwsMdbx(() => r.follow(objects, id(1), objects, { at: 0, length: 16 }), "MDBX_BAD_TXN");
  // an iterator whose transaction ends stops with the same error
  const r2 = t.env.beginRead();
  const it = r2.follow(objects, new Uint8Array(0), objects, { at: 0, length: 16 });
  r2.end();
  assert.throws(() => it.next(), (e: unknown) => e instanceof MdbxError && e.code === ErrorCode.BAD_TXN);
  // a dropped cached table: the same error as an uncached read
  t.env.write((w) => w.drop(objects));
  t.env.read((x) => {
    assert.throws(() => x.getMany(objects, [id(1)]), MdbxError);
  });
});

test("getMany and follow after the environment closed throw, and never touch freed memory", () => {
  const t = tempEnv();
  const objects: Bin = t.env.table("objects", { cache: true });
  const relations: Bin = t.env.table("relations");
  t.env.write((w) => {
    w.put(objects, id(1), objectValue(1));
    w.put(relations, rel(1, 0, 0, 1), new Uint8Array(0));
  });
  const r = t.env.beginRead();
  assert.equal(r.getMany(objects, [id(1)]).length, 1);
  const it = r.follow(relations, id(1), objects, { at: 19, length: 16 });
  t[Symbol.dispose]();
  throwsMdbx(() => r.getMany(objects, [id(1)]), "MDBX_BAD_TXN");
  assert.throws(() => it.next(), MdbxError);
});
