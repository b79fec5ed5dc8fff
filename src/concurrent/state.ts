/**
 * What the concurrent transactions of one Env share: the snapshot pool, the
 * commit pipeline, the lock manager, and per-table facts.
 *
 * @module
 */
import type { Env } from "../env.ts";
import { ErrorCode } from "../errors.ts";
import { misuse } from "../core.ts";
import { Table } from "../table.ts";
import { describe } from "../codec.ts";
import type { EnvCore } from "../txn.ts";
import { type Cmp, comparator } from "./keys.ts";
import { LockManager } from "./locks.ts";
import { CommitPipeline } from "./pipeline.ts";
import { SnapshotPool } from "./snapshots.ts";
import { durableCommits } from "../durable.ts";

/** @internal Per-table facts of concurrent transactions. */
export interface TableMeta {
  /** The user's handle. */
  readonly table: Table;
  /**
   * The same table seen with binary keys and values: reads and writes of raw
   * bytes through the ordinary transaction paths (and the table's get() cache).
   */
  readonly raw: Table<"binary", "binary">;
  /** The table's key order. */
  readonly cmp: Cmp;
  /** The longest key the table accepts. */
  readonly maxKey: number;
}

/** @internal One per Env, created on first use. */
export class EnvState {
  readonly env: Env;
  readonly core: EnvCore;
  readonly pool: SnapshotPool;
  readonly pipeline: CommitPipeline;
  readonly locks: LockManager;
  /** Test-only: pessimistic transactions take no locks (shows that the tests notice). */
  unsafeSkipLocks = false;
  readonly #metas = new WeakMap<Table, TableMeta>();
  #priority = 0;

  constructor(env: Env, core: EnvCore) {
    this.env = env;
    this.core = core;
    this.pool = new SnapshotPool(() => env.beginRead(), () => core.commits);
    this.pipeline = new CommitPipeline(
      () => env.beginWrite(),
      () => core.writer !== null,
      () => this.pool.invalidate(),
    );
    this.locks = new LockManager((t) => this.meta(t).cmp);
    this.pipeline.durable = durableCommits(env, core); // durable batches sync off the event loop (src/durable.ts)
  }

  /** A new transaction age (lower is older). */
  nextPriority(): number {
    return ++this.#priority;
  }

  /** Facts of a table, checked to belong to this Env and to be usable here. */
  meta(t: Table): TableMeta {
    let m = this.#metas.get(t);
    if (m === undefined) {
      if (!(t instanceof Table)) throw new TypeError(`expected a Table from env.table(), got ${describe(t)}`);
      if (t.owner !== this.core) throw new TypeError(`${t} belongs to another environment`);
      if (t.dupSort) {
        throw new TypeError(
          `${t} is a dupSort table: concurrent transactions support plain tables only; use env.write() for it`,
        );
      }
      const raw = new Table(t.owner, t.name, t.dbi, t.flags, "binary", "binary", t.gen);
      m = { table: t, raw, cmp: comparator(t.flags), maxKey: this.env.maxKeySize(t.flags) };
      this.#metas.set(t, m);
    }
    if (t.dropped) throw misuse(ErrorCode.BAD_DBI, `${t} was dropped`);
    // the get() cache may have been enabled (or dropped) since, and a live rebuild may have moved the table
    m.raw.cache = t.cache;
    m.raw.dbi = t.dbi;
    m.raw.gen = t.gen;
    return m;
  }
}

const states = new WeakMap<Env, EnvState>();

/** @internal The concurrent-transaction state of an Env. */
export function stateOf(env: Env, core: EnvCore): EnvState {
  let st = states.get(env);
  if (st === undefined) states.set(env, st = new EnvState(env, core));
  return st;
}

/** @internal The state of an Env that already used concurrent transactions (tests, statistics). */
export function existingState(env: Env): EnvState | undefined {
  return states.get(env);
}
