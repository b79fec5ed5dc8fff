/**
 * The Bun backend: bun:ffi over the symbol table.
 *
 * bun:ffi is imported through a non-literal specifier so that Deno's type
 * checker and JSR's analysis never try to resolve it; the few functions used
 * are typed here.
 *
 * @module
 */
import type { Backend, BackendModule, HsrArgs, NativeCallback } from "./backend.ts";
import { type Handle, type NativeFunctions, type NativeType, symbols } from "./symbols.ts";

interface BunFFI {
  dlopen(path: string, defs: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
    close(): void;
  };
  toArrayBuffer(ptr: number, byteOffset: number, byteLength: number): ArrayBuffer;
  CString: new (ptr: number) => { toString(): string };
  JSCallback: new (
    fn: (...args: never[]) => unknown,
    def: { args: string[]; returns: string },
  ) => { ptr: number; close(): void };
}

const spec = "bun:ffi";
const ffi = (await import(spec)) as BunFFI;

const BUN_TYPE: Record<NativeType, string> = {
  pointer: "ptr",
  buffer: "ptr",
  u32: "u32",
  i32: "i32",
  f64: "f64",
  void: "void",
};

function open(path: string): Backend {
  const defs: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, def] of Object.entries(symbols)) {
    defs[name] = { args: def.parameters.map((t) => BUN_TYPE[t]), returns: BUN_TYPE[def.result] };
  }
  const lib = ffi.dlopen(path, defs);
  const fn = lib.symbols as unknown as NativeFunctions;
  return {
    runtime: "bun",
    path,
    fn,
    cstring(p) {
      return p === null || (p as unknown as number) === 0 ? "" : new ffi.CString(p as unknown as number).toString();
    },
    view(address, length) {
      if (length === 0) return new ArrayBuffer(0);
      return ffi.toArrayBuffer(address, 0, length);
    },
    hsrCallback(cb: (args: HsrArgs) => number): NativeCallback {
      const c = new ffi.JSCallback(
        ((
          _env: number,
          _txn: number,
          pid: number,
          tid: number,
          laggard: number,
          gap: number,
          space: number,
          retry: number,
        ) => cb({ pid, tid, laggard, gap, space, retry })) as (...args: never[]) => unknown,
        { args: ["ptr", "ptr", "i32", "u64_fast", "u64_fast", "u32", "u64_fast", "i32"], returns: "i32" },
      );
      return { handle: c.ptr as unknown as Handle, close: () => c.close() };
    },
    syncWait: null,
    address(p) {
      return p === null ? 0 : (p as unknown as number);
    },
    close() {
      lib.close();
    },
  };
}

declare const process: { platform: string; arch: string; env: Record<string, string | undefined> };

function platform(): { os: string; arch: string } {
  const os = process.platform === "win32" ? "windows" : process.platform;
  return { os, arch: process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch };
}

function envVar(name: string): string | undefined {
  return process.env[name];
}

const backend: BackendModule = { open, platform, envVar };
export default backend;
