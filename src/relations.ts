/**
 * The compact relation index (docs/order-statistics.md, "The compact relation
 * index"): a dupSort + dupFixed table keyed by `<src><dir><type>` whose values
 * are fixed-size destination ids. libmdbx stores such values packed on DUPFIXED
 * pages, and hands a page of them out at once (MDBX_GET_MULTIPLE /
 * MDBX_NEXT_MULTIPLE); `txn.dupsPacked()` reads all of a key's values that
 * way, one native call per page instead of one entry per value.
 *
 * @module
 */
import type { KeyInput, KeyKind, ValueKind } from "./codec.ts";
import { CursorOp, DbFlags } from "./constants.ts";
import { fn, growOut, NOTFOUND, scratch } from "./core.ts";
import { cursorFor } from "./ostat.ts";
import type { Table } from "./table.ts";
import type { Txn } from "./txn.ts";

/** `txn.dupsPacked()`: every value of `key`, back to back in one Uint8Array (empty if the key is absent). */
export function packedDups<K extends KeyKind>(txn: Txn, t: Table<K, ValueKind>, key: KeyInput<K>): Uint8Array {
  if (!(t.flags & DbFlags.DUPFIXED)) {
    throw new TypeError(`dupsPacked needs a dupFixed table (values of one size); ${t} is not one: use dups()`);
  }
  const h = cursorFor(txn, t)._h();
  const kb = t.k.encode(key, "key");
  let r = fn.tm_cursor_get(h, CursorOp.SET_KEY, kb, t.k.len, null, 0, scratch.out, scratch.out.length);
  if (r === NOTFOUND) return new Uint8Array(0);
  if (r < 0) txn._fail(r, "dupsPacked", t);
  const pages: Uint8Array[] = [];
  let total = 0;
  for (let op: number = CursorOp.GET_MULTIPLE;; op = CursorOp.NEXT_MULTIPLE) {
    let out = scratch.out;
    r = fn.tm_cursor_get(h, op, null, 0, null, 0, out, out.length);
    if (r === NOTFOUND) break;
    if (r < 0) txn._fail(r, "dupsPacked", t);
    if (r > out.length) {
      // a page of values larger than the buffer (pages of 64 KiB): the cursor has moved; read that page again
      out = growOut(r);
      r = fn.tm_cursor_get(h, CursorOp.GET_MULTIPLE, null, 0, null, 0, out, out.length);
      if (r < 0) txn._fail(r, "dupsPacked", t);
    }
    const kl = out[0] | (out[1] << 8) | (out[2] << 16) | (out[3] << 24);
    const vl = out[4] | (out[5] << 8) | (out[6] << 16) | (out[7] << 24);
    pages.push(out.slice(12 + kl, 12 + kl + vl));
    total += vl;
  }
  if (pages.length === 1) return pages[0];
  const all = new Uint8Array(total);
  let at = 0;
  for (const p of pages) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}
