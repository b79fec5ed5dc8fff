/**
 * Value encodings: msgpack (through msgpackr), JSON, and codecs of the
 * user's own. A table's `values` option picks one; `Table<K, V>` carries the
 * JavaScript type it decodes to. See docs/encodings.md.
 *
 * @module
 */
import { createRequire } from "node:module";
import { decoder, encoder } from "./core.ts";

type Msgpackr = typeof import("msgpackr");
type Packr = InstanceType<Msgpackr["Packr"]>;
type Unpackr = InstanceType<Msgpackr["Unpackr"]>;

/**
 * msgpackr, loaded once: through the import map / node_modules resolution of
 * an ESM import where the importing program has one (Bun, npm, Deno with
 * turbomdbx's deno.json, JSR), else (Deno running a script outside this
 * package's folder, which sees no import map) from the node_modules folder
 * next to turbomdbx's sources.
 */
const msgpackr: Msgpackr | null = await import("msgpackr").then((m) => m as Msgpackr, () => null) ??
  (() => {
    try {
      return createRequire(import.meta.url)("msgpackr") as Msgpackr;
    } catch {
      return null;
    }
  })();

function loadMsgpackr(): Msgpackr {
  if (msgpackr === null) {
    throw new Error(
      "msgpack values need the npm package msgpackr, which could not be loaded: install it (npm install msgpackr), " +
        'or, on Deno, map it in your deno.json: "imports": { "msgpackr": "npm:msgpackr@^1.12.1" }',
    );
  }
  return msgpackr;
}

/**
 * A value codec of your own: `encode` turns a value into the bytes stored,
 * `decode` turns stored bytes back into a value. `decode` gets a fresh copy it
 * may keep. Pass it as a table's `values` option; the table's values are then
 * typed `T`.
 */
export interface ValueCodec<T> {
  /** The bytes to store for `value`. */
  encode(value: T): Uint8Array;
  /** The value of stored `bytes` (a copy the codec may keep). */
  decode(bytes: Uint8Array): T;
}

/** Options of `msgpack()`. */
export interface MsgpackOptions {
  /**
   * msgpackr's record extension: objects are written as a list of their keys
   * (a "structure") and their values. Without `structures`, each value
   * carries the structures it uses (self-contained: any process decodes it).
   */
  records?: boolean;
  /**
   * Structures shared by every value of the table (implies `records`): each
   * an array of property names, e.g. `[["id", "name", "age"]]`. An object
   * with exactly these keys in this order is written as a one-byte reference
   * and its values, which makes values smaller and decoding faster. The list
   * is fixed for the handle (turbomdbx never adds to it, so nothing is shared
   * through memory): every process that opens the table must pass the same
   * list. Appending new structures at the end is safe; reordering, changing or
   * removing one makes values written before decode with the wrong property
   * names. Objects of other shapes are written self-contained.
   */
  structures?: readonly (readonly string[])[];
}

/** A msgpack codec backed by msgpackr (see `msgpack()`). */
export class MsgpackCodec<T = unknown> implements ValueCodec<T> {
  /** The options it was made with. */
  readonly options: Readonly<MsgpackOptions>;
  readonly #packr: Packr;
  readonly #unpackr: Unpackr;

  /** Use `msgpack()`. */
  constructor(options: MsgpackOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("msgpack(options): options must be an object like { records: true }");
    }
    const structures = options.structures;
    if (structures !== undefined) {
      if (
        !Array.isArray(structures) ||
        !structures.every((s) => Array.isArray(s) && s.every((k) => typeof k === "string"))
      ) {
        throw new TypeError(
          'msgpack({ structures }): structures must be an array of arrays of property names, e.g. [["id", "name"]]',
        );
      }
      if (structures.length > 8160) throw new RangeError("msgpack({ structures }): at most 8160 structures");
    }
    this.options = Object.freeze({ ...options });
    const records = !!options.records || structures !== undefined;
    const { Packr, Unpackr } = loadMsgpackr();
    // copyBuffers: a decoded binary must not be a view of turbomdbx's scratch buffer, which the next read reuses
    if (!records) {
      this.#packr = new Packr({ useRecords: false });
      this.#unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
    } else {
      // a fixed list: maxSharedStructures its length, so msgpackr never adds a shared structure in memory only
      const shared = structures ? structures.map((s) => [...s]) : undefined;
      const n = shared?.length ?? 0;
      this.#packr = new Packr({ useRecords: true, structures: shared, maxSharedStructures: n });
      this.#unpackr = new Unpackr({
        useRecords: true,
        structures: shared ? shared.map((s) => [...s]) : undefined,
        maxSharedStructures: n,
        copyBuffers: true,
      });
    }
  }

  /** The msgpack bytes of `value` (a view of msgpackr's buffer, valid until the next encode). */
  encode(value: T): Uint8Array {
    return this.#packr.pack(value);
  }

  /** The value of msgpack `bytes`. */
  decode(bytes: Uint8Array): T {
    return this.#unpackr.unpack(bytes) as T;
  }

  /**
   * @internal The value of the msgpack bytes `src[0 .. len)`: turbomdbx's read
   * buffer, read in place. msgpackr caches a DataView on the buffer it reads,
   * so one long-lived buffer costs no DataView per read, where a fresh
   * subarray would.
   */
  decodeHead(src: Uint8Array, len: number): T {
    return this.#unpackr.unpack(src, len) as T;
  }
}

/** A JSON codec: UTF-8 JSON text (see `json()`). */
export class JsonCodec<T = unknown> implements ValueCodec<T> {
  /** The UTF-8 bytes of `JSON.stringify(value)`. */
  encode(value: T): Uint8Array {
    const s = JSON.stringify(value);
    if (s === undefined) {
      throw new TypeError(`JSON cannot encode ${typeof value === "function" ? "a function" : String(value)}`);
    }
    return encoder.encode(s);
  }

  /** `JSON.parse` of the UTF-8 text. */
  decode(bytes: Uint8Array): T {
    return JSON.parse(decoder.decode(bytes)) as T;
  }
}

/**
 * A msgpack value codec typed `T`: `env.table("users", { values: msgpack<User>() })`
 * makes `txn.get(users, k)` a `User | undefined`. `values: "msgpack"` is the
 * same encoding typed `unknown`. Options: `records` and `structures` (see
 * MsgpackOptions). Encoding and decoding are msgpackr's.
 */
export function msgpack<T = unknown>(options: MsgpackOptions = {}): MsgpackCodec<T> {
  return new MsgpackCodec<T>(options);
}

/** A JSON value codec typed `T` (`values: "json"` is the same, typed `unknown`). */
export function json<T = unknown>(): JsonCodec<T> {
  return new JsonCodec<T>();
}

/** True for an object that can serve as a value codec. */
export function isValueCodec(v: unknown): v is ValueCodec<unknown> {
  return v !== null && typeof v === "object" && typeof (v as ValueCodec<unknown>).encode === "function" &&
    typeof (v as ValueCodec<unknown>).decode === "function";
}

const I64_MIN = -(2n ** 63n), I64_MAX = 2n ** 63n - 1n;

/**
 * Writes a signed 64-bit integer as 8 order-preserving bytes at `p`:
 * big-endian two's complement with the sign bit flipped, so byte order is
 * numeric order. The body of the "int64" key kind. Returns an error message,
 * or null when written.
 */
export function writeOrderedInt64(b: Uint8Array, p: number, v: number | bigint): string | null {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) return "must be an integer from -(2^53-1) to 2^53-1, or a bigint";
    // hi and lo 32-bit words of the two's complement, then the sign bit flipped
    const hi = Math.floor(v / 0x1_0000_0000), lo = v - hi * 0x1_0000_0000;
    const h = (hi >>> 0) ^ 0x8000_0000;
    b[p] = h >>> 24;
    b[p + 1] = h >>> 16;
    b[p + 2] = h >>> 8;
    b[p + 3] = h;
    b[p + 4] = lo >>> 24;
    b[p + 5] = lo >>> 16;
    b[p + 6] = lo >>> 8;
    b[p + 7] = lo;
    return null;
  }
  if (typeof v !== "bigint") return "must be a bigint or a safe integer";
  if (v < I64_MIN || v > I64_MAX) return "must fit in 64 signed bits (-(2^63) to 2^63-1)";
  let u = BigInt.asUintN(64, v) ^ 0x8000_0000_0000_0000n;
  for (let i = 7; i >= 0; i--) {
    b[p + i] = Number(u & 0xffn);
    u >>= 8n;
  }
  return null;
}

/** Reads 8 bytes written by `writeOrderedInt64`, as a bigint. */
export function readOrderedInt64(b: Uint8Array, p: number): bigint {
  const hi = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) ^ 0x8000_0000; // signed 32 bits
  const lo = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
  const n = hi * 0x1_0000_0000 + lo;
  if (Number.isSafeInteger(n)) return BigInt(n);
  return (BigInt(hi) << 32n) + BigInt(lo);
}
