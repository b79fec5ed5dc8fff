/**
 * Ordered tuple keys: the FoundationDB tuple layer encoding (design/tuple.md
 * of the FoundationDB repository), implemented from its specification.
 *
 * A tuple is an array of elements, each written as a type code and a body;
 * the bytes of a tuple are the concatenation of its elements' encodings, so
 * comparing two encoded tuples byte by byte (libmdbx's default key order)
 * compares them element by element, and the encoding of a tuple is a byte
 * prefix of the encoding of every longer tuple that starts with the same
 * elements (which makes `prefix: [a, b]` select them).
 *
 * | element            | type code          | body                                                   |
 * | ------------------ | ------------------ | ------------------------------------------------------ |
 * | `null`             | 0x00               | none                                                   |
 * | `Uint8Array`       | 0x01               | the bytes, 0x00 escaped as 0x00 0xff, then 0x00         |
 * | `string`           | 0x02               | UTF-8, escaped and terminated as bytes                  |
 * | nested array       | 0x05               | its elements (a null inside is 0x00 0xff), then 0x00    |
 * | `bigint`           | 0x0b–0x1d          | big-endian magnitude (negatives: one's complement)      |
 * | `number`           | 0x21               | IEEE double, big-endian, sign-adjusted for byte order   |
 * | `false` / `true`   | 0x26 / 0x27        | none                                                   |
 *
 * JavaScript numbers are always written as doubles and bigints always as
 * integers, so a value reads back with the type it was written with and
 * numbers keep their numeric order (1.5 < 2). Types order by their code:
 * null < bytes < string < nested < bigint < number < false < true; all bigints
 * sort before all numbers, whatever their values. `-0` is written as `0`; NaN
 * is refused (it equals nothing, so it cannot name a key). Reading also
 * accepts FoundationDB's 32-bit float (0x20, as a number) written by other
 * software.
 *
 * @module
 */
import { decoder, encoder } from "./core.ts";

/** One element of a tuple key. */
export type TupleElement = string | number | bigint | boolean | Uint8Array | null | readonly TupleElement[];
/** A tuple key as returned: its elements, nested tuples as arrays. */
export type Tuple = TupleElement[];

/** A growable output buffer. */
export interface Sink {
  buf: Uint8Array;
}

const NULL = 0x00, BYTES = 0x01, STRING = 0x02, NESTED = 0x05, INT_ZERO = 0x14, NEG_BIG = 0x0b, POS_BIG = 0x1d;
const FLOAT = 0x20, DOUBLE = 0x21, FALSE = 0x26, TRUE = 0x27;

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function grow(s: Sink, need: number): Uint8Array {
  let size = s.buf.length || 64;
  while (size < need) size *= 2;
  const nb = new Uint8Array(size);
  nb.set(s.buf);
  return s.buf = nb;
}

/** A TypeError naming the element that cannot be encoded. */
function badElement(v: unknown, path: string, what: string): TypeError {
  const d = v === undefined
    ? "undefined"
    : typeof v === "object"
    ? (Object.getPrototypeOf(v)?.constructor?.name ?? "an object")
    : `${typeof v} ${String(v)}`;
  return new TypeError(
    `${what}: element ${path} is ${d}; a tuple element must be a string, number, bigint, boolean, Uint8Array, null ` +
      "or an array of those",
  );
}

/**
 * Writes a double as its order-preserving 8 bytes at `p`: big-endian, all
 * bits flipped for a negative number, only the sign bit for a positive one.
 * Also the body of the "float64" key kind.
 */
export function writeOrderedDouble(b: Uint8Array, p: number, v: number): void {
  f64[0] = v === 0 ? 0 : v; // -0 is written as 0
  if (LITTLE) {
    for (let i = 0; i < 8; i++) b[p + i] = f64b[7 - i];
  } else {
    for (let i = 0; i < 8; i++) b[p + i] = f64b[i];
  }
  if (b[p] & 0x80) { for (let i = 0; i < 8; i++) b[p + i] ^= 0xff; }
  else b[p] ^= 0x80;
}

/** Reads 8 bytes written by `writeOrderedDouble`. */
export function readOrderedDouble(b: Uint8Array, p: number): number {
  const neg = (b[p] & 0x80) === 0;
  for (let i = 0; i < 8; i++) {
    let x = b[p + i];
    if (neg) x ^= 0xff;
    else if (i === 0) x ^= 0x80;
    f64b[LITTLE ? 7 - i : i] = x;
  }
  return f64[0];
}

/** Writes `bytes` escaped (0x00 as 0x00 0xff) and the 0x00 terminator at `p`; returns the end. */
function writeEscaped(s: Sink, p: number, bytes: Uint8Array, from: number, to: number): number {
  let b = s.buf;
  if (p + 2 * (to - from) + 1 > b.length) b = grow(s, p + 2 * (to - from) + 1);
  for (let i = from; i < to; i++) {
    const x = bytes[i];
    b[p++] = x;
    if (x === 0) b[p++] = 0xff;
  }
  b[p++] = 0;
  return p;
}

function writeString(s: Sink, p: number, str: string): number {
  const n = str.length;
  let b = s.buf;
  if (p + 3 * n + 2 > b.length) b = grow(s, p + 3 * n + 2);
  b[p++] = STRING;
  // ASCII without NUL byte by byte (the usual key part); anything else through the UTF-8 encoder
  let i = 0;
  for (; i < n; i++) {
    const c = str.charCodeAt(i);
    if (c >= 0x80 || c === 0) break;
    b[p + i] = c;
  }
  if (i === n) {
    b[p + n] = 0;
    return p + n + 1;
  }
  const start = p;
  p += i;
  p += encoder.encodeInto(i === 0 ? str : str.slice(i), b.subarray(p)).written;
  // escape NUL bytes (a "\0" in the string), rare: done in place from the end
  let zeros = 0;
  for (let j = start; j < p; j++) if (b[j] === 0) zeros++;
  if (zeros > 0) {
    if (p + zeros + 1 > b.length) b = grow(s, p + zeros + 1);
    let w = p + zeros;
    for (let j = p - 1; j >= start; j--) {
      const x = b[j];
      if (x === 0) b[--w] = 0xff;
      b[--w] = x;
    }
    p += zeros;
  }
  b[p++] = 0;
  return p;
}

/** The bytes of a non-negative bigint `m`, big-endian, in `len` bytes (one's complement when `flip`). */
function writeMagnitude(b: Uint8Array, p: number, m: bigint, len: number, flip: boolean): void {
  for (let i = len - 1; i >= 0; i--) {
    const x = Number(m & 0xffn);
    b[p + i] = flip ? x ^ 0xff : x;
    m >>= 8n;
  }
}

function byteLength(m: bigint): number {
  let n = 0;
  while (m > 0n) {
    n++;
    m >>= 8n;
  }
  return n;
}

function writeBigint(s: Sink, p: number, v: bigint, path: string, what: string): number {
  if (v === 0n) {
    if (p + 1 > s.buf.length) grow(s, p + 1);
    s.buf[p] = INT_ZERO;
    return p + 1;
  }
  const neg = v < 0n, m = neg ? -v : v;
  const len = byteLength(m);
  if (len > 255) throw new RangeError(`${what}: element ${path} is a bigint of ${len} bytes; at most 255 fit`);
  let b = s.buf;
  if (p + len + 2 > b.length) b = grow(s, p + len + 2);
  if (len <= 8) {
    b[p++] = neg ? INT_ZERO - len : INT_ZERO + len;
  } else {
    b[p++] = neg ? NEG_BIG : POS_BIG;
    b[p++] = neg ? len ^ 0xff : len;
  }
  writeMagnitude(b, p, m, len, neg);
  return p + len;
}

/**
 * Encodes the elements of `parts` at `p` of `s.buf` (grown as needed) and
 * returns the end. `nested` writes a null as 0x00 0xff (inside a nested tuple).
 */
export function writeTuple(
  s: Sink,
  p: number,
  parts: readonly unknown[],
  nested: boolean,
  path: string,
  what: string,
): number {
  for (let i = 0; i < parts.length; i++) {
    const v = parts[i];
    if (p + 10 > s.buf.length) grow(s, p + 10);
    const b = s.buf;
    switch (typeof v) {
      case "string":
        p = writeString(s, p, v);
        break;
      case "number":
        if (v !== v) {
          throw new RangeError(`${what}: element ${path}${i} is NaN, which equals nothing and cannot be part of a key`);
        }
        b[p] = DOUBLE;
        writeOrderedDouble(b, p + 1, v);
        p += 9;
        break;
      case "bigint":
        p = writeBigint(s, p, v, path + i, what);
        break;
      case "boolean":
        b[p++] = v ? TRUE : FALSE;
        break;
      case "object":
        if (v === null) {
          b[p++] = NULL;
          if (nested) b[p++] = 0xff;
        } else if (v instanceof Uint8Array) {
          b[p] = BYTES;
          p = writeEscaped(s, p + 1, v, 0, v.length);
        } else if (Array.isArray(v)) {
          b[p] = NESTED;
          p = writeTuple(s, p + 1, v, true, `${path}${i}.`, what);
          if (p + 1 > s.buf.length) grow(s, p + 1);
          s.buf[p++] = 0;
        } else throw badElement(v, path + i, what);
        break;
      default:
        throw badElement(v, path + i, what);
    }
  }
  return p;
}

/** Where the escaped body starting at `p` ends (its 0x00 terminator), and whether it holds escapes. */
function terminator(b: Uint8Array, p: number, end: number): number {
  for (;;) {
    while (p < end && b[p] !== 0) p++;
    if (p >= end) throw corrupt("an unterminated string or byte string");
    if (p + 1 < end && b[p + 1] === 0xff) p += 2;
    else return p;
  }
}

function unescape(b: Uint8Array, from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  let n = 0;
  for (let i = from; i < to; i++) {
    out[n++] = b[i];
    if (b[i] === 0) i++; // the 0xff after an escaped NUL
  }
  return n === out.length ? out : out.slice(0, n);
}

function corrupt(what: string): TypeError {
  return new TypeError(
    `a tuple key holds ${what}: it was not written as a tuple (open the table with its own keys kind)`,
  );
}

let pos = 0;

function readString(b: Uint8Array, p: number, end: number): string {
  // short ASCII without NUL (the usual key part): built as it is scanned, ending at its terminator
  let s = "";
  let i = p;
  for (const stop = Math.min(end, p + 48); i < stop; i++) {
    const c = b[i];
    if (c === 0 || c >= 0x80) break;
    s += String.fromCharCode(c);
  }
  if (i < end && b[i] === 0 && !(i + 1 < end && b[i + 1] === 0xff)) {
    pos = i + 1;
    return s;
  }
  const t = terminator(b, p, end);
  pos = t + 1;
  for (let j = p; j < t; j++) if (b[j] === 0) return decoder.decode(unescape(b, p, t));
  return decoder.decode(b.subarray(p, t));
}

function readMagnitude(b: Uint8Array, p: number, len: number, flip: boolean): bigint {
  if (len <= 6) {
    let x = 0;
    for (let i = 0; i < len; i++) x = x * 256 + (flip ? b[p + i] ^ 0xff : b[p + i]);
    return BigInt(x);
  }
  let m = 0n;
  for (let i = 0; i < len; i++) m = (m << 8n) | BigInt(flip ? b[p + i] ^ 0xff : b[p + i]);
  return m;
}

/** Reads elements from `p` up to `end` (or, nested, up to the nested tuple's terminator). Leaves `pos` after. */
function readTuple(b: Uint8Array, p: number, end: number, nested: boolean): Tuple {
  const out: Tuple = [];
  while (p < end) {
    const code = b[p++];
    if (code === NULL) {
      if (!nested) {
        out.push(null);
        continue;
      }
      if (p < end && b[p] === 0xff) {
        out.push(null);
        p++;
        continue;
      }
      pos = p;
      return out; // the nested tuple's terminator
    }
    if (code === BYTES) {
      const t = terminator(b, p, end);
      out.push(unescape(b, p, t));
      p = t + 1;
    } else if (code === STRING) {
      out.push(readString(b, p, end));
      p = pos;
    } else if (code === NESTED) {
      out.push(readTuple(b, p, end, true));
      p = pos;
    } else if (code >= 0x0c && code <= 0x1c) {
      const len = code > INT_ZERO ? code - INT_ZERO : INT_ZERO - code;
      if (p + len > end) throw corrupt("a truncated integer");
      const m = readMagnitude(b, p, len, code < INT_ZERO);
      out.push(code < INT_ZERO ? -m : m);
      p += len;
    } else if (code === POS_BIG || code === NEG_BIG) {
      if (p >= end) throw corrupt("a truncated integer");
      const len = code === POS_BIG ? b[p] : b[p] ^ 0xff;
      if (p + 1 + len > end) throw corrupt("a truncated integer");
      const m = readMagnitude(b, p + 1, len, code === NEG_BIG);
      out.push(code === NEG_BIG ? -m : m);
      p += 1 + len;
    } else if (code === DOUBLE) {
      if (p + 8 > end) throw corrupt("a truncated double");
      out.push(readOrderedDouble(b, p));
      p += 8;
    } else if (code === FLOAT) {
      if (p + 4 > end) throw corrupt("a truncated float");
      const neg = (b[p] & 0x80) === 0;
      for (let i = 0; i < 4; i++) {
        let x = b[p + i];
        if (neg) x ^= 0xff;
        else if (i === 0) x ^= 0x80;
        f32b[LITTLE ? 3 - i : i] = x;
      }
      out.push(f32[0]);
      p += 4;
    } else if (code === FALSE || code === TRUE) {
      out.push(code === TRUE);
    } else {
      throw corrupt(`the type code 0x${code.toString(16).padStart(2, "0")}, which turbomdbx does not read`);
    }
  }
  if (nested) throw corrupt("an unterminated nested tuple");
  pos = p;
  return out;
}

/** Decodes the tuple in `b[off .. off + len)`. */
export function readTupleKey(b: Uint8Array, off: number, len: number): Tuple {
  return readTuple(b, off, off + len, false);
}

const packSink: Sink = { buf: new Uint8Array(256) };

/**
 * The bytes of a tuple key (a fresh copy): what a `keys: "tuple"` table
 * stores for `parts`. Useful to know where an element lies in the key, e.g.
 * `follow()`'s `at`: `packTuple([src, OUT, "follows"]).length` is where the
 * next element starts in every key that begins with those three.
 */
export function packTuple(parts: readonly TupleElement[]): Uint8Array {
  if (!Array.isArray(parts)) throw new TypeError("packTuple: parts must be an array");
  const n = writeTuple(packSink, 0, parts, false, "", "packTuple");
  return packSink.buf.slice(0, n);
}

/** The elements of a tuple key's bytes (the inverse of `packTuple`). */
export function unpackTuple(bytes: Uint8Array): Tuple {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("unpackTuple: bytes must be a Uint8Array");
  return readTupleKey(bytes, 0, bytes.length);
}
