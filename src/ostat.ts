/**
 * Order statistics: exact counts, ranks, positions and samples of key ranges
 * in O(log n), over stock MDBX files (docs/order-statistics.md).
 *
 * The work is native (`native/ostat.c`): subtree counts memoised by page
 * version, one descent of the B-tree per bound. This module turns range
 * options into bounds and results into entries; `Txn.count`, `rank`, `at`,
 * `sample` and `range({ offset })` call it.
 *
 * @module
 */
import { checkLimit, checkU32, describe, type KeyInput, type KeyKind, prefixInterval } from "./codec.ts";
import { Scan } from "./constants.ts";
import { check, fn, growOut, NOTFOUND, scratch } from "./core.ts";
import type { Cursor, Entry } from "./cursor.ts";
import type { ValueInput, ValueKind } from "./codec.ts";
import { prefixBytes, type Table } from "./table.ts";
import { decodePair, type RangeOptions, type Txn, type TxnCell } from "./txn.ts";

/** Flags of tm_ostat_* (native/ostat.c). */
const OS = { KEYS: 1, HAS_LO: 2, LO_EXCL: 4, HAS_HI: 8, HI_INCL: 16, LE: 32 } as const;

/** Options of `txn.sample()`: a range (as `range()` takes it) and the random source. */
export interface SampleOptions<K extends KeyKind = KeyKind> extends RangeOptions<K> {
  /** Numbers uniform in [0, 1), like `Math.random` (the default); pass a seeded one for a repeatable sample. */
  random?: () => number;
}

/** Options of `txn.rank()` and `txn.at()`. */
export interface PositionOptions {
  /** With dupSort: positions count keys (one per key, its first value) instead of every value. */
  uniqueKeys?: boolean;
}

/** Options of `txn.rank()`. */
export interface RankOptions<V extends ValueKind = ValueKind> extends PositionOptions {
  /** With dupSort: the rank of the pair (key, value): entries before it, counting the key's smaller values too. */
  value?: ValueInput<V>;
}

/** What the order-statistics memo of an environment holds (`orderStatistics(txn)`). */
export interface OrderStatistics {
  /** Branch page versions memoised. */
  entries: number;
  /** Native memory the memo uses: the running sums and the hash table. */
  bytes: number;
  /** Lookups the memo answered. */
  hits: number;
  /** Lookups that found no entry. */
  misses: number;
  /** Branch page versions whose sums were computed (committed and dirty ones). */
  computed: number;
  /** Pages read by counts, ranks and positions. */
  pagesRead: number;
  /** Times the memo's young generation was full and the old one was freed. */
  turnovers: number;
  /** Bytes of sums per generation before a turnover. */
  budget: number;
}

/**
 * @internal The benchmarks' baseline: with `walking` on, `txn.count()` walks
 * the range and `range({ offset })` steps over the skipped entries, as before
 * order statistics.
 */
export const ostatBaseline = { walking: false };

/** The memo of the environment `txn` reads: its size and how it has been used. */
export function orderStatistics(txn: Txn): OrderStatistics {
  txn._h();
  const a = scratch.f64;
  fn.tm_ostat_stats(txn._c.world.h, scratch.f64Bytes);
  return {
    entries: a[0],
    bytes: a[1],
    hits: a[2],
    misses: a[3],
    computed: a[4],
    pagesRead: a[5],
    turnovers: a[6],
    budget: a[7],
  };
}

/**
 * Sets the memo's budget (bytes of sums per generation, default 64 MiB; it
 * holds about 8 bytes per page of every table counted, 16 for dupsort tables)
 * and with `clear` empties it (the next count is cold again).
 */
export function configureOrderStatistics(txn: Txn, options: { budget?: number; clear?: boolean } = {}): void {
  txn._h();
  const budget = options.budget ?? 0;
  if (typeof budget !== "number" || !Number.isFinite(budget) || budget < 0) {
    throw new RangeError(
      `configureOrderStatistics: budget must be a byte count from 0 (0: the default); got ${describe(budget)}`,
    );
  }
  check(fn.tm_ostat_configure(txn._c.world.h, budget, options.clear ? 1 : 0), "configureOrderStatistics");
}

/** A range's bounds: the bytes and their lengths (encoder scratch unless a prefix made copies). */
interface Bounds {
  lo: Uint8Array | null;
  loLen: number;
  loIncl: boolean;
  hi: Uint8Array | null;
  hiLen: number;
  hiIncl: boolean;
}

/** The bounds of a range read, as `range()` reads them; null: nothing can be in it. */
function boundsOf<K extends KeyKind>(t: Table<K, ValueKind>, o: RangeOptions<K>): Bounds | null {
  const lower = o.gte ?? o.gt, upper = o.lte ?? o.lt;
  if (o.gte !== undefined && o.gt !== undefined || o.lte !== undefined && o.lt !== undefined) {
    throw new TypeError("give at most one of gte/gt and one of lte/lt");
  }
  // the two bounds use the table's two encoders: neither overwrites the other's scratch
  const lo = lower === undefined ? null : t.k.encode(lower, "range start");
  const hi = upper === undefined ? null : t.k2.encode(upper, "range end");
  const b: Bounds = {
    lo,
    loLen: lo ? t.k.len : 0,
    loIncl: o.gt === undefined,
    hi,
    hiLen: hi ? t.k2.len : 0,
    hiIncl: o.lt === undefined,
  };
  if (o.prefix === undefined) return b;
  // copies first: encoding the prefix reuses the key encoder's scratch
  const bounds = { lo: lo && lo.slice(0, b.loLen), loIncl: b.loIncl, hi: hi && hi.slice(0, b.hiLen), hiIncl: b.hiIncl };
  const iv = prefixInterval(prefixBytes(t, o.prefix), bounds);
  if (iv === null) return null;
  return { ...iv, loLen: iv.lo ? iv.lo.length : 0, hiLen: iv.hi ? iv.hi.length : 0 };
}

function keysMode(t: Table, uniqueKeys: boolean | undefined): number {
  return t.dupSort && uniqueKeys ? OS.KEYS : 0;
}

/** The entries of a range: [first, first + count) of the table's order, and the table's total. */
function span<K extends KeyKind>(txn: Txn, t: Table<K, ValueKind>, o: RangeOptions<K>): {
  first: number;
  count: number;
  total: number;
} {
  const h = txn._h();
  const iv = boundsOf(t, o);
  if (iv === null) return { first: 0, count: 0, total: 0 };
  let flags = keysMode(t, o.uniqueKeys);
  if (iv.lo !== null) flags |= OS.HAS_LO | (iv.loIncl ? 0 : OS.LO_EXCL);
  if (iv.hi !== null) flags |= OS.HAS_HI | (iv.hiIncl ? OS.HI_INCL : 0);
  const r = fn.tm_ostat_count(h, t.dbi, flags, iv.lo, iv.loLen, iv.hi, iv.hiLen, scratch.f64Bytes);
  if (r < 0) txn._fail(r, "count", t);
  return { first: scratch.f64[0] > 0 ? scratch.f64[1] : 0, count: scratch.f64[0], total: scratch.f64[2] };
}

/** The offset and limit options, checked with the words (and bounds) of a range read's. */
function offsetLimit(t: Table, o: RangeOptions<KeyKind>): { offset: number; limit: number } {
  return {
    offset: checkU32(o.offset ?? 0, `the offset option of a range read of ${t}`, " (entries to skip)"),
    limit: checkLimit(o.limit ?? Infinity, `the limit option of a range read of ${t}`),
  };
}

/** `txn.count()`: the entries `range(t, o)` would yield, from two descents. */
export function countRange<K extends KeyKind>(txn: Txn, t: Table<K, ValueKind>, o: RangeOptions<K>): number {
  const { offset, limit } = offsetLimit(t, o);
  const n = span(txn, t, o).count - offset;
  return n <= 0 ? 0 : Math.min(n, limit);
}

/** `txn.rank()`: entries before `key` (or before the pair (key, value)). */
export function rankOf<K extends KeyKind, V extends ValueKind>(
  txn: Txn,
  t: Table<K, V>,
  key: KeyInput<K>,
  o: RankOptions<V> = {},
): number {
  const h = txn._h();
  let vb: Uint8Array | null = null, vlen = 0;
  if (o.value !== undefined) {
    if (!t.dupSort) throw new TypeError(`rank with a value needs a dupSort table; ${t} has one value per key`);
    if (o.uniqueKeys) {
      throw new TypeError(`rank of ${t}: a value and uniqueKeys exclude each other (keys have no value rank)`);
    }
    vb = t.v.encode(o.value, "value");
    vlen = t.v.len;
  }
  const kb = t.k.encode(key, "key");
  const r = fn.tm_ostat_rank(h, t.dbi, keysMode(t, o.uniqueKeys), kb, t.k.len, vb, vlen, scratch.f64Bytes);
  if (r < 0) txn._fail(r, "rank", t);
  return scratch.f64[0];
}

/** One cursor per table and transaction for positional reads (closed with the transaction). */
const cursors = new WeakMap<TxnCell, Map<number, Cursor>>();

/** @internal The transaction's cursor on `t` for positional reads (opened on first use). */
export function cursorFor(txn: Txn, t: Table): Cursor {
  let m = cursors.get(txn._c);
  if (m === undefined) cursors.set(txn._c, m = new Map());
  let c = m.get(t.dbi);
  if (c === undefined || !c.isOpen) {
    c = txn.cursor(t);
    m.set(t.dbi, c);
  }
  return c;
}

/** The entry at position `index` of the table (or of its keys), or undefined past the end. */
function entryAt<K extends KeyKind, V extends ValueKind>(
  txn: Txn,
  t: Table<K, V>,
  index: number,
  flags: number,
): Entry<K, V> | undefined {
  const cur = cursorFor(txn, t)._h();
  let out = scratch.out;
  let n = fn.tm_ostat_at(cur, flags, index, out, out.length);
  if (n === NOTFOUND) return undefined;
  if (n < 0) txn._fail(n, "at", t);
  if (n > out.length) {
    out = growOut(n);
    n = fn.tm_ostat_at(cur, flags, index, out, out.length);
    if (n < 0) txn._fail(n, "at", t);
  }
  return decodePair(t, out);
}

function checkIndex(index: unknown, what: string): number {
  if (typeof index !== "number" || !Number.isSafeInteger(index)) {
    throw new RangeError(`${what} must be a whole number (negative: from the end); got ${describe(index)}`);
  }
  return index;
}

/** `txn.at()`: the entry at `index` (negative: from the end), or undefined. */
export function entryAtIndex<K extends KeyKind, V extends ValueKind>(
  txn: Txn,
  t: Table<K, V>,
  index: number,
  o: PositionOptions = {},
): Entry<K, V> | undefined {
  checkIndex(index, `the index of at() in ${t}`);
  const flags = keysMode(t, o.uniqueKeys);
  if (index < 0) {
    index += span(txn, t, { uniqueKeys: o.uniqueKeys }).total;
    if (index < 0) return undefined;
  }
  return entryAt(txn, t, index, flags);
}

/**
 * `txn.sample()`: `n` distinct entries of the range drawn uniformly at random
 * (every subset of size n equally likely), in key order; all of them when the
 * range has no more than n.
 */
export function sampleRange<K extends KeyKind, V extends ValueKind>(
  txn: Txn,
  t: Table<K, V>,
  n: number,
  o: SampleOptions<K> = {},
): Entry<K, V>[] {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`the sample size for ${t} must be a whole number from 0; got ${describe(n)}`);
  }
  const random = o.random ?? Math.random;
  if (typeof random !== "function") throw new TypeError(`the random option of sample() must be a function`);
  const s = span(txn, t, o);
  const { offset, limit } = offsetLimit(t, o);
  // the entries range() would yield: `offset` skipped from the start (the end, reversed), at most `limit`
  const size = Math.max(0, Math.min(s.count - offset, limit));
  const first = o.reverse ? s.first + s.count - offset - size : s.first + offset;
  const k = Math.min(n, size);
  // Floyd's algorithm: k distinct positions of [0, size), each subset equally likely
  const picked = new Set<number>();
  for (let j = size - k; j < size; j++) {
    let r = Math.floor(random() * (j + 1));
    if (!(r >= 0 && r <= j)) r = j; // a random() outside [0, 1)
    picked.add(picked.has(r) ? j : r);
  }
  const positions = [...picked].sort((a, b) => a - b);
  if (o.reverse) positions.reverse();
  const flags = keysMode(t, o.uniqueKeys);
  const out: Entry<K, V>[] = [];
  for (const p of positions) {
    const e = entryAt(txn, t, first + p, flags);
    if (e === undefined) throw new Error(`sample of ${t}: position ${first + p} vanished`); // a bug, not a state
    out.push(e);
  }
  return out;
}

/**
 * @internal range({ offset }): puts the scan's cursor on the entry `offset`
 * places into the range by position, so that the scan goes on from there
 * (TM_SCAN_CURRENT) instead of stepping. False: the range has no entry there.
 */
export function seekOffset(
  txn: Txn,
  t: Table,
  cur: Cursor,
  flags: number,
  start: Uint8Array | null,
  offset: number,
): boolean {
  const h = txn._h();
  const keys = t.dupSort && (flags & Scan.NODUP) ? OS.KEYS : 0;
  const rev = (flags & Scan.REVERSE) !== 0;
  const excl = (flags & Scan.START_EXCLUSIVE) !== 0;
  let base: number;
  if (start !== null && (flags & Scan.HAS_START)) {
    // forward: the first entry at or after start; reverse: the last at or before it
    const le = rev ? !excl : excl;
    const r = fn.tm_ostat_rank(h, t.dbi, keys | (le ? OS.LE : 0), start, start.length, null, 0, scratch.f64Bytes);
    if (r < 0) txn._fail(r, "range", t);
    base = rev ? scratch.f64[0] - 1 : scratch.f64[0];
  } else if (rev) {
    const r = fn.tm_ostat_count(h, t.dbi, keys, null, 0, null, 0, scratch.f64Bytes);
    if (r < 0) txn._fail(r, "range", t);
    base = scratch.f64[2] - 1;
  } else base = 0;
  const index = rev ? base - offset : base + offset;
  if (index < 0) return false;
  const r = fn.tm_ostat_seek(cur._h(), keys, index);
  if (r === NOTFOUND) return false;
  if (r < 0) txn._fail(r, "range", t);
  return true;
}
