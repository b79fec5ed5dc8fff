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
 * call per `get()` or per batch; retirements are applied natively inside every
 * commit of this process, and commits of other processes are found when a
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
}

/** Options of a table's cache. */
export interface CacheOptions {
  /** Bound the number of entries (the slot table is sized for it up front); unbounded by default. */
  maxEntries?: number;
  /**
   * No longer used: keys of any length are cached (an entry stores no key; the
   * key is compared with the key bytes on the page).
   * @deprecated has no effect
   */
  keyBytes?: number;
}

/** @internal The per-environment part: the native cache (retired pages, synchronisation, map). */
export class CacheState {
  readonly #env: Handle;
  /** The native tm_cache; null once closed. */
  h: Handle | null;
  readonly tables: Set<GetCache> = new Set();

  constructor(env: Handle) {
    this.#env = env;
    const h = fn.tm_cache_open(env, scratch.i32Bytes);
    if (h === null) fail(scratch.i32[0], "enabling the get() cache");
    this.h = h;
  }

  /**
   * Called when a transaction starts on snapshot `snap`: if commits happened that
   * this process did not make, drops the cached tables they modified.
   */
  sync(txn: Handle, snap: number): void {
    if (this.h !== null) check(fn.tm_cache_sync(this.h, txn, snap), "synchronising the get() cache");
  }

  /** Releases everything; the environment handle must still be open. */
  close(): void {
    const h = this.h;
    if (h === null) return;
    for (const t of this.tables) t.h = null; // freed with the cache
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

  constructor(state: CacheState, dbi: number, options: CacheOptions) {
    const max = options.maxEntries ?? Infinity;
    if (!(max > 0)) throw new RangeError(`cache maxEntries must be a positive number, got ${max}`);
    if (state.h === null) throw new TypeError("the get() cache of this environment is closed");
    this.options = options;
    this.#state = state;
    const h = fn.tm_ctable_open(state.h, dbi, Number.isFinite(max) ? Math.ceil(max) : 0, scratch.i32Bytes);
    if (h === null) fail(scratch.i32[0], "allocating a get() cache");
    this.h = h;
    state.tables.add(this);
  }

  /** Drops every entry (the table was cleared, …). */
  drop(): void {
    if (this.h !== null) fn.tm_ctable_clear(this.h);
  }

  /** Frees the slot table (the table was dropped). */
  close(): void {
    if (this.h === null) return;
    fn.tm_ctable_close(this.h);
    this.h = null;
    this.#state.tables.delete(this);
  }

  /** Statistics. */
  stats(): CacheStats {
    const o = scratch.f64;
    if (this.h === null) o.fill(0, 0, 7);
    else fn.tm_ctable_stats(this.h, scratch.f64Bytes);
    return {
      hits: o[0],
      misses: o[1],
      invalidations: o[2],
      evictions: o[3],
      entries: o[4],
      capacity: o[5],
      bytes: o[6],
    };
  }
}
