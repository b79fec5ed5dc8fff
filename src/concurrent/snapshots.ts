/**
 * Read snapshots shared by concurrent transactions.
 *
 * Many concurrent transactions begun close together read the same snapshot:
 * one read transaction (one reader slot) serves them all, reference-counted.
 * A snapshot is shared only while it is fresh: no commit by this process
 * since it was taken (pipeline or plain write transaction), no conflict seen
 * since, and younger than a few milliseconds (commits of other processes are
 * not announced). Its age never makes a result wrong — validation compares
 * with the state at commit — but an older snapshot conflicts more. Ended
 * snapshots are reset and kept for renew() (cheaper than a new reader slot).
 *
 * @module
 */
import type { ReadTxn } from "../txn.ts";

/** How long a snapshot may be handed to new transactions, in milliseconds. */
const MAX_SHARE_MS = 5;
/** Reset read transactions kept for renew(). */
const SPARES = 4;

/** True for a snapshot taken less than MAX_SHARE_MS ago (a clock set back ends the sharing too). */
function young(born: number): boolean {
  const age = Date.now() - born;
  return age >= 0 && age < MAX_SHARE_MS;
}

/** @internal A shared read snapshot. */
export interface Snap {
  readonly txn: ReadTxn;
  /** The snapshot's txnid. */
  readonly id: number;
  refs: number;
  readonly gen: number;
  /** When it was taken (Date.now(): a third of performance.now()'s cost in Deno; millisecond steps do here). */
  readonly born: number;
  /** The Env's count of local commits when it was taken. */
  readonly commits: number;
}

/** @internal One per Env. */
export class SnapshotPool {
  readonly #begin: () => ReadTxn;
  readonly #commits: () => number;
  #cur: Snap | null = null;
  #spare: ReadTxn[] = [];
  /** Bumped by every commit of the pipeline and every conflict: a new snapshot is due. */
  gen = 0;

  /** @param begin begins a read transaction; @param commits the Env's count of local commits */
  constructor(begin: () => ReadTxn, commits: () => number) {
    this.#begin = begin;
    this.#commits = commits;
  }

  /** A fresh-enough snapshot, with one more reference. */
  acquire(): Snap {
    const c = this.#cur;
    const commits = this.#commits();
    if (
      c !== null && c.gen === this.gen && c.commits === commits && c.txn.isOpen &&
      young(c.born)
    ) {
      c.refs++;
      return c;
    }
    if (c !== null) {
      this.#cur = null;
      if (c.refs === 0) this.#retire(c);
    }
    let txn: ReadTxn | undefined;
    while ((txn = this.#spare.pop()) !== undefined) {
      if (!txn.isOpen) continue;
      try {
        txn.renew();
        break;
      } catch {
        txn.end();
      }
    }
    txn ??= this.#begin();
    const s: Snap = { txn, id: txn.id, refs: 1, gen: this.gen, born: Date.now(), commits };
    this.#cur = s;
    return s;
  }

  /** One more reference to a snapshot already held. */
  retain(s: Snap): Snap {
    s.refs++;
    return s;
  }

  /** Drops a reference; the last one of a snapshot that is no longer current ends it. */
  release(s: Snap): void {
    if (--s.refs > 0) return;
    if (s === this.#cur) this.#cur = null;
    this.#retire(s);
  }

  /** New transactions must not get the current snapshot any more. */
  invalidate(): void {
    this.gen++;
    const c = this.#cur;
    if (c !== null && c.refs === 0) {
      this.#cur = null;
      this.#retire(c);
    }
  }

  #retire(s: Snap): void {
    const txn = s.txn;
    if (!txn.isOpen) return;
    if (this.#spare.length < SPARES) {
      try {
        txn.reset();
        this.#spare.push(txn);
        return;
      } catch {
        // fall through: end it
      }
    }
    txn.end();
  }
}
