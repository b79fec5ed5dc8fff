/**
 * Where the turbomdbx library comes from: the platforms that have a prebuilt
 * library, which of them this host is, the candidates in lookup order, and the
 * SHA-256 check that a prebuilt library passes before it is loaded.
 *
 * Runtime-neutral: `mod.ts` passes in the platform and the environment.
 * docs/packaging.md has the design.
 *
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { ErrorCode, MdbxError } from "../errors.ts";
import { prebuilt } from "./prebuilt.ts";

/** One platform that gets a prebuilt library and an npm package of its own. */
export interface PlatformTarget {
  /** The target's name, also the last part of its package name: `linux-x64-gnu`. */
  readonly name: string;
  /** npm's `os` value (Node's `process.platform`). */
  readonly os: "linux" | "darwin" | "win32";
  /** npm's `cpu` value (Node's `process.arch`). */
  readonly cpu: "x64" | "arm64";
  /** npm's `libc` value, Linux only. */
  readonly libc?: "glibc" | "musl";
  /** The Zig target triple it is built with. */
  readonly zig: string;
  /** The library's file name on this platform. */
  readonly file: string;
  /** The npm package that carries it. */
  readonly packageName: string;
}

const SCOPE = "@turbomdbx";

function target(
  name: string,
  os: PlatformTarget["os"],
  cpu: PlatformTarget["cpu"],
  zig: string,
  libc?: PlatformTarget["libc"],
): PlatformTarget {
  const file = os === "win32" ? "turbomdbx.dll" : os === "darwin" ? "libturbomdbx.dylib" : "libturbomdbx.so";
  return { name, os, cpu, ...(libc ? { libc } : {}), zig, file, packageName: `${SCOPE}/${name}` };
}

/** Every platform with a prebuilt library, in release order. */
export const PLATFORM_TARGETS: readonly PlatformTarget[] = [
  target("linux-x64-gnu", "linux", "x64", "x86_64-linux-gnu", "glibc"),
  target("linux-arm64-gnu", "linux", "arm64", "aarch64-linux-gnu", "glibc"),
  target("linux-x64-musl", "linux", "x64", "x86_64-linux-musl", "musl"),
  target("linux-arm64-musl", "linux", "arm64", "aarch64-linux-musl", "musl"),
  target("darwin-x64", "darwin", "x64", "x86_64-macos"),
  target("darwin-arm64", "darwin", "arm64", "aarch64-macos"),
  target("win32-x64", "win32", "x64", "x86_64-windows-gnu"),
];

/** The platform as the runtime names it ("linux" | "darwin" | "windows", "x86_64" | "x64" | ...). */
export interface HostPlatform {
  os: string;
  arch: string;
}

/** Whether this Linux host's C library is musl (Alpine and the like): its dynamic loader is there. */
function isMusl(cpu: string): boolean {
  const arch = cpu === "x64" ? "x86_64" : "aarch64";
  try {
    return fs.existsSync(`/lib/ld-musl-${arch}.so.1`);
  } catch {
    return false; // no read permission: assume glibc, the common case
  }
}

/**
 * The prebuilt targets that fit this host, best first (on Linux the one of its
 * C library; an npm install holds only the package whose `libc` matches).
 */
export function hostTargets(host: HostPlatform): PlatformTarget[] {
  const os = host.os === "windows" ? "win32" : host.os;
  const cpu = host.arch === "x86_64" ? "x64" : host.arch === "aarch64" ? "arm64" : host.arch;
  const fits = PLATFORM_TARGETS.filter((t) => t.os === os && t.cpu === cpu);
  if (os !== "linux") return fits;
  const libc = isMusl(cpu) ? "musl" : "glibc";
  return fits.sort((a, b) => (a.libc === libc ? 0 : 1) - (b.libc === libc ? 0 : 1));
}

/** One place the library may be loaded from. */
export interface Candidate {
  /** The file; empty when the place could not be resolved (then `missing` says why). */
  path: string;
  /** Where it came from, in words: "TURBOMDBX_LIB", "the @turbomdbx/linux-x64-gnu package", ... */
  from: string;
  /** A prebuilt package's target: the file must match its recorded SHA-256. */
  target?: PlatformTarget;
  /** Why this place has no file (a package that is not installed), for the error. */
  missing?: string;
}

/** A file: URL as a path of this platform; undefined for other URLs. */
export function fileUrlToPath(url: URL, windows: boolean): string | undefined {
  if (url.protocol !== "file:") return undefined;
  const p = decodeURIComponent(url.pathname);
  return windows ? p.replace(/^\/([A-Za-z]:)/, "$1").replaceAll("/", "\\") : p;
}

function exists(path: string): boolean {
  try {
    return fs.existsSync(path);
  } catch {
    return true; // cannot look (Deno without --allow-read): let dlopen say what it finds
  }
}

/**
 * Resolves an npm platform package installed beside this package
 * (node_modules) by the runtime's own resolver, as an import of this module
 * would: works under Bun and Node-style resolution, and under Deno with npm:
 * specifiers (a node_modules folder or Deno's npm cache).
 */
function resolvePackageFile(t: PlatformTarget, windows: boolean): { path: string } | { missing: string } {
  let url: string;
  // Through a reference: the specifier is computed, and only this (npm) distribution resolves it.
  const meta = import.meta;
  try {
    url = meta.resolve(`${t.packageName}/package.json`);
  } catch (e) {
    return { missing: `not installed (${(e as Error).message.split("\n")[0]})` };
  }
  const dir = fileUrlToPath(new URL(".", url), windows);
  if (!dir) return { missing: `resolved to ${url}, not a file` };
  const path = dir + t.file;
  if (!exists(path)) return { missing: `not installed (${path} does not exist)` };
  return { path };
}

/** JSR: the result of importing each host target's npm package, set up once before the first load. */
let jsrPackages: Map<string, { path: string } | { missing: string }> | undefined;

/**
 * JSR only: imports the host's npm platform package (Deno fetches it into its
 * npm cache on first use; on Linux the other C library's package only if the
 * best fit fails). Runs once, at module load, unless TURBOMDBX_LIB names the
 * library; a failure is kept for the error message.
 */
export async function prepareJsrPackages(host: HostPlatform, windows: boolean): Promise<void> {
  if (!prebuilt.importPackage || jsrPackages) return;
  const found = new Map<string, { path: string } | { missing: string }>();
  for (const t of hostTargets(host)) {
    try {
      const url = await prebuilt.importPackage(t.name);
      const path = url ? fileUrlToPath(new URL(url), windows) : undefined;
      found.set(t.name, path ? { path } : { missing: `npm:${t.packageName} gave no file path (${url})` });
      if (path) break; // the best fit is there: the other C library's package is not fetched
    } catch (e) {
      found.set(t.name, {
        missing: `npm:${t.packageName}@${prebuilt.version} could not be imported: ${
          (e as Error).message.split("\n")[0]
        }`,
      });
    }
  }
  jsrPackages = found;
}

/**
 * The places to load the library from, in order: the explicit path, else
 * TURBOMDBX_LIB, else the local build (in a checkout always; in a package
 * only if such a file is there), then the installed platform package (npm and
 * JSR packages only).
 */
export function candidates(
  explicit: string | undefined,
  envPath: string | undefined,
  host: HostPlatform,
  fileName: string,
): Candidate[] {
  if (explicit) return [{ path: explicit, from: "the libraryPath option" }];
  if (envPath) return [{ path: envPath, from: "TURBOMDBX_LIB" }];
  const windows = host.os === "windows";
  const list: Candidate[] = [];
  const local = fileUrlToPath(new URL(`../../zig-out/lib/${fileName}`, import.meta.url), windows);
  if (local && (prebuilt.distribution === "source" || exists(local))) {
    list.push({ path: local, from: "the local build" });
  }
  if (prebuilt.distribution === "source") return list;
  for (const t of hostTargets(host)) {
    const from = `the ${t.packageName} package`;
    const r = prebuilt.distribution === "jsr"
      ? jsrPackages?.get(t.name) ??
        {
          missing: jsrPackages
            ? "not imported (a better fit was found)"
            : "not imported (TURBOMDBX_LIB was set when turbomdbx was loaded)",
        }
      : resolvePackageFile(t, windows);
    list.push("path" in r ? { path: r.path, from, target: t } : { path: "", from, target: t, missing: r.missing });
  }
  return list;
}

/** The lower-case hex SHA-256 of a file. */
export function sha256File(path: string): string {
  return createHash("sha256").update(fs.readFileSync(path)).digest("hex");
}

/**
 * Checks a prebuilt library against the SHA-256 this package recorded for its
 * target, before it is loaded; returns the digest. A mismatch, an unrecorded
 * target or an unreadable file is refused with an MdbxError (MDBX_EBADSIGN).
 */
export function verifyPrebuilt(path: string, t: PlatformTarget, from: string): string {
  const want = prebuilt.sha256[t.name];
  const pkg = `turbomdbx${prebuilt.version ? " " + prebuilt.version : ""}`;
  if (!want) {
    throw new MdbxError(
      ErrorCode.EBADSIGN,
      `turbomdbx: ${path} (${from}) cannot be verified: ${pkg} records no SHA-256 for ${t.name}. ` +
        "Install the turbomdbx package and its platform package at the same version.",
    );
  }
  let got: string;
  try {
    got = sha256File(path);
  } catch (e) {
    throw new MdbxError(
      ErrorCode.EBADSIGN,
      `turbomdbx: ${path} (${from}) cannot be verified, reading it failed: ${(e as Error).message}. ` +
        "Under Deno, grant --allow-read (or -A) so that the library can be checked before it is loaded.",
    );
  }
  if (got !== want) {
    throw new MdbxError(
      ErrorCode.EBADSIGN,
      `turbomdbx: refusing to load ${path} (${from}): its SHA-256 is ${got}, but ${pkg} records ${want} ` +
        `for ${t.name}. The file was changed after it was published; reinstall ${t.packageName}@${
          prebuilt.version ?? "<version of turbomdbx>"
        } (remove node_modules/${t.packageName}, or Deno's cached copy, and install again).`,
    );
  }
  return got;
}

/** What to do when nothing loaded: how to get a library in this distribution. */
export function installAdvice(host: HostPlatform): string {
  const fits = hostTargets(host);
  const v = prebuilt.version ?? "";
  const fromSource = "build it from a checkout with `./run build` (Zig, via pip) and set TURBOMDBX_LIB " +
    "or the libraryPath option to its zig-out/lib library";
  if (prebuilt.distribution === "source") {
    return "Build it with `./run build` (which runs `zig build`), or point TURBOMDBX_LIB or the " +
      "libraryPath option at a built libturbomdbx.";
  }
  if (fits.length === 0) {
    return `No prebuilt library exists for ${host.os}-${host.arch} (prebuilt: ${
      PLATFORM_TARGETS.map((t) => t.name).join(", ")
    }); ${fromSource}.`;
  }
  const pkg = fits[0].packageName;
  if (prebuilt.distribution === "jsr") {
    return `Deno fetches npm:${pkg}@${v} into its npm cache on first use: run once where the npm registry is ` +
      `reachable (or with NPM_CONFIG_REGISTRY pointing at a mirror), or ${fromSource}.`;
  }
  return `Install this platform's package: \`npm install ${pkg}@${v}\` or \`bun add ${pkg}@${v}\` ` +
    "(an optional dependency of turbomdbx: installs with --omit=optional / --no-optional, or a lockfile made " +
    `without it, leave it out), or ${fromSource}. A single binary (bun build --compile) has no node_modules: ` +
    `embed the library with \`import lib from "${pkg}/${fits[0].file}" with { type: "file" }\` and load it with ` +
    "`loadLibrary(lib, { verify: true })`.";
}
