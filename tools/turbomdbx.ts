/**
 * turbomdbx CLI: look into a database from the shell. Uses only the public
 * API (mod.ts) and opens every database read-only, except `rebuild`.
 *
 *   bun tools/turbomdbx.ts <command> ...          (or: deno run -A tools/turbomdbx.ts ...)
 *
 *   stat <db>                          environment: sizes, txnid, readers, totals
 *   tables <db>                        named tables with entries, depth, pages, flags
 *   get <db> <table> <key> [--hex]     one value (exit 1 if the key is absent)
 *   dump <db> <table> [--limit N] [--hex]   key<TAB>value lines in key order
 *   copy <db> <dest> [--no-compact]    a consistent copy (compacted by default)
 *   readers <db>                       the reader lock table
 *   rebuild <db>                       live rebuild: compact, restore key order (docs/rebuild.md)
 *   chk <db> [--skip-keys] [--ignore-order]   integrity check (read-only, validated): exit 1 on damage
 *   library                            the loaded library: file, how it was found, SHA-256 check, versions
 *
 * `<db>` is a database folder, or the data file itself. `<table>` is a table
 * name; `-` is the main (unnamed) table. Keys of integer-key tables are given
 * and printed as decimal numbers; other keys are text, or hex with `--hex`.
 * Values are printed as text when they are printable UTF-8, as JSON strings
 * when they hold control characters, and as `0x…` hex otherwise (always hex
 * with `--hex`).
 *
 * Exit codes: 0 success, 1 key not found (`get`) or damage found (`chk`), 2 usage or database error.
 *
 * Compiled binaries: `bun tools/build.ts` builds `zig-out/bin/turbomdbx-cli`
 * with the shared library embedded (see tools/cli-bun.ts); for Deno,
 * `deno compile -A --include zig-out/lib/libturbomdbx.so tools/turbomdbx.ts`
 * embeds the library where the loader's local-build lookup finds it.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import {
  checkDatabase,
  DbFlags,
  type Env,
  libraryCandidates,
  libraryInfo,
  loadLibrary,
  MdbxError,
  open,
  type Table,
} from "../mod.ts";

const USAGE = `usage: turbomdbx <command> [arguments]

  stat <db>                              environment sizes, txnid, readers and totals
  tables <db>                            named tables with entries, depth, pages and flags
  get <db> <table> <key> [--hex]         one value (exit code 1 if absent)
  dump <db> <table> [--limit N] [--hex]  key<TAB>value lines in key order
  copy <db> <dest> [--no-compact]        a consistent copy, compacted unless --no-compact
  readers <db>                           the reader lock table
  rebuild <db>                           rebuild the database live: compacted, leaves in key
                                         order, while other processes keep reading and writing
  chk <db> [--skip-keys] [--ignore-order]
                                         check the database's integrity without trusting it: every
                                         issue found is printed; exit code 1 if it is damaged
  library                                the shared library in use: its file, how it was found,
                                         whether its SHA-256 was verified, libmdbx version and target

<db> is a database folder or data file; <table> "-" is the main table.
Integer-key tables take and print decimal keys. With --hex, keys are given and
printed in hex and values are printed in hex.`;

/** What the CLI needs from its caller: where output goes and which library to load. */
export interface CliOptions {
  /** The library to load (the compiled binary passes its embedded copy). */
  libraryPath?: string;
  /**
   * Check `libraryPath` against the SHA-256 that the installed package records
   * for this platform before loading it (a binary compiled from the installed
   * package, which embeds the platform package's library).
   */
  verifyLibrary?: boolean;
  /** Standard output, one line per call (default console.log). */
  out?: (line: string) => void;
  /** Standard error (default console.error). */
  err?: (line: string) => void;
}

class UsageError extends Error {}

/** Runs one CLI command; returns the exit code (a promise of it for `rebuild`). */
export function run(argv: string[], options: CliOptions = {}): number | Promise<number> {
  const out = options.out ?? ((s: string) => console.log(s));
  const err = options.err ?? ((s: string) => console.error(s));
  try {
    const { positional, flags } = parseArgs(argv);
    const [command, ...rest] = positional;
    if (command === undefined || flags.has("help")) {
      (command === undefined && !flags.has("help") ? err : out)(USAGE);
      return command === undefined && !flags.has("help") ? 2 : 0;
    }
    const need = (n: number, what: string) => {
      if (rest.length !== n) throw new UsageError(`${command} takes ${what}`);
    };
    prepareLibrary(options.libraryPath, options.verifyLibrary);
    switch (command) {
      case "stat":
        need(1, "<db>");
        return withEnv(rest[0], (env) => stat(env, out));
      case "tables":
        need(1, "<db>");
        return withEnv(rest[0], (env) => tables(env, out));
      case "get":
        need(3, "<db> <table> <key>");
        return withEnv(rest[0], (env) => get(env, rest[1], rest[2], flags.has("hex"), out, err));
      case "dump": {
        need(2, "<db> <table>");
        const limit = flags.has("limit") ? Number(flags.get("limit")) : Infinity;
        if (!(limit >= 0)) throw new UsageError("--limit takes a number");
        return withEnv(rest[0], (env) => dump(env, rest[1], limit, flags.has("hex"), out));
      }
      case "copy":
        need(2, "<db> <dest>");
        return withEnv(rest[0], (env) => {
          const compact = !flags.has("no-compact");
          env.copy(rest[1], { compact });
          out(`copied ${env.path} to ${rest[1]} (${fs.statSync(rest[1]).size} bytes${compact ? ", compacted" : ""})`);
          return 0;
        });
      case "readers":
        need(1, "<db>");
        return withEnv(rest[0], (env) => readers(env, out));
      case "library": {
        need(0, "no arguments");
        const i = libraryInfo();
        const rows: [string, string][] = [
          ["path", i.path],
          ["from", i.from],
          ["verified", i.verified ? "yes" : "no"],
          ...(i.sha256 ? [["sha256", i.sha256] as [string, string]] : []),
          ["libmdbx", `${i.mdbxVersion} (${i.mdbxDescribe})`],
          ["patch level", i.patchLevel],
          ["target", i.target],
          ["turbomdbx", `${i.version ?? "checkout"} (${i.distribution}, ${i.runtime})`],
        ];
        for (const [k, v] of rows) out(`${k.padEnd(12)}${v}`);
        return 0;
      }
      case "chk":
        need(1, "<db>");
        return chk(rest[0], { skipKeys: flags.has("skip-keys"), ignoreOrder: flags.has("ignore-order") }, out);
      case "rebuild":
        need(1, "<db>");
        return rebuild(rest[0], out, err).catch((e) => {
          err(`turbomdbx: ${e instanceof Error ? e.message : String(e)}`);
          return 2;
        });
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`turbomdbx: ${e.message}\n\n${USAGE}`);
    } else {
      const message = e instanceof Error ? e.message : String(e);
      err(message.startsWith("turbomdbx:") ? message : `turbomdbx: ${message}`);
    }
    return 2;
  }
}

function parseArgs(argv: string[]): { positional: string[]; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-h") flags.set("help", "");
    else if (a.startsWith("--")) {
      const [name, value] = a.slice(2).split("=", 2);
      if (name === "limit" && value === undefined) flags.set(name, argv[++i] ?? "");
      else if (["help", "hex", "no-compact", "limit", "skip-keys", "ignore-order"].includes(name)) {
        flags.set(name, value ?? "");
      } else throw new UsageError(`unknown option ${a}`);
    } else positional.push(a);
  }
  return { positional, flags };
}

/**
 * Loads the shared library. A library inside a compiled binary (Bun's
 * `$bunfs`, Deno's embedded folder) may not be loadable by the OS loader from
 * where the bundle says it is: then it is copied to a temp file, loaded from
 * there, and the temp file is removed again (the loaded mapping stays valid).
 */
export function prepareLibrary(libraryPath?: string, verify = false): string {
  try {
    return loadLibrary(libraryPath, { verify: verify && libraryPath !== undefined }).path;
  } catch (e) {
    // The file loaded but is the wrong library, or failed its SHA-256: a copy would not help.
    if (e instanceof MdbxError || (e instanceof Error && e.message.includes("patch level"))) throw e;
    const first = libraryCandidates(libraryPath).find((c) => c.path);
    if (!first) throw e;
    // A copy of an installed package's library is checked as the package's file would be.
    verify = libraryPath !== undefined ? verify : first.from.startsWith("the @turbomdbx/");
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(first.path);
    } catch {
      throw e; // not an embedded file either: report the loader's own message
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbomdbx-lib-"));
    const copy = path.join(dir, path.basename(first.path).replace(/-[a-z0-9]+(\.\w+)$/, "$1"));
    fs.writeFileSync(copy, bytes, { mode: 0o755 });
    try {
      return loadLibrary(copy, { verify }).path;
    } finally {
      // Unlinking a loaded library is fine on Linux and macOS; Windows keeps it locked.
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch { /* left for the OS temp cleaner */ }
    }
  }
}

/**
 * `chk <db>`: checkDatabase() (read-only, every page validated, damage reported
 * rather than thrown). Prints "ok …" and returns 0, or every issue and a
 * summary and returns 1.
 */
function chk(dbPath: string, options: { skipKeys: boolean; ignoreOrder: boolean }, out: (s: string) => void): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(dbPath);
  } catch {
    throw new Error(`${dbPath} does not exist`);
  }
  const r = checkDatabase(dbPath, { ...options, noSubdir: st.isFile() });
  const what = `${int(r.processedPages)} pages, ${int(r.tables)} tables, txnid ${r.txnId}`;
  if (r.ok) {
    out(`ok: ${dbPath} (${what})`);
    return 0;
  }
  for (const issue of r.issues) out(issue);
  if (r.stopped !== undefined) out(`stopped: ${r.stopped}`);
  out(`damaged: ${dbPath}: ${int(r.problems)} problem${r.problems === 1 ? "" : "s"} (${what})`);
  return 1;
}

/** `rebuild <db>`: a live rebuild with a progress bar (on a terminal) or progress lines (otherwise). */
async function rebuild(dbPath: string, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  if (!fs.existsSync(dbPath)) {
    err(`turbomdbx: ${dbPath} does not exist`);
    return 2;
  }
  const env = open(dbPath, { create: false, noSubdir: fs.statSync(dbPath).isFile() });
  const tty = process.stderr.isTTY === true;
  let lastLine = -1;
  try {
    const r = await env.rebuild({
      progressIntervalMs: 200,
      onProgress: (p) => {
        const pct = p.pagesTotal > 0 ? Math.min(100, Math.floor(p.pagesCopied / p.pagesTotal * 100)) : 0;
        const eta = p.etaSeconds > 0 ? `, ETA ${p.etaSeconds.toFixed(0)} s` : "";
        const what = p.phase === "copy"
          ? `copy ${pct}% ${bytes(p.bytesCopied)} of ${bytes(p.bytesTotal)}, ${bytes(p.rate)}/s${eta}`
          : `${p.phase}: ${int(p.rounds)} rounds, ${int(p.keysReplayed)} keys replayed`;
        if (tty) {
          const bar = "#".repeat(Math.floor(pct / 5)).padEnd(20, ".");
          process.stderr.write(`\r[${bar}] ${what}`.padEnd(90));
        } else if (p.phase !== "copy" || pct >= lastLine + 10) {
          lastLine = pct;
          err(what);
        }
      },
    });
    if (tty) process.stderr.write("\n");
    out(
      `rebuilt ${dbPath}: ${bytes(r.bytesBefore)} -> ${bytes(r.bytesAfter)} in ${r.seconds.toFixed(2)} s ` +
        `(copy ${r.copySeconds.toFixed(2)} s, ${r.rounds} catch-up rounds, ${int(r.keysReplayed)} keys replayed, ` +
        `writers held ${r.stallMs.toFixed(1)} ms)`,
    );
    return 0;
  } finally {
    env.close();
  }
}

function withEnv(dbPath: string, fn: (env: Env) => number): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(dbPath);
  } catch {
    throw new Error(`${dbPath} does not exist`);
  }
  const env = open(dbPath, { readOnly: true, create: false, noSubdir: st.isFile() });
  try {
    return fn(env);
  } finally {
    env.close();
  }
}

const int = (n: number) => n.toLocaleString("en-US");

function bytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${n.toFixed(1)} ${units[i]}`;
}

function table(rows: string[][], right: Set<number>): string[] {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (right.has(i) ? c.padStart(w[i]) : c.padEnd(w[i]))).join("  ").trimEnd());
}

function stat(env: Env, out: (s: string) => void): number {
  const info = env.info(), st = env.stat(), list = env.tables();
  const rows: [string, string][] = [
    ["path", env.path],
    ["page size", `${info.pageSize}`],
    ["file size", bytes(info.fileSize)],
    ["map size", `${bytes(info.mapSize)} (geometry ${bytes(info.geometry.lower)} .. ${bytes(info.geometry.upper)})`],
    ["last txnid", `${info.recentTxnId}`],
    ["last page", `${info.lastPgno}`],
    ["readers", `${info.numReaders} of ${info.maxReaders}`],
    ["tables", `${list.length}`],
    ["entries", `${int(list.reduce((n, t) => n + t.stat.entries, 0))} in named tables (${int(st.entries)} in all)`],
    ["pages", `${int(st.branchPages)} branch, ${int(st.leafPages)} leaf, ${int(st.largePages)} large (all tables)`],
  ];
  for (const line of table(rows, new Set())) out(line);
  return 0;
}

function flagNames(flags: number): string {
  const names: string[] = [];
  for (const [name, bit] of Object.entries(DbFlags)) {
    if (bit < 0x100 && (flags & bit) !== 0) names.push(name.toLowerCase());
  }
  return names.join(",") || "-";
}

function tables(env: Env, out: (s: string) => void): number {
  const list = env.tables();
  if (list.length === 0) {
    out("no named tables");
    return 0;
  }
  const rows = [["name", "entries", "depth", "branch", "leaf", "large", "flags"]];
  for (const t of list) {
    const s = t.stat;
    rows.push([
      t.name,
      int(s.entries),
      `${s.depth}`,
      int(s.branchPages),
      int(s.leafPages),
      int(s.largePages),
      flagNames(t.flags),
    ]);
  }
  for (const line of table(rows, new Set([1, 2, 3, 4, 5]))) out(line);
  return 0;
}

/** Opens a table with whatever flags it has, as raw bytes. */
function openTable(env: Env, name: string): Table<"binary", "binary"> {
  const n = name === "-" ? null : name;
  if (n !== null && !env.tables().some((t) => t.name === n)) {
    throw new Error(`no table "${name}" in ${env.path} (see \`turbomdbx tables\`; "-" is the main table)`);
  }
  return env.table(n, { accede: true, create: false });
}

function hex(b: Uint8Array): string {
  let s = "0x";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function fromHex(s: string): Uint8Array {
  const h = s.replace(/^0x/i, "");
  if (!/^([0-9a-f]{2})*$/i.test(h)) throw new Error(`"${s}" is not hex (an even number of hex digits)`);
  return Uint8Array.from({ length: h.length / 2 }, (_, i) => parseInt(h.slice(2 * i, 2 * i + 2), 16));
}

const strict = new TextDecoder("utf-8", { fatal: true });

/** Text when printable UTF-8, a JSON string when it has line breaks or tabs, else hex. */
function show(b: Uint8Array, integer: boolean, forceHex: boolean): string {
  if (integer && (b.length === 4 || b.length === 8)) {
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    return b.length === 4 ? `${dv.getUint32(0, true)}` : `${dv.getBigUint64(0, true)}`;
  }
  if (forceHex) return hex(b);
  let s: string;
  try {
    s = strict.decode(b);
  } catch {
    return hex(b);
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s)) return hex(b);
  return /[\t\n\r]/.test(s) ? JSON.stringify(s) : s;
}

/** The bytes of a key given on the command line; `size` is the key size of an integer-key table. */
function encodeKey(key: string, size: number | undefined, asHex: boolean): Uint8Array {
  if (size === undefined) return asHex ? fromHex(key) : new TextEncoder().encode(key);
  if (!/^\d+$/.test(key)) throw new Error(`this table has integer keys; "${key}" is not a decimal integer`);
  const n = BigInt(key), k = new Uint8Array(size);
  if (n >= 1n << BigInt(size * 8)) throw new Error(`${key} does not fit the table's ${size}-byte keys`);
  if (size === 8) new DataView(k.buffer).setBigUint64(0, n, true);
  else new DataView(k.buffer).setUint32(0, Number(n), true);
  return k;
}

function get(
  env: Env,
  name: string,
  key: string,
  asHex: boolean,
  out: (s: string) => void,
  err: (s: string) => void,
): number {
  const t = openTable(env, name);
  const intKeys = (t.flags & DbFlags.INTEGERKEY) !== 0, intDups = (t.flags & DbFlags.INTEGERDUP) !== 0;
  return env.read((txn) => {
    // Integer keys are all 4 or all 8 bytes in one table: the first key tells which.
    const size = intKeys ? txn.keys(t, { limit: 1 }).next().value?.length : undefined;
    const k = intKeys && size === undefined ? undefined : encodeKey(key, size, asHex);
    if (k !== undefined && txn.has(t, k)) {
      if (t.dupSort) { for (const d of txn.dups(t, k)) out(show(d, intDups, asHex)); }
      else out(show(txn.get(t, k)!, intDups, asHex));
      return 0;
    }
    err(`turbomdbx: key ${key} not found in ${t}`);
    return 1;
  });
}

function dump(env: Env, name: string, limit: number, asHex: boolean, out: (s: string) => void): number {
  const t = openTable(env, name);
  const intKeys = (t.flags & DbFlags.INTEGERKEY) !== 0, intDups = (t.flags & DbFlags.INTEGERDUP) !== 0;
  return env.read((txn) => {
    for (const { key, value } of txn.range(t, { limit })) {
      out(`${show(key, intKeys, asHex)}\t${show(value, intDups, asHex)}`);
    }
    return 0;
  });
}

function readers(env: Env, out: (s: string) => void): number {
  const list = env.readers();
  if (list.length === 0) {
    out("no active readers");
    return 0;
  }
  const rows = [["slot", "pid", "thread", "txnid", "lag", "used", "retained"]];
  for (const r of list) {
    rows.push([
      `${r.slot}`,
      `${r.pid}`,
      `${r.thread}`,
      `${r.txnId}`,
      `${r.lag}`,
      bytes(r.bytesUsed),
      bytes(r.bytesRetained),
    ]);
  }
  for (const line of table(rows, new Set([0, 1, 2, 3, 4, 5, 6]))) out(line);
  return 0;
}

if (import.meta.main) {
  process.exit(await run(process.argv.slice(2)));
}
