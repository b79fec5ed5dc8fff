/**
 * Integrity checks that report damage instead of failing on it: `env.check()`
 * and `checkDatabase()` (src/env.ts) run libmdbx's mdbx_env_chk through
 * native/turbomdbx.c, which collects every issue as a line, and add what
 * mdbx_env_chk does not look at: the three meta pages (native/integrity.c)
 * and the pages libmdbx's page validation refused while checking.
 *
 * @module
 */
import { backend, cString, fail, fn, scratch } from "./core.ts";
import { ErrorCode, errorName } from "./errors.ts";
import type { Handle } from "./ffi/mod.ts";
import { flushLog } from "./log.ts";

/** The outcome of `env.check()` and `checkDatabase()` (mdbx_env_chk, plus the meta pages). */
export interface CheckResult {
  /** True when the check ran to its end and found nothing wrong. */
  ok: boolean;
  /** All problems found. */
  problems: number;
  /** Problems in the meta pages. */
  metaProblems: number;
  /** Problems in the structure of the page trees (all of them). */
  treeProblems: number;
  /** Problems in the structure of the GC's tree. */
  gcTreeProblems: number;
  /** Problems in the structure of the tables' trees. */
  kvTreeProblems: number;
  /** Problems in the GC's content (free-page lists). */
  gcProblems: number;
  /** Problems in the tables' content (keys, values, order). */
  kvProblems: number;
  /** Tables checked (including the main table and the GC). */
  tables: number;
  /** Pages the check visited. */
  processedPages: number;
  /** Pages allocated (up to the last used page). */
  allocatedPages: number;
  /** Pages the data file has. */
  backedPages: number;
  /** Pages in the GC. */
  gcPages: number;
  /** Pages of the GC that can be reused now. */
  reclaimablePages: number;
  /** Allocated pages that no tree uses (in a sound database, as many as the GC holds). */
  unusedPages: number;
  /** Bytes of keys and values stored. */
  payloadBytes: number;
  /** The txnid of the checked snapshot. */
  txnId: number;
  /**
   * One line per issue, naming what is damaged and how: "page 7: invalid/corrupted (leaf-page, parent 3)",
   * "meta page 1: …", "table \"users\", entry 12: wrong order of entries", "page check: corrupted
   * leaf-page #7, …" (libmdbx's own words for a page it refused).
   */
  issues: string[];
  /**
   * Set when the check could not go on to its end, saying where it stopped and why (a damaged page under which
   * nothing could be walked, a file that could not be opened, the timeout); what it checked before is reported.
   */
  stopped?: string;
}

/** Options of `env.check()`. */
export interface CheckOptions {
  /** Do not check key order (for tables written with custom comparators). */
  ignoreOrder?: boolean;
  /** Skip the pass over every key and value (faster; the page trees are still walked). */
  skipKeys?: boolean;
  /** Stop after this many seconds (0 to 65535; 0 or absent: no limit); the result then has `stopped`. */
  timeoutSeconds?: number;
}

/** The 16.16 fixed-point seconds libmdbx takes for a timeout, range-checked (it is a u32 in C). */
export function timeout16dot16(seconds: number | undefined, what: string): number {
  if (seconds === undefined) return 0;
  if (typeof seconds !== "number" || !(seconds >= 0) || seconds >= 65536) {
    throw new RangeError(
      `${what} must be a number of seconds from 0 to 65535 (0: no limit); got ${
        typeof seconds === "number" ? seconds : typeof seconds
      }`,
    );
  }
  return Math.min(0xffffffff, Math.round(seconds * 65536));
}

/** Codes of a check that say the check could not be made (a misuse or the machine), not that the file is damaged. */
const NOT_DAMAGE = new Set<number>([
  ErrorCode.EBADSIGN,
  ErrorCode.EINVAL,
  ErrorCode.ENOMEM,
  ErrorCode.THREAD_MISMATCH,
  ErrorCode.TXN_OVERLAPPING,
  ErrorCode.READERS_FULL,
  ErrorCode.BAD_RSLOT,
  ErrorCode.BUSY,
  ErrorCode.EAGAIN,
  ErrorCode.EPERM,
  ErrorCode.EACCES,
]);

/** MDBX_chk_stage_t, as what the check was doing. */
const STAGES = [
  "the check",
  "starting the check",
  "taking the read lock",
  "reading the meta pages",
  "walking the page trees",
  "checking the GC",
  "checking the page accounting",
  "checking the main table",
  "checking the tables",
  "concluding the check",
  "releasing the lock",
  "finishing the check",
];

/** What tm_dxb_metas() says about a meta page (native/integrity.c, META_*). */
const META_PROBLEMS = [
  "",
  "the file ends before it",
  "it does not start with libmdbx's magic number and format version",
  "its page header names another page number",
  "its page header does not mark it as a meta page",
  "its page size is not a power of two from 256 to 65536, or not the file's",
  "the txnids at its two ends differ or are out of range (a torn or damaged write)",
  "its steady signature does not check",
  "its geometry (size bounds, first unallocated page) is out of range",
  "", // META_PURGED: libmdbx's rollback after an unclean shutdown wrote it with txnid 0; the next commit reuses it
];
const META_PURGED = 9;

const decoder = new TextDecoder();

/**
 * Checks the open native env `h` of the database at `path`: libmdbx's
 * mdbx_env_chk on a read snapshot, then the meta pages of the file.
 * Damage is reported in the result; only a check that cannot be made at all
 * (a closed env, no reader slot, no memory) throws.
 */
export function runCheck(h: Handle, path: string, noSubdir: boolean, options: CheckOptions = {}): CheckResult {
  const timeout = timeout16dot16(options.timeoutSeconds, "the timeoutSeconds option of check()");
  const f = (options.skipKeys ? 4 : 0) | (options.ignoreOrder ? 8 : 0);
  const log = new Uint8Array(64 * 1024);
  const res = new Float64Array(21);
  const n = fn.tm_env_chk(h, f, timeout, log, log.length, new Uint8Array(res.buffer));
  if (n < 0) fail(n, `checking ${path}`);
  const rc = res[16], stopStage = res[17], stopErr = res[18], timedOut = res[19] !== 0;
  // a check that failed first at something other than the file (a reader slot, memory, a closed env) is not a report
  const first = stopErr !== 0 ? stopErr : rc;
  if (rc !== 0 && rc !== -1 && rc !== ErrorCode.PROBLEM && NOT_DAMAGE.has(first)) fail(first, `checking ${path}`);
  const issues = decoder.decode(log.subarray(0, n)).split("\n").filter((l) => l !== "");
  if (res[20] > issues.length) issues.push(`… and ${res[20] - issues.length} more issues`);
  // the pages libmdbx's validation refused, in its own words (they are delivered to the loggers as well)
  for (const e of flushLog()) if (e.where === "badpage") issues.push(`page check: ${e.message}`);
  const metaIssues = checkMetas(path, noSubdir);
  issues.push(...metaIssues);
  let stopped: string | undefined;
  if (timedOut) {
    stopped = `the check stopped at its timeout of ${options.timeoutSeconds} s (timeoutSeconds), while ` +
      `${STAGES[stopStage] ?? STAGES[0]}; what it checked before is reported`;
  } else if (stopErr !== 0) {
    stopped = `${STAGES[stopStage] ?? STAGES[0]} stopped at ${errorName(stopErr)} (${strerror(stopErr)}): ` +
      "the check could not go past the damage listed in issues";
  } else if (rc !== 0 && rc !== -1 && rc !== ErrorCode.PROBLEM) {
    stopped = `the check stopped at ${errorName(rc)} (${strerror(rc)})`;
  }
  const problems = res[0] + metaIssues.length;
  return {
    ok: problems === 0 && issues.length === 0 && stopped === undefined,
    problems,
    metaProblems: res[1] + metaIssues.length,
    treeProblems: res[2],
    gcTreeProblems: res[3],
    kvTreeProblems: res[4],
    gcProblems: res[5],
    kvProblems: res[6],
    tables: res[7],
    processedPages: res[8],
    allocatedPages: res[9],
    backedPages: res[10],
    gcPages: res[11],
    reclaimablePages: res[12],
    unusedPages: res[13],
    payloadBytes: res[14],
    txnId: res[15],
    issues,
    ...(stopped === undefined ? {} : { stopped }),
  };
}

function strerror(code: number): string {
  return backend.cstring(fn.tm_strerror(code)).replace(/^MDBX_[A-Z_]+: /, "");
}

/**
 * The meta pages of the data file, which mdbx_env_chk does not validate (it
 * checks the trees of the meta it reads). A meta that is being rewritten by a
 * commit elsewhere can read torn for a moment: a problem counts only when two
 * looks agree.
 */
function checkMetas(path: string, noSubdir: boolean): string[] {
  const look = () => {
    const ps = fn.tm_dxb_metas(cString(path), noSubdir ? 1 : 0, scratch.f64Bytes);
    return ps <= 0 ? null : Array.from(scratch.f64.subarray(0, 9));
  };
  const first = look();
  if (first === null) return [];
  const bad = (m: number[]) => [0, 1, 2].filter((i) => m[3 * i] !== 0 && m[3 * i] !== META_PURGED);
  if (bad(first).length === 0) return [];
  const second = look();
  if (second === null) return [];
  const out: string[] = [];
  for (const i of bad(second)) {
    if (first[3 * i] !== second[3 * i]) continue;
    out.push(`meta page ${i}: not valid, libmdbx skips it: ${META_PROBLEMS[second[3 * i]] ?? "damaged"}`);
  }
  return out;
}

/**
 * The result of a check that could not open the database (a file cut short,
 * without a valid meta page): not ok, the reason as its one issue.
 */
export function unopenableResult(reason: string): CheckResult {
  return {
    ok: false,
    problems: 1,
    metaProblems: 0,
    treeProblems: 0,
    gcTreeProblems: 0,
    kvTreeProblems: 0,
    gcProblems: 0,
    kvProblems: 0,
    tables: 0,
    processedPages: 0,
    allocatedPages: 0,
    backedPages: 0,
    gcPages: 0,
    reclaimablePages: 0,
    unusedPages: 0,
    payloadBytes: 0,
    txnId: 0,
    issues: [reason],
    stopped: `the database could not be opened to check it: ${reason}`,
  };
}
