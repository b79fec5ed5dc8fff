/**
 * Batched reads and relation traversal: many keys per native call.
 *
 * `getMany` packs the keys into one buffer and reads them with one call of
 * native/cache.c per chunk, which hashes every key of a group, prefetches the
 * cache slots, then the pages, then validates and copies: the memory misses
 * of many keys overlap instead of following one another. `follow` runs the
 * relation workload (a prefix scan of an index, then a get of the object named
 * by a slice of each index key) the same way, with the scan in the same call.
 * Both work on cached and uncached tables, in read and write transactions,
 * with the same exactness rules as `get()`.
 *
 * @module
 */
import type { KeyInput, KeyKind, KeyOf, ValueKind, ValueOf } from "./codec.ts";
import { checkLimit, checkU32, describe, U32_MAX } from "./codec.ts";
import { fn, growOut, scratch } from "./core.ts";
import type { Table } from "./table.ts";
import type { Txn } from "./txn.ts";

/** Keys per native call of getMany (and of the packing that precedes it). */
const CHUNK = 1024;

/** The keys of one chunk, packed: key i is bytes[koff[i] .. koff[i + 1]). */
const pack = {
  bytes: new Uint8Array(64 * 1024),
  koff: new Uint32Array(CHUNK + 1),
  pos: new Int32Array(2 * CHUNK),
};

/** Packs keys[from .. to) of table `t` into `pack`. */
function packKeys(t: Table, keys: readonly unknown[], from: number, to: number): void {
  const koff = pack.koff, k = t.k;
  let b = pack.bytes, off = 0;
  for (let i = from; i < to; i++) {
    const kb = k.encode(keys[i], "key"), len = k.len;
    if (off + len > b.length) {
      let size = b.length;
      while (size < off + len) size *= 2;
      const nb = new Uint8Array(size);
      nb.set(b.subarray(0, off));
      pack.bytes = b = nb;
    }
    // short keys byte by byte: set() of a small array costs more than the copy
    if (len <= 32) { for (let j = 0; j < len; j++) b[off + j] = kb[j]; }
    else b.set(kb.subarray(0, len), off);
    koff[i - from] = off;
    off += len;
  }
  koff[to - from] = off;
}

function checkKeys(keys: unknown, what: string): asserts keys is readonly unknown[] {
  if (!Array.isArray(keys)) throw new TypeError(`${what}: keys must be an array, got ${describe(keys)}`);
}

/** @internal txn.getMany */
export function getMany<K extends KeyKind, V extends ValueKind>(
  txn: Txn,
  t: Table<K, V>,
  keys: readonly KeyInput<K>[],
): (ValueOf<V> | undefined)[] {
  checkKeys(keys, "getMany");
  const n = keys.length, res: (ValueOf<V> | undefined)[] = new Array(n);
  const v = t.v, pos = pack.pos;
  for (let base = 0; base < n; base += CHUNK) {
    const m = Math.min(CHUNK, n - base);
    packKeys(t, keys, base, base + m);
    for (let first = 0; first < m;) {
      const h = txn._h(), out = scratch.out;
      const r = fn.tm_get_many(
        txn._cacheOf(t),
        h,
        t.dbi,
        txn._c.snap,
        pack.bytes,
        pack.koff,
        0,
        first,
        m,
        out,
        0,
        out.length,
        pos,
      );
      if (r < 0) txn._fail(r, "getMany", t);
      for (let i = first; i < r; i++) {
        const len = pos[2 * i + 1];
        res[base + i] = len < 0 ? undefined : v.decode(out, pos[2 * i], len) as ValueOf<V>;
      }
      if (r < m) growOut(pos[2 * r + 1]); // value r did not fit in what was left
      first = r;
    }
  }
  return res;
}

/** @internal txn.getManyInto */
export function getManyInto<K extends KeyKind>(
  txn: Txn,
  t: Table<K, ValueKind>,
  keys: readonly KeyInput<K>[],
  target: Uint8Array,
  positions: Int32Array,
  start: number,
): number {
  checkKeys(keys, "getManyInto");
  if (!(target instanceof Uint8Array)) throw new TypeError(`getManyInto: target must be a Uint8Array`);
  if (!(positions instanceof Int32Array)) throw new TypeError(`getManyInto: positions must be an Int32Array`);
  const n = keys.length;
  if (!Number.isInteger(start) || start < 0 || start > n) {
    throw new RangeError(`getManyInto: start ${start} is not an index of the ${n} keys`);
  }
  if (target.length > U32_MAX) {
    throw new RangeError(
      `getManyInto: the target is ${target.length} bytes; the native call addresses at most ${U32_MAX}: ` +
        "pass a smaller target",
    );
  }
  if (positions.length < 2 * n) {
    throw new RangeError(
      `getManyInto: positions holds ${positions.length} numbers; ${n} keys need ${2 * n} (offset and length each)`,
    );
  }
  let at = 0;
  for (let base = start; base < n; base += CHUNK) {
    const m = Math.min(CHUNK, n - base);
    packKeys(t, keys, base, base + m);
    const pos = positions.subarray(2 * base, 2 * (base + m));
    const r = fn.tm_get_many(
      txn._cacheOf(t),
      txn._h(),
      t.dbi,
      txn._c.snap,
      pack.bytes,
      pack.koff,
      0,
      0,
      m,
      target,
      at,
      target.length,
      pos,
    );
    if (r < 0) txn._fail(r, "getManyInto", t);
    if (r > 0) at = pos[2 * (r - 1)] + Math.max(0, pos[2 * (r - 1) + 1]);
    if (r < m) {
      if (base + r === start) {
        throw new RangeError(
          `getManyInto: the value of key ${start} in ${t} is ${pos[2 * r + 1]} bytes and the target holds ` +
            `${target.length}: nothing was copied; pass a larger target`,
        );
      }
      return base + r;
    }
  }
  return n;
}

/** Options of a relation traversal (`txn.follow`). */
export interface FollowOptions {
  /** Where, in each index key, the key of the object starts (bytes). */
  at: number;
  /** How long the object's key is (bytes). */
  length: number;
  /** At most this many index entries. */
  limit?: number;
}

/** One step of a relation traversal: the index key and the object it names (undefined if there is none). */
export interface FollowEntry<IK extends KeyKind = KeyKind, V extends ValueKind = ValueKind> {
  /** The index key (a copy). */
  key: KeyOf<IK>;
  /** The object named by `key.subarray(at, at + length)`, or undefined when the objects table has no such key. */
  value: ValueOf<V> | undefined;
}

/**
 * One batch of a relation traversal (`txn.followBatches`): raw bytes and where
 * each entry is, valid until the next batch is read (the object is reused).
 */
export interface FollowBatch {
  /** Entries in this batch. */
  count: number;
  /** The bytes of the batch: index keys and object values. */
  bytes: Uint8Array;
  /**
   * Four numbers per entry i: the index key's offset [4i] and length [4i + 1] in
   * `bytes`, the object value's offset [4i + 2] and length [4i + 3] (-1: no object).
   */
  layout: Int32Array;
}

const FOLLOW_FIRST = 0, FOLLOW_CURRENT = 2;
/** Traversal buffers, reused across iterators. */
const pool: Uint8Array[] = [];

/** @internal txn.follow (entries) and txn.followBatches (batches): one generator, two shapes. */
export function* follow<IK extends KeyKind, OK extends KeyKind, V extends ValueKind>(
  txn: Txn,
  index: Table<IK, ValueKind>,
  prefix: KeyInput<IK>,
  objects: Table<OK, V>,
  options: FollowOptions,
  batches: boolean,
): Generator<FollowEntry<IK, V> | FollowBatch, void, undefined> {
  const ti = txn._table(index), to = txn._table(objects);
  const o = options ?? ({} as FollowOptions);
  const at = o.at, len = o.length;
  if (!Number.isInteger(at) || at < 0 || !Number.isInteger(len) || len < 0) {
    throw new RangeError(
      `follow: options.at and options.length must be non-negative integers (where the object key lies in each ` +
        `index key), got at ${describe(at)} and length ${describe(len)}`,
    );
  }
  // u32s of the native call: Deno and Bun must say the same about a larger one
  checkU32(at, "follow: options.at", " (a byte offset in the index key)");
  checkU32(len, "follow: options.length", " (bytes of the object key)");
  let limit = checkLimit(o.limit ?? Infinity, "follow: options.limit");
  if (ti.keys !== "binary" && ti.keys !== "string" && ti.keys !== "tuple") {
    throw new TypeError(
      `follow: ${ti} needs binary or string keys (or tuple keys) to be scanned by prefix (it has ${ti.keys} keys)`,
    );
  }
  if (ti.dupSort) throw new TypeError(`follow: ${ti} is a dupSort table; follow() scans the keys of a plain index`);
  // the prefix, copied: the iterator outlives the encoder's scratch
  const p = ti.k.encode(prefix, "prefix").slice(0, ti.k.len);
  if (limit === 0) return;
  const cur = txn.cursor(ti);
  let buf = pool.pop() ?? new Uint8Array(64 * 1024);
  let want = 64; // small first batch: cheap when the loop stops early
  let op = FOLLOW_FIRST;
  const batch: FollowBatch = { count: 0, bytes: buf, layout: new Int32Array(0) };
  try {
    for (;;) {
      const n = fn.tm_follow(
        cur._h(),
        op,
        p,
        p.length,
        at,
        len,
        txn._cacheOf(to),
        to.dbi,
        txn._c.snap,
        Math.min(want, limit),
        buf,
        buf.length,
      );
      if (n < 0) txn._fail(n, "follow", to);
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
      const state = dv.getUint32(4, true), need = dv.getUint32(8, true);
      let q = 12;
      if (batches) {
        if (batch.layout.length < 4 * n) batch.layout = new Int32Array(Math.max(4 * n, 256));
        const l = batch.layout;
        for (let i = 0; i < n; i++) {
          const kl = dv.getUint32(q, true), vl = dv.getInt32(q + 4, true);
          l[4 * i] = q + 8;
          l[4 * i + 1] = kl;
          l[4 * i + 2] = q + 8 + kl;
          l[4 * i + 3] = vl;
          q += 8 + kl + (vl > 0 ? vl : 0);
        }
        batch.count = n;
        batch.bytes = buf;
        if (n > 0) yield batch;
      } else {
        for (let i = 0; i < n; i++) {
          // the batch is a copy, but an ended transaction yields nothing more
          if (i > 0 && (txn._c.h === null || txn._c.child !== null)) txn._dead();
          const kl = dv.getUint32(q, true), vl = dv.getInt32(q + 4, true);
          const key = ti.k.decode(buf, q + 8, kl) as KeyOf<IK>;
          const value = vl < 0 ? undefined : to.v.decode(buf, q + 8 + kl, vl) as ValueOf<V>;
          q += 8 + kl + (vl > 0 ? vl : 0);
          yield { key, value };
        }
      }
      limit -= n;
      if (state === 1 || limit <= 0) return;
      op = FOLLOW_CURRENT;
      if (need > buf.length) {
        let size = buf.length;
        while (size < need) size *= 2;
        buf = new Uint8Array(size);
      }
      if (want < 4096) want *= 4;
    }
  } finally {
    cur.close();
    if (buf.length <= 1 << 20 && pool.length < 8) pool.push(buf);
  }
}
