/**
 * Key and value encodings of a table: how JavaScript values become the bytes
 * libmdbx stores, and back. Encoding writes into a reusable buffer (or passes
 * a caller's Uint8Array through untouched), so a hot call allocates nothing.
 *
 * @module
 */
import { copyOut, decoder, encoder } from "./core.ts";
import { ErrorCode, MdbxError } from "./errors.ts";
import {
  isValueCodec,
  JsonCodec,
  MsgpackCodec,
  readOrderedInt64,
  type ValueCodec,
  writeOrderedInt64,
} from "./encodings.ts";
import {
  readOrderedDouble,
  readTupleKey,
  type Tuple,
  type TupleElement,
  writeOrderedDouble,
  writeTuple,
} from "./tuple.ts";

/**
 * How a table's keys are typed in JavaScript. "uint64" keys are numbers, exact
 * from 0 to 2^53-1 (larger ones are refused, not rounded); "bigint" keys cover
 * the full unsigned 64-bit range. "tuple" keys are arrays (the FoundationDB
 * tuple encoding, ordered element by element); "int64" and "float64" are
 * signed scalars in byte-ordered encodings (see docs/encodings.md).
 */
export type KeyKind = "binary" | "string" | "uint32" | "uint64" | "bigint" | "tuple" | "int64" | "float64";
/**
 * How a table's values are typed in JavaScript. "uint64" values are numbers
 * from 0 to 2^53-1, exactly. "msgpack" (msgpackr) and "json" store any
 * value they can encode, typed `unknown`; `msgpack<T>()`, `json<T>()` or a
 * `ValueCodec<T>` of your own type them `T`.
 */
export type ValueKind = "binary" | "string" | "uint32" | "uint64" | "msgpack" | "json" | ValueCodec<unknown>;

/** The JavaScript type of a key of kind K, as returned. */
export type KeyOf<K extends KeyKind> = K extends "binary" ? Uint8Array
  : K extends "string" ? string
  : K extends "bigint" | "int64" ? bigint
  : K extends "tuple" ? Tuple
  : number;
/** The JavaScript types accepted as a key of kind K. */
export type KeyInput<K extends KeyKind> = K extends "binary" | "string" ? Uint8Array | string
  : K extends "bigint" | "int64" ? bigint | number
  : K extends "tuple" ? readonly TupleElement[]
  : number;
/** The JavaScript types accepted as a range's `prefix` for keys of kind K: leading bytes, or leading tuple elements. */
export type PrefixInput<K extends KeyKind> = K extends "tuple" ? readonly TupleElement[] : Uint8Array | string;
/** The JavaScript type of a value of kind V, as returned. */
export type ValueOf<V extends ValueKind> = V extends ValueCodec<infer T> ? T
  : V extends "binary" ? Uint8Array
  : V extends "string" ? string
  : V extends "msgpack" | "json" ? unknown
  : number;
/** The JavaScript types accepted as a value of kind V. */
export type ValueInput<V extends ValueKind> = V extends ValueCodec<infer T> ? T
  : V extends "binary" | "string" ? Uint8Array | string
  : V extends "msgpack" | "json" ? unknown
  : number;

/** Every key kind, in the order messages list them. */
export const KEY_KINDS: readonly KeyKind[] = [
  "binary",
  "string",
  "uint32",
  "uint64",
  "bigint",
  "tuple",
  "int64",
  "float64",
];
/** Every value kind named by a string, in the order messages list them (a ValueCodec object is one too). */
export const VALUE_KINDS: readonly ValueKind[] = ["binary", "string", "uint32", "uint64", "msgpack", "json"];

/** 2^53-1: the largest integer a "uint64" kind returns exactly as a number. */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The stored size of a kind, or 0 when it has none (binary, string). */
export function kindSize(kind: KeyKind | ValueKind): number {
  return kind === "uint32"
    ? 4
    : kind === "uint64" || kind === "bigint" || kind === "int64" || kind === "float64"
    ? 8
    : 0;
}

/** The kinds that read `size`-byte items, for advice. */
function kindsOfSize(size: number, keys: boolean): string {
  if (size === 4) return '"uint32"';
  if (size === 8) return keys ? '"uint64" or "bigint"' : '"uint64"';
  return '"binary" or "string"';
}

/** Internal codes of the kinds, for one switch per encode/decode. */
const BINARY = 0, STRING = 1, U32 = 2, U64 = 3, BIG = 4, TUPLE = 5, I64 = 6, F64 = 7, MSGPACK = 8, JSON_ = 9, USER = 10;

function modeOf(kind: KeyKind | ValueKind): number {
  switch (kind) {
    case "binary":
      return BINARY;
    case "string":
      return STRING;
    case "uint32":
      return U32;
    case "uint64":
      return U64;
    case "bigint":
      return BIG;
    case "tuple":
      return TUPLE;
    case "int64":
      return I64;
    case "float64":
      return F64;
    case "msgpack":
      return MSGPACK;
    case "json":
      return JSON_;
  }
  if (kind instanceof MsgpackCodec) return MSGPACK;
  if (kind instanceof JsonCodec) return JSON_;
  if (isValueCodec(kind)) return USER;
  throw new TypeError(`unknown kind ${describe(kind)}`);
}

/** The msgpack codec of `values: "msgpack"` (the default options), shared by every such table. */
let plainMsgpack: MsgpackCodec | null = null;
const plainJson = new JsonCodec();

/** The printable name of a kind, for messages. */
export function kindName(kind: KeyKind | ValueKind): string {
  if (typeof kind === "string") return kind;
  if (kind instanceof MsgpackCodec) return "msgpack";
  if (kind instanceof JsonCodec) return "json";
  return "a ValueCodec";
}

/** Bytes of the version a versioned table stores before each value (see src/versions.ts). */
export const VERSION_BYTES = 8;

/** One encoder/decoder with its own scratch buffer. */
export class Codec {
  /** Bytes of the last encode; `buf` holds them from index 0. */
  len = 0;
  buf: Uint8Array;
  #dv: DataView;
  readonly #mode: number;
  /** The value codec of msgpack, json and user kinds. */
  readonly #vc: ValueCodec<unknown> | null;
  /** VERSION_BYTES for the values of a versioned table (the version is stamped by the write), else 0. */
  readonly ver: number;
  /** The tuple encoder's view of `buf` (it grows it). */
  readonly #sink: { buf: Uint8Array };

  /** `role` and `owner` name what is decoded in messages: "keys" of `table "t"`. */
  constructor(
    readonly kind: KeyKind | ValueKind,
    size = 4096,
    readonly role: "keys" | "values" = "values",
    readonly owner: { toString(): string } | null = null,
    versioned = false,
  ) {
    this.buf = new Uint8Array(size);
    this.#dv = new DataView(this.buf.buffer);
    this.#sink = { buf: this.buf };
    this.#mode = modeOf(kind);
    this.ver = versioned ? VERSION_BYTES : 0;
    this.#vc = this.#mode === MSGPACK
      ? (typeof kind === "string" ? (plainMsgpack ??= new MsgpackCodec()) : kind as ValueCodec<unknown>)
      : this.#mode === JSON_
      ? (typeof kind === "string" ? plainJson : kind as ValueCodec<unknown>)
      : this.#mode === USER
      ? kind as ValueCodec<unknown>
      : null;
  }

  /**
   * The error for a stored item whose size does not fit this kind: the table
   * was written with other kinds than the handle was opened with.
   */
  sizeMismatch(len: number): MdbxError {
    const what = this.role === "keys" ? "key" : "value";
    return new MdbxError(
      ErrorCode.INCOMPATIBLE,
      `${this.owner ?? "the table"} holds a ${len}-byte ${what}, which its ${this.role} kind "${
        kindName(this.kind)
      }" ` +
        `cannot read (it needs ${kindSize(this.kind) + this.ver} bytes): the table was written with other kinds; ` +
        `open it with ${this.role}: ${kindsOfSize(len - this.ver, this.role === "keys")}` +
        (this.ver ? " (and versioned as it was written)" : ""),
    );
  }

  /** Encodes `v` and returns the buffer to pass (its first `this.len` bytes count). */
  encode(v: unknown, what: string): Uint8Array {
    const at = this.ver;
    switch (this.#mode) {
      case BINARY:
      case STRING:
        if (v instanceof Uint8Array) {
          if (at === 0) {
            this.len = v.length;
            return v;
          }
          return this.#place(v);
        }
        if (typeof v === "string") return this.#utf8(v, at);
        throw new TypeError(`${this.#of()}${what} must be a Uint8Array or a string, got ${describe(v)}`);
      case U32:
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
          throw new TypeError(`${this.#of()}${what} must be an integer from 0 to 2^32-1, got ${describe(v)}`);
        }
        this.#dv.setUint32(at, v, true);
        this.len = at + 4;
        return this.buf;
      case U64:
      case BIG:
        if (typeof v === "number") {
          if (!Number.isSafeInteger(v) || v < 0) {
            throw new TypeError(
              this.#mode === U64
                ? `${this.#of()}${what} must be an integer from 0 to 2^53-1, got ${describe(v)}; ${this.#forBigints()}`
                : `${this.#of()}${what} must be an integer from 0 to 2^53-1 or a bigint, got ${describe(v)}`,
            );
          }
          this.#dv.setUint32(at, v % 0x1_0000_0000, true);
          this.#dv.setUint32(at + 4, Math.floor(v / 0x1_0000_0000), true);
        } else if (typeof v === "bigint") {
          if (v < 0n || v > 0xffff_ffff_ffff_ffffn) {
            throw new RangeError(`${this.#of()}${what} must fit in 64 unsigned bits, got ${v}n`);
          }
          if (this.#mode === U64 && v > MAX_SAFE) {
            // it would be stored exactly but read back as a rounded number
            throw new RangeError(
              `${this.#of()}${what} ${v}n is above 2^53-1, the largest integer a "uint64" ${this.#item()} returns exactly ` +
                `(as a number); ${this.#forBigints()}`,
            );
          }
          this.#dv.setBigUint64(at, v, true);
        } else {
          throw new TypeError(`${this.#of()}${what} must be a number or a bigint, got ${describe(v)}`);
        }
        this.len = at + 8;
        return this.buf;
      case TUPLE: {
        if (!Array.isArray(v)) {
          throw new TypeError(`${this.#of()}${what} must be an array (a tuple key), got ${describe(v)}`);
        }
        const sink = this.#sink;
        this.len = writeTuple(sink, 0, v, false, "", `${this.#of()}${what}`);
        if (sink.buf !== this.buf) this.#adopt(sink.buf);
        return this.buf;
      }
      case I64: {
        const err = writeOrderedInt64(this.buf, 0, v as number | bigint);
        if (err !== null) throw new RangeError(`${this.#of()}${what} ${err}, got ${describe(v)}`);
        this.len = 8;
        return this.buf;
      }
      case F64:
        if (typeof v !== "number") throw new TypeError(`${this.#of()}${what} must be a number, got ${describe(v)}`);
        if (v !== v) throw new RangeError(`${this.#of()}${what} is NaN, which equals nothing and cannot be a key`);
        writeOrderedDouble(this.buf, 0, v);
        this.len = 8;
        return this.buf;
      default: {
        if (v === undefined) {
          throw new TypeError(
            `${this.#of()}${what} is undefined, which get() uses for "absent"; store null (or delete the key)`,
          );
        }
        const b = this.#vc!.encode(v);
        if (!(b instanceof Uint8Array)) {
          throw new TypeError(`${this.#of()}the value codec's encode() returned ${describe(b)}, not a Uint8Array`);
        }
        if (at === 0) {
          this.len = b.length;
          return b;
        }
        return this.#place(b);
      }
    }
  }

  /** Copies `b` after the version's room. */
  #place(b: Uint8Array): Uint8Array {
    const at = this.ver;
    if (at + b.length > this.buf.length) this.#grow(at + b.length);
    this.buf.set(b, at);
    this.len = at + b.length;
    return this.buf;
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

  #utf8(s: string, at: number): Uint8Array {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (at + s.length * 3 > this.buf.length) this.#grow(at + s.length * 3);
    this.len = at + encoder.encodeInto(s, at === 0 ? this.buf : this.buf.subarray(at)).written;
    return this.buf;
  }

  #grow(n: number): void {
    let size = this.buf.length;
    while (size < n) size *= 2;
    this.#adopt(new Uint8Array(size));
  }

  #adopt(b: Uint8Array): void {
    this.buf = b;
    this.#sink.buf = b;
    this.#dv = new DataView(b.buffer);
  }

  /** Decodes `len` bytes of `src` at `off` into a fresh JavaScript value (a copy). */
  decode(src: Uint8Array, off: number, len: number): unknown {
    if (this.ver !== 0) {
      if (len < this.ver) throw this.#unversioned(len);
      off += this.ver;
      len -= this.ver;
    }
    switch (this.#mode) {
      case BINARY:
        return copyOut(src, off, len);
      case STRING:
        return decoder.decode(src.subarray(off, off + len));
      case U32:
        if (len !== 4) throw this.sizeMismatch(len + this.ver);
        return (src[off] | (src[off + 1] << 8) | (src[off + 2] << 16) | (src[off + 3] << 24)) >>> 0;
      case U64: {
        if (len !== 8) throw this.sizeMismatch(len + this.ver);
        const lo = (src[off] | (src[off + 1] << 8) | (src[off + 2] << 16) | (src[off + 3] << 24)) >>> 0;
        const hi = (src[off + 4] | (src[off + 5] << 8) | (src[off + 6] << 16) | (src[off + 7] << 24)) >>> 0;
        if (hi > 0x1f_ffff) throw this.#unsafe(src, off);
        return hi * 0x1_0000_0000 + lo;
      }
      case BIG: {
        if (len !== 8) throw this.sizeMismatch(len);
        return new DataView(src.buffer, src.byteOffset + off, 8).getBigUint64(0, true);
      }
      case TUPLE:
        return readTupleKey(src, off, len);
      case I64:
        if (len !== 8) throw this.sizeMismatch(len);
        return readOrderedInt64(src, off);
      case F64:
        if (len !== 8) throw this.sizeMismatch(len);
        return readOrderedDouble(src, off);
      case USER:
        return this.#vc!.decode(copyOut(src, off, len));
      case MSGPACK:
      case JSON_:
        // msgpackr (copyBuffers) and JSON.parse keep nothing of the bytes: a view of the read buffer is enough
        if (off === 0 && this.#vc instanceof MsgpackCodec) return this.#vc.decodeHead(src, len);
        if (this.#vc instanceof MsgpackCodec || this.#vc instanceof JsonCodec) {
          return this.#vc.decode(src.subarray(off, off + len));
        }
        return this.#vc!.decode(copyOut(src, off, len));
      default:
        return this.#vc!.decode(copyOut(src, off, len));
    }
  }

  /** A value of a versioned table too short to hold its version. */
  #unversioned(len: number): MdbxError {
    return new MdbxError(
      ErrorCode.INCOMPATIBLE,
      `${this.owner ?? "the table"} holds a ${len}-byte value, shorter than the ${this.ver}-byte version every ` +
        "value of a versioned table starts with: the table was not written with versioned: true; open it without",
    );
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
