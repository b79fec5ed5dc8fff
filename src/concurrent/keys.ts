/**
 * Key bytes in the order of a table, map keys for them, key intervals, and the
 * digest of a range read.
 *
 * @module
 */
import { DbFlags } from "../constants.ts";
import { type Interval, lexicalCompare } from "../codec.ts";
export { type Interval, prefixEnd, prefixInterval } from "../codec.ts";

/** Compares two encoded keys in a table's order: negative, zero or positive. */
export type Cmp = (a: Uint8Array, b: Uint8Array) => number;

/**
 * libmdbx's cmp_reverse (MDBX_REVERSEKEY): bytes from the last to the first,
 * then the length. Integer keys are little-endian words of one size, so the
 * same comparison orders them numerically.
 */
function reverse(a: Uint8Array, b: Uint8Array): number {
  let i = a.length, j = b.length;
  for (let n = i < j ? i : j; n > 0; n--) {
    const d = a[--i] - b[--j];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** The key order of a table with these flags (plain tables only). */
export function comparator(flags: number): Cmp {
  return flags & (DbFlags.REVERSEKEY | DbFlags.INTEGERKEY) ? reverse : lexicalCompare;
}

/** A string that identifies the key bytes (one char per byte), for Map keys. */
export function keyId(k: Uint8Array): string {
  const n = k.length;
  if (n <= 32) {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(k[i]);
    return s;
  }
  let s = "";
  for (let i = 0; i < n; i += 4096) {
    s += String.fromCharCode.apply(null, k.subarray(i, Math.min(n, i + 4096)) as unknown as number[]);
  }
  return s;
}

/** Room of one slab of `keep()`, and the longest copy it serves from a slab. */
const SLAB = 16384, SLAB_MAX = 512;
let slab = new Uint8Array(0), slabAt = 0;

/**
 * A private copy of `src[0, len)` for a transaction to keep (key and value
 * bytes of its read set and write buffer). Small copies are views into a
 * shared slab, never reused: a new ArrayBuffer costs 0.2–0.4 µs in Deno, a
 * view of one some 25 ns. Such a view never reaches a caller (what callers
 * get is decoded, and binary data is copied by the codec), so nothing can
 * transfer or detach a slab; a slab is freed once no copy in it is alive.
 */
export function keep(src: Uint8Array, len: number): Uint8Array {
  if (len > SLAB_MAX) return src.slice(0, len);
  if (slabAt + len > slab.length) {
    slab = new Uint8Array(SLAB);
    slabAt = 0;
  }
  const b = slab.subarray(slabAt, slabAt += len);
  for (let i = 0; i < len; i++) b[i] = src[i];
  return b;
}

/** True when both are absent or hold the same bytes. */
export function sameBytes(a: Uint8Array | undefined | null, b: Uint8Array | undefined | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True if `k` lies in the interval. */
export function contains(cmp: Cmp, iv: Interval, k: Uint8Array): boolean {
  if (iv.lo !== null) {
    const c = cmp(k, iv.lo);
    if (c < 0 || (c === 0 && !iv.loIncl)) return false;
  }
  if (iv.hi !== null) {
    const c = cmp(k, iv.hi);
    if (c > 0 || (c === 0 && !iv.hiIncl)) return false;
  }
  return true;
}

/**
 * Count and two independent 32-bit hashes of the entries a range read passed
 * over, in order: a range read is valid at commit if the same range holds the
 * same digest then. Different contents give the same digest with a chance of
 * about 2^-64.
 */
export class Digest {
  count = 0;
  h1 = 0x811c9dc5;
  h2 = 0x6a09e667;

  /** Adds one entry (key and value bytes). */
  add(k: Uint8Array, v: Uint8Array): void {
    let h1 = this.h1, h2 = this.h2;
    h1 = Math.imul(h1 ^ k.length, 0x01000193);
    h2 = Math.imul(h2 ^ k.length, 0x5bd1e995);
    for (let i = 0; i < k.length; i++) {
      h1 = Math.imul(h1 ^ k[i], 0x01000193);
      h2 = Math.imul(h2 ^ k[i], 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    h1 = Math.imul(h1 ^ (v.length + 0x9e37), 0x01000193);
    h2 = Math.imul(h2 ^ (v.length + 0x79b9), 0x5bd1e995);
    for (let i = 0; i < v.length; i++) {
      h1 = Math.imul(h1 ^ v[i], 0x01000193);
      h2 = Math.imul(h2 ^ v[i], 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    this.h1 = h1;
    this.h2 = h2;
    this.count++;
  }

  /** True if both digests saw the same entries (up to the hash's collisions). */
  equals(o: Digest): boolean {
    return this.count === o.count && this.h1 === o.h1 && this.h2 === o.h2;
  }
}
