/**
 * Cursors: explicit positioning over one table inside one transaction.
 *
 * @module
 */
import type { KeyInput, KeyKind, KeyOf, ValueInput, ValueKind, ValueOf } from "./codec.ts";
import { CursorOp } from "./constants.ts";
import { check, fn, growOut, misuse, NOTFOUND, scratch } from "./core.ts";
import { ErrorCode } from "./errors.ts";
import type { Handle } from "./ffi/mod.ts";
import type { Table } from "./table.ts";
import { decodePair, putFlags, type PutOptions, stamp, type Txn, type TxnCell } from "./txn.ts";

/** One key/value pair. */
export interface Entry<K extends KeyKind = KeyKind, V extends ValueKind = ValueKind> {
  /** The key, decoded as the table's key kind (a copy). */
  key: KeyOf<K>;
  /** The value, decoded as the table's value kind (a copy). */
  value: ValueOf<V>;
}

/** @internal The native state of a cursor, owned by its transaction's cell. */
export interface CursorCell {
  h: Handle | null;
  readonly txn: TxnCell;
}

/**
 * A cursor. Positioning methods return the entry they land on, or undefined
 * when there is none (the cursor is then unpositioned). Closed automatically
 * when its transaction ends.
 */
export class Cursor<K extends KeyKind = KeyKind, V extends ValueKind = ValueKind> implements Disposable {
  readonly #c: CursorCell;
  readonly #t: Table<K, V>;
  /** The transaction the cursor belongs to. */
  readonly txn: Txn;

  /** @internal Use `txn.cursor(table)`. */
  constructor(cell: CursorCell, table: Table<K, V>, txn: Txn) {
    this.#c = cell;
    this.#t = table;
    this.txn = txn;
  }

  /** @internal */
  _h(): Handle {
    const c = this.#c;
    if (c.h === null) {
      throw misuse(
        ErrorCode.BAD_TXN,
        c.txn.h === null ? "the cursor's transaction has ended" : "the cursor was closed",
      );
    }
    if (c.txn.child !== null) {
      throw misuse(ErrorCode.BAD_TXN, "the cursor's transaction has an active nested transaction");
    }
    return c.h;
  }

  #op(op: number, key?: KeyInput<K>, value?: ValueInput<V>): Entry<K, V> | undefined {
    const h = this._h();
    const t = this.#t;
    const kb = key === undefined ? null : t.k.encode(key, "key");
    const vb = value === undefined ? null : t.v.encode(value, "value");
    let out = scratch.out;
    let n = fn.tm_cursor_get(h, op, kb, kb ? t.k.len : 0, vb, vb ? t.v.len : 0, out, out.length);
    if (n === NOTFOUND) return undefined;
    check(n, `cursor operation on ${t}`);
    if (n > out.length) {
      out = growOut(n);
      n = check(
        fn.tm_cursor_get(h, CursorOp.GET_CURRENT, null, 0, null, 0, out, out.length),
        `cursor operation on ${t}`,
      );
    }
    return decodePair(t, out);
  }

  /** The first entry of the table. */
  first(): Entry<K, V> | undefined {
    return this.#op(CursorOp.FIRST);
  }
  /** The last entry of the table. */
  last(): Entry<K, V> | undefined {
    return this.#op(CursorOp.LAST);
  }
  /** The next entry (the first, if unpositioned). */
  next(): Entry<K, V> | undefined {
    return this.#op(CursorOp.NEXT);
  }
  /** The previous entry (the last, if unpositioned). */
  prev(): Entry<K, V> | undefined {
    return this.#op(CursorOp.PREV);
  }
  /** The entry the cursor stands on. */
  current(): Entry<K, V> | undefined {
    return this.#op(CursorOp.GET_CURRENT);
  }
  /** Positions at exactly `key` (its first value). */
  set(key: KeyInput<K>): Entry<K, V> | undefined {
    return this.#op(CursorOp.SET_KEY, key);
  }
  /** Positions at the first key >= `key`. */
  setRange(key: KeyInput<K>): Entry<K, V> | undefined {
    return this.#op(CursorOp.SET_RANGE, key);
  }
  /** Positions at the last key < `key`. */
  lessThan(key: KeyInput<K>): Entry<K, V> | undefined {
    return this.#op(CursorOp.TO_KEY_LESSER_THAN, key);
  }
  /** Positions at the last key <= `key`. */
  lessOrEqual(key: KeyInput<K>): Entry<K, V> | undefined {
    return this.#op(CursorOp.TO_KEY_LESSER_OR_EQUAL, key);
  }
  /** Positions at the first key > `key`. */
  greaterThan(key: KeyInput<K>): Entry<K, V> | undefined {
    return this.#op(CursorOp.TO_KEY_GREATER_THAN, key);
  }
  /** dupSort: positions at exactly the pair key/value. */
  getBoth(key: KeyInput<K>, value: ValueInput<V>): Entry<K, V> | undefined {
    return this.#op(CursorOp.GET_BOTH, key, value);
  }
  /** dupSort: positions at `key` and its first value >= `value`. */
  getBothRange(key: KeyInput<K>, value: ValueInput<V>): Entry<K, V> | undefined {
    return this.#op(CursorOp.GET_BOTH_RANGE, key, value);
  }
  /** dupSort: the first value of the current key. */
  firstDup(): Entry<K, V> | undefined {
    return this.#op(CursorOp.FIRST_DUP);
  }
  /** dupSort: the last value of the current key. */
  lastDup(): Entry<K, V> | undefined {
    return this.#op(CursorOp.LAST_DUP);
  }
  /** dupSort: the next value of the current key. */
  nextDup(): Entry<K, V> | undefined {
    return this.#op(CursorOp.NEXT_DUP);
  }
  /** dupSort: the previous value of the current key. */
  prevDup(): Entry<K, V> | undefined {
    return this.#op(CursorOp.PREV_DUP);
  }
  /** The first value of the next key. */
  nextNoDup(): Entry<K, V> | undefined {
    return this.#op(CursorOp.NEXT_NODUP);
  }
  /** The last value of the previous key. */
  prevNoDup(): Entry<K, V> | undefined {
    return this.#op(CursorOp.PREV_NODUP);
  }

  /** How many values the current key has (1 for a plain table). */
  count(): number {
    check(fn.tm_cursor_count(this._h(), scratch.f64Bytes), "cursor count");
    return scratch.f64[0];
  }

  /** Stores a pair through the cursor (write transactions); the cursor moves to it. */
  put(key: KeyInput<K>, value: ValueInput<V>, options?: PutOptions): void {
    const h = this._h();
    const t = this.#t;
    this.#writable("cursor put");
    const kb = t.k.encode(key, "key");
    const vb = t.v.encode(value, "value");
    if (t.v.ver !== 0) stamp(this.txn._c, this.txn._h(), vb); // a versioned table (issue 14)
    if (options?.ifVersion !== undefined) {
      throw new TypeError(`cursor put in ${t}: ifVersion is for txn.put(); a cursor writes unconditionally`);
    }
    this.txn._wrote(t);
    check(fn.tm_cursor_put(h, kb, t.k.len, vb, t.v.len, putFlags(options)), `cursor put in ${t}`);
  }

  /** Deletes the current pair (with `allDups`, every value of the current key). */
  del(options: { allDups?: boolean } = {}): void {
    const h = this._h();
    this.#writable("cursor delete");
    this.txn._wrote(this.#t);
    check(fn.tm_cursor_del(h, options.allDups ? 0x80 : 0), `cursor delete in ${this.#t}`);
  }

  /** Throws the error libmdbx would give as a bare EACCES, with what to do instead. */
  #writable(op: string): void {
    if (!this.txn.isWrite) {
      throw misuse(
        ErrorCode.EACCES,
        `${op} in ${this.#t}: the cursor belongs to a read transaction, which cannot write; open the cursor in ` +
          "a write transaction (env.write() or env.beginWrite())",
      );
    }
  }

  /** True until closed (by `close()` or the end of the transaction). */
  get isOpen(): boolean {
    return this.#c.h !== null;
  }

  /** Closes the cursor. Idempotent. */
  close(): void {
    const c = this.#c;
    if (c.h === null) return;
    fn.tm_cursor_close(c.h);
    c.h = null;
    c.txn.cursors.delete(c);
  }

  /** Closes the cursor (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }
}
