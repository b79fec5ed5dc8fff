/**
 * One error class for every failure that libmdbx reports, with its native
 * code, its name, and a message that says what to do about it.
 *
 * @module
 */

/** libmdbx's own error codes (negative) and the errno values it commonly returns. */
export const ErrorCode = {
  SUCCESS: 0,
  RESULT_TRUE: -1,
  KEYEXIST: -30799,
  NOTFOUND: -30798,
  PAGE_NOTFOUND: -30797,
  CORRUPTED: -30796,
  PANIC: -30795,
  VERSION_MISMATCH: -30794,
  INVALID: -30793,
  MAP_FULL: -30792,
  DBS_FULL: -30791,
  READERS_FULL: -30790,
  TXN_FULL: -30788,
  CURSOR_FULL: -30787,
  PAGE_FULL: -30786,
  UNABLE_EXTEND_MAPSIZE: -30785,
  INCOMPATIBLE: -30784,
  BAD_RSLOT: -30783,
  BAD_TXN: -30782,
  BAD_VALSIZE: -30781,
  BAD_DBI: -30780,
  PROBLEM: -30779,
  BUSY: -30778,
  EMULTIVAL: -30421,
  EBADSIGN: -30420,
  WANNA_RECOVERY: -30419,
  EKEYMISMATCH: -30418,
  TOO_LARGE: -30417,
  THREAD_MISMATCH: -30416,
  TXN_OVERLAPPING: -30415,
  BACKLOG_DEPLETED: -30414,
  DUPLICATED_LCK: -30413,
  DANGLING_DBI: -30412,
  OUSTED: -30411,
  MVCC_RETARDED: -30410,
  LAGGARD_READER: -30409,
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENOMEM: 12,
  EACCES: 13,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  EFBIG: 27,
  EINTR: 4,
  EROFS: 30,
  EAGAIN: 11,
} as const;

/** The name of a libmdbx error code. */
export type ErrorName = `MDBX_${keyof typeof ErrorCode}` | `MDBX_E${number}`;

const NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, `MDBX_${k}`]));

const ADVICE: Partial<Record<keyof typeof ErrorCode, string>> = {
  KEYEXIST: "the key (or key/value pair) already exists; drop the noOverwrite/noDupData flag to overwrite it",
  NOTFOUND: "no such key or key/value pair",
  CORRUPTED: "the database file is damaged: list the damage with checkDatabase(path) (or `turbomdbx chk <db>`), " +
    "copy out what still reads, and restore the database from a backup",
  PANIC: "libmdbx hit a fatal error and the environment can no longer be used; close it and open it again",
  VERSION_MISMATCH: "the file was written by an incompatible libmdbx version",
  INVALID: "the file is not an MDBX database (or its header is damaged)",
  MAP_FULL: "the database reached its size limit (the geometry's upper bound); the write transaction was aborted. " +
    "Grow the limit while the database stays open with env.resize({ upper: '64GiB' }) and write again (or open it " +
    "with a larger geometry upper bound: { geometry: { upper } })",
  DBS_FULL: "too many named tables are open; open the environment with a larger maxTables",
  READERS_FULL: "the reader table is full; end unused read transactions or open with a larger maxReaders",
  TXN_FULL: "the write transaction has too many dirty pages; commit in smaller batches",
  PAGE_NOTFOUND: "a page the database refers to is missing or of the wrong kind: the file is damaged; list the " +
    "damage with checkDatabase(path) (or `turbomdbx chk <db>`) and restore the database from a backup",
  CURSOR_FULL: "the cursor stack is too deep (internal limit); the database may be damaged: check it with " +
    "checkDatabase(path) (or `turbomdbx chk <db>`)",
  PAGE_FULL: "a page has no room (internal error); the database may be damaged: check it with checkDatabase(path) " +
    "(or `turbomdbx chk <db>`)",
  UNABLE_EXTEND_MAPSIZE: "the map could not be extended; another process may hold the old size, or memory is short",
  INCOMPATIBLE: "the operation does not fit the table's flags (for example a dupsort operation on a plain table), " +
    "or the table was opened with flags that differ from how it was created",
  BAD_RSLOT: "the reader slot is invalid; a read transaction was used after its thread or process changed",
  BAD_TXN: "the transaction cannot be used: it has ended, failed, or has an active nested transaction",
  BAD_VALSIZE: "the key or value has a size the table does not accept (too long, or not 4/8 bytes for integer keys)",
  BAD_DBI: "the table handle is not valid in this transaction (it was dropped, opened by an aborted transaction, " +
    "or created after this transaction began)",
  PROBLEM: "libmdbx met an inconsistency, most often a damaged database file: list the damage with " +
    "checkDatabase(path) (or `turbomdbx chk <db>`) and restore the database from a backup if it reports any",
  BUSY: "the database is in use in a way that forbids this (for example opened exclusively, or already open in " +
    "this process: open each file once per process and share the Env)",
  EMULTIVAL: "the key has several values; name the value to change, or use a cursor",
  EBADSIGN: "a handle was used after it was closed or freed",
  WANNA_RECOVERY: "the database needs recovery; open it read-write once to roll back to the last durable state",
  EKEYMISMATCH: "the key does not match the cursor's current key",
  TOO_LARGE: "the database or a value is too large for this platform or page size",
  THREAD_MISMATCH: "a transaction was used from a thread other than the one that began it",
  TXN_OVERLAPPING: "this thread already has a transaction open for the environment",
  BACKLOG_DEPLETED: "the GC backlog is depleted; retry the write",
  DUPLICATED_LCK: "the lock file is already open by this process through another path",
  DANGLING_DBI: "a table handle outlived its table; reopen it",
  OUSTED: "this read transaction was ousted by the Handle-Slow-Readers callback; start a new one",
  MVCC_RETARDED: "the snapshot is too old to be kept; start a new read transaction",
  LAGGARD_READER: "a long-lived reader holds an old snapshot; end it and retry",
  ENOENT: "no such file or directory (check the path)",
  EACCES: "permission denied",
  EROFS: "the environment or file is read-only",
  ENOSPC: "no space left on the device",
  EFBIG: "the file grew past a size limit (RLIMIT_FSIZE or the file system's)",
  EINTR: "interrupted (cancelled)",
  ENOMEM: "out of memory",
  EINVAL: "invalid argument",
  EEXIST: "the file already exists",
  EAGAIN: "resource temporarily unavailable: another process holds a lock on it",
};

/** A failure reported by libmdbx (or a misuse turbomdbx detects in its stead). */
export class MdbxError extends Error {
  /** The native code: negative for libmdbx's own errors, positive for errno values. */
  readonly code: number;
  /** The code's name, e.g. `MDBX_NOTFOUND`. */
  readonly codeName: string;
  /**
   * The last message libmdbx logged about this failure, as "function: message"
   * (for example `badpage: corrupted leaf-page #7, …` or `gc_alloc_ex: unable
   * alloc 1 …`), if it logged one; undefined otherwise.
   */
  readonly detail?: string;

  /**
   * An error with a native code; its message is prefixed with the code's name.
   *
   * @param code the native code: negative for libmdbx's own, positive for an errno value
   * @param message what happened and what to do about it
   * @param detail libmdbx's own message about it, if any (becomes `detail`)
   */
  constructor(code: number, message: string, detail?: string) {
    const codeName = errorName(code);
    super(`${codeName}: ${message}`);
    this.name = "MdbxError";
    this.code = code;
    this.codeName = codeName;
    if (detail !== undefined) this.detail = detail;
  }
}

/** The name for a native code: `MDBX_NOTFOUND`, or `MDBX_E<errno>` for an unnamed errno. */
export function errorName(code: number): string {
  return NAMES.get(code) ?? (code > 0 ? `MDBX_E${code}` : `MDBX_${code}`);
}

/** Advice for a code, if turbomdbx has some. */
export function errorAdvice(code: number): string | undefined {
  const name = NAMES.get(code);
  return name ? ADVICE[name.slice(5) as keyof typeof ErrorCode] : undefined;
}
