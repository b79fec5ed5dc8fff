/**
 * Key and value encodings of a table: how JavaScript values become the bytes
 * libmdbx stores, and back. Encoding writes into a reusable buffer (or passes
 * a caller's Uint8Array through untouched), so a hot call allocates nothing.
 *
 * @module
 */
import { copyOut, decoder, encoder } from "./core.ts";
import { ErrorCode, MdbxError } from "./errors.ts";

/**
 * How a table's keys are typed in JavaScript. "uint64" keys are numbers, exact
 * from 0 to 2^53-1 (larger ones are refused, not rounded); "bigint" keys cover
 * the full unsigned 64-bit range.
 */
export type KeyKind = "binary" | "string" | "uint32" | "uint64" | "bigint";
/** How a table's values are typed in JavaScript. "uint64" values are numbers from 0 to 2^53-1, exactly. */
export type ValueKind = "binary" | "string" | "uint32" | "uint64";

/** The JavaScript type of a key of kind K, as returned. */
export type KeyOf<K extends KeyKind> = K extends "binary" ? Uint8Array
  : K extends "string" ? string
  : K extends "bigint" ? bigint
  : number;
/** The JavaScript types accepted as a key of kind K. */
export type KeyInput<K extends KeyKind> = K extends "binary" | "string" ? Uint8Array | string
  : K extends "bigint" ? bigint | number
  : number;
/** The JavaScript type of a value of kind V, as returned. */
export type ValueOf<V extends ValueKind> = V extends "binary" ? Uint8Array
  : V extends "string" ? string
  : number;
/** The JavaScript types accepted as a value of kind V. */
export type ValueInput<V extends ValueKind> = V extends "binary" | "string" ? Uint8Array | string : number;

/** Every key kind, in the order messages list them. */
export const KEY_KINDS: readonly KeyKind[] = ["binary", "string", "uint32", "uint64", "bigint"];
/** Every value kind, in the order messages list them. */
export const VALUE_KINDS: readonly ValueKind[] = ["binary", "string", "uint32", "uint64"];

/** 2^53-1: the largest integer a "uint64" kind returns exactly as a number. */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The stored size of a kind, or 0 when it has none (binary, string). */
export function kindSize(kind: KeyKind | ValueKind): number {
  return kind === "uint32" ? 4 : kind === "uint64" || kind === "bigint" ? 8 : 0;
}

/** The kinds that read `size`-byte items, for advice. */
function kindsOfSize(size: number, keys: boolean): string {
  if (size === 4) return '"uint32"';
  if (size === 8) return keys ? '"uint64" or "bigint"' : '"uint64"';
  return '"binary" or "string"';
}

/** One encoder/decoder with its own scratch buffer. */
export class Codec {
  /** Bytes of the last encode; `buf` holds them from index 0. */
  len = 0;
  buf: Uint8Array;
  #dv: DataView;

  /** `role` and `owner` name what is decoded in messages: "keys" of `table "t"`. */
  constructor(
    readonly kind: KeyKind | ValueKind,
    size = 4096,
    readonly role: "keys" | "values" = "values",
    readonly owner: { toString(): string } | null = null,
  ) {
    this.buf = new Uint8Array(size);
    this.#dv = new DataView(this.buf.buffer);
  }

  /**
   * The error for a stored item whose size does not fit this kind: the table
   * was written with other kinds than the handle was opened with.
   */
  sizeMismatch(len: number): MdbxError {
    const what = this.role === "keys" ? "key" : "value";
    return new MdbxError(
      ErrorCode.INCOMPATIBLE,
      `${this.owner ?? "the table"} holds a ${len}-byte ${what}, which its ${this.role} kind "${this.kind}" cannot ` +
        `read (it needs ${kindSize(this.kind)} bytes): the table was written with other kinds; open it with ` +
        `${this.role}: ${kindsOfSize(len, this.role === "keys")}`,
    );
  }

  /** Encodes `v` and returns the buffer to pass (its first `this.len` bytes count). */
  encode(v: unknown, what: string): Uint8Array {
    switch (this.kind) {
      case "binary":
      case "string":
        if (v instanceof Uint8Array) {
          this.len = v.length;
          return v;
        }
        if (typeof v === "string") return this.#utf8(v);
        throw new TypeError(`${this.#of()}${what} must be a Uint8Array or a string, got ${describe(v)}`);
      case "uint32":
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
          throw new TypeError(`${this.#of()}${what} must be an integer from 0 to 2^32-1, got ${describe(v)}`);
        }
        this.#dv.setUint32(0, v, true);
        this.len = 4;
        return this.buf;
      case "uint64":
      case "bigint":
        if (typeof v === "number") {
          if (!Number.isSafeInteger(v) || v < 0) {
            throw new TypeError(
              this.kind === "uint64"
                ? `${this.#of()}${what} must be an integer from 0 to 2^53-1, got ${describe(v)}; ${this.#forBigints()}`
                : `${this.#of()}${what} must be an integer from 0 to 2^53-1 or a bigint, got ${describe(v)}`,
            );
          }
          this.#dv.setUint32(0, v % 0x1_0000_0000, true);
          this.#dv.setUint32(4, Math.floor(v / 0x1_0000_0000), true);
        } else if (typeof v === "bigint") {
          if (v < 0n || v > 0xffff_ffff_ffff_ffffn) {
            throw new RangeError(`${this.#of()}${what} must fit in 64 unsigned bits, got ${v}n`);
          }
          if (this.kind === "uint64" && v > MAX_SAFE) {
            // it would be stored exactly but read back as a rounded number
            throw new RangeError(
              `${this.#of()}${what} ${v}n is above 2^53-1, the largest integer a "uint64" ${this.#item()} returns exactly ` +
                `(as a number); ${this.#forBigints()}`,
            );
          }
          this.#dv.setBigUint64(0, v, true);
        } else {
          throw new TypeError(`${this.#of()}${what} must be a number or a bigint, got ${describe(v)}`);
        }
        this.len = 8;
        return this.buf;
    }
  }

  /** "table \"t\": ", the prefix that names the table in messages. */
  #of(): string {
    return this.owner === null ? "" : `${this.owner}: `;
  }

  #item(): string {
    return this.role === "keys" ? "key" : "value";
  }

  #forBigints(): string {
    return this.role === "keys"
      ? 'open the table with keys: "bigint" for the full 64-bit range'
      : 'store such values in a "binary" table as 8 bytes (DataView.setBigUint64 / getBigUint64, little-endian)';
  }

  /** A stored uint64 above 2^53-1: a number would round it, so the read fails instead. */
  #unsafe(src: Uint8Array, off: number): MdbxError {
    const v = new DataView(src.buffer, src.byteOffset + off, 8).getBigUint64(0, true);
    return new MdbxError(
      ErrorCode.INCOMPATIBLE,
      `${this.owner ?? "the table"} holds the ${this.#item()} ${v}, above 2^53-1: a "uint64" ${this.#item()} ` +
        `(a number) cannot hold it exactly; ${this.#forBigints()}`,
    );
  }

  #utf8(s: string): Uint8Array {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (s.length * 3 > this.buf.length) this.#grow(s.length * 3);
    this.len = encoder.encodeInto(s, this.buf).written;
    return this.buf;
  }

  #grow(n: number): void {
    let size = this.buf.length;
    while (size < n) size *= 2;
    this.buf = new Uint8Array(size);
    this.#dv = new DataView(this.buf.buffer);
  }

  /** Decodes `len` bytes of `src` at `off` into a fresh JavaScript value (a copy). */
  decode(src: Uint8Array, off: number, len: number): unknown {
    switch (this.kind) {
      case "binary":
        return copyOut(src, off, len);
      case "string":
        return decoder.decode(src.subarray(off, off + len));
      case "uint32":
        if (len !== 4) throw this.sizeMismatch(len);
        return (src[off] | (src[off + 1] << 8) | (src[off + 2] << 16) | (src[off + 3] << 24)) >>> 0;
      case "uint64": {
        if (len !== 8) throw this.sizeMismatch(len);
        const lo = (src[off] | (src[off + 1] << 8) | (src[off + 2] << 16) | (src[off + 3] << 24)) >>> 0;
        const hi = (src[off + 4] | (src[off + 5] << 8) | (src[off + 6] << 16) | (src[off + 7] << 24)) >>> 0;
        if (hi > 0x1f_ffff) throw this.#unsafe(src, off);
        return hi * 0x1_0000_0000 + lo;
      }
      case "bigint": {
        if (len !== 8) throw this.sizeMismatch(len);
        return new DataView(src.buffer, src.byteOffset + off, 8).getBigUint64(0, true);
      }
    }
  }
}

/** A short description of a value for error messages: "the number 1.5", "an object", "a Map", "undefined". */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "string":
      return v.length > 40 ? `a string of ${v.length} characters` : `the string ${JSON.stringify(v)}`;
    case "number":
      return `the number ${v}`;
    case "bigint":
      return `the bigint ${v}n`;
    case "boolean":
      return String(v);
    case "symbol":
      return "a symbol";
    case "function":
      return "a function";
  }
  const name = (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name;
  if (!name || name === "Object") return "an object";
  return `${/^[AEIO]/.test(name) ? "an" : "a"} ${name}`;
}

/** The largest value of a C uint32_t. */
export const U32_MAX = 0xffffffff;

/**
 * A number from user input that goes to the library as a C uint32_t, checked
 * before the call: Deno's FFI refuses anything else with a bare "Invalid FFI
 * u32 type" TypeError, and Bun's wraps it around, so both must get this
 * RangeError naming the parameter (`what`) instead.
 */
export function checkU32(v: unknown, what: string, unit = ""): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > U32_MAX) {
    throw new RangeError(`${what} must be an integer from 0 to ${U32_MAX}${unit}; got ${describe(v)}`);
  }
  return v;
}

/** A count limit from user input: a whole number from 0, or Infinity (no limit). */
export function checkLimit(v: unknown, what: string): number {
  if (v === Infinity) return v;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new RangeError(`${what} must be a whole number from 0 (or Infinity: no limit); got ${describe(v)}`);
  }
  return v;
}

/** libmdbx's default key order (cmp_lexical): memcmp over the shorter length, then the length. */
export function lexicalCompare(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** A key interval; a null bound is open (the start or end of the table). */
export interface Interval {
  lo: Uint8Array | null;
  loIncl: boolean;
  hi: Uint8Array | null;
  hiIncl: boolean;
}

/**
 * The keys that start with `p` and lie within `b`, as one interval of the
 * lexical order: [p, prefixEnd(p)) intersected with `b`. Null when nothing can
 * be in both (a page past the end of the prefix).
 */
export function prefixInterval(p: Uint8Array, b: Interval): Interval | null {
  let lo = p, loIncl = true, hi = prefixEnd(p), hiIncl = false;
  if (b.lo !== null) {
    const c = lexicalCompare(b.lo, lo);
    if (c > 0 || (c === 0 && !b.loIncl)) {
      lo = b.lo;
      loIncl = b.loIncl;
    }
  }
  if (b.hi !== null) {
    const c = hi === null ? -1 : lexicalCompare(b.hi, hi);
    if (c < 0 || (c === 0 && !b.hiIncl)) {
      hi = b.hi;
      hiIncl = b.hiIncl;
    }
  }
  if (hi !== null) {
    const c = lexicalCompare(lo, hi);
    if (c > 0 || (c === 0 && !(loIncl && hiIncl))) return null;
  }
  return { lo, loIncl, hi, hiIncl };
}

/** The smallest key greater than every key that starts with `p`, or null if none (all 0xff). */
export function prefixEnd(p: Uint8Array): Uint8Array | null {
  let i = p.length;
  while (i > 0 && p[i - 1] === 0xff) i--;
  if (i === 0) return null;
  const s = p.slice(0, i);
  s[i - 1]++;
  return s;
}
