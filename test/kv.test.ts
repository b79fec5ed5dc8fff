import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { ErrorCode, MdbxError, open } from "../mod.ts";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runtimeCommand, tempEnv, throwsMdbx } from "./helpers.ts";

const S = { keys: "string", values: "string" } as const;
const bytes = (...b: number[]) => new Uint8Array(b);

// ---------------------------------------------------------------- kinds ---

test("binary keys and values round-trip as Uint8Array", () => {
  using t = tempEnv();
  const tbl = t.env.table("b");
  t.env.write((txn) => txn.put(tbl, bytes(1, 2, 3), bytes(0, 255, 7)));
  const v = t.env.read((txn) => txn.get(tbl, bytes(1, 2, 3)));
  assert.ok(v instanceof Uint8Array);
  assert.deepEqual(v, bytes(0, 255, 7));
});

test("binary and string tables accept keys and values as strings or UTF-8 bytes alike", () => {
  using t = tempEnv();
  const b = t.env.table("b");
  const s = t.env.table("s", S);
  const enc = new TextEncoder();
  t.env.write((txn) => {
    txn.put(b, "ключ", "значение");
    txn.put(s, enc.encode("日本"), enc.encode("語 🎉"));
  });
  t.env.read((txn) => {
    assert.deepEqual(txn.get(b, enc.encode("ключ")), enc.encode("значение"));
    assert.equal(txn.get(s, "日本"), "語 🎉");
  });
});

test("a subarray key or value is read at its offset, not from the start of its buffer", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  const buf = bytes(0, 0, 104, 105, 0, 0);
  const sub = buf.subarray(2, 4); // "hi"
  t.env.write((txn) => txn.put(tbl, sub, sub));
  t.env.read((txn) => {
    assert.equal(txn.get(tbl, "hi"), "hi");
    assert.equal(txn.has(tbl, sub), true);
  });
});

test("uint32 and uint64 values round-trip as numbers", () => {
  using t = tempEnv();
  const u32 = t.env.table("u32", { keys: "string", values: "uint32" });
  const u64 = t.env.table("u64", { keys: "string", values: "uint64" });
  t.env.write((txn) => {
    for (const v of [0, 1, 0xffff_ffff]) txn.put(u32, String(v), v);
    for (const v of [0, 2 ** 32, 2 ** 53 - 1]) txn.put(u64, String(v), v);
  });
  t.env.read((txn) => {
    for (const v of [0, 1, 0xffff_ffff]) assert.equal(txn.get(u32, String(v)), v);
    for (const v of [0, 2 ** 32, 2 ** 53 - 1]) assert.equal(txn.get(u64, String(v)), v);
  });
});

test("keys and values of the wrong JavaScript type are TypeErrors and write nothing", () => {
  using t = tempEnv();
  const b = t.env.table("b");
  const u32 = t.env.table("u32", { keys: "uint32", values: "uint32" });
  const u64 = t.env.table("u64", { keys: "uint64", values: "uint64" });
  const big = t.env.table("big", { keys: "bigint" });
  const bad: [string, () => unknown][] = [
    ["number key on a binary table", () => t.env.write((x) => x.put(b, 1 as never, "v"))],
    ["object key", () => t.env.write((x) => x.put(b, {} as never, "v"))],
    ["undefined key", () => t.env.write((x) => x.put(b, undefined as never, "v"))],
    ["number value on a binary table", () => t.env.write((x) => x.put(b, "k", 5 as never))],
    ["ArrayBuffer value", () => t.env.write((x) => x.put(b, "k", new ArrayBuffer(2) as never))],
    ["array value", () => t.env.write((x) => x.put(b, "k", [1, 2] as never))],
    ["string uint32 key", () => t.env.write((x) => x.put(u32, "1" as never, 1))],
    ["negative uint32 key", () => t.env.write((x) => x.put(u32, -1, 1))],
    ["fractional uint32 key", () => t.env.write((x) => x.put(u32, 1.5, 1))],
    ["uint32 key of 2^32", () => t.env.write((x) => x.put(u32, 2 ** 32, 1))],
    ["string uint32 value", () => t.env.write((x) => x.put(u32, 1, "x" as never))],
    ["unsafe uint64 key", () => t.env.write((x) => x.put(u64, 2 ** 53, 1))],
    ["negative uint64 value", () => t.env.write((x) => x.put(u64, 1, -5))],
    ["bigint for a uint32 key", () => t.env.write((x) => x.put(u32, 1n as never, 1))],
    ["string bigint key", () => t.env.write((x) => x.put(big, "1" as never, "v"))],
    ["get with a wrong key type", () => t.env.read((x) => x.get(u32, "1" as never))],
    ["del with a wrong key type", () => t.env.write((x) => x.del(b, 7 as never))],
  ];
  for (const [what, call] of bad) assert.throws(call, TypeError, what);
  for (const tbl of [b, u32, u64, big]) assert.equal(t.env.read((x) => x.stat(tbl).entries), 0);
});

test("uint64 keys and values above 2^53-1, even as bigints, are RangeErrors that point to the bigint kind", () => {
  using t = tempEnv();
  const u64 = t.env.table("u64", { keys: "uint64", values: "uint64" });
  const big = 2n ** 53n + 1n; // would be stored exactly and read back as 2^53
  assert.throws(
    () => t.env.write((x) => x.put(u64, big as never, 1)),
    (e) => e instanceof RangeError && /key 9007199254740993n is above 2\^53-1.*keys: "bigint"/.test(e.message),
  );
  assert.throws(
    () => t.env.write((x) => x.put(u64, 1, (2n ** 63n) as never)),
    (e) => e instanceof RangeError && /value 9223372036854775808n is above 2\^53-1.*"binary"/.test(e.message),
  );
  assert.throws(() => t.env.read((x) => x.get(u64, big as never)), RangeError);
  // at the limit it is exact, as a number or as a bigint
  const max = Number.MAX_SAFE_INTEGER;
  t.env.write((x) => x.put(u64, BigInt(max) as never, BigInt(max) as never));
  t.env.read((x) => {
    const keys = [...x.keys(u64)];
    assert.deepEqual(keys, [max]);
    assert.equal(x.get(u64, keys[0]), max, "a key keys() returned finds its value");
  });
});

test("a uint64 handle on a table holding a key above 2^53-1 fails on the read instead of rounding it", () => {
  using t = tempEnv();
  const b = t.env.table("ids", { keys: "bigint", values: "string" });
  t.env.write((x) => {
    x.put(b, 5n, "small");
    x.put(b, 2n ** 60n + 1n, "large");
  });
  t.env.close();
  using env = open(t.path, { sync: "lazy" });
  const u = env.table("ids", { keys: "uint64", values: "string" }); // same flags, same size: it opens
  env.read((x) => {
    assert.equal(x.get(u, 5), "small");
    throwsMdbx(
      () => [...x.keys(u)],
      "MDBX_INCOMPATIBLE",
      /table "ids" holds the key 1152921504606846977, above 2\^53-1.*keys: "bigint"/,
    );
    throwsMdbx(() => x.cursor(u).last(), "MDBX_INCOMPATIBLE");
  });
});

test("bigint keys out of the unsigned 64-bit range are RangeErrors", () => {
  using t = tempEnv();
  const big = t.env.table("big", { keys: "bigint" });
  assert.throws(() => t.env.write((x) => x.put(big, -1n, "v")), RangeError);
  assert.throws(() => t.env.write((x) => x.put(big, 2n ** 64n, "v")), RangeError);
});

test("a key longer than maxKeySize fails with MDBX_BAD_VALSIZE naming the sizes; maxKeySize itself fits", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  const max = t.env.maxKeySize();
  const e = throwsMdbx(
    () => t.env.write((x) => x.put(tbl, "k".repeat(max + 1), "v")),
    "MDBX_BAD_VALSIZE",
    new RegExp(`key of ${max + 1} bytes`),
  );
  assert.equal(e.code, ErrorCode.BAD_VALSIZE);
  t.env.write((x) => x.put(tbl, "k".repeat(max), "v"));
  assert.equal(t.env.read((x) => x.get(tbl, "k".repeat(max))), "v");
  // looking up a key that long finds nothing rather than failing
  assert.equal(t.env.read((x) => x.get(tbl, "k".repeat(max + 1))), undefined);
});

test("a dupsort value longer than the dupsort limit fails with MDBX_BAD_VALSIZE", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { ...S, dupSort: true });
  const max = t.env.maxValueSize(tbl.flags);
  throwsMdbx(() => t.env.write((x) => x.put(tbl, "k", "v".repeat(max + 1))), "MDBX_BAD_VALSIZE");
  t.env.write((x) => x.put(tbl, "k", "v".repeat(max)));
});

test("large values (1 MiB, on overflow pages) round-trip exactly", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t", { keys: "uint32" });
  const big = new Uint8Array(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  t.env.write((x) => {
    x.put(tbl, 1, big);
    x.put(tbl, 2, big.subarray(0, 300_000));
  });
  t.env.read((x) => {
    assert.deepEqual(x.get(tbl, 1), big);
    assert.deepEqual(x.get(tbl, 2), big.subarray(0, 300_000));
    assert.ok(x.stat(tbl).largePages >= 256 + 73);
    assert.deepEqual(x.getWithCount(tbl, 1), { value: big, count: 1 });
  });
  // and a small value after a large one still decodes right (the result buffer grew)
  t.env.write((x) => x.put(tbl, 3, bytes(9)));
  assert.deepEqual(t.env.read((x) => x.get(tbl, 3)), bytes(9));
});

test("empty values and empty keys are stored, distinct from absence", () => {
  using t = tempEnv();
  const s = t.env.table("s", S);
  const b = t.env.table("b");
  t.env.write((x) => {
    x.put(s, "empty", "");
    x.put(b, "empty", new Uint8Array(0));
    x.put(s, "", "empty key");
  });
  t.env.read((x) => {
    assert.equal(x.get(s, "empty"), "");
    assert.deepEqual(x.get(b, "empty"), new Uint8Array(0));
    assert.equal(x.has(b, "empty"), true);
    assert.equal(x.get(s, ""), "empty key");
    assert.equal(x.get(s, "absent"), undefined);
    assert.equal(x.has(s, "absent"), false);
  });
});

test("get returns a copy: changing it does not change the database", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  t.env.write((x) => x.put(tbl, "k", bytes(1, 2, 3)));
  const a = t.env.read((x) => x.get(tbl, "k"))!;
  a[0] = 99;
  const again = t.env.read((x) => {
    const one = x.get(tbl, "k")!, two = x.get(tbl, "k")!;
    two[1] = 77;
    assert.deepEqual(one, bytes(1, 2, 3), "each get returns its own bytes");
    return one;
  });
  assert.deepEqual(again, bytes(1, 2, 3));
});

test("every result is an ordinary Uint8Array: its own exact-size buffer, transferable without harm to others", () => {
  // in a child process: a result sharing its buffer with others used to crash the next get() once transferred
  using t = tempEnv();
  const dbPath = path.join(t.dir, "transfer");
  const { cmd, args } = runtimeCommand(fileURLToPath(new URL("./children/transfer_results.ts", import.meta.url)), [
    dbPath,
  ]);
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  assert.equal(r.signal, null, `the child died of ${r.signal}:\n${r.stderr}`);
  assert.equal(r.status, 0, `exit ${r.status}:\n${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(last);
  assert.ok(report.ok, report.error);
  assert.ok(report.checked > 800, `only ${report.checked} results checked`);
});

for (const cache of [false, true]) {
  test(`getInto copies the value into the target at the offset and returns its length${cache ? " (cached table)" : ""}`, () => {
    using t = tempEnv();
    const tbl = t.env.table("t", cache ? { cache: true } : {});
    const dup = t.env.table("d", { ...S, dupSort: true });
    const big = new Uint8Array(10_000).map((_, i) => i * 7);
    t.env.write((x) => {
      x.put(tbl, "k", bytes(1, 2, 3));
      x.put(tbl, "empty", new Uint8Array(0));
      x.put(tbl, "big", big);
      ["c", "a", "b"].forEach((v) => x.put(dup, "k", v));
    });
    t.env.read((x) => {
      // twice each: with a cache the first read fills it and the second is a hit
      for (let round = 0; round < 2; round++) {
        const out = new Uint8Array(8).fill(9);
        assert.equal(x.getInto(tbl, "k", out), 3);
        assert.deepEqual(out, bytes(1, 2, 3, 9, 9, 9, 9, 9));
        assert.equal(x.getInto(tbl, "k", out, 5), 3, "at an offset");
        assert.deepEqual(out, bytes(1, 2, 3, 9, 9, 1, 2, 3));
        assert.equal(x.getInto(tbl, "missing", out), -1);
        assert.equal(x.getInto(tbl, "empty", out, 8), 0, "an empty value fits at the very end");
        const room = new Uint8Array(big.length + 1);
        assert.equal(x.getInto(tbl, "big", room, 1), big.length);
        assert.deepEqual(room.subarray(1), big);
        // too little room: a RangeError with the length, and the target untouched
        const small = new Uint8Array(4).fill(5);
        assert.throws(() => x.getInto(tbl, "k", small, 2), (e: unknown) => {
          assert.ok(
            e instanceof RangeError && /is 3 bytes and 2 bytes are free at offset 2/.test(e.message),
            String(e),
          );
          return true;
        });
        assert.deepEqual(small, bytes(5, 5, 5, 5));
        assert.throws(() => x.getInto(tbl, "big", new Uint8Array(9_999)), /10000 bytes and 9999 bytes are free/);
        assert.equal(x.getInto(dup, "k", out), 1, "dupsort: the first value");
        assert.equal(out[0], "a".charCodeAt(0));
      }
      const out = new Uint8Array(8);
      assert.throws(() => x.getInto(tbl, "k", out, 9), RangeError, "offset past the end");
      assert.throws(() => x.getInto(tbl, "k", out, -1), RangeError);
      assert.throws(() => x.getInto(tbl, "k", out, 1.5), RangeError);
      assert.throws(() => x.getInto(tbl, "k", [0, 0, 0] as unknown as Uint8Array), TypeError);
      assert.throws(() => x.getInto(tbl, 42 as unknown as string, out), TypeError, "a key of the wrong type");
    });
    if (cache) assert.ok(tbl.cacheStats()!.hits >= 6, JSON.stringify(tbl.cacheStats()));
    // a write transaction reads its own writes
    t.env.write((x) => {
      x.put(tbl, "k", bytes(4, 5));
      const out = new Uint8Array(4);
      assert.equal(x.getInto(tbl, "k", out), 2);
      assert.deepEqual(out, bytes(4, 5, 0, 0));
      x.del(tbl, "k");
      assert.equal(x.getInto(tbl, "k", out), -1);
    });
    const txn = t.env.beginRead();
    txn.end();
    throwsMdbx(() => txn.getInto(tbl, "k", new Uint8Array(8)), "MDBX_BAD_TXN");
  });
}

// ------------------------------------------------------------ put flags ---

test("put overwrites by default; noOverwrite fails with MDBX_KEYEXIST and keeps the old value", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => {
    x.put(tbl, "k", "1");
    x.put(tbl, "k", "2");
  });
  assert.equal(t.env.read((x) => x.get(tbl, "k")), "2");
  const e = throwsMdbx(() => t.env.write((x) => x.put(tbl, "k", "3", { noOverwrite: true })), "MDBX_KEYEXIST");
  assert.equal(e.code, ErrorCode.KEYEXIST);
  assert.equal(t.env.read((x) => x.get(tbl, "k")), "2");
  t.env.write((x) => x.put(tbl, "new", "1", { noOverwrite: true }));
  assert.equal(t.env.read((x) => x.get(tbl, "new")), "1");
});

test("a failed put inside a write transaction leaves the transaction usable", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => {
    x.put(tbl, "k", "1");
    throwsMdbx(() => x.put(tbl, "k", "2", { noOverwrite: true }), "MDBX_KEYEXIST");
    x.put(tbl, "j", "1");
  });
  assert.deepEqual(t.env.read((x) => [...x.range(tbl)]), [{ key: "j", value: "1" }, { key: "k", value: "1" }]);
});

test("dupSort: noOverwrite refuses any existing key, noDupData only an existing pair", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { ...S, dupSort: true });
  t.env.write((x) => x.put(tbl, "k", "a"));
  throwsMdbx(() => t.env.write((x) => x.put(tbl, "k", "b", { noOverwrite: true })), "MDBX_KEYEXIST");
  throwsMdbx(() => t.env.write((x) => x.put(tbl, "k", "a", { noDupData: true })), "MDBX_KEYEXIST");
  t.env.write((x) => x.put(tbl, "k", "b", { noDupData: true }));
  // without flags, putting an existing pair again is a no-op
  t.env.write((x) => x.put(tbl, "k", "a"));
  assert.deepEqual(t.env.read((x) => [...x.dups(tbl, "k")]), ["a", "b"]);
});

test("append loads keys in order and fails with MDBX_EKEYMISMATCH on a key out of order", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "string" });
  t.env.write((x) => {
    for (let i = 0; i < 1000; i++) x.put(tbl, i, `v${i}`, { append: true });
  });
  assert.equal(t.env.read((x) => x.count(tbl)), 1000);
  const e = throwsMdbx(() => t.env.write((x) => x.put(tbl, 5, "late", { append: true })), "MDBX_EKEYMISMATCH");
  assert.equal(e.code, ErrorCode.EKEYMISMATCH);
  assert.equal(t.env.read((x) => x.get(tbl, 5)), "v5");
});

test("appendDup appends values in order to a key and fails with MDBX_EKEYMISMATCH out of order", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { keys: "string", values: "uint32", dupSort: true });
  t.env.write((x) => {
    for (let i = 0; i < 100; i++) x.put(tbl, "k", i, { appendDup: true });
  });
  assert.equal(t.env.read((x) => x.getWithCount(tbl, "k")!.count), 100);
  throwsMdbx(() => t.env.write((x) => x.put(tbl, "k", 50, { appendDup: true })), "MDBX_EKEYMISMATCH");
});

test("current replaces the value of an existing key and fails with MDBX_NOTFOUND on a missing one", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "1"));
  t.env.write((x) => x.put(tbl, "k", "2", { current: true }));
  assert.equal(t.env.read((x) => x.get(tbl, "k")), "2");
  throwsMdbx(() => t.env.write((x) => x.put(tbl, "missing", "1", { current: true })), "MDBX_NOTFOUND");
  assert.equal(t.env.read((x) => x.has(tbl, "missing")), false);
});

test("allDups replaces every value of a dupsort key with the one given", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { ...S, dupSort: true });
  t.env.write((x) => ["a", "b", "c"].forEach((v) => x.put(tbl, "k", v)));
  t.env.write((x) => x.put(tbl, "k", "z", { allDups: true }));
  assert.deepEqual(t.env.read((x) => [...x.dups(tbl, "k")]), ["z"]);
});

// ---------------------------------------------------------------- delete ---

test("del removes a key and returns true, or returns false when it is absent", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "v"));
  t.env.write((x) => {
    assert.equal(x.del(tbl, "k"), true);
    assert.equal(x.del(tbl, "k"), false);
    assert.equal(x.del(tbl, "never"), false);
  });
  assert.equal(t.env.read((x) => x.has(tbl, "k")), false);
});

test("del with a value removes only that pair of a dupsort key", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { ...S, dupSort: true });
  t.env.write((x) => ["a", "b", "c"].forEach((v) => x.put(tbl, "k", v)));
  t.env.write((x) => {
    assert.equal(x.del(tbl, "k", "b"), true);
    assert.equal(x.del(tbl, "k", "b"), false);
    assert.equal(x.del(tbl, "k", "nope"), false);
  });
  assert.deepEqual(t.env.read((x) => [...x.dups(tbl, "k")]), ["a", "c"]);
  t.env.write((x) => assert.equal(x.del(tbl, "k"), true));
  assert.equal(t.env.read((x) => x.has(tbl, "k")), false, "del without a value removes every value");
});

test("del with a value on a plain table deletes only if the value matches", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "v"));
  t.env.write((x) => assert.equal(x.del(tbl, "k", "other"), false));
  assert.equal(t.env.read((x) => x.get(tbl, "k")), "v");
  t.env.write((x) => assert.equal(x.del(tbl, "k", "v"), true));
  assert.equal(t.env.read((x) => x.has(tbl, "k")), false);
});

// --------------------------------------------------------------- replace ---

test("replace returns the previous value, or undefined when it inserts", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => {
    assert.equal(x.replace(tbl, "k", "1"), undefined);
    assert.equal(x.replace(tbl, "k", "2"), "1");
    assert.equal(x.get(tbl, "k"), "2");
  });
});

test("replace with undefined deletes the key and returns its value", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "v"));
  t.env.write((x) => {
    assert.equal(x.replace(tbl, "k", undefined), "v");
    assert.equal(x.has(tbl, "k"), false);
    assert.equal(x.replace(tbl, "k", undefined), undefined);
  });
});

test("replace returns a previous value larger than the result buffer", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t");
  const big = new Uint8Array(200_000).fill(3);
  t.env.write((x) => x.put(tbl, "k", big));
  t.env.write((x) => assert.deepEqual(x.replace(tbl, "k", bytes(1)), big));
  assert.deepEqual(t.env.read((x) => x.get(tbl, "k")), bytes(1));
});

test("replace with noOverwrite on an existing key fails with MDBX_KEYEXIST", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "v"));
  throwsMdbx(() => t.env.write((x) => x.replace(tbl, "k", "w", { noOverwrite: true })), "MDBX_KEYEXIST");
});

test("replace on a dupsort key with several values: current fails with MDBX_EMULTIVAL, allDups replaces them all", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { ...S, dupSort: true });
  t.env.write((x) => ["1", "2"].forEach((v) => x.put(tbl, "m", v)));
  const e = throwsMdbx(
    () => t.env.write((x) => x.replace(tbl, "m", "3", { current: true })),
    "MDBX_EMULTIVAL",
    /name the value to change/,
  );
  assert.ok(e instanceof MdbxError);
  t.env.write((x) => assert.equal(x.replace(tbl, "m", "3", { allDups: true }), "1"));
  assert.deepEqual(t.env.read((x) => [...x.dups(tbl, "m")]), ["3"]);
});

// ---------------------------------------------------------------- lookup ---

test("getWithCount returns the first value and the number of values, or undefined", () => {
  using t = tempEnv();
  const plain = t.env.table("p", S);
  const dup = t.env.table("d", { ...S, dupSort: true });
  t.env.write((x) => {
    x.put(plain, "k", "v");
    ["c", "a", "b"].forEach((v) => x.put(dup, "k", v));
  });
  t.env.read((x) => {
    assert.deepEqual(x.getWithCount(plain, "k"), { value: "v", count: 1 });
    assert.deepEqual(x.getWithCount(dup, "k"), { value: "a", count: 3 });
    assert.equal(x.getWithCount(dup, "missing"), undefined);
  });
});

test("getGreaterOrEqual finds the first key at or after the given one and tells whether it is exact", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => ["b", "d", "f"].forEach((k) => x.put(tbl, k, k.toUpperCase())));
  t.env.read((x) => {
    assert.deepEqual(x.getGreaterOrEqual(tbl, "d"), { key: "d", value: "D", exact: true });
    assert.deepEqual(x.getGreaterOrEqual(tbl, "c"), { key: "d", value: "D", exact: false });
    assert.deepEqual(x.getGreaterOrEqual(tbl, ""), { key: "b", value: "B", exact: false });
    assert.deepEqual(x.getGreaterOrEqual(tbl, "a"), { key: "b", value: "B", exact: false });
    assert.equal(x.getGreaterOrEqual(tbl, "g"), undefined);
  });
});

test("getGreaterOrEqual orders integer keys numerically", () => {
  using t = tempEnv();
  const tbl = t.env.table("u", { keys: "uint32", values: "uint32" });
  t.env.write((x) => [5, 300, 70000].forEach((k) => x.put(tbl, k, k)));
  t.env.read((x) => {
    assert.deepEqual(x.getGreaterOrEqual(tbl, 6), { key: 300, value: 300, exact: false });
    assert.deepEqual(x.getGreaterOrEqual(tbl, 70000), { key: 70000, value: 70000, exact: true });
  });
});

test("estimateRange estimates the entries between two keys, either side open", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32" });
  t.env.write((x) => {
    for (let i = 0; i < 10000; i++) x.put(tbl, i, bytes(1));
  });
  t.env.read((x) => {
    const near = (got: number, want: number) =>
      assert.ok(Math.abs(got - want) <= want * 0.2 + 10, `estimate ${got}, exact ${want}`);
    near(x.estimateRange(tbl), 10000);
    near(x.estimateRange(tbl, 1000, 2000), 1000);
    near(x.estimateRange(tbl, 5000), 5000);
    near(x.estimateRange(tbl, undefined, 100), 100);
    near(x.estimateRange(tbl, 3000, 3010), 10);
    assert.ok(x.estimateRange(tbl, 3000, 3000) <= 1);
  });
});

test("compare orders two keys the way the table does", () => {
  using t = tempEnv();
  const s = t.env.table("s", S);
  const u = t.env.table("u", { keys: "uint32" });
  const r = t.env.table("r", { ...S, reverseKeys: true });
  t.env.read((x) => {
    assert.ok(x.compare(s, "a", "b") < 0);
    assert.ok(x.compare(s, "b", "a") > 0);
    assert.equal(x.compare(s, "same", "same"), 0);
    assert.ok(x.compare(s, "ab", "b") < 0);
    assert.ok(x.compare(u, 2, 10) < 0, "numeric, not bytewise");
    assert.ok(x.compare(u, 256, 1) > 0);
    assert.ok(x.compare(r, "ab", "ba") > 0, "reverse keys compare from the end");
  });
});
