/**
 * The generational get() cache: TypeScript handles over the native cache of
 * native/cache.c.
 *
 * A cached entry remembers where a key's value lives: the leaf page (pgno), the
 * node's offset in it, and the page's version (the txnid in its header). A
 * committed page version is immutable, so the location is exact for every
 * snapshot in which that page version is live: from its txnid until the commit
 * that retires it. The lookup, its validation (page version, retirement, the
 * key bytes on the page) and the copy of the value all run in native code, one
 * call per `get()` or per batch. The cache's memory (slots and retired pages)
 * is shared by every process that uses the database (a sidecar file beside the
 * lock file) unless `shared: false` or a read-only open makes it private;
 * every commit of a process with the cache publishes its retirements inside
 * the commit, and commits nobody published (other writers) are found when a
 * transaction starts (`sync`). See docs/cache.md.
 *
 * @module
 */
import { check, fail, fn, scratch } from "./core.ts";
import type { Handle } from "./ffi/mod.ts";

/** Cache statistics of one table. */
export interface CacheStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups that went to the B+tree (absent, stale, not cacheable, or in a table this write transaction changed). */
  misses: number;
  /** Entries found stale (their page was retired or rewritten) or dropped by another process's commit. */
  invalidations: number;
  /** Entries evicted to stay within maxEntries. */
  evictions: number;
  /** Entries now. */
  entries: number;
  /** Slots allocated. */
  capacity: number;
  /** Bytes of the slot table (16 per slot). */
  bytes: number;
  /**
   * Whether the slots live in memory shared by every process using the database
   * (counts other than hits, misses, invalidations and evictions are then the
   * shared table's; those four are this Env's).
   */
  shared: boolean;
}

/** Options of a table's cache. */
export interface CacheOptions {
  /** Bound the number of entries (the slot table is sized for it up front); unbounded by default. */
  maxEntries?: number;
  /**
   * Share the cache with every process (and thread) that uses the database: its
   * slots and retired pages live in a sidecar file beside the lock file
   * (default true). `false` keeps a cache private to this process, as before
   * issue 11. All cached tables of an environment share one mode. A read-only
   * open, or a platform without open-file-description locks, always gets a
   * private cache (docs/cache.md, "Where the cache lives").
   */
  shared?: boolean;
  /**
   * No longer used: keys of any length are cached (an entry stores no key; the
   * key is compared with the key bytes on the page).
   * @deprecated has no effect
   */
  keyBytes?: number;
}

/** tm_cache_open: the native environment's cache (made by another Env) is of the other mode. */
const CACHE_MODE = -29995;

/** @internal The per-Env part: the native cache (retired pages, synchronisation, map). */
export class CacheState {
  readonly #env: Handle;
  /** The native tm_cache; null once closed. */
  h: Handle | null;
  readonly tables: Set<GetCache> = new Set();
  /** Whether a shared cache was asked for (the mode of every cached table of the environment). */
  readonly asked: boolean;
  /** Whether it is shared (a read-only open or an unsupported platform makes it private). */
  readonly shared: boolean;

  constructor(env: Handle, shared = true) {
    this.#env = env;
    this.asked = shared;
    // the native cache is one per native environment: another Env (Worker) using it may have made it already
    const h = fn.tm_cache_open(env, shared ? 1 : 0, scratch.i32Bytes);
    if (h === null && scratch.i32[0] === CACHE_MODE) {
      throw new TypeError(
        `cache shared: ${shared} conflicts with the get() cache that another Env (Worker) of this process has on ` +
          `this database (shared: ${!shared}); every cached table of a database in a process uses one mode`,
      );
    }
    if (h === null) fail(scratch.i32[0], "enabling the get() cache");
    this.h = h;
    this.shared = fn.tm_cache_info(h, scratch.f64Bytes) === 1;
  }

  /**
   * Called when a transaction starts on snapshot `snap`: makes sure every commit
   * up to it is accounted for (commits nobody published drop the cached tables
   * they changed). Returns the snapshot to read the cache with: `snap`, or 0
   * (the cache neither answers nor inserts) while the newest commit is still
   * being confirmed by the process that made it.
   */
  sync(txn: Handle, snap: number): number {
    if (this.h === null) return snap;
    const s = fn.tm_cache_sync(this.h, txn, snap) as number;
    if (s < 0) check(s, "synchronising the get() cache");
    return s;
  }

  /** Why the cache is private although a shared one was asked for (an errno value), and its accounting. */
  info(): { shared: boolean; reason: number; accounted: number; fence: number; resets: number } {
    if (this.h === null) return { shared: false, reason: 0, accounted: 0, fence: 0, resets: 0 };
    const shared = fn.tm_cache_info(this.h, scratch.f64Bytes) === 1;
    const o = scratch.f64;
    return { shared, reason: o[0], accounted: o[1], fence: o[2], resets: o[3] };
  }

  /** Releases everything; the environment handle must still be open. */
  close(): void {
    const h = this.h;
    if (h === null) return;
    // this Env's tables only: other Envs (Workers) may go on using the native cache, which the last one frees
    for (const t of this.tables) {
      if (t.h !== null) fn.tm_ctable_close(t.h);
      t.h = null;
    }
    this.tables.clear();
    this.h = null;
    check(fn.tm_cache_close(this.#env, h), "disabling the get() cache");
  }
}

/** @internal One table's cache: the native slot table (tm_ctable). */
export class GetCache {
  /** The native tm_ctable; null once closed (the table was dropped or the environment closed). */
  h: Handle | null;
  readonly #state: CacheState;
  /** The options it was made with (a live rebuild makes a new cache for the new file). */
  readonly options: CacheOptions;

  constructor(state: CacheState, dbi: number, options: CacheOptions, name: string | null = null) {
    const max = options.maxEntries ?? Infinity;
    if (!(max > 0)) throw new RangeError(`cache maxEntries must be a positive number, got ${max}`);
    if (options.shared !== undefined && typeof options.shared !== "boolean") {
      throw new TypeError(`cache shared must be true or false, got ${String(options.shared)}`);
    }
    if (state.h === null) throw new TypeError("the get() cache of this environment is closed");
    if (options.shared !== undefined && options.shared !== state.asked) {
      throw new TypeError(
        `cache shared: ${options.shared} conflicts with the other cached tables of this environment ` +
          `(shared: ${state.asked}); every cached table of an environment uses one mode`,
      );
    }
    this.options = options;
    this.#state = state;
    const nameBytes = name === null ? new Uint8Array(0) : new TextEncoder().encode(name);
    const h = fn.tm_ctable_open(
      state.h,
      dbi,
      Number.isFinite(max) ? Math.ceil(max) : 0,
      nameBytes,
      name === null ? 0xffffffff : nameBytes.length,
      scratch.i32Bytes,
    );
    if (h === null) fail(scratch.i32[0], "allocating a get() cache");
    this.h = h;
    state.tables.add(this);
  }

  /** Drops every entry (the table was cleared, …), for every process sharing the cache. */
  drop(): void {
    if (this.h !== null) fn.tm_ctable_clear(this.h);
  }

  /**
   * The table is being renamed to `name` in a write transaction: the slots are
   * shared by name, so this handle moves to the new name's, both names' entries
   * go, and the commit is left unconfirmed (every process then drops what it
   * changed, behind a fence: docs/cache.md).
   */
  rename(name: string, dbi: number): void {
    const state = this.#state;
    if (this.h === null || state.h === null) return;
    fn.tm_cache_taint();
    const n = new TextEncoder().encode(name);
    const h = fn.tm_ctable_open(state.h, dbi, this.#max(), n, n.length, scratch.i32Bytes);
    if (h === null) fail(scratch.i32[0], "allocating a get() cache");
    fn.tm_ctable_clear(h);
    fn.tm_ctable_clear(this.h);
    fn.tm_ctable_close(this.h);
    this.h = h;
  }

  #max(): number {
    const max = this.options.maxEntries ?? Infinity;
    return Number.isFinite(max) ? Math.ceil(max) : 0;
  }

  /** The table was dropped: its entries go (for every process sharing them) and this handle is freed. */
  close(): void {
    if (this.h === null) return;
    fn.tm_ctable_clear(this.h);
    fn.tm_ctable_close(this.h);
    this.h = null;
    this.#state.tables.delete(this);
  }

  /** Statistics. */
  stats(): CacheStats {
    const o = scratch.f64;
    if (this.h === null) o.fill(0, 0, 8);
    else fn.tm_ctable_stats(this.h, scratch.f64Bytes);
    return {
      hits: o[0],
      misses: o[1],
      invalidations: o[2],
      evictions: o[3],
      entries: o[4],
      capacity: o[5],
      bytes: o[6],
      shared: o[7] === 1,
    };
  }
}
