/**
 * libmdbx's log messages, delivered to the loggers that `open()` registers.
 *
 * libmdbx never writes to stderr here: native/log.c keeps its messages in a
 * ring, and this module drains it on the JavaScript thread at the points
 * where a message can matter: after a failure (the message becomes the
 * error's `detail`), at the end of an open, of a top-level transaction, of a
 * check and of a close. Every registered logger receives every message at
 * or below its level, whichever environment caused it: libmdbx's log is
 * process-wide. With no logger the messages are dropped.
 *
 * @module
 */
import { native } from "./ffi/mod.ts";

/** A libmdbx log level, from the most severe. */
export type LogLevel = "fatal" | "error" | "warning" | "notice" | "verbose" | "debug";

/** One message of libmdbx's log. */
export interface LogEntry {
  /** How severe it is. */
  level: LogLevel;
  /** The libmdbx function that logged it (for example `gc_alloc_ex`, `lck_seize`, `meta_validate`, `badpage`). */
  where: string;
  /** Its line in libmdbx's source (0 when libmdbx gives none). */
  line: number;
  /** The message, without a trailing newline. */
  message: string;
}

/** Receives libmdbx's log messages (the `logger` option of `open()`). */
export type Logger = (entry: LogEntry) => void;

/** The levels in libmdbx's order: the index is MDBX_log_level_t. */
const LEVELS: readonly LogLevel[] = ["fatal", "error", "warning", "notice", "verbose", "debug"];
/** What the ring collects with no logger asking for more: warnings, so that a failure can name its cause. */
const BASE_LEVEL = 2;

/** A logger registered by an open Env (or by an open() in progress). */
export interface LogRegistration {
  readonly logger: Logger;
  readonly level: number;
}

const registered = new Set<LogRegistration>();
let counter: Uint32Array | null = null;
let seen = 0;
let nativeLevel = -1;
let delivering = false;
const queue: LogEntry[] = [];
let last: LogEntry | undefined;

/**
 * The level index of a `logLevel` option; a TypeError for anything else.
 * `what` names the option for the message.
 */
export function logLevelOf(level: unknown, what = "the logLevel option of open()"): number {
  if (level === undefined) return BASE_LEVEL;
  const i = LEVELS.indexOf(level as LogLevel);
  if (i < 0) {
    const got = typeof level === "string" ? `"${level}"` : typeof level;
    throw new TypeError(`${what} must be one of ${LEVELS.map((l) => `"${l}"`).join(", ")}; got ${got}`);
  }
  return i;
}

/** Maps the native count of messages written; called when the library is loaded. */
export function initLog(): Uint32Array {
  const b = native();
  counter = new Uint32Array(b.view(b.fn.tm_log_counter(), 4));
  seen = counter[0];
  return counter;
}

/** Sets libmdbx's level to the most verbose any logger asks for (warnings at least). */
function applyLevel(): void {
  let want = BASE_LEVEL;
  for (const r of registered) if (r.level > want) want = r.level;
  if (want !== nativeLevel) {
    native().fn.tm_log_level(want);
    nativeLevel = want;
  }
}

/**
 * Registers a logger until `unregisterLogger()`: it receives the messages of
 * every environment from now on. Validates the options first.
 */
export function registerLogger(logger: unknown, level: unknown): LogRegistration | null {
  const lv = logLevelOf(level);
  if (logger === undefined) return null;
  if (typeof logger !== "function") {
    throw new TypeError(
      `the logger option of open() must be a function (entry) => void; got ${
        logger === null ? "null" : typeof logger
      }: pass a function, or leave the option out to drop libmdbx's messages`,
    );
  }
  if (counter === null) initLog();
  flushLog(); // what came before is not this logger's
  const r: LogRegistration = { logger: logger as Logger, level: lv };
  registered.add(r);
  applyLevel();
  return r;
}

/** Ends a registration (after a last flush, so it receives what its environment's close logged). */
export function unregisterLogger(r: LogRegistration | null | undefined): void {
  if (!r) return;
  flushLog();
  registered.delete(r);
  applyLevel();
}

/** Delivers what the ring holds if libmdbx logged anything since the last look: no FFI call otherwise. */
export function pollLog(): void {
  if (counter !== null && counter[0] !== seen) flushLog();
}

const drainBuf = new Uint8Array(64 * 1024);
const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Drains the ring, delivers the entries to every logger, and returns them. */
export function flushLog(): LogEntry[] {
  const c = counter ?? initLog();
  if (c[0] === seen) return [];
  const b = native();
  const entries: LogEntry[] = [];
  for (;;) {
    seen = c[0];
    const n = b.fn.tm_log_drain(drainBuf, drainBuf.length);
    if (n < 8) break;
    const dv = new DataView(drainBuf.buffer, 0, n);
    const count = dv.getUint32(0, true), dropped = dv.getUint32(4, true);
    if (dropped > 0) {
      entries.push({
        level: "warning",
        where: "turbomdbx",
        line: 0,
        message: `${dropped} libmdbx log message${dropped === 1 ? " was" : "s were"} dropped: more came ` +
          "between two deliveries than the ring of 64 holds",
      });
    }
    let at = 8;
    for (let i = 0; i < count; i++) {
      const level = dv.getInt32(at, true), line = dv.getInt32(at + 4, true);
      const wl = dv.getUint16(at + 8, true), ml = dv.getUint16(at + 10, true);
      at += 12;
      const where = utf8.decode(drainBuf.subarray(at, at + wl));
      const message = utf8.decode(drainBuf.subarray(at + wl, at + wl + ml));
      at += wl + ml;
      entries.push({ level: LEVELS[Math.min(Math.max(level, 0), LEVELS.length - 1)], where, line, message });
    }
    if (c[0] === seen) break; // more arrived while draining: go again
  }
  if (entries.length > 0) last = entries[entries.length - 1];
  deliver(entries);
  return entries;
}

/** Hands entries to every logger whose level takes them; a logger that throws is reported, not propagated. */
function deliver(entries: LogEntry[]): void {
  if (entries.length === 0 || registered.size === 0) return;
  queue.push(...entries);
  if (delivering) return; // a logger called into turbomdbx: the outer loop delivers these too
  delivering = true;
  try {
    while (queue.length > 0) {
      const e = queue.shift()!;
      const lv = LEVELS.indexOf(e.level);
      for (const r of [...registered]) {
        if (lv > r.level) continue;
        try {
          r.logger({ ...e });
        } catch (err) {
          reportLoggerError(err);
        }
      }
    }
  } finally {
    delivering = false;
  }
}

/** A logger's exception goes where an event listener's would: the runtime's error reporting. */
function reportLoggerError(err: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === "function") report(err);
  else {queueMicrotask(() => {
      throw err;
    });}
}

/**
 * The message that explains a failure: the last error or warning among the
 * entries drained at the failure, as "where: message".
 */
export function detailOf(entries: LogEntry[]): string | undefined {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if ((e.level === "error" || e.level === "fatal" || e.level === "warning") && e.where !== "turbomdbx") {
      return e.where ? `${e.where}: ${e.message}` : e.message;
    }
  }
  return undefined;
}

/** The last message libmdbx logged (delivered or dropped), if any. */
export function lastLogEntry(): LogEntry | undefined {
  pollLog();
  return last === undefined ? undefined : { ...last };
}
