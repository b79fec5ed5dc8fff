/**
 * Versions of values and conditional writes.
 *
 * A table opened with `versioned: true` stores, before each encoded value,
 * the version of the write that stored it: 8 bytes, the big-endian unsigned
 * txnid of the MDBX write transaction (the commit) that wrote it. Every
 * commit has its own txnid, later commits larger ones, and every process of
 * the database sees the same, so a version names one write of one key
 * across processes. The value codec skips the 8 bytes on every read
 * (`get`, ranges, `getMany`, `follow`, cursors); `getInto`,
 * `getManyInto`, `followBatches` and `unsafeGetView` give the stored bytes,
 * version included.
 *
 * Conditional writes compare versions for equality inside the write
 * transaction: `put(t, k, v, { ifVersion })` and `txn.check(t, k, version)`
 * in a WriteTxn, `tx.check(t, k, version)` in a concurrent transaction
 * (validated in the group commit's write transaction, so against every
 * process's commits). A mismatch is a VersionMismatchError.
 *
 * @module
 */
import { fn, growOut, NOTFOUND, scratch } from "./core.ts";
import type { Table } from "./table.ts";
import type { Handle } from "./ffi/mod.ts";

/** A version expected by a conditional write: a number from `getEntry()`, or null for "the key must be absent". */
export type Version = number | null;

/**
 * A conditional write found another version than it was given: the key was
 * written (or deleted, or created) since the caller read it. Nothing was
 * written by the call that threw. Not a ConflictError: `env.transact()`
 * does not retry it (the version came from the caller; read it again and
 * decide).
 */
export class VersionMismatchError extends Error {
  /** The table's name (null: the main table). */
  readonly table: string | null;
  /** The key, typed like the table's keys. */
  readonly key: unknown;
  /** The version the write was conditional on (null: the key was to be absent). */
  readonly expected: Version;
  /** The version found (null: the key was absent). */
  readonly actual: Version;

  /**
   * A mismatch on `key` of `table`.
   *
   * @param table the table's name
   * @param key the key
   * @param expected the version the write was conditional on
   * @param actual the version found
   * @param message what happened
   */
  constructor(table: string | null, key: unknown, expected: Version, actual: Version, message: string) {
    super(message);
    this.name = "VersionMismatchError";
    this.table = table;
    this.key = key;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The version of a stored value of a versioned table: its first 8 bytes, big-endian. */
export function readVersion(b: Uint8Array, off: number): number {
  const hi = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
  const lo = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
  return hi * 0x1_0000_0000 + lo;
}

/** Writes `version` as the first 8 bytes of `b`, big-endian. */
export function writeVersion(b: Uint8Array, version: number): void {
  const hi = Math.floor(version / 0x1_0000_0000), lo = version >>> 0;
  b[0] = hi >>> 24;
  b[1] = hi >>> 16;
  b[2] = hi >>> 8;
  b[3] = hi;
  b[4] = lo >>> 24;
  b[5] = lo >>> 16;
  b[6] = lo >>> 8;
  b[7] = lo;
}

/** Checks an `ifVersion` / `check()` argument. */
export function checkVersionArg(v: unknown, what: string): Version {
  if (v === null) return null;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new TypeError(
      `${what} must be a version from getEntry() (a whole number) or null (the key must be absent), got ${
        typeof v === "string" ? JSON.stringify(v) : String(v)
      }`,
    );
  }
  return v;
}

/** A TypeError for a version operation on a table that is not versioned. */
export function notVersioned(t: Table, op: string): TypeError {
  return new TypeError(`${op}: ${t} is not versioned; open it with versioned: true to store versions with values`);
}

/**
 * The version of `key` (already encoded in `t.k`, `klen` bytes) as the write
 * transaction `h` sees it, or null when absent. Copies the value: conditional
 * writes are not the hot path.
 */
export function versionIn(h: Handle, t: Table, kb: Uint8Array, klen: number): number | null | -1 {
  let out = scratch.out;
  let n = fn.tm_get(h, t.dbi, kb, klen, out, out.length);
  if (n === NOTFOUND) return null;
  if (n < 0) return -1;
  if (n > out.length) {
    out = growOut(n);
    n = fn.tm_get(h, t.dbi, kb, klen, out, out.length);
    if (n < 0) return -1;
  }
  if (n < 8) t.v.decode(out, 0, n); // throws the codec's error: not a versioned value
  return readVersion(out, 0);
}

/** The VersionMismatchError of a conditional write. */
export function mismatch(t: Table, key: unknown, expected: Version, actual: Version, op: string): VersionMismatchError {
  const show = (v: Version) => (v === null ? "absent" : `version ${v}`);
  return new VersionMismatchError(
    t.name,
    key,
    expected,
    actual,
    `${op} in ${t}: the write was conditional on the key being ${show(expected)}, and it is ${show(actual)} ` +
      "(written by another transaction since it was read); nothing was written by this call. Read it again " +
      "(getEntry) and decide",
  );
}
