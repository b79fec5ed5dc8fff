/**
 * Shared internals of the domain classes: the loaded library, the scratch
 * buffers every hot call reuses, and the one place return codes become throws.
 *
 * JavaScript runs one call at a time on a thread, and every native call
 * consumes its scratch before returning, so one set of buffers serves every
 * environment and transaction of this thread.
 *
 * @module
 */
import { type Backend, loadBackend, native, type NativeFunctions } from "./ffi/mod.ts";
import { errorAdvice, ErrorCode, MdbxError } from "./errors.ts";
import { detailOf, flushLog, initLog } from "./log.ts";

/** The loaded library's functions; set by `load()`, which every Env open calls first. */
export let fn: NativeFunctions;
/** The loaded backend; set by `load()`. */
export let backend: Backend;

/** Loads the library (once) and binds `fn`/`backend`. */
export function load(libraryPath?: string): Backend {
  backend = loadBackend(libraryPath);
  fn = backend.fn;
  initLog();
  return backend;
}

/** Turns a wrapper's negative return into the native code. */
export function codeOf(r: number): number {
  return r <= -30000 ? r : -r;
}

/** Codes for which libmdbx's own last message says what the error's text cannot (which page, which check). */
const EXPLAINED_BY_LOG = new Set<number>([
  ErrorCode.CORRUPTED,
  ErrorCode.PAGE_NOTFOUND,
  ErrorCode.PROBLEM,
  ErrorCode.INVALID,
  ErrorCode.VERSION_MISMATCH,
  ErrorCode.PANIC,
  ErrorCode.WANNA_RECOVERY,
  ErrorCode.INCOMPATIBLE,
  ErrorCode.EIO,
]);

/**
 * Throws MdbxError for a negative wrapper return; `what` says what was being
 * done. libmdbx's messages logged since the last delivery are delivered now;
 * the last error or warning among them becomes the error's `detail` (and part
 * of its message where it names what the code cannot: a damaged page, a
 * failed check).
 */
export function fail(r: number, what: string): never {
  const code = codeOf(r);
  const b = native();
  const detail = detailOf(flushLog());
  const native_msg = b.cstring(b.fn.tm_strerror(code)).replace(/^MDBX_[A-Z_]+: /, "");
  const advice = errorAdvice(code);
  const said = detail !== undefined && EXPLAINED_BY_LOG.has(code) ? `; libmdbx reported: ${detail}` : "";
  throw new MdbxError(
    code,
    `${what}: ${native_msg}${said}${advice && advice !== native_msg ? ` (${advice})` : ""}`,
    detail,
  );
}

/** Checks a wrapper's return: negative is an error. */
export function check(r: number, what: string): number {
  if (r < 0) fail(r, what);
  return r;
}

/** A misuse turbomdbx detects before libmdbx would: same class, an honest code. */
export function misuse(code: number, message: string): MdbxError {
  return new MdbxError(code, message);
}

export const NOTFOUND: number = ErrorCode.NOTFOUND;

/** Reusable buffers for native calls. */
export const scratch = {
  /** Result buffer for values and pairs; grows on demand, never shrinks below 64 KiB. */
  out: new Uint8Array(64 * 1024) as Uint8Array,
  /** Doubles returned by the wrappers (stat, info, refs). */
  f64: new Float64Array(32),
  f64Bytes: new Uint8Array(0),
  /** One int32 (return codes of handle-returning wrappers). */
  i32: new Int32Array(2),
  i32Bytes: new Uint8Array(0),
  u32: new Uint32Array(4),
  u32Bytes: new Uint8Array(0),
};
scratch.f64Bytes = new Uint8Array(scratch.f64.buffer);
scratch.i32Bytes = new Uint8Array(scratch.i32.buffer);
scratch.u32Bytes = new Uint8Array(scratch.u32.buffer);

/** Makes `scratch.out` at least `n` bytes (power of two growth). */
export function growOut(n: number): Uint8Array {
  let size = scratch.out.length;
  while (size < n) size *= 2;
  scratch.out = new Uint8Array(size);
  return scratch.out;
}

/**
 * A copy of `len` bytes of `src` at `off`, as a Uint8Array with an ArrayBuffer
 * of its own and of exactly that size: results behave as ordinary arrays
 * (transferable, `buffer` holds nothing else). Pooling small results in shared
 * slabs was faster in Deno (an ArrayBuffer costs ~0.4 µs there) but let a
 * transfer of one result detach the others and expose their bytes.
 */
export function copyOut(src: Uint8Array, off: number, len: number): Uint8Array {
  return src.slice(off, off + len);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** Encodes a string as UTF-8 with a trailing NUL (for C paths and names). */
export function cString(s: string): Uint8Array {
  if (s.includes("\0")) throw new TypeError(`a path or name must not contain a NUL character: ${JSON.stringify(s)}`);
  return encoder.encode(s + "\0");
}

export { decoder, encoder };

const transfer = (ArrayBuffer.prototype as unknown as { transfer(this: ArrayBuffer, n: number): ArrayBuffer }).transfer;

/**
 * Detaches ArrayBuffers that view native memory, so no view outlives it. The
 * prototype's transfer, not the buffer's own: unsafe views shadow theirs with
 * one that throws.
 */
export function detachAll(views: ArrayBuffer[]): void {
  for (const ab of views) {
    if (!(ab as { detached?: boolean }).detached) transfer.call(ab, 0);
  }
  views.length = 0;
}
