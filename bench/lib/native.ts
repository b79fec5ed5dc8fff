/**
 * The native baseline: native/bench.c, built into zig-out/lib next to
 * libturbomdbx and linked against it, so its C loops run on the very env and
 * transaction handles turbomdbx opened (`env.unsafeHandle`, `txn.unsafeHandle`).
 *
 * The benchmark loads it with the runtime's own FFI; src/ knows nothing of it.
 *
 * @module
 */

/** The harness functions, one FFI call per batch. Handles are whatever `unsafeHandle` returned. */
export interface Harness {
  /** The path it was loaded from. */
  readonly path: string;
  /** Does nothing, with tm_get's signature: the price of one FFI call. */
  nop(txn: unknown, dbi: number, key: Uint8Array, klen: number, out: Uint8Array, cap: number): number;
  /** n gets without copying; returns a checksum or a negative error. */
  get(txn: unknown, dbi: number, keys: Uint8Array, ksize: number, n: number): number;
  /** n gets, each value copied into `dst`; returns a checksum or a negative error. */
  getCopy(txn: unknown, dbi: number, keys: Uint8Array, ksize: number, n: number, dst: Uint8Array, cap: number): number;
  /** A full cursor scan; returns the entry count (checksum in sum[0]) or a negative error. */
  scan(txn: unknown, dbi: number, sum: Float64Array): number;
  /** n puts of the same value; 0 or a negative error. */
  put(
    txn: unknown,
    dbi: number,
    keys: Uint8Array,
    ksize: number,
    n: number,
    val: Uint8Array,
    vlen: number,
    flags: number,
  ): number;
  /** n transactions of one put each, the value's first 4 bytes set to stamp + i; 0 or a negative error. */
  putTxns(
    env: unknown,
    dbi: number,
    keys: Uint8Array,
    ksize: number,
    n: number,
    val: Uint8Array,
    vlen: number,
    stamp: number,
  ): number;
  /** sizeof(MDBX_cache_entry_t), libmdbx's own cache entry. */
  cacheEntrySize(): number;
  /** mdbx_cache_init on n entries of `entries` (n * cacheEntrySize() bytes); returns n. */
  cacheInit(entries: Uint8Array, n: number): number;
  /**
   * n gets through mdbx_cache_get, key i using entry index[i] of `entries`; each value copied
   * into dst when cap > 0. Returns a checksum or a negative error; adds the lookups answered
   * from an entry to hits[0].
   */
  cacheGet(
    txn: unknown,
    dbi: number,
    keys: Uint8Array,
    ksize: number,
    index: Uint32Array,
    n: number,
    entries: Uint8Array,
    hits: Float64Array,
    dst: Uint8Array | null,
    cap: number,
  ): number;
  /**
   * n gets through turbomdbx's native cache (t: a table's cache handle, null:
   * uncached), one tm_cache_get per key from a C loop; values copied to dst.
   */
  tcGet(
    t: unknown,
    txn: unknown,
    dbi: number,
    snap: number,
    keys: Uint8Array,
    ksize: number,
    n: number,
    dst: Uint8Array,
    cap: number,
  ): number;
  /** n gets through tm_get_many, `batch` keys per call, from a C loop (pos: 2 * batch int32). */
  tcGetMany(
    t: unknown,
    txn: unknown,
    dbi: number,
    snap: number,
    keys: Uint8Array,
    ksize: number,
    n: number,
    batch: number,
    dst: Uint8Array,
    cap: number,
    pos: Int32Array,
  ): number;
  /**
   * The floor of a cached get: per key a random 16-byte slot of `slots` (its
   * first 8 bytes an offset into data), then a copy of vlen bytes there; group > 1
   * prefetches a group's slots, then its values (the best a batch can do).
   */
  floor(
    slots: Uint8Array,
    nslots: number,
    data: Uint8Array,
    keys: Uint8Array,
    ksize: number,
    n: number,
    vlen: number,
    group: number,
    dst: Uint8Array,
  ): number;
  close(): void;
}

type T = "pointer" | "buffer" | "u32" | "i32" | "f64";
const SYMBOLS: Record<string, { parameters: T[]; result: T }> = {
  tmb_nop: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32"], result: "i32" },
  tmb_get: { parameters: ["pointer", "u32", "buffer", "u32", "u32"], result: "f64" },
  tmb_get_copy: { parameters: ["pointer", "u32", "buffer", "u32", "u32", "buffer", "u32"], result: "f64" },
  tmb_scan: { parameters: ["pointer", "u32", "buffer"], result: "f64" },
  tmb_put: { parameters: ["pointer", "u32", "buffer", "u32", "u32", "buffer", "u32", "u32"], result: "i32" },
  tmb_put_txns: { parameters: ["pointer", "u32", "buffer", "u32", "u32", "buffer", "u32", "u32"], result: "i32" },
  tmb_cache_entry_size: { parameters: [], result: "u32" },
  tmb_cache_init: { parameters: ["buffer", "u32"], result: "u32" },
  tmb_cache_get: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "buffer", "buffer", "buffer", "u32"],
    result: "f64",
  },
  tmb_tc_get: {
    parameters: ["pointer", "pointer", "u32", "f64", "buffer", "u32", "u32", "buffer", "u32"],
    result: "f64",
  },
  tmb_tc_get_many: {
    parameters: ["pointer", "pointer", "u32", "f64", "buffer", "u32", "u32", "u32", "buffer", "u32", "buffer"],
    result: "f64",
  },
  tmb_floor: {
    parameters: ["buffer", "f64", "buffer", "buffer", "u32", "u32", "u32", "u32", "buffer"],
    result: "f64",
  },
};

/** The harness library's file name on this platform. */
function fileName(os: string): string {
  return os === "windows"
    ? "turbomdbx_bench.dll"
    : os === "darwin"
    ? "libturbomdbx_bench.dylib"
    : "libturbomdbx_bench.so";
}

/** Where the harness is looked for: beside the loaded turbomdbx library (so both are the same build). */
export function harnessPath(turbomdbxLibrary: string): string {
  const sep = turbomdbxLibrary.lastIndexOf("/") >= 0 ? "/" : "\\";
  const dir = turbomdbxLibrary.slice(0, turbomdbxLibrary.lastIndexOf(sep) + 1);
  const os = typeof Deno !== "undefined"
    ? Deno.build.os
    : (globalThis as unknown as { process: { platform: string } }).process.platform;
  return dir + fileName(os === "win32" ? "windows" : os);
}

interface BunFFI {
  dlopen(path: string, defs: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => number>;
    close(): void;
  };
}

/** Loads the harness at `path` (see harnessPath) with the runtime's FFI. */
export async function loadHarness(path: string): Promise<Harness> {
  let s: Record<string, (...args: never[]) => number>;
  let close: () => void;
  if (typeof Deno !== "undefined") {
    const lib = Deno.dlopen(path, SYMBOLS as unknown as Deno.ForeignLibraryInterface);
    s = lib.symbols as unknown as typeof s;
    close = () => lib.close();
  } else {
    const spec = "bun:ffi"; // non-literal: Deno's checker never resolves it
    const ffi = (await import(spec)) as BunFFI;
    const bunType = { pointer: "ptr", buffer: "ptr", u32: "u32", i32: "i32", f64: "f64" } as const;
    const defs: Record<string, { args: string[]; returns: string }> = {};
    for (const [name, d] of Object.entries(SYMBOLS)) {
      defs[name] = { args: d.parameters.map((t) => bunType[t]), returns: bunType[d.result] };
    }
    const lib = ffi.dlopen(path, defs);
    s = lib.symbols as unknown as typeof s;
    close = () => lib.close();
  }
  return {
    path,
    nop: s.tmb_nop as Harness["nop"],
    get: s.tmb_get as Harness["get"],
    getCopy: s.tmb_get_copy as Harness["getCopy"],
    scan: s.tmb_scan as Harness["scan"],
    put: s.tmb_put as Harness["put"],
    putTxns: s.tmb_put_txns as Harness["putTxns"],
    cacheEntrySize: s.tmb_cache_entry_size as Harness["cacheEntrySize"],
    cacheInit: s.tmb_cache_init as Harness["cacheInit"],
    cacheGet: s.tmb_cache_get as Harness["cacheGet"],
    tcGet: s.tmb_tc_get as Harness["tcGet"],
    tcGetMany: s.tmb_tc_get_many as Harness["tcGetMany"],
    floor: s.tmb_floor as Harness["floor"],
    close,
  };
}
