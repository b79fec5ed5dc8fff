/**
 * The lock manager of pessimistic transactions (one per Env, in-process).
 *
 * Locks:
 *  - key locks, shared (a read) or exclusive (a write), per table and key;
 *  - range locks, shared only, on an interval of keys of a table (a range
 *    read): they conflict with exclusive key locks of other transactions on any
 *    key inside the interval, present or not, so no other pessimistic
 *    transaction can insert into, change or delete from a range that a
 *    transaction has scanned until it ends (no phantoms).
 *
 * Waits are FIFO: a request waits for conflicting holders and for earlier
 * conflicting requests, except that a transaction that already holds a lock on
 * the key (an upgrade from shared to exclusive) only waits for holders. Every
 * time a request blocks, or the holders a waiting request waits for change,
 * the wait-for graph (transaction → transactions it waits for) is searched for
 * a cycle; the youngest transaction of a cycle is the victim: its waiting
 * requests are rejected with DeadlockError and all its locks are released at
 * once, so the others proceed without waiting for a timeout. Transactions
 * keep their age across retries (`priority`), so a transaction that was a
 * victim becomes older than newcomers and eventually wins.
 *
 * @module
 */
import type { Table } from "../table.ts";
import { type Cmp, contains, type Interval } from "./keys.ts";
import { DeadlockError, LockTimeoutError } from "./errors.ts";

/** Shared (read) and exclusive (write) modes. */
export const SHARED = 1, EXCLUSIVE = 2;

/** @internal A transaction as the lock manager knows it. */
export class LockOwner {
  /** Age: lower is older. Kept across retries, so the deadlock victim (the youngest) eventually wins. */
  readonly priority: number;
  /** A short label for messages (#<priority>). */
  readonly label: string;
  /** Set once this owner was chosen as a deadlock victim: every later request fails with it. */
  doomed: Error | null = null;
  /** Requests waiting now. */
  readonly waiting: Set<LockRequest> = new Set();
  /** Key locks held: table → key ids. */
  readonly keys: Map<Table, Set<string>> = new Map();
  /** Range locks held. */
  readonly ranges: RangeLock[] = [];

  constructor(priority: number) {
    this.priority = priority;
    this.label = `#${priority}`;
  }
}

interface KeyLock {
  key: Uint8Array;
  holders: Map<LockOwner, number>;
}

/** @internal */
export interface RangeLock extends Interval {
  owner: LockOwner;
  table: Table;
}

/** @internal A lock request that could not be granted at once. */
export interface LockRequest {
  owner: LockOwner;
  table: Table;
  /** Key requests: the key id and bytes; range requests: null. */
  kid: string | null;
  key: Uint8Array | null;
  /** Range requests: the interval. */
  iv: Interval | null;
  mode: number;
  seq: number;
  /** Owners it waits for (recomputed whenever the lock table changes). */
  blockers: Set<LockOwner>;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Describes the request for messages: the table and key or range. */
  describe: () => { table: string | null; key?: unknown; range?: string; text: string };
}

/** Options of one lock request. */
export interface LockWait {
  /** Give up after this many milliseconds (LockTimeoutError). */
  timeoutMs: number;
  /** Cancels the wait (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Describes the lock for messages. */
  describe: LockRequest["describe"];
}

/** @internal One per Env. */
export class LockManager {
  readonly #keys = new Map<Table, Map<string, KeyLock>>();
  readonly #ranges = new Map<Table, RangeLock[]>();
  readonly #cmp: (t: Table) => Cmp;
  #waiting: LockRequest[] = [];
  #seq = 0;
  #busy = false;
  #again = false;

  constructor(cmp: (t: Table) => Cmp) {
    this.#cmp = cmp;
  }

  /** Requests waiting now (for tests and statistics). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Locks one key. Returns null when granted at once, else a promise that
   * settles when it is granted, or rejects (deadlock victim, timeout, abort).
   */
  lockKey(
    owner: LockOwner,
    table: Table,
    kid: string,
    key: Uint8Array,
    mode: number,
    wait: LockWait,
  ): Promise<void> | null {
    if (owner.doomed) return Promise.reject(owner.doomed);
    const held = this.#keys.get(table)?.get(kid)?.holders.get(owner) ?? 0;
    if (held >= mode) return null;
    return this.#request(owner, table, kid, key, null, mode, wait);
  }

  /** Locks an interval of keys in shared mode; like lockKey otherwise. */
  lockRange(owner: LockOwner, table: Table, iv: Interval, wait: LockWait): Promise<void> | null {
    if (owner.doomed) return Promise.reject(owner.doomed);
    return this.#request(owner, table, null, null, iv, SHARED, wait);
  }

  #request(
    owner: LockOwner,
    table: Table,
    kid: string | null,
    key: Uint8Array | null,
    iv: Interval | null,
    mode: number,
    wait: LockWait,
  ): Promise<void> | null {
    const req: LockRequest = {
      owner,
      table,
      kid,
      key,
      iv,
      mode,
      seq: ++this.#seq,
      blockers: new Set(),
      resolve: () => {},
      reject: () => {},
      timer: undefined,
      signal: wait.signal,
      onAbort: undefined,
      describe: wait.describe,
    };
    this.#blockers(req, this.#waiting.length);
    if (req.blockers.size === 0) {
      this.#grant(req);
      return null;
    }
    if (wait.signal?.aborted) return Promise.reject(wait.signal.reason);
    const p = new Promise<void>((resolve, reject) => {
      req.resolve = resolve;
      req.reject = reject;
    });
    this.#waiting.push(req);
    owner.waiting.add(req);
    if (wait.timeoutMs !== Infinity) {
      req.timer = setTimeout(() => {
        const d = req.describe();
        this.#fail(
          req,
          new LockTimeoutError(
            d,
            wait.timeoutMs,
            `lock wait timeout: transaction ${owner.label} waited ${wait.timeoutMs} ms for a ` +
              `${mode === EXCLUSIVE ? "write" : "read"} lock on ${d.text} (held by ${names(req.blockers)})`,
          ),
        );
      }, wait.timeoutMs);
    }
    if (wait.signal) {
      req.onAbort = () => this.#fail(req, wait.signal!.reason);
      wait.signal.addEventListener("abort", req.onAbort, { once: true });
    }
    this.#detect([owner]);
    return p;
  }

  /** Releases every lock of `owner` and rejects its waiting requests (with `why`, if given). */
  releaseAll(owner: LockOwner, why?: unknown): void {
    for (const req of owner.waiting) this.#drop(req, why ?? new Error("the transaction ended"));
    owner.waiting.clear();
    for (const [table, kids] of owner.keys) {
      const m = this.#keys.get(table);
      if (!m) continue;
      for (const kid of kids) {
        const kl = m.get(kid);
        if (!kl) continue;
        kl.holders.delete(owner);
        if (kl.holders.size === 0) m.delete(kid);
      }
      if (m.size === 0) this.#keys.delete(table);
    }
    owner.keys.clear();
    for (const r of owner.ranges) {
      const list = this.#ranges.get(r.table);
      if (!list) continue;
      const i = list.indexOf(r);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#ranges.delete(r.table);
    }
    owner.ranges.length = 0;
    this.#process();
  }

  /** Removes a waiting request and rejects it; others may proceed now. */
  #fail(req: LockRequest, e: unknown): void {
    if (!req.owner.waiting.has(req)) return;
    req.owner.waiting.delete(req);
    this.#drop(req, e);
    this.#process();
  }

  #drop(req: LockRequest, e: unknown): void {
    const i = this.#waiting.indexOf(req);
    if (i >= 0) this.#waiting.splice(i, 1);
    if (req.timer !== undefined) clearTimeout(req.timer);
    if (req.onAbort) req.signal!.removeEventListener("abort", req.onAbort);
    req.reject(e);
  }

  #grant(req: LockRequest): void {
    const owner = req.owner;
    if (req.kid !== null) {
      let m = this.#keys.get(req.table);
      if (!m) this.#keys.set(req.table, m = new Map());
      let kl = m.get(req.kid);
      if (!kl) m.set(req.kid, kl = { key: req.key!, holders: new Map() });
      const had = kl.holders.get(owner) ?? 0;
      if (req.mode > had) kl.holders.set(owner, req.mode);
      let kids = owner.keys.get(req.table);
      if (!kids) owner.keys.set(req.table, kids = new Set());
      kids.add(req.kid);
    } else {
      const r: RangeLock = { ...req.iv!, owner, table: req.table };
      let list = this.#ranges.get(req.table);
      if (!list) this.#ranges.set(req.table, list = []);
      list.push(r);
      owner.ranges.push(r);
    }
  }

  /** Fills req.blockers: holders it conflicts with, and conflicting requests among the first `before` waiting. */
  #blockers(req: LockRequest, before: number): void {
    const b = req.blockers;
    b.clear();
    const owner = req.owner;
    const cmp = this.#cmp(req.table);
    const keys = this.#keys.get(req.table);
    let upgrade = false;
    if (req.kid !== null) {
      const kl = keys?.get(req.kid);
      if (kl) {
        upgrade = kl.holders.has(owner);
        for (const [o, m] of kl.holders) if (o !== owner && (m === EXCLUSIVE || req.mode === EXCLUSIVE)) b.add(o);
      }
      if (req.mode === EXCLUSIVE) {
        const ranges = this.#ranges.get(req.table);
        if (ranges) { for (const r of ranges) if (r.owner !== owner && contains(cmp, r, req.key!)) b.add(r.owner); }
      }
    } else if (keys) {
      for (const kl of keys.values()) {
        if (!contains(cmp, req.iv!, kl.key)) continue;
        for (const [o, m] of kl.holders) if (o !== owner && m === EXCLUSIVE) b.add(o);
      }
    }
    if (upgrade) return;
    // FIFO: earlier requests that would conflict with this one go first
    for (let i = 0; i < before; i++) {
      const w = this.#waiting[i];
      if (w === req) break;
      if (w.owner !== owner && w.table === req.table && this.#clash(cmp, w, req)) b.add(w.owner);
    }
  }

  /** True if two requests of other owners on one table could not both be held. */
  #clash(cmp: Cmp, a: LockRequest, b: LockRequest): boolean {
    if (a.kid !== null && b.kid !== null) return a.kid === b.kid && (a.mode === EXCLUSIVE || b.mode === EXCLUSIVE);
    if (a.kid !== null) return a.mode === EXCLUSIVE && contains(cmp, b.iv!, a.key!);
    if (b.kid !== null) return b.mode === EXCLUSIVE && contains(cmp, a.iv!, b.key!);
    return false;
  }

  /** Grants what can be granted now, in FIFO order, and looks for deadlocks among the rest. */
  #process(): void {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    try {
      do {
        this.#again = false;
        const changed: LockOwner[] = [];
        for (let i = 0; i < this.#waiting.length; i++) {
          const req = this.#waiting[i];
          this.#blockers(req, i);
          if (req.blockers.size === 0) {
            this.#waiting.splice(i--, 1);
            req.owner.waiting.delete(req);
            if (req.timer !== undefined) clearTimeout(req.timer);
            if (req.onAbort) req.signal!.removeEventListener("abort", req.onAbort);
            this.#grant(req);
            req.resolve();
          } else {
            changed.push(req.owner);
          }
        }
        if (changed.length) this.#detect(changed);
      } while (this.#again);
    } finally {
      this.#busy = false;
    }
  }

  /** Looks for a wait-for cycle through each of `starts`; dooms the youngest owner of each cycle found. */
  #detect(starts: LockOwner[]): void {
    for (const start of starts) {
      if (start.waiting.size === 0 || start.doomed) continue;
      const cycle = this.#cycle(start);
      if (!cycle) continue;
      let victim = cycle[0];
      for (const o of cycle) if (o.priority > victim.priority) victim = o;
      const req = [...victim.waiting][0];
      const d = req.describe();
      const path = cycle.map((o) => o.label).join(" → ");
      victim.doomed = new DeadlockError(
        d,
        `deadlock: transaction ${victim.label} was chosen as the victim of the cycle ${path} → ${cycle[0].label} ` +
          `while waiting for a ${req.mode === EXCLUSIVE ? "write" : "read"} lock on ${d.text}; ` +
          "its locks were released and it must be retried (env.transact() does so)",
      );
      // releaseAll re-enters #process, which the #busy flag turns into another pass
      this.releaseAll(victim, victim.doomed);
    }
  }

  /** A cycle of owners through `start` in the wait-for graph, or null. */
  #cycle(start: LockOwner): LockOwner[] | null {
    const path: LockOwner[] = [];
    const seen = new Set<LockOwner>();
    const next = (o: LockOwner): LockOwner[] => {
      const out: LockOwner[] = [];
      for (const r of o.waiting) for (const b of r.blockers) if (!b.doomed) out.push(b);
      return out;
    };
    const dfs = (o: LockOwner): boolean => {
      path.push(o);
      seen.add(o);
      for (const n of next(o)) {
        if (n === start) return true;
        if (!seen.has(n) && n.waiting.size > 0 && dfs(n)) return true;
      }
      path.pop();
      return false;
    };
    return dfs(start) ? path : null;
  }
}

function names(owners: Set<LockOwner>): string {
  return [...owners].map((o) => o.label).join(", ") || "nobody";
}
