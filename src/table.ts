/**
 * Tables: named key/value trees inside an environment.
 *
 * @module
 */
import {
  Codec,
  describe,
  type Interval,
  KEY_KINDS,
  type KeyKind,
  kindName,
  prefixInterval,
  VALUE_KINDS,
  type ValueKind,
} from "./codec.ts";
import { isValueCodec } from "./encodings.ts";
import { DbFlags } from "./constants.ts";
import type { CacheOptions, CacheStats, GetCache } from "./cache.ts";

/** How a table is opened (and created, the first time). */
export interface TableOptions<K extends KeyKind = "binary", V extends ValueKind = "binary"> {
  /** Create the table if it does not exist (default: true unless the environment is read-only). */
  create?: boolean;
  /**
   * Key type. "binary" (default) returns Uint8Array; "string" returns UTF-8
   * strings; "uint32", "uint64" and "bigint" make an integer-key table
   * (MDBX_INTEGERKEY: 4- or 8-byte native-endian keys, numeric order).
   * "uint64" keys are numbers, exact up to 2^53-1: a larger key is a
   * RangeError when written and MDBX_INCOMPATIBLE when read (a file written
   * with "bigint" keys); use "bigint" for the full 64-bit range. Any
   * other kind is a TypeError; a kind whose size differs from the keys the
   * table holds is MDBX_INCOMPATIBLE at `env.table()`.
   */
  keys?: K;
  /**
   * Value type. "binary" (default) or "string"; "uint32"/"uint64" store
   * fixed-size integers (with `dupSort` they make an MDBX_INTEGERDUP table);
   * "uint64" values are numbers, exact up to 2^53-1, as "uint64" keys.
   * "msgpack" (msgpackr) and "json" store objects; `msgpack<T>()`,
   * `json<T>()` or a `ValueCodec<T>` of your own type them (docs/encodings.md).
   */
  values?: V;
  /**
   * Store the version of each value with it: the txnid of the write
   * transaction that wrote it, as 8 bytes before the encoded value (see
   * docs/encodings.md, "Versions"). Enables `txn.getEntry()`, `put(..., {
   * ifVersion })` and `tx.check()`. Not with dupSort. Like the kinds, a
   * property of the handle: open the table the way it was written.
   */
  versioned?: boolean;
  /** Compare keys from their last byte to their first (MDBX_REVERSEKEY). */
  reverseKeys?: boolean;
  /** Several sorted values per key (MDBX_DUPSORT). */
  dupSort?: boolean;
  /** With dupSort: all values of a key have one size (MDBX_DUPFIXED). */
  dupFixed?: boolean;
  /** With dupSort: compare values from their last byte (MDBX_REVERSEDUP). */
  reverseDup?: boolean;
  /** Open with whatever flags the existing table has (MDBX_DB_ACCEDE). */
  accede?: boolean;
  /**
   * Answer `get()` from a generational hash cache (no B+tree walk, no native
   * call on a hit), exact for every snapshot. `true` for an unbounded cache, or
   * bounds. Not for dupSort tables. See docs/cache.md.
   */
  cache?: boolean | CacheOptions;
}

/** Resolved shape of a table. */
export interface TableInfo {
  /** The table's name; null for the main (unnamed) table. */
  readonly name: string | null;
  /** The libmdbx table flags (MDBX_db_flags_t). */
  readonly flags: number;
  /** Key type. */
  readonly keys: KeyKind;
  /** Value type. */
  readonly values: ValueKind;
  /** Values carry the version of the write that stored them (`versioned: true`). */
  readonly versioned: boolean;
}

/**
 * The bytes of a range's `prefix` option (a copy: range iterators outlive the
 * encoder's scratch). A prefix selects one contiguous run of keys only where
 * keys compare from their first byte: binary and string keys, not reverseKeys.
 */
export function prefixBytes(t: Table, prefix: unknown): Uint8Array {
  if (t.keys !== "binary" && t.keys !== "string" && t.keys !== "tuple") {
    throw new TypeError(
      `prefix needs binary or string keys; ${t} has ${t.keys} keys: use gte/lt bounds (a prefix of leading ` +
        "elements needs tuple keys)",
    );
  }
  if (t.flags & DbFlags.REVERSEKEY) {
    throw new TypeError(
      `prefix cannot select keys of ${t}: it has reverseKeys, so keys that start alike are not neighbours ` +
        "(keys that end alike are); use gte/lt bounds",
    );
  }
  return t.k.encode(prefix, "prefix").slice(0, t.k.len);
}

/**
 * @internal The key interval of range bounds and a prefix (bounds copied: the
 * interval outlives the encoders' scratch); null when nothing can be in it (a
 * bound outside the prefix). What range(), delRange() and the read sets of
 * concurrent transactions select.
 */
export function rangeInterval(
  t: Table,
  o: { gte?: unknown; gt?: unknown; lte?: unknown; lt?: unknown; prefix?: unknown },
): Interval | null {
  if (o.gte !== undefined && o.gt !== undefined || o.lte !== undefined && o.lt !== undefined) {
    throw new TypeError("give at most one of gte/gt and one of lte/lt");
  }
  const lower = o.gte ?? o.gt, upper = o.lte ?? o.lt;
  const iv: Interval = {
    lo: lower === undefined ? null : t.k.encode(lower, "range start").slice(0, t.k.len),
    loIncl: o.gt === undefined,
    hi: upper === undefined ? null : t.k2.encode(upper, "range end").slice(0, t.k2.len),
    hiIncl: o.lt === undefined,
  };
  if (o.prefix === undefined) return iv;
  return prefixInterval(prefixBytes(t, o.prefix), iv);
}

/** Throws a TypeError naming the table unless `keys` and `values` are kinds turbomdbx knows. */
export function checkKinds(label: string, keys: unknown, values: unknown): void {
  if (!KEY_KINDS.includes(keys as KeyKind)) {
    throw new TypeError(
      `${label}: keys ${describeKind(keys)} is not a key kind; use ${KEY_KINDS.map((k) => `"${k}"`).join(", ")} ` +
        `(default "binary")`,
    );
  }
  if (!VALUE_KINDS.includes(values as ValueKind) && !isValueCodec(values)) {
    throw new TypeError(
      `${label}: values ${describeKind(values)} is not a value kind; use ` +
        `${VALUE_KINDS.map((k) => `"${k}"`).join(", ")} (default "binary"), msgpack<T>(), json<T>(), ` +
        "or a codec of your own: an object with encode(value): Uint8Array and decode(bytes): value",
    );
  }
}

function describeKind(k: unknown): string {
  return typeof k === "string" ? `"${k}"` : describe(k);
}

/** The table flags implied by a set of options. */
export function tableFlags(o: TableOptions<KeyKind, ValueKind>): number {
  let f = 0;
  const keys = o.keys ?? "binary", values = o.values ?? "binary";
  if (o.versioned !== undefined && typeof o.versioned !== "boolean") {
    throw new TypeError(`versioned must be true or false, got ${describe(o.versioned)}`);
  }
  if (o.versioned && o.dupSort) {
    throw new TypeError("versioned tables cannot be dupSort: a version belongs to one value of one key");
  }
  if (keys === "uint32" || keys === "uint64" || keys === "bigint") f |= DbFlags.INTEGERKEY;
  if (o.reverseKeys) f |= DbFlags.REVERSEKEY;
  if (o.dupSort) {
    f |= DbFlags.DUPSORT;
    if (o.dupFixed) f |= DbFlags.DUPFIXED;
    if (o.reverseDup) f |= DbFlags.REVERSEDUP;
    if (values === "uint32" || values === "uint64") f |= DbFlags.INTEGERDUP | DbFlags.DUPFIXED;
  } else if (o.dupFixed || o.reverseDup) {
    throw new TypeError("dupFixed and reverseDup need dupSort: true");
  }
  if ((f & DbFlags.INTEGERKEY) && (f & DbFlags.REVERSEKEY)) {
    throw new TypeError("integer keys cannot also be reverseKeys");
  }
  return f;
}

/**
 * A handle to one table of an environment. Get it from `env.table()`; use it
 * in any transaction of that environment. The handle stays valid until the
 * table is dropped or the environment is closed.
 */
export class Table<K extends KeyKind = KeyKind, V extends ValueKind = ValueKind> implements TableInfo {
  /** The table's name; null for the main (unnamed) table. */
  readonly name: string | null;
  /** The libmdbx table flags (MDBX_db_flags_t). */
  readonly flags: number;
  /** Key type. */
  readonly keys: K;
  /** Value type. */
  readonly values: V;
  /** Values carry the version of the write that stored them (`versioned: true`). */
  readonly versioned: boolean;
  /** @internal The libmdbx table handle (MDBX_dbi) in the file of generation `gen`. */
  dbi: number;
  /** @internal The generation of the data file `dbi` belongs to (a live rebuild moves to a new file). */
  gen: number;
  /** @internal The environment this table belongs to. */
  readonly owner: object;
  /** @internal Key encoder (single keys, range starts). */
  readonly k: Codec;
  /** @internal Second key encoder (range ends). */
  readonly k2: Codec;
  /** @internal Value encoder/decoder. */
  readonly v: Codec;
  /** @internal Set when the table was dropped. */
  dropped = false;
  /** @internal The txnid of the transaction env.table() opened it in: older snapshots may not have it. */
  since = 0;
  /** @internal The get() cache, when enabled. */
  cache: GetCache | null = null;

  /** Statistics of the table's get() cache, or null when it has none. */
  cacheStats(): CacheStats | null {
    return this.cache ? this.cache.stats() : null;
  }

  /** @internal Use `env.table()`. */
  constructor(
    owner: object,
    name: string | null,
    dbi: number,
    flags: number,
    keys: K,
    values: V,
    gen = 0,
    versioned = false,
  ) {
    this.owner = owner;
    this.versioned = versioned;
    this.name = name;
    this.dbi = dbi;
    this.gen = gen;
    this.flags = flags;
    this.keys = keys;
    this.values = values;
    this.k = new Codec(keys, 512, "keys", this);
    this.k2 = new Codec(keys, 512, "keys", this);
    this.v = new Codec(values, 4096, "values", this, versioned);
  }

  /** True for a dupsort table (several values per key). */
  get dupSort(): boolean {
    return (this.flags & DbFlags.DUPSORT) !== 0;
  }

  /** @internal The value kind's name for messages: "msgpack", "a ValueCodec", ... */
  get valuesName(): string {
    return kindName(this.values);
  }

  /** A label for messages. */
  toString(): string {
    return this.name === null ? "the main table" : `table "${this.name}"`;
  }
}
