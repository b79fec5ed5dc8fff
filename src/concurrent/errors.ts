/**
 * Errors of concurrent write transactions: a failed validation, a deadlock
 * victim, a lock wait that took too long.
 *
 * @module
 */

/** What a conflict is about: one key, or a range of keys, of one table. */
export interface ConflictTarget {
  /** The table's name (null: the main table). */
  table: string | null;
  /** The key, typed like the table's keys, when the conflict is about one key. */
  key?: unknown;
  /** A description of the range, when the conflict is about a range read, e.g. `["a", "b")`. */
  range?: string;
}

/**
 * The transaction cannot be serialized: a key or range it read was changed by
 * another transaction (of this process or of another one) after it read it, so
 * it was not committed and nothing of it was written. `env.transact()` retries
 * it; with `env.beginConcurrent()` run it again from the start.
 */
export class ConflictError extends Error {
  /** The table's name (null: the main table). */
  readonly table: string | null;
  /** The key, typed like the table's keys, when the conflict is about one key. */
  readonly key: unknown;
  /** A description of the range, when the conflict is about a range read. */
  readonly range: string | undefined;

  /**
   * A conflict about `target`.
   *
   * @param target what the conflict is about: the table, and the key or range
   * @param message what happened and what to do
   */
  constructor(target: ConflictTarget, message: string) {
    super(message);
    this.name = "ConflictError";
    this.table = target.table;
    this.key = target.key;
    this.range = target.range;
  }
}

/**
 * A pessimistic transaction was chosen as the victim of a deadlock (a cycle of
 * transactions waiting for each other's locks). Its locks were released at
 * once, so the others go on; `env.transact()` retries it.
 */
export class DeadlockError extends ConflictError {
  /**
   * A deadlock, found while waiting for a lock on `target`.
   *
   * @param target the lock it was waiting for
   * @param message the cycle of transactions
   */
  constructor(target: ConflictTarget, message: string) {
    super(target, message);
    this.name = "DeadlockError";
  }
}

/**
 * A pessimistic transaction waited longer than its `timeoutMs` for a lock. It
 * is not retried by `env.transact()` (a retry would wait again): the error
 * reaches the caller, and the transaction is aborted.
 */
export class LockTimeoutError extends ConflictError {
  /** How long it waited, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * A lock wait on `target` that exceeded `timeoutMs`.
   *
   * @param target the lock it was waiting for
   * @param timeoutMs the limit it exceeded, in milliseconds
   * @param message what it waited for
   */
  constructor(target: ConflictTarget, timeoutMs: number, message: string) {
    super(target, message);
    this.name = "LockTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}
