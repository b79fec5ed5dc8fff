/**
 * The compact relation index: a dupSort + dupFixed table keyed by
 * `<src><dir><type>` with 16-byte destination ids as values, against the
 * composite-key layout `<src><dir><type><dst>` holding the same relations:
 * the same relations come back (`dups()`, `dupsPacked()`, counts per prefix),
 * in read and write transactions, and the compact layout takes at least 35 %
 * fewer pages.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import process from "node:process";
import type { Table } from "../mod.ts";
import { tempEnv } from "./helpers.ts";
import { compareBytes, int, prng } from "./children/cache_data.ts";

const SEED = process.env.TURBOMDBX_SEED ? Number(process.env.TURBOMDBX_SEED) : Date.now() % 1_000_000_007;
const why = `seed ${SEED} (replay: TURBOMDBX_SEED=${SEED})`;

function prefix(src: number, type: number): Uint8Array {
  const p = new Uint8Array(19);
  new DataView(p.buffer).setUint32(0, Math.imul(src, 0x9e3779b1) >>> 0);
  new DataView(p.buffer).setUint32(12, src);
  p[18] = type;
  return p;
}

test("dupsPacked() and dups() of the compact layout give every relation the composite layout has, in order", () => {
  using db = tempEnv({ pageSize: 512 });
  const { env } = db;
  const comp = env.table("composite") as Table<"binary", "binary">;
  const packed = env.table("packed", { dupSort: true, dupFixed: true }) as Table<"binary", "binary">;
  const rng = prng(SEED);
  const empty = new Uint8Array(0);
  const sources = 60;
  env.write((txn) => {
    for (let s = 0; s < sources; s++) {
      // a few sources with many relations: their values span several pages
      const n = s % 17 === 0 ? int(rng, 300, 700) : int(rng, 0, 12);
      for (let j = 0; j < n; j++) {
        const type = int(rng, 0, 1), dst = new Uint8Array(16).map(() => int(rng, 0, 255));
        const k = new Uint8Array(35);
        k.set(prefix(s, type));
        k.set(dst, 19);
        txn.put(comp, k, empty);
        txn.put(packed, prefix(s, type), dst);
      }
    }
  });
  const check = (txn: import("../mod.ts").Txn, where: string) => {
    for (let s = 0; s < sources; s++) {
      for (const type of [0, 1]) {
        const p = prefix(s, type);
        const want = [...txn.keys(comp, { prefix: p })].map((k) => k.subarray(19));
        const got = [...txn.dups(packed, p)];
        assert.equal(got.length, want.length, `${where}: relations of source ${s} type ${type} (${why})`);
        got.forEach((d, i) => assert.equal(compareBytes(d, want[i]), 0, `${where}: destination ${i}`));
        const all = txn.dupsPacked(packed, p);
        assert.equal(all.length, 16 * want.length, `${where}: dupsPacked length (${why})`);
        want.forEach((d, i) =>
          assert.equal(compareBytes(all.subarray(16 * i, 16 * i + 16), d), 0, `${where}: packed ${i}`)
        );
        assert.equal(txn.count(packed, { gte: p, lte: p }), want.length, `${where}: count per prefix`);
        assert.equal(txn.count(comp, { prefix: p }), want.length, `${where}: count of the composite prefix`);
      }
    }
  };
  env.read((txn) => check(txn, "read"));
  env.write((txn) => {
    // the write transaction's own changes: a new relation and a removed one
    const p = prefix(0, 0), dst = new Uint8Array(16).fill(7);
    const k = new Uint8Array(35);
    k.set(p);
    k.set(dst, 19);
    txn.put(comp, k, empty);
    txn.put(packed, p, dst);
    const first = txn.dupsPacked(packed, prefix(17, 1)).slice(0, 16);
    if (first.length) {
      txn.del(packed, prefix(17, 1), first);
      const k2 = new Uint8Array(35);
      k2.set(prefix(17, 1));
      k2.set(first, 19);
      txn.del(comp, k2);
    }
    check(txn, "write");
  });
  env.read((txn) => {
    assert.equal(txn.dupsPacked(packed, prefix(999, 0)).length, 0, "an absent key gives no values");
    assert.throws(() => txn.dupsPacked(comp, prefix(0, 0)), TypeError);
  });
});

test("the compact relation index takes at least 35 % fewer pages than composite keys", () => {
  using db = tempEnv();
  const { env } = db;
  const comp = env.table("composite") as Table<"binary", "binary">;
  const packed = env.table("packed", { dupSort: true, dupFixed: true }) as Table<"binary", "binary">;
  const empty = new Uint8Array(0);
  env.write((txn) => {
    for (let s = 0; s < 5000; s++) {
      for (let j = 0; j < 20; j++) {
        const dst = new Uint8Array(16);
        new DataView(dst.buffer).setUint32(0, Math.imul(s * 31 + j, 0x85ebca6b) >>> 0);
        new DataView(dst.buffer).setUint32(12, j);
        const k = new Uint8Array(35);
        k.set(prefix(s, j & 1));
        k.set(dst, 19);
        txn.put(comp, k, empty);
        txn.put(packed, prefix(s, j & 1), dst);
      }
    }
  });
  env.read((txn) => {
    const pages = (t: Table) => {
      const st = txn.stat(t);
      return st.branchPages + st.leafPages + st.largePages;
    };
    const a = pages(comp), b = pages(packed);
    assert.ok(b <= a * 0.65, `composite ${a} pages, compact ${b} (${((1 - b / a) * 100).toFixed(1)} % smaller)`);
    assert.equal(txn.count(packed), txn.count(comp));
  });
});
