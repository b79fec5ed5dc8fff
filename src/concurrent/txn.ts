/**
 * ConcurrentTxn: a logical write transaction that may live across awaits.
 *
 * It reads a snapshot merged with its own buffered writes, remembers what it
 * read (the read set), and at commit goes through the Env's commit pipeline,
 * which re-reads the read set inside the MDBX write transaction and applies
 * the writes only if nothing it read has changed. See docs/concurrency.md.
 *
 * @module
 */
import {
  describe,
  type KeyInput,
  type KeyKind,
  type KeyOf,
  type ValueInput,
  type ValueKind,
  type ValueOf,
} from "../codec.ts";
import { misuse } from "../core.ts";
import type { Entry } from "../cursor.ts";
import { ErrorCode, MdbxError } from "../errors.ts";
import { prefixBytes, rangeInterval, type Table } from "../table.ts";
import { type RangeOptions, stamp, type Txn, type WriteTxn } from "../txn.ts";
import { checkVersionArg, mismatch, notVersioned, readVersion, type Version } from "../versions.ts";
import { ConflictError } from "./errors.ts";
import { contains, Digest, type Interval, keep, keyId, sameBytes } from "./keys.ts";
import { EXCLUSIVE, LockOwner, type LockWait, SHARED } from "./locks.ts";
import { UNRECORDED, type Written } from "./pipeline.ts";
import type { Snap } from "./snapshots.ts";
import type { EnvState, TableMeta } from "./state.ts";

/** How a concurrent transaction guards what it reads. */
export type ConcurrencyMode = "optimistic" | "pessimistic";

/** Options of `env.beginConcurrent()`. */
export interface ConcurrentOptions {
  /**
   * "optimistic" (default): no locks; the commit fails with ConflictError if
   * anything read was changed meanwhile. "pessimistic": reads take shared
   * locks and writes exclusive locks, waiting for other pessimistic
   * transactions of this process; deadlocks are broken at once (DeadlockError).
   */
  mode?: ConcurrencyMode;
  /** Pessimistic: the longest wait for one lock, in milliseconds, before LockTimeoutError (default 10 000). */
  timeoutMs?: number;
  /** Aborts the transaction: waits for locks and a commit not yet taken by a flush reject with its reason. */
  signal?: AbortSignal;
}

/** Options of a point read. */
export interface ConcurrentGetOptions {
  /** Pessimistic: take the exclusive lock right away (the key will be written; avoids upgrade deadlocks). */
  forUpdate?: boolean;
}

interface PointRead {
  key: Uint8Array;
  /** The value read (undefined: absent); for a presence-only read, undefined. */
  value: Uint8Array | undefined;
  /** Only presence was read (has()). */
  presence: boolean;
  present: boolean;
}

/** The point reads of one table, by key id. */
interface TableReads {
  readonly meta: TableMeta;
  readonly reads: Map<string, PointRead>;
}

interface RangeRead {
  meta: TableMeta;
  iv: Interval;
  rev: boolean;
  /** The last key passed over; the read covers the interval from its start up to it (inclusive). */
  last: Uint8Array | null;
  /** The whole interval was read. */
  done: boolean;
  digest: Digest;
}

interface BufEntry {
  key: Uint8Array;
  /** null: deleted. */
  value: Uint8Array | null;
}

/** Buffered writes to one table, by key; sorted in key order on demand (range reads). */
class TableBuffer {
  readonly map: Map<string, BufEntry> = new Map();
  #sorted: BufEntry[] | null = null;
  readonly meta: TableMeta;

  constructor(meta: TableMeta) {
    this.meta = meta;
  }

  set(kid: string, key: Uint8Array, value: Uint8Array | null): void {
    const e = this.map.get(kid);
    if (e !== undefined) e.value = value;
    else {
      this.map.set(kid, { key, value });
      this.#sorted = null;
    }
  }

  sorted(): BufEntry[] {
    if (this.#sorted === null) {
      const cmp = this.meta.cmp;
      this.#sorted = [...this.map.values()].sort((a, b) => cmp(a.key, b.key));
    }
    return this.#sorted;
  }
}

const OPEN = 0, COMMITTING = 1, DONE = 2;
const RESOLVED: Promise<void> = Promise.resolve();
/** A commit not settled yet. */
const PENDING = Symbol("pending");
const EMPTY: BufEntry[] = [];
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A key as the user knows it, for messages. */
function showKey(t: Table, k: Uint8Array): string {
  const v = t.k.decode(k, 0, k.length);
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof Uint8Array) return `0x${hex(v)}`;
  return String(v);
}

function showRange(t: Table, iv: Interval): string {
  return `${iv.loIncl ? "[" : "("}${iv.lo === null ? "start" : showKey(t, iv.lo)}, ` +
    `${iv.hi === null ? "end" : showKey(t, iv.hi)}${iv.hiIncl ? "]" : ")"}`;
}

/**
 * A concurrent write transaction: reads a stable snapshot merged with its own
 * writes, buffers writes until `commit()`, and may live across awaits. Many
 * can be open at once; their commits are validated and applied in batches
 * (group commit) inside single MDBX write transactions. The outcome is
 * serializable: see docs/concurrency.md. Begin one with `env.beginConcurrent()`,
 * or let `env.transact()` run, commit and retry it.
 *
 * Every read and write returns a promise (a pessimistic transaction may have
 * to wait for a lock); await each one.
 */
export class ConcurrentTxn implements AsyncDisposable {
  /** "optimistic" or "pessimistic". */
  readonly mode: ConcurrencyMode;
  readonly #st: EnvState;
  readonly #owner: LockOwner | null;
  readonly #wait: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: (() => void) | undefined;
  #state = OPEN;
  /** Why the transaction cannot be used, once it has ended. */
  #ended = "";
  /** What must be let go if the transaction is dropped without commit() or abort() (see `finalizer`). */
  readonly #held: Held;
  /** Pessimistic: reads came from more than one snapshot (a read-only commit must then validate). */
  #snaps = 0;
  /** The txnid of the oldest snapshot read. */
  #snapId = Infinity;
  // The collections below are created on first use (null until then): most
  // transactions touch one table, and an uncontended one is a few microseconds.
  // per table: a short list searched in order (a Map costs more to create than a few comparisons)
  #writes: TableBuffer[] | null = null;
  #reads: TableReads[] | null = null;
  #ranges: RangeRead[] | null = null;
  /** Version checks (issue 14): validated at commit in the write transaction, whatever the snapshot. */
  #checks: { m: TableMeta; key: Uint8Array; user: unknown; version: Version }[] | null = null;
  /** Pessimistic: lock requests of writes not settled yet. */
  #pending: Set<Promise<void>> | null = null;
  #failure: unknown = null;
  /** The id of the key `#key()` returned last. */
  #kid = "";
  /** The table, bytes and id of the last key `#key()` copied. */
  #lastMeta: TableMeta | null = null;
  #lastKey: Uint8Array | null = null;
  #lastKid = "";
  #settle: ((e: unknown) => void) | null = null;

  /** @internal Use `env.beginConcurrent()` or `env.transact()`. */
  constructor(st: EnvState, options: ConcurrentOptions = {}, priority?: number) {
    const mode = options.mode ?? "optimistic";
    if (mode !== "optimistic" && mode !== "pessimistic") {
      throw new TypeError(`mode must be "optimistic" or "pessimistic", got ${describe(mode)}`);
    }
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (!(timeoutMs >= 0)) throw new RangeError(`timeoutMs must be a number of milliseconds >= 0, got ${timeoutMs}`);
    options.signal?.throwIfAborted();
    st.core.handle(); // throws if the Env is closed
    this.mode = mode;
    this.#st = st;
    this.#owner = mode === "pessimistic" ? new LockOwner(priority ?? st.nextPriority()) : null;
    this.#held = { st, active: true, snap: null, iterSnaps: null, owner: this.#owner };
    this.#wait = timeoutMs;
    this.#signal = options.signal;
    if (options.signal) {
      this.#onAbort = () => this.#abort(options.signal!.reason);
      options.signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    st.pipeline.active++;
    finalizer.register(this, this.#held, this.#held);
  }

  /** True until the transaction commits, aborts or fails. */
  get isOpen(): boolean {
    return this.#state === OPEN;
  }

  /** Number of keys written (put or deleted) so far. */
  get writeCount(): number {
    let n = 0;
    if (this.#writes !== null) { for (const b of this.#writes) n += b.map.size; }
    return n;
  }

  // ------------------------------------------------------------------ reads

  /**
   * The value of `key`: this transaction's own write if it made one, else the
   * snapshot's. Pessimistic: waits for a shared lock (exclusive with `forUpdate`).
   */
  get<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    options?: ConcurrentGetOptions,
  ): Promise<ValueOf<V> | undefined> {
    try {
      this.#usable();
      const m = this.#st.meta(table);
      const kb = this.#key(m, key);
      const kid = this.#kid;
      const own = this.#buffer(m)?.map.get(kid);
      if (own !== undefined) {
        return Promise.resolve(
          own.value === null ? undefined : table.v.decode(own.value, 0, own.value.length),
        ) as Promise<ValueOf<V> | undefined>;
      }
      const p = this.#owner === null ? null : this.#lockKey(m, kb, kid, options?.forUpdate ? EXCLUSIVE : SHARED);
      if (p === null) {
        const v = this.#readPoint(m, kb, kid, false);
        return Promise.resolve(v === undefined ? undefined : table.v.decode(v, 0, v.length)) as Promise<
          ValueOf<V> | undefined
        >;
      }
      return p.then(() => {
        this.#usable();
        const v = this.#readPoint(m, kb, kid, false);
        return (v === undefined ? undefined : table.v.decode(v, 0, v.length)) as ValueOf<V> | undefined;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** True if `key` exists (counting this transaction's own writes). Only presence enters the read set. */
  has<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>): Promise<boolean> {
    try {
      this.#usable();
      const m = this.#st.meta(table);
      const kb = this.#key(m, key);
      const kid = this.#kid;
      const own = this.#buffer(m)?.map.get(kid);
      if (own !== undefined) return Promise.resolve(own.value !== null);
      const read = () => this.#readPoint(m, kb, kid, true) !== undefined;
      const p = this.#lockKey(m, kb, kid, SHARED);
      return p === null ? Promise.resolve(read()) : p.then(() => (this.#usable(), read()));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ------------------------------------------------ versions (issue 14, src/versions.ts)

  /**
   * The value of `key` and its version (a versioned table), or undefined:
   * read like `get()` (it enters the read set). A value this transaction
   * wrote has version 0: its version is its commit's, known once committed.
   */
  getEntry<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    options?: ConcurrentGetOptions,
  ): Promise<{ value: ValueOf<V>; version: number } | undefined> {
    try {
      this.#usable();
      const m = this.#st.meta(table);
      if (!table.versioned) throw notVersioned(table, "getEntry");
      const kb = this.#key(m, key);
      const kid = this.#kid;
      const own = this.#buffer(m)?.map.get(kid);
      const entry = (v: Uint8Array | null | undefined, version: number) =>
        (v === null || v === undefined ? undefined : { value: table.v.decode(v, 0, v.length), version }) as
          | { value: ValueOf<V>; version: number }
          | undefined;
      if (own !== undefined) return Promise.resolve(entry(own.value, 0));
      const read = () => {
        const v = this.#readPoint(m, kb, kid, false);
        return entry(v, v === undefined ? 0 : readVersion(v, 0));
      };
      const p = this.#lockKey(m, kb, kid, options?.forUpdate ? EXCLUSIVE : SHARED);
      return p === null ? Promise.resolve(read()) : p.then(() => (this.#usable(), read()));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Makes the commit conditional on `key` having `version` (from
   * `getEntry()`, here or anywhere; null: the key must be absent) when the
   * commit is applied, as Deno KV's `atomic().check()`: checked in the group
   * commit's MDBX write transaction, so against every process's commits. A
   * mismatch rejects `commit()` with VersionMismatchError and nothing of the
   * transaction is written; `env.transact()` does not retry it.
   */
  check<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>, version: number | null): void {
    this.#usable();
    const m = this.#st.meta(table);
    if (!table.versioned) throw notVersioned(table, "check");
    const kb = this.#key(m, key);
    (this.#checks ??= []).push({
      m,
      key: kb,
      user: key,
      version: checkVersionArg(version, `check in ${table}: the version`),
    });
  }

  // ------------------------------------------------ end of versions

  /**
   * The entries of a range (same options as `txn.range()`, without dupSort
   * ones), in key order: the snapshot merged with this transaction's writes
   * (its own writes made during the iteration may or may not be seen). The
   * part of the range the loop passed over enters the read set: entries
   * another transaction inserts, changes or deletes there make the commit
   * fail (optimistic), or wait (pessimistic: the requested range is locked).
   */
  range<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    options: RangeOptions<K> = {},
  ): AsyncIterableIterator<Entry<K, V>> {
    return this.#iterate(table, options, 0) as AsyncIterableIterator<Entry<K, V>>;
  }

  /** The keys of a range (see `range`). */
  keys<K extends KeyKind>(table: Table<K, ValueKind>, options: RangeOptions<K> = {}): AsyncIterableIterator<KeyOf<K>> {
    return this.#iterate(table, options, 1) as AsyncIterableIterator<KeyOf<K>>;
  }

  /** The values of a range (see `range`). */
  values<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    options: RangeOptions<K> = {},
  ): AsyncIterableIterator<ValueOf<V>> {
    return this.#iterate(table, options, 2) as AsyncIterableIterator<ValueOf<V>>;
  }

  /** Counts the entries of a range (see `range`; the whole range enters the read set). */
  async count<K extends KeyKind>(table: Table<K, ValueKind>, options: RangeOptions<K> = {}): Promise<number> {
    let n = 0;
    for await (const _ of this.#iterate(table, options, 3)) n++;
    return n;
  }

  // ----------------------------------------------------------------- writes

  /** Stores `value` under `key` (buffered until commit). Pessimistic: takes an exclusive lock. */
  put<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    value: ValueInput<V>,
  ): Promise<void> {
    try {
      this.#writable();
      const m = this.#st.meta(table);
      const kb = this.#key(m, key), kid = this.#kid;
      const vb = keep(table.v.encode(value, "value"), table.v.len);
      return this.#write(m, kb, kid, vb);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Deletes `key` (buffered until commit; a blind write: nothing is read). Pessimistic: takes an exclusive lock. */
  del<K extends KeyKind>(table: Table<K, ValueKind>, key: KeyInput<K>): Promise<void> {
    try {
      this.#writable();
      const m = this.#st.meta(table);
      const kb = this.#key(m, key);
      return this.#write(m, kb, this.#kid, null);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Stores `value` (or deletes `key` when `value` is undefined) and returns the
   * previous value: a read (for update) and a write.
   */
  async replace<K extends KeyKind, V extends ValueKind>(
    table: Table<K, V>,
    key: KeyInput<K>,
    value: ValueInput<V> | undefined,
  ): Promise<ValueOf<V> | undefined> {
    const prev = await this.get(table, key, { forUpdate: true });
    await (value === undefined ? this.del(table, key) : this.put(table, key, value));
    return prev;
  }

  // ------------------------------------------------------------- lifecycle

  /**
   * Commits: validates what the transaction read against the current state
   * and applies its writes, in the next group commit. Resolves once the batch
   * is committed (durable, in durable mode); rejects with ConflictError (and
   * writes nothing) if something it read was changed meanwhile. A transaction
   * that wrote nothing commits without the pipeline.
   */
  commit(): Promise<void> {
    try {
      return this._commit() ?? RESOLVED;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * @internal `commit()` without a promise when none is needed: undefined once
   * the transaction is committed (it committed at once, alone, or wrote
   * nothing); a promise when it waits for locks or for a group commit; throws
   * what `commit()` would reject with.
   */
  _commit(): Promise<void> | undefined {
    if (this.#state !== OPEN) this.#dead();
    this.#state = COMMITTING;
    return this.#pending !== null && this.#pending.size ? this.#commitAfterLocks() : this.#commitNow();
  }

  /** Pessimistic: waits for the lock requests of its writes, then commits. */
  async #commitAfterLocks(): Promise<void> {
    while (this.#pending!.size) await Promise.allSettled([...this.#pending!]);
    await this.#commitNow();
  }

  #commitNow(): Promise<void> | undefined {
    leave(this.#held);
    const fail = this.#failure ?? this.#owner?.doomed ?? null;
    if (fail !== null) {
      this.#end("it failed", fail);
      this.#st.pipeline.idle();
      throw fail;
    }
    // no more reads: let the snapshots go before the write (a reader slot, and pages the commit may reuse)
    this.#releaseSnapshots();
    if (this.#writes === null && this.#checks === null) {
      // Read-only: one snapshot is a serialization point of its own. Reads from
      // several snapshots (pessimistic) must all still hold in the newest one.
      let e: Error | null = null;
      if (this.#snaps > 1 && !this.#st.pipeline.unsafeSkipValidation) {
        const s = this.#st.pool.acquire();
        try {
          e = this.validate(s.txn, s.id, null);
        } finally {
          this.#st.pool.release(s);
        }
      }
      this.#end(e ? "it failed" : "it was committed", null);
      this.#st.pipeline.idle();
      if (e) {
        this.#st.pool.invalidate();
        throw e;
      }
      return undefined;
    }
    // alone (no other open transaction could join a batch): committed right here, no queue, no promise
    let outcome: unknown = PENDING;
    this.#settle = (e) => {
      this.#settle = null;
      this.#end(e === null ? "it was committed" : "it failed", null);
      outcome = e;
    };
    if (this.#st.pipeline.commitAlone(this)) {
      if (outcome !== null) throw outcome;
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      this.#settle = (e) => {
        this.#settle = null;
        this.#end(e === null ? "it was committed" : "it failed", null);
        if (e === null) resolve();
        else reject(e);
      };
      this.#st.pipeline.enqueue(this);
    });
  }

  /** Discards the transaction: its writes, snapshot and locks. Idempotent; ignored while a commit is under way. */
  abort(): void {
    this.#abort(null);
  }

  #aborted(): MdbxError {
    return misuse(ErrorCode.BAD_TXN, "the concurrent transaction was aborted while it waited for a lock");
  }

  #abort(why: unknown): void {
    if (this.#state === OPEN) {
      leave(this.#held);
      this.#end("it was aborted", why);
      this.#st.pipeline.idle();
    } else if (this.#state === COMMITTING && why !== null && this.#settle !== null) {
      // cancelled by the signal: possible while no flush has taken it yet
      if (this.#st.pipeline.withdraw(this)) this.#settle(why);
    }
  }

  /** Aborts unless committed (`await using` support). */
  [Symbol.asyncDispose](): Promise<void> {
    this.abort();
    return RESOLVED;
  }

  // ----------------------------------------------------- pipeline interface

  /**
   * @internal Re-reads the read set in `txn`; a ConflictError if anything
   * differs. When `txn` started from the very snapshot this transaction read
   * (txnid `baseId`), only what was written in `txn` since (`written`: per
   * table, key id → key; null: nothing) can differ: reads of other keys, and
   * ranges that no written key falls into, are valid without reading again.
   */
  validate(txn: Txn, baseId: number, written: Written | null): Error | null {
    if (this.#checks !== null) {
      for (const c of this.#checks) {
        const raw = txn.get(c.m.raw, c.key);
        const actual = raw === undefined ? null : readVersion(raw, 0);
        if (actual !== c.version) return mismatch(c.m.table, c.user, c.version, actual, "commit (check)");
      }
    }
    const same = this.#snapId === baseId;
    // the very snapshot read, and nothing written since in `txn`: every read is still what it was
    if (same && (written === null || written.size === 0)) return null;
    const e = this.#reads === null ? null : this.#validateReads(this.#reads, txn, same, written);
    return e !== null || this.#ranges === null ? e : this.#validateRanges(this.#ranges, txn, same, written);
  }

  #validateReads(
    all: TableReads[],
    txn: Txn,
    same: boolean,
    written: Written | null,
  ): Error | null {
    for (const { meta: m, reads } of all) {
      const ws = written?.get(m.table.dbi);
      if (same && ws === undefined) continue;
      for (const [kid, r] of reads) {
        if (same && !ws!.has(kid)) continue;
        const ok = r.presence ? txn.has(m.raw, r.key) === r.present : sameBytes(txn.get(m.raw, r.key), r.value);
        if (!ok) {
          const t = m.table;
          return new ConflictError(
            { table: t.name, key: t.k.decode(r.key, 0, r.key.length) },
            `write conflict: key ${showKey(t, r.key)} of ${t} was changed by another transaction after this one ` +
              "read it; nothing was written (env.transact() retries)",
          );
        }
      }
    }
    return null;
  }

  #validateRanges(ranges: RangeRead[], txn: Txn, same: boolean, written: Written | null): Error | null {
    for (const r of ranges) {
      if (!r.done && r.last === null) continue; // nothing was read
      const iv = r.iv;
      const lo = r.rev && !r.done ? r.last : iv.lo, loIncl = r.rev && !r.done ? true : iv.loIncl;
      const hi = !r.rev && !r.done ? r.last : iv.hi, hiIncl = !r.rev && !r.done ? true : iv.hiIncl;
      const covered: Interval = { lo, loIncl, hi, hiIncl };
      if (same) {
        const ws = written?.get(r.meta.table.dbi);
        if (ws === undefined) continue;
        let touched = false;
        for (const k of ws.values()) {
          if (contains(r.meta.cmp, covered, k)) {
            touched = true;
            break;
          }
        }
        if (!touched) continue;
      }
      const o: RangeOptions<"binary"> = { reverse: r.rev };
      if (lo !== null) loIncl ? (o.gte = lo) : (o.gt = lo);
      if (hi !== null) hiIncl ? (o.lte = hi) : (o.lt = hi);
      const d = new Digest();
      for (const e of txn.range(r.meta.raw, o)) d.add(e.key, e.value);
      if (!d.equals(r.digest)) {
        const t = r.meta.table;
        const range = showRange(t, covered);
        return new ConflictError(
          { table: t.name, range },
          `write conflict: the range ${range} of ${t} was changed by another transaction (an entry inserted, ` +
            "changed or deleted) after this one read it; nothing was written (env.transact() retries)",
        );
      }
    }
    return null;
  }

  /**
   * @internal Writes the buffered changes into the MDBX write transaction and
   * notes them in `written` (unless it is `UNRECORDED`: nothing is validated
   * after this transaction in its batch).
   */
  apply(w: WriteTxn, written: Written): void {
    if (this.#writes === null) return;
    const record = written !== UNRECORDED;
    for (const b of this.#writes) {
      const m = b.meta;
      const dbi = m.table.dbi;
      let ws: Map<string, Uint8Array> | undefined;
      if (record) {
        ws = written.get(dbi);
        if (ws === undefined) written.set(dbi, ws = new Map());
      }
      const versioned = m.table.versioned;
      for (const [kid, e] of b.map) {
        if (e.value === null) w.del(m.raw, e.key);
        else {
          if (versioned) stamp(w._c, w._h(), e.value); // the batch's commit is the version
          w.put(m.raw, e.key, e.value);
        }
        ws?.set(kid, e.key);
      }
    }
  }

  /** @internal The pipeline's verdict. */
  settle(e: unknown): void {
    this.#settle?.(e);
  }

  // -------------------------------------------------------------- internals

  #dead(): never {
    throw misuse(ErrorCode.BAD_TXN, `the concurrent transaction cannot be used: ${this.#ended}; begin a new one`);
  }

  #usable(): void {
    if (this.#state !== OPEN) {
      if (this.#state === COMMITTING) {
        throw misuse(ErrorCode.BAD_TXN, "the concurrent transaction is committing; it cannot be used any more");
      }
      this.#dead();
    }
    const d = this.#owner?.doomed;
    if (d) throw d;
  }

  #writable(): void {
    this.#usable();
    if (this.#st.env.readOnly) {
      throw misuse(ErrorCode.EACCES, `${this.#st.env.path} is open read-only; it cannot be written`);
    }
  }

  /**
   * The key's bytes, a private copy, and its id in `#kid`. The same key as the
   * previous call's (a read-modify-write) gets the same copy and id: keys are
   * never written to.
   */
  #key(m: TableMeta, key: unknown): Uint8Array {
    const t = m.table;
    const enc = t.k.encode(key, "key"), len = t.k.len;
    const last = this.#lastKey;
    if (m === this.#lastMeta && last !== null && last.length === len) {
      let i = 0;
      while (i < len && enc[i] === last[i]) i++;
      if (i === len) {
        this.#kid = this.#lastKid;
        return last;
      }
    }
    if (len > m.maxKey) {
      throw new MdbxError(
        ErrorCode.BAD_VALSIZE,
        `a key of ${len} bytes is longer than ${t} accepts (${m.maxKey} bytes)`,
      );
    }
    const kb = keep(enc, len);
    this.#lastMeta = m;
    this.#lastKey = kb;
    this.#kid = this.#lastKid = keyId(kb);
    return kb;
  }

  #waitFor(describe: LockWait["describe"]): LockWait {
    return { timeoutMs: this.#wait, describe };
  }

  /** Pessimistic: a key lock (null when held or granted at once). */
  #lockKey(m: TableMeta, kb: Uint8Array, kid: string, mode: number): Promise<void> | null {
    if (this.#owner === null || this.#st.unsafeSkipLocks) return null;
    const t = m.table;
    return this.#st.locks.lockKey(
      this.#owner,
      t,
      kid,
      kb,
      mode,
      this.#waitFor(() => {
        const text = `key ${showKey(t, kb)} of ${t}`;
        return { table: t.name, key: t.k.decode(kb, 0, kb.length), text };
      }),
    );
  }

  /** The write buffer of a table, if the transaction wrote to it. */
  #buffer(m: TableMeta): TableBuffer | undefined {
    const ws = this.#writes;
    if (ws !== null) { for (const b of ws) if (b.meta === m) return b; }
    return undefined;
  }

  #write(m: TableMeta, kb: Uint8Array, kid: string, vb: Uint8Array | null): Promise<void> {
    let b = this.#buffer(m);
    if (b === undefined) (this.#writes ??= []).push(b = new TableBuffer(m));
    b.set(kid, kb, vb);
    const p = this.#lockKey(m, kb, kid, EXCLUSIVE);
    if (p === null) return RESOLVED;
    const pending = this.#pending ??= new Set();
    pending.add(p);
    p.then(() => pending.delete(p), (e) => {
      pending.delete(p);
      this.#failure ??= e;
    });
    return p;
  }

  /** The snapshot to read now: the pinned one (optimistic) or the newest shared one (pessimistic). */
  #snapshot(): Snap {
    const pool = this.#st.pool;
    const h = this.#held;
    if (h.snap === null) {
      h.snap = pool.acquire();
      this.#snaps = 1;
      this.#snapId = h.snap.id;
    } else if (this.#owner !== null) {
      // reads under locks: the newest state, so a lock granted after a commit sees that commit
      const s = pool.acquire();
      if (s !== h.snap) {
        pool.release(h.snap);
        h.snap = s;
        this.#snaps++;
        if (s.id < this.#snapId) this.#snapId = s.id;
      } else pool.release(s);
    }
    return h.snap;
  }

  /** Reads a key from the snapshot and records it in the read set. */
  #readPoint(m: TableMeta, kb: Uint8Array, kid: string, presence: boolean): Uint8Array | undefined {
    const txn = this.#snapshot().txn;
    const v = presence ? (txn.has(m.raw, kb) ? PRESENT : undefined) : readRaw(txn, m, kb);
    const all = this.#reads ??= [];
    let reads: Map<string, PointRead> | undefined;
    for (const r of all) {
      if (r.meta === m) {
        reads = r.reads;
        break;
      }
    }
    if (reads === undefined) all.push({ meta: m, reads: reads = new Map() });
    const r = reads.get(kid);
    if (r === undefined) {
      reads.set(kid, { key: kb, value: presence ? undefined : v, presence, present: v !== undefined });
    } else {
      // several snapshots (pessimistic): the same key must read the same
      const same = r.presence || presence ? r.present === (v !== undefined) : sameBytes(r.value, v);
      if (!same) {
        const t = m.table;
        const e = new ConflictError(
          { table: t.name, key: t.k.decode(kb, 0, kb.length) },
          `write conflict: key ${showKey(t, kb)} of ${t} was changed by another process or an optimistic ` +
            "transaction while this pessimistic one held its lock; nothing was written (env.transact() retries)",
        );
        this.#failure ??= e;
        throw e;
      }
      if (r.presence && !presence) {
        r.presence = false;
        r.value = v;
      }
    }
    return v;
  }

  async *#iterate(table: Table, o: RangeOptions<KeyKind>, what: 0 | 1 | 2 | 3): AsyncGenerator<unknown, void> {
    this.#usable();
    const m = this.#st.meta(table);
    const t = m.table, cmp = m.cmp;
    const iv = interval(t, o);
    const rev = !!o.reverse;
    let limit = o.limit ?? Infinity, skip = o.offset ?? 0;
    if (!(limit >= 0) || !(skip >= 0) || !Number.isInteger(skip)) {
      throw new RangeError(`limit and offset must be non-negative integers (got ${o.limit}, ${o.offset})`);
    }
    if (this.#owner !== null && !this.#st.unsafeSkipLocks) {
      const owner = this.#owner;
      const p = this.#st.locks.lockRange(
        owner,
        t,
        iv,
        this.#waitFor(() => {
          const range = showRange(t, iv);
          return { table: t.name, range, text: `the range ${range} of ${t}` };
        }),
      );
      if (p !== null) {
        await p;
        this.#usable();
      }
    }
    if (limit === 0) return;
    const pool = this.#st.pool;
    const snap = pool.retain(this.#snapshot());
    (this.#held.iterSnaps ??= new Set()).add(snap);
    const rec: RangeRead = { meta: m, iv, rev, last: null, done: false, digest: new Digest() };
    (this.#ranges ??= []).push(rec);
    let base: Generator<Entry<"binary", "binary">, void, undefined> | null = null;
    try {
      const bo: RangeOptions<"binary"> = { reverse: rev };
      if (iv.lo !== null) iv.loIncl ? (bo.gte = iv.lo) : (bo.gt = iv.lo);
      if (iv.hi !== null) iv.hiIncl ? (bo.lte = iv.hi) : (bo.lt = iv.hi);
      base = snap.txn.range(m.raw, bo) as Generator<Entry<"binary", "binary">, void, undefined>;
      const buf = this.#buffer(m)?.sorted() ?? EMPTY;
      const step = rev ? -1 : 1;
      let bi = rev ? lastIn(buf, cmp, iv) : firstIn(buf, cmp, iv);
      let b = base.next();
      for (;;) {
        this.#usable();
        const bv = b.done ? null : b.value;
        let e: BufEntry | null = bi >= 0 && bi < buf.length ? buf[bi] : null;
        if (e !== null && !contains(cmp, iv, e.key)) e = null;
        if (bv === null && e === null) {
          rec.done = true;
          return;
        }
        const c = bv === null ? 1 : e === null ? -1 : rev ? -cmp(bv.key, e.key) : cmp(bv.key, e.key);
        let k: Uint8Array, v: Uint8Array | null;
        if (c <= 0) {
          rec.digest.add(bv!.key, bv!.value);
          b = base.next();
        }
        if (c < 0) {
          k = bv!.key;
          v = bv!.value;
        } else {
          k = e!.key;
          v = e!.value;
          bi += step;
        }
        rec.last = k;
        if (v === null) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        switch (what) {
          case 0:
            yield { key: t.k.decode(k, 0, k.length), value: t.v.decode(v, 0, v.length) };
            break;
          case 1:
            yield t.k.decode(k, 0, k.length);
            break;
          case 2:
            yield t.v.decode(v, 0, v.length);
            break;
          default:
            yield undefined;
        }
        if (--limit <= 0) return;
      }
    } finally {
      base?.return(); // closes its cursor
      if (this.#held.iterSnaps?.delete(snap)) pool.release(snap);
    }
  }

  #releaseSnapshots(): void {
    releaseSnapshots(this.#held);
  }

  /** Ends the transaction: releases snapshots and locks (rejecting lock waits with `why`), forgets the buffers. */
  #end(ended: string, why: unknown): void {
    if (this.#state === DONE) return;
    this.#state = DONE;
    this.#ended = ended;
    finalizer.unregister(this.#held);
    this.#releaseSnapshots();
    const owner = this.#owner;
    // an Error costs microseconds (its stack): only for waits to reject
    if (owner !== null) this.#st.locks.releaseAll(owner, why ?? (owner.waiting.size ? this.#aborted() : undefined));
    if (this.#onAbort) this.#signal!.removeEventListener("abort", this.#onAbort);
    this.#writes = null;
    this.#checks = null;
    this.#reads = null;
    this.#ranges = null;
  }
}

const PRESENT = new Uint8Array(0);

/** Where point reads land before they are kept (most values fit: no ArrayBuffer per read). */
const READ_ROOM = 65536;
let readBuf: Uint8Array | null = null;

/** The value of `kb` in `txn`, raw, as a private copy (`keep()`), or undefined. */
function readRaw(txn: Txn, m: TableMeta, kb: Uint8Array): Uint8Array | undefined {
  const buf = readBuf ??= new Uint8Array(READ_ROOM);
  let n: number;
  try {
    n = txn.getInto(m.raw, kb, buf);
  } catch (e) {
    if (e instanceof RangeError) return txn.get(m.raw, kb); // longer than READ_ROOM: read it with a copy of its own
    throw e;
  }
  return n < 0 ? undefined : keep(buf, n);
}

/** What an open transaction holds outside itself. */
interface Held {
  readonly st: EnvState;
  /** Counted in the pipeline's open transactions. */
  active: boolean;
  snap: Snap | null;
  /** Snapshots held by range iterators still open. */
  iterSnaps: Set<Snap> | null;
  readonly owner: LockOwner | null;
}

function leave(h: Held): void {
  if (!h.active) return;
  h.active = false;
  h.st.pipeline.active--;
}

function releaseSnapshots(h: Held): void {
  const pool = h.st.pool;
  if (h.snap !== null) pool.release(h.snap);
  h.snap = null;
  if (h.iterSnaps !== null) {
    for (const s of h.iterSnaps) pool.release(s);
    h.iterSnaps = null;
  }
}

/** A safety net: a transaction dropped while open lets go of its snapshot, locks and place in the pipeline. */
const finalizer = new FinalizationRegistry<Held>((h) => {
  leave(h);
  releaseSnapshots(h);
  if (h.owner !== null) h.st.locks.releaseAll(h.owner);
  h.st.pipeline.idle();
});

/** The key interval of range options (bounds copied). */
function interval(t: Table, o: RangeOptions<KeyKind>): Interval {
  if (o.uniqueKeys) {
    throw new TypeError("uniqueKeys is for dupSort tables, which concurrent transactions do not support");
  }
  const iv = rangeInterval(t, o);
  if (iv !== null) return iv;
  // a prefix and bounds that nothing can be in both: an empty interval
  const p = prefixBytes(t, o.prefix);
  return { lo: p, loIncl: false, hi: p, hiIncl: false };
}

/** Index of the first buffered entry at or after the interval's start. */
function firstIn(buf: BufEntry[], cmp: (a: Uint8Array, b: Uint8Array) => number, iv: Interval): number {
  if (iv.lo === null) return 0;
  let lo = 0, hi = buf.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = cmp(buf[mid].key, iv.lo);
    if (c < 0 || (c === 0 && !iv.loIncl)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the last buffered entry at or before the interval's end (-1 if none). */
function lastIn(buf: BufEntry[], cmp: (a: Uint8Array, b: Uint8Array) => number, iv: Interval): number {
  if (iv.hi === null) return buf.length - 1;
  let lo = 0, hi = buf.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = cmp(buf[mid].key, iv.hi);
    if (c < 0 || (c === 0 && iv.hiIncl)) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
