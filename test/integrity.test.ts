/**
 * A data file shorter than what its meta pages record is refused before
 * libmdbx touches it (native/integrity.c): a database cut to 8 KiB or 0 bytes
 * used to open as a valid empty database (libmdbx took the short read of a
 * meta page for "new file" and wrote fresh meta pages over it), and one cut
 * in half failed with a bare MDBX_CORRUPTED. `recovery: true` opens such
 * files as docs/api.md describes. Real files, real truncations.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { MdbxError, open } from "../mod.ts";
import { removeDir, tempDir, throwsMdbx } from "./helpers.ts";

const N = 20_000;
const value = (i: number) => `value of record ${i}`;

/** Writes N records into a database at `p` and closes it; returns its data file. */
function populate(p: string, noSubdir = false): string {
  using env = open(p, { sync: "lazy", noSubdir });
  const t = env.table("records", { keys: "uint32", values: "string" });
  env.write((txn) => {
    for (let i = 0; i < N; i++) txn.put(t, i, value(i));
  });
  return noSubdir ? p : path.join(p, "mdbx.dat");
}

const stamp = (f: string) => {
  const s = fs.statSync(f);
  return { size: s.size, mtimeMs: s.mtimeMs, head: fs.readFileSync(f).subarray(0, 4096).toString("hex") };
};

test("a database cut to 8 KiB, to 0 bytes or to half is refused with MDBX_CORRUPTED, and nothing is written", () => {
  const dir = tempDir();
  try {
    for (const noSubdir of [false, true]) {
      for (const cut of [8192, 0, "half"] as const) {
        const p = path.join(dir, `db-${noSubdir ? "file" : "dir"}-${cut}`);
        const file = populate(p, noSubdir);
        const full = fs.statSync(file).size;
        const size = cut === "half" ? Math.floor(full / 2 / 4096) * 4096 : cut;
        fs.truncateSync(file, size);
        const before = stamp(file);
        for (const readOnly of [false, true]) {
          const e = throwsMdbx(() => open(p, { noSubdir, readOnly }), "MDBX_CORRUPTED");
          assert.ok(e.message.includes(file), `names the data file: ${e.message}`);
          assert.match(e.message, /recovery: true/);
          assert.match(e.message, /Nothing was written/);
          if (cut === "half") {
            assert.match(e.message, new RegExp(`is ${size / 1024} KiB, but its newest meta page`));
            assert.match(e.message, /records \d+ KiB in use/);
          } else if (cut === 0) assert.match(e.message, /empty \(0 bytes\)/);
          else assert.match(e.message, /is 8 KiB, shorter than its three meta pages \(12 KiB\)/);
        }
        assert.deepEqual(stamp(file), before, "the refused opens left the file as it was");
      }
    }
  } finally {
    removeDir(dir);
  }
});

test("a file that is not a database (or has no valid meta page) is refused with MDBX_INVALID and left alone", () => {
  const dir = tempDir();
  try {
    const text = path.join(dir, "notes.txt");
    fs.writeFileSync(text, "not a database\n".repeat(7));
    const garbage = path.join(dir, "garbage.bin");
    fs.writeFileSync(garbage, new Uint8Array(64 * 1024).fill(0x5a));
    for (const f of [text, garbage]) {
      const before = stamp(f);
      const e = throwsMdbx(() => open(f, { noSubdir: true }), "MDBX_INVALID", /no valid libmdbx meta page/);
      assert.ok(e.message.includes(f));
      assert.deepEqual(stamp(f), before);
    }
    // all three meta pages damaged
    const p = path.join(dir, "db");
    const file = populate(p);
    const fd = fs.openSync(file, "r+");
    for (let i = 0; i < 3; i++) fs.writeSync(fd, new Uint8Array(64).fill(0xff), 0, 64, i * 4096 + 16);
    fs.closeSync(fd);
    throwsMdbx(() => open(p), "MDBX_INVALID", /all three of its meta pages are damaged/);
  } finally {
    removeDir(dir);
  }
});

test("recovery: true on a file cut in half extends it with zeros: surviving records read back, lost ones throw MDBX_CORRUPTED", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    const file = populate(p);
    const full = fs.statSync(file).size;
    fs.truncateSync(file, Math.floor(full / 2 / 4096) * 4096);
    throwsMdbx(() => open(p, { recovery: true, readOnly: true }), "MDBX_CORRUPTED", /without readOnly/);
    using env = open(p, { recovery: true, sync: "lazy" });
    assert.ok(fs.statSync(file).size >= full / 2, "extended to its recorded size");
    const t = env.table("records", { keys: "uint32", values: "string", create: false });
    let read = 0, lost = 0;
    for (let i = 0; i < N; i += 500) {
      try {
        // one snapshot per read: libmdbx fails a transaction that met a damaged page
        const v = env.read((txn) => txn.get(t, i));
        if (v !== undefined) {
          assert.equal(v, value(i));
          read++;
        }
      } catch (e) {
        assert.ok(e instanceof MdbxError && e.codeName === "MDBX_CORRUPTED", String(e));
        lost++;
      }
    }
    assert.ok(read > 0, "records on the surviving pages read back");
    assert.ok(lost > 0, "records on the lost pages are reported, not invented");
  } finally {
    removeDir(dir);
  }
});

test("recovery: true on a file cut to 8 KiB or 0 bytes starts a new, empty database in it", () => {
  const dir = tempDir();
  try {
    for (const cut of [8192, 0]) {
      const p = path.join(dir, `db-${cut}`);
      const file = populate(p);
      fs.truncateSync(file, cut);
      using env = open(p, { recovery: true, sync: "lazy" });
      assert.deepEqual(env.tables(), []);
      const t = env.table("fresh", { keys: "uint32", values: "string" });
      env.write((txn) => txn.put(t, 1, "one"));
      assert.ok(env.check().ok);
    }
  } finally {
    removeDir(dir);
  }
});

test("a sound database, a brand-new one, and a new one beside a stale lock file open as before", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    populate(p);
    {
      using env = open(p, { readOnly: true });
      const t = env.table("records", { keys: "uint32", values: "string" });
      assert.equal(env.read((txn) => txn.get(t, N - 1)), value(N - 1));
    }
    // the data file removed, its lock file left behind
    fs.rmSync(path.join(p, "mdbx.dat"));
    assert.ok(fs.existsSync(path.join(p, "mdbx.lck")));
    {
      using env = open(p, { sync: "lazy" });
      assert.deepEqual(env.tables(), []);
    }
    for (const noSubdir of [false, true]) {
      using env = open(path.join(dir, `new-${noSubdir}`), { noSubdir, sync: "lazy" });
      const t = env.table("t", { keys: "uint32", values: "uint32" });
      env.write((txn) => txn.put(t, 1, 2));
      assert.ok(env.check().ok);
    }
  } finally {
    removeDir(dir);
  }
});
