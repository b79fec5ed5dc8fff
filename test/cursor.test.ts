import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { Cursor } from "../mod.ts";
import { tempEnv, throwsMdbx } from "./helpers.ts";

const S = { keys: "string", values: "string" } as const;
const e = (key: string, value: string) => ({ key, value });

/** A plain table b→B, d→D, f→F and a dupsort table a→1,2,3  c→1  e→1,2. */
function fixture() {
  const t = tempEnv();
  const plain = t.env.table("plain", S);
  const dup = t.env.table("dup", { ...S, dupSort: true });
  t.env.write((x) => {
    for (const k of ["b", "d", "f"]) x.put(plain, k, k.toUpperCase());
    for (const [k, v] of [["a", "1"], ["a", "2"], ["a", "3"], ["c", "1"], ["e", "1"], ["e", "2"]]) x.put(dup, k, v);
  });
  return { t, env: t.env, plain, dup };
}

test("first and last land on the table's ends; an empty table has none", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  const empty = env.table("empty", S);
  env.read((x) => {
    const c = x.cursor(plain);
    assert.ok(c instanceof Cursor);
    assert.equal(c.txn, x);
    assert.deepEqual(c.first(), e("b", "B"));
    assert.deepEqual(c.last(), e("f", "F"));
    const ce = x.cursor(empty);
    assert.equal(ce.first(), undefined);
    assert.equal(ce.last(), undefined);
  });
});

test("next and prev walk the table in both directions and return undefined past its ends", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    const forward = [];
    for (let r = c.next(); r; r = c.next()) forward.push(r.key);
    assert.deepEqual(forward, ["b", "d", "f"], "a new cursor's next() starts at the first entry");
    assert.equal(c.next(), undefined);
    const d = x.cursor(plain);
    const backward = [];
    for (let r = d.prev(); r; r = d.prev()) backward.push(r.key);
    assert.deepEqual(backward, ["f", "d", "b"], "a new cursor's prev() starts at the last entry");
    assert.equal(d.prev(), undefined);
  });
});

test("current returns the entry under the cursor, and undefined on a new cursor", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    assert.equal(c.current(), undefined);
    c.set("d");
    assert.deepEqual(c.current(), e("d", "D"));
    c.next();
    assert.deepEqual(c.current(), e("f", "F"));
  });
});

test("set lands on exactly the key, or returns undefined and leaves the cursor unpositioned", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    assert.deepEqual(c.set("d"), e("d", "D"));
    assert.deepEqual(c.next(), e("f", "F"));
    assert.equal(c.set("c"), undefined);
    // an unpositioned cursor has nothing under it and nowhere relative to go
    assert.equal(c.current(), undefined);
    assert.equal(c.next(), undefined);
    assert.equal(c.prev(), undefined);
    // absolute positioning works again
    assert.deepEqual(c.first(), e("b", "B"));
  });
});

test("setRange lands on the first key >= the given one", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    assert.deepEqual(c.setRange("a"), e("b", "B"));
    assert.deepEqual(c.setRange("b"), e("b", "B"));
    assert.deepEqual(c.setRange("c"), e("d", "D"));
    assert.deepEqual(c.setRange("f"), e("f", "F"));
    assert.equal(c.setRange("g"), undefined);
  });
});

test("lessThan, lessOrEqual and greaterThan find the neighbours of a key", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    const keys = (f: (k: string) => { key: string } | undefined) =>
      ["a", "b", "c", "f", "z"].map((k) => f(k)?.key ?? null);
    assert.deepEqual(keys((k) => c.lessThan(k)), [null, null, "b", "d", "f"]);
    assert.deepEqual(keys((k) => c.lessOrEqual(k)), [null, "b", "b", "f", "f"]);
    assert.deepEqual(keys((k) => c.greaterThan(k)), ["b", "d", "d", null, null]);
  });
});

test("key neighbours on a dupsort table land on the key's first value, or the last value of the key before", () => {
  const { t, env, dup } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(dup);
    assert.deepEqual(c.lessThan("c"), e("a", "3"));
    assert.deepEqual(c.lessOrEqual("c"), e("c", "1"));
    assert.deepEqual(c.lessOrEqual("e"), e("e", "1"));
    assert.deepEqual(c.greaterThan("a"), e("c", "1"));
    assert.deepEqual(c.setRange("b"), e("c", "1"));
    assert.deepEqual(c.set("e"), e("e", "1"));
  });
});

test("getBoth lands on an exact key/value pair and getBothRange on the key's first value >= the given one", () => {
  const { t, env, dup } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(dup);
    assert.deepEqual(c.getBoth("a", "2"), e("a", "2"));
    assert.deepEqual(c.next(), e("a", "3"));
    assert.equal(c.getBoth("a", "9"), undefined);
    assert.equal(c.getBoth("b", "1"), undefined);
    assert.deepEqual(c.getBothRange("a", "2"), e("a", "2"));
    assert.deepEqual(c.getBothRange("a", "25"), e("a", "3"));
    assert.equal(c.getBothRange("a", "4"), undefined, "no value of this key is >= 4");
    assert.equal(c.getBothRange("b", "1"), undefined);
  });
});

test("firstDup, lastDup, nextDup and prevDup move within the current key's values", () => {
  const { t, env, dup } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(dup);
    c.set("a");
    assert.deepEqual(c.lastDup(), e("a", "3"));
    assert.deepEqual(c.prevDup(), e("a", "2"));
    assert.deepEqual(c.prevDup(), e("a", "1"));
    assert.equal(c.prevDup(), undefined, "prevDup stops at the key's first value");
    assert.deepEqual(c.firstDup(), e("a", "1"));
    assert.deepEqual(c.nextDup(), e("a", "2"));
    assert.deepEqual(c.nextDup(), e("a", "3"));
    assert.equal(c.nextDup(), undefined, "nextDup stops at the key's last value");
    c.set("c");
    assert.equal(c.nextDup(), undefined);
  });
});

test("nextNoDup and prevNoDup skip to the neighbouring keys", () => {
  const { t, env, dup } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(dup);
    c.first();
    const keys = [c.current()!.key];
    for (let r = c.nextNoDup(); r; r = c.nextNoDup()) keys.push(`${r.key}${r.value}`);
    assert.deepEqual(keys, ["a", "c1", "e1"], "nextNoDup lands on the next key's first value");
    c.last();
    const back = [];
    for (let r = c.prevNoDup(); r; r = c.prevNoDup()) back.push(`${r.key}${r.value}`);
    assert.deepEqual(back, ["c1", "a3"], "prevNoDup lands on the previous key's last value");
    // plain next/prev step through every value
    c.set("c");
    assert.deepEqual(c.prev(), e("a", "3"));
  });
});

test("count tells how many values the current key has (1 in a plain table, 0 when unpositioned)", () => {
  const { t, env, dup, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(dup);
    assert.equal(c.count(), 0);
    c.set("a");
    assert.equal(c.count(), 3);
    c.set("c");
    assert.equal(c.count(), 1);
    const p = x.cursor(plain);
    p.first();
    assert.equal(p.count(), 1);
  });
});

test("dup operations on a plain table: value lookups are MDBX_INCOMPATIBLE, dup moves find nothing more", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    throwsMdbx(() => c.getBoth("b", "B"), "MDBX_INCOMPATIBLE", /cursor operation on table "plain"/);
    c.first();
    assert.deepEqual(c.firstDup(), e("b", "B"));
    assert.equal(c.nextDup(), undefined);
  });
});

test("cursor.put stores a pair and moves the cursor to it", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.write((x) => {
    const c = x.cursor(plain);
    c.put("c", "C");
    assert.deepEqual(c.current(), e("c", "C"));
    assert.deepEqual(c.next(), e("d", "D"));
    throwsMdbx(() => c.put("c", "X", { noOverwrite: true }), "MDBX_KEYEXIST");
    // current: replace the value under the cursor
    c.set("d");
    c.put("d", "DD", { current: true });
    assert.deepEqual(c.current(), e("d", "DD"));
  });
  assert.deepEqual(env.read((x) => [...x.range(plain)].map((r) => r.key + r.value)), ["bB", "cC", "dDD", "fF"]);
});

test("cursor.del deletes the pair under the cursor, or with allDups every value of its key", () => {
  const { t, env, plain, dup } = fixture();
  using _ = t;
  env.write((x) => {
    const c = x.cursor(plain);
    c.set("d");
    c.del();
    assert.deepEqual(c.next(), e("f", "F"), "after a delete, next() goes to the entry after it");
    const d = x.cursor(dup);
    d.getBoth("a", "2");
    d.del();
    d.set("e");
    d.del({ allDups: true });
  });
  env.read((x) => {
    assert.deepEqual([...x.keys(plain)], ["b", "f"]);
    assert.deepEqual([...x.range(dup)].map((r) => r.key + r.value), ["a1", "a3", "c1"]);
  });
});

test("cursor writes in a read transaction fail with MDBX_EACCES", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    throwsMdbx(() => c.put("x", "y"), "MDBX_EACCES");
    c.first();
    throwsMdbx(() => c.del(), "MDBX_EACCES");
  });
});

test("a cursor returns values larger than the result buffer", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t", { keys: "uint32" });
  const big = new Uint8Array(300_000).map((_, i) => i & 0xff);
  t.env.write((x) => {
    x.put(tbl, 1, new Uint8Array([1]));
    x.put(tbl, 2, big);
    x.put(tbl, 3, new Uint8Array([3]));
  });
  t.env.read((x) => {
    const c = x.cursor(tbl);
    assert.deepEqual(c.first(), { key: 1, value: new Uint8Array([1]) });
    assert.deepEqual(c.next(), { key: 2, value: big });
    assert.deepEqual(c.next(), { key: 3, value: new Uint8Array([3]) }, "the cursor did not skip an entry");
    assert.deepEqual(c.set(2)!.value, big);
  });
});

test("cursors on integer-key tables position numerically", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "uint32" });
  t.env.write((x) => [1, 9, 10, 300].forEach((k) => x.put(tbl, k, k * 2)));
  t.env.read((x) => {
    const c = x.cursor(tbl);
    assert.deepEqual(c.setRange(2), { key: 9, value: 18 });
    assert.deepEqual(c.next(), { key: 10, value: 20 });
    assert.deepEqual(c.lessThan(300), { key: 10, value: 20 });
    assert.deepEqual(c.last(), { key: 300, value: 600 });
  });
});

test("close is idempotent, and a closed cursor throws MDBX_BAD_TXN saying it was closed", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    const c = x.cursor(plain);
    assert.equal(c.isOpen, true);
    c.close();
    c.close();
    assert.equal(c.isOpen, false);
    for (const call of [() => c.first(), () => c.next(), () => c.count(), () => c.set("b"), () => c.del()]) {
      throwsMdbx(call, "MDBX_BAD_TXN", /cursor was closed/);
    }
    // the transaction is unaffected
    assert.equal(x.get(plain, "b"), "B");
  });
});

test("a cursor is closed when its transaction ends, and then says so", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  const r = env.beginRead();
  const c = r.cursor(plain);
  c.first();
  r.end();
  assert.equal(c.isOpen, false);
  throwsMdbx(() => c.next(), "MDBX_BAD_TXN", /transaction has ended/);
  c.close();
  const w = env.beginWrite();
  const cw = w.cursor(plain);
  w.commit();
  throwsMdbx(() => cw.put("k", "v"), "MDBX_BAD_TXN", /transaction has ended/);
});

test("`using` closes a cursor at the end of its block", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    let outer: Cursor<"string", "string">;
    {
      using c = x.cursor(plain);
      outer = c;
      c.first();
    }
    assert.equal(outer.isOpen, false);
  });
});

test("many cursors can be opened and closed in one transaction", () => {
  const { t, env, plain } = fixture();
  using _ = t;
  env.read((x) => {
    for (let i = 0; i < 10_000; i++) {
      const c = x.cursor(plain);
      if (i % 1000 === 0) assert.deepEqual(c.last(), e("f", "F"));
      c.close();
    }
    const open = Array.from({ length: 200 }, () => x.cursor(plain));
    assert.ok(open.every((c) => c.first()!.key === "b"));
  });
});
