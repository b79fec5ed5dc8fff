import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { tempEnv, throwsMdbx } from "./helpers.ts";

const S = { keys: "string", values: "string" } as const;

test("getView returns the value's bytes without copying, or undefined when absent", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "value"));
  t.env.read((x) => {
    const v = x.getView(tbl, "k")!;
    assert.ok(v instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(v), "value");
    assert.equal(x.getView(tbl, "missing"), undefined);
    // two views of one value see the same bytes of the map
    const w = x.getView(tbl, "k")!;
    assert.deepEqual(w, v);
  });
});

test("a view keeps showing its snapshot while later commits change the value", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "old!"));
  using r = t.env.beginRead();
  const v = r.getView(tbl, "k")!;
  t.env.write((x) => x.put(tbl, "k", "new!"));
  t.env.write((x) => x.put(tbl, "k", "newer"));
  assert.equal(new TextDecoder().decode(v), "old!");
});

test("a view is detached (length 0) when its read transaction ends, and reading it does not crash", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "value"));
  const r = t.env.beginRead();
  const v = r.getView(tbl, "k")!;
  assert.equal(v.length, 5);
  r.end();
  assert.equal(v.length, 0);
  assert.equal(v.byteLength, 0);
  assert.equal(v[0], undefined);
  // iterating or copying a detached array is a TypeError of the language, never a read of freed memory
  assert.throws(() => [...v], TypeError);
  assert.throws(() => v.slice(), TypeError);
});

test("views handed out inside env.read are detached when the callback returns", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "value"));
  const leaked = t.env.read((x) => x.getView(tbl, "k")!);
  assert.equal(leaked.length, 0);
});

test("a view from a write transaction shows its own uncommitted value and is detached at commit or abort", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  for (const end of ["commit", "abort"] as const) {
    const w = t.env.beginWrite();
    w.put(tbl, "k", `dirty ${end}`);
    const v = w.getView(tbl, "k")!;
    assert.equal(new TextDecoder().decode(v), `dirty ${end}`);
    w[end]();
    assert.equal(v.length, 0);
  }
  assert.equal(t.env.read((x) => x.get(tbl, "k")), "dirty commit");
});

test("a view of a large value (overflow pages) shows all of it", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t");
  const big = new Uint8Array(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  t.env.write((x) => x.put(tbl, "big", big));
  t.env.read((x) => {
    const v = x.getView(tbl, "big")!;
    assert.equal(v.length, big.length);
    assert.deepEqual(v, big);
  });
});

test("a view of an empty value is an empty Uint8Array", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  t.env.write((x) => x.put(tbl, "e", new Uint8Array(0)));
  t.env.read((x) => {
    const v = x.getView(tbl, "e");
    assert.ok(v instanceof Uint8Array);
    assert.equal(v.length, 0);
  });
});

test("many views in one transaction are all detached at its end", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32", values: "string" });
  t.env.write((x) => {
    for (let i = 0; i < 500; i++) x.put(tbl, i, `v${i}`);
  });
  const r = t.env.beginRead();
  const views = [];
  for (let i = 0; i < 500; i++) views.push(r.getView(tbl, i)!);
  assert.equal(new TextDecoder().decode(views[123]), "v123");
  r.end();
  assert.ok(views.every((v) => v.length === 0));
});

test("reserve returns room for the value that commit then stores", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string" });
  t.env.write((x) => {
    const room = x.reserve(tbl, "k", 8);
    assert.equal(room.length, 8);
    room.set([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(x.get(tbl, "k"), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  });
  assert.deepEqual(t.env.read((x) => x.get(tbl, "k")), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
});

test("a reserved buffer is detached when its transaction ends", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  const w = t.env.beginWrite();
  const room = w.reserve(tbl, "k", 16);
  room.fill(7);
  w.commit();
  assert.equal(room.length, 0);
  assert.deepEqual(t.env.read((x) => x.get(tbl, "k")), new Uint8Array(16).fill(7));
});

test("reserve of a large value fills overflow pages", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t");
  t.env.write((x) => {
    const room = x.reserve(tbl, "big", 500_000);
    for (let i = 0; i < room.length; i++) room[i] = i & 0xff;
  });
  const v = t.env.read((x) => x.get(tbl, "big"))!;
  assert.equal(v.length, 500_000);
  assert.equal(v[499_999], 499_999 & 0xff);
});

test("reserve honours put flags, refuses bad lengths and does not work on dupsort tables", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  const dup = t.env.table("d", { dupSort: true });
  t.env.write((x) => x.put(tbl, "k", "v"));
  throwsMdbx(() => t.env.write((x) => x.reserve(tbl, "k", 4, { noOverwrite: true })), "MDBX_KEYEXIST");
  assert.throws(() => t.env.write((x) => x.reserve(tbl, "k", -1)), RangeError);
  assert.throws(() => t.env.write((x) => x.reserve(tbl, "k", 1.5)), RangeError);
  throwsMdbx(() => t.env.write((x) => x.reserve(dup, "k", 4)), "MDBX_INCOMPATIBLE");
  assert.deepEqual(t.env.read((x) => x.get(tbl, "k")), new TextEncoder().encode("v"));
  t.env.write((x) => assert.equal(x.reserve(tbl, "empty", 0).length, 0));
  assert.deepEqual(t.env.read((x) => x.get(tbl, "empty")), new Uint8Array(0));
});
