/**
 * Group commit: the one path by which concurrent transactions reach the
 * database.
 *
 * `commit()` queues a transaction; a flush takes the whole queue, begins one
 * MDBX write transaction, and for each queued transaction in order validates
 * its reads against the state it finds there (which includes the writes of the
 * transactions before it in the batch), then applies its buffered writes, or
 * skips it with a ConflictError. Validation only reads, so a conflicting
 * transaction has written nothing and the others go on. If applying a
 * transaction's writes fails (MAP_FULL, …), the whole MDBX transaction is
 * aborted, that transaction is rejected with the error, and the batch is run
 * again without it: a logical transaction is never partly applied, and nested
 * MDBX transactions (a few microseconds each) are not needed. Then one commit
 * (one sync in durable mode) makes the batch durable, and only after it
 * returns are the promises resolved; if it fails, every transaction of the
 * batch is rejected and nothing of it is in the database.
 *
 * The flush runs as soon as every open concurrent transaction of the Env has
 * asked to commit (a microtask), or else at the next macrotask, so commits
 * made close together share a batch and a transaction waiting for I/O does
 * not hold the others back. If a write transaction of this Env is open when a
 * flush is due (an env.beginWrite() kept across an await), the flush waits for
 * it on the next macrotask instead of failing.
 *
 * Durable mode (server block, src/durable.ts): the batch commits with
 * MDBX_TXN_NOSYNC and its promises settle once a native thread has synced it;
 * the event loop runs and the next batch forms and commits meanwhile.
 *
 * @module
 */
import type { Txn, WriteTxn } from "../txn.ts";
import { ConflictError } from "./errors.ts";
import type { DurableCommits, Syncer } from "../durable.ts";
import { ErrorCode, MdbxError } from "../errors.ts";

/** @internal What the pipeline needs from a transaction. */
export interface Committable {
  /**
   * Re-reads what the transaction read, in `txn`; returns a ConflictError if
   * anything differs. `baseId` is the txnid of the state `txn` started from;
   * `written` what was written in `txn` so far.
   */
  validate(txn: Txn, baseId: number, written: Written | null): Error | null;
  /** Writes the buffered changes into `w` and adds them to `written`. */
  apply(w: WriteTxn, written: Written): void;
  /** Called once with null (committed) or the reason it was not. */
  settle(e: unknown): void;
}

/** @internal Keys written in the batch's write transaction so far: dbi → key id → key bytes. */
export type Written = Map<number, Map<string, Uint8Array>>;

/**
 * @internal What the last transaction of a batch writes into instead of the
 * batch's `Written`: nothing is validated after it, so nothing needs to know
 * (a Committable may skip recording into it; it is cleared after each batch).
 */
export const UNRECORDED: Written = new Map();

/** @internal Statistics of one Env's pipeline. */
export interface PipelineStats {
  /** Flushes that committed a batch. */
  batches: number;
  /** Transactions committed. */
  committed: number;
  /** Transactions rejected by validation (ConflictError). */
  conflicts: number;
  /** Largest batch. */
  maxBatch: number;
}

/** @internal One per Env. */
export class CommitPipeline {
  readonly #beginWrite: () => WriteTxn;
  readonly #writerOpen: () => boolean;
  readonly #committed: () => void;
  #queue: Committable[] = [];
  #micro = false;
  #timer = false;
  /** Open concurrent transactions that have not asked to commit yet. */
  active = 0;
  /** Test-only: skip validation (shows that the tests notice). */
  unsafeSkipValidation = false;
  readonly stats: PipelineStats = { batches: 0, committed: 0, conflicts: 0, maxBatch: 0 };
  /** Durable commits off the event loop (set by the Env's state; null: sync inside the commit). */
  durable: DurableCommits | null = null;

  /**
   * @param beginWrite begins the top-level write transaction
   * @param writerOpen true while another write transaction of the Env is open
   * @param committed called after each commit, before any promise settles
   */
  constructor(beginWrite: () => WriteTxn, writerOpen: () => boolean, committed: () => void) {
    this.#beginWrite = beginWrite;
    this.#writerOpen = writerOpen;
    this.#committed = committed;
  }

  /** Queues a transaction for the next flush. */
  enqueue(c: Committable): void {
    this.#queue.push(c);
    this.#schedule();
  }

  /** Takes a queued transaction back out (its commit was cancelled); false if a flush already took it. */
  withdraw(c: Committable): boolean {
    const i = this.#queue.indexOf(c);
    if (i < 0) return false;
    this.#queue.splice(i, 1);
    return true;
  }

  /** Called when an open transaction ends without committing: the flush may not need to wait for it. */
  idle(): void {
    if (this.#queue.length) this.#schedule();
  }

  #schedule(): void {
    if (this.active <= 0) {
      if (!this.#micro) {
        this.#micro = true;
        queueMicrotask(() => {
          this.#micro = false;
          this.#flush();
        });
      }
    } else if (!this.#timer) {
      this.#timer = true;
      setTimeout(() => {
        this.#timer = false;
        this.#flush();
      }, 0);
    }
  }

  /** Tries the flush again a millisecond later (the writer lock is taken). */
  #flushLater(): void {
    if (this.#timer) return;
    this.#timer = true;
    setTimeout(() => {
      this.#timer = false;
      this.#flush();
    }, 1);
  }

  /**
   * Commits `c` at once, synchronously, as a batch of its own, when nothing
   * could share its batch: no other concurrent transaction of the Env is open
   * (`active` is 0), none is queued, no write transaction of the Env is open,
   * and the commit syncs on this thread (no sync thread in play). `c` is
   * settled before this returns true; false: nothing was done (enqueue it).
   * The batch runs exactly as a flush would run it: same validation, same
   * all-or-nothing application, settled only after the MDBX commit returned.
   */
  commitAlone(c: Committable): boolean {
    if (this.active > 0 || this.#queue.length > 0 || this.#writerOpen()) return false;
    if (this.durable !== null && this.durable.syncer() !== null) return false;
    this.#run([c], null);
    return true;
  }

  #flush(): void {
    if (this.#queue.length === 0) return;
    if (this.#writerOpen()) {
      // one writer per Env: wait for the open write transaction rather than fail
      this.#flushLater();
      return;
    }
    const batch = this.#queue;
    this.#queue = [];
    this.#run(batch, this.durable?.syncer() ?? null);
  }

  /** Validates, applies and commits `batch` in one MDBX write transaction (reruns without a failed apply). */
  #run(batch: Committable[], syncer: Syncer | null): void {
    const results: unknown[] = new Array(batch.length);
    for (;;) {
      let w: WriteTxn;
      try {
        // durable: commit without a sync; while our sync thread may hold the writer lock, do not wait for it here
        w = syncer !== null ? this.durable!.begin(syncer.inFlight > 0) : this.#beginWrite();
      } catch (e) {
        if (syncer !== null && e instanceof MdbxError && e.code === ErrorCode.BUSY) {
          this.#queue = batch.concat(this.#queue);
          this.#flushLater();
          return;
        }
        for (const c of batch) c.settle(e);
        return;
      }
      let failed = -1, failure: unknown = null, conflicts = 0;
      try {
        UNRECORDED.clear();
        const baseId = w.id - 1, written: Written = batch.length > 1 ? new Map() : UNRECORDED;
        for (let i = 0; i < batch.length; i++) {
          const c = batch[i];
          let v: unknown = null;
          if (!this.unsafeSkipValidation) {
            try {
              v = c.validate(w, baseId, written);
            } catch (e) {
              v = e; // validation only reads: nothing to undo
            }
          }
          if (v !== null) {
            results[i] = v;
            if (v instanceof ConflictError) conflicts++;
            continue;
          }
          try {
            c.apply(w, i === batch.length - 1 ? UNRECORDED : written);
          } catch (e) {
            failed = i;
            failure = e;
            break;
          }
          results[i] = null;
        }
        UNRECORDED.clear();
        if (failed < 0) w.commit();
      } catch (e) {
        // the commit failed: nothing of the batch was written
        if (w.isOpen) w.abort();
        this.#committed();
        for (const c of batch) c.settle(e);
        return;
      }
      if (failed >= 0) {
        w.abort();
        batch[failed].settle(failure);
        batch = batch.slice(0, failed).concat(batch.slice(failed + 1));
        results.length = batch.length;
        if (batch.length === 0) return;
        continue;
      }
      this.#committed();
      const s = this.stats;
      s.batches++;
      s.committed += batch.length - conflicts;
      s.conflicts += conflicts;
      if (batch.length > s.maxBatch) s.maxBatch = batch.length;
      if (syncer !== null) {
        this.#settleDurable(syncer.request(), batch, results);
        return;
      }
      for (let i = 0; i < batch.length; i++) batch[i].settle(results[i]);
      return;
    }
  }

  /** Durable mode: conflicts settle now, the committed transactions once `synced` resolves. */
  #settleDurable(synced: Promise<void>, batch: Committable[], results: unknown[]): void {
    for (let i = 0; i < batch.length; i++) if (results[i] !== null) batch[i].settle(results[i]);
    synced.then(
      () => {
        for (let i = 0; i < batch.length; i++) if (results[i] === null) batch[i].settle(null);
      },
      (e) => {
        for (let i = 0; i < batch.length; i++) if (results[i] === null) batch[i].settle(e);
      },
    );
  }
}
