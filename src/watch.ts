/**
 * The change feed: `env.watch()` and `env.watchKeys()`.
 *
 * One hub per Env keeps one read transaction on the newest snapshot it has
 * processed (the base). When a newer commit exists — of this process (woken
 * at once by the commit) or of any other writer (found by a poll every
 * `pollMs`) — it begins a read transaction on the newest snapshot, computes
 * per watched table the exact difference between the two snapshots
 * (native/watch.c over mdbx_txn_diff), hands it to every watcher, ends the old
 * base and keeps the new one. A commit is therefore never missed: every
 * change between two snapshots is in their difference, however many commits
 * lie between them. Watchers whose consumer is slow merge what arrives into
 * one pending batch per watcher (a key changed many times is held once, with
 * its newest value); when a watcher holds `maxPendingKeys` keys the hub stops
 * advancing, so memory stays bounded and the only cost is that the base
 * snapshot stays pinned until that consumer takes its batch. See
 * docs/server.md.
 *
 * @module
 */
import { backend, codeOf, fn } from "./core.ts";
import { ErrorCode, MdbxError } from "./errors.ts";
import type { Env } from "./env.ts";
import { prefixBytes, Table } from "./table.ts";
import { type EnvCore, type ReadTxn, tableIn } from "./txn.ts";
import type { KeyKind, KeyOf, ValueKind, ValueOf } from "./codec.ts";
import { describe } from "./codec.ts";
import { keyId } from "./concurrent/keys.ts";

/** Options of `env.watch()`. */
export interface WatchOptions<K> {
  /** Only keys that start with this prefix (binary and string keys). */
  prefix?: Uint8Array | string;
  /** Only these keys. */
  keys?: readonly K[];
  /** Stops the watch: the iterator ends (a pending `next()` resolves with `done`). */
  signal?: AbortSignal;
  /**
   * Changed keys a watcher may hold for a consumer that has not taken them
   * yet (default 100 000). Beyond it the Env's feed pauses (its snapshot stays
   * pinned) until that consumer takes its batch: memory is bounded, nothing is
   * lost.
   */
  maxPendingKeys?: number;
}

/** One key's change in a `ChangeBatch`. */
export interface Change<K, V> {
  /** The key. */
  key: K;
  /** The value at the batch's `version`; undefined when the key was deleted. */
  value: V | undefined;
  /** True when the key does not exist at the batch's `version`. */
  deleted: boolean;
}

/**
 * What changed in a table between two committed versions: every key whose
 * value at `version` differs from its value at `fromVersion`, with the value
 * at `version`. Consecutive batches of a watch are contiguous (a batch's
 * `fromVersion` is the previous batch's `version`).
 */
export interface ChangeBatch<K, V> {
  /** The table. */
  table: Table<KeyKind, ValueKind>;
  /** The version (txnid of the commit) whose state the batch describes. */
  version: number;
  /** The version the batch is relative to: the previous batch's `version`, or the watch's start. */
  fromVersion: number;
  /** The changed keys, each once (in no particular order). */
  changes: Change<K, V>[];
  /**
   * True when a live rebuild switched the database to a new file within this
   * batch: `changes` are still exact, but the versions before and after are
   * txnids of different files (`version` may even be lower than `fromVersion`).
   */
  switched?: true;
}

/** A running watch: an async iterable of change batches. End it with `close()`, `break` or the signal. */
export interface Watch<K, V> extends AsyncIterableIterator<ChangeBatch<K, V>>, AsyncDisposable, Disposable {
  /** The version the watch started at: it reports every commit after it. */
  readonly startVersion: number;
  /** Ends the watch; a pending `next()` resolves with `done`. Idempotent. */
  close(): void;
}

/** One entry yielded by `env.watchKeys()`. */
export interface WatchedEntry<K, V> {
  /** The key. */
  key: K;
  /** Its current value, or undefined if it does not exist. */
  value: V | undefined;
  /** The version (txnid) of the snapshot this value was read from. */
  version: number;
}

/** @internal How often the feed looks for commits of other processes, in milliseconds. */
export const POLL_MS = 5;

interface Record_ {
  id: string;
  key: Uint8Array;
  /** The value in the newer snapshot (null: absent). */
  value: Uint8Array | null;
  /** The value in the older snapshot (null: absent); in a watcher's pending batch, the value at its `from`. */
  before: Uint8Array | null;
}

class Watcher {
  readonly table: Table<KeyKind, ValueKind>;
  readonly prefix: Uint8Array | null;
  readonly keys: Set<string> | null;
  readonly maxPending: number;
  readonly hub: Hub;
  from: number;
  upTo: number;
  pending = new Map<string, Record_>();
  waiting:
    | { resolve: (r: IteratorResult<ChangeBatch<unknown, unknown>>) => void; reject: (e: unknown) => void }
    | null = null;
  error: unknown = null;
  closed = false;
  /** A live rebuild switched files since the last batch. */
  switched = false;

  constructor(
    hub: Hub,
    table: Table<KeyKind, ValueKind>,
    prefix: Uint8Array | null,
    keys: Set<string> | null,
    max: number,
  ) {
    this.hub = hub;
    this.table = table;
    this.prefix = prefix;
    this.keys = keys;
    this.maxPending = max;
    this.from = this.upTo = hub.version;
  }

  /** Takes the records of one difference that concern this watcher. */
  add(records: Record_[], version: number, switched: boolean): void {
    if (switched) this.switched = true;
    for (const r of records) {
      if (this.keys !== null && !this.keys.has(r.id)) continue;
      if (this.prefix !== null && !startsWith(r.key, this.prefix)) continue;
      const had = this.pending.get(r.id);
      // merged with an earlier difference: the value the consumer last saw is that one's `before`
      this.pending.set(r.id, had === undefined ? r : { id: r.id, key: r.key, value: r.value, before: had.before });
    }
    this.upTo = version;
    if (this.waiting !== null && (this.pending.size > 0 || this.switched)) {
      const batch = this.take();
      if (batch === null) return;
      const w = this.waiting;
      this.waiting = null;
      w.resolve({ value: batch, done: false });
    }
  }

  /** The pending changes as a batch, or null when they cancel out (nothing is pending afterwards). */
  take(): ChangeBatch<unknown, unknown> | null {
    const t = this.table;
    const changes: Change<unknown, unknown>[] = [];
    for (const r of this.pending.values()) {
      if (sameBytes(r.before, r.value)) continue; // changed and came back since the last batch
      changes.push({
        key: t.k.decode(r.key, 0, r.key.length),
        value: r.value === null ? undefined : t.v.decode(r.value, 0, r.value.length),
        deleted: r.value === null,
      });
    }
    this.pending = new Map();
    // the feed may have paused for this consumer
    this.hub.wake();
    if (changes.length === 0 && !this.switched) return null; // `from` stays: the next batch covers this stretch too
    const batch: ChangeBatch<unknown, unknown> = { table: t, version: this.upTo, fromVersion: this.from, changes };
    if (this.switched) batch.switched = true;
    this.switched = false;
    this.from = this.upTo;
    return batch;
  }

  fail(e: unknown): void {
    this.error = e;
    if (this.waiting !== null) {
      const w = this.waiting;
      this.waiting = null;
      w.reject(e);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.remove(this);
    if (this.waiting !== null) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<ChangeBatch<unknown, unknown>>> {
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    if (this.error === null) this.hub.poll(); // the newest state, not only what the timer saw
    if (this.pending.size > 0 || this.switched) {
      const batch = this.take();
      if (batch !== null) return Promise.resolve({ value: batch, done: false });
    }
    if (this.error !== null) return Promise.reject(this.error);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    if (this.waiting !== null) {
      return Promise.reject(new TypeError("a watch's next() was called again before its promise settled; await each"));
    }
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }
}

/** @internal One per Env: the base snapshot, the timer, the watchers. */
class Hub {
  readonly env: Env;
  readonly core: EnvCore;
  base: ReadTxn | null = null;
  version = 0;
  readonly watchers = new Set<Watcher>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #micro = false;
  #polling = false;
  readonly #out = new Float64Array(4);
  /** Statistics: differences computed, and pages they read. */
  readonly stats = { diffs: 0, pages: 0, polls: 0 };

  constructor(env: Env, core: EnvCore) {
    this.env = env;
    this.core = core;
  }

  add(w: Watcher): void {
    this.watchers.add(w);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.poll(), POLL_MS);
      this.core.onCommit = () => this.wake();
    }
  }

  remove(w: Watcher): void {
    this.watchers.delete(w);
    if (this.watchers.size === 0) this.stop();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.core.onCommit) this.core.onCommit = undefined;
    if (this.base !== null && this.base.isOpen) this.base.end();
    this.base = null;
  }

  /** Starts (or brings up to date) the base snapshot; returns its version. */
  start(): number {
    if (this.base === null || !this.base.isOpen) {
      this.base = this.env.beginRead();
      this.version = this.base.id;
    } else this.poll();
    return this.version;
  }

  wake(): void {
    if (this.#micro) return;
    this.#micro = true;
    queueMicrotask(() => {
      this.#micro = false;
      this.poll();
    });
  }

  /** Processes the commits since the base, if any and if no watcher is full. */
  poll(): void {
    if (this.#polling || this.base === null || !this.env.isOpen) {
      if (!this.env.isOpen) this.#closeAll();
      return;
    }
    for (const w of this.watchers) if (w.pending.size >= w.maxPending) return; // paused: see WatchOptions
    this.stats.polls++;
    this.#polling = true;
    let next: ReadTxn | null = null;
    try {
      next = this.env.beginRead();
      if (next.id === this.version) return;
      const version = next.id;
      const byTable = new Map<Table<KeyKind, ValueKind>, Watcher[]>();
      for (const w of this.watchers) {
        const l = byTable.get(w.table);
        if (l) l.push(w);
        else byTable.set(w.table, [w]);
      }
      const switched = this.base._c.world !== next._c.world;
      for (const [t, ws] of byTable) {
        const records = this.#diff(this.base, next, t, commonPrefix(ws));
        for (const w of ws) w.add(records, version, switched);
      }
      this.base.end();
      this.base = next;
      this.version = version;
      next = null;
    } catch (e) {
      for (const w of [...this.watchers]) {
        w.fail(e);
        w.close();
      }
    } finally {
      next?.end();
      this.#polling = false;
    }
  }

  #diff(older: ReadTxn, newer: ReadTxn, t: Table<KeyKind, ValueKind>, prefix: Uint8Array | null): Record_[] {
    if (t.dropped) throw new MdbxError(ErrorCode.BAD_DBI, `${t} was dropped: its watch ends`);
    const out = this.#out, outBytes = new Uint8Array(out.buffer);
    const co = older._c, cn = newer._c;
    const p = co.world === cn.world
      ? fn.tm_watch_diff(older._h(), newer._h(), tableIn(cn, t).dbi, prefix, prefix?.length ?? 0, outBytes)
      // a live rebuild switched files in between: their pages cannot be paired, compare the whole table once
      : fn.tm_watch_fulldiff(
        older._h(),
        tableIn(co, t).dbi,
        newer._h(),
        tableIn(cn, t).dbi,
        prefix,
        prefix?.length ?? 0,
        outBytes,
      );
    this.stats.diffs++;
    this.stats.pages += out[3];
    if (out[2] < 0) throw new MdbxError(codeOf(out[2]), `computing the changes of ${t} for env.watch()`);
    if (p === null || out[0] === 0) return [];
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(backend.view(backend.address(p), out[0])).slice();
    } finally {
      fn.tm_watch_free(p);
    }
    const records: Record_[] = [];
    const seen = new Set<string>();
    for (let at = 0; at < bytes.length;) {
      const klen = u32(bytes, at), vlen = u32(bytes, at + 4), olen = u32(bytes, at + 8);
      at += 12;
      const key = bytes.subarray(at, at + klen);
      at += klen;
      let value: Uint8Array | null = null, before: Uint8Array | null = null;
      if (vlen !== ABSENT) {
        value = bytes.subarray(at, at + vlen);
        at += vlen;
      }
      if (olen !== ABSENT) {
        before = bytes.subarray(at, at + olen);
        at += olen;
      }
      const id = keyId(key);
      if (seen.has(id)) continue; // reported from both snapshots' pages
      seen.add(id);
      records.push({ id, key, value, before });
    }
    return records;
  }

  #closeAll(): void {
    for (const w of [...this.watchers]) w.close();
    this.stop();
  }
}

const ABSENT = 0xffffffff;

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function u32(b: Uint8Array, at: number): number {
  return (b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24) >>> 0;
}

function startsWith(k: Uint8Array, p: Uint8Array): boolean {
  if (k.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (k[i] !== p[i]) return false;
  return true;
}

/** The longest prefix every watcher of a table asks for (null if one asks for all keys). */
function commonPrefix(ws: Watcher[]): Uint8Array | null {
  let p: Uint8Array | null = null;
  for (const w of ws) {
    if (w.prefix === null) return null;
    if (p === null) p = w.prefix;
    else {
      let n = 0;
      while (n < p.length && n < w.prefix.length && p[n] === w.prefix[n]) n++;
      p = p.subarray(0, n);
    }
  }
  return p !== null && p.length > 0 ? p : null;
}

const hubs = new WeakMap<Env, Hub>();

function hubOf(env: Env, core: EnvCore): Hub {
  let h = hubs.get(env);
  if (h === undefined) hubs.set(env, h = new Hub(env, core));
  return h;
}

function checkTable(core: EnvCore, table: unknown, what: string): Table<KeyKind, ValueKind> {
  if (!(table instanceof Table)) throw new TypeError(`${what} needs a Table from env.table(), got ${describe(table)}`);
  if (table.owner !== core) throw new TypeError(`${what}: ${table} belongs to another environment`);
  if (table.dupSort) {
    throw new TypeError(`${what}: ${table} is a dupSort table; the change feed supports plain tables only`);
  }
  if (table.dropped) throw new MdbxError(ErrorCode.BAD_DBI, `${what}: ${table} was dropped`);
  return table;
}

/** @internal `env.watch()`. */
export function watch<K extends KeyKind, V extends ValueKind>(
  env: Env,
  core: EnvCore,
  table: Table<K, V>,
  options: WatchOptions<KeyOf<K>> = {},
): Watch<KeyOf<K>, ValueOf<V>> {
  const t = checkTable(core, table, "env.watch()");
  if (options === null || typeof options !== "object") {
    throw new TypeError(`env.watch() options must be an object, got ${describe(options)}`);
  }
  const prefix = options.prefix === undefined ? null : prefixBytes(t, options.prefix);
  let keys: Set<string> | null = null;
  if (options.keys !== undefined) {
    if (!Array.isArray(options.keys)) {
      throw new TypeError(`env.watch() keys must be an array, got ${describe(options.keys)}`);
    }
    keys = new Set(options.keys.map((k) => keyId(t.k.encode(k, "key").slice(0, t.k.len))));
  }
  const max = options.maxPendingKeys ?? 100_000;
  if (!(Number.isInteger(max) && max >= 1)) {
    throw new RangeError(`env.watch() maxPendingKeys must be a positive integer, got ${describe(max)}`);
  }
  const signal = options.signal;
  signal?.throwIfAborted();
  const hub = hubOf(env, core);
  hub.start();
  const w = new Watcher(hub, t, prefix, keys, max);
  hub.add(w);
  const onAbort = () => w.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  const close = () => {
    signal?.removeEventListener("abort", onAbort);
    w.close();
  };
  const it: Watch<KeyOf<K>, ValueOf<V>> = {
    startVersion: w.from,
    next: () => w.next() as Promise<IteratorResult<ChangeBatch<KeyOf<K>, ValueOf<V>>>>,
    return: () => {
      close();
      return Promise.resolve({ value: undefined, done: true });
    },
    close,
    [Symbol.asyncIterator]() {
      return it;
    },
    [Symbol.asyncDispose]: () => {
      close();
      return Promise.resolve();
    },
    [Symbol.dispose]: close,
  };
  return it;
}

/** @internal `env.watchKeys()`: the current values of `keys`, again whenever one of them changes. */
export async function* watchKeys<K extends KeyKind, V extends ValueKind>(
  env: Env,
  core: EnvCore,
  table: Table<K, V>,
  keys: readonly KeyOf<K>[],
  options: { signal?: AbortSignal } = {},
): AsyncGenerator<WatchedEntry<KeyOf<K>, ValueOf<V>>[], void, undefined> {
  const t = checkTable(core, table, "env.watchKeys()");
  if (!Array.isArray(keys)) throw new TypeError(`env.watchKeys() needs an array of keys, got ${describe(keys)}`);
  const w = watch(env, core, table, { keys, signal: options.signal });
  try {
    const ids = keys.map((k) => keyId(t.k.encode(k, "key").slice(0, t.k.len)));
    const current = new Map<string, WatchedEntry<KeyOf<K>, ValueOf<V>>>();
    env.read((txn) => {
      // the watch's start snapshot or a newer one: a change in between comes again in the first batch
      for (let i = 0; i < keys.length; i++) {
        current.set(ids[i], { key: keys[i], value: txn.get(table, keys[i] as never) as ValueOf<V>, version: txn.id });
      }
    });
    yield ids.map((id) => ({ ...current.get(id)! }));
    for await (const batch of w) {
      for (const c of batch.changes) {
        const id = keyId(t.k.encode(c.key, "key").slice(0, t.k.len));
        current.set(id, { key: c.key, value: c.value, version: batch.version });
      }
      yield ids.map((id) => ({ ...current.get(id)! }));
    }
  } finally {
    w.close();
  }
}
