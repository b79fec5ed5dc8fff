/**
 * The Deno backend: Deno.dlopen over the symbol table.
 *
 * @module
 */
import type { Backend, BackendModule, HsrArgs, NativeCallback } from "./backend.ts";
import { blockingSymbols, type Handle, type NativeFunctions, symbols } from "./symbols.ts";

function open(path: string): Backend {
  const lib = Deno.dlopen(path, symbols);
  const fn = lib.symbols as unknown as NativeFunctions;
  const toPtr = (address: number) => Deno.UnsafePointer.create(BigInt(address));
  // the same library a second time, for the calls that block: nonblocking, each returns a promise
  let slow: { symbols: { tm_syncer_wait(s: unknown, t: number): Promise<number> }; close(): void } | null = null;
  const nonblocking = Object.fromEntries(
    Object.entries(blockingSymbols).map(([k, d]) => [k, { ...d, nonblocking: true }]),
  ) as unknown as Record<string, Deno.ForeignFunction>;
  return {
    runtime: "deno",
    path,
    fn,
    cstring(p) {
      return p === null ? "" : new Deno.UnsafePointerView(p as unknown as Deno.PointerObject).getCString();
    },
    view(address, length) {
      if (length === 0) return new ArrayBuffer(0);
      return Deno.UnsafePointerView.getArrayBuffer(toPtr(address)!, length);
    },
    hsrCallback(cb: (args: HsrArgs) => number): NativeCallback {
      const c = new Deno.UnsafeCallback(
        {
          // int (*)(const MDBX_env*, const MDBX_txn*, pid_t, tid_t, uint64_t laggard, unsigned gap, size_t space, int retry)
          parameters: ["pointer", "pointer", "i32", "u64", "u64", "u32", "usize", "i32"],
          result: "i32",
        } as const,
        (_env, _txn, pid, tid, laggard, gap, space, retry) =>
          cb({ pid, tid: Number(tid), laggard: Number(laggard), gap, space: Number(space), retry }),
      );
      return { handle: c.pointer as unknown as Handle, close: () => c.close() };
    },
    syncWait(s, ticket) {
      slow ??= Deno.dlopen(path, nonblocking) as unknown as typeof slow;
      return slow!.symbols.tm_syncer_wait(s, ticket);
    },
    address(p) {
      return p === null ? 0 : Number(Deno.UnsafePointer.value(p as unknown as Deno.PointerObject));
    },
    close() {
      slow?.close();
      lib.close();
    },
  };
}

function platform(): { os: string; arch: string } {
  return { os: Deno.build.os, arch: Deno.build.arch };
}

function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the variable is simply not consulted
  }
}

const backend: BackendModule = { open, platform, envVar };
export default backend;
