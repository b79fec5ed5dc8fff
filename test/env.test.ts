import { test } from "./shim.ts";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { DbFlags, deleteDatabase, Env, EnvFlags, ErrorCode, MdbxError, open, parseSize, PutFlags } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir, tempEnv, throwsMdbx } from "./helpers.ts";

const MiB = 1024 * 1024;
const modUrl = new URL("../mod.ts", import.meta.url).href;

/** Runs a small script in a child process of this runtime; returns its exit code and output. */
function runChild(dir: string, source: string, env: Record<string, string> = {}) {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.ts`);
  fs.writeFileSync(script, source);
  const { cmd, args } = runtimeCommand(script);
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** The sync mode that env flags describe (libmdbx reports SAFE_NOSYNC with NOMETASYNC set as well). */
function syncModeOf(flags: number): string {
  if ((flags & EnvFlags.UTTERLY_NOSYNC) === EnvFlags.UTTERLY_NOSYNC) return "nosync";
  if (flags & EnvFlags.SAFE_NOSYNC) return "lazy";
  if (flags & EnvFlags.NOMETASYNC) return "noMetaSync";
  return "durable";
}

// ---------------------------------------------------------------- open ---

test("open creates a database directory holding the data and lock files", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    const env = open(p);
    assert.equal(env.path, p);
    assert.equal(env.isOpen, true);
    assert.equal(env.readOnly, false);
    // plus turbomdbx's sidecar, which processes share to follow a live rebuild (docs/rebuild.md)
    assert.deepEqual(fs.readdirSync(p).sort(), ["mdbx.dat", "mdbx.dat-turbomdbx", "mdbx.lck"]);
    env.close();
  } finally {
    removeDir(dir);
  }
});

test("open with create: false fails with MDBX_ENOENT when the database does not exist", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "missing");
    const e = throwsMdbx(() => open(p, { create: false }), "MDBX_ENOENT", /does not exist \(and create: false/);
    assert.equal(e.code, ErrorCode.ENOENT);
    assert.equal(fs.existsSync(p), false, "nothing was created");
    // the failed open leaves the path free for a later open
    open(p).close();
  } finally {
    removeDir(dir);
  }
});

test("open with create: false opens an existing database", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  t.env.close();
  using env = open(t.path, { create: false });
  assert.equal(env.read((txn) => txn.get(env.table("t", { keys: "string", values: "string" }), "k")), "v");
});

test("open rejects a missing or empty path with a TypeError", () => {
  assert.throws(() => open(""), TypeError);
  assert.throws(() => open(undefined as unknown as string), TypeError);
  assert.throws(() => open(42 as unknown as string), TypeError);
});

test("a read-only environment reads existing data and refuses every write with MDBX_EACCES", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  t.env.close();
  using env = open(t.path, { readOnly: true });
  assert.equal(env.readOnly, true);
  assert.ok(env.flags & EnvFlags.RDONLY);
  const ro = env.table("t", { keys: "string", values: "string" });
  assert.equal(env.read((txn) => txn.get(ro, "k")), "v");
  throwsMdbx(() => env.beginWrite(), "MDBX_EACCES", /read-only/);
  throwsMdbx(() => env.write((txn) => txn.put(ro, "k", "w")), "MDBX_EACCES");
  // a table that does not exist cannot be created in a read-only environment
  throwsMdbx(() => env.table("missing"), "MDBX_NOTFOUND", /does not exist/);
  assert.equal(env.read((txn) => txn.get(ro, "k")), "v");
});

test("an exclusive environment cannot be opened by another process", () => {
  using t = tempEnv({ exclusive: true });
  assert.ok(t.env.flags & EnvFlags.EXCLUSIVE);
  const r = runChild(
    t.dir,
    `import { open } from ${JSON.stringify(modUrl)};
try { open(${JSON.stringify(t.path)}).close(); console.log("OPENED"); }
catch (e) { console.log("FAILED " + e.codeName); }`,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^FAILED MDBX_/m, r.stdout + r.stderr);
});

test("another process shares a non-exclusive environment if its sync mode agrees (or it accedes)", () => {
  using t = tempEnv({ sync: "nosync" });
  const tbl = t.env.table("shared", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "from", "parent"));
  const r = runChild(
    t.dir,
    `import { open } from ${JSON.stringify(modUrl)};
try { open(${JSON.stringify(t.path)}, { sync: "durable" }); } catch (e) { console.log("MISMATCH " + e.codeName); }
const env = open(${JSON.stringify(t.path)}, { accede: true });
const tbl = env.table("shared", { keys: "string", values: "string" });
console.log("GOT " + env.read((txn) => txn.get(tbl, "from")));
env.write((txn) => txn.put(tbl, "from", "child"));
env.close();`,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /MISMATCH MDBX_INCOMPATIBLE/);
  assert.match(r.stdout, /GOT parent/);
  assert.equal(t.env.read((txn) => txn.get(tbl, "from")), "child");
});

test("noSubdir uses the path as the data file and <path>-lck as the lock file", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "data.mdbx");
    const env = open(p, { noSubdir: true, sync: "nosync" });
    assert.ok(env.flags & EnvFlags.NOSUBDIR);
    assert.ok(fs.statSync(p).isFile());
    assert.ok(fs.existsSync(p + "-lck"));
    env.close();
  } finally {
    removeDir(dir);
  }
});

test("geometry accepts size strings and sets the map's bounds", () => {
  using t = tempEnv({ geometry: { lower: "1MiB", now: "2MiB", upper: "64MiB", growth: "1MiB", shrink: "4MiB" } });
  const g = t.env.info().geometry;
  assert.equal(g.lower, 1 * MiB);
  assert.equal(g.upper, 64 * MiB);
  assert.equal(g.grow, 1 * MiB);
  assert.equal(g.shrink, 4 * MiB);
  assert.ok(g.current >= 2 * MiB && g.current <= 64 * MiB);
  assert.equal(t.env.info().mapSize, 64 * MiB);
});

test("geometry with a malformed size fails with a RangeError that names the field", () => {
  const dir = tempDir();
  try {
    assert.throws(
      () => open(path.join(dir, "db"), { geometry: { upper: "lots" } }),
      (e: unknown) => e instanceof RangeError && /geometry\.upper "lots" is not a size/.test(e.message),
    );
    // the failed open left nothing open: the same path opens now
    open(path.join(dir, "db"), { geometry: { upper: "8MiB" } }).close();
  } finally {
    removeDir(dir);
  }
});

test("parseSize reads byte counts and binary and decimal units", () => {
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize(0), 0);
  assert.equal(parseSize("4096"), 4096);
  assert.equal(parseSize("512B"), 512);
  assert.equal(parseSize("4k"), 4096);
  assert.equal(parseSize("4KiB"), 4096);
  assert.equal(parseSize("4KB"), 4000);
  assert.equal(parseSize("64MiB"), 64 * MiB);
  assert.equal(parseSize("64 mib"), 64 * MiB);
  assert.equal(parseSize("1GB"), 1e9);
  assert.equal(parseSize("1.5 GiB"), 1.5 * 1024 ** 3);
  assert.equal(parseSize(" 2TiB "), 2 * 1024 ** 4);
  assert.equal(parseSize("1T"), 1024 ** 4);
});

test("parseSize rejects what is not a size", () => {
  for (const bad of ["", "lots", "64XB", "-1MiB", "1.2.3", "MiB"]) {
    assert.throws(
      () => parseSize(bad, "thing"),
      (e: unknown) => e instanceof RangeError && /thing ".*" is not a size/.test(e.message),
      bad,
    );
  }
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 60]) {
    assert.throws(() => parseSize(bad), RangeError, String(bad));
  }
  assert.throws(() => parseSize({} as unknown as string), TypeError);
  assert.throws(() => parseSize(10n as unknown as number), TypeError);
});

test("pageSize must be a power of two from 256 to 65536", () => {
  const dir = tempDir();
  try {
    for (const bad of [100, 300, 4095, 131072, "128KiB"]) {
      assert.throws(
        () => open(path.join(dir, "db"), { pageSize: bad }),
        /pageSize must be a power of two/,
        String(bad),
      );
    }
    const env = open(path.join(dir, "db"), { pageSize: "16KiB", sync: "nosync" });
    assert.equal(env.info().pageSize, 16384);
    assert.equal(env.stat().pageSize, 16384);
    // bigger pages allow bigger keys
    assert.ok(env.maxKeySize() > 2022);
    env.close();
  } finally {
    removeDir(dir);
  }
});

test("maxTables limits the named tables: one more fails with MDBX_DBS_FULL and advice to raise it", () => {
  using t = tempEnv({ maxTables: 2 });
  t.env.table("a");
  t.env.table("b");
  throwsMdbx(() => t.env.table("c"), "MDBX_DBS_FULL", /larger maxTables/);
  // the failure rolled back: the two tables still work, and c was not created
  const a = t.env.table("a");
  t.env.write((txn) => txn.put(a, "k", "v"));
  assert.deepEqual(t.env.tables().map((e) => e.name).sort(), ["a", "b"]);
  assert.equal(t.env.getOption("maxTables"), 2);
});

test("every sync mode opens with its libmdbx flags", () => {
  const dir = tempDir();
  try {
    for (const mode of ["durable", "noMetaSync", "lazy", "nosync"] as const) {
      const env = open(path.join(dir, "db"), { sync: mode });
      assert.equal(syncModeOf(env.flags), mode);
      const tbl = env.table("t", { keys: "string", values: "string" });
      env.write((txn) => txn.put(tbl, mode, mode));
      env.close();
    }
    using env = open(path.join(dir, "db"));
    const tbl = env.table("t", { keys: "string", values: "string" });
    assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["durable", "lazy", "noMetaSync", "nosync"]);
  } finally {
    removeDir(dir);
  }
});

test("an unknown sync mode is a TypeError", () => {
  const dir = tempDir();
  try {
    assert.throws(() => open(path.join(dir, "db"), { sync: "sometimes" as never }), TypeError);
  } finally {
    removeDir(dir);
  }
});

test("syncBytes and syncPeriodMs set libmdbx's autosync thresholds", () => {
  using t = tempEnv({ sync: "lazy", syncBytes: "1MiB", syncPeriodMs: 500 });
  assert.equal(t.env.getOption("syncBytes"), MiB);
  // libmdbx keeps the period in 16.16 fixed-point seconds
  assert.equal(t.env.getOption("syncPeriod"), 0.5 * 65536);
  const info = t.env.info();
  assert.equal(info.autosyncThreshold, MiB);
  assert.equal(info.autosyncPeriodSeconds, 0.5);
});

test("setSync switches the durability mode of an open environment", () => {
  using t = tempEnv({ sync: "durable" });
  assert.equal(syncModeOf(t.env.flags), "durable");
  for (const mode of ["nosync", "lazy", "noMetaSync", "durable", "lazy", "nosync"] as const) {
    t.env.setSync(mode);
    assert.equal(syncModeOf(t.env.flags), mode);
  }
});

test("setSync with an unknown mode is a TypeError and keeps the mode in effect", () => {
  using t = tempEnv({ sync: "lazy" });
  const before = t.env.flags;
  assert.throws(() => t.env.setSync("bogus" as never), TypeError);
  assert.equal(t.env.flags, before);
});

test("opening a path that is already open in this process fails with MDBX_BUSY and says to share the Env", () => {
  using t = tempEnv();
  const e = throwsMdbx(() => open(t.path), "MDBX_BUSY", /already open in this process.*share that Env/);
  assert.equal(e.code, ErrorCode.BUSY);
  // a trailing slash names the same database
  throwsMdbx(() => open(t.path + "/"), "MDBX_BUSY");
  // the first Env is unaffected
  const tbl = t.env.table("t");
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  // once closed, the path can be opened again
  t.env.close();
  using again = open(t.path);
  assert.equal(again.isOpen, true);
});

// --------------------------------------------------------------- close ---

test("close is idempotent", () => {
  using t = tempEnv();
  t.env.close();
  t.env.close();
  assert.equal(t.env.isOpen, false);
});

test("every Env method throws MDBX_EBADSIGN after close", () => {
  using t = tempEnv();
  const env = t.env;
  env.close();
  const calls: [string, () => unknown][] = [
    ["beginRead", () => env.beginRead()],
    ["beginWrite", () => env.beginWrite()],
    ["read", () => env.read(() => 1)],
    ["write", () => env.write(() => 1)],
    ["table", () => env.table("t")],
    ["tables", () => env.tables()],
    ["stat", () => env.stat()],
    ["info", () => env.info()],
    ["flags", () => env.flags],
    ["maxKeySize", () => env.maxKeySize()],
    ["maxValueSize", () => env.maxValueSize()],
    ["getOption", () => env.getOption("maxTables")],
    ["setOption", () => env.setOption("txnDpLimit", 1000)],
    ["setSync", () => env.setSync("lazy")],
    ["sync", () => env.sync()],
    ["copy", () => env.copy(path.join(t.dir, "copy"))],
    ["readers", () => env.readers()],
    ["checkReaders", () => env.checkReaders()],
    ["gcInfo", () => env.gcInfo()],
    ["warmup", () => env.warmup()],
    ["onLaggardReader", () => env.onLaggardReader(() => -1)],
    ["unsafeHandle", () => env.unsafeHandle],
  ];
  for (const [name, call] of calls) {
    assert.throws(
      call,
      (e) => e instanceof MdbxError && e.codeName === "MDBX_EBADSIGN" && /is closed/.test(e.message),
      name,
    );
  }
  assert.equal(fs.existsSync(path.join(t.dir, "copy")), false);
});

test("closing the environment ends its transactions, cursors, iterators and views, which then throw", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => {
    for (let i = 0; i < 100; i++) txn.put(tbl, `k${String(i).padStart(3, "0")}`, `v${i}`);
  });
  const r = t.env.beginRead();
  const w = t.env.beginWrite();
  const cur = r.cursor(tbl);
  assert.deepEqual(cur.first(), { key: "k000", value: "v0" });
  const fresh = r.range(tbl);
  const started = r.range(tbl);
  assert.deepEqual(started.next().value, { key: "k000", value: "v0" });
  const view = r.unsafeGetView(tbl, "k001")!;
  assert.equal(view.length, 2);
  t.env.close();
  assert.equal(r.isOpen, false);
  assert.equal(w.isOpen, false);
  assert.equal(cur.isOpen, false);
  assert.equal(view.length, 0, "the view is detached");
  throwsMdbx(() => r.get(tbl, "k000"), "MDBX_BAD_TXN", /environment was closed/);
  throwsMdbx(() => w.put(tbl, "k", "v"), "MDBX_BAD_TXN", /environment was closed/);
  throwsMdbx(() => cur.next(), "MDBX_BAD_TXN", /transaction has ended/);
  throwsMdbx(() => fresh.next(), "MDBX_BAD_TXN");
  throwsMdbx(() => started.next(), "MDBX_BAD_TXN");
  // ending them again is harmless
  r.end();
  w.abort();
  cur.close();
});

test("an aborted-by-close write transaction wrote nothing", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  const w = t.env.beginWrite();
  w.put(tbl, "k", "v");
  t.env.close();
  using env = open(t.path);
  assert.equal(env.read((txn) => txn.get(env.table("t", { keys: "string", values: "string" }), "k")), undefined);
});

test("`using` closes an Env at the end of its block", () => {
  const dir = tempDir();
  try {
    let outer;
    {
      using env = open(path.join(dir, "db"), { sync: "nosync" });
      outer = env;
      assert.equal(env.isOpen, true);
    }
    assert.equal(outer.isOpen, false);
    // the path is free again
    open(path.join(dir, "db")).close();
  } finally {
    removeDir(dir);
  }
});

// --------------------------------------------------------- inspection ---

test("info reports geometry, page size, txnids and readers", () => {
  using t = tempEnv({ geometry: { upper: "32MiB" } });
  const tbl = t.env.table("t");
  const before = t.env.info();
  assert.equal(before.pageSize, 4096);
  assert.ok(before.sysPageSize >= 4096);
  assert.equal(before.geometry.upper, 32 * MiB);
  assert.ok(before.maxReaders > 0);
  assert.equal(before.numReaders, 0);
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  const r = t.env.beginRead();
  const after = t.env.info();
  assert.equal(after.recentTxnId, before.recentTxnId + 1);
  assert.equal(after.recentTxnId, r.id);
  assert.ok(after.numReaders >= 1);
  assert.ok(after.fileSize > 0);
  assert.ok(after.lastPgno > 0);
  r.end();
});

test("env.stat counts the entries of every table together", () => {
  using t = tempEnv();
  const a = t.env.table("a"), b = t.env.table("b");
  t.env.write((txn) => {
    for (let i = 0; i < 10; i++) txn.put(a, `k${i}`, "v");
    for (let i = 0; i < 5; i++) txn.put(b, `k${i}`, "v");
  });
  const s = t.env.stat();
  assert.equal(s.pageSize, 4096);
  // 15 entries plus the main table's two records naming the tables
  assert.equal(s.entries, 17);
  assert.ok(s.leafPages >= 3);
});

test("readers lists this process's open read transactions with their snapshot", () => {
  using t = tempEnv();
  assert.deepEqual(t.env.readers(), []);
  const r = t.env.beginRead();
  const list = t.env.readers();
  assert.equal(list.length, 1);
  assert.equal(list[0].pid, process.pid);
  assert.equal(list[0].txnId, r.id);
  assert.equal(list[0].lag, 0);
  r.end();
  assert.deepEqual(t.env.readers(), []);
});

test("checkReaders clears no slots when every reader's process is alive", () => {
  using t = tempEnv();
  using r = t.env.beginRead();
  assert.equal(t.env.checkReaders(), 0);
  assert.equal(t.env.readers().length, 1);
  assert.ok(r.isOpen);
});

test("gcInfo accounts for allocated and freed pages", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t");
  const v = new Uint8Array(1000);
  t.env.write((txn) => {
    for (let i = 0; i < 500; i++) txn.put(tbl, `k${i}`, v);
  });
  const full = t.env.gcInfo();
  t.env.write((txn) => txn.clear(tbl));
  t.env.write((txn) => txn.put(tbl, "x", "y")); // a commit after the clear moves freed pages to the GC
  const cleared = t.env.gcInfo();
  assert.equal(full.pagesTotal, 64 * MiB / 4096);
  assert.ok(full.pagesBacked >= full.pagesAllocated);
  assert.ok(full.pagesAllocated > 100);
  assert.ok(cleared.pagesGc > full.pagesGc, `GC grew: ${full.pagesGc} -> ${cleared.pagesGc}`);
  assert.ok(cleared.pagesReclaimable <= cleared.pagesGc);
});

test("flags include NOSTICKYTHREADS unless stickyThreads is asked for", () => {
  const dir = tempDir();
  try {
    const a = open(path.join(dir, "a"), { sync: "nosync" });
    assert.ok(a.flags & EnvFlags.NOSTICKYTHREADS);
    a.close();
    const b = open(path.join(dir, "b"), { sync: "nosync", stickyThreads: true, writeMap: true, lifoReclaim: true });
    assert.equal(b.flags & EnvFlags.NOSTICKYTHREADS, 0);
    assert.ok(b.flags & EnvFlags.WRITEMAP);
    assert.ok(b.flags & EnvFlags.LIFORECLAIM);
    const tbl = b.table("t", { keys: "string", values: "string" });
    b.write((txn) => txn.put(tbl, "k", "v"));
    assert.equal(b.read((txn) => txn.get(tbl, "k")), "v");
    b.close();
  } finally {
    removeDir(dir);
  }
});

test("setOption changes an option that getOption then reads back", () => {
  using t = tempEnv();
  assert.equal(t.env.getOption("maxTables"), 64);
  t.env.setOption("txnDpLimit", 12345);
  assert.equal(t.env.getOption("txnDpLimit"), 12345);
  t.env.setOption("syncBytes", 65536);
  assert.equal(t.env.getOption("syncBytes"), 65536);
});

test("setOption with an unknown name is a TypeError, and libmdbx's refusal an MdbxError", () => {
  using t = tempEnv();
  assert.throws(() => t.env.setOption("bogus" as never, 1), TypeError);
  // maxTables cannot be changed while the environment is open
  assert.throws(() => t.env.setOption("maxTables", 10), MdbxError);
});

test("open passes extra libmdbx options and rejects unknown ones", () => {
  const dir = tempDir();
  try {
    const env = open(path.join(dir, "db"), { sync: "nosync", options: { txnDpLimit: 4321 }, maxReaders: 200 });
    assert.equal(env.getOption("txnDpLimit"), 4321);
    assert.ok(env.info().maxReaders >= 200);
    env.close();
    assert.throws(() => open(path.join(dir, "db"), { options: { bogus: 1 } as never }), TypeError);
    open(path.join(dir, "db")).close(); // the failed open released the path
  } finally {
    removeDir(dir);
  }
});

test("maxKeySize and maxValueSize follow the page size and the table flags", () => {
  using t = tempEnv();
  assert.equal(t.env.maxKeySize(), 2022);
  const dupsortKey = t.env.maxKeySize(0x04);
  assert.ok(dupsortKey > 0 && dupsortKey < 2022);
  assert.ok(t.env.maxValueSize() > 1e9, "plain values may be huge (large pages)");
  assert.ok(t.env.maxValueSize(0x04) <= 2022, "dupsort values are limited like keys");
});

test("warmup pre-faults the map without changing the data", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  t.env.warmup();
  t.env.warmup({ force: true });
  t.env.warmup({ force: true, timeoutSeconds: 1 });
  assert.equal(t.env.read((txn) => txn.get(tbl, "k")), "v");
});

test("copy writes a compact copy that opens with the same data", () => {
  using t = tempEnv();
  const tbl = t.env.table("objects", { keys: "uint32", values: "string" });
  t.env.write((txn) => {
    for (let i = 0; i < 2000; i++) txn.put(tbl, i, `value ${i}`.repeat(5));
  });
  t.env.write((txn) => {
    for (let i = 0; i < 2000; i += 2) txn.del(tbl, i);
  });
  const dest = path.join(t.dir, "copy.mdbx");
  t.env.copy(dest);
  const plain = path.join(t.dir, "plain.mdbx");
  t.env.copy(plain, { compact: false });
  assert.ok(fs.statSync(dest).size <= fs.statSync(plain).size, "the compact copy is not larger");
  using copy = open(dest, { noSubdir: true, readOnly: true });
  const ct = copy.table("objects", { keys: "uint32", values: "string" });
  const want = t.env.read((txn) => [...txn.range(tbl)]);
  assert.equal(want.length, 1000);
  assert.deepEqual(copy.read((txn) => [...txn.range(ct)]), want);
});

test("copy refuses an existing destination unless overwrite is given", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "k", "1"));
  const dest = path.join(t.dir, "copy.mdbx");
  t.env.copy(dest);
  t.env.write((txn) => txn.put(tbl, "k", "2"));
  throwsMdbx(() => t.env.copy(dest), "MDBX_EEXIST");
  t.env.copy(dest, { overwrite: true, dynamicSize: true });
  using copy = open(dest, { noSubdir: true, readOnly: true });
  assert.equal(copy.read((txn) => txn.get(copy.table("t", { keys: "string", values: "string" }), "k")), "2");
});

test("sync flushes lazily committed data and reports false when nothing was left to flush", () => {
  using t = tempEnv({ sync: "lazy" });
  const tbl = t.env.table("t");
  t.env.sync();
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  assert.ok(t.env.info().unsyncedBytes > 0);
  assert.equal(t.env.sync(), true);
  assert.equal(t.env.info().unsyncedBytes, 0);
  assert.equal(t.env.sync(), false);
  assert.equal(t.env.sync(false), false);
});

test("deleteDatabase removes a closed database and returns false when there is nothing to delete", () => {
  using t = tempEnv();
  t.env.close();
  assert.equal(deleteDatabase(t.path), true);
  assert.equal(fs.existsSync(path.join(t.path, "mdbx.dat")), false);
  assert.equal(deleteDatabase(t.path), false);
  assert.equal(deleteDatabase(path.join(t.dir, "never")), false);
});

test("deleteDatabase refuses to delete a database that is open (ensureUnused)", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  assert.throws(() => deleteDatabase(t.path), MdbxError);
  assert.ok(fs.existsSync(path.join(t.path, "mdbx.dat")));
  assert.equal(t.env.read((txn) => txn.get(tbl, "k")), "v");
});

// -------------------------------------------------------- slow readers ---

test("onLaggardReader can be set, replaced and cleared", () => {
  using t = tempEnv();
  t.env.onLaggardReader(() => -1);
  t.env.onLaggardReader(() => 0);
  t.env.onLaggardReader(null);
  t.env.onLaggardReader(null);
  const tbl = t.env.table("t");
  t.env.write((txn) => txn.put(tbl, "k", "v"));
});

/** A small map, filled by rewriting 20 values of 3000 bytes per commit while `reader` pins the first snapshot. */
function fillPinned(options: { upper: string }) {
  const t = tempEnv({ geometry: { lower: "256KiB", now: "256KiB", upper: options.upper, growth: "64KiB" } });
  const tbl = t.env.table("t", { keys: "uint32" });
  t.env.write((txn) => {
    for (let j = 0; j < 20; j++) txn.put(tbl, j, new Uint8Array(3000));
  });
  const rewrite = (i: number) =>
    t.env.write((txn) => {
      // a new value each round: rewriting identical bytes would not touch a page
      for (let j = 0; j < 20; j++) txn.put(tbl, j, new Uint8Array(3000).fill(i));
    });
  return { t, tbl, rewrite };
}

test("a writer blocked by an old reader asks onLaggardReader, and -1 makes it fail with MDBX_MAP_FULL", () => {
  const { t, tbl, rewrite } = fillPinned({ upper: "1MiB" });
  using _t = t;
  const calls: { pid: number; laggard: number; gap: number; space: number; retry: number }[] = [];
  t.env.onLaggardReader((r) => {
    calls.push(r);
    return -1;
  });
  const reader = t.env.beginRead();
  const pinned = reader.id;
  let i = 1;
  const e = throwsMdbx(
    () => {
      for (; i < 200; i++) rewrite(i);
    },
    "MDBX_MAP_FULL",
    /larger geometry upper bound/,
  );
  assert.ok(i < 200 && i > 1, `the map filled after ${i} commits`);
  assert.ok(calls.length >= 1, "the handler was asked");
  assert.equal(calls[0].pid, process.pid);
  assert.equal(calls[0].laggard, pinned);
  assert.ok(calls[0].space > 0);
  assert.equal(calls[0].retry, 0);
  assert.equal(e.code, ErrorCode.MAP_FULL);
  // the pinned reader still sees its snapshot; once it ends, writes go on
  assert.deepEqual(reader.get(tbl, 0), new Uint8Array(3000));
  reader.end();
  rewrite(1000);
  assert.deepEqual(t.env.read((txn) => txn.get(tbl, 0)), new Uint8Array(3000).fill(1000 & 0xff));
});

test("an onLaggardReader handler that ends the reader and returns 1 lets the writer go on", () => {
  const { t, rewrite } = fillPinned({ upper: "1MiB" });
  using _t = t;
  const reader = t.env.beginRead();
  let calls = 0;
  t.env.onLaggardReader(() => {
    calls++;
    reader.end();
    return 1;
  });
  for (let i = 1; i < 40; i++) rewrite(i);
  assert.equal(calls, 1);
  assert.equal(reader.isOpen, false);
});

test("a handler that throws counts as -1 (MDBX_MAP_FULL), and a cleared handler is no longer called", () => {
  const { t, rewrite } = fillPinned({ upper: "1MiB" });
  using _t = t;
  let calls = 0;
  t.env.onLaggardReader(() => {
    calls++;
    throw new Error("boom");
  });
  const reader = t.env.beginRead();
  throwsMdbx(() => {
    for (let i = 1; i < 200; i++) rewrite(i);
  }, "MDBX_MAP_FULL");
  assert.ok(calls >= 1);
  const seen = calls;
  t.env.onLaggardReader(null);
  throwsMdbx(() => rewrite(500), "MDBX_MAP_FULL");
  assert.equal(calls, seen);
  reader.end();
  rewrite(501);
});

// ------------------------------------------------------ check and defrag ---

test("check finds no problem in a healthy database and counts what it walked", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "uint32" });
  t.env.write((txn) => {
    for (let i = 0; i < 3000; i++) txn.put(tbl, i, new Uint8Array(i % 7 === 0 ? 5000 : 50));
  });
  const r = t.env.check();
  assert.equal(r.ok, true, r.issues.join("\n"));
  assert.equal(r.problems, 0);
  assert.deepEqual(r.issues, []);
  assert.ok(r.tables >= 1);
  assert.ok(r.processedPages > 0);
  assert.ok(r.allocatedPages >= r.processedPages);
  assert.ok(r.payloadBytes > 3000 * 50);
  const quick = t.env.check({ skipKeys: true });
  assert.equal(quick.ok, true);
});

test("defrag keeps every entry and refuses to run while this process has a write transaction open", () => {
  using t = tempEnv({ geometry: { upper: "64MiB" } });
  const tbl = t.env.table("t", { keys: "uint32", values: "uint32" });
  t.env.write((txn) => {
    for (let i = 0; i < 20000; i++) txn.put(tbl, i, i);
  });
  t.env.write((txn) => {
    for (let i = 0; i < 20000; i += 3) txn.del(tbl, i);
  });
  const w = t.env.beginWrite();
  throwsMdbx(() => t.env.defrag(), "MDBX_TXN_OVERLAPPING", /write lock/);
  w.abort();
  const r = t.env.defrag({ timeLimitSeconds: 10 });
  assert.equal(typeof r.complete, "boolean");
  assert.ok(r.pagesMoved >= 0);
  const keys = t.env.read((txn) => [...txn.keys(tbl)]);
  assert.equal(keys.length, 20000 - Math.ceil(20000 / 3));
  assert.ok(keys.every((k) => k % 3 !== 0));
  assert.equal(t.env.check().ok, true);
});

test("deleteDatabase justDelete removes a closed database's files", () => {
  using t = tempEnv();
  t.env.close();
  assert.equal(deleteDatabase(t.path, { mode: "justDelete" }), true);
  assert.equal(fs.existsSync(path.join(t.path, "mdbx.dat")), false);
  assert.equal(deleteDatabase(t.path, { mode: "waitForUnused" }), false);
});

test("deleteDatabase with an unknown mode is a TypeError and deletes nothing", () => {
  using t = tempEnv();
  t.env.close();
  assert.throws(() => deleteDatabase(t.path, { mode: "quickly" as never }), /mode must be "justDelete"/);
  assert.ok(fs.existsSync(path.join(t.path, "mdbx.dat")));
});

test("open returns an Env with a native handle", () => {
  using t = tempEnv();
  assert.ok(t.env instanceof Env);
  assert.ok(t.env.unsafeHandle !== null && t.env.unsafeHandle !== undefined);
});

test("the exported flag constants mirror mdbx.h", () => {
  assert.equal(EnvFlags.NOSUBDIR, 0x4000);
  assert.equal(EnvFlags.RDONLY, 0x20000);
  assert.equal(EnvFlags.WRITEMAP, 0x80000);
  assert.equal(EnvFlags.NOSTICKYTHREADS, 0x200000);
  assert.equal(EnvFlags.UTTERLY_NOSYNC, 0x110000);
  assert.equal(DbFlags.REVERSEKEY, 0x02);
  assert.equal(DbFlags.DUPSORT, 0x04);
  assert.equal(DbFlags.INTEGERKEY, 0x08);
  assert.equal(DbFlags.DUPFIXED, 0x10);
  assert.equal(DbFlags.INTEGERDUP, 0x20);
  assert.equal(DbFlags.CREATE, 0x40000);
  assert.equal(PutFlags.NOOVERWRITE, 0x10);
  assert.equal(PutFlags.NODUPDATA, 0x20);
  assert.equal(PutFlags.CURRENT, 0x40);
  assert.equal(PutFlags.ALLDUPS, 0x80);
  assert.equal(PutFlags.RESERVE, 0x10000);
  assert.equal(PutFlags.APPEND, 0x20000);
  assert.equal(PutFlags.APPENDDUP, 0x40000);
});

test("opening an open database under another spelling of its path fails and names that possibility", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  fs.symlinkSync(t.path, path.join(t.dir, "link"));
  for (const other of [path.join(t.dir, "link"), `${t.dir}/./db`, t.path + "/."]) {
    assert.throws(
      () => open(other),
      (e: unknown) => e instanceof MdbxError && /already has it open under another spelling/.test(e.message),
      other,
    );
  }
  // the first Env is unaffected
  assert.equal(t.env.read((txn) => txn.get(tbl, "k")), "v");
});

// ------------------------------------------------------------ collection ---

test("an Env that becomes unreachable stays open while its transactions live, then is closed by GC", () => {
  using t = tempEnv();
  t.env.close();
  // a child of this runtime with a callable gc(): Deno needs --expose-gc, Bun has Bun.gc
  const script = path.join(t.dir, "gc-child.ts");
  fs.writeFileSync(
    script,
    `import { open } from ${JSON.stringify(modUrl)};
const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(force: boolean): void } };
const gc = () => (g.gc ? g.gc() : g.Bun!.gc(true));
const tick = () => new Promise((r) => setTimeout(r, 10));
const p = ${JSON.stringify(t.path)};
const S = { keys: "string", values: "string" } as const;
function orphan() {
  const env = open(p);
  const tbl = env.table("t", S);
  env.write((x) => x.put(tbl, "k", "v"));
  return { txn: env.beginRead(), tbl }; // the Env itself is dropped here
}
async function readAfterDrop() {
  const { txn, tbl } = orphan();
  for (let i = 0; i < 5; i++) { gc(); await tick(); }
  console.log("READ " + txn.get(tbl, "k"));
  txn.end(); // now nothing holds the Env: neither this reader nor the table handle (dropped on return)
}
await readAfterDrop();
async function reopens(label: string) {
  for (let i = 0; i < 500; i++) {
    gc();
    await tick();
    try {
      open(p).close();
      console.log(label);
      return;
    } catch { /* not collected yet */ }
  }
}
await reopens("REOPENED");
function forgotten() {
  const env = open(p);
  env.beginRead(); // neither the Env nor this reader is ever ended
}
forgotten();
await reopens("REOPENED AGAIN");
`,
  );
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const args = isDeno ? ["run", "-A", "--v8-flags=--expose-gc", script] : [script];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `the child crashed or failed (signal ${r.signal}): ${r.stderr}`);
  assert.match(r.stdout, /READ v/, "a reader of a dropped Env still reads");
  assert.match(r.stdout, /REOPENED\n/, "a collected Env releases its path");
  assert.match(r.stdout, /REOPENED AGAIN/, "so does one collected with a reader never ended");
});
