/**
 * Read and write transactions.
 *
 * Lifetime rules, enforced rather than documented only:
 *  - every call on an ended transaction throws `MdbxError` (MDBX_BAD_TXN);
 *  - a parent with an active nested transaction refuses calls until the child ends;
 *  - ending a transaction closes its cursors and detaches every zero-copy view it
 *    handed out, so no view can read memory the transaction no longer owns;
 *  - closing the environment ends all of its transactions first;
 *  - a transaction that is garbage-collected without being ended is aborted.
 *
 * @module
 */
import {
  checkLimit,
  checkU32,
  describe,
  type KeyInput,
  type KeyKind,
  type KeyOf,
  prefixEnd,
  type PrefixInput,
  U32_MAX,
  type ValueInput,
  type ValueKind,
  type ValueOf,
} from "./codec.ts";
import { CopyFlags, DbFlags, PutFlags, Scan } from "./constants.ts";
import { backend, check, decoder, detachAll, fail, fn, growOut, misuse, NOTFOUND, scratch } from "./core.ts";
import { ErrorCode, MdbxError } from "./errors.ts";
import type { Handle } from "./ffi/mod.ts";
import { pollLog } from "./log.ts";
import { prefixBytes, rangeInterval, Table } from "./table.ts";
import { Cursor, type CursorCell, type Entry } from "./cursor.ts";
import type { CacheState } from "./cache.ts";
import { follow, type FollowBatch, type FollowEntry, type FollowOptions, getMany, getManyInto } from "./batch.ts";
import {
  checkVersionArg,
  mismatch,
  notVersioned,
  readVersion,
  type Version,
  versionIn,
  writeVersion,
} from "./versions.ts";
import {
  countRange,
  entryAtIndex,
  ostatBaseline,
  type PositionOptions,
  rankOf,
  type RankOptions,
  type SampleOptions,
  sampleRange,
  seekOffset,
} from "./ostat.ts";
import { packedDups } from "./relations.ts";

/** @internal The permission bits a copy gets: `mode`, or -1 for the source's own. */
export function copyMode(mode: number | undefined): number {
  if (mode === undefined) return -1;
  if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(`mode must be permission bits from 0 to 0o777 (e.g. 0o600), got ${String(mode)}`);
  }
  return mode;
}

/**
 * @internal One data file an Env has had open. A live rebuild (src/rebuild.ts)
 * moves the database to a new file; transactions begun before finish on the old
 * one, which is closed when the last of them ends.
 */
export interface World {
  /** The native env handle of this file. */
  readonly h: Handle;
  /** Its generation (the sidecar's counter when it was opened). */
  readonly gen: number;
  /** Top-level transactions of this file not yet ended. */
  live: number;
  /** Replaced by a newer file: close when `live` reaches 0. */
  retired: boolean;
  /** Table handles by name, as they were in this file (for old transactions). */
  readonly dbis: Map<string | null, number>;
  /** Per-table stand-ins with this file's handles. */
  readonly shadows: Map<Table, Table>;
}

/** @internal What an environment shares with its transactions. */
export interface EnvCore {
  /** The native env handle; throws when the environment is closed. */
  handle(): Handle;
  /** The file new transactions begin on. */
  world: World;
  /** Moves to the database's new file after a live rebuild switched files (no-op if it did not). */
  follow(): void;
  /** Closes a retired world whose last transaction ended. */
  closeWorld(w: World): void;
  /** Brings a table object that missed a switch up to date (handle, generation, cache). */
  refresh(t: Table): void;
  /** Transactions not yet ended. */
  readonly live: Set<TxnCell>;
  /** The top-level write transaction, if one is open. */
  writer: TxnCell | null;
  /** Opens a table by name (used by txn.tables()). */
  readonly label: string;
  /**
   * The Env itself: live transactions, cursors and tables keep it reachable, so
   * its finalizer cannot close the native env under them.
   */
  readonly owner?: object;
  /** Forgets a dropped table. */
  forget(table: Table): void;
  /** Renames a cached table. */
  renamed(table: Table, name: string): void;
  /** The get() cache state, once a table with a cache is open. */
  cache: CacheState | null;
  /** Upper bound of table handles (maxTables + libmdbx's two core tables). */
  readonly maxDbi: number;
  /** Top-level write transactions this process committed (concurrent transactions' snapshots must not predate one). */
  commits: number;
  /** Called after each top-level commit of this process (set by the change feed, src/watch.ts). */
  onCommit?: () => void;
}

/** @internal The native state of one transaction, shared with the registry. */
export interface TxnCell {
  h: Handle | null;
  readonly write: boolean;
  readonly env: EnvCore;
  readonly parent: TxnCell | null;
  child: TxnCell | null;
  /** Views of native memory handed out (map chunks, values), detached when the transaction ends. */
  views: ArrayBuffer[];
  /**
   * Write transactions: views whose memory the next change may move or free
   * (reserved room, values on dirty pages), detached before that change.
   */
  volatile: ArrayBuffer[];
  cursors: Set<CursorCell>;
  /** This transaction's views of the memory map (for unsafeGetView), made on first use. */
  map?: { base: number; limit: number; chunks: (ArrayBuffer | undefined)[] };
  /** Why the transaction can no longer be used, once it has ended. */
  ended: string;
  /** Run if this transaction's changes are discarded: forget table handles it opened (libmdbx closes them). */
  onDiscard?: (() => void)[];
  /** The snapshot txnid this transaction reads (a write transaction: the one it started from). */
  snap: number;
  /** A parked reader must not read through the cache: its snapshot may have been ousted. */
  parked: boolean;
  /** Write transactions: the version versioned puts stamp (the commit's txnid), once read (src/versions.ts). */
  ver?: number;
  /** Write transactions: dirty[dbi] = 1 once written (shared by nested transactions); the cache skips those. */
  dirty: Uint8Array | null;
  /** The data file this transaction reads (and its generation: tables of another one are translated). */
  readonly world: World;
  readonly gen: number;
}

const CHUNK = 2 ** 30;

/**
 * A read-only view of a value in memory turbomdbx does not copy: the
 * database's memory map, or a dirty page of a write transaction. It is a
 * Uint8Array at run time; the type leaves out every member that writes, because
 * writing is one of the things that are undefined. Get one from
 * `txn.unsafeGetView()`, and read it before the transaction ends.
 *
 * Defined: reading its bytes while its transaction is open (in a write
 * transaction, until that transaction's next change); `view.slice()` and
 * `Uint8Array.from(view)` make ordinary copies. When the transaction ends the
 * view is detached: length 0, reads give `undefined`, never a read of memory
 * the transaction no longer owns. In a write transaction a view of a value on a
 * dirty page is detached at the transaction's next change (put, del, ...),
 * because libmdbx may move or free that page.
 *
 * Undefined (the process may crash with SIGSEGV, or committed data may change):
 * - writing into it, or into any other view of `view.buffer` — the map is
 *   mapped read-only (SIGSEGV); with `writeMap: true` it is writable and a write
 *   silently changes committed data, which survives reopening and `check()`;
 * - transferring `view.buffer` (`postMessage(v, [v.buffer])`,
 *   `structuredClone(v, { transfer: [v.buffer] })`, or
 *   `ArrayBuffer.prototype.transfer.call(...)`): the new owner keeps a pointer
 *   into the map past the transaction's end and reads reused pages, or crashes
 *   after the Env closes. Neither Deno (V8 offers no non-detachable external
 *   buffer to JavaScript) nor Bun can forbid it; `view.buffer.transfer()` and
 *   `transferToFixedLength()` throw a TypeError instead;
 * - relying on `view.buffer`'s other bytes: it spans this transaction's view
 *   of the map (other entries of the snapshot, up to 1 GiB), shared with its
 *   other views.
 *
 * For data that must outlive the transaction or travel to a Worker, use
 * `txn.get()` (or `getInto()` to copy into a buffer of your own).
 */
export interface UnsafeView
  extends Omit<Uint8Array, "set" | "fill" | "copyWithin" | "reverse" | "sort" | "subarray" | number> {
  /** The byte at `index`; `undefined` outside the view or after it was detached. */
  readonly [index: number]: number;
  /** A narrower view of the same memory, under the same rules. */
  subarray(begin?: number, end?: number): UnsafeView;
}

const NO_TRANSFER: PropertyDescriptor = {
  value: function transfer(): never {
    throw new TypeError(
      "this ArrayBuffer is native memory of a transaction (txn.unsafeGetView / unsafeReserve): transferring it " +
        "would keep that memory past the transaction's end; copy the bytes instead (view.slice())",
    );
  },
  writable: false,
  enumerable: false,
  configurable: false,
};

/**
 * Marks an ArrayBuffer over native memory: its own `transfer` and
 * `transferToFixedLength` throw, so the common way to move it out of the
 * transaction's reach fails loudly (a transfer list cannot be intercepted).
 */
function pinned(ab: ArrayBuffer): ArrayBuffer {
  if (ab.byteLength !== 0) Object.defineProperties(ab, { transfer: NO_TRANSFER, transferToFixedLength: NO_TRANSFER });
  return ab;
}

/**
 * Before a change of a write transaction: detaches the views the change may
 * invalidate (reserved room, values on dirty pages). A key or value that is one
 * of them is refused: the change would read it while moving it.
 */
function settle(c: TxnCell, kb: Uint8Array | null, klen: number, vb: Uint8Array | null, vlen: number): void {
  detachAll(c.volatile);
  if ((kb !== null && kb.length < klen) || (vb !== null && vb.length < vlen)) {
    throw new TypeError(
      "a key or value passed to this change is an unsafe view of the transaction's own dirty memory " +
        "(unsafeGetView or unsafeReserve), which the change may move; pass a copy (view.slice())",
    );
  }
}

/** @internal Detaches the views a change of this write transaction (or a table it creates) may invalidate. */
export function beforeChange(c: TxnCell): void {
  if (c.volatile.length !== 0) settle(c, null, 0, null, 0);
}

/**
 * A view of `len` bytes at `addr`, detached when the transaction ends. Values in
 * the memory map are views into this transaction's own views of the map (up to
 * 1 GiB each, made once per transaction and chunk, covering only the pages its
 * snapshot uses), so a view costs one small object; a value elsewhere (a dirty
 * page of a write transaction) gets its own external ArrayBuffer, detached at
 * the transaction's next change too.
 */
function viewOf(c: TxnCell, addr: number, len: number): Uint8Array {
  let map = c.map;
  if (map === undefined) {
    // Bound the views by what this snapshot uses: the file is never shrunk below
    // that while the transaction lives, so even `view.buffer` is safe to read.
    check(fn.tm_txn_info(c.h, 0, scratch.f64Bytes), "txn info");
    const used = scratch.f64[2];
    check(fn.tm_env_map(c.world.h, scratch.f64Bytes), "reading the map address");
    map = c.map = { base: scratch.f64[0], limit: Math.min(used, scratch.f64[1]), chunks: [] };
  }
  const off = addr - map.base;
  if (off >= 0 && off + len <= map.limit) {
    const ci = Math.floor(off / CHUNK), at = off - ci * CHUNK;
    if (at + len <= CHUNK) {
      let chunk = map.chunks[ci];
      if (chunk === undefined) {
        chunk = pinned(backend.view(map.base + ci * CHUNK, Math.min(CHUNK, map.limit - ci * CHUNK)));
        map.chunks[ci] = chunk;
        c.views.push(chunk);
      }
      return new Uint8Array(chunk, at, len);
    }
  }
  const ab = pinned(backend.view(addr, len));
  c.volatile.push(ab);
  return new Uint8Array(ab);
}

/** Closes cursors, detaches views, then commits or aborts. Returns the native result. */
function finish(c: TxnCell, how: "commit" | "abort" | "reset", why: string): number {
  if (c.child) finish(c.child, "abort", "its parent ended");
  for (const cur of c.cursors) {
    if (cur.h !== null) fn.tm_cursor_close(cur.h);
    cur.h = null;
  }
  c.cursors.clear();
  detachAll(c.views);
  detachAll(c.volatile);
  c.map = undefined;
  if (how === "reset") return fn.tm_txn_reset(c.h);
  const h = c.h;
  c.h = null;
  c.ended = why;
  c.env.live.delete(c);
  const w = c.world;
  const lastOfRetired = c.parent === null && --w.live === 0 && w.retired;
  if (c.env.writer === c) c.env.writer = null;
  if (c.parent && c.parent.child === c) c.parent.child = null;
  const r = how === "commit" ? fn.tm_txn_commit(h) : fn.tm_txn_abort(h);
  if (lastOfRetired) c.env.closeWorld(w);
  if (how === "commit" && r >= 0 && c.write && c.parent === null) {
    c.env.commits++;
    c.env.onCommit?.(); // the change feed (src/watch.ts) wakes up
  }
  if (c.onDiscard) {
    if (how === "commit" && r >= 0 && c.parent) (c.parent.onDiscard ??= []).push(...c.onDiscard);
    else if (how === "abort" || r < 0) { for (const f of c.onDiscard) f(); }
  }
  // what libmdbx logged during the transaction, to the loggers (a failure's caller drains it for the error's detail)
  if (c.parent === null && r >= 0) pollLog();
  return r;
}

const registry = new FinalizationRegistry<TxnCell>((c) => {
  if (c.h !== null) finish(c, "abort", "it was garbage-collected");
});

/** @internal Ends every live transaction of an environment (on close). */
export function endAll(env: EnvCore): void {
  // children first: a parent's finish aborts its child anyway
  for (const c of [...env.live].reverse()) if (c.h !== null) finish(c, "abort", "its environment was closed");
}

/** Options of a range read. */
export interface RangeOptions<K extends KeyKind = KeyKind> {
  /** Start at keys greater than or equal to this. */
  gte?: KeyInput<K>;
  /** Start at keys greater than this. */
  gt?: KeyInput<K>;
  /** Stop after keys less than or equal to this. */
  lte?: KeyInput<K>;
  /** Stop before keys greater than or equal to this. */
  lt?: KeyInput<K>;
  /**
   * Only keys that start with these bytes (binary and string keys, not
   * reverseKeys), or, for tuple keys, with these leading elements
   * (`prefix: [src, "out"]`: every tuple whose first two elements are those).
   * With gte/gt/lte/lt too, the range is the intersection: keys under the
   * prefix and within the bounds (to page inside a prefix, pass the last key
   * read as `gt`, or as `lt` in reverse).
   */
  prefix?: PrefixInput<K>;
  /** Iterate from the end of the range to its start. */
  reverse?: boolean;
  /** At most this many entries. */
  limit?: number;
  /** Skip this many entries of the range first. */
  offset?: number;
  /** With dupSort: one entry per key (its first value) instead of every value. */
  uniqueKeys?: boolean;
}

/** Flags of a put. */
export interface PutOptions {
  /** Fail with MDBX_KEYEXIST if the key exists (MDBX_NOOVERWRITE). */
  noOverwrite?: boolean;
  /** dupSort: fail with MDBX_KEYEXIST if the key/value pair exists (MDBX_NODUPDATA). */
  noDupData?: boolean;
  /** Append at the end: keys must come in order (MDBX_APPEND); fast bulk load. */
  append?: boolean;
  /** dupSort: append the value at the end of the key's values (MDBX_APPENDDUP). */
  appendDup?: boolean;
  /** The key must exist; replace its value (MDBX_CURRENT). */
  current?: boolean;
  /** dupSort: replace all values of the key with this one (MDBX_ALLDUPS). */
  allDups?: boolean;
  /**
   * Versioned tables: write only if the key's current version is this one
   * (from `getEntry()`), or, with null, only if the key is absent; otherwise
   * throw VersionMismatchError and write nothing.
   */
  ifVersion?: number | null;
}

/** @internal */
export function putFlags(o: PutOptions | undefined): number {
  if (!o) return 0;
  return (o.noOverwrite ? PutFlags.NOOVERWRITE : 0) | (o.noDupData ? PutFlags.NODUPDATA : 0) |
    (o.append ? PutFlags.APPEND : 0) | (o.appendDup ? PutFlags.APPENDDUP : 0) |
    (o.current ? PutFlags.CURRENT : 0) | (o.allDups ? PutFlags.ALLDUPS : 0);
}

/** Table statistics (MDBX_stat). */
export interface Stat {
  /** Page size in bytes. */
  pageSize: number;
  /** Depth (height) of the B+tree. */
  depth: number;
  /** Branch pages. */
  branchPages: number;
  /** Leaf pages. */
  leafPages: number;
  /** Large (overflow) pages. */
  largePages: number;
  /** Number of entries (key/value pairs). */
  entries: number;
  /** Txnid of the last transaction that modified the table. */
  modTxnId: number;
}

/** @internal */
export function readStat(a: Float64Array): Stat {
  return {
    pageSize: a[0],
    depth: a[1],
    branchPages: a[2],
    leafPages: a[3],
    largePages: a[4],
    entries: a[5],
    modTxnId: a[6],
  };
}

/** Transaction information (MDBX_txn_info). */
export interface TxnInfo {
  /** The snapshot's txnid (read) or the txnid being written. */
  id: number;
  /** Read: committed transactions since this snapshot. Write: lag of the oldest reader. */
  readerLag: number;
  /** Bytes used by the snapshot. */
  spaceUsed: number;
  /** Soft size limit (the current map size). */
  spaceLimitSoft: number;
  /** Hard size limit (the geometry's upper bound). */
  spaceLimitHard: number;
  /** Read: bytes retired since the snapshot. Write: bytes retired by this transaction. */
  spaceRetired: number;
  /** Read: bytes left before the HSR callback is asked about this reader. Write: room left before MDBX_TXN_FULL. */
  spaceLeftover: number;
  /** Read: bytes freed when this reader ends. Write: bytes of dirty pages. */
  spaceDirty: number;
}

/** The four canary words of a database: x, y, z set by writers, v the txnid of their last change. */
export interface Canary {
  /** First word, set by writers (`setCanary`). */
  x: number;
  /** Second word, set by writers. */
  y: number;
  /** Third word, set by writers. */
  z: number;
  /** Read-only: txnid of the transaction that last set the canary. */
  v: number;
}

/** A table as listed by `txn.tables()`. */
export interface TableEntry {
  /** The table's name. */
  name: string;
  /** Its libmdbx flags (MDBX_db_flags_t: DbFlags bits). */
  flags: number;
  /** Its statistics in the snapshot that listed it. */
  stat: Stat;
}

/** Either kind of transaction: everything that reads. */
export abstract class Txn {
  /** @internal */
  readonly _c: TxnCell;

  /** @internal */
  constructor(cell: TxnCell) {
    this._c = cell;
    registry.register(this, cell, cell);
  }

  /** @internal The native handle; throws if the transaction cannot be used now. */
  _h(): Handle {
    const c = this._c;
    if (c.h === null || c.child !== null) this._dead();
    return c.h!;
  }

  /** @internal */
  _dead(): never {
    const c = this._c;
    if (c.h !== null) {
      throw misuse(ErrorCode.BAD_TXN, "the transaction has an active nested transaction; commit or abort that first");
    }
    throw misuse(ErrorCode.BAD_TXN, `the transaction cannot be used: ${c.ended}; begin a new one`);
  }

  /** @internal */
  _table<K extends KeyKind, V extends ValueKind>(t: Table<K, V>): Table<K, V> {
    if (!(t instanceof Table)) throw new TypeError(`expected a Table from env.table(), got ${describe(t)}`);
    const c = this._c;
    if (t.owner !== c.env) throw new TypeError(`${t} belongs to another environment`);
    return t.gen === c.gen ? t : tableIn(c, t) as Table<K, V>;
  }

  /** True until the transaction commits or aborts. */
  get isOpen(): boolean {
    return this._c.h !== null;
  }

  /** True for a write transaction. */
  get isWrite(): boolean {
    return this._c.write;
  }

  /** The txnid of this transaction's snapshot (read) or of the transaction being written. */
  get id(): number {
    return fn.tm_txn_id(this._h());
  }

  /** The native MDBX_txn handle, for interop with other native code. */
  get unsafeHandle(): unknown {
    return this._h();
  }

  /**
   * The value of `key`, as a copy, or undefined if there is none. For dupsort
   * tables: the first value. A binary value is an ordinary Uint8Array with an
   * ArrayBuffer of its own and of its exact size (it can be transferred; see
   * `getInto` for a read that allocates nothing). With a cached table one
   * native call hashes the key, probes the cache, validates the location and
   * copies the value; without, it is a B+tree lookup.
   */
  get<K extends KeyKind, V extends ValueKind>(table: Table<K, V>, key: KeyInput<K>): ValueOf<V> | undefined {
    const h = this._h();
    const t = this._table(table);
    const n = this.#lookup(h, t, t.k.encode(key, "key"), "get");
    return n < 0 ? undefined : t.v.decode(scratch.out, 0, n) as ValueOf<V>;
  }

  /**
   * One lookup of the `t.k.len` key bytes `kb` into `scratch.out` (grown to fit): the value's length, or -1 if the
   * key is absent. With a cache, one native call hashes, probes, validates and copies; without, it is mdbx_get.
   */
  #lookup(h: Handle, t: Table, kb: Uint8Array, what: string): number {
    const gc = this._cacheOf(t), snap = this._c.snap;
    let out = scratch.out;
    let n = fn.tm_cache_get(gc, h, t.dbi, snap, kb, t.k.len, out, out.length);
    if (n < 0) {
      if (n === NOTFOUND) return -1;
      this._fail(n, what, t);
    }
    if (n > out.length) {
      out = growOut(n);
      n = check(fn.tm_cache_get(gc, h, t.dbi, snap, kb, t.k.len, out, out.length), `${what} from ${t}`);
    }
    return n;
  }

  // ------------------------------------------------ versions (issue 14, src/versions.ts)

  /**
   * The value of `key` and its version, or undefined if there is none: the
   * version is the txnid of the write transaction that stored the value, the
   * same in every process (a versioned table: `versioned: true`). Pass it to
   * `put(..., { ifVersion })` or `check()` to write only if nobody wrote the
   * key since.
   */
  getEntry<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
  ): { value: ValueOf<V>; version: number } | undefined {
    const h = this._h();
    const t = this._table(table);
    if (!t.versioned) throw notVersioned(t, "getEntry");
    const n = this.#lookup(h, t, t.k.encode(key, "key"), "getEntry");
    if (n < 0) return undefined;
    const value = t.v.decode(scratch.out, 0, n) as ValueOf<V>; // checks the length too
    return { value, version: readVersion(scratch.out, 0) };
  }

  // ------------------------------------------------ end of versions

  /**
   * Copies the value of `key` into `target` at `offset` and returns its length
   * in bytes, or -1 if there is none. It allocates nothing: the read for hot
   * loops that reuse one buffer (with a cached table, one native call that
   * probes the cache and copies the value out of the map). The bytes
   * are the value as stored (no value codec); for dupsort tables, the first
   * value. A value longer than the room after `offset` throws a RangeError that
   * says how long it is, and nothing is copied.
   */
  getInto<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>, target: Uint8Array, offset = 0): number {
    const h = this._h();
    const t = this._table(table);
    if (!(target instanceof Uint8Array)) throw new TypeError(`getInto: target must be a Uint8Array`);
    const room = target.length - offset;
    if (!Number.isInteger(offset) || offset < 0 || room < 0) {
      throw new RangeError(`getInto: offset ${describe(offset)} is not within the target's ${target.length} bytes`);
    }
    // both are u32s of the native call; no value is that long, so a larger room is as good as the largest
    checkU32(offset, "getInto: offset", " (bytes)");
    const kb = t.k.encode(key, "key");
    const n = fn.tm_cache_get_at(
      this._cacheOf(t),
      h,
      t.dbi,
      this._c.snap,
      kb,
      t.k.len,
      target,
      offset,
      Math.min(room, U32_MAX),
    );
    if (n < 0) {
      if (n === NOTFOUND) return -1;
      this._fail(n, "get", t);
    }
    if (n > room) {
      throw new RangeError(
        `getInto: the value in ${t} is ${n} bytes and ${room} bytes are free at offset ${offset}: nothing was copied; ` +
          `pass a larger target`,
      );
    }
    return n;
  }

  /**
   * The values of many keys, in order: `undefined` where a key is absent. One
   * native call reads a whole chunk of keys; with a cached table it overlaps
   * their memory accesses (hash every key, fetch the slots, then the pages,
   * then copy), which makes it several times faster than the same `get()`s one
   * by one. Each value is a copy, as `get()` returns.
   */
  getMany<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    keys: readonly KeyInput<K>[],
  ): (ValueOf<V> | undefined)[] {
    this._h();
    return getMany(this, this._table(table), keys);
  }

  /**
   * `getMany` without allocating: copies the values of `keys[start..]` into
   * `target` back to back and sets `positions[2 * i]` to the offset of key i's
   * value in `target` and `positions[2 * i + 1]` to its length, or -1 when the
   * key is absent. Returns the index after the last key read: `keys.length`
   * when every value fit, less when `target` filled up (read the rest by calling
   * again with `start` set to it, after using what was read). Values are the
   * bytes as stored (no value codec), as `getInto()` copies them. A first value
   * that does not fit at all throws a RangeError.
   */
  getManyInto<K extends KeyKind>(
    table: Table<K, ValueKind>,
    keys: readonly KeyInput<K>[],
    target: Uint8Array,
    positions: Int32Array,
    start = 0,
  ): number {
    this._h();
    return getManyInto(this, this._table(table), keys, target, positions, start);
  }

  /**
   * Follows relations in one go: for each entry of `index` whose key starts
   * with `prefix`, in key order, yields the index key and the value of the
   * object whose key is `key.subarray(at, at + length)` in `objects`
   * (undefined if there is none). The index scan and the lookups run natively,
   * a batch of entries per call, with the objects' reads overlapped as in
   * `getMany`. The relation pattern of an index of `<src><dir><type><dst>` keys:
   *
   * ```ts
   * for (const { key, value } of txn.follow(relations, srcAndDir, objects, { at: 19, length: 16 })) { ... }
   * ```
   *
   * `index` must be a plain (not dupSort) table with binary or string keys.
   */
  follow<IK extends KeyKind, OK extends KeyKind, V extends ValueKind>(
    index: Table<IK, ValueKind>,
    prefix: KeyInput<IK>,
    objects: Table<OK, V>,
    options: FollowOptions,
  ): IterableIterator<FollowEntry<IK, V>> {
    this._h();
    return follow(this, index, prefix, objects, options, false) as IterableIterator<FollowEntry<IK, V>>;
  }

  /**
   * `follow` without allocating per entry: yields batches of raw bytes (index
   * keys and object values) with their layout. A batch is valid until the next
   * one is read; its object is reused. Values are the bytes as stored.
   */
  followBatches<IK extends KeyKind>(
    index: Table<IK, ValueKind>,
    prefix: KeyInput<IK>,
    objects: Table<KeyKind, ValueKind>,
    options: FollowOptions,
  ): IterableIterator<FollowBatch> {
    this._h();
    return follow(this, index, prefix, objects, options, true) as IterableIterator<FollowBatch>;
  }

  /**
   * @internal The native cache that may answer a read of `t` in this
   * transaction, or null: none for a parked reader (only libmdbx knows whether
   * its snapshot was ousted) or a table this write transaction changed.
   */
  _cacheOf(t: Table): Handle | null {
    const gc = t.cache, c = this._c;
    return gc !== null && !c.parked && (c.dirty === null || c.dirty[t.dbi] === 0) ? gc.h : null;
  }

  /** @internal Notes that this write transaction changed a table (its cache must not answer here). */
  _wrote(t: Table): void {
    const c = this._c, d = c.dirty;
    if (c.volatile.length !== 0) settle(c, null, 0, null, 0);
    if (d !== null) d[t.dbi] = 1;
  }

  /**
   * UNSAFE: the value of `key` without copying, or undefined: a read-only view
   * of the database's own memory, valid until this transaction ends (then it is
   * detached: length 0) and, in a write transaction, only until its next
   * change. Writing into it, or transferring its buffer (to a Worker,
   * `structuredClone` with a transfer list), is undefined behaviour that can
   * crash the process or change committed data; see `UnsafeView` for exactly
   * what is defined. Every other read returns a copy: use `get()` or `getInto()`
   * unless a measured copy cost says otherwise.
   */
  unsafeGetView<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>): UnsafeView | undefined {
    const h = this._h();
    const t = this._table(table);
    const kb = t.k.encode(key, "key");
    const r = fn.tm_get_ref(h, t.dbi, kb, t.k.len, scratch.f64Bytes);
    if (r < 0) {
      if (r === NOTFOUND) return undefined;
      this._fail(r, "get", t);
    }
    return viewOf(this._c, scratch.f64[0], scratch.f64[1]) as UnsafeView;
  }

  /** The value of `key` and how many values the key has (dupsort), or undefined. */
  getWithCount<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
  ): { value: ValueOf<V>; count: number } | undefined {
    const h = this._h();
    const t = this._table(table);
    const kb = t.k.encode(key, "key");
    let out = scratch.out;
    let n = fn.tm_get_ex(h, t.dbi, kb, t.k.len, out, out.length, scratch.f64Bytes);
    if (n < 0) {
      if (n === NOTFOUND) return undefined;
      this._fail(n, "get", t);
    }
    if (n > out.length) {
      out = growOut(n);
      n = check(fn.tm_get_ex(h, t.dbi, kb, t.k.len, out, out.length, scratch.f64Bytes), `get from ${t}`);
    }
    return { value: t.v.decode(out, 0, n) as ValueOf<V>, count: scratch.f64[0] };
  }

  /** True if `key` exists. */
  has<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>): boolean {
    const h = this._h();
    const t = this._table(table);
    const kb = t.k.encode(key, "key");
    const n = fn.tm_get(h, t.dbi, kb, t.k.len, scratch.out, 0);
    if (n === NOTFOUND) return false;
    if (n < 0) this._fail(n, "has", t);
    return true;
  }

  /** The first entry whose key is >= `key` (`exact` tells whether it is equal), or undefined. */
  getGreaterOrEqual<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
  ): (Entry<K, V> & { exact: boolean }) | undefined {
    const h = this._h();
    const t = this._table(table);
    const kb = t.k.encode(key, "key");
    let out = scratch.out;
    let n = fn.tm_get_ge(h, t.dbi, kb, t.k.len, out, out.length);
    if (n < 0) {
      if (n === NOTFOUND) return undefined;
      this._fail(n, "getGreaterOrEqual", t);
    }
    if (n > out.length) {
      out = growOut(n);
      n = check(fn.tm_get_ge(h, t.dbi, kb, t.k.len, out, out.length), `getGreaterOrEqual in ${t}`);
    }
    return { ...decodePair(t, out), exact: (out[8] & 1) === 1 };
  }

  /**
   * The entries of a key range, lazily, in key order (or reverse). Entries are
   * read in batches with one native call each; breaking out of the loop releases
   * the cursor. Changes made by this transaction while iterating may or may not
   * be seen by the remaining entries.
   */
  range<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    options: RangeOptions<K> = {},
  ): IterableIterator<Entry<K, V>> {
    return scan(this, this._table(table), options, Scan.KEYS | Scan.VALUES, 0) as IterableIterator<Entry<K, V>>;
  }

  /** The keys of a range (see `range`); dupsort tables yield each key once unless `uniqueKeys: false`. */
  keys<K extends KeyKind>(table: Table<K, ValueKind>, options: RangeOptions<K> = {}): IterableIterator<KeyOf<K>> {
    const t = this._table(table);
    const unique = options.uniqueKeys ?? true;
    return scan(this, t, { ...options, uniqueKeys: unique }, Scan.KEYS, 1) as IterableIterator<KeyOf<K>>;
  }

  /** The values of a range (see `range`). */
  values<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    options: RangeOptions<K> = {},
  ): IterableIterator<ValueOf<V>> {
    return scan(this, this._table(table), options, Scan.VALUES, 2) as IterableIterator<ValueOf<V>>;
  }

  /** The values of one key of a dupsort table, in order (or reverse). */
  dups<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    options: { reverse?: boolean; limit?: number; offset?: number } = {},
  ): IterableIterator<ValueOf<V>> {
    const t = this._table(table);
    return scan(this, t, { ...options, gte: key }, Scan.VALUES | Scan.DUPS_OF_KEY, 2) as IterableIterator<
      ValueOf<V>
    >;
  }

  // ---- order statistics (issue 15): src/ostat.ts, native/ostat.c, docs/order-statistics.md ----

  /**
   * The number of entries `range(table, options)` would yield, exact, in
   * O(log n) once the table's counts are memoised (a first count of a large
   * table reads its branch pages and one header per leaf page; after a commit
   * only the pages the commit wrote are read again). Dupsort tables count every
   * value, or every key with `uniqueKeys: true`. A write transaction counts
   * its own uncommitted writes.
   */
  count<K extends KeyKind>(table: Table<K, ValueKind>, options: RangeOptions<K> = {}): number {
    if (ostatBaseline.walking) return this._countWalk(table, options);
    return countRange(this, this._table(table), options);
  }

  /** @internal Counts by walking the range: the baseline of bench/ostat.bench.ts. */
  _countWalk<K extends KeyKind>(table: Table<K, ValueKind>, options: RangeOptions<K> = {}): number {
    let n = 0;
    for (const _ of scan(this, this._table(table), options, 0, 3)) n++;
    return n;
  }

  /**
   * The number of entries before `key` (keys less than it), which is the
   * position `key` has or would have; O(log n) when warm. Dupsort tables count
   * every value of the smaller keys, or keys with `uniqueKeys: true`; with
   * `value`, the entries before the pair (key, value).
   */
  rank<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    options: RankOptions<V> = {},
  ): number {
    return rankOf(this, this._table(table), key, options);
  }

  /**
   * The entry at position `index` of the table in key order (0 is the first;
   * negative counts from the end, -1 is the last), or undefined past either
   * end; O(log n) when warm. Dupsort tables: every value is a position, or
   * every key (with its first value) with `uniqueKeys: true`.
   */
  at<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    index: number,
    options: PositionOptions = {},
  ): Entry<K, V> | undefined {
    return entryAtIndex(this, this._table(table), index, options);
  }

  /**
   * `n` distinct entries of a range chosen uniformly at random (each subset of
   * n entries equally likely), in key order (reverse order with `reverse`);
   * every entry of the range if it has no more than n. Each costs one
   * O(log n) descent. `options.random` replaces `Math.random`.
   */
  sample<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    n: number,
    options: SampleOptions<K> = {},
  ): Entry<K, V>[] {
    return sampleRange(this, this._table(table), n, options);
  }

  /**
   * Every value of `key` in a dupFixed table, back to back in one Uint8Array
   * (value i at `i * size`; empty if the key is absent), read a page of values
   * per native call: the compact relation index's scan (docs/order-statistics.md).
   */
  dupsPacked<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>): Uint8Array {
    return packedDups(this, this._table(table), key);
  }

  // ---- end of order statistics ----

  /** An estimate of the number of entries between two keys (begin inclusive; either side open). */
  estimateRange<K extends KeyKind>(table: Table<K, ValueKind>, begin?: KeyInput<K>, end?: KeyInput<K>): number {
    const h = this._h();
    const t = this._table(table);
    const b = begin === undefined ? null : t.k.encode(begin, "begin key");
    const e = end === undefined ? null : t.k2.encode(end, "end key");
    this._check(
      fn.tm_estimate_range(h, t.dbi, b, b ? t.k.len : 0, b ? 1 : 0, e, e ? t.k2.len : 0, e ? 1 : 0, scratch.f64Bytes),
      `estimateRange in ${t}`,
      t,
    );
    return scratch.f64[0];
  }

  /** Compares two keys with the table's key order: negative, zero or positive. */
  compare<K extends KeyKind>(table: Table<K, ValueKind>, a: KeyInput<K>, b: KeyInput<K>): number {
    const h = this._h();
    const t = this._table(table);
    const x = t.k.encode(a, "key a"), y = t.k2.encode(b, "key b");
    return fn.tm_cmp(h, t.dbi, x, t.k.len, y, t.k2.len);
  }

  /** A cursor over a table, closed when this transaction ends (or by `close()`). */
  cursor<K extends KeyKind, V extends ValueKind>(table: Table<K, V>): Cursor<K, V> {
    const h = this._h();
    const t = this._table(table);
    const ch = fn.tm_cursor_open(h, t.dbi, scratch.i32Bytes);
    if (ch === null) this._check(scratch.i32[0], `opening a cursor on ${t}`, t);
    const cell: CursorCell = { h: ch!, txn: this._c };
    this._c.cursors.add(cell);
    return new Cursor<K, V>(cell, t, this);
  }

  /** Statistics of a table in this snapshot. */
  stat(table: Table): Stat {
    const t = this._table(table);
    this._check(fn.tm_dbi_stat(this._h(), t.dbi, scratch.f64Bytes), `stat of ${t}`, t);
    return readStat(scratch.f64);
  }

  /** The table's libmdbx flags and state (MDBX_DBI_* bits). */
  tableFlags(table: Table): { flags: number; state: number } {
    const t = this._table(table);
    this._check(fn.tm_dbi_flags(this._h(), t.dbi, scratch.u32Bytes), `flags of ${t}`, t);
    return { flags: scratch.u32[0], state: scratch.u32[1] };
  }

  /** Every named table of the database, with flags and statistics. */
  tables(): TableEntry[] {
    const h = this._h();
    let out = scratch.out;
    let n = check(fn.tm_enumerate_tables(h, out, out.length), "listing tables");
    if (n > out.length) {
      out = growOut(n);
      n = check(fn.tm_enumerate_tables(h, out, out.length), "listing tables");
    }
    const dv = new DataView(out.buffer, out.byteOffset, n);
    const list: TableEntry[] = [];
    for (let o = 0; o < n;) {
      const nl = dv.getUint32(o, true), flags = dv.getUint32(o + 4, true);
      const st = new Float64Array(7);
      for (let i = 0; i < 7; i++) st[i] = dv.getFloat64(o + 12 + 8 * i, true);
      list.push({ name: decoder.decode(out.subarray(o + 68, o + 68 + nl)), flags, stat: readStat(st) });
      o += (68 + nl + 7) & ~7;
    }
    return list;
  }

  /** The current value of the table's sequence (WriteTxn.incrementSequence advances it). */
  sequence(table: Table): number {
    const t = this._table(table);
    this._check(fn.tm_dbi_sequence(this._h(), t.dbi, 0, scratch.f64Bytes), `sequence of ${t}`, t);
    return scratch.f64[0];
  }

  /** The database's canary words as of this snapshot. */
  canary(): Canary {
    check(fn.tm_canary_get(this._h(), scratch.f64Bytes), "reading the canary");
    const a = scratch.f64;
    return { x: a[0], y: a[1], z: a[2], v: a[3] };
  }

  /** Information about this transaction; `scanReaders` also computes the reader lag of a write transaction. */
  info(scanReaders = false): TxnInfo {
    check(fn.tm_txn_info(this._h(), scanReaders ? 1 : 0, scratch.f64Bytes), "txn info");
    const a = scratch.f64;
    return {
      id: a[0],
      readerLag: a[1],
      spaceUsed: a[2],
      spaceLimitSoft: a[3],
      spaceLimitHard: a[4],
      spaceRetired: a[5],
      spaceLeftover: a[6],
      spaceDirty: a[7],
    };
  }

  /**
   * Copies this transaction's snapshot to a new database file (`compact`
   * omits free pages and renumbers). The destination must not exist unless
   * `overwrite`. It gets the permission bits of the database's data file, or
   * `mode`, exactly, whatever the umask.
   */
  copyTo(dest: string, options: { compact?: boolean; overwrite?: boolean; mode?: number } = {}): void {
    const f = (options.compact ? CopyFlags.COMPACT : 0) | (options.overwrite ? CopyFlags.OVERWRITE : 0);
    const p = new TextEncoder().encode(dest + "\0");
    check(fn.tm_txn_copy(this._h(), p, f, copyMode(options.mode)), `copying to ${dest}`);
  }

  /**
   * @internal Throws for a failed call. MDBX_BAD_VALSIZE says which size is
   * wrong and the limit: the key is the one `t.k` encoded last, the value is
   * `vlen` bytes (none for reads).
   */
  _fail(r: number, op: string, t: Table, vlen?: number): never {
    if (r === -ErrorCode.EINVAL && this._c.h === null) this._dead();
    if (r === ErrorCode.BAD_VALSIZE) throw badSize(this._c.world.h, op, t, t.k.len, vlen);
    this._check(r, `${op} in ${t}`, t);
    fail(r, `${op} in ${t}`);
  }

  /**
   * @internal Checks a native return about table `t`: MDBX_BAD_DBI says why
   * the table is not usable here (dropped, or newer than this snapshot).
   */
  _check(r: number, what: string, t: Table): number {
    if (r >= 0) return r;
    if (r === ErrorCode.BAD_DBI) {
      if (t.dropped) {
        throw new MdbxError(r, `${what}: the table was dropped; open it again with env.table() (a new, empty table)`);
      }
      const c = this._c, id = c.h === null ? 0 : fn.tm_txn_id(c.h), snap = c.write ? id - 1 : id;
      if (t.since > snap) {
        throw new MdbxError(
          r,
          `${what}: the table did not exist in this transaction's snapshot (txnid ${snap}): env.table() created ` +
            `it afterwards (txnid ${t.since}); begin a new transaction to use it`,
        );
      }
    }
    return fail(r, what);
  }

  /** @internal */
  abstract [Symbol.dispose](): void;
}

/** The MDBX_BAD_VALSIZE error of a key of `klen` bytes (and a value of `vlen`) that `t` does not take. */
function badSize(h: Handle, op: string, t: Table, klen: number, vlen: number | undefined): MdbxError {
  const maxK = fn.tm_env_maxkeysize(h, t.flags), maxV = fn.tm_env_maxvalsize(h, t.flags);
  const bytes = (n: number) => `${n} byte${n === 1 ? "" : "s"}`;
  let why: string;
  if (klen > maxK) {
    why = `the key of ${bytes(klen)} is longer than the ${bytes(maxK)} a key of ${t} may have ` +
      "(a limit of the page size); use shorter keys, or a database with larger pages";
  } else if (vlen !== undefined && vlen > maxV) {
    why = `the value of ${bytes(vlen)} is longer than the ${bytes(maxV)} a value of ${t} may have ` +
      `(${t.dupSort ? "a dupSort value must fit in a page" : "libmdbx's limit"}); split it over several keys`;
  } else if ((t.flags & DbFlags.INTEGERKEY) && klen !== 4 && klen !== 8) {
    why = `the key of ${bytes(klen)} is not 4 or 8 bytes, as keys of an integer-key table must be`;
  } else if ((t.flags & DbFlags.DUPFIXED) && vlen !== undefined) {
    why = `the value of ${bytes(vlen)} does not have the one size every value of this dupFixed table has`;
  } else {
    why = vlen === undefined
      ? `a key of ${bytes(klen)} is not accepted`
      : `a key of ${bytes(klen)} with a value of ${bytes(vlen)} is not accepted`;
  }
  return new MdbxError(ErrorCode.BAD_VALSIZE, `${op} in ${t}: ${why}`);
}

/** @internal Decodes a pair written by tm_pair_out at offset 0. */
export function decodePair<K extends KeyKind, V extends ValueKind>(t: Table<K, V>, out: Uint8Array): Entry<K, V> {
  const kl = out[0] | (out[1] << 8) | (out[2] << 16) | (out[3] << 24);
  const vl = out[4] | (out[5] << 8) | (out[6] << 16) | (out[7] << 24);
  return {
    key: t.k.decode(out, 12, kl) as KeyOf<K>,
    value: t.v.decode(out, 12 + kl, vl) as ValueOf<V>,
  };
}

/** Scan batch buffers, reused across iterators. */
const pool: Uint8Array[] = [];

/** mode: 0 entries, 1 keys, 2 values, 3 nothing (counting). */
function* scan<K extends KeyKind, V extends ValueKind>(
  txn: Txn,
  t: Table<K, V>,
  o: RangeOptions<K>,
  what: number,
  mode: 0 | 1 | 2 | 3,
): Generator<unknown, void, undefined> {
  let flags = what | (t.dupSort ? Scan.DUPSORT : 0);
  const rev = !!o.reverse;
  if (rev) flags |= Scan.REVERSE;
  if (o.uniqueKeys && !(flags & Scan.DUPS_OF_KEY)) flags |= Scan.NODUP;
  let limit = checkLimit(o.limit ?? Infinity, `the limit option of a range read of ${t}`);
  // a u32 of the native scan: range-checked here, so Deno and Bun say the same
  const offset = checkU32(o.offset ?? 0, `the offset option of a range read of ${t}`, " (entries to skip)");
  // start / end keys, copied: the iterator outlives the encoders' scratch
  let start: Uint8Array | null = null, end: Uint8Array | null = null;
  const lower = o.gte ?? o.gt, upper = o.lte ?? o.lt;
  if (o.gte !== undefined && o.gt !== undefined || o.lte !== undefined && o.lt !== undefined) {
    throw new TypeError("give at most one of gte/gt and one of lte/lt");
  }
  if (o.prefix !== undefined && lower === undefined && upper === undefined) {
    // the relation scan: the prefix is checked natively on every key (memcmp)
    const p = prefixBytes(t, o.prefix);
    end = p;
    flags |= Scan.PREFIX;
    if (!rev) {
      start = p;
      flags |= Scan.HAS_START;
    } else {
      start = prefixEnd(p);
      if (start) flags |= Scan.HAS_START | Scan.START_EXCLUSIVE;
    }
  } else if (flags & Scan.DUPS_OF_KEY) {
    start = t.k.encode(lower, "key").slice(0, t.k.len);
    flags |= Scan.HAS_START;
  } else {
    // with a prefix too (paging inside it): the intersection of both
    const iv = rangeInterval(t, o);
    if (iv === null) return;
    const s = rev ? iv.hi : iv.lo, e = rev ? iv.lo : iv.hi;
    if (s !== null) {
      start = s;
      flags |= Scan.HAS_START | ((rev ? iv.hiIncl : iv.loIncl) ? 0 : Scan.START_EXCLUSIVE);
    }
    if (e !== null) {
      end = e;
      flags |= Scan.HAS_END | ((rev ? iv.loIncl : iv.hiIncl) ? Scan.END_INCLUSIVE : 0);
    }
  }
  if (limit === 0) return;
  const cur = txn.cursor(t);
  let buf = pool.pop() ?? new Uint8Array(16 * 1024);
  let batch = 16; // small first batch: cheap when the loop stops early
  let op: number = Scan.FIRST;
  let skip = offset;
  try {
    // order statistics: stand on the offset-th entry by its position instead of stepping there
    if (skip > 0 && !(flags & Scan.DUPS_OF_KEY) && !ostatBaseline.walking) {
      if (!seekOffset(txn, t, cur, flags, start, skip)) return;
      op = Scan.CURRENT;
      skip = 0;
    }
    for (;;) {
      const h = cur._h();
      const want = Math.min(batch, limit);
      const n = fn.tm_scan(
        h,
        flags | op,
        start,
        start ? start.length : 0,
        end,
        end ? end.length : 0,
        skip,
        want,
        buf,
        buf.length,
      );
      if (n < 0) txn._fail(n, "range", t);
      skip = 0;
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
      const state = dv.getUint32(4, true), need = dv.getUint32(8, true);
      let p = 12;
      for (let i = 0; i < n; i++) {
        // the batch is a copy, but an ended (or parent-of-active-child) transaction yields nothing more
        if (i > 0 && (txn._c.h === null || txn._c.child !== null)) txn._dead();
        const kl = dv.getUint32(p, true), vl = dv.getUint32(p + 4, true);
        p += 8;
        const ko = p;
        if (what & Scan.KEYS) p += kl;
        const vo = p;
        if (what & Scan.VALUES) p += vl;
        switch (mode) {
          case 0:
            yield { key: t.k.decode(buf, ko, kl), value: t.v.decode(buf, vo, vl) };
            break;
          case 1:
            yield t.k.decode(buf, ko, kl);
            break;
          case 2:
            yield t.v.decode(buf, vo, vl);
            break;
          default:
            yield undefined;
        }
      }
      limit -= n;
      if (state === 1 || limit <= 0) return;
      op = Scan.CURRENT;
      if (need > buf.length) {
        let size = buf.length;
        while (size < need) size *= 2;
        buf = new Uint8Array(size);
      }
      if (batch < 4096) batch *= 4;
    }
  } finally {
    cur.close();
    if (buf.length <= 1 << 20 && pool.length < 8) pool.push(buf);
  }
}

/** A read-only transaction: a consistent snapshot of the database. */
export class ReadTxn extends Txn {
  /** Ends the transaction and releases its snapshot. Idempotent. */
  end(): void {
    const c = this._c;
    if (c.h === null) return;
    registry.unregister(c);
    check(finish(c, "abort", "it has ended"), "ending a read transaction");
  }

  /** Same as `end()`: a read transaction has nothing to commit. */
  commit(): void {
    this.end();
  }

  /** Same as `end()`. */
  abort(): void {
    this.end();
  }

  /** Releases the snapshot but keeps the reader slot for `renew()` (cheap re-start). Views are detached. */
  reset(): void {
    const c = this._c;
    if (c.h === null) this._dead();
    c.parked = true; // until renew(): the snapshot is released, so the cache must not answer
    check(finish(c, "reset", ""), "resetting a read transaction");
  }

  /** Starts again on the newest snapshot after `reset()`. */
  renew(): void {
    const c = this._c;
    if (c.h === null) this._dead();
    if (c.world.retired) {
      throw misuse(
        ErrorCode.BAD_TXN,
        "the database moved to a new file (live rebuild) since this transaction was reset; end it and begin a new one",
      );
    }
    check(fn.tm_txn_renew(c.h), "renewing a read transaction");
    c.parked = false;
    if (c.env.cache !== null) syncSnapshot(c);
  }

  /**
   * Parks the reader: its snapshot stays valid but may be ousted if writers need
   * the space (then `unpark()` reports it). With `autoUnpark` any read unparks it.
   */
  park(autoUnpark = true): void {
    check(fn.tm_txn_park(this._h(), autoUnpark ? 1 : 0), "parking a read transaction");
    // until unpark() the cache is bypassed: only libmdbx knows whether the snapshot was ousted
    this._c.parked = true;
  }

  /**
   * Unparks the reader. Returns true if the snapshot was kept; false if it had
   * been ousted and `restartIfOusted` restarted it on a newer snapshot. Throws
   * MDBX_OUSTED when it was ousted and no restart was asked for.
   */
  unpark(restartIfOusted = true): boolean {
    const c = this._c;
    const r = check(fn.tm_txn_unpark(this._h(), restartIfOusted ? 1 : 0), "unparking a read transaction");
    c.parked = false;
    if (r !== 0 && c.env.cache !== null) syncSnapshot(c);
    return r === 0;
  }

  /** Ends the transaction (`using` support). */
  [Symbol.dispose](): void {
    this.end();
  }
}

/** A write transaction. One per environment at a time; nested ones through `begin()`. */
export class WriteTxn extends Txn {
  /** Stores `value` under `key` (see PutOptions for the flags). */
  put<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    value: ValueInput<V>,
    options?: PutOptions,
  ): void {
    const h = this._h();
    const t = this._table(table);
    const kb = t.k.encode(key, "key");
    const vb = t.v.encode(value, "value");
    const c = this._c;
    if (t.v.ver !== 0) {
      stamp(c, h, vb);
      if (options?.ifVersion !== undefined) this._ifVersion(h, t, kb, key, options.ifVersion, "put");
    } else if (options?.ifVersion !== undefined) throw notVersioned(t, "put with ifVersion");
    if (c.volatile.length !== 0) settle(c, kb, t.k.len, vb, t.v.len);
    c.dirty![t.dbi] = 1; // every handle: another handle of this table may have a cache
    const r = fn.tm_put(h, t.dbi, kb, t.k.len, vb, t.v.len, options ? putFlags(options) : 0);
    if (r !== 0) this._fail(r, "put", t, t.v.len);
  }

  // ------------------------------------------------ versions, range delete (issue 14)

  /**
   * Throws VersionMismatchError unless `key`'s current version in this
   * transaction is `version` (null: unless the key is absent). With `del()`
   * after it, a conditional delete; the same check as `put(..., { ifVersion })`.
   */
  check<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>, version: number | null): void {
    const h = this._h();
    const t = this._table(table);
    if (!t.versioned) throw notVersioned(t, "check");
    const kb = t.k.encode(key, "key");
    this._ifVersion(h, t, kb, key, version, "check");
  }

  /** @internal Throws VersionMismatchError unless the key (encoded in `kb`) has the version `want`. */
  _ifVersion(h: Handle, t: Table, kb: Uint8Array, key: unknown, want: unknown, op: string): void {
    const expected: Version = checkVersionArg(want, `${op} in ${t}: the version`);
    const actual = versionIn(h, t, kb, t.k.len);
    if (actual === -1) {
      const r = fn.tm_get(h, t.dbi, kb, t.k.len, scratch.out, 0);
      this._fail(r, op, t);
    }
    if (actual !== expected) throw mismatch(t, key, expected, actual, op);
  }

  /**
   * Deletes every entry whose key lies in the range (`gte`/`gt`, `lte`/`lt`,
   * `prefix`, as for `range()`; none: the whole table) and returns how many
   * were deleted (every value of a dupSort key counts). One native call:
   * libmdbx's `mdbx_cursor_delete_range` cuts whole pages and branches out of
   * the tree instead of deleting entry by entry.
   */
  delRange<K extends KeyKind>(
    table: Table<K, ValueKind>,
    range: Pick<RangeOptions<K>, "gte" | "gt" | "lte" | "lt" | "prefix"> = {},
  ): number {
    const h = this._h();
    const t = this._table(table);
    if (range === null || typeof range !== "object") {
      throw new TypeError(`delRange in ${t}: the range must be an object like { gte, lt } or { prefix }`);
    }
    for (const k of Object.keys(range)) {
      if (k !== "gte" && k !== "gt" && k !== "lte" && k !== "lt" && k !== "prefix") {
        throw new TypeError(`delRange in ${t}: unknown range option "${k}"; use gte/gt, lte/lt and prefix`);
      }
    }
    const iv = rangeInterval(t, range);
    this._wrote(t);
    if (iv === null) return 0;
    const f = (iv.lo !== null ? 1 : 0) | (iv.lo !== null && !iv.loIncl ? 2 : 0) | (iv.hi !== null ? 4 : 0) |
      (iv.hi !== null && iv.hiIncl ? 8 : 0);
    const r = fn.tm_del_range(h, t.dbi, iv.lo, iv.lo?.length ?? 0, iv.hi, iv.hi?.length ?? 0, f, scratch.f64Bytes);
    if (r < 0) this._fail(r, "delRange", t);
    return scratch.f64[0];
  }

  // ------------------------------------------------ end of versions, range delete

  /**
   * UNSAFE: reserves `length` bytes for the value of `key` and returns them to
   * fill in place (MDBX_RESERVE): the transaction's own page memory, no copy.
   * Fill it at once: the next change in this transaction (put, del, another
   * reserve, a nested `begin()`, ...) may move that memory, so the array is
   * detached then (length 0: later writes into it are lost, not misplaced), as
   * it is when the transaction ends. Transferring its buffer (to a Worker, a
   * transfer list) is undefined behaviour that can crash the process (see
   * `UnsafeView`). `put()` is the safe way to store a value.
   */
  unsafeReserve<K extends KeyKind>(
    table: Table<K, ValueKind>,
    key: KeyInput<K>,
    length: number,
    options?: PutOptions,
  ): Uint8Array {
    const h = this._h();
    const t = this._table(table);
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(`unsafeReserve in ${t}: length must be a byte count, got ${describe(length)}`);
    }
    if (t.versioned) throw new TypeError(`unsafeReserve in ${t}: a versioned table's values are written by put()`);
    const kb = t.k.encode(key, "key");
    // before the call: the native length is 32 bits, and a larger one must not wrap around
    if (length > fn.tm_env_maxvalsize(this._c.world.h, t.flags)) {
      throw badSize(this._c.world.h, "reserve", t, t.k.len, length);
    }
    const c = this._c;
    if (c.volatile.length !== 0) settle(c, kb, t.k.len, null, 0);
    c.dirty![t.dbi] = 1; // every handle: another handle of this table may have a cache
    const r = fn.tm_put_reserve(h, t.dbi, kb, t.k.len, length, putFlags(options), scratch.f64Bytes);
    if (r !== 0) this._fail(r, "reserve", t, length);
    const ab = pinned(backend.view(scratch.f64[0], scratch.f64[1]));
    c.volatile.push(ab);
    return new Uint8Array(ab);
  }

  /**
   * Deletes `key` (all its values in a dupsort table), or only the pair
   * key/value when `value` is given. Returns false if there was nothing to delete.
   */
  del<K extends KeyKind, V extends ValueKind>(table: Table<K, V>, key: KeyInput<K>, value?: ValueInput<V>): boolean {
    const h = this._h();
    const t = this._table(table);
    const kb = t.k.encode(key, "key");
    const vb = value === undefined ? null : t.v.encode(value, "value");
    const c = this._c;
    if (c.volatile.length !== 0) settle(c, kb, t.k.len, vb, vb ? t.v.len : 0);
    c.dirty![t.dbi] = 1; // every handle: another handle of this table may have a cache
    const r = fn.tm_del(h, t.dbi, kb, t.k.len, vb, vb ? t.v.len : 0, vb ? 1 : 0);
    if (r === NOTFOUND) return false;
    if (r !== 0) this._fail(r, "del", t, vb ? t.v.len : undefined);
    return true;
  }

  /**
   * Replaces the value of `key` (or deletes it when `value` is undefined) and
   * returns the previous value, or undefined if there was none.
   */
  replace<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    value: ValueInput<V> | undefined,
    options?: PutOptions,
  ): ValueOf<V> | undefined {
    const h = this._h();
    const t = this._table(table);
    const kb = t.k.encode(key, "key");
    const vb = value === undefined ? null : t.v.encode(value, "value");
    const f = putFlags(options);
    const c = this._c;
    if (vb !== null && t.v.ver !== 0) stamp(c, h, vb); // issue 14: versioned tables
    if (options?.ifVersion !== undefined) {
      if (!t.versioned) throw notVersioned(t, "replace with ifVersion");
      this._ifVersion(h, t, kb, key, options.ifVersion, "replace");
    }
    if (c.volatile.length !== 0) settle(c, kb, t.k.len, vb, vb ? t.v.len : 0);
    c.dirty![t.dbi] = 1; // every handle: another handle of this table may have a cache
    let out = scratch.out;
    for (;;) {
      const n = fn.tm_replace(h, t.dbi, kb, t.k.len, vb, vb ? t.v.len : 0, vb ? 1 : 0, f, out, out.length);
      if (n === NOTFOUND) return undefined;
      if (n < 0) this._fail(n, "replace", t, vb ? t.v.len : undefined);
      if (n <= out.length) return t.v.decode(out, 0, n) as ValueOf<V>;
      out = growOut(n);
    }
  }

  /** Deletes every entry of the table (the table stays). */
  clear(table: Table): void {
    const t = this._table(table);
    this._wrote(t);
    this._check(fn.tm_drop(this._h(), t.dbi, 0), `clearing ${t}`, t);
  }

  /** Deletes the table itself; its handle becomes unusable once this transaction commits. */
  drop(table: Table): void {
    const t = this._table(table);
    this._wrote(t);
    const r = fn.tm_drop(this._h(), t.dbi, 1);
    if (r === DROP_SHARED) {
      throw new MdbxError(
        ErrorCode.BUSY,
        `dropping ${t}: the database is open in other Envs of this process (other Workers); deleting a table ` +
          "frees its handle for every Env, which another Worker could then use for another table: clear it with " +
          "txn.clear() instead, or drop it when this is the only Env of the database (docs/workers.md)",
      );
    }
    this._check(r, `dropping ${t}`, t);
    t.dropped = true;
    if (t.cache !== null) {
      t.cache.close();
      t.cache = null;
    }
    this._c.env.forget(t);
  }

  /** Renames a table. */
  rename(table: Table, name: string): void {
    const t = this._table(table);
    if (t.name === null) throw new TypeError("the main table cannot be renamed");
    const n = new TextEncoder().encode(name);
    const h = this._h();
    beforeChange(this._c); // a rename rewrites the main table's page
    check(fn.tm_dbi_rename(h, t.dbi, n, n.length), `renaming ${t} to "${name}"`);
    t.cache?.rename(name, t.dbi); // issue 11: the shared get() cache is keyed by name
    this._c.env.renamed(t, name);
    // libmdbx closes the handle if the rename is discarded: then forget it under its new name
    (this._c.onDiscard ??= []).push(() => this._c.env.forget(t));
  }

  /** Adds `increment` to the table's sequence and returns the value before the increment. */
  incrementSequence(table: Table, increment = 1): number {
    if (!Number.isSafeInteger(increment) || increment < 0) {
      throw new RangeError("increment must be a safe integer >= 0");
    }
    const t = this._table(table);
    this._check(fn.tm_dbi_sequence(this._h(), t.dbi, increment, scratch.f64Bytes), `sequence of ${t}`, t);
    return scratch.f64[0];
  }

  /** Sets the canary words x, y, z (v becomes this transaction's id). */
  setCanary(canary: { x?: number; y?: number; z?: number }): void {
    const cur = this.canary();
    check(
      fn.tm_canary_put(this._h(), canary.x ?? cur.x, canary.y ?? cur.y, canary.z ?? cur.z),
      "setting the canary",
    );
  }

  /**
   * Begins a nested transaction. Until it ends, this transaction refuses calls;
   * committing it merges its changes here, aborting it discards only them.
   */
  begin(): WriteTxn {
    const h = this._h();
    const c = this._c;
    beforeChange(c); // the child's commit replaces this transaction's dirty pages
    const ch = fn.tm_txn_begin(c.world.h, h, 0, scratch.i32Bytes);
    if (ch === null) fail(scratch.i32[0], "beginning a nested transaction");
    const cell: TxnCell = {
      h: ch,
      write: true,
      env: c.env,
      parent: c,
      child: null,
      views: [],
      volatile: [],
      cursors: new Set(),
      ended: "",
      snap: c.snap,
      parked: false,
      dirty: c.dirty, // one for the whole nest: a child sees its parent's writes
      world: c.world,
      gen: c.gen,
    };
    c.child = cell;
    c.env.live.add(cell);
    return new WriteTxn(cell);
  }

  /** Commits. A failed commit aborts the transaction and throws. */
  commit(): void {
    const c = this._c;
    if (c.h === null || c.child !== null) this._dead();
    registry.unregister(c);
    check(finish(c, "commit", "it was committed"), "commit");
  }

  /** Discards the transaction's changes. Idempotent. */
  abort(): void {
    const c = this._c;
    if (c.h === null) return;
    registry.unregister(c);
    check(finish(c, "abort", "it was aborted"), "abort");
  }

  /** Aborts unless committed (`using` support). */
  [Symbol.dispose](): void {
    this.abort();
  }
}

/** @internal Begins a top-level transaction on an environment. */
export function beginTxn(env: EnvCore, write: boolean, flags: number): TxnCell {
  if (write && env.writer !== null) {
    throw misuse(
      ErrorCode.TXN_OVERLAPPING,
      `a write transaction is already open on ${env.label} in this thread; commit or abort it first ` +
        "(use txn.begin() for a nested transaction)",
    );
  }
  env.handle(); // throws if closed
  let h = beginNative(env, flags);
  if (h === null && scratch.i32[0] === SWITCHED) {
    // a live rebuild moved the database to a new file since this Env last looked: follow it, begin there
    env.follow();
    h = beginNative(env, flags);
  }
  if (h === null && scratch.i32[0] === ErrorCode.UNABLE_EXTEND_MAPSIZE && env.live.size === 0) {
    // issue 14: another process raised the upper bound (env.resize) past this process's map, which could not grow in
    // place; nothing of this Env points into the map, so it may move (native/geometry.c): map it, begin again
    if (fn.tm_env_resize(env.world.h, -1, -1, -1, -1, -1, 1) === 0) {
      h = fn.tm_txn_begin(env.world.h, null, flags, scratch.i32Bytes);
    }
  }
  if (h === null) {
    if (scratch.i32[0] === SWITCHED) {
      throw new MdbxError(
        ErrorCode.BUSY,
        `${env.label} moved to a new file twice while beginning a transaction; retry`,
      );
    }
    if (!write && scratch.i32[0] === ErrorCode.READERS_FULL) throw readersFull(env);
    fail(scratch.i32[0], write ? "beginning a write transaction" : "beginning a read transaction");
  }
  const world = env.world;
  const cell: TxnCell = {
    h,
    write,
    env,
    parent: null,
    child: null,
    views: [],
    volatile: [],
    cursors: new Set(),
    ended: "",
    snap: 0,
    parked: false,
    // dbis are below maxTables + 2 (libmdbx's GC and main tables)
    dirty: write ? new Uint8Array(env.maxDbi) : null,
    world,
    gen: world.gen,
  };
  world.live++;
  env.live.add(cell);
  if (write) env.writer = cell;
  if (env.cache !== null) {
    try {
      syncSnapshot(cell);
    } catch (e) {
      finish(cell, "abort", "it failed to start");
      throw e;
    }
  }
  return cell;
}

/**
 * tm_txn_begin, again while it answers WRITE_WAIT: a write transaction of an
 * env that other Workers share waits for the writer lock in slices of ~10 ms,
 * coming back here between them so that the thread can be terminated while it
 * waits (docs/workers.md).
 */
function beginNative(env: EnvCore, flags: number): Handle | null {
  let h = fn.tm_txn_begin(env.world.h, null, flags, scratch.i32Bytes);
  while (h === null && scratch.i32[0] === WRITE_WAIT) h = fn.tm_txn_begin(env.world.h, null, flags, scratch.i32Bytes);
  return h;
}

/** tm_txn_begin: the writer lock of a shared env is still taken; call again (native/turbomdbx.c). */
const WRITE_WAIT = -29994;

/** MDBX_READERS_FULL with the numbers: how many slots, how many this process holds, how to get more. */
function readersFull(env: EnvCore): MdbxError {
  let max = 0, used = 0;
  if (fn.tm_env_info(env.world.h, null, scratch.f64Bytes) >= 0) {
    max = scratch.f64[11];
    used = scratch.f64[12];
  }
  let mine = 0;
  for (const c of env.live) if (!c.write && c.h !== null) mine++;
  return new MdbxError(
    ErrorCode.READERS_FULL,
    `beginning a read transaction on ${env.label}: all ${max || used} reader slots of the database are taken ` +
      `(${mine} by read transactions open in this process; an env.read(async ...) holds one until its promise ` +
      `settles): end read transactions sooner, or open the database with a larger maxReaders ` +
      `(e.g. open(path, { maxReaders: ${Math.max(2 * max, 256)} })), which takes effect when the first process ` +
      "opens it (the lock file is sized then)",
  );
}

/** tm_drop's answer to deleting a table of an env other Workers share (TM_DROP_SHARED, native/codes.h). */
const DROP_SHARED = -29996;

/** tm_txn_begin's answer when the database moved to a new file (native/rebuild.c). */
const SWITCHED = -29999;

/**
 * @internal The stand-in of table `t` for transaction `c` when they belong to
 * different files of a live rebuild: an old transaction gets a copy with the
 * old file's handle (and no cache); a table object that missed the switch (a
 * private copy) is brought up to date from the Env's table of that name.
 */
export function tableIn(c: TxnCell, t: Table): Table {
  const w = c.world;
  if (w === c.env.world) {
    c.env.refresh(t);
    if (t.gen === c.gen) return t;
  } else {
    const s = w.shadows.get(t);
    if (s !== undefined) return s;
    const dbi = w.dbis.get(t.name);
    if (dbi !== undefined) {
      const shadow = new Table(t.owner, t.name, dbi, t.flags, t.keys, t.values, w.gen, t.versioned);
      w.shadows.set(t, shadow);
      return shadow;
    }
  }
  throw new MdbxError(
    ErrorCode.BAD_DBI,
    `${t} is not open in the file this transaction reads: the database moved to a new file (live rebuild) ` +
      "between them; begin a new transaction",
  );
}

/** @internal Records the snapshot a transaction reads and lets the cache catch up with other processes. */
export function syncSnapshot(c: TxnCell): void {
  const id = fn.tm_txn_id(c.h);
  c.snap = c.write ? id - 1 : id;
  // the cache may ask to be bypassed (0) while the newest commit is being confirmed (issue 11)
  if (c.world === c.env.world && c.env.cache !== null) c.snap = c.env.cache.sync(c.h!, c.snap);
}

// ------------------------------------------------ versions, range delete (issue 14)

/** @internal Writes the version of write transaction `c` (its top-level transaction's txnid) into `vb[0..8)`. */
export function stamp(c: TxnCell, h: Handle, vb: Uint8Array): void {
  let v = c.ver;
  if (v === undefined) {
    let top = c;
    while (top.parent !== null) top = top.parent;
    // a nested transaction writes for its top-level one, whose commit the version names
    v = c.ver = top.ver ??= fn.tm_txn_id(top === c ? h : top.h);
  }
  writeVersion(vb, v);
}
