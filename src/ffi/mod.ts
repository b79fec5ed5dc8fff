/**
 * Chooses the runtime backend once and loads the turbomdbx shared library.
 *
 * Lookup order (the first that is given wins; its failure is reported, not
 * skipped):
 *  1. the `libraryPath` option of the first `open()` (or `loadLibrary(path)`);
 *  2. the `TURBOMDBX_LIB` environment variable;
 *  3. the local build, `zig-out/lib/<libturbomdbx.so|.dylib|turbomdbx.dll>`,
 *     resolved against this module's URL. This also finds a library placed
 *     beside the module by `deno compile --include zig-out/lib/...`;
 *  4. in the npm and JSR packages only: this platform's npm package
 *     (`@turbomdbx/linux-x64-gnu`, ...), whose file must match the SHA-256
 *     recorded in this package before it is loaded (library.ts).
 *
 * @module
 */
import type { Backend, BackendModule } from "./backend.ts";
import {
  type Candidate,
  candidates,
  hostTargets,
  installAdvice,
  prepareJsrPackages,
  verifyPrebuilt,
} from "./library.ts";
import { prebuilt } from "./prebuilt.ts";
import { ErrorCode, MdbxError } from "../errors.ts";

export type { Backend, HsrArgs, NativeCallback } from "./backend.ts";
export type { BufferArg, Handle, NativeFunctions } from "./symbols.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const impl: BackendModule = isDeno ? (await import("./deno.ts")).default : (await import("./bun.ts")).default;

/** The patch level this TypeScript expects of the library (native/patches). */
export const EXPECTED_PATCHLEVEL = "turbomdbx-4";

let loaded: Backend | undefined;
/** How the loaded library was found and checked (libraryInfo). */
let loadedFrom: { from: string; target?: string; sha256?: string } | undefined;

// JSR: the platform package is an npm: import, which only an async import can
// make; it is made here, once, unless TURBOMDBX_LIB already names the library.
if (prebuilt.distribution === "jsr" && !impl.envVar("TURBOMDBX_LIB")) {
  await prepareJsrPackages(impl.platform(), impl.platform().os === "windows");
}

/** The platform's file name of the library. */
export function libraryFileName(): string {
  const { os } = impl.platform();
  return os === "windows" ? "turbomdbx.dll" : os === "darwin" ? "libturbomdbx.dylib" : "libturbomdbx.so";
}

/**
 * Where the library would be looked for, in order, with where each came from.
 * In the npm and JSR packages the list ends with this platform's package; an
 * entry with an empty `path` is a package that is not installed.
 */
export function libraryCandidates(explicit?: string): { path: string; from: string }[] {
  return candidateList(explicit).map(({ path, from }) => ({ path, from }));
}

function candidateList(explicit?: string): Candidate[] {
  return candidates(explicit, impl.envVar("TURBOMDBX_LIB"), impl.platform(), libraryFileName());
}

/** The loaded turbomdbx library, as `loadLibrary()` reports it. */
export interface Library {
  /** The runtime that loaded it. */
  readonly runtime: "deno" | "bun";
  /** The file it was loaded from. */
  readonly path: string;
}

/** How `loadLibrary()` treats the file it is given. */
export interface LoadLibraryOptions {
  /**
   * Check the given file against the SHA-256 this package records for this
   * platform's prebuilt library before loading it, as for a library found in
   * the installed platform package (a compiled binary that embeds the
   * platform package's file passes this). Only in the npm and JSR packages.
   */
  verify?: boolean;
}

/**
 * Loads the library (once per process, in the documented lookup order) and
 * tells which file it came from. `open()` calls it; call it first to load from
 * `explicit` or to learn the path. Naming another path once one is loaded is
 * an error.
 */
export function loadLibrary(explicit?: string, options: LoadLibraryOptions = {}): Library {
  return loadBackend(explicit, options);
}

/** @internal Loads the library (once per process) and returns its backend, with the native functions. */
export function loadBackend(explicit?: string, options: LoadLibraryOptions = {}): Backend {
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
  const list = candidateList(explicit);
  if (explicit && options.verify) {
    const t = hostTargets(impl.platform())[0];
    if (!t || prebuilt.distribution === "source") {
      throw new MdbxError(
        ErrorCode.EBADSIGN,
        `turbomdbx: ${explicit} cannot be verified: ` +
          (t
            ? "this copy of turbomdbx is a checkout, which records no SHA-256"
            : "no prebuilt library exists for this platform"),
      );
    }
    list[0].target = t;
  }
  for (const { path, from, target, missing } of list) {
    if (missing !== undefined) {
      tried.push(`  ${from}: ${missing}`);
      continue;
    }
    // A prebuilt library is checked before dlopen runs any of its code.
    const sha256 = target ? verifyPrebuilt(path, target, from) : undefined;
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
    loadedFrom = { from, ...(target ? { target: target.name, sha256 } : {}) };
    return b;
  }
  throw new Error(
    "turbomdbx: could not load the turbomdbx shared library.\n" +
      (tried.length ? `Tried:\n${tried.join("\n")}\n` : "No candidate path (this module is not on a file: URL).\n") +
      installAdvice(impl.platform()) +
      " A stock libmdbx will not do: turbomdbx needs its patches.",
  );
}

/** What `libraryInfo()` reports about the loaded library. */
export interface LibraryInfo {
  /** The runtime that loaded it. */
  readonly runtime: "deno" | "bun";
  /** The file it was loaded from. */
  readonly path: string;
  /**
   * How it was found: "the libraryPath option", "TURBOMDBX_LIB", "the local
   * build" or "the @turbomdbx/<target> package".
   */
  readonly from: string;
  /** Whether its SHA-256 was checked against the one this package records (prebuilt libraries). */
  readonly verified: boolean;
  /** The SHA-256 it was checked against, when verified. */
  readonly sha256?: string;
  /** The prebuilt target it was verified as (`linux-x64-gnu`, ...), when verified. */
  readonly platform?: string;
  /** The libmdbx release inside it, e.g. "0.14.3". */
  readonly mdbxVersion: string;
  /** libmdbx's git description of that release, e.g. "v0.14.3-0-g251562b2". */
  readonly mdbxDescribe: string;
  /** turbomdbx's patch level of libmdbx, e.g. "turbomdbx-4". */
  readonly patchLevel: string;
  /** The target triple it was compiled for, as the library reports it (e.g. "x86_64-linux-gnu"). */
  readonly target: string;
  /** How this copy of turbomdbx was distributed: "source" (a checkout), "npm" or "jsr". */
  readonly distribution: "source" | "npm" | "jsr";
  /** This package's version (undefined in a checkout). */
  readonly version?: string;
}

/**
 * Describes the turbomdbx library this process uses, loading it first (in the
 * documented lookup order) if `open()` has not: the libmdbx version and
 * patch level inside it, the target it was built for, the file and how it was
 * found, and whether its SHA-256 was verified.
 */
export function libraryInfo(): LibraryInfo {
  const b = native();
  const [mdbxVersion = "", mdbxDescribe = "", target = ""] = b.cstring(b.fn.tm_build_info()).split("\t");
  const from = loadedFrom ?? { from: "unknown" };
  return {
    runtime: b.runtime,
    path: b.path,
    from: from.from,
    verified: from.sha256 !== undefined,
    ...(from.sha256 !== undefined ? { sha256: from.sha256, platform: from.target } : {}),
    mdbxVersion,
    mdbxDescribe,
    patchLevel: b.cstring(b.fn.tm_version()),
    target,
    distribution: prebuilt.distribution,
    ...(prebuilt.version !== undefined ? { version: prebuilt.version } : {}),
  };
}

/** The backend, loading the library with the default lookup if needed. */
export function native(): Backend {
  return loaded ?? loadBackend();
}

/** The runtime this process is: "deno" or "bun". */
export const runtime: "deno" | "bun" = isDeno ? "deno" : "bun";
