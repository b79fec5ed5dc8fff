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
import { type Backend, loadBackend, native, type NativeFunctions, runtime } from "./ffi/mod.ts";
import { errorAdvice, ErrorCode, MdbxError } from "./errors.ts";

/** The loaded library's functions; set by `load()`, which every Env open calls first. */
export let fn: NativeFunctions;
/** The loaded backend; set by `load()`. */
export let backend: Backend;

/** Loads the library (once) and binds `fn`/`backend`. */
export function load(libraryPath?: string): Backend {
  backend = loadBackend(libraryPath);
  fn = backend.fn;
  return backend;
}

/** Turns a wrapper's negative return into the native code. */
export function codeOf(r: number): number {
  return r <= -30000 ? r : -r;
}

/** Throws MdbxError for a negative wrapper return; `what` says what was being done. */
export function fail(r: number, what: string): never {
  const code = codeOf(r);
  const b = native();
  const native_msg = b.cstring(b.fn.tm_strerror(code)).replace(/^MDBX_[A-Z_]+: /, "");
  const advice = errorAdvice(code);
  throw new MdbxError(code, `${what}: ${native_msg}${advice && advice !== native_msg ? ` (${advice})` : ""}`);
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

/*
 * Values and keys are returned as copies. A fresh ArrayBuffer per result costs
 * far more than the copy (about 1 µs in Deno, where every backing store is
 * tracked, and the zero-fill in Bun), so small results are carved out of a
 * shared slab, as Node carves small Buffers out of its pool: each result is its
 * own Uint8Array, but `result.buffer` may be shared with other results.
 */
const SLAB_SIZE = 64 * 1024;
/** Results larger than this get their own ArrayBuffer. */
export const SLAB_MAX = 4096;
let slab = new Uint8Array(SLAB_SIZE);
let slabPos = 0;

/** The slab and the position where the next result may be written (at most SLAB_MAX bytes fit there). */
export function slabTail(): Uint8Array {
  if (slabPos + SLAB_MAX > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabPos = 0;
  }
  return slab;
}

/** The offset in the slab where `slabTail()`'s caller writes. */
export function slabOffset(): number {
  return slabPos;
}

/** Claims `len` bytes written at `slabOffset()` and returns them as a Uint8Array. */
export function slabClaim(len: number): Uint8Array {
  const at = slabPos;
  slabPos = (at + len + 7) & ~7;
  return new Uint8Array(slab.buffer, at, len);
}

/**
 * Whether results go through the slab. Deno: yes, its ArrayBuffers cost ~0.5-1 µs
 * each. Bun: no, `slice()` of a small array is cheaper there than views on a shared
 * buffer (measured: a 100-byte value 42 ns by slice vs ~190 ns through the slab).
 */
export const useSlab: boolean = runtime === "deno";

/** A copy of `len` bytes of `src` at `off`, as its own Uint8Array (its buffer may be shared). */
export function copyOut(src: Uint8Array, off: number, len: number): Uint8Array {
  if (!useSlab || len > SLAB_MAX) return src.slice(off, off + len);
  if (slabPos + len > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabPos = 0;
  }
  const at = slabPos;
  slab.set(src.subarray(off, off + len), at);
  slabPos = (at + len + 7) & ~7;
  return new Uint8Array(slab.buffer, at, len);
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
