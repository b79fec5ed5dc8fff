/**
 * Auto-batched writes: `await env.put(table, key, value)` and
 * `await env.del(table, key)` without a transaction. The writes made in one
 * turn of the event loop (before the group-commit pipeline's next flush)
 * become one logical transaction of the pipeline (src/concurrent/pipeline.ts),
 * applied in call order in the same MDBX write transaction as the concurrent
 * transactions of that flush, and their promises resolve once it is committed
 * — durable, in durable mode, synced off the event loop (src/durable.ts).
 * docs/server.md.
 *
 * @module
 */
import type { Env } from "./env.ts";
import type { EnvCore, WriteTxn } from "./txn.ts";
import type { Txn } from "./txn.ts";
import type { Committable, Written } from "./concurrent/pipeline.ts";
import { stateOf, type TableMeta } from "./concurrent/state.ts";
import { keyId } from "./concurrent/keys.ts";
import type { Table } from "./table.ts";
import type { KeyKind, ValueKind } from "./codec.ts";
import { ErrorCode } from "./errors.ts";
import { misuse } from "./core.ts";

interface Op {
  m: TableMeta;
  key: Uint8Array;
  value: Uint8Array | null;
}

/** One turn's writes: one logical transaction of the pipeline, with no reads to validate. */
class TurnBatch implements Committable {
  readonly ops: Op[] = [];
  /** One promise for every write of the batch: they are committed (or fail) together. */
  readonly done: Promise<void>;
  #resolve!: () => void;
  #reject!: (e: unknown) => void;
  taken = false;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  validate(_txn: Txn, _baseId: number, _written: Written | null): Error | null {
    this.taken = true; // the flush has it: later writes go to the next batch
    return null;
  }

  apply(w: WriteTxn, written: Written): void {
    this.taken = true;
    for (const { m, key, value } of this.ops) {
      const dbi = m.table.dbi;
      let ws = written.get(dbi);
      if (ws === undefined) written.set(dbi, ws = new Map());
      if (value === null) w.del(m.raw, key);
      else w.put(m.raw, key, value);
      ws.set(keyId(key), key);
    }
  }

  settle(e: unknown): void {
    if (e === null) this.#resolve();
    else this.#reject(e);
  }
}

const current = new WeakMap<Env, TurnBatch>();

/** @internal `env.put()` / `env.del()`: queues one write; resolves once it is committed (durable in durable mode). */
export function autoWrite<K extends KeyKind, V extends ValueKind>(
  env: Env,
  core: EnvCore,
  table: Table<K, V>,
  key: unknown,
  value: unknown,
  del: boolean,
): Promise<void> {
  try {
    if (env.readOnly) throw misuse(ErrorCode.EACCES, `${env.path} is open read-only; it cannot be written`);
    const st = stateOf(env, core);
    const m = st.meta(table);
    const k = table.k.encode(key, "key").slice(0, table.k.len);
    if (k.length > m.maxKey) {
      throw new RangeError(`a key of ${k.length} bytes is longer than ${table} accepts (${m.maxKey} bytes)`);
    }
    const v = del ? null : table.v.encode(value, "value").slice(0, table.v.len);
    let b = current.get(env);
    if (b === undefined || b.taken) {
      b = new TurnBatch();
      current.set(env, b);
      st.pipeline.enqueue(b);
    }
    b.ops.push({ m, key: k, value: v });
    return b.done;
  } catch (e) {
    return Promise.reject(e); // bad input rejects the promise; nothing is thrown synchronously
  }
}
