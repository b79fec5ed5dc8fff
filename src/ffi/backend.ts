/**
 * The internal interface both runtime backends implement. Nothing outside
 * `src/ffi/` sees a Deno or Bun type: handles are opaque, memory is reached
 * through ArrayBuffers.
 *
 * @module
 */
import type { Handle, NativeFunctions } from "./symbols.ts";

/** The arguments libmdbx passes to a Handle-Slow-Readers callback, as numbers. */
export interface HsrArgs {
  pid: number;
  tid: number;
  laggard: number;
  gap: number;
  space: number;
  retry: number;
}

/** A JS function registered as a C function pointer. */
export interface NativeCallback {
  readonly handle: Handle;
  close(): void;
}

/** One loaded turbomdbx library. */
export interface Backend {
  readonly runtime: "deno" | "bun";
  /** The file the library was loaded from. */
  readonly path: string;
  /** The C functions of `symbols.ts`. */
  readonly fn: NativeFunctions;
  /** Reads a NUL-terminated string. */
  cstring(p: Handle | null): string;
  /** A zero-copy ArrayBuffer over `length` bytes of native memory at `address`. */
  view(address: number, length: number): ArrayBuffer;
  /** Registers an MDBX_hsr_func. */
  hsrCallback(fn: (args: HsrArgs) => number): NativeCallback;
  /**
   * Deno: waits for a native syncer's ticket on one of Deno's threads (a
   * nonblocking FFI call) and resolves with 0 or a negative code. Bun: null
   * (no nonblocking FFI; poll `tm_syncer_state`).
   */
  syncWait: ((syncer: Handle, ticket: number) => Promise<number>) | null;
  /** The address of a handle as a number (for diagnostics and identity). */
  address(p: Handle | null): number;
  close(): void;
}

/** What each backend module exports. */
export interface BackendModule {
  open(path: string): Backend;
  platform(): { os: "linux" | "darwin" | "windows" | string; arch: string };
  envVar(name: string): string | undefined;
}
