/**
 * Concurrent write transactions: `env.transact()` and `env.beginConcurrent()`
 * delegate here. See docs/concurrency.md.
 *
 * @module
 */
import type { Env } from "../env.ts";
import type { EnvCore } from "../txn.ts";
import { ConflictError, LockTimeoutError } from "./errors.ts";
import { type ConcurrentOptions, ConcurrentTxn } from "./txn.ts";
import { stateOf } from "./state.ts";

export { ConflictError, DeadlockError, LockTimeoutError } from "./errors.ts";
export type { ConflictTarget } from "./errors.ts";
export { ConcurrentTxn } from "./txn.ts";
export type { ConcurrencyMode, ConcurrentGetOptions, ConcurrentOptions } from "./txn.ts";

/** Options of `env.transact()`. */
export interface TransactOptions extends ConcurrentOptions {
  /** Retries after a ConflictError or DeadlockError before giving up with it (default 100). */
  retries?: number;
  /** Backoff before the second and later retries: a random delay up to this × 2^(retry-1) ms (default 1). */
  backoffMs?: number;
  /** Largest backoff in milliseconds (default 100). */
  maxBackoffMs?: number;
  /** Called before each retry with the error and the retry's number (1, 2, …). */
  onRetry?: (error: ConflictError, retry: number) => void;
}

/** @internal `env.beginConcurrent()`. */
export function beginConcurrent(env: Env, core: EnvCore, options?: ConcurrentOptions): ConcurrentTxn {
  return new ConcurrentTxn(stateOf(env, core), options);
}

/** @internal `env.transact()`. */
export async function transact<T>(
  env: Env,
  core: EnvCore,
  fn: (tx: ConcurrentTxn) => T | Promise<T>,
  options: TransactOptions = {},
): Promise<T> {
  if (typeof fn !== "function") throw new TypeError("env.transact() needs a function (tx) => ...");
  const st = stateOf(env, core);
  const retries = options.retries ?? 100;
  const base = options.backoffMs ?? 1, max = options.maxBackoffMs ?? 100;
  if (!(retries >= 0)) throw new RangeError(`retries must be >= 0, got ${retries}`);
  const signal = options.signal;
  // one age for every attempt: a deadlock victim grows older and eventually wins
  const priority = st.nextPriority();
  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    const tx = new ConcurrentTxn(st, options, priority);
    try {
      const r = await fn(tx);
      if (tx.isOpen) {
        const p = tx._commit(); // undefined: committed at once (alone), no promise to wait for
        if (p !== undefined) await p;
      }
      return r;
    } catch (e) {
      tx.abort();
      if (!(e instanceof ConflictError) || e instanceof LockTimeoutError || attempt >= retries || signal?.aborted) {
        throw e;
      }
      options.onRetry?.(e, attempt + 1);
      // the winner of a conflict has committed: retry at once (joining the next group commit), then back off
      if (attempt > 0) await sleep(Math.random() * Math.min(max, base * 2 ** (attempt - 1)), signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      signal?.removeEventListener("abort", abort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", abort, { once: true });
  });
}
