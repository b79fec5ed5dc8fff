/**
 * The generational get() cache.
 *
 * A cached entry remembers where a key's value lives: the page (pgno), the
 * node's offset in it, and the page's version (the txnid in its header). A
 * committed page version is immutable, so the location is exact for every
 * snapshot in which that page version is live: from its txnid until the commit
 * that retires it. The relocation events of the patched libmdbx
 * (native/patches/0002) report every retirement made by this process's
 * commits; commits by other processes are detected through the tables'
 * `mod_txnid` and drop the affected tables' entries. A hit therefore needs no
 * call into the library: hash the key, find the slot, check the version
 * against the reader's snapshot, the retired-page table and the page header in
 * the map, and copy the value out of the map. See docs/cache.md.
 *
 * @module
 */
import { backend, check, copyOut, fail, fn, scratch, SLAB_MAX, useSlab } from "./core.ts";
import type { Handle } from "./ffi/mod.ts";

/** Cache statistics of one table. */
export interface CacheStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups that went to the B+tree (absent, stale, not cacheable, or in a dirty table). */
  misses: number;
  /** Entries found stale (their page was retired or rewritten) or dropped by another process's commit. */
  invalidations: number;
  /** Entries evicted to stay within maxEntries. */
  evictions: number;
  /** Entries now. */
  entries: number;
  /** Slots allocated. */
  capacity: number;
  /** Bytes of the slot table. */
  bytes: number;
}

/** Options of a table's cache. */
export interface CacheOptions {
  /** Bound the number of entries (the slot table is sized for it up front). */
  maxEntries?: number;
  /** Longest key cached, in bytes (default 16; 4 to 28, rounded up to a multiple of 4). */
  keyBytes?: number;
}

const CHUNK_SHIFT = 30; // map views of 1 GiB: within what every runtime's ArrayBuffer allows
const MAX_LOAD = 0.92;
/**
 * An unbounded table grows by this factor when it passes MAX_LOAD, so that its
 * load stays within 0.74 to 0.92: at most 44 bytes per entry with 16-byte keys
 * (doubling let it fall to 0.46: 67 bytes per entry at a million entries).
 */
const GROWTH = 1.25;
const RELOC_RETIRED = 1;
const RELOC_COMMITTED = 4;
const TWO32 = 4294967296;

/** @internal The per-environment part: map views, retired pages, synchronisation. */
export class CacheState {
  readonly #env: Handle;
  #reloc: Handle | null;
  readonly pageSize: number;
  readonly pageShift: number;
  readonly #chunkPageShift: number;
  readonly #chunkPageMask: number;
  base = -1;
  limit = 0;
  /** Byte views of the map, one per 1 GiB chunk, created on first use. */
  u8: (Uint8Array | undefined)[] = [];
  /** The same chunks as u32 (page headers are 4-aligned). */
  u32: (Uint32Array | undefined)[] = [];
  readonly #views: ArrayBuffer[] = [];
  /** retired[pgno]: txnid of the last commit (of this process) that retired the page, 0 if none seen. */
  retired: Float64Array = new Float64Array(1024);
  /** Every commit up to this txnid has been accounted for. */
  seen = 0;
  /** Only snapshots >= fence may insert: older ones may know pages another process retired. */
  fence = 0;
  readonly tables: Set<GetCache> = new Set();
  #events: Uint8Array = new Uint8Array(64 * 1024);

  constructor(env: Handle, pageSize: number) {
    this.#env = env;
    this.pageSize = pageSize;
    this.pageShift = Math.log2(pageSize);
    this.#chunkPageShift = CHUNK_SHIFT - this.pageShift;
    this.#chunkPageMask = (1 << this.#chunkPageShift) - 1;
    const r = fn.tm_reloc_open(env, 1 << RELOC_RETIRED | 1 << RELOC_COMMITTED, scratch.i32Bytes);
    if (r === null) fail(scratch.i32[0], "enabling relocation events");
    this.#reloc = r;
    this.remap();
  }

  /** Re-reads where the map is; rebuilds the views if it moved. */
  remap(): void {
    check(fn.tm_env_map(this.#env, scratch.f64Bytes), "reading the map address");
    const base = scratch.f64[0], limit = scratch.f64[1];
    if (base !== this.base) {
      this.#detach();
      this.base = base;
      this.dropAll(); // locations are page numbers, but be strict when the mapping changes
    }
    this.limit = limit;
  }

  /** The chunk holding `pgno`, creating its view on first use (undefined past the mapping). */
  chunk(pgno: number): number {
    const c = pgno >>> this.#chunkPageShift;
    if (this.u8[c] === undefined) {
      const start = c * 2 ** CHUNK_SHIFT;
      if (start >= this.limit) return -1;
      const len = Math.min(2 ** CHUNK_SHIFT, this.limit - start);
      const ab = backend.view(this.base + start, len);
      this.#views.push(ab);
      this.u8[c] = new Uint8Array(ab);
      this.u32[c] = new Uint32Array(ab, 0, len >>> 2);
    }
    return c;
  }

  /** Byte offset of `pgno` inside its chunk. */
  pageOffset(pgno: number): number {
    return (pgno & this.#chunkPageMask) * this.pageSize;
  }

  /**
   * Called when a transaction starts on snapshot `snap`: if commits happened that
   * this process did not make, drops the cached tables they modified.
   */
  sync(txn: Handle, snap: number): void {
    if (snap <= this.seen) return;
    this.remap();
    for (const t of this.tables) {
      // no state: another process dropped the table (its reads report that); forget its entries
      if (fn.tm_dbi_stat(txn, t.dbi, scratch.f64Bytes) < 0 || scratch.f64[6] > this.seen) t.drop();
    }
    this.seen = snap;
    this.fence = snap;
  }

  /** Applies the relocation events of this process's commit (call after a successful commit). */
  afterCommit(): void {
    let out = this.#events;
    let n = fn.tm_reloc_drain(this.#reloc, out, out.length);
    if (n === -1) return this.dropAll();
    if (n > out.length) {
      let size = out.length;
      while (size < n) size *= 2;
      this.#events = out = new Uint8Array(size);
      n = fn.tm_reloc_drain(this.#reloc, out, out.length);
      if (n === -1) return this.dropAll();
    }
    const w = new Uint32Array(out.buffer, 0, n >>> 2);
    for (let i = 0; i < w.length; i += 5) {
      const txnid = w[i + 3] + w[i + 4] * TWO32;
      if (w[i] === RELOC_RETIRED) {
        const end = w[i + 1] + w[i + 2];
        if (end > this.retired.length) this.#growRetired(end);
        this.retired.fill(txnid, w[i + 1], end);
      } else if (w[i] === RELOC_COMMITTED) {
        // contiguous with what we knew: this commit is accounted for; otherwise
        // another process committed in between and sync() will look at the tables
        if (this.seen === txnid - 1) this.seen = txnid;
      }
    }
  }

  /** Forgets events of a commit that failed. */
  discardEvents(): void {
    if (this.#reloc) fn.tm_reloc_clear(this.#reloc);
  }

  #growRetired(n: number): void {
    let size = this.retired.length;
    while (size < n) size *= 2;
    const r = new Float64Array(size);
    r.set(this.retired);
    this.retired = r;
  }

  dropAll(): void {
    for (const t of this.tables) t.drop();
  }

  #detach(): void {
    for (const ab of this.#views) if (!(ab as { detached?: boolean }).detached) ab.transfer(0);
    this.#views.length = 0;
    this.u8 = [];
    this.u32 = [];
  }

  /** Releases everything; the environment handle must still be open. */
  close(): void {
    this.#detach();
    for (const t of this.tables) t.drop();
    this.tables.clear();
    if (this.#reloc) check(fn.tm_reloc_close(this.#env, this.#reloc), "disabling relocation events");
    this.#reloc = null;
  }
}

/** The key of the last lookup, as words (hashing and comparison). */
const kw = new Int32Array(8);

/**
 * @internal One table's cache: a Robin Hood hash table of fixed-size slots in
 * one Uint32Array. Slot words: [hash, pgno, version lo, meta, key words...],
 * meta = node offset (16 bits) | key length (5 bits) << 16 | version hi (11 bits) << 21.
 */
export class GetCache {
  readonly dbi: number;
  readonly #state: CacheState;
  readonly #keyWords: number;
  readonly #stride: number;
  readonly #max: number;
  #slots: Uint32Array;
  #cap: number;
  #scale: number;
  #count = 0;
  hits = 0;
  misses = 0;
  invalidations = 0;
  evictions = 0;
  /** Where the last hit's value is: chunk, byte offset, length. */
  hitChunk: Uint8Array = new Uint8Array(0);
  hitOff = 0;
  hitLen = 0;
  /** Scratch slots for Robin Hood insertion (no allocation per insert). */
  #cur: Uint32Array;
  #tmp: Uint32Array;

  /** The options it was made with (a live rebuild makes a new cache for the new file). */
  readonly options: CacheOptions;

  constructor(state: CacheState, dbi: number, options: CacheOptions) {
    this.dbi = dbi;
    this.options = options;
    this.#state = state;
    const kb = options.keyBytes ?? 16;
    if (!Number.isInteger(kb) || kb < 4 || kb > 28) throw new RangeError(`cache keyBytes must be 4..28, got ${kb}`);
    this.#keyWords = Math.ceil(kb / 4);
    this.#stride = 4 + this.#keyWords;
    this.#cur = new Uint32Array(this.#stride);
    this.#tmp = new Uint32Array(this.#stride);
    const max = options.maxEntries ?? Infinity;
    if (!(max > 0)) throw new RangeError(`cache maxEntries must be positive, got ${max}`);
    this.#max = max;
    this.#cap = Number.isFinite(max) ? Math.max(16, Math.ceil(max / MAX_LOAD)) : 1024;
    this.#slots = new Uint32Array(this.#cap * this.#stride);
    this.#scale = this.#cap / TWO32;
    state.tables.add(this);
  }

  /** Loads the key into `kw` and returns its hash (never 0), or 0 if the key is too long to cache. */
  _hash(k: Uint8Array, len: number): number {
    const words = this.#keyWords;
    if (len > words * 4) return 0;
    for (let i = 0; i < words; i++) kw[i] = 0;
    if (len === 16 && words === 4) {
      kw[0] = k[0] | k[1] << 8 | k[2] << 16 | k[3] << 24;
      kw[1] = k[4] | k[5] << 8 | k[6] << 16 | k[7] << 24;
      kw[2] = k[8] | k[9] << 8 | k[10] << 16 | k[11] << 24;
      kw[3] = k[12] | k[13] << 8 | k[14] << 16 | k[15] << 24;
    } else {
      for (let i = 0; i < len; i++) kw[i >> 2] |= k[i] << ((i & 3) << 3);
    }
    let h = len ^ 0x9e3779b9;
    for (let i = 0; i < words; i++) {
      h = Math.imul(h ^ kw[i], 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
    h ^= h >>> 15;
    return (h >>> 0) || 1;
  }

  _home(h: number): number {
    return Math.floor(h * this.#scale);
  }

  /** Finds the slot of the key loaded in `kw` (with hash h and length len), or -1. */
  _find(h: number, len: number): number {
    const s = this.#slots, stride = this.#stride, words = this.#keyWords, cap = this.#cap, scale = this.#scale;
    // home slots computed inline: a call per probed slot cost Bun ~200 ns per lookup
    let i = Math.floor(h * scale), dist = 0;
    for (;;) {
      const b = i * stride;
      const sh = s[b];
      if (sh === 0) return -1;
      if (sh === h && ((s[b + 3] >>> 16) & 31) === len) {
        let eq = true;
        for (let j = 0; j < words; j++) {
          if ((s[b + 4 + j] | 0) !== kw[j]) {
            eq = false;
            break;
          }
        }
        if (eq) return b;
      }
      let home = Math.floor(sh * scale);
      if (home > i) home -= cap;
      if (i - home < dist) return -1; // Robin Hood: the key would have been placed before here
      if (++i === cap) i = 0;
      dist++;
    }
  }

  /**
   * Looks `key` up for a reader at snapshot `snap`. On a hit sets hitChunk /
   * hitOff / hitLen and returns true; a stale entry counts as a miss.
   */
  lookup(k: Uint8Array, len: number, snap: number): boolean {
    const h = this._hash(k, len);
    if (h === 0) {
      this.misses++;
      return false;
    }
    const b = this._find(h, len);
    if (b < 0) {
      this.misses++;
      return false;
    }
    const s = this.#slots, st = this.#state;
    const pgno = s[b + 1], lo = s[b + 2], meta = s[b + 3];
    const hi = meta >>> 21;
    const version = lo + hi * TWO32;
    // a newer page version than this reader's snapshot: the reader must look in the tree
    if (version > snap) {
      this.misses++;
      return false;
    }
    // retired by a commit this process made, at or before this snapshot
    const rt = pgno < st.retired.length ? st.retired[pgno] : 0;
    if (rt > version && snap >= rt) {
      this.#stale(b);
      return false;
    }
    const c = st.chunk(pgno);
    if (c < 0) {
      this.misses++;
      return false;
    }
    const page = st.pageOffset(pgno);
    const w32 = st.u32[c]!;
    // the page still holds the version we saw (not rewritten after a reuse)
    if (w32[page >>> 2] !== lo || w32[(page >>> 2) + 1] !== hi) {
      this.#stale(b);
      return false;
    }
    const u8 = st.u8[c]!;
    const node = page + (meta & 0xffff);
    const vlen = (u8[node] | u8[node + 1] << 8 | u8[node + 2] << 16 | u8[node + 3] << 24) >>> 0;
    // a small value ends inside its page; anything else means the entry does not describe this page
    if ((meta & 0xffff) + 8 + len + vlen > st.pageSize) {
      this.#stale(b);
      return false;
    }
    this.hitLen = vlen;
    this.hitOff = node + 8 + len;
    this.hitChunk = u8;
    this.hits++;
    return true;
  }

  /**
   * A copy of the last hit's value. Its own call site on purpose: the map views
   * are a different kind of typed array from everything else, and sharing one
   * copy site with them made it polymorphic (3x slower in Bun).
   */
  copyHit(): Uint8Array {
    const off = this.hitOff, len = this.hitLen;
    if (!useSlab || len > SLAB_MAX) return this.hitChunk.slice(off, off + len);
    return copyOut(this.hitChunk, off, len);
  }

  /** Copies the last hit's value into `target` at `offset` (the caller made sure it fits). */
  copyHitInto(target: Uint8Array, offset: number): void {
    const src = this.hitChunk, off = this.hitOff, len = this.hitLen;
    // short values byte by byte: set() would need a subarray of the map, an allocation per call
    if (len <= 256) { for (let j = 0; j < len; j++) target[offset + j] = src[off + j]; }
    else target.set(src.subarray(off, off + len), offset);
  }

  /** Remembers where `key` (hashed by the last lookup) lives. */
  insert(k: Uint8Array, len: number, pgno: number, nodeOffset: number, version: number): void {
    const h = this._hash(k, len);
    if (h === 0 || version >= 2 ** 43 || nodeOffset > 0xffff) return;
    const hi = Math.floor(version / TWO32), lo = version >>> 0;
    const existing = this._find(h, len);
    const s = this.#slots;
    if (existing >= 0) {
      const old = s[existing + 2] + (s[existing + 3] >>> 21) * TWO32;
      if (old > version) return; // keep the newer location
      s[existing + 1] = pgno;
      s[existing + 2] = lo;
      s[existing + 3] = nodeOffset | len << 16 | hi << 21;
      return;
    }
    if (this.#count >= this.#max) this.#evict(h);
    else if (this.#count + 1 > this.#cap * MAX_LOAD) this.#grow();
    this.#place(h, pgno, lo, nodeOffset | len << 16 | hi << 21);
    this.#count++;
  }

  /** Robin Hood insertion of a new entry whose key words are in `kw`. */
  #place(h: number, pgno: number, lo: number, meta: number): void {
    const s = this.#slots, stride = this.#stride, words = this.#keyWords, cap = this.#cap;
    const cur = this.#cur, tmp = this.#tmp;
    cur[0] = h;
    cur[1] = pgno;
    cur[2] = lo;
    cur[3] = meta;
    for (let j = 0; j < words; j++) cur[4 + j] = kw[j];
    let i = this._home(h), dist = 0;
    for (;;) {
      const b = i * stride;
      if (s[b] === 0) {
        s.set(cur, b);
        return;
      }
      let home = this._home(s[b]);
      if (home > i) home -= cap;
      const d = i - home;
      if (d < dist) {
        // take the slot from the richer entry and carry it on
        for (let j = 0; j < stride; j++) tmp[j] = s[b + j];
        s.set(cur, b);
        cur.set(tmp);
        dist = d;
      }
      if (++i === cap) i = 0;
      dist++;
    }
  }

  /** Deletes the entry at slot base `b` (backward-shift deletion). */
  #remove(b: number): void {
    const s = this.#slots, stride = this.#stride, cap = this.#cap;
    let i = b / stride;
    for (;;) {
      let j = i + 1;
      if (j === cap) j = 0;
      const nb = j * stride;
      const sh = s[nb];
      if (sh === 0 || this._home(sh) === j) {
        s.fill(0, i * stride, i * stride + stride);
        break;
      }
      s.copyWithin(i * stride, nb, nb + stride);
      i = j;
    }
    this.#count--;
  }

  #stale(b: number): void {
    this.invalidations++;
    this.misses++;
    this.#remove(b);
  }

  /** Makes room in a full bounded cache: drops the entry at the new key's home slot (or the next one). */
  #evict(h: number): void {
    const s = this.#slots, stride = this.#stride;
    let i = this._home(h);
    while (s[i * stride] === 0) if (++i === this.#cap) i = 0;
    // the key words of the entry being placed live in kw; #remove does not touch them
    this.#remove(i * stride);
    this.evictions++;
  }

  #grow(): void {
    const old = this.#slots, stride = this.#stride, words = this.#keyWords;
    const saved = kw.slice();
    this.#cap = Math.ceil(this.#cap * GROWTH);
    this.#scale = this.#cap / TWO32;
    this.#slots = new Uint32Array(this.#cap * stride);
    for (let b = 0; b < old.length; b += stride) {
      if (old[b] === 0) continue;
      for (let j = 0; j < words; j++) kw[j] = old[b + 4 + j];
      this.#place(old[b], old[b + 1], old[b + 2], old[b + 3]);
    }
    kw.set(saved);
  }

  /** Drops every entry (another process changed the table, the table was dropped, …). */
  drop(): void {
    if (this.#count === 0) return;
    this.invalidations += this.#count;
    this.#slots.fill(0);
    this.#count = 0;
  }

  /** Statistics. */
  stats(): CacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      invalidations: this.invalidations,
      evictions: this.evictions,
      entries: this.#count,
      capacity: this.#cap,
      bytes: this.#slots.byteLength,
    };
  }
}
