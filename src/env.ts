/**
 * Environments: one database file (or directory) opened in this process.
 *
 * @module
 */
import { checkU32, describe, type KeyKind, kindSize, type ValueKind } from "./codec.ts";
import {
  CopyFlags,
  DbFlags,
  describeTableFlags,
  EnvFlags,
  Option,
  type OptionName,
  Scan,
  TxnFlags,
} from "./constants.ts";
import { backend, check, codeOf, cString, encoder, fail, fn, load, misuse, scratch } from "./core.ts";
import { ErrorCode, MdbxError } from "./errors.ts";
import type { Handle, NativeCallback } from "./ffi/mod.ts";
import { checkKinds, Table, tableFlags, type TableOptions } from "./table.ts";
import { type CacheOptions, CacheState, GetCache } from "./cache.ts";
import {
  beginConcurrent,
  type ConcurrentOptions,
  type ConcurrentTxn,
  transact,
  type TransactOptions,
} from "./concurrent/mod.ts";
import {
  beforeChange,
  beginTxn,
  copyMode,
  endAll,
  type EnvCore,
  readStat,
  ReadTxn,
  type Stat,
  syncSnapshot,
  type TableEntry,
  type TxnCell,
  type World,
  WriteTxn,
} from "./txn.ts";
import { type CheckOptions, type CheckResult, runCheck, timeout16dot16, unopenableResult } from "./check.ts";
import { progressOf, type RebuildOptions, RebuildPhase, type RebuildResult, resultOf } from "./rebuild.ts";
import {
  flushLog,
  type Logger,
  type LogLevel,
  type LogRegistration,
  pollLog,
  registerLogger,
  unregisterLogger,
} from "./log.ts";
// server: change feed, auto-batched writes (docs/server.md)
import {
  type Watch,
  watch as watchTable,
  type WatchedEntry,
  watchKeys as watchTableKeys,
  type WatchOptions,
} from "./watch.ts";
import type { KeyOf, ValueOf } from "./codec.ts";
import { closeSyncer } from "./durable.ts";
import { autoWrite } from "./writes.ts";

/** A size in bytes: a number, or a string such as "64GiB", "512MiB", "4KiB", "1GB". */
export type Size = number | string;

/** Map geometry (mdbx_env_set_geometry). Omitted fields keep libmdbx's defaults. */
export interface Geometry {
  /** Smallest size the file may shrink to. */
  lower?: Size;
  /** Size to set now. */
  now?: Size;
  /** Largest size the file may grow to (the map reserves this much address space). */
  upper?: Size;
  /** Growth step. */
  growth?: Size;
  /** Shrink when this much at the end is free. */
  shrink?: Size;
}

/**
 * Durability of commits:
 * - "durable" (default): every commit is synced to disk;
 * - "noMetaSync": data is synced, the meta page lazily (a crash may lose the last commits, never consistency);
 * - "lazy": commits are not synced; a later sync (see syncBytes/syncPeriod, env.sync()) makes them durable,
 *   and a crash rolls back to the last synced state (MDBX_SAFE_NOSYNC);
 * - "nosync": never synced by libmdbx (MDBX_UTTERLY_NOSYNC): a system crash can corrupt the database.
 */
export type SyncMode = "durable" | "noMetaSync" | "lazy" | "nosync";

/** How a database is opened. */
export interface OpenOptions {
  /** Path of the turbomdbx shared library (otherwise TURBOMDBX_LIB, then the local build). */
  libraryPath?: string;
  /** Create the database if it does not exist (default true). */
  create?: boolean;
  /** Open read-only. */
  readOnly?: boolean;
  /** Exclusive use by this process: no other process can open it. */
  exclusive?: boolean;
  /** `path` names the data file itself, not a directory (the lock file is `<path>-lck`). */
  noSubdir?: boolean;
  /** Maximum number of named tables (default 64). */
  maxTables?: number;
  /** Maximum number of concurrent readers across processes (default libmdbx's: 114+). */
  maxReaders?: number;
  /** Page size for a new database: a power of two from 256 to 65536 (default: the OS page size). */
  pageSize?: Size;
  /** Map geometry. */
  geometry?: Geometry;
  /** Durability mode (default "durable"). */
  sync?: SyncMode;
  /** With "lazy"/"noMetaSync": sync after this many unsynced bytes. */
  syncBytes?: Size;
  /** With "lazy"/"noMetaSync": sync after this many milliseconds. */
  syncPeriodMs?: number;
  /**
   * Tie transactions to the thread that began them (libmdbx's default). turbomdbx
   * defaults to false (MDBX_NOSTICKYTHREADS): JavaScript runs many transactions
   * on one thread, and a read transaction may be continued after an await.
   */
  stickyThreads?: boolean;
  /** Map the file read-write and write pages in place (MDBX_WRITEMAP). */
  writeMap?: boolean;
  /** Disable OS read-ahead (for databases much larger than RAM). */
  noReadAhead?: boolean;
  /** Do not zero-fill new pages before writing them. */
  noMemInit?: boolean;
  /** Reuse freed pages LIFO (better with a write-back disk cache). */
  lifoReclaim?: boolean;
  /** Extra validation of pages read (for untrusted files). */
  validation?: boolean;
  /** Open an already-open database with whatever mode it has (MDBX_ACCEDE). */
  accede?: boolean;
  /** File mode bits for a new database (default 0o644). */
  mode?: number;
  /**
   * Open a data file that is shorter than its meta pages record (cut short),
   * empty, or without a valid meta page, instead of refusing it with
   * MDBX_CORRUPTED / MDBX_INVALID. What it does is documented in docs/api.md
   * ("Damaged files and recovery"): a file cut short is extended with zeros to
   * its recorded size, so what survived can be read and copied out; an empty
   * or meta-less file becomes a new, empty database, its content discarded.
   */
  recovery?: boolean;
  /** Other libmdbx options (mdbx_env_set_option) set before the database opens. */
  options?: Partial<Record<OptionName, number>>;
  /**
   * Receives libmdbx's log messages (a lock held by another process, a
   * damaged meta page, a full map, …) from this open on until `close()`.
   * libmdbx never writes to stderr: without a logger its messages are
   * dropped. libmdbx's log is process-wide, so every registered logger gets
   * every environment's messages. They are delivered on the JavaScript
   * thread: after a failure (whose `MdbxError.detail` is the last of them),
   * at the end of `open()`, of each top-level transaction, of `check()` and
   * of `close()`. See docs/api.md, "libmdbx's log".
   */
  logger?: Logger;
  /**
   * The least severe messages the logger receives (default "warning"). A
   * release build of libmdbx (this one) logs nothing above "notice", so
   * "verbose" and "debug" give what "notice" gives.
   */
  logLevel?: LogLevel;
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Parses a Size ("64GiB", "1.5 GB", 4096) to bytes. */
export function parseSize(s: Size, what = "size"): number {
  if (typeof s === "number") {
    if (!Number.isSafeInteger(s) || s < 0) throw new RangeError(`${what} must be a byte count, got ${s}`);
    return s;
  }
  if (typeof s !== "string") throw new TypeError(`${what} must be a number or a string like "64GiB"`);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new RangeError(`${what} "${s}" is not a size; write bytes or e.g. "512MiB", "64GiB", "1GB"`);
  }
  return Math.round(Number(m[1]) * unit);
}

/** Environment statistics and state (MDBX_envinfo). Sizes are in bytes, times in seconds. */
export interface EnvInfo {
  /** The data file's geometry: size limits, current size, and the steps it grows and shrinks by. */
  geometry: {
    /** Smallest size the file may shrink to. */
    lower: number;
    /** Largest size the file may grow to. */
    upper: number;
    /** The file's current size as the geometry sees it. */
    current: number;
    /** The file shrinks when this much at its end is free. */
    shrink: number;
    /** The file grows by this much at a time. */
    grow: number;
  };
  /** Size of the memory map (the address space reserved for the file). */
  mapSize: number;
  /** Size of the data file on disk. */
  fileSize: number;
  /** Number of the last page in use. */
  lastPgno: number;
  /** Txnid of the last committed transaction. */
  recentTxnId: number;
  /** Txnid of the oldest snapshot a reader (of any process) still holds. */
  latterReaderTxnId: number;
  /** Txnid of the oldest snapshot a reader of this process still holds. */
  selfLatterReaderTxnId: number;
  /** Reader slots in the lock file (the maxReaders limit in effect). */
  maxReaders: number;
  /** Reader slots in use, of any process. */
  numReaders: number;
  /** The database's page size. */
  pageSize: number;
  /** The operating system's page size. */
  sysPageSize: number;
  /** Bytes committed but not yet synced to disk (lazy sync modes). */
  unsyncedBytes: number;
  /** The syncBytes threshold in effect (0: none). */
  autosyncThreshold: number;
  /** Time since the first commit that is not yet synced (0 when everything is synced). */
  sinceSyncSeconds: number;
  /** The syncPeriod in effect (0: none). */
  autosyncPeriodSeconds: number;
  /** Time since the reader table was last checked for dead processes. */
  sinceReaderCheckSeconds: number;
  /** The environment flags in effect (MDBX_env_flags_t, as `env.flags`). */
  mode: number;
  /** Pages newly allocated, since the first process opened the database. */
  pagesNewly: number;
  /** Pages copied to be changed (copy-on-write), since the first process opened the database. */
  pagesCow: number;
  /** Write operations to the disk (not pages), since the first process opened the database. */
  writeOps: number;
}

/** One reader slot (mdbx_reader_list). */
export interface ReaderInfo {
  /** The reader's slot in the lock file's reader table. */
  slot: number;
  /** Process id of the reader. */
  pid: number;
  /** Thread id of the reader (the thread that began the transaction). */
  thread: number;
  /** Txnid of the snapshot it reads. */
  txnId: number;
  /** Transactions committed since that snapshot. */
  lag: number;
  /** Bytes of the file its snapshot uses: the file cannot shrink below this while it reads. */
  bytesUsed: number;
  /** Bytes retired by later commits that it keeps from being reused; freed when it ends. */
  bytesRetained: number;
}

/** Page accounting (mdbx_gc_info). */
export interface GcInfo {
  /** Pages the database may have: the geometry's upper bound in pages. */
  pagesTotal: number;
  /** Pages the data file has now. */
  pagesBacked: number;
  /** Pages allocated (in use or in the GC) up to the last used page. */
  pagesAllocated: number;
  /** Pages in the GC (free-page lists), including the pages of the GC's own tree. */
  pagesGc: number;
  /** Pages of the GC that a writer can reuse now (no reader holds them). */
  pagesReclaimable: number;
  /** The largest lag of a reader: transactions committed since the oldest snapshot still read. */
  maxReaderLag: number;
  /** Pages that readers of old snapshots keep from being reused. */
  maxRetainedPages: number;
}

/** The outcome of `env.defrag()`. */
export interface DefragResult {
  /** True when defragmentation reached its goal (false: stopped by limits, readers or obstacles). */
  complete: boolean;
  /** Pages the file shrank by (may be negative when stopped early). */
  pagesShrinked: number;
  /** Pages moved toward the start of the file. */
  pagesMoved: number;
  /** Pages held by readers of old snapshots, which prevented moving them. */
  pagesRetained: number;
  /** An estimate of the pages that could still be moved. */
  pagesLeft: number;
  /** Pages of the whole database. */
  pagesWhole: number;
  /** Defragmentation cycles run. */
  cycles: number;
  /** MDBX_defrag_stopping_reasons_t bits. */
  stoppingReasons: number;
  /** How long it ran. */
  seconds: number;
}

/** What a Handle-Slow-Readers callback is told about the laggard reader. */
export interface LaggardReader {
  /** Process id of the reader. */
  pid: number;
  /** Thread id of the reader. */
  tid: number;
  /** The reader's snapshot txnid. */
  laggard: number;
  /** How many transactions it lags. */
  gap: number;
  /** Bytes that would be freed if it ended. */
  space: number;
  /** 0, 1, … on repeated calls; negative when the retry loop ends. */
  retry: number;
}

/**
 * A Handle-Slow-Readers callback: called when a write needs space that an old
 * reader holds. Return -1 to give up (MDBX_MAP_FULL), 0 after waiting (retry),
 * 1 if the reader's transaction was ended, 2 if its process was killed.
 */
export type LaggardHandler = (reader: LaggardReader) => number;

interface EnvCell {
  h: Handle | null;
  key?: string;
  /** Files replaced by a live rebuild, still open for transactions begun before. */
  old: Handle[];
  /** The `logger` option's registration, until close. */
  log?: LogRegistration | null;
}

const finalizer = new FinalizationRegistry<EnvCell>((cell) => {
  for (const h of cell.old) fn.tm_env_close(h, 0);
  if (cell.h !== null) fn.tm_env_close(cell.h, 0);
  if (cell.key !== undefined) open_paths.delete(cell.key);
  unregisterLogger(cell.log);
});

/** An open database. Close it with `close()` or `using`. */
export class Env implements Disposable {
  /** The path it was opened with. */
  readonly path: string;
  /** Opened read-only. */
  readonly readOnly: boolean;
  readonly #cell: EnvCell;
  readonly #core: EnvCore;
  readonly #tables = new Map<string | null, Table>();
  readonly #options: OpenOptions;
  #hsr: NativeCallback | null = null;
  /** The sidecar's generation counter (u32 at index 2), shared by every process of the database; null without one. */
  #sw: Uint32Array | null = null;
  /** The sidecar generation this Env's current file belongs to. */
  #swGen = 0;
  /** Options set with setOption()/setSync() since open: a file a live rebuild moves to gets them too. */
  readonly #runtime = new Map<OptionName, number>();
  #sync: SyncMode | null = null;
  /** The native rebuild running in this Env, if any. */
  #rebuild: Handle | null = null;

  /** @internal Use `open()`. */
  constructor(path: string, h: Handle, readOnly: boolean, maxTables = 64, options: OpenOptions = {}) {
    this.path = path;
    this.readOnly = readOnly;
    this.#options = options;
    this.#cell = { h, old: [] };
    finalizer.register(this, this.#cell, this.#cell);
    const cell = this.#cell;
    const tables = this.#tables;
    this.#attachSidecar(h);
    this.#core = {
      handle: () => {
        if (cell.h === null) throw misuse(ErrorCode.EBADSIGN, `the environment ${path} is closed`);
        return cell.h;
      },
      world: { h, gen: 1, live: 0, retired: false, dbis: new Map(), shadows: new Map() },
      follow: () => this.#follow(),
      closeWorld: (w) => this.#closeWorld(w),
      refresh: (t) => {
        const canon = tables.get(t.name);
        if (canon !== undefined && canon !== t) {
          t.dbi = canon.dbi;
          t.gen = canon.gen;
          t.cache = canon.cache;
        }
      },
      live: new Set<TxnCell>(),
      writer: null,
      label: `the environment ${path}`,
      owner: this,
      forget: (t) => {
        if (tables.get(t.name) === t) tables.delete(t.name);
      },
      renamed: (t, name) => {
        tables.delete(t.name);
        (t as { name: string | null }).name = name;
        tables.set(name, t);
      },
      cache: null,
      maxDbi: maxTables + 2,
      commits: 0,
    };
  }

  #h(): Handle {
    return this.#core.handle();
  }

  /** True until closed. */
  get isOpen(): boolean {
    return this.#cell.h !== null;
  }

  /** The native MDBX_env handle, for interop with other native code. */
  get unsafeHandle(): unknown {
    return this.#h();
  }

  /** Begins a read transaction on the newest snapshot. End it with `end()` (or `using`). */
  beginRead(): ReadTxn {
    // a live rebuild (of any process) moved the database to a new file: read that one
    if (this.#sw !== null && this.#sw[2] !== this.#swGen && this.#core.writer === null) this.#follow();
    return new ReadTxn(beginTxn(this.#core, false, TxnFlags.RDONLY));
  }

  /** Begins the write transaction (one at a time per environment). Commit or abort it. */
  beginWrite(options: { noSync?: boolean; noMetaSync?: boolean } = {}): WriteTxn {
    if (this.readOnly) throw misuse(ErrorCode.EACCES, `${this.path} is open read-only; it cannot be written`);
    const f = (options.noSync ? TxnFlags.NOSYNC : 0) | (options.noMetaSync ? TxnFlags.NOMETASYNC : 0);
    return new WriteTxn(beginTxn(this.#core, true, f));
  }

  /**
   * Runs `fn` in a read transaction and ends it afterwards. An async `fn` keeps
   * the snapshot (and a reader slot) until its promise settles; when an async
   * `fn` cannot begin (MDBX_READERS_FULL: every slot taken, say by many
   * concurrent reads), the returned promise rejects rather than the call
   * throwing. A plain function that returns a promise cannot be told apart
   * before it runs: for it the call throws.
   */
  read<T>(fn: (txn: ReadTxn) => T): T {
    let txn: ReadTxn;
    try {
      txn = this.beginRead();
    } catch (e) {
      if ((fn as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === "AsyncFunction") {
        return Promise.reject(e) as T;
      }
      throw e;
    }
    let async = false;
    try {
      const r = fn(txn);
      if (r instanceof Promise) {
        async = true;
        return r.finally(() => txn.end()) as T;
      }
      return r;
    } finally {
      if (!async) txn.end();
    }
  }

  /**
   * Runs `fn` in a write transaction and commits it; aborts if `fn` throws.
   * `fn` must be synchronous: a write transaction cannot stay open across an
   * await (use `env.transact()` for asynchronous work).
   */
  write<T>(fn: (txn: WriteTxn) => T, options?: { noSync?: boolean; noMetaSync?: boolean }): T {
    const txn = this.beginWrite(options);
    try {
      const r = fn(txn);
      if (r !== null && typeof r === "object" && typeof (r as { then?: unknown }).then === "function") {
        txn.abort();
        (r as unknown as Promise<unknown>).catch(() => {});
        throw new TypeError(
          "env.write() callback returned a Promise: a write transaction cannot stay open across await. " +
            "Do the async work first, or use env.transact() for concurrent write transactions. Nothing was written.",
        );
      }
      if (txn.isOpen) txn.commit();
      return r;
    } catch (e) {
      txn.abort();
      throw e;
    }
  }

  /**
   * Runs `fn` as a concurrent write transaction and commits it: `fn` may await
   * (I/O, other transactions) between its reads and writes. Reads see a stable
   * snapshot plus the transaction's own writes; writes are buffered; the commit
   * is validated and applied in a group commit with others (one sync). On a
   * ConflictError (optimistic) or DeadlockError (pessimistic) the whole `fn`
   * runs again, with backoff, up to `retries` times. Resolves with `fn`'s
   * result once the commit is durable (in durable mode). See docs/concurrency.md.
   */
  transact<T>(fn: (tx: ConcurrentTxn) => T | Promise<T>, options?: TransactOptions): Promise<T> {
    return transact(this, this.#core, fn, options);
  }

  /**
   * Begins a concurrent write transaction (see `transact()`); finish it with
   * `await tx.commit()` or `tx.abort()`. Nothing retries it.
   */
  beginConcurrent(options?: ConcurrentOptions): ConcurrentTxn {
    return beginConcurrent(this, this.#core, options);
  }

  // ------------------------------------------------------------ server: change feed (src/watch.ts, docs/server.md)

  /**
   * Watches a table: an async iterable of change batches, one for every commit
   * after the call (of this process, other processes, any libmdbx writer), or
   * fewer, coalesced, when the consumer is slower than the commits. Each batch
   * lists every key (within `prefix`/`keys`) whose value changed since the
   * previous batch, with its new value or `deleted`, and the commit `version`.
   * End it with `close()`, `break` or `options.signal`. See docs/server.md.
   */
  watch<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    options?: WatchOptions<KeyOf<K>>,
  ): Watch<KeyOf<K>, ValueOf<V>> {
    return watchTable(this, this.#core, table, options);
  }

  /**
   * Yields the current values of `keys` now, and again whenever any of them
   * changes (Deno KV's `watch()`): an array of `{ key, value, version }` in the
   * order of `keys`. Intermediate states may be skipped; the newest never is.
   */
  watchKeys<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    keys: readonly KeyOf<K>[],
    options?: { signal?: AbortSignal },
  ): AsyncGenerator<WatchedEntry<KeyOf<K>, ValueOf<V>>[], void, undefined> {
    return watchTableKeys(this, this.#core, table, keys, options);
  }

  /**
   * Writes `value` at `key` without a transaction of your own: the writes of
   * one event-loop turn are committed together, in call order, in one group
   * commit (with the concurrent transactions of that flush), and each promise
   * resolves once its commit is durable (in durable mode, synced off the event
   * loop). Bad input rejects the promise. See docs/server.md.
   */
  put<K extends KeyKind, V extends ValueKind>(table: Table<K, V>, key: KeyOf<K>, value: ValueOf<V>): Promise<void> {
    return autoWrite(this, this.#core, table, key, value, false);
  }

  /** Deletes `key` without a transaction of your own, batched as `put()` is (a missing key is no error). */
  del<K extends KeyKind, V extends ValueKind>(table: Table<K, V>, key: KeyOf<K>): Promise<void> {
    return autoWrite(this, this.#core, table, key, undefined, true);
  }

  // ------------------------------------------------------------ end of server block

  /**
   * Opens (and by default creates) a table. `name` null is the main table.
   * The same name returns the same handle; reopening with other options is an error.
   */
  table<K extends KeyKind = "binary", V extends ValueKind = "binary">(
    name: string | null,
    options: TableOptions<K, V> = {},
  ): Table<K, V> {
    const keys = (options.keys ?? "binary") as K, values = (options.values ?? "binary") as V;
    const label = name === null ? "the main table" : `table "${name}"`;
    checkKinds(label, keys, values);
    const want = tableFlags(options);
    const cacheOpts = options.cache === true ? {} : options.cache || null;
    if (cacheOpts !== null && (want & DbFlags.DUPSORT)) {
      throw new TypeError("a dupSort table cannot have a get() cache (get() returns only the first of several values)");
    }
    if (cacheOpts !== null && this.#core.writer !== null) {
      throw new TypeError("open a table with a cache outside of a write transaction");
    }
    const cached = this.#tables.get(name);
    if (cached) {
      if (cacheOpts !== null && cached.cache === null) this.#enableCache(cached, cacheOpts);
      if ((cached.flags & 0xff) !== (want & 0xff) && !options.accede) {
        throw new TypeError(
          `${cached} is already open in this Env with ${describeTableFlags(cached.flags)}; these options ask for ` +
            `${describeTableFlags(want)}: pass the options it was opened with (or accede: true)`,
        );
      }
      if (cached.keys !== keys || cached.values !== values) {
        throw new TypeError(
          `${cached} is already open with keys "${cached.keys}" and values ` +
            `${
              typeof cached.values === "string" ? `"${cached.values}"` : `${cached.valuesName} (another codec object)`
            }` +
            "; pass the same kinds (the same codec object), or use the handle it returned",
        );
      }
      if (cached.versioned !== !!options.versioned) {
        throw new TypeError(
          `${cached} is already open ${cached.versioned ? "with" : "without"} versioned: true; a table's values ` +
            "either all carry versions or none do",
        );
      }
      return cached as Table<K, V>;
    }
    const create = (options.create ?? !this.readOnly) && !this.readOnly;
    // libmdbx takes MDBX_DB_ACCEDE only alone (with other flags it is EINVAL); it opens existing tables only
    const flags = options.accede ? DbFlags.ACCEDE : want | (create ? DbFlags.CREATE : 0);
    const nameBytes = name === null ? null : new TextEncoder().encode(name);
    const core = this.#core;
    let own: WriteTxn | ReadTxn | null = null;
    let txnH: Handle;
    let inner = core.writer;
    if (inner !== null) {
      // inside a write transaction the table must be opened by it (its innermost nested one):
      // a second one would wait for ourselves
      while (inner.child !== null) inner = inner.child;
      txnH = inner.h!;
      if (create) beforeChange(inner); // creating it adds to the main table's page
    } else {
      own = create ? this.beginWrite() : this.beginRead();
      txnH = own._h();
    }
    try {
      const r = fn.tm_dbi_open(txnH, nameBytes, nameBytes?.length ?? 0, name === null ? 0 : 1, flags, scratch.u32Bytes);
      if (r === ErrorCode.NOTFOUND) {
        throw new MdbxError(r, `table "${name}" does not exist; open it with create: true in a writable environment`);
      }
      if (r === ErrorCode.INCOMPATIBLE) throw incompatible(txnH, name, nameBytes, label, want);
      if (r < 0) fail(r, `opening ${label}`);
      const dbi = scratch.u32[0];
      check(fn.tm_dbi_flags(txnH, dbi, scratch.u32Bytes), "reading table flags");
      const t = new Table<K, V>(core, name, dbi, scratch.u32[0], keys, values, core.world.gen, !!options.versioned);
      t.since = fn.tm_txn_id(txnH);
      checkStoredSizes(txnH, t);
      if (own) own.commit();
      own = null;
      this.#tables.set(name, t);
      if (cacheOpts !== null) {
        if (t.flags & DbFlags.DUPSORT) throw new TypeError(`${t} is a dupSort table: it cannot have a get() cache`);
        this.#enableCache(t, cacheOpts);
      }
      if (inner !== null) (inner.onDiscard ??= []).push(() => core.forget(t));
      return t;
    } finally {
      own?.abort();
    }
  }

  #enableCache(t: Table, options: CacheOptions): void {
    const core = this.#core;
    if (core.cache === null) {
      // issue 11: shared unless asked not to; one native cache per native env, joined by every Env (Worker) using it
      core.cache = new CacheState(this.#h(), options.shared !== false);
      // transactions already open learn their snapshot now
      for (const c of core.live) if (c.h !== null) syncSnapshot(c);
    }
    t.cache = new GetCache(core.cache, t.dbi, options, t.name);
  }

  /** Names and statistics of every named table. */
  tables(): TableEntry[] {
    return this.read((txn) => txn.tables());
  }

  /** Statistics of the whole environment (all tables together). */
  stat(): Stat {
    check(fn.tm_env_stat(this.#h(), null, scratch.f64Bytes), "env stat");
    return readStat(scratch.f64);
  }

  /** Geometry, txnids, readers and page counters. */
  info(): EnvInfo {
    check(fn.tm_env_info(this.#h(), null, scratch.f64Bytes), "env info");
    const a = scratch.f64;
    return {
      geometry: { lower: a[0], upper: a[1], current: a[2], shrink: a[3], grow: a[4] },
      mapSize: a[5],
      fileSize: a[6],
      lastPgno: a[7],
      recentTxnId: a[8],
      latterReaderTxnId: a[9],
      selfLatterReaderTxnId: a[10],
      maxReaders: a[11],
      numReaders: a[12],
      pageSize: a[13],
      sysPageSize: a[14],
      unsyncedBytes: a[15],
      autosyncThreshold: a[16],
      sinceSyncSeconds: a[17],
      autosyncPeriodSeconds: a[18],
      sinceReaderCheckSeconds: a[19],
      mode: a[20],
      pagesNewly: a[21],
      pagesCow: a[22],
      writeOps: a[23],
    };
  }

  /**
   * Changes the map's geometry while the database is open
   * (mdbx_env_set_geometry): `upper` raises (or lowers) the largest size the
   * file may grow to, `growth` and `shrink` the steps, `now` its size. Fields
   * left out keep their value. The answer to `MDBX_MAP_FULL`: the failed write
   * transaction is aborted, `env.resize({ upper })` grows the limit, and the
   * next write transaction succeeds without reopening. Readers of other
   * processes may keep running; the new geometry is stored in the file, so
   * other processes follow it at their next transaction. Call it outside a
   * write transaction.
   *
   * A larger `upper` needs more address space for the map. turbomdbx's
   * transactions are not tied to threads (MDBX_NOSTICKYTHREADS), under which
   * libmdbx never moves a map; when no transaction of this Env is open,
   * turbomdbx lets this resize move it (native/geometry.c), so it succeeds
   * wherever the address space allows. With transactions open (their
   * snapshots and views point into the map) it only grows in place, and
   * throws MDBX_UNABLE_EXTEND_MAPSIZE saying to end them when the addresses
   * after the map are taken. Returns the geometry now in effect.
   */
  resize(geometry: Pick<Geometry, "upper" | "now" | "growth" | "shrink">): EnvInfo["geometry"] {
    const h = this.#h();
    if (this.readOnly) throw misuse(ErrorCode.EACCES, `${this.path} is open read-only; its geometry cannot change`);
    if (geometry === null || typeof geometry !== "object") {
      throw new TypeError('resize() needs an object like { upper: "64GiB" }');
    }
    if (this.#core.writer !== null) {
      throw misuse(
        ErrorCode.TXN_OVERLAPPING,
        `resize() of ${this.path} waits for the write lock; commit or abort the open write transaction first ` +
          "(after MDBX_MAP_FULL, abort it, resize, then write again)",
      );
    }
    const sz = (s: Size | undefined, what: string) => (s === undefined ? -1 : parseSize(s, what));
    const upper = sz(geometry.upper, "resize(): upper"), now = sz(geometry.now, "resize(): now");
    const growth = sz(geometry.growth, "resize(): growth"), shrink = sz(geometry.shrink, "resize(): shrink");
    // nothing of this process in the map: libmdbx may move it (native/geometry.c); otherwise it grows in place or fails
    const live = this.#core.live.size;
    const r = fn.tm_env_resize(h, -1, now, upper, growth, shrink, live === 0 && this.#rebuild === null ? 1 : 0);
    if (r === ErrorCode.UNABLE_EXTEND_MAPSIZE && live > 0) {
      throw new MdbxError(
        ErrorCode.UNABLE_EXTEND_MAPSIZE,
        `resizing ${this.path} to an upper bound of ${upper} bytes: the map cannot grow where it is (the addresses ` +
          `after it are taken) and cannot move while this Env has ${live} open transaction${live === 1 ? "" : "s"}, ` +
          "whose snapshots and views point into it: end them and call resize() again",
      );
    }
    if (r < 0) {
      const before = this.info().geometry;
      fail(
        r,
        `resizing ${this.path} (asked: ${JSON.stringify(geometry)}; now lower ${before.lower}, current ` +
          `${before.current}, upper ${before.upper} bytes)`,
      );
    }
    return this.info().geometry;
  }

  /** Largest key in bytes for a table of these flags (`DbFlags`; default: a plain table). */
  maxKeySize(tableFlags = 0): number {
    return fn.tm_env_maxkeysize(this.#h(), checkU32(tableFlags, "maxKeySize(tableFlags): tableFlags", " (DbFlags)"));
  }

  /** Largest value in bytes for a table of these flags (`DbFlags`; default: a plain table). */
  maxValueSize(tableFlags = 0): number {
    return fn.tm_env_maxvalsize(this.#h(), checkU32(tableFlags, "maxValueSize(tableFlags): tableFlags", " (DbFlags)"));
  }

  /** The environment flags in effect (MDBX_env_flags_t). */
  get flags(): number {
    check(fn.tm_env_get_flags(this.#h(), scratch.u32Bytes), "env flags");
    return scratch.u32[0];
  }

  /** Reads a libmdbx option (mdbx_env_get_option). */
  getOption(name: OptionName): number {
    const v = fn.tm_env_get_option(this.#h(), Option[name], scratch.i32Bytes);
    check(scratch.i32[0], `reading option ${name}`);
    return v;
  }

  /** Sets a libmdbx option (mdbx_env_set_option). */
  setOption(name: OptionName, value: number): void {
    if (!(name in Option)) throw new TypeError(`unknown option ${name}`);
    check(fn.tm_env_set_option(this.#h(), Option[name], value), `setting option ${name}`);
    this.#runtime.set(name, value);
  }

  /** Changes the durability mode of an open environment. */
  setSync(mode: SyncMode): void {
    applySync(this.#h(), mode);
    this.#sync = mode;
  }

  /**
   * Flushes committed data to disk: with `force`, even in lazy modes and even if
   * the thresholds are not reached. Returns false if there was nothing to flush.
   */
  sync(force = true): boolean {
    const r = fn.tm_env_sync(this.#h(), force ? 1 : 0, 0);
    if (r === -1) return false;
    check(r, "sync");
    return true;
  }

  /**
   * Copies the database to `dest` (a new file, opened later with `noSubdir:
   * true`), compacting it by default. The copy gets the permission bits of the
   * database's data file, or `mode` (e.g. 0o600), exactly, whatever the umask.
   * A compacted copy is its used pages rounded up to the growth step, or just
   * its used pages when that step would make it larger than the database; it
   * keeps the database's lower and upper bounds, growth step and shrink
   * threshold (see docs/api.md, "Copies").
   */
  copy(
    dest: string,
    options: { compact?: boolean; overwrite?: boolean; dynamicSize?: boolean; mode?: number } = {},
  ): void {
    const f = (options.compact ?? true ? CopyFlags.COMPACT : 0) | (options.overwrite ? CopyFlags.OVERWRITE : 0) |
      (options.dynamicSize ? CopyFlags.FORCE_DYNAMIC_SIZE : 0);
    check(fn.tm_env_copy(this.#h(), cString(dest), f, copyMode(options.mode)), `copying to ${dest}`);
  }

  /** The reader lock table: one entry per active reader across processes. */
  readers(): ReaderInfo[] {
    let out = scratch.out;
    let n = check(fn.tm_reader_list(this.#h(), out, out.length), "reader list");
    if (n > out.length) {
      out = new Uint8Array(n);
      n = check(fn.tm_reader_list(this.#h(), out, out.length), "reader list");
    }
    const a = new Float64Array(out.buffer.slice(out.byteOffset, out.byteOffset + n));
    const list: ReaderInfo[] = [];
    for (let i = 0; i + 8 <= a.length; i += 8) {
      list.push({
        slot: a[i],
        pid: a[i + 1],
        thread: a[i + 2],
        txnId: a[i + 3],
        lag: a[i + 4],
        bytesUsed: a[i + 5],
        bytesRetained: a[i + 6],
      });
    }
    return list;
  }

  /** Clears reader slots of processes that died; returns how many were cleared. */
  checkReaders(): number {
    check(fn.tm_reader_check(this.#h(), scratch.i32Bytes), "reader check");
    return scratch.i32[0];
  }

  /** Page accounting: total, allocated, in GC, reclaimable, and what old readers retain. */
  gcInfo(): GcInfo {
    return this.read((txn) => {
      check(fn.tm_gc_info(txn._h(), scratch.f64Bytes), "gc info");
      const a = scratch.f64;
      return {
        pagesTotal: a[0],
        pagesBacked: a[1],
        pagesAllocated: a[2],
        pagesGc: a[3],
        pagesReclaimable: a[4],
        maxReaderLag: a[5],
        maxRetainedPages: a[6],
      };
    });
  }

  /**
   * Checks the integrity of the database (libmdbx's mdbx_env_chk, the engine of
   * `mdbx_chk`): page trees, GC, key order and space accounting on a read
   * snapshot, and the file's three meta pages. Damage is reported, not thrown:
   * `ok` false, one line per problem in `issues`, and `stopped` when the check
   * could not go on (a damaged page under which nothing can be walked). It
   * throws only when no check can be made (a closed environment, no reader
   * slot). `ignoreOrder` is for tables with custom comparators; `skipKeys`
   * skips the key/value pass (faster). To check a database that is not open,
   * or one that may be too damaged to open, use `checkDatabase(path)`.
   */
  check(options: CheckOptions = {}): CheckResult {
    const h = this.#h();
    return runCheck(h, this.path, !!this.#options.noSubdir, options);
  }

  /**
   * Defragments the database in place (libmdbx's mdbx_env_defrag): moves pages
   * toward the start of the file and shrinks it. Holds the write lock for its
   * whole run (writers wait). Stops when `enoughPages` were freed or after
   * `timeLimitSeconds`; old readers can hold it back (see `pagesRetained`).
   */
  defrag(options: { atLeastPages?: number; enoughPages?: number; timeLimitSeconds?: number } = {}): DefragResult {
    const h = this.#h();
    if (this.#core.writer !== null) {
      throw misuse(
        ErrorCode.TXN_OVERLAPPING,
        "defrag() needs the write lock; commit or abort the open write transaction",
      );
    }
    const res = new Float64Array(8);
    const r = fn.tm_env_defrag(
      h,
      options.atLeastPages ?? 0,
      0,
      options.enoughPages ?? 0,
      options.timeLimitSeconds ?? 0,
      new Uint8Array(res.buffer),
    );
    if (r < 0 && r !== ErrorCode.LAGGARD_READER) check(r, "defrag");
    return {
      complete: r === 0,
      pagesShrinked: res[0],
      pagesMoved: res[1],
      pagesRetained: res[2],
      pagesLeft: res[3],
      pagesWhole: res[4],
      cycles: res[5],
      stoppingReasons: res[6],
      seconds: res[7],
    };
  }

  /** Pre-faults the map into memory (mdbx_env_warmup); `force` reads every page. */
  warmup(options: { force?: boolean; lock?: boolean; timeoutSeconds?: number } = {}): void {
    const f = (options.force ? 1 : 0) | (options.lock ? 4 : 0);
    const t = timeout16dot16(options.timeoutSeconds, "the timeoutSeconds option of warmup()");
    check(fn.tm_env_warmup(this.#h(), null, f, t), "warmup");
  }

  /**
   * Sets (or with null removes) the Handle-Slow-Readers callback, called when a
   * writer needs space that an old reader holds.
   */
  onLaggardReader(handler: LaggardHandler | null): void {
    const h = this.#h();
    const old = this.#hsr;
    if (handler === null) {
      check(fn.mdbx_env_set_hsr(h, null), "clearing the HSR callback");
      this.#hsr = null;
    } else {
      const cb = backend.hsrCallback((a) => {
        try {
          return handler(a);
        } catch {
          return -1;
        }
      });
      check(fn.mdbx_env_set_hsr(h, cb.handle), "setting the HSR callback");
      this.#hsr = cb;
    }
    old?.close();
  }

  /**
   * Closes the environment: ends every transaction still open (aborting writes),
   * detaches their views and closes their cursors. Idempotent.
   */
  close(): void {
    const h = this.#cell.h;
    if (h === null) return;
    closeSyncer(this.#core); // server block: the sync thread of durable group commits ends first
    endAll(this.#core);
    if (this.#rebuild !== null) {
      // stops before its switch (or finishes it, if already switching); it cannot outlive the env
      fn.tm_rebuild_cancel(this.#rebuild);
      fn.tm_rebuild_join(this.#rebuild, new Uint8Array(128));
      this.#rebuild = null;
    }
    if (this.#core.cache !== null) this.#core.cache.close(); // the last Env using the native cache frees it
    this.#core.cache = null;
    this.#tables.clear();
    this.#sw = null;
    for (const o of this.#cell.old) fn.tm_env_close(o, 1); // replaced files: nothing to sync
    this.#cell.old.length = 0;
    this.#cell.h = null;
    finalizer.unregister(this.#cell);
    open_paths.delete(this.#key);
    const r = fn.tm_env_close(h, 0);
    this.#hsr?.close();
    this.#hsr = null;
    const reg = this.#cell.log;
    this.#cell.log = null;
    try {
      check(r, `closing ${this.path}`);
    } finally {
      // after a last delivery of what the close logged, to this logger and every other
      if (reg) unregisterLogger(reg);
      else pollLog();
    }
  }

  /** @internal The `logger` option's registration, released at close. */
  _setLog(r: LogRegistration | null): void {
    this.#cell.log = r;
  }

  // ------------------------------------------------------------ live rebuild

  /**
   * Rebuilds the whole database while it stays open: copies a snapshot into a
   * new file, compacted, every table's leaf pages in key order; replays what
   * was committed meanwhile (by any process); then switches files, stalling
   * writers for milliseconds. Readers that began before the switch finish on
   * their snapshot; every process moves to the new file by itself, before its
   * next transaction. Cancel with `signal`: the database is left as it was and
   * the partial copy removed. See docs/rebuild.md.
   */
  async rebuild(options: RebuildOptions = {}): Promise<RebuildResult> {
    const h = this.#h();
    if (this.readOnly) throw misuse(ErrorCode.EACCES, `${this.path} is open read-only; it cannot be rebuilt`);
    if (this.#rebuild !== null) {
      throw misuse(ErrorCode.BUSY, `a rebuild of ${this.path} is already running in this Env`);
    }
    if (this.#options.stickyThreads) {
      throw misuse(
        ErrorCode.EINVAL,
        `${this.path} was opened with stickyThreads: true; a rebuild reads two snapshots from its own thread, ` +
          "which needs the default (MDBX_NOSTICKYTHREADS)",
      );
    }
    const { onProgress, signal } = options;
    const interval = options.progressIntervalMs ?? 100;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
    if (typeof onProgress !== "undefined" && typeof onProgress !== "function") {
      throw new TypeError("onProgress must be a function");
    }
    signal?.throwIfAborted();
    const maxBytes = options.maxSize === undefined ? 0 : parseSize(options.maxSize, "maxSize");
    const rb = fn.tm_rebuild_start(h, maxBytes, scratch.i32Bytes);
    if (rb === null) {
      const rc = scratch.i32[0];
      if (rc === ErrorCode.BUSY) {
        throw new MdbxError(rc, `another rebuild of ${this.path} is running (in this or another process); wait for it`);
      }
      fail(rc, `starting a rebuild of ${this.path}`);
    }
    this.#rebuild = rb;
    const outBytes = new Uint8Array(128), out = new Float64Array(outBytes.buffer);
    const cancel = () => fn.tm_rebuild_cancel(rb);
    signal?.addEventListener("abort", cancel);
    let failure: unknown = null;
    try {
      for (;;) {
        if (this.#rebuild !== rb) throw misuse(ErrorCode.EBADSIGN, `the environment ${this.path} was closed`);
        const phase = fn.tm_rebuild_poll(rb, outBytes);
        if (phase >= RebuildPhase.DONE) break;
        if (onProgress && phase > 0) onProgress(progressOf(out));
        await new Promise((r) => setTimeout(r, interval));
      }
    } catch (e) {
      failure = e;
      if (this.#rebuild === rb) fn.tm_rebuild_cancel(rb);
    }
    signal?.removeEventListener("abort", cancel);
    if (this.#rebuild === rb) {
      this.#rebuild = null;
      const r = fn.tm_rebuild_join(rb, outBytes);
      const code = r <= -30000 ? r : -r;
      if (r < 0 && failure === null) {
        if (code === ErrorCode.EINTR && signal?.aborted) failure = signal.reason;
        else {
          const full = code === ErrorCode.MAP_FULL || code === ErrorCode.ENOSPC || code === ErrorCode.EFBIG;
          failure = new MdbxError(
            code,
            `rebuilding ${this.path} failed` +
              (full ? ": the new file did not fit (disk full, or over maxSize)" : "") +
              "; the database is as it was and the partial copy was removed",
          );
        }
      }
    }
    if (failure !== null) throw failure;
    this.#follow(); // this process moves at once
    const p = progressOf(out);
    onProgress?.(p);
    return resultOf(out);
  }

  /**
   * Leaf pages of a table in key order, and how many are out of order (a leaf
   * whose page number is below the one before it): what a cursor scan pays in
   * seeks. 0 out of order right after `rebuild()`.
   */
  leafOrder(table: Table): { leafPages: number; outOfOrder: number } {
    return this.read((txn) => {
      const t = txn._table(table);
      check(fn.tm_leaf_order(txn._h(), t.dbi, scratch.f64Bytes), `walking the leaves of ${t}`);
      return { leafPages: scratch.f64[0], outOfOrder: scratch.f64[1] };
    });
  }

  /** Maps the sidecar this Env's file `h` is attached to (live rebuild). */
  #attachSidecar(h: Handle): void {
    const at = fn.tm_switch_view(h);
    this.#sw = at === 0 ? null : new Uint32Array(backend.view(at, 16));
    this.#swGen = fn.tm_switch_gen(h);
  }

  /** Moves to the database's new file if a live rebuild switched files (any process's). */
  #follow(): void {
    const core = this.#core;
    const old = core.world;
    for (let i = 0;; i++) {
      const r = fn.tm_switch_adopt(old.h);
      if (r === 0) {
        this.#swGen = fn.tm_switch_gen(old.h); // still the database (a switch was undone)
        return;
      }
      if (r === 1) break;
      if (r < 0) fail(r, `following ${this.path} to its new file`);
      // a switch is in flight: wait for it (or finish it, if its process died)
      const g = fn.tm_switch_prepare(cString(this.path), this.#options.noSubdir ? 1 : 0, 30_000);
      if (g < 0) fail(g, `waiting for the live rebuild of ${this.path} to switch files`);
      if (i > 1000) throw new MdbxError(ErrorCode.BUSY, `${this.path}: a live rebuild's switch did not finish`);
    }
    const acquired = acquireHandle(this.path, this.#options);
    const nh = acquired.h;
    if (!acquired.shared) noteOptions(nh, this.#options); // what later opens in other Workers must agree with
    const world: World = { h: nh, gen: old.gen + 1, live: 0, retired: false, dbis: new Map(), shadows: new Map() };
    // tables are re-pointed only once the new file is fully set up
    const found = new Map<Table, number>();
    try {
      const rt = fn.tm_txn_begin(nh, null, TxnFlags.RDONLY, scratch.i32Bytes);
      if (rt === null) fail(scratch.i32[0], `reading the new file of ${this.path}`);
      try {
        for (const t of this.#tables.values()) {
          const nb = t.name === null ? null : encoder.encode(t.name);
          const r = fn.tm_dbi_open(rt, nb, nb?.length ?? 0, t.name === null ? 0 : 1, DbFlags.ACCEDE, scratch.u32Bytes);
          if (r >= 0) found.set(t, scratch.u32[0]);
        }
      } finally {
        fn.tm_txn_commit(rt);
      }
      if (this.#hsr !== null) check(fn.mdbx_env_set_hsr(nh, this.#hsr.handle), "setting the HSR callback");
      for (const [name, v] of this.#runtime) fn.tm_env_set_option(nh, Option[name], v);
      if (this.#sync !== null) applySync(nh, this.#sync);
    } catch (e) {
      fn.tm_env_close(nh, 1);
      throw e;
    }
    for (const [name, t] of [...this.#tables]) {
      old.dbis.set(name, t.dbi);
      const dbi = found.get(t);
      if (dbi === undefined) {
        // not in the new file (dropped by another process before the switch)
        t.dropped = true;
        this.#tables.delete(name);
      } else {
        t.dbi = dbi;
        t.gen = world.gen;
      }
    }
    // caches: the new file has other page numbers; start empty
    const oldCache = core.cache;
    if (oldCache !== null) {
      // a fresh sidecar for the new file, made by the first Env (Worker) to switch and joined by the others: one
      // native cache per native env on either side of the switch (the old one goes with the last Env leaving it)
      core.cache = new CacheState(nh, oldCache.asked);
      for (const t of this.#tables.values()) {
        if (t.cache !== null) t.cache = new GetCache(core.cache, t.dbi, t.cache.options, t.name);
      }
      oldCache.close();
    }
    this.#cell.old.push(old.h);
    this.#cell.h = nh;
    core.world = world;
    this.#attachSidecar(nh);
    old.retired = true;
    if (old.live === 0) this.#closeWorld(old);
  }

  #closeWorld(w: World): void {
    const i = this.#cell.old.indexOf(w.h);
    if (i < 0) return;
    this.#cell.old.splice(i, 1);
    // off this thread: the last close of a replaced file frees it (slow for a large one); no sync needed
    fn.tm_env_release_retired(w.h); // the last Env (of any Worker) to let go of it closes it
  }

  /** @internal The key of this env in the open-path registry. */
  #key = "";
  /** @internal */
  _setKey(k: string): void {
    this.#key = k;
    this.#cell.key = k;
  }

  /** Closes (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** MDBX_INCOMPATIBLE at a table's open: says how the table was created and how it is being opened. */
function incompatible(
  txnH: Handle,
  name: string | null,
  nb: Uint8Array | null,
  label: string,
  want: number,
): MdbxError {
  let had = "other flags";
  const r = fn.tm_dbi_open(txnH, nb, nb?.length ?? 0, name === null ? 0 : 1, DbFlags.ACCEDE, scratch.u32Bytes);
  if (r >= 0 && fn.tm_dbi_flags(txnH, scratch.u32[0], scratch.u32Bytes) >= 0) had = describeTableFlags(scratch.u32[0]);
  return new MdbxError(
    ErrorCode.INCOMPATIBLE,
    `opening ${label}: it was created with ${had}; these options ask for ${describeTableFlags(want)}: ` +
      "open it with the options it was created with, or with accede: true to take whatever it has",
  );
}

/**
 * Refuses a table handle whose integer kinds do not fit what the table holds
 * (a uint32 table reopened as uint64): its first entry tells the stored sizes.
 * Without this, reads decode garbage and libmdbx's integer comparator logs a
 * complaint on every lookup with the other size.
 */
function checkStoredSizes(txnH: Handle, t: Table): void {
  const ks = kindSize(t.keys), vs = kindSize(t.values) + (kindSize(t.values) !== 0 ? t.v.ver : 0);
  if (ks === 0 && vs === 0) return;
  const cur = fn.tm_cursor_open(txnH, t.dbi, scratch.i32Bytes);
  if (cur === null) fail(scratch.i32[0], `opening a cursor on ${t}`);
  let n: number;
  const out = scratch.out;
  try {
    n = check(fn.tm_scan(cur, Scan.FIRST | Scan.KEYS, null, 0, null, 0, 0, 1, out, out.length), `reading ${t}`);
  } finally {
    fn.tm_cursor_close(cur);
  }
  if (n === 0) return; // empty (or a first key too long to matter here): nothing to disagree with
  const dv = new DataView(out.buffer, out.byteOffset, 20);
  const kl = dv.getUint32(12, true), vl = dv.getUint32(16, true);
  if (ks !== 0 && kl !== ks) throw t.k.sizeMismatch(kl);
  if (vs !== 0 && vl !== vs) throw t.v.sizeMismatch(vl);
}

/** Sets the durability mode of an open native env. */
function applySync(h: Handle, mode: SyncMode): void {
  const f = syncFlags(mode); // validate before changing anything
  check(fn.tm_env_set_flags(h, EnvFlags.UTTERLY_NOSYNC | EnvFlags.NOMETASYNC, 0), "setting sync mode");
  if (f) check(fn.tm_env_set_flags(h, f, 1), "setting sync mode");
}

function syncFlags(mode: SyncMode): number {
  switch (mode) {
    case "durable":
      return EnvFlags.SYNC_DURABLE;
    case "noMetaSync":
      return EnvFlags.NOMETASYNC;
    case "lazy":
      return EnvFlags.SAFE_NOSYNC;
    case "nosync":
      return EnvFlags.UTTERLY_NOSYNC;
    default:
      throw new TypeError(`sync must be "durable", "noMetaSync", "lazy" or "nosync", got ${describe(mode)}`);
  }
}

/** Paths open in this thread (this Worker), so a second open gets a clear error instead of a second Env. */
const open_paths = new Set<string>();

/** Opens (by default creating) a database. */
export function open(path: string, options: OpenOptions = {}): Env {
  if (typeof path !== "string" || path === "") throw new TypeError("open() needs a path string");
  load(options.libraryPath);
  const key = path.replace(/\/+$/, "");
  if (open_paths.has(key)) {
    throw new MdbxError(
      ErrorCode.BUSY,
      `${path} is already open in this process, in this thread: one Env per database per thread (each Worker ` +
        "opens its own, and they share one environment), so share that Env",
    );
  }
  openMode(options.mode); // checked before anything is opened (a u32 of the native call)
  // registered first: what libmdbx logs while opening (a lock held elsewhere, a damaged meta) reaches it
  const reg = registerLogger(options.logger, options.logLevel);
  let env: Env | undefined;
  try {
    const { h, shared } = acquireHandle(path, options);
    let readOnly = !!options.readOnly;
    try {
      if (shared) readOnly = checkShared(path, h, options);
      else noteOptions(h, options);
    } catch (e) {
      fn.tm_env_close(h, 1); // this open's reference only
      throw e;
    }
    // the real limit (options.options may have set it too): sizes the per-transaction dirty-table marks
    const maxTables = fn.tm_env_get_option(h, Option.maxTables, scratch.i32Bytes);
    env = new Env(path, h, readOnly, scratch.i32[0] === 0 ? maxTables : 32768, options);
    env._setKey(key);
    env._setLog(reg);
    open_paths.add(key);
    return env;
  } finally {
    flushLog();
    if (env === undefined) unregisterLogger(reg);
  }
}

/** Options of `checkDatabase()`. */
export interface CheckDatabaseOptions extends CheckOptions {
  /** `path` names the data file itself, not a directory. */
  noSubdir?: boolean;
  /** Path of the turbomdbx shared library (as for `open()`). */
  libraryPath?: string;
  /** Receives libmdbx's log messages while the database is opened and checked (as for `open()`). */
  logger?: Logger;
  /** The least severe messages the logger receives (default "warning"). */
  logLevel?: LogLevel;
}

/** open() errors that say the file is damaged: a check reports them instead of throwing. */
const DAMAGED = new Set<number>([
  ErrorCode.CORRUPTED,
  ErrorCode.INVALID,
  ErrorCode.PAGE_NOTFOUND,
  ErrorCode.PROBLEM,
  ErrorCode.VERSION_MISMATCH,
  ErrorCode.INCOMPATIBLE,
  ErrorCode.EIO,
]);

/**
 * Checks the database at `path` without trusting it: opens it read-only with
 * `validation: true` (every page libmdbx reads is validated, so damage is an
 * error, never a crash), runs `env.check()` and closes it. A file too damaged
 * to open (cut short, no valid meta page) is reported as an issue with
 * `stopped`, not thrown. Throws for what is not damage: a missing path, a
 * database open in this process (check it with `env.check()`), bad options.
 * The CLI's `turbomdbx chk <db>` prints the same report.
 */
export function checkDatabase(path: string, options: CheckDatabaseOptions = {}): CheckResult {
  if (typeof path !== "string" || path === "") throw new TypeError("checkDatabase() needs a path string");
  timeout16dot16(options.timeoutSeconds, "the timeoutSeconds option of checkDatabase()");
  let env: Env;
  try {
    env = open(path, {
      readOnly: true,
      create: false,
      validation: true,
      noSubdir: options.noSubdir,
      libraryPath: options.libraryPath,
      logger: options.logger,
      logLevel: options.logLevel,
    });
  } catch (e) {
    if (e instanceof MdbxError && DAMAGED.has(e.code)) return unopenableResult(e.message);
    throw e;
  }
  try {
    return env.check({
      ignoreOrder: options.ignoreOrder,
      skipKeys: options.skipKeys,
      timeoutSeconds: options.timeoutSeconds,
    });
  } finally {
    env.close();
  }
}

// ------------------------------------------------- Workers: one native env per file per process

/** tm_env_open: this process has the file open already (another Worker): share that env. */
const OPEN_SHARED = -29998;
/** tm_env_share: this thread holds an Env of the file already (under another spelling of the path). */
const SAME_THREAD = -29997;

/** Thrown by openOnce when the file turned out to be open in this process already. */
const shareInstead = new Error("share");

/**
 * The native env of the database at `path`: the one this process has open
 * already (another Worker's; `shared`), with a new reference, or a newly
 * opened one. native/registry.c finds it by the data file's identity, so two
 * spellings of a path find the same env.
 */
function acquireHandle(path: string, options: OpenOptions): { h: Handle; shared: boolean } {
  for (let attempt = 0;; attempt++) {
    const h = fn.tm_env_share(cString(path), options.noSubdir ? 1 : 0, scratch.i32Bytes);
    if (h !== null) return { h, shared: true };
    const rc = scratch.i32[0];
    if (rc === SAME_THREAD) {
      throw new MdbxError(
        ErrorCode.BUSY,
        `opening ${path}: this thread already has it open under another spelling of its path (a symlink, a ` +
          "relative path); one Env per database per thread, so use that Env",
      );
    }
    if (rc < 0) fail(rc, `opening ${path}`);
    try {
      return { h: openHandle(path, options), shared: false };
    } catch (e) {
      // another Worker opened it between the two calls: share it
      if (e !== shareInstead) throw e;
      if (attempt >= 100) throw new MdbxError(ErrorCode.BUSY, `opening ${path}: it kept opening and closing; retry`);
    }
  }
}

const GEOMETRY_FIELDS = ["lower", "now", "upper", "growth", "shrink"] as const;

/** The open() options a later open of the same file in another Worker must agree with, as given (parsed). */
function noteOf(options: OpenOptions): Record<string, number> {
  const n: Record<string, number> = { maxTables: options.maxTables ?? 64 };
  if (options.maxReaders !== undefined) n.maxReaders = options.maxReaders;
  if (options.pageSize !== undefined) n.pageSize = parseSize(options.pageSize, "pageSize");
  for (const f of GEOMETRY_FIELDS) {
    const v = options.geometry?.[f];
    if (v !== undefined) n[`geometry.${f}`] = parseSize(v, `geometry.${f}`);
  }
  for (const [k, v] of Object.entries(options.options ?? {})) n[`options.${k}`] = v as number;
  if (options.syncBytes !== undefined) n.syncBytes = parseSize(options.syncBytes, "syncBytes");
  if (options.syncPeriodMs !== undefined) n.syncPeriodMs = options.syncPeriodMs;
  return n;
}

/** Records the first opener's options with the env (native/registry.c), for checkShared(). */
function noteOptions(h: Handle, options: OpenOptions): void {
  const b = encoder.encode(JSON.stringify(noteOf(options)));
  fn.tm_env_note_set(h, b, b.length);
}

/** Boolean open() options that are env flags: [option, flag, the flag means false]. */
const FLAG_OPTIONS: [keyof OpenOptions, number, boolean][] = [
  ["exclusive", EnvFlags.EXCLUSIVE, false],
  ["stickyThreads", EnvFlags.NOSTICKYTHREADS, true],
  ["writeMap", EnvFlags.WRITEMAP, false],
  ["noReadAhead", EnvFlags.NORDAHEAD, false],
  ["noMemInit", EnvFlags.NOMEMINIT, false],
  ["lifoReclaim", EnvFlags.LIFORECLAIM, false],
  ["validation", EnvFlags.VALIDATION, false],
];

function syncModeOf(flags: number): SyncMode {
  if ((flags & EnvFlags.UTTERLY_NOSYNC) === EnvFlags.UTTERLY_NOSYNC) return "nosync";
  if (flags & EnvFlags.SAFE_NOSYNC) return "lazy";
  if (flags & EnvFlags.NOMETASYNC) return "noMetaSync";
  return "durable";
}

/**
 * Checks the options of an open that shares the env another Worker opened:
 * every option given must agree with the environment as it is (an option left
 * out takes the open one's; `accede: true` takes it as it is). Returns whether
 * the new Env is read-only: `readOnly: true` over a writable env makes a
 * read-only Env; `readOnly: false` over a read-only env is refused.
 */
function checkShared(path: string, h: Handle, options: OpenOptions): boolean {
  check(fn.tm_env_get_flags(h, scratch.u32Bytes), "reading the environment's flags");
  const flags = scratch.u32[0];
  const envReadOnly = (flags & EnvFlags.RDONLY) !== 0;
  if (options.accede) return envReadOnly || !!options.readOnly;
  const conflict = (name: string, have: unknown, want: unknown) =>
    new MdbxError(
      ErrorCode.INCOMPATIBLE,
      `opening ${path}: this process has it open already (an Env in another Worker or thread) with ${name} ` +
        `${JSON.stringify(have)}, and this open asks for ${name} ${JSON.stringify(want)}; every Env of a database ` +
        `in one process shares one environment, so pass the same ${name} (or leave it out to take the open one's, ` +
        "or pass accede: true), or close the other Envs first (docs/workers.md)",
    );
  if (options.readOnly === false && envReadOnly) throw conflict("readOnly", true, false);
  for (const [name, flag, inverted] of FLAG_OPTIONS) {
    const want = options[name];
    if (want === undefined) continue;
    const have = ((flags & flag) !== 0) !== inverted;
    if (!!want !== have) throw conflict(name, have, !!want);
  }
  if (options.sync !== undefined) {
    syncFlags(options.sync); // a bad value is a TypeError first
    const have = syncModeOf(flags);
    if (options.sync !== have) throw conflict("sync", have, options.sync);
  }
  let note: Record<string, number> = {};
  const n = fn.tm_env_note_get(h, scratch.out, scratch.out.length);
  if (n > 0 && n <= scratch.out.length) note = JSON.parse(new TextDecoder().decode(scratch.out.subarray(0, n)));
  const want = noteOf({ ...options, maxTables: options.maxTables ?? note.maxTables });
  const actual = (name: string): number | undefined => {
    const opt = (o: OptionName) => {
      const v = fn.tm_env_get_option(h, Option[o], scratch.i32Bytes);
      return scratch.i32[0] === 0 ? v : undefined;
    };
    if (name === "maxTables") return opt("maxTables");
    if (name === "maxReaders") return opt("maxReaders");
    if (name === "syncBytes") return opt("syncBytes");
    if (name === "syncPeriodMs") {
      const v = opt("syncPeriod");
      return v === undefined ? undefined : Math.round(v / 65536 * 1000);
    }
    if (name.startsWith("options.")) return opt(name.slice(8) as OptionName);
    if (fn.tm_env_info(h, null, scratch.f64Bytes) < 0) return undefined;
    const a = scratch.f64;
    const fromInfo: Record<string, number> = {
      pageSize: a[13],
      "geometry.lower": a[0],
      "geometry.upper": a[1],
      "geometry.shrink": a[3],
      "geometry.growth": a[4],
    };
    return fromInfo[name];
  };
  for (const [name, v] of Object.entries(want)) {
    const have = name in note ? note[name] : actual(name);
    if (have !== undefined && have !== v) throw conflict(name, have, v);
  }
  return envReadOnly || !!options.readOnly;
}

/**
 * Opens the native env of the database at `path`: the file that is the
 * database now, never one a live rebuild is replacing (it waits while a
 * switch is in flight and opens again if one happened meanwhile).
 */
function openHandle(path: string, options: OpenOptions): Handle {
  for (let attempt = 0;; attempt++) {
    const gen = fn.tm_switch_prepare(cString(path), options.noSubdir ? 1 : 0, 30_000);
    if (gen < 0) fail(gen, `opening ${path}: waiting for a live rebuild to switch files`);
    const h = openOnce(path, options);
    const a = fn.tm_switch_attach(h, gen);
    if (a === 0) return h;
    fn.tm_env_close(h, 1);
    if (a < 0) fail(a, `opening ${path}`);
    if (attempt >= 100) throw new MdbxError(ErrorCode.BUSY, `opening ${path}: it kept moving to new files; retry`);
  }
}

/** What native/integrity.c found in an existing data file (tm_dxb_inspect). */
const Dxb = { NEW: 0, OK: 1, EMPTY: 2, CREATING: 3, SHORT: 4, NOMETA: 5, TRUNCATED: 6 } as const;

const bytes = (n: number) =>
  n >= 1024 * 1024 && n % (1024 * 1024) === 0
    ? `${n / (1024 * 1024)} MiB`
    : n >= 1024 && n % 1024 === 0
    ? `${n / 1024} KiB`
    : `${n} bytes`;

/**
 * Refuses a data file that is shorter than the pages its newest meta page
 * uses, shorter than its meta pages, empty, or without a valid meta page:
 * libmdbx would silently start an empty database in the last three, and map
 * past the end of the first. Reads only (native/integrity.c). With
 * `recovery`, extends a file cut short with zeros and lets libmdbx open the
 * rest as it would.
 */
function checkDataFile(path: string, options: OpenOptions): void {
  const nosub = options.noSubdir ? 1 : 0;
  const out = scratch.f64;
  const st = fn.tm_dxb_inspect(cString(path), nosub, scratch.f64Bytes);
  if (st < 0 || st === Dxb.NEW || st === Dxb.OK || st === Dxb.CREATING) return; // libmdbx decides
  const [size, used, pageSize, txnId, now] = [out[0], out[1], out[2], out[3], out[4]];
  const file = options.noSubdir ? path : `${path.replace(/\/+$/, "")}/mdbx.dat`;
  if (options.recovery) {
    if (st !== Dxb.TRUNCATED) return; // libmdbx starts a new, empty database in it (or refuses a read-only open)
    if (options.readOnly) {
      throw new MdbxError(
        ErrorCode.CORRUPTED,
        `opening ${path}: the data file ${file} is ${bytes(size)} but its meta page records ${bytes(used)} in use; ` +
          "recovery extends the file with zeros to that size, which a readOnly open cannot do: open it with " +
          "recovery: true and without readOnly (copy the file first to keep it as it is)",
      );
    }
    check(fn.tm_dxb_extend(cString(path), nosub, Math.max(used, now)), `extending ${file} for recovery`);
    return;
  }
  const nothing = "Nothing was written to it.";
  const recover = "or open it with recovery: true";
  switch (st) {
    case Dxb.TRUNCATED:
      throw new MdbxError(
        ErrorCode.CORRUPTED,
        `opening ${path}: the data file ${file} is ${bytes(size)}, but its newest meta page (txnid ${txnId}) ` +
          `records ${bytes(used)} in use (${used / pageSize} pages of ${pageSize} bytes): the file was cut short ` +
          `(an interrupted copy or restore, a full disk, a truncate) and the pages past its end are lost. ${nothing} ` +
          `Restore it from a backup, ${recover} to extend it with zeros and read what survives (docs/api.md)`,
      );
    case Dxb.EMPTY:
      throw new MdbxError(
        ErrorCode.CORRUPTED,
        `opening ${path}: the data file ${file} exists but is empty (0 bytes) and no process is creating it; ` +
          "libmdbx never leaves a database's file empty, so it was truncated (or made by something else). " +
          `${nothing} Restore it from a backup; delete it, ${recover}, to start a new, empty database there`,
      );
    case Dxb.SHORT:
      throw new MdbxError(
        ErrorCode.CORRUPTED,
        `opening ${path}: the data file ${file} is ${bytes(size)}, shorter than its three meta pages ` +
          `(${bytes(3 * pageSize)}): it was cut short and the database in it is lost. ${nothing} Restore it from a ` +
          `backup, ${recover} to start a new, empty database in it (its remaining bytes are discarded)`,
      );
    default:
      throw new MdbxError(
        ErrorCode.INVALID,
        `opening ${path}: the data file ${file} (${bytes(size)}) has no valid libmdbx meta page: it is not a ` +
          `libmdbx database, or all three of its meta pages are damaged. ${nothing} Check the path` +
          (options.noSubdir ? "" : " (noSubdir: true opens a data file by its own name)") +
          "; restore a damaged database from a backup",
      );
  }
}

/** The `mode` option of open(): permission bits (a u32 of the native call), checked before anything is opened. */
function openMode(mode: unknown): number {
  if (mode === undefined) return 0o644;
  if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(
      `the mode option of open() must be permission bits from 0 to 0o777 (e.g. 0o644); got ${describe(mode)}`,
    );
  }
  return mode;
}

function openOnce(path: string, options: OpenOptions): Handle {
  checkDataFile(path, options);
  let flags = syncFlags(options.sync ?? "durable");
  if (options.readOnly) flags |= EnvFlags.RDONLY;
  if (options.exclusive) flags |= EnvFlags.EXCLUSIVE;
  if (options.noSubdir) flags |= EnvFlags.NOSUBDIR;
  if (!options.stickyThreads) flags |= EnvFlags.NOSTICKYTHREADS;
  if (options.writeMap) flags |= EnvFlags.WRITEMAP;
  if (options.noReadAhead) flags |= EnvFlags.NORDAHEAD;
  if (options.noMemInit) flags |= EnvFlags.NOMEMINIT;
  if (options.lifoReclaim) flags |= EnvFlags.LIFORECLAIM;
  if (options.validation) flags |= EnvFlags.VALIDATION;
  if (options.accede) flags |= EnvFlags.ACCEDE;

  const h = fn.tm_env_create(scratch.i32Bytes);
  if (h === null) fail(scratch.i32[0], "creating an environment");
  let ok = false;
  try {
    const set = (o: number, v: number, what: string) => check(fn.tm_env_set_option(h, o, v), `setting ${what}`);
    set(Option.maxTables, options.maxTables ?? 64, "maxTables");
    if (options.maxReaders !== undefined) set(Option.maxReaders, options.maxReaders, "maxReaders");
    for (const [name, v] of Object.entries(options.options ?? {})) {
      if (!(name in Option)) throw new TypeError(`unknown libmdbx option ${name}`);
      set(Option[name as OptionName], v as number, name);
    }
    const g = options.geometry ?? {};
    const sz = (s: Size | undefined, what: string) => (s === undefined ? -1 : parseSize(s, what));
    const pageSize = sz(options.pageSize, "pageSize");
    if (pageSize !== -1 && (pageSize < 256 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0)) {
      throw new RangeError(`pageSize must be a power of two from 256 to 65536, got ${pageSize}`);
    }
    if (options.geometry || pageSize !== -1) {
      check(
        fn.tm_env_set_geometry(
          h,
          sz(g.lower, "geometry.lower"),
          sz(g.now, "geometry.now"),
          sz(g.upper, "geometry.upper"),
          sz(g.growth, "geometry.growth"),
          sz(g.shrink, "geometry.shrink"),
          pageSize,
        ),
        "setting the geometry",
      );
    }
    const mode = options.create === false ? 0 : openMode(options.mode);
    const r = fn.tm_env_open(h, cString(path), flags >>> 0, mode);
    if (r === OPEN_SHARED) throw shareInstead; // another Worker has it open: acquireHandle shares its env
    if (r === -ErrorCode.ENOENT && options.create === false) {
      throw new MdbxError(ErrorCode.ENOENT, `${path} does not exist (and create: false was given)`);
    }
    if (r === -ErrorCode.ENOENT && options.readOnly) {
      throw new MdbxError(
        ErrorCode.ENOENT,
        `${path} does not exist, and a readOnly open cannot create it: check the path, or create the database ` +
          "first with an open() that is not readOnly",
      );
    }
    if (r === -ErrorCode.EAGAIN) {
      // libmdbx reports a lock held by another process as EAGAIN, whose generic text says "retry".
      // (Workers of this process share one env through native/registry.c and never get here.)
      throw new MdbxError(
        ErrorCode.EAGAIN,
        `opening ${path}: the database is locked by another process (it has it open with exclusive: true, ` +
          "or this open asks for exclusive: true while another process has it open), or code in this process " +
          "that does not go through this copy of turbomdbx has it open (another copy of the library, loaded " +
          "from another path, has its own registry of open databases); close it there first",
      );
    }
    check(r, `opening ${path}`);
    // Sync thresholds need an open environment.
    if (options.syncBytes !== undefined) {
      check(fn.tm_env_set_option(h, Option.syncBytes, parseSize(options.syncBytes, "syncBytes")), "syncBytes");
    }
    if (options.syncPeriodMs !== undefined) {
      // libmdbx takes 16.16 fixed-point seconds
      check(
        fn.tm_env_set_option(h, Option.syncPeriod, Math.round(options.syncPeriodMs / 1000 * 65536)),
        "syncPeriodMs",
      );
    }
    ok = true;
  } finally {
    if (!ok) fn.tm_env_close(h, 1);
  }
  return h;
}

/**
 * Deletes a database's files. `mode` "ensureUnused" fails with MDBX_BUSY if any
 * process has it open; "waitForUnused" waits until none has. Returns false if
 * there was nothing to delete.
 */
export function deleteDatabase(
  path: string,
  options: { mode?: "justDelete" | "ensureUnused" | "waitForUnused"; libraryPath?: string } = {},
): boolean {
  load(options.libraryPath);
  const mode = options.mode ?? "ensureUnused";
  const m = ({ justDelete: 0, ensureUnused: 1, waitForUnused: 2 } as Record<string, number>)[mode];
  if (m === undefined) {
    throw new TypeError(`mode must be "justDelete", "ensureUnused" or "waitForUnused", got ${describe(options.mode)}`);
  }
  if (m !== 0 && open_paths.has(path.replace(/\/+$/, ""))) {
    // libmdbx would answer EAGAIN ("retry") or, waiting for unused, wait for this very process forever
    throw new MdbxError(
      ErrorCode.BUSY,
      `deleting ${path}: it is open in this process; close its Env (env.close()) first, then delete it`,
    );
  }
  const r = fn.tm_env_delete(cString(path), m);
  if (r === -1) return false;
  if (r === -ErrorCode.EAGAIN || r === ErrorCode.BUSY) {
    throw new MdbxError(
      codeOf(r),
      `deleting ${path}: another process has the database open; close it there (or in the other Worker of this ` +
        `process that has it open), or pass mode: "waitForUnused" to wait until no process has it open (mode ` +
        `"justDelete" deletes it anyway)`,
    );
  }
  check(r, `deleting ${path}`);
  return true;
}
