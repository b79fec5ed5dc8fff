/**
 * libmdbx flag values used by turbomdbx (from mdbx.h of v0.14.3).
 *
 * @module
 */

/** Environment flags (MDBX_env_flags_t). */
export const EnvFlags = {
  VALIDATION: 0x2000,
  NOSUBDIR: 0x4000,
  RDONLY: 0x20000,
  EXCLUSIVE: 0x400000,
  ACCEDE: 0x40000000,
  WRITEMAP: 0x80000,
  NOSTICKYTHREADS: 0x200000,
  NORDAHEAD: 0x800000,
  NOMEMINIT: 0x1000000,
  LIFORECLAIM: 0x4000000,
  PAGEPERTURB: 0x8000000,
  SYNC_DURABLE: 0,
  NOMETASYNC: 0x40000,
  SAFE_NOSYNC: 0x10000,
  UTTERLY_NOSYNC: 0x10000 | 0x100000,
} as const;

/** Table flags (MDBX_db_flags_t). */
export const DbFlags = {
  REVERSEKEY: 0x02,
  DUPSORT: 0x04,
  INTEGERKEY: 0x08,
  DUPFIXED: 0x10,
  INTEGERDUP: 0x20,
  REVERSEDUP: 0x40,
  CREATE: 0x40000,
  ACCEDE: 0x40000000,
} as const;

/**
 * The table options that MDBX_db_flags_t bits stand for, for messages:
 * "dupSort, integer keys", or "no flags" (a plain table).
 */
export function describeTableFlags(flags: number): string {
  const words: string[] = [];
  if (flags & DbFlags.INTEGERKEY) words.push('integer keys ("uint32", "uint64" or "bigint")');
  if (flags & DbFlags.REVERSEKEY) words.push("reverseKeys");
  if (flags & DbFlags.DUPSORT) words.push("dupSort");
  if (flags & DbFlags.DUPFIXED) words.push("dupFixed");
  if (flags & DbFlags.INTEGERDUP) words.push('integer values ("uint32" or "uint64" with dupSort)');
  if (flags & DbFlags.REVERSEDUP) words.push("reverseDup");
  return words.length ? words.join(", ") : "no flags (a plain table)";
}

/** Put flags (MDBX_put_flags_t). */
export const PutFlags = {
  UPSERT: 0,
  NOOVERWRITE: 0x10,
  NODUPDATA: 0x20,
  CURRENT: 0x40,
  ALLDUPS: 0x80,
  RESERVE: 0x10000,
  APPEND: 0x20000,
  APPENDDUP: 0x40000,
  MULTIPLE: 0x80000,
} as const;

/** Transaction flags (MDBX_txn_flags_t). */
export const TxnFlags = {
  READWRITE: 0,
  RDONLY: 0x20000,
  TRY: 0x10000000,
  NOMETASYNC: 0x40000,
  NOSYNC: 0x10000,
  // state bits of mdbx_txn_flags()
  FINISHED: 0x01,
  ERROR: 0x02,
  DIRTY: 0x04,
  HAS_CHILD: 0x10,
  PARKED: 0x20,
  OUSTED: 0x80,
} as const;

/** Copy flags (MDBX_copy_flags_t). */
export const CopyFlags = {
  COMPACT: 1,
  FORCE_DYNAMIC_SIZE: 2,
  DONT_FLUSH: 4,
  THROTTLE_MVCC: 8,
  OVERWRITE: 64,
} as const;

/** Cursor operations (MDBX_cursor_op). */
export const CursorOp = {
  FIRST: 0,
  FIRST_DUP: 1,
  GET_BOTH: 2,
  GET_BOTH_RANGE: 3,
  GET_CURRENT: 4,
  GET_MULTIPLE: 5,
  LAST: 6,
  LAST_DUP: 7,
  NEXT: 8,
  NEXT_DUP: 9,
  NEXT_MULTIPLE: 10,
  NEXT_NODUP: 11,
  PREV: 12,
  PREV_DUP: 13,
  PREV_NODUP: 14,
  SET: 15,
  SET_KEY: 16,
  SET_RANGE: 17,
  PREV_MULTIPLE: 18,
  SET_LOWERBOUND: 19,
  SET_UPPERBOUND: 20,
  TO_KEY_LESSER_THAN: 21,
  TO_KEY_LESSER_OR_EQUAL: 22,
  TO_KEY_EQUAL: 23,
  TO_KEY_GREATER_OR_EQUAL: 24,
  TO_KEY_GREATER_THAN: 25,
} as const;

/**
 * The name of a libmdbx runtime option (MDBX_option_t, mdbx_env_set_option),
 * in camelCase: `maxTables` is MDBX_opt_max_db, `txnDpLimit` MDBX_opt_txn_dp_limit,
 * `syncPeriod` is in 1/65536 s, and so on. See libmdbx's documentation of each.
 */
export type OptionName =
  | "maxTables"
  | "maxReaders"
  | "syncBytes"
  | "syncPeriod"
  | "rpAugmentLimit"
  | "looseLimit"
  | "dpReserveLimit"
  | "txnDpLimit"
  | "txnDpInitial"
  | "spillMaxDenominator"
  | "spillMinDenominator"
  | "spillParent4ChildDenominator"
  | "mergeThreshold"
  | "writethroughThreshold"
  | "prefaultWriteEnable"
  | "gcTimeLimit"
  | "preferWafInsteadofBalance"
  | "subpageLimit"
  | "subpageRoomThreshold"
  | "subpageReservePrereq"
  | "subpageReserveLimit"
  | "splitReserve"
  | "presyncThreshold";

/** Environment options (MDBX_option_t). */
export const Option: Readonly<Record<OptionName, number>> = {
  maxTables: 0,
  maxReaders: 1,
  syncBytes: 2,
  syncPeriod: 3,
  rpAugmentLimit: 4,
  looseLimit: 5,
  dpReserveLimit: 6,
  txnDpLimit: 7,
  txnDpInitial: 8,
  spillMaxDenominator: 9,
  spillMinDenominator: 10,
  spillParent4ChildDenominator: 11,
  mergeThreshold: 12,
  writethroughThreshold: 13,
  prefaultWriteEnable: 14,
  gcTimeLimit: 15,
  preferWafInsteadofBalance: 16,
  subpageLimit: 17,
  subpageRoomThreshold: 18,
  subpageReservePrereq: 19,
  subpageReserveLimit: 20,
  splitReserve: 21,
  presyncThreshold: 22,
};

/** tm_scan flags (native/turbomdbx.c). */
export const Scan = {
  FIRST: 0,
  NEXT: 1,
  CURRENT: 2,
  REVERSE: 1 << 2,
  HAS_START: 1 << 3,
  START_EXCLUSIVE: 1 << 4,
  HAS_END: 1 << 5,
  END_INCLUSIVE: 1 << 6,
  PREFIX: 1 << 7,
  KEYS: 1 << 8,
  VALUES: 1 << 9,
  DUPS_OF_KEY: 1 << 10,
  NODUP: 1 << 11,
  DUPSORT: 1 << 12,
} as const;
