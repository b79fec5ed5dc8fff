import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { DbFlags, open, Table } from "../mod.ts";
import { tempEnv, throwsMdbx } from "./helpers.ts";

const S = { keys: "string", values: "string" } as const;

test("a named table stores and returns entries, separately from other tables", () => {
  using t = tempEnv();
  const a = t.env.table("a", S), b = t.env.table("b", S);
  assert.ok(a instanceof Table);
  assert.equal(a.name, "a");
  assert.equal(a.keys, "string");
  assert.equal(a.values, "string");
  assert.equal(a.dupSort, false);
  assert.equal(String(a), 'table "a"');
  t.env.write((txn) => {
    txn.put(a, "k", "in a");
    txn.put(b, "k", "in b");
  });
  assert.equal(t.env.read((txn) => txn.get(a, "k")), "in a");
  assert.equal(t.env.read((txn) => txn.get(b, "k")), "in b");
});

test("the main table (name null) stores entries and is not listed among named tables", () => {
  using t = tempEnv();
  const main = t.env.table(null, S);
  assert.equal(main.name, null);
  assert.equal(String(main), "the main table");
  t.env.write((txn) => txn.put(main, "k", "v"));
  assert.equal(t.env.read((txn) => txn.get(main, "k")), "v");
  assert.deepEqual(t.env.tables(), []);
  assert.equal(t.env.table(null, S), main);
});

test("a missing table opened with create: false fails with MDBX_NOTFOUND and says how to create it", () => {
  using t = tempEnv();
  throwsMdbx(
    () => t.env.table("missing", { create: false }),
    "MDBX_NOTFOUND",
    /does not exist; open it with create: true/,
  );
  assert.deepEqual(t.env.tables(), []);
  // an existing one opens with create: false
  t.env.table("there");
  t.env.close();
  using env = open(t.path);
  assert.equal(env.table("there", { create: false }).name, "there");
});

test("opening the same name again returns the same handle", () => {
  using t = tempEnv();
  const a = t.env.table("a", S);
  assert.equal(t.env.table("a", S), a);
  assert.equal(t.env.table("a", { ...S, create: false }), a);
});

test("reopening a name with other flags or other key/value kinds is a TypeError", () => {
  using t = tempEnv();
  t.env.table("a", S);
  assert.throws(
    () => t.env.table("a", { ...S, dupSort: true }),
    /already open in this Env with no flags \(a plain table\); these options ask for dupSort/,
  );
  assert.throws(() => t.env.table("a", { keys: "binary", values: "string" }), /already open with keys "string"/);
  assert.throws(() => t.env.table("a", { keys: "string", values: "binary" }), TypeError);
  assert.throws(() => t.env.table("a", { keys: "uint32" }), TypeError);
});

test("a table created with some flags cannot be opened with others by a later Env, unless it accedes", () => {
  using t = tempEnv();
  const d = t.env.table("d", { ...S, dupSort: true });
  t.env.write((txn) => {
    txn.put(d, "k", "1");
    txn.put(d, "k", "2");
  });
  t.env.close();
  using env = open(t.path);
  throwsMdbx(() => env.table("d", S), "MDBX_INCOMPATIBLE", /opening table "d"/);
  const acc = env.table("d", { ...S, accede: true });
  assert.ok(acc.flags & DbFlags.DUPSORT);
  assert.equal(acc.dupSort, true);
  assert.deepEqual(env.read((txn) => [...txn.values(acc)]), ["1", "2"]);
});

test("unknown key or value kinds are TypeErrors at env.table() that name the table and the kinds", () => {
  using t = tempEnv();
  assert.throws(
    () => t.env.table("u", { keys: "int32" as never, values: "string" }),
    (e) =>
      e instanceof TypeError && /table "u": keys "int32" is not a key kind; use "binary", "string"/.test(e.message),
  );
  assert.throws(
    () => t.env.table("u", { keys: "string", values: "yaml" as never }),
    (e) => e instanceof TypeError && /table "u": values "yaml" is not a value kind/.test(e.message),
  );
  assert.throws(() => t.env.table(null, { values: "bigint" as never }), /the main table: values "bigint"/);
  assert.throws(() => t.env.table("u", { keys: 5 as never }), /table "u": keys .*5 is not a key kind/);
  // nothing was created, nothing was written
  assert.deepEqual(t.env.tables(), []);
  assert.equal(t.env.stat().entries, 0);
});

test("a table reopened with integer kinds of another size fails at env.table(), naming the stored size and the kind to use", () => {
  using t = tempEnv();
  const a = t.env.table("ints", { keys: "uint32", values: "uint32" });
  const b = t.env.table("vals", { keys: "string", values: "uint64" });
  t.env.write((x) => {
    x.put(a, 1, 7);
    x.put(b, "k", 2 ** 40);
  });
  t.env.close();
  using env = open(t.path, { sync: "lazy" });
  for (const keys of ["uint64", "bigint"] as const) {
    throwsMdbx(
      () => env.table("ints", { keys, values: "uint32" }),
      "MDBX_INCOMPATIBLE",
      new RegExp(
        `table "ints" holds a 4-byte key, which its keys kind "${keys}" cannot read .*open it with keys: "uint32"`,
      ),
    );
  }
  throwsMdbx(
    () => env.table("ints", { keys: "uint32", values: "uint64" }),
    "MDBX_INCOMPATIBLE",
    /table "ints" holds a 4-byte value, which its values kind "uint64" cannot read .*values: "uint32"/,
  );
  throwsMdbx(() => env.table("vals", { keys: "string", values: "uint32" }), "MDBX_INCOMPATIBLE", /8-byte value/);
  // the right kinds still open and read what was written
  const ok = env.table("ints", { keys: "uint32", values: "uint32" });
  assert.deepEqual(env.read((x) => [...x.range(ok)]), [{ key: 1, value: 7 }]);
  assert.equal(env.read((x) => x.get(env.table("vals", { keys: "string", values: "uint64" }), "k")), 2 ** 40);
});

test("a stored value of another size than the value kind fails on the read that meets it, naming the table", () => {
  using t = tempEnv();
  const raw = t.env.table("mixed", { keys: "string" });
  t.env.write((x) => {
    x.put(raw, "a", new Uint8Array(4)); // the first entry fits uint32 ...
    x.put(raw, "b", new Uint8Array(3)); // ... the second does not
  });
  t.env.close();
  using env = open(t.path, { sync: "lazy" });
  const u = env.table("mixed", { keys: "string", values: "uint32" });
  env.read((x) => {
    assert.equal(x.get(u, "a"), 0);
    for (
      const read of [
        () => x.get(u, "b"),
        () => [...x.values(u)],
        () => x.cursor(u).last(),
        () => x.getWithCount(u, "b"),
      ]
    ) {
      throwsMdbx(read, "MDBX_INCOMPATIBLE", /table "mixed" holds a 3-byte value, which its values kind "uint32"/);
    }
  });
});

test("a table created after a read transaction began is refused in it with MDBX_BAD_DBI saying so; a newer one reads it", () => {
  using t = tempEnv();
  const old = t.env.table("old", S);
  t.env.write((x) => x.put(old, "k", "v"));
  const r = t.env.beginRead();
  const fresh = t.env.table("fresh", S); // created (and committed) after r began
  t.env.write((x) => x.put(fresh, "k", "v"));
  const notInSnapshot =
    /table "fresh".*: the table did not exist in this transaction's snapshot \(txnid \d+\): env.table\(\) created it afterwards \(txnid \d+\); begin a new transaction/;
  for (
    const use of [
      () => r.get(fresh, "k"),
      () => r.has(fresh, "k"),
      () => [...r.range(fresh)],
      () => r.cursor(fresh),
      () => r.stat(fresh),
      () => r.sequence(fresh),
    ]
  ) {
    throwsMdbx(use, "MDBX_BAD_DBI", notInSnapshot);
  }
  assert.equal(r.get(old, "k"), "v", "tables of its snapshot still work");
  r.end();
  assert.equal(t.env.read((x) => x.get(fresh, "k")), "v");
});

test("impossible flag combinations are TypeErrors", () => {
  using t = tempEnv();
  assert.throws(() => t.env.table("x", { dupFixed: true }), /need dupSort/);
  assert.throws(() => t.env.table("x", { reverseDup: true }), /need dupSort/);
  assert.throws(
    () => t.env.table("x", { keys: "uint32", reverseKeys: true }),
    /integer keys cannot also be reverseKeys/,
  );
  assert.deepEqual(t.env.tables(), []);
});

test("a table handle of another environment, or something else, is refused with a TypeError", () => {
  using a = tempEnv();
  using b = tempEnv();
  const ta = a.env.table("t", S);
  b.env.table("t", S);
  assert.throws(() => b.env.read((txn) => txn.get(ta, "k")), /belongs to another environment/);
  assert.throws(() => b.env.read((txn) => txn.get({} as never, "k")), /expected a Table/);
  assert.throws(() => b.env.read((txn) => txn.get(null as never, "k")), TypeError);
});

// ------------------------------------------------------------- ordering ---

test("binary keys sort bytewise", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "binary", values: "string" });
  const keys = [[2], [1, 255], [1], [0, 0], [255], [1, 0]].map((k) => new Uint8Array(k));
  t.env.write((txn) => keys.forEach((k, i) => txn.put(tbl, k, String(i))));
  const got = t.env.read((txn) => [...txn.keys(tbl)].map((k) => [...k]));
  assert.deepEqual(got, [[0, 0], [1], [1, 0], [1, 255], [2], [255]]);
});

test("reverseKeys tables order keys by comparing from the last byte", () => {
  using t = tempEnv();
  const tbl = t.env.table("r", { ...S, reverseKeys: true });
  assert.ok(tbl.flags & DbFlags.REVERSEKEY);
  const keys = ["ab", "ba", "ca", "ac", "b", "zzz", "aaz"];
  t.env.write((txn) => keys.forEach((k) => txn.put(tbl, k, k)));
  const rev = (s: string) => [...s].reverse().join("");
  const want = [...keys].sort((x, y) => (rev(x) < rev(y) ? -1 : rev(x) > rev(y) ? 1 : 0));
  assert.deepEqual(t.env.read((txn) => [...txn.keys(tbl)]), want);
});

test("uint32 keys sort numerically and come back as numbers", () => {
  using t = tempEnv();
  const tbl = t.env.table("u", { keys: "uint32", values: "string" });
  assert.ok(tbl.flags & DbFlags.INTEGERKEY);
  const keys = [256, 1, 0xffff_ffff, 65536, 0, 2, 255];
  t.env.write((txn) => keys.forEach((k) => txn.put(tbl, k, String(k))));
  assert.deepEqual(t.env.read((txn) => [...txn.keys(tbl)]), [...keys].sort((a, b) => a - b));
  assert.equal(t.env.read((txn) => txn.get(tbl, 65536)), "65536");
});

test("uint64 keys sort numerically across the 32-bit boundary", () => {
  using t = tempEnv();
  const tbl = t.env.table("u", { keys: "uint64", values: "uint64" });
  const keys = [2 ** 32, 1, 2 ** 53 - 1, 2 ** 32 - 1, 0, 2 ** 40 + 7];
  t.env.write((txn) => keys.forEach((k) => txn.put(tbl, k, k)));
  const got = t.env.read((txn) => [...txn.range(tbl)]);
  assert.deepEqual(got.map((e) => e.key), [...keys].sort((a, b) => a - b));
  assert.deepEqual(got.map((e) => e.value), got.map((e) => e.key));
});

test("bigint keys cover the full unsigned 64-bit range in numeric order", () => {
  using t = tempEnv();
  const tbl = t.env.table("b", { keys: "bigint", values: "string" });
  const keys = [0xffff_ffff_ffff_ffffn, 1n, 2n ** 63n, 2n ** 32n, 0n, 2n ** 53n + 1n];
  t.env.write((txn) => keys.forEach((k) => txn.put(tbl, k, k.toString())));
  const got = t.env.read((txn) => [...txn.range(tbl)]);
  assert.deepEqual(got.map((e) => e.key), [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  for (const e of got) assert.equal(e.value, e.key.toString());
  // numbers are accepted as bigint keys
  assert.equal(t.env.read((txn) => txn.get(tbl, 1)), "1");
});

test("a dupSort table keeps several sorted values per key", () => {
  using t = tempEnv();
  const tbl = t.env.table("d", { ...S, dupSort: true });
  assert.equal(tbl.dupSort, true);
  t.env.write((txn) => {
    for (const v of ["c", "a", "b", "a"]) txn.put(tbl, "k", v);
    txn.put(tbl, "j", "z");
  });
  assert.deepEqual(t.env.read((txn) => [...txn.dups(tbl, "k")]), ["a", "b", "c"]);
  assert.equal(t.env.read((txn) => txn.get(tbl, "k")), "a", "get returns the first value");
  assert.deepEqual(t.env.read((txn) => txn.getWithCount(tbl, "k")), { value: "a", count: 3 });
  assert.equal(t.env.read((txn) => txn.stat(tbl).entries), 4);
});

test("a dupFixed table stores fixed-size values in order", () => {
  using t = tempEnv();
  const tbl = t.env.table("f", { keys: "string", dupSort: true, dupFixed: true });
  assert.ok(tbl.flags & DbFlags.DUPFIXED);
  const vals = [[3, 3], [1, 2], [1, 1], [2, 0]].map((v) => new Uint8Array(v));
  t.env.write((txn) => vals.forEach((v) => txn.put(tbl, "k", v)));
  assert.deepEqual(t.env.read((txn) => [...txn.dups(tbl, "k")].map((v) => [...v])), [[1, 1], [1, 2], [2, 0], [3, 3]]);
});

test("reverseDup tables order a key's values from their last byte", () => {
  using t = tempEnv();
  const tbl = t.env.table("rd", { ...S, dupSort: true, reverseDup: true });
  assert.ok(tbl.flags & DbFlags.REVERSEDUP);
  t.env.write((txn) => ["ab", "ba", "ca", "ac"].forEach((v) => txn.put(tbl, "k", v)));
  assert.deepEqual(t.env.read((txn) => [...txn.dups(tbl, "k")]), ["ba", "ca", "ab", "ac"]);
});

test("uint32 and uint64 dup values make an INTEGERDUP table sorted numerically", () => {
  using t = tempEnv();
  const d32 = t.env.table("d32", { keys: "string", values: "uint32", dupSort: true });
  const d64 = t.env.table("d64", { keys: "string", values: "uint64", dupSort: true });
  assert.ok(d32.flags & DbFlags.INTEGERDUP);
  assert.ok(d32.flags & DbFlags.DUPFIXED);
  assert.ok(d64.flags & DbFlags.INTEGERDUP);
  const v32 = [300, 1, 0xffff_ffff, 256, 0, 70000];
  const v64 = [2 ** 33, 5, 2 ** 53 - 1, 2 ** 32 - 1, 0];
  t.env.write((txn) => {
    v32.forEach((v) => txn.put(d32, "k", v));
    v64.forEach((v) => txn.put(d64, "k", v));
  });
  assert.deepEqual(t.env.read((txn) => [...txn.dups(d32, "k")]), [...v32].sort((a, b) => a - b));
  assert.deepEqual(t.env.read((txn) => [...txn.dups(d64, "k")]), [...v64].sort((a, b) => a - b));
});

test("an integer-key table rejects keys that are not 4 or 8 bytes with MDBX_BAD_VALSIZE", () => {
  using t = tempEnv();
  t.env.table("u", { keys: "uint32" });
  t.env.close();
  using env = open(t.path);
  // acceding with binary keys lets raw bytes through to libmdbx
  const raw = env.table("u", { accede: true });
  assert.ok(raw.flags & DbFlags.INTEGERKEY);
  throwsMdbx(
    () => env.write((txn) => txn.put(raw, new Uint8Array(3), "v")),
    "MDBX_BAD_VALSIZE",
    /key of 3 bytes/,
  );
  env.write((txn) => txn.put(raw, new Uint8Array([7, 0, 0, 0]), "v"));
  assert.deepEqual(env.read((txn) => [...txn.keys(raw)]), [new Uint8Array([7, 0, 0, 0])]);
});

test("accede opens only existing tables", () => {
  using t = tempEnv();
  throwsMdbx(() => t.env.table("missing", { accede: true }), "MDBX_NOTFOUND");
});

// ------------------------------------------------------------ management ---

test("stat reports the entries, depth and pages of a table", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32" });
  assert.deepEqual(t.env.read((txn) => txn.stat(tbl).entries), 0);
  t.env.write((txn) => {
    for (let i = 0; i < 5000; i++) txn.put(tbl, i, new Uint8Array(20));
  });
  const s = t.env.read((txn) => txn.stat(tbl));
  assert.equal(s.entries, 5000);
  assert.equal(s.pageSize, 4096);
  assert.ok(s.depth >= 2);
  assert.ok(s.branchPages >= 1);
  assert.ok(s.leafPages > 10);
  assert.equal(s.largePages, 0);
  assert.equal(s.modTxnId, t.env.info().recentTxnId);
});

test("tables() lists every named table with its flags and statistics", () => {
  using t = tempEnv();
  const a = t.env.table("alpha", S);
  const b = t.env.table("beta", { keys: "uint32", dupSort: true });
  t.env.write((txn) => {
    txn.put(a, "k", "v");
    txn.put(b, 1, "x");
    txn.put(b, 1, "y");
  });
  const list = t.env.tables().sort((x, y) => x.name.localeCompare(y.name));
  assert.deepEqual(list.map((e) => e.name), ["alpha", "beta"]);
  assert.equal(list[0].stat.entries, 1);
  assert.equal(list[1].stat.entries, 2);
  assert.ok(list[1].flags & DbFlags.DUPSORT);
  assert.ok(list[1].flags & DbFlags.INTEGERKEY);
  // the same list from a transaction, which sees its own new tables
  t.env.write((txn) => {
    t.env.table("gamma");
    assert.deepEqual(txn.tables().map((e) => e.name).sort(), ["alpha", "beta", "gamma"]);
  });
  assert.equal(t.env.tables().length, 3);
});

test("tableFlags reports a table's flags in a transaction", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint64", dupSort: true, values: "uint32" });
  const f = t.env.read((txn) => txn.tableFlags(tbl));
  assert.equal(f.flags & 0xff, tbl.flags & 0xff);
  assert.ok(f.flags & DbFlags.INTEGERKEY);
});

test("incrementSequence returns the value before the increment and sequence reads it", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  assert.equal(t.env.read((txn) => txn.sequence(tbl)), 0);
  t.env.write((txn) => {
    assert.equal(txn.incrementSequence(tbl), 0);
    assert.equal(txn.incrementSequence(tbl), 1);
    assert.equal(txn.incrementSequence(tbl, 10), 2);
    assert.equal(txn.incrementSequence(tbl, 0), 12);
    assert.equal(txn.sequence(tbl), 12);
  });
  assert.equal(t.env.read((txn) => txn.sequence(tbl)), 12);
  // an aborted increment is discarded
  const w = t.env.beginWrite();
  w.incrementSequence(tbl, 100);
  w.abort();
  assert.equal(t.env.read((txn) => txn.sequence(tbl)), 12);
  assert.throws(() => t.env.write((txn) => txn.incrementSequence(tbl, -1)), RangeError);
  assert.throws(() => t.env.write((txn) => txn.incrementSequence(tbl, 1.5)), RangeError);
});

test("rename gives a table a new name; the handle follows it", () => {
  using t = tempEnv();
  const tbl = t.env.table("old", S);
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  t.env.write((txn) => txn.rename(tbl, "new"));
  assert.equal(tbl.name, "new");
  assert.deepEqual(t.env.tables().map((e) => e.name), ["new"]);
  assert.equal(t.env.table("new", S), tbl);
  assert.equal(t.env.read((txn) => txn.get(tbl, "k")), "v");
  throwsMdbx(() => t.env.table("old", { ...S, create: false }), "MDBX_NOTFOUND");
  t.env.close();
  using env = open(t.path);
  assert.equal(env.read((txn) => txn.get(env.table("new", S), "k")), "v");
});

test("a rename in an aborted transaction leaves the table under its old name", () => {
  using t = tempEnv();
  const tbl = t.env.table("old", S);
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  const w = t.env.beginWrite();
  w.rename(tbl, "new");
  w.abort();
  assert.deepEqual(t.env.tables().map((e) => e.name), ["old"]);
  const again = t.env.table("old", S);
  assert.notEqual(again, tbl, "libmdbx closed the renamed handle; a fresh one is opened");
  assert.equal(t.env.read((txn) => txn.get(again, "k")), "v");
  // the name the rename would have given is free for a new table
  const fresh = t.env.table("new", S);
  t.env.write((txn) => txn.put(fresh, "a", "b"));
  assert.deepEqual(t.env.tables().map((e) => e.name).sort(), ["new", "old"]);
});

test("renaming the main table is a TypeError; renaming onto an existing name fails with MDBX_KEYEXIST", () => {
  using t = tempEnv();
  const main = t.env.table(null);
  const a = t.env.table("a"), b = t.env.table("b");
  assert.throws(() => t.env.write((txn) => txn.rename(main, "x")), /main table cannot be renamed/);
  throwsMdbx(() => t.env.write((txn) => txn.rename(a, "b")), "MDBX_KEYEXIST");
  assert.equal(a.name, "a");
  assert.ok(b);
});

test("clear deletes every entry but keeps the table", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "string" });
  t.env.write((txn) => {
    for (let i = 0; i < 1000; i++) txn.put(tbl, i, "v");
  });
  t.env.write((txn) => txn.clear(tbl));
  assert.equal(t.env.read((txn) => txn.stat(tbl).entries), 0);
  assert.deepEqual(t.env.tables().map((e) => e.name), ["t"]);
  t.env.write((txn) => txn.put(tbl, 1, "again"));
  assert.equal(t.env.read((txn) => txn.get(tbl, 1)), "again");
});

test("drop deletes the table; its handle is then unusable and the name can be created afresh", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  t.env.write((txn) => txn.drop(tbl));
  assert.deepEqual(t.env.tables(), []);
  throwsMdbx(() => t.env.read((txn) => txn.get(tbl, "k")), "MDBX_BAD_DBI");
  throwsMdbx(() => t.env.write((txn) => txn.put(tbl, "k", "v")), "MDBX_BAD_DBI");
  const again = t.env.table("t", S);
  assert.notEqual(again, tbl);
  assert.equal(t.env.read((txn) => txn.get(again, "k")), undefined);
});

test("a drop in an aborted transaction leaves the table and its data in place", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  const w = t.env.beginWrite();
  w.drop(tbl);
  w.abort();
  const again = t.env.table("t", S);
  assert.equal(t.env.read((txn) => txn.get(again, "k")), "v");
  assert.deepEqual(t.env.tables().map((e) => e.name), ["t"]);
});

test("the canary holds x, y, z set by writers and v, the txnid of the last change", () => {
  using t = tempEnv();
  assert.deepEqual(t.env.read((txn) => txn.canary()), { x: 0, y: 0, z: 0, v: 0 });
  const id = t.env.write((txn) => {
    txn.setCanary({ x: 1, y: 2, z: 3 });
    return txn.id;
  });
  assert.deepEqual(t.env.read((txn) => txn.canary()), { x: 1, y: 2, z: 3, v: id });
  // fields left out keep their value
  t.env.write((txn) => txn.setCanary({ y: 20 }));
  const c = t.env.read((txn) => txn.canary());
  assert.deepEqual([c.x, c.y, c.z], [1, 20, 3]);
  assert.equal(c.v, id + 1);
  // large values survive (doubles carry up to 2^53)
  t.env.write((txn) => txn.setCanary({ z: 2 ** 40 }));
  assert.equal(t.env.read((txn) => txn.canary().z), 2 ** 40);
  // an aborted change is discarded
  const w = t.env.beginWrite();
  w.setCanary({ x: 99 });
  w.abort();
  assert.equal(t.env.read((txn) => txn.canary().x), 1);
});
