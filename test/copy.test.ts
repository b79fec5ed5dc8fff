/**
 * Copies and rebuilds keep what the database had: the permission bits of its
 * data file (exactly, whatever the umask; libmdbx alone creates copies 0660
 * less the umask), and a compacting copy is never larger than its source
 * (patch 0004: stock libmdbx rounds a copy up by a whole growth step, so a
 * small database got a "compacted" copy several times its size). Every copy
 * passes env.check(), the stock mdbx_chk, and reopens with all its data.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { type Env, open } from "../mod.ts";
import { assertStockChk, tempEnv } from "./helpers.ts";

const posix = process.platform !== "win32";
const modeOf = (file: string) => fs.statSync(file).mode & 0o777;
const dataFile = (dbPath: string) => path.join(dbPath, "mdbx.dat");

function fill(env: Env, n: number, from = 0): void {
  const t = env.table("objects", { keys: "uint32", values: "string" });
  env.write((txn) => {
    for (let i = from; i < from + n; i++) txn.put(t, i, `object ${i} `.repeat(3));
  });
}

/** Opens a copy (a no-subdir file), asserts it is sound and holds exactly keys [0, n) minus `gone`. */
function assertCopy(file: string, n: number, gone: (i: number) => boolean = () => false): void {
  assertStockChk(file);
  using copy = open(file, { noSubdir: true, readOnly: true });
  const c = copy.check();
  assert.ok(c.ok, `env.check() of the copy: ${c.issues.join("; ")}`);
  const t = copy.table("objects", { keys: "uint32", values: "string" });
  copy.read((txn) => {
    let count = 0;
    for (const { key: k, value: v } of txn.range(t)) {
      assert.ok(!gone(k), `key ${k} was deleted but is in the copy`);
      assert.equal(v, `object ${k} `.repeat(3));
      count++;
    }
    let want = 0;
    for (let i = 0; i < n; i++) if (!gone(i)) want++;
    assert.equal(count, want);
  });
}

test("copy and copyTo keep the data file's permission bits (0664, 0600) whatever the umask", () => {
  using t = tempEnv();
  fill(t.env, 50);
  for (const mode of [0o664, 0o600]) {
    fs.chmodSync(dataFile(t.path), mode); // chmod is not masked: the source has exactly these bits
    const dest = path.join(t.dir, `copy-${mode.toString(8)}`);
    t.env.copy(dest);
    assert.equal(modeOf(dest), mode, `env.copy() of a ${mode.toString(8)} database`);
    const asis = path.join(t.dir, `asis-${mode.toString(8)}`);
    t.env.copy(asis, { compact: false });
    assert.equal(modeOf(asis), mode, `env.copy({ compact: false }) of a ${mode.toString(8)} database`);
    const snap = path.join(t.dir, `snap-${mode.toString(8)}`);
    t.env.read((txn) => txn.copyTo(snap, { compact: true }));
    assert.equal(modeOf(snap), mode, `txn.copyTo() of a ${mode.toString(8)} database`);
    assertCopy(dest, 50);
  }
}, { ignore: !posix });

test("copy: an explicit mode is set exactly; overwrite keeps working; an existing file without it is refused", () => {
  using t = tempEnv();
  fill(t.env, 10);
  const dest = path.join(t.dir, "copy");
  t.env.copy(dest, { mode: 0o640 });
  assert.equal(modeOf(dest), 0o640);
  assert.throws(
    () => t.env.copy(dest),
    (e: Error) => /EEXIST|exists/i.test(`${(e as { codeName?: string }).codeName} ${e.message}`),
  );
  assert.equal(modeOf(dest), 0o640, "a refused copy leaves the existing file alone");
  t.env.copy(dest, { overwrite: true, mode: 0o604 });
  assert.equal(modeOf(dest), 0o604);
  assertCopy(dest, 10);
  assert.throws(() => t.env.copy(path.join(t.dir, "x"), { mode: 0o1777 }), RangeError);
  assert.throws(() => t.env.copy(path.join(t.dir, "x"), { mode: -1 }), RangeError);
  assert.equal(fs.existsSync(path.join(t.dir, "x")), false);
}, { ignore: !posix });

test("rebuild keeps the data file's permission bits (0664, 0600)", async () => {
  using t = tempEnv();
  fill(t.env, 200);
  for (const mode of [0o664, 0o600]) {
    fs.chmodSync(dataFile(t.path), mode);
    await t.env.rebuild();
    assert.equal(modeOf(dataFile(t.path)), mode, `the rebuilt file of a ${mode.toString(8)} database`);
  }
  fill(t.env, 10, 200); // still writable after the switch
  assert.ok(t.env.check().ok);
}, { ignore: !posix });

test("a compacting copy of a small database is no larger than the database, and sound", () => {
  using t = tempEnv();
  fill(t.env, 100);
  const before = fs.statSync(dataFile(t.path)).size;
  const dest = path.join(t.dir, "small-copy");
  t.env.copy(dest);
  const size = fs.statSync(dest).size;
  assert.ok(size <= before, `the compacted copy is ${size} bytes, its source ${before}`);
  assert.ok(size <= t.env.info().lastPgno * t.env.info().pageSize + 64 * 1024, "no growth step was added");
  assertCopy(dest, 100);
  // the copy is an ordinary database: writable, it grows by the source's growth step
  using w = open(dest, { noSubdir: true, sync: "lazy" });
  assert.equal(w.info().geometry.grow, t.env.info().geometry.grow);
  fill(w, 2000, 100);
  assert.ok(w.check().ok);
});

test("a compacting copy of a medium database with deletions is no larger than the database, and sound", () => {
  using t = tempEnv();
  const n = 20_000;
  fill(t.env, n);
  const objects = t.env.table("objects", { keys: "uint32", values: "string" });
  const gone = (i: number) => i % 3 !== 0;
  t.env.write((txn) => {
    for (let i = 0; i < n; i++) if (gone(i)) txn.del(objects, i);
  });
  const before = fs.statSync(dataFile(t.path)).size;
  const dest = path.join(t.dir, "medium-copy");
  t.env.copy(dest);
  const size = fs.statSync(dest).size;
  assert.ok(size <= before, `the compacted copy is ${size} bytes, its source ${before}`);
  assertCopy(dest, n, gone);
});

test("rebuild of a small database does not grow its file", async () => {
  using t = tempEnv();
  fill(t.env, 100);
  const before = fs.statSync(dataFile(t.path)).size;
  await t.env.rebuild();
  const after = fs.statSync(dataFile(t.path)).size;
  assert.ok(after <= before, `rebuilt: ${after} bytes, before: ${before}`);
  assert.ok(t.env.check().ok);
  t.env.close();
  assertStockChk(t.path);
});
