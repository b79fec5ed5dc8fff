/**
 * turbomdbx: libmdbx for Deno and Bun.
 *
 * ```ts
 * import { open } from "@turbomdbx/turbomdbx";
 *
 * using env = open("./data.mdbx");
 * const objects = env.table("objects", { keys: "string" });
 * env.write((txn) => txn.put(objects, "user:1", '{"name":"Ada"}'));
 * const value = env.read((txn) => txn.get(objects, "user:1"));
 * ```
 *
 * @module
 */
export { checkDatabase, deleteDatabase, Env, open, parseSize } from "./src/env.ts";
export type {
  CheckDatabaseOptions,
  DefragResult,
  EnvInfo,
  GcInfo,
  Geometry,
  LaggardHandler,
  LaggardReader,
  OpenOptions,
  ReaderInfo,
  Size,
  SyncMode,
} from "./src/env.ts";
export type { CheckOptions, CheckResult } from "./src/check.ts";
export type { LogEntry, Logger, LogLevel } from "./src/log.ts";
export { ReadTxn, Txn, WriteTxn } from "./src/txn.ts";
export type { Canary, PutOptions, RangeOptions, Stat, TableEntry, TxnInfo, UnsafeView } from "./src/txn.ts";
export { Table } from "./src/table.ts";
export type { TableInfo, TableOptions } from "./src/table.ts";
export { Cursor } from "./src/cursor.ts";
export type { CacheOptions, CacheStats } from "./src/cache.ts";
export type { FollowBatch, FollowEntry, FollowOptions } from "./src/batch.ts";
export type { RebuildOptions, RebuildPhaseName, RebuildProgress, RebuildResult } from "./src/rebuild.ts";
export type { Entry } from "./src/cursor.ts";
export type { KeyInput, KeyKind, KeyOf, PrefixInput, ValueInput, ValueKind, ValueOf } from "./src/codec.ts";
export { json, JsonCodec, msgpack, MsgpackCodec } from "./src/encodings.ts";
export type { MsgpackOptions, ValueCodec } from "./src/encodings.ts";
export { packTuple, unpackTuple } from "./src/tuple.ts";
export type { Tuple, TupleElement } from "./src/tuple.ts";
export { VersionMismatchError } from "./src/versions.ts";
export type { Version } from "./src/versions.ts";
export { ErrorCode, errorName, MdbxError } from "./src/errors.ts";
export { ConcurrentTxn, ConflictError, DeadlockError, LockTimeoutError } from "./src/concurrent/mod.ts";
export type { Change, ChangeBatch, Watch, WatchedEntry, WatchOptions } from "./src/watch.ts";
export type {
  ConcurrencyMode,
  ConcurrentGetOptions,
  ConcurrentOptions,
  ConflictTarget,
  TransactOptions,
} from "./src/concurrent/mod.ts";
export { DbFlags, EnvFlags, PutFlags } from "./src/constants.ts";
export type { OptionName } from "./src/constants.ts";
export { libraryCandidates, libraryFileName, libraryInfo, loadLibrary, runtime } from "./src/ffi/mod.ts";
export type { Library, LibraryInfo, LoadLibraryOptions } from "./src/ffi/mod.ts";
// order statistics (docs/order-statistics.md)
export { configureOrderStatistics, orderStatistics } from "./src/ostat.ts";
export type { OrderStatistics, PositionOptions, RankOptions, SampleOptions } from "./src/ostat.ts";
