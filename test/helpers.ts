/**
 * Small fixtures shared by the tests: temporary directories, a temporary
 * database, and the command line that runs a script in this same runtime.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { AssertionError } from "node:assert";
import { type Env, MdbxError, open, type OpenOptions } from "../mod.ts";
import { runtime } from "./shim.ts";

/** Creates a fresh directory under the OS temp dir and returns its path; remove it with `removeDir`. */
export function tempDir(prefix = "turbomdbx-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Removes a directory made by `tempDir`, with its contents. */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A database in a fresh temporary directory; disposing closes it and removes the directory. */
export interface TempEnv extends Disposable {
  readonly env: Env;
  /** The temporary directory. */
  readonly dir: string;
  /** The database path inside it. */
  readonly path: string;
}

/**
 * Opens a database in a fresh temporary directory. Tests default to sync
 * "lazy": durability is not what they check, and an fsync per commit would make
 * them slow ("nosync" would too, but libmdbx then logs a warning at close).
 */
export function tempEnv(options: OpenOptions = {}, prefix?: string): TempEnv {
  const dir = tempDir(prefix);
  const p = path.join(dir, "db");
  let env: Env;
  try {
    env = open(p, { sync: "lazy", ...options });
  } catch (e) {
    removeDir(dir);
    throw e;
  }
  return {
    env,
    dir,
    path: p,
    [Symbol.dispose]() {
      env.close();
      removeDir(dir);
    },
  };
}

/** The command that runs `script` (with `args`) in the runtime running this process. */
export function runtimeCommand(script: string, args: string[] = []): { cmd: string; args: string[] } {
  return runtime === "deno"
    ? { cmd: process.execPath, args: ["run", "-A", script, ...args] }
    : { cmd: process.execPath, args: [script, ...args] };
}

/**
 * Asserts that `fn` throws an MdbxError with this code name (e.g. "MDBX_KEYEXIST")
 * and, if given, a message matching `message`. Returns the error.
 */
export function throwsMdbx(fn: () => unknown, codeName: string, message?: RegExp): MdbxError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof MdbxError)) throw new AssertionError({ message: `expected MdbxError ${codeName}, got ${e}` });
    if (e.codeName !== codeName) {
      throw new AssertionError({ message: `expected ${codeName}, got ${e.codeName}: ${e.message}` });
    }
    if (message && !message.test(e.message)) {
      throw new AssertionError({ message: `message of ${codeName} does not match ${message}: ${e.message}` });
    }
    return e;
  }
  throw new AssertionError({ message: `expected MdbxError ${codeName}, nothing was thrown` });
}

/** Asserts that the stock `mdbx_chk` (built from the unpatched sources) finds no problem in the database at `db`. */
export function assertStockChk(db: string): void {
  const chk = fileURLToPath(
    new URL(`../zig-out/bin/${process.platform === "win32" ? "mdbx_chk.exe" : "mdbx_chk"}`, import.meta.url),
  );
  const r = spawnSync(chk, ["-v", db], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new AssertionError({ message: `stock mdbx_chk found problems in ${db}:\n${r.stdout}\n${r.stderr}` });
  }
}
