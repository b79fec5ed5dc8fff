/**
 * Chooses the runtime backend once and loads the turbomdbx shared library.
 *
 * Lookup order (the first that is given wins; its failure is reported, not
 * skipped):
 *  1. the `libraryPath` option of the first `open()` (or `loadLibrary(path)`);
 *  2. the `TURBOMDBX_LIB` environment variable;
 *  3. the local build, `zig-out/lib/<libturbomdbx.so|.dylib|turbomdbx.dll>`,
 *     resolved against this module's URL. This also finds a library placed
 *     beside the module by `deno compile --include zig-out/lib/...`.
 *
 * @module
 */
import type { Backend, BackendModule } from "./backend.ts";

export type { Backend, HsrArgs, NativeCallback } from "./backend.ts";
export type { BufferArg, Handle, NativeFunctions } from "./symbols.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const impl: BackendModule = isDeno ? (await import("./deno.ts")).default : (await import("./bun.ts")).default;

/** The patch level this TypeScript expects of the library (native/patches). */
export const EXPECTED_PATCHLEVEL = "turbomdbx-3";

let loaded: Backend | undefined;

/** The platform's file name of the library. */
export function libraryFileName(): string {
  const { os } = impl.platform();
  return os === "windows" ? "turbomdbx.dll" : os === "darwin" ? "libturbomdbx.dylib" : "libturbomdbx.so";
}

function fileUrlToPath(url: URL): string | undefined {
  if (url.protocol !== "file:") return undefined;
  const p = decodeURIComponent(url.pathname);
  return impl.platform().os === "windows" ? p.replace(/^\/([A-Za-z]:)/, "$1").replaceAll("/", "\\") : p;
}

/** Where the library would be looked for, in order, with where each came from. */
export function libraryCandidates(explicit?: string): { path: string; from: string }[] {
  if (explicit) return [{ path: explicit, from: "the libraryPath option" }];
  const env = impl.envVar("TURBOMDBX_LIB");
  if (env) return [{ path: env, from: "TURBOMDBX_LIB" }];
  const local = fileUrlToPath(new URL(`../../zig-out/lib/${libraryFileName()}`, import.meta.url));
  return local ? [{ path: local, from: "the local build" }] : [];
}

/** The loaded turbomdbx library, as `loadLibrary()` reports it. */
export interface Library {
  /** The runtime that loaded it. */
  readonly runtime: "deno" | "bun";
  /** The file it was loaded from. */
  readonly path: string;
}

/**
 * Loads the library (once per process, in the documented lookup order) and
 * tells which file it came from. `open()` calls it; call it first to load from
 * `explicit` or to learn the path. Naming another path once one is loaded is
 * an error.
 */
export function loadLibrary(explicit?: string): Library {
  return loadBackend(explicit);
}

/** @internal Loads the library (once per process) and returns its backend, with the native functions. */
export function loadBackend(explicit?: string): Backend {
  if (loaded) {
    if (explicit && explicit !== loaded.path) {
      throw new Error(
        `turbomdbx is already loaded from ${loaded.path}; libraryPath ${explicit} cannot be loaded as well ` +
          "(pass the same libraryPath everywhere, or only on the first open())",
      );
    }
    return loaded;
  }
  const tried: string[] = [];
  for (const { path, from } of libraryCandidates(explicit)) {
    let b: Backend;
    try {
      b = impl.open(path);
    } catch (e) {
      tried.push(`  ${path} (${from}): ${(e as Error).message}`);
      continue;
    }
    const level = b.cstring(b.fn.tm_version());
    if (level !== EXPECTED_PATCHLEVEL) {
      b.close();
      tried.push(`  ${path} (${from}): patch level ${level || "unknown"}, expected ${EXPECTED_PATCHLEVEL}`);
      continue;
    }
    loaded = b;
    return b;
  }
  throw new Error(
    "turbomdbx: could not load the turbomdbx shared library.\n" +
      (tried.length ? `Tried:\n${tried.join("\n")}\n` : "No candidate path (this module is not on a file: URL).\n") +
      "Build it with `./run build` (which runs `zig build`), or point TURBOMDBX_LIB or the " +
      "libraryPath option at a built libturbomdbx. A stock libmdbx will not do: turbomdbx needs its patches.",
  );
}

/** The backend, loading the library with the default lookup if needed. */
export function native(): Backend {
  return loaded ?? loadBackend();
}

/** The runtime this process is: "deno" or "bun". */
export const runtime: "deno" | "bun" = isDeno ? "deno" : "bun";
