/**
 * Shared by test/cache.test.ts and its child writer (cache_writer.ts): a seeded
 * generator, the key set, values of every size class, and the differential
 * check of the get() cache: the cached `txn.get()` against an uncached read of
 * the same key in the same transaction, byte for byte.
 */
import type { Table, Txn } from "../../mod.ts";

/** The child writer rewrites keys 0..WATCHED-1 in every commit, stamped with the commit's number. */
export const WATCHED = 8;

/** sfc32: small, fast, and good enough to explore a state space from one 32-bit seed. */
export function prng(seed: number): () => number {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
  const next = () => {
    a >>>= 0, b >>>= 0, c >>>= 0, d >>>= 0;
    const t = (a + b | 0) + d | 0;
    d = d + 1 | 0;
    a = b ^ (b >>> 9);
    b = c + (c << 3) | 0;
    c = (c << 21) | (c >>> 11);
    c = c + t | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

/** An integer in [lo, hi]. */
export function int(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export const hex = (b: Uint8Array | undefined): string =>
  b === undefined ? "undefined" : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Byte order, as libmdbx compares binary keys (lexicographic, shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * `n` keys in ascending order of their index (the first four bytes are the index,
 * big-endian), so that index ranges are key ranges. Most are 16 bytes; a few
 * stress how the cache tells keys apart: 12-byte keys next to a 16-byte twin that
 * is the same bytes plus four zero bytes (the same hash words, only the length
 * differs), 4-byte keys, and 20-byte keys (longer than the cache's keyBytes:
 * never cached, still answered).
 */
export function makeKeys(n: number, seed: number): Uint8Array[] {
  const rng = prng(seed ^ 0x5bd1e995);
  const keys: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const k = new Uint8Array(16);
    new DataView(k.buffer).setUint32(0, i);
    for (let j = 4; j < 16; j++) k[j] = int(rng, 0, 255);
    switch (i % 61) {
      case 3: // 12 bytes; its twin follows
        keys.push(k.slice(0, 12));
        continue;
      case 4: { // the previous key plus four zero bytes
        const twin = new Uint8Array(16);
        twin.set(keys[i - 1]);
        keys.push(twin);
        continue;
      }
      case 5:
        keys.push(k.slice(0, 4));
        continue;
      case 6: {
        const long = new Uint8Array(20);
        long.set(k);
        long[19] = 1;
        keys.push(long);
        continue;
      }
    }
    keys.push(k);
  }
  return keys;
}

/** Random bytes to cut values from (cheaper than drawing every byte). */
const POOL = (() => {
  const r = prng(0xc0ffee);
  const p = new Uint8Array(1 << 16);
  for (let i = 0; i < p.length; i++) p[i] = int(r, 0, 255);
  return p;
})();

/**
 * A value size: mostly small, some filling half a page (splits and merges),
 * some right around the largest value a 4 KiB leaf page holds inline, some
 * LARGE ones on overflow pages (never cached, must still be answered right).
 */
export function valueSize(rng: () => number, pageSize = 4096): number {
  const x = rng();
  const inlineMax = Math.floor(pageSize / 2) - 40; // about where values go to overflow pages
  if (x < 0.35) return int(rng, 0, 24);
  if (x < 0.6) return int(rng, 25, 200);
  if (x < 0.78) return int(rng, 200, Math.floor(pageSize / 5));
  if (x < 0.88) return int(rng, Math.floor(pageSize / 5), inlineMax - 60);
  if (x < 0.95) return int(rng, inlineMax - 60, inlineMax + 60);
  return int(rng, inlineMax + 60, pageSize * 5);
}

/** A value of `size` bytes whose first bytes carry `stamp` (so that rewrites differ). */
export function makeValue(rng: () => number, size: number, stamp: number): Uint8Array {
  const v = new Uint8Array(size);
  let off = int(rng, 0, POOL.length - 1), o = 0;
  while (o < size) {
    const n = Math.min(size - o, POOL.length - off);
    v.set(POOL.subarray(off, off + n), o);
    o += n;
    off = 0;
  }
  for (let i = 0; i < 4 && i < size; i++) v[i] = (stamp >>> (8 * i)) & 0xff;
  return v;
}

/** The stamp of a value made by makeValue (-1 when it is too short to carry one). */
export function stampOf(v: Uint8Array | undefined): number {
  if (v === undefined || v.length < 4) return -1;
  return (v[0] | v[1] << 8 | v[2] << 16 | v[3] << 24) >>> 0;
}

export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const short = (v: Uint8Array | undefined) =>
  v === undefined ? "undefined" : `${v.length} bytes ${hex(v.subarray(0, 12))}`;

/**
 * Counts differences between the cached get() and the uncached answer of the same
 * transaction. The reference is `getWithCount()` (a native lookup that copies,
 * never through the cache) or, every few calls, `unsafeGetView()` (the database's own
 * bytes). Each key is read twice through the cache: the first read may fill
 * the cache, the second should then be a hit; every other key's second read
 * is a getInto().
 */
export class Differ {
  compared = 0;
  mismatches = 0;
  readonly details: string[] = [];
  #n = 0;

  constructor(readonly label: string) {}

  /** Compares one key; returns the uncached value. */
  check(txn: Txn, table: Table<"binary", "binary">, key: Uint8Array, where: string): Uint8Array | undefined {
    const viaView = (++this.#n & 7) === 0;
    const want = viaView ? txn.unsafeGetView(table, key)?.slice() : txn.getWithCount(table, key)?.value;
    for (let i = 0; i < 2; i++) {
      // every other key's second read is a getInto(), at an odd offset of a reused buffer
      const got = i === 1 && (this.#n & 1) ? this.#getInto(txn, table, key, want) : txn.get(table, key);
      this.compared++;
      if (!sameBytes(got, want)) this.record(`${where}: read ${i + 1} of key ${hex(key)}`, want, got);
    }
    return want;
  }

  #buf = new Uint8Array(4096);
  #many = new Uint8Array(64 * 1024);
  #pos = new Int32Array(512);

  /**
   * Compares a batch: getMany() and getManyInto() (into a target that may be too
   * small for all of it, continued with `start`) against uncached reads of each key.
   */
  checkMany(txn: Txn, table: Table<"binary", "binary">, keys: Uint8Array[], where: string): void {
    const want = keys.map((k) => txn.getWithCount(table, k)?.value);
    const got = txn.getMany(table, keys);
    for (let i = 0; i < keys.length; i++) {
      this.compared++;
      if (!sameBytes(got[i], want[i])) this.record(`${where}: getMany #${i} of key ${hex(keys[i])}`, want[i], got[i]);
    }
    if (this.#pos.length < 2 * keys.length) this.#pos = new Int32Array(4 * keys.length);
    const pos = this.#pos;
    // a target of a random size between the largest value and all of them: it may fill up
    const largest = Math.max(0, ...want.map((v) => v?.length ?? 0));
    const total = want.reduce((s, v) => s + (v?.length ?? 0), 0);
    const size = largest + ((++this.#n * 7919) % (total - largest + 1));
    if (this.#many.length < size) this.#many = new Uint8Array(size * 2);
    const target = this.#many.subarray(0, Math.max(size, 1));
    for (let start = 0; start < keys.length;) {
      const end = txn.getManyInto(table, keys, target, pos, start);
      if (!(end > start)) throw new Error(`${where}: getManyInto made no progress at ${start} (returned ${end})`);
      for (let i = start; i < end; i++) {
        const len = pos[2 * i + 1];
        const v = len < 0 ? undefined : target.slice(pos[2 * i], pos[2 * i] + len);
        this.compared++;
        if (!sameBytes(v, want[i])) this.record(`${where}: getManyInto #${i} of key ${hex(keys[i])}`, want[i], v);
      }
      start = end;
    }
  }

  #getInto(txn: Txn, table: Table<"binary", "binary">, key: Uint8Array, want: Uint8Array | undefined) {
    const room = (want?.length ?? 0) + 3;
    if (this.#buf.length < room) this.#buf = new Uint8Array(room * 2);
    const n = txn.getInto(table, key, this.#buf, 3);
    return n === -1 ? undefined : this.#buf.slice(3, 3 + n);
  }

  record(what: string, want: Uint8Array | undefined, got: unknown): void {
    this.mismatches++;
    if (this.details.length < 12) {
      this.details.push(`${what}: uncached ${short(want)}, cached ${got instanceof Uint8Array ? short(got) : got}`);
    }
  }

  /** The assertion message: the seed to replay and the first differences. */
  message(extra = ""): string {
    return `${this.label}: ${this.mismatches} of ${this.compared} cached reads differ from the uncached read${extra}\n  ` +
      this.details.join("\n  ");
  }
}
