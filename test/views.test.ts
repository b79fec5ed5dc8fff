import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { tempEnv, throwsMdbx } from "./helpers.ts";
import type { UnsafeView } from "../mod.ts";

const S = { keys: "string", values: "string" } as const;

test("unsafeGetView returns the value's bytes without copying, or undefined when absent", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "value"));
  t.env.read((x) => {
    const v = x.unsafeGetView(tbl, "k")!;
    assert.ok(v instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(v), "value");
    assert.equal(x.unsafeGetView(tbl, "missing"), undefined);
    // two views of one value see the same bytes of the map
    const w = x.unsafeGetView(tbl, "k")!;
    assert.deepEqual(w, v);
  });
});

test("a view keeps showing its snapshot while later commits change the value", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "old!"));
  using r = t.env.beginRead();
  const v = r.unsafeGetView(tbl, "k")!;
  t.env.write((x) => x.put(tbl, "k", "new!"));
  t.env.write((x) => x.put(tbl, "k", "newer"));
  assert.equal(new TextDecoder().decode(v), "old!");
});

test("a view is detached (length 0) when its read transaction ends, and reading it does not crash", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "value"));
  const r = t.env.beginRead();
  const v = r.unsafeGetView(tbl, "k")!;
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
  const leaked = t.env.read((x) => x.unsafeGetView(tbl, "k")!);
  assert.equal(leaked.length, 0);
});

test("a view from a write transaction shows its own uncommitted value and is detached at commit or abort", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  for (const end of ["commit", "abort"] as const) {
    const w = t.env.beginWrite();
    w.put(tbl, "k", `dirty ${end}`);
    const v = w.unsafeGetView(tbl, "k")!;
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
    const v = x.unsafeGetView(tbl, "big")!;
    assert.equal(v.length, big.length);
    assert.deepEqual(v, big);
  });
});

test("a view of an empty value is an empty Uint8Array", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  t.env.write((x) => x.put(tbl, "e", new Uint8Array(0)));
  t.env.read((x) => {
    const v = x.unsafeGetView(tbl, "e");
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
  for (let i = 0; i < 500; i++) views.push(r.unsafeGetView(tbl, i)!);
  assert.equal(new TextDecoder().decode(views[123]), "v123");
  r.end();
  assert.ok(views.every((v) => v.length === 0));
});

test("unsafeReserve returns room for the value that commit then stores", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string" });
  t.env.write((x) => {
    const room = x.unsafeReserve(tbl, "k", 8);
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
  const room = w.unsafeReserve(tbl, "k", 16);
  room.fill(7);
  w.commit();
  assert.equal(room.length, 0);
  assert.deepEqual(t.env.read((x) => x.get(tbl, "k")), new Uint8Array(16).fill(7));
});

test("unsafeReserve of a large value fills overflow pages", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t");
  t.env.write((x) => {
    const room = x.unsafeReserve(tbl, "big", 500_000);
    for (let i = 0; i < room.length; i++) room[i] = i & 0xff;
  });
  const v = t.env.read((x) => x.get(tbl, "big"))!;
  assert.equal(v.length, 500_000);
  assert.equal(v[499_999], 499_999 & 0xff);
});

test("unsafeReserve honours put flags, refuses bad lengths and does not work on dupsort tables", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  const dup = t.env.table("d", { dupSort: true });
  t.env.write((x) => x.put(tbl, "k", "v"));
  throwsMdbx(() => t.env.write((x) => x.unsafeReserve(tbl, "k", 4, { noOverwrite: true })), "MDBX_KEYEXIST");
  assert.throws(() => t.env.write((x) => x.unsafeReserve(tbl, "k", -1)), RangeError);
  assert.throws(() => t.env.write((x) => x.unsafeReserve(tbl, "k", 1.5)), RangeError);
  throwsMdbx(() => t.env.write((x) => x.unsafeReserve(dup, "k", 4)), "MDBX_INCOMPATIBLE");
  assert.deepEqual(t.env.read((x) => x.get(tbl, "k")), new TextEncoder().encode("v"));
  t.env.write((x) => assert.equal(x.unsafeReserve(tbl, "empty", 0).length, 0));
  assert.deepEqual(t.env.read((x) => x.get(tbl, "empty")), new Uint8Array(0));
});

test("an unsafe view's type leaves out every member that writes; its copies are ordinary arrays", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "value"));
  t.env.read((x) => {
    const v: UnsafeView = x.unsafeGetView(tbl, "k")!;
    // Checked by the type checker (deno test, ./run check), never run: each write would crash the process.
    const writes = () => {
      // @ts-expect-error an unsafe view is read-only
      v[0] = 1;
      // @ts-expect-error no set()
      v.set([1]);
      // @ts-expect-error no fill()
      v.fill(0);
      // @ts-expect-error no copyWithin()
      v.copyWithin(0, 1);
      // @ts-expect-error no reverse() in place
      v.reverse();
      // @ts-expect-error no sort() in place
      v.sort();
      // @ts-expect-error a narrower view is an unsafe view too
      v.subarray(1)[0] = 1;
      // @ts-expect-error not assignable where an ordinary Uint8Array is expected
      const u: Uint8Array = v;
      return u;
    };
    assert.equal(typeof writes, "function");
    assert.equal(v.subarray(1, 3).length, 2);
    const copy = v.slice();
    copy[0] = 0x56; // "V"
    assert.equal(new TextDecoder().decode(copy), "Value");
    assert.equal(new TextDecoder().decode(v), "value", "the copy is not the database's memory");
  });
  assert.equal(t.env.read((x) => x.get(tbl, "k")), "value");
});

test("the buffer of an unsafe view or reserved room refuses transfer(), so it cannot escape its transaction", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  t.env.write((x) => x.put(tbl, "k", "value"));
  const refused = (e: unknown) =>
    e instanceof TypeError && /native memory of a transaction.*copy the bytes/.test(e.message);
  const r = t.env.beginRead();
  const v = r.unsafeGetView(tbl, "k")!;
  assert.throws(() => (v.buffer as ArrayBuffer).transfer(), refused);
  assert.throws(() => (v.buffer as ArrayBuffer).transferToFixedLength(), refused);
  assert.equal(new TextDecoder().decode(v), "value", "a refused transfer leaves the view as it was");
  r.end();
  assert.equal(v.length, 0, "still detached at the end");
  const w = t.env.beginWrite();
  const room = w.unsafeReserve(tbl, "r", 4);
  assert.throws(() => (room.buffer as ArrayBuffer).transfer(), refused);
  room.set([1, 2, 3, 4]);
  w.commit();
  assert.equal(room.length, 0);
  assert.deepEqual(t.env.read((x) => x.get(tbl, "r")), "\x01\x02\x03\x04");
});

test("in a write transaction, reserved room and views of dirty values are detached at its next change", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  const other = t.env.table("other");
  const w = t.env.beginWrite();
  w.put(tbl, "a", "dirty");
  const changes: [string, () => unknown][] = [
    ["put", () => w.put(tbl, "b", "x")],
    ["del", () => w.del(tbl, "b")],
    ["replace", () => w.replace(tbl, "c", "y")],
    ["unsafeReserve", () => w.unsafeReserve(tbl, "d", 2).set([0x64, 0x64])],
    ["clear", () => w.clear(other)],
    ["cursor put", () => w.cursor(tbl).put("e", "z")],
    ["nested begin", () => w.begin().commit()],
  ];
  for (const [what, change] of changes) {
    const room = w.unsafeReserve(tbl, "r", 3); // a change itself: views taken before it would be detached
    const view = w.unsafeGetView(tbl, "a")!;
    assert.equal(new TextDecoder().decode(view), "dirty", what);
    assert.equal(room.length, 3, what);
    change();
    assert.equal(view.length, 0, `a dirty view is detached by ${what}`);
    assert.equal(room.length, 0, `reserved room is detached by ${what}`);
    assert.equal(w.get(tbl, "a"), "dirty", `${what} left the value itself alone`);
  }
  w.commit();
  assert.deepEqual(t.env.read((x) => [...x.keys(tbl)]), ["a", "c", "d", "e", "r"]);
});

test("a change whose key or value is a view of the transaction's own dirty memory is refused", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", S);
  const w = t.env.beginWrite();
  w.put(tbl, "a", "dirty");
  const view = w.unsafeGetView(tbl, "a")!;
  assert.throws(
    () => w.put(tbl, "b", view as unknown as Uint8Array),
    (e) =>
      e instanceof TypeError && /unsafe view of the transaction's own dirty memory.*view.slice\(\)/.test(e.message),
  );
  w.put(tbl, "b", w.unsafeGetView(tbl, "a")!.slice()); // a copy is fine
  w.commit();
  assert.equal(t.env.read((x) => x.get(tbl, "b")), "dirty");
});

test("every read other than unsafeGetView returns copies that outlive the transaction", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  const dup = t.env.table("d", { dupSort: true });
  const bytes = (s: string) => new TextEncoder().encode(s);
  t.env.write((x) => {
    x.put(tbl, "k", "value");
    x.put(dup, "k", "v1");
  });
  const got: Uint8Array[] = [];
  t.env.read((x) => {
    got.push(x.get(tbl, "k")!, x.getWithCount(tbl, "k")!.value, x.getGreaterOrEqual(tbl, "a")!.value);
    got.push(...x.values(tbl), ...[...x.range(tbl)].map((e) => e.value), ...x.dups(dup, "k"));
    const cur = x.cursor(tbl);
    got.push(cur.first()!.value, cur.first()!.key);
  });
  got.push(t.env.write((x) => x.replace(tbl, "k", "other")!));
  for (const v of got) {
    assert.ok(v.length > 0, "not detached at the transaction's end");
    v.fill(0x21); // each is the caller's own memory: writing it changes nothing stored
  }
  t.env.read((x) => {
    assert.deepEqual(x.get(tbl, "k"), bytes("other"));
    assert.deepEqual([...x.dups(dup, "k")], [bytes("v1")]);
  });
});

test("unsafeReserve of more than a value may hold reports the size asked for and reserves nothing", () => {
  using t = tempEnv();
  const tbl = t.env.table("t");
  const max = t.env.maxValueSize(tbl.flags);
  t.env.write((x) => x.put(tbl, "small", new Uint8Array(3))); // the last value encoded: 3 bytes
  // 3 GiB fits the native 32-bit length; 5 GiB and 4 GiB would wrap around to 1 GiB and 0 bytes
  for (const length of [3 * 2 ** 30, 5 * 2 ** 30, 2 ** 32]) {
    throwsMdbx(
      () => t.env.write((x) => x.unsafeReserve(tbl, "k", length)),
      "MDBX_BAD_VALSIZE",
      new RegExp(`reserve in table "t": the value of ${length} bytes is longer than the ${max} bytes`),
    );
  }
  assert.equal(t.env.read((x) => x.has(tbl, "k")), false);
});
