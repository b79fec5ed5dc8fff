/**
 * Live rebuild: options, progress and result of `env.rebuild()`.
 *
 * The work is native (native/rebuild.c, on a thread of its own, with the
 * compacting copy and the snapshot difference of patch 0003); this module
 * names its numbers. The protocol and why no write is lost: docs/rebuild.md.
 *
 * @module
 */

/** What `env.rebuild()` accepts. */
export interface RebuildOptions {
  /** Called about every `progressIntervalMs` while the rebuild runs, and once at the end. */
  onProgress?: (progress: RebuildProgress) => void;
  /** Cancels the rebuild (before its switch): the database stays as it was; the partial copy is removed. */
  signal?: AbortSignal;
  /** How often progress is polled and reported, in milliseconds (default 100). */
  progressIntervalMs?: number;
  /**
   * Largest size the new file may have (bytes, or a string such as "2GiB"): a
   * larger one fails the rebuild with MDBX_MAP_FULL and leaves the database as
   * it was. Default: no limit beyond the database's geometry.
   */
  maxSize?: number | string;
}

/** Where a rebuild is. */
export type RebuildPhaseName = "copy" | "catchUp" | "switch" | "done" | "failed";

/** Progress of a rebuild. Rates and the ETA are of the copy, which is most of the time. */
export interface RebuildProgress {
  /** What the rebuild is doing now. */
  phase: RebuildPhaseName;
  /** Pages written to the new file so far. */
  pagesCopied: number;
  /** Pages the new file will have (known once the copy began). */
  pagesTotal: number;
  /** Bytes written to the new file so far. */
  bytesCopied: number;
  /** Bytes the new file will have (known once the copy began). */
  bytesTotal: number;
  /** Bytes per second of the copy so far. */
  rate: number;
  /** Seconds the copy still needs at that rate (0 once it is done). */
  etaSeconds: number;
  /** Catch-up rounds done (each replays what was committed during the one before). */
  rounds: number;
  /** Keys replayed into the new file so far. */
  keysReplayed: number;
  /** Seconds since the rebuild started. */
  elapsedSeconds: number;
}

/** What a finished rebuild reports. */
export interface RebuildResult {
  /** Seconds of the whole run. */
  seconds: number;
  /** Seconds of the compacting copy. */
  copySeconds: number;
  /** Seconds of the catch-up rounds (replaying what was committed during the copy). */
  catchUpSeconds: number;
  /** Catch-up rounds run. */
  rounds: number;
  /** Keys replayed into the new file, in every round and at the switch. */
  keysReplayed: number;
  /** Keys replayed while holding the write lock, at the switch. */
  switchKeys: number;
  /** How long writers (of every process) were held at the switch, in milliseconds. */
  stallMs: number;
  /** Size of the data file before, in bytes. */
  bytesBefore: number;
  /** Size of the new data file, in bytes. */
  bytesAfter: number;
}

/** @internal tm_rebuild_poll's phases. */
export const RebuildPhase = { COPY: 1, CATCHUP: 2, SWITCH: 3, DONE: 4, FAILED: 5 } as const;

const NAMES: RebuildPhaseName[] = ["copy", "copy", "catchUp", "switch", "done", "failed"];

/** @internal Progress from tm_rebuild_poll's numbers (see native/rebuild.c). */
export function progressOf(o: Float64Array): RebuildProgress {
  const ps = o[3] || 4096;
  const copied = o[1], total = o[2];
  const copySeconds = o[9] > 0 ? o[9] / 1e9 : o[8] / 1e9;
  const rate = copySeconds > 0 ? copied * ps / copySeconds : 0;
  const left = Math.max(0, total - copied) * ps;
  return {
    phase: NAMES[o[0]] ?? "copy",
    pagesCopied: copied,
    pagesTotal: total,
    bytesCopied: copied * ps,
    bytesTotal: total * ps,
    rate,
    etaSeconds: o[0] > RebuildPhase.COPY || rate === 0 ? 0 : left / rate,
    rounds: o[4],
    keysReplayed: o[5],
    elapsedSeconds: o[8] / 1e9,
  };
}

/** @internal The result from tm_rebuild_join's numbers. */
export function resultOf(o: Float64Array): RebuildResult {
  const ps = o[3] || 4096;
  return {
    seconds: o[8] / 1e9,
    copySeconds: o[9] / 1e9,
    catchUpSeconds: o[10] / 1e9,
    rounds: o[4],
    keysReplayed: o[5],
    switchKeys: o[6],
    stallMs: o[7] / 1e6,
    bytesBefore: o[11] * ps,
    bytesAfter: o[12] * ps,
  };
}
