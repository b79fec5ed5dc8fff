/**
 * Durable commits off the event loop: one native sync thread per Env
 * (native/sync.c). A group commit commits with MDBX_TXN_NOSYNC, asks the
 * thread for a sync and settles its promises once the sync that covers it is
 * done; JavaScript keeps running meanwhile and the next batch forms and
 * commits. Deno learns of completion through a nonblocking FFI call (a
 * promise), Bun by polling one cheap native call on a timer. docs/server.md.
 *
 * @module
 */
import { backend, codeOf, fn, scratch } from "./core.ts";
import { EnvFlags, TxnFlags } from "./constants.ts";
import { MdbxError } from "./errors.ts";
import type { Handle } from "./ffi/mod.ts";
import { beginTxn, type EnvCore, WriteTxn } from "./txn.ts";

const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;

/** How long Bun polls a waiting sync on every event-loop turn before it falls back to a 1 ms timer. */
const EAGER_POLL_MS = 4;

interface Waiter {
  ticket: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** @internal One per Env (created on the first durable group commit). */
export class Syncer {
  readonly #core: EnvCore;
  #h: Handle | null;
  readonly #waiters: Waiter[] = [];
  #timer: unknown = null;
  #polls = 0;
  readonly #state = new Int32Array(3);
  readonly #stateBytes = new Uint8Array(this.#state.buffer);
  /** Syncs asked for and not yet seen done. */
  inFlight = 0;
  /** Statistics: syncs requested, and how many were served by another's sync. */
  readonly stats = { requests: 0 };

  constructor(core: EnvCore) {
    this.#core = core;
    const h = fn.tm_syncer_open(core.handle(), scratch.i32Bytes);
    if (h === null) throw new MdbxError(codeOf(scratch.i32[0]), "starting the sync thread of a durable group commit");
    this.#h = h;
  }

  /** Resolves once everything this process committed so far is on disk. */
  request(): Promise<void> {
    const h = this.#h;
    if (h === null) return Promise.reject(new MdbxError(codeOf(-9), "the environment was closed"));
    const ticket = fn.tm_syncer_request(h, this.#core.handle());
    this.stats.requests++;
    this.inFlight++;
    return new Promise<void>((resolve, reject) => {
      const wait = backend.syncWait;
      if (wait !== null) {
        // Deno: a nonblocking call waits on one of Deno's threads
        wait(h, ticket).then((rc) => {
          this.inFlight--;
          if (rc < 0) reject(new MdbxError(codeOf(rc), "syncing a durable group commit"));
          else resolve();
        }, (e) => {
          this.inFlight--;
          reject(e);
        });
        return;
      }
      this.#waiters.push({ ticket, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Bun: polls the thread's progress on every turn of the event loop for the
   * first milliseconds of a wait (a sync usually takes that long: a 1 ms timer
   * would add up to a millisecond to each commit), then every millisecond.
   */
  #schedule(): void {
    if (this.#timer !== null) return;
    if (this.#polls++ === 0) this.#since = performance.now();
    const eager = performance.now() - this.#since < EAGER_POLL_MS;
    const run = () => {
      this.#timer = null;
      this.#poll();
    };
    // setTimeout(0) is 1 ms in Bun (as in Node); setImmediate runs on the next turn, after I/O and timers
    this.#timer = eager && immediate !== undefined ? immediate(run) : setTimeout(run, eager ? 0 : 1);
  }
  #since = 0;

  #poll(): void {
    if (this.#h === null) return;
    const done = fn.tm_syncer_state(this.#h, this.#stateBytes);
    this.#settle(done);
    if (this.#waiters.length > 0) this.#schedule();
    else this.#polls = 0;
  }

  #settle(done: number): void {
    const failedRc = this.#state[0], failedUpTo = this.#state[1] >>> 0;
    let n = 0;
    for (const w of this.#waiters) {
      if (((done - w.ticket) | 0) < 0) break;
      n++;
      this.inFlight--;
      if (failedUpTo !== 0 && ((failedUpTo - w.ticket) | 0) >= 0 && failedRc < 0) {
        w.reject(new MdbxError(codeOf(failedRc), "syncing a durable group commit"));
      } else w.resolve();
    }
    if (n > 0) this.#waiters.splice(0, n);
  }

  /** Serves every request (waits for the thread's last sync), stops the thread. */
  close(): void {
    const h = this.#h;
    if (h === null) return;
    this.#h = null;
    this.#timer = null; // a scheduled poll finds the syncer closed and does nothing
    fn.tm_syncer_close(h, this.#stateBytes); // serves every ticket first
    this.#settle(this.#state[2] >>> 0);
  }
}

const syncers = new WeakMap<EnvCore, Syncer>();

/**
 * @internal The Env's syncer when its commits should be made durable off the
 * event loop (sync mode "durable", not Windows), else null.
 */
export function syncerFor(core: EnvCore, env: { readonly flags: number }): Syncer | null {
  if (env.flags & (EnvFlags.SAFE_NOSYNC | EnvFlags.NOMETASYNC | EnvFlags.RDONLY)) return null;
  let s = syncers.get(core);
  if (s === undefined) {
    try {
      s = new Syncer(core);
    } catch {
      return null; // no thread (Windows, or none could start): sync on the JavaScript thread as before
    }
    syncers.set(core, s);
  }
  return s;
}

/** @internal Stops the Env's sync thread, if it has one (Env.close, before the native env closes). */
export function closeSyncer(core: EnvCore): void {
  const s = syncers.get(core);
  if (s === undefined) return;
  syncers.delete(core);
  s.close();
}

/** @internal What the group-commit pipeline needs to make batches durable off the event loop. */
export interface DurableCommits {
  /** The syncer when commits of this Env are to be synced off the event loop now, else null. */
  syncer(): Syncer | null;
  /**
   * Begins a batch's write transaction without a sync at commit; with `tryOnly`
   * it fails with MDBX_BUSY instead of waiting for the writer lock (held by the
   * sync thread for a moment, or by another process).
   */
  begin(tryOnly: boolean): WriteTxn;
}

/** @internal The pipeline's hooks for one Env. */
export function durableCommits(
  env: { readonly flags: number; readonly readOnly: boolean },
  core: EnvCore,
): DurableCommits {
  return {
    syncer: () => (env.readOnly || offThread.disabled ? null : syncerFor(core, env)),
    begin: (tryOnly) => new WriteTxn(beginTxn(core, true, TxnFlags.NOSYNC | (tryOnly ? TxnFlags.TRY : 0))),
  };
}

/** @internal Test and benchmark switch: `disabled` makes durable group commits sync on the JavaScript thread. */
export const offThread = { disabled: false };
