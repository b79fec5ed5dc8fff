/**
 * Format compatibility with stock libmdbx 0.14.3, both ways: databases that
 * turbomdbx's patched library writes pass the stock `mdbx_chk` and read back
 * exactly through the stock library (`mdbx_stock_write --verify`), and a
 * database the stock library wrote opens and reads correctly in turbomdbx.
 *
 * The reference content below mirrors native/tools/stock_write.c.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { type Env, open, type WriteTxn } from "../mod.ts";
import { removeDir, tempDir } from "./helpers.ts";

/** A native tool built by `zig build` into zig-out/bin. */
function tool(name: string): string {
  const exe = process.platform === "win32" ? `${name}.exe` : name;
  return fileURLToPath(new URL(`../zig-out/bin/${exe}`, import.meta.url));
}

/** Runs a native tool; returns its exit status and its whole output. */
function run(name: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(tool(name), args, { encoding: "utf8" });
  if (r.error) throw new Error(`${name} could not run (build it with ./run build): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Asserts that stock mdbx_chk finds no problem: full B-tree traversal, GC and every table. */
function assertChkClean(db: string): void {
  const r = run("mdbx_chk", ["-v", db]);
  assert.equal(r.status, 0, `mdbx_chk exited with ${r.status}:\n${r.output}`);
  assert.match(r.output, /No error is detected/, r.output);
  assert.doesNotMatch(r.output, /problem|error\(s\)/i, r.output);
}

// --- the reference content (same as native/tools/stock_write.c) ---

const N_STRINGS = 10000, N_GROUPS = 200, N_INTS = 5000, N_U32 = 100, N_BLOBS = 20;
const pad = (n: number, w: number) => String(n).padStart(w, "0");
const dupCount = (g: number) => (g % 10 === 9 ? 600 : (g % 7) + 1);
function blob(b: number): Uint8Array {
  const v = new Uint8Array(3000 + 1000 * b);
  for (let i = 0; i < v.length; i++) v[i] = (i * 31 + b) & 255;
  return v;
}

function* stringEntries(): Generator<[string, string]> {
  for (let i = 0; i < N_STRINGS; i++) yield [`key-${pad(i, 5)}`, `value-${pad(i, 5)}`];
}
function* dupEntries(): Generator<[string, string]> {
  for (let g = 0; g < N_GROUPS; g++) {
    for (let j = 0; j < dupCount(g); j++) yield [`group-${pad(g, 3)}`, `member-${pad(j, 5)}`];
  }
}
function* intEntries(): Generator<[number, number]> {
  for (let i = 0; i < N_INTS; i++) yield [i * 1000003, i * i];
}
function* u32Entries(): Generator<[number, number]> {
  for (let k = 0; k < N_U32; k++) for (let j = 0; j <= k % 13; j++) yield [k, k * 1000 + j];
}
function* blobEntries(): Generator<[string, Uint8Array]> {
  for (let b = 0; b < N_BLOBS; b++) yield [`blob-${pad(b, 2)}`, blob(b)];
}

function tables(env: Env) {
  return {
    strings: env.table("strings", { keys: "string", values: "string" }),
    dups: env.table("dups", { keys: "string", values: "string", dupSort: true }),
    ints: env.table("ints", { keys: "uint64", values: "uint64" }),
    u32dups: env.table("u32dups", { keys: "uint32", values: "uint32", dupSort: true }),
    blobs: env.table("blobs", { keys: "string", values: "binary" }),
  };
}

/** Checks every table of `env` against the reference content: full scans both ways, and point reads. */
function assertReference(env: Env): void {
  const t = tables(env);
  env.read((txn) => {
    assert.deepEqual(txn.tables().map((e) => e.name).sort(), ["blobs", "dups", "ints", "strings", "u32dups"]);
    const scan = <T>(it: Iterable<{ key: unknown; value: T }>) => [...it].map((e) => [e.key, e.value]);

    const strings = [...stringEntries()];
    assert.deepEqual(scan(txn.range(t.strings)), strings);
    assert.deepEqual(scan(txn.range(t.strings, { reverse: true })), strings.toReversed());
    for (const [k, v] of strings) assert.equal(txn.get(t.strings, k), v);
    assert.equal(txn.get(t.strings, "tmp-00000"), undefined, "the stock writer deleted its churn keys");
    assert.equal(txn.stat(t.strings).entries, N_STRINGS);

    const dups = [...dupEntries()];
    assert.deepEqual(scan(txn.range(t.dups)), dups);
    assert.deepEqual(scan(txn.range(t.dups, { reverse: true })), dups.toReversed());
    for (let g = 0; g < N_GROUPS; g++) {
      const key = `group-${pad(g, 3)}`;
      assert.deepEqual(txn.getWithCount(t.dups, key), { value: "member-00000", count: dupCount(g) });
      assert.equal([...txn.dups(t.dups, key)].length, dupCount(g));
    }
    assert.equal(txn.count(t.dups, { uniqueKeys: true }), N_GROUPS);

    const ints = [...intEntries()];
    assert.deepEqual(scan(txn.range(t.ints)), ints);
    for (const [k, v] of ints) assert.equal(txn.get(t.ints, k), v);
    assert.equal(txn.get(t.ints, 1), undefined);

    const u32 = [...u32Entries()];
    assert.deepEqual(scan(txn.range(t.u32dups)), u32);
    assert.deepEqual(scan(txn.range(t.u32dups, { reverse: true })), u32.toReversed());
    assert.deepEqual([...txn.dups(t.u32dups, 25)], [
      25000,
      25001,
      25002,
      25003,
      25004,
      25005,
      25006,
      25007,
      25008,
      25009,
      25010,
      25011,
      25012,
    ]);

    const blobs = [...blobEntries()];
    assert.deepEqual(scan(txn.range(t.blobs)), blobs);
    for (const [k, v] of blobs) assert.deepEqual(txn.get(t.blobs, k), v);
    assert.ok(txn.stat(t.blobs).largePages > 0, "blob values live on large (overflow) pages");
  });
}

/** Writes the reference content with turbomdbx, with churn: many deletes, rewrites and an aborted nested txn. */
function writeReference(env: Env, nested = true): void {
  const t = tables(env);
  const fill = (txn: WriteTxn) => {
    for (const [k, v] of stringEntries()) txn.put(t.strings, k, v);
    for (const [k, v] of dupEntries()) txn.put(t.dups, k, v);
    for (const [k, v] of intEntries()) txn.put(t.ints, k, v);
    for (const [k, v] of u32Entries()) txn.put(t.u32dups, k, v);
    for (const [k, v] of blobEntries()) txn.put(t.blobs, k, v);
  };
  // Churn first: fill, add garbage, delete most of it over several commits.
  env.write((txn) => {
    fill(txn);
    for (let i = 0; i < 20000; i++) txn.put(t.strings, `tmp-${pad(i, 5)}`, `temporary ${"x".repeat(i % 200)}`);
    for (let g = 0; g < N_GROUPS; g++) for (let j = 0; j < 30; j++) txn.put(t.dups, `group-${pad(g, 3)}`, `zz-${j}`);
    for (let b = 0; b < N_BLOBS; b++) txn.put(t.blobs, `old-blob-${b}`, blob(N_BLOBS - b));
  });
  for (let round = 0; round < 4; round++) {
    env.write((txn) => {
      for (let i = round; i < 20000; i += 4) txn.del(t.strings, `tmp-${pad(i, 5)}`);
      for (let i = round; i < N_INTS; i += 4) txn.del(t.ints, i * 1000003);
      for (let g = 0; g < N_GROUPS; g++) {
        for (let j = round; j < 30; j += 4) txn.del(t.dups, `group-${pad(g, 3)}`, `zz-${j}`);
      }
      for (let b = round; b < N_BLOBS; b += 4) {
        txn.del(t.blobs, `old-blob-${b}`);
        txn.put(t.blobs, `blob-${pad(b, 2)}`, blob(b + 7)); // rewritten: new large pages, old ones freed
      }
    });
    env.write((txn) => {
      if (nested) {
        const child = txn.begin();
        child.clear(t.strings);
        child.abort(); // discarded: must leave no trace
      }
      for (let i = round; i < N_INTS; i += 4) txn.put(t.ints, i * 1000003, i * i);
    });
  }
  env.write((txn) => {
    for (const [k, v] of blobEntries()) txn.put(t.blobs, k, v);
    for (let k = 0; k < N_U32; k += 3) txn.del(t.u32dups, k);
    for (const [k, v] of u32Entries()) if (k % 3 === 0) txn.put(t.u32dups, k, v);
  });
  assertReference(env);
}

test("a database written by turbomdbx (tables, dupsort, integer keys, large values, many deletes) passes stock mdbx_chk", () => {
  const dir = tempDir("turbomdbx-compat-");
  try {
    const db = path.join(dir, "db");
    const env = open(db);
    try {
      writeReference(env);
    } finally {
      env.close();
    }
    assertChkClean(db);
  } finally {
    removeDir(dir);
  }
});

test("the stock library reads a database written by turbomdbx exactly (mdbx_stock_write --verify)", () => {
  const dir = tempDir("turbomdbx-compat-");
  try {
    const db = path.join(dir, "db");
    // writeMap writes pages in place: the other code path of the patched library (no nested txns there).
    const env = open(db, { writeMap: true });
    try {
      writeReference(env, false);
    } finally {
      env.close();
    }
    const r = run("mdbx_stock_write", ["--verify", db]);
    assert.equal(r.status, 0, `stock verify failed:\n${r.output}`);
    assertChkClean(db);
  } finally {
    removeDir(dir);
  }
});

test("a database written by stock libmdbx opens read-only in turbomdbx and reads back exactly", () => {
  const dir = tempDir("turbomdbx-compat-");
  try {
    const db = path.join(dir, "db");
    const w = run("mdbx_stock_write", [db]);
    assert.equal(w.status, 0, `stock writer failed:\n${w.output}`);
    const env = open(db, { readOnly: true });
    try {
      assertReference(env);
    } finally {
      env.close();
    }
  } finally {
    removeDir(dir);
  }
});

test("turbomdbx writes into a stock-written database leave it valid and readable for the stock library", () => {
  const dir = tempDir("turbomdbx-compat-");
  try {
    const db = path.join(dir, "db");
    const w = run("mdbx_stock_write", [db]);
    assert.equal(w.status, 0, `stock writer failed:\n${w.output}`);
    const env = open(db);
    try {
      const t = tables(env);
      // Change everything, then put it back: the content ends equal to the reference.
      env.write((txn) => {
        for (let i = 0; i < N_STRINGS; i += 2) txn.put(t.strings, `key-${pad(i, 5)}`, "changed");
        for (let i = 0; i < N_INTS; i += 3) txn.del(t.ints, i * 1000003);
        txn.del(t.dups, "group-009");
        txn.put(t.blobs, "blob-05", blob(40));
      });
      env.write((txn) => {
        for (let i = 0; i < N_STRINGS; i += 2) txn.put(t.strings, `key-${pad(i, 5)}`, `value-${pad(i, 5)}`);
        for (let i = 0; i < N_INTS; i += 3) txn.put(t.ints, i * 1000003, i * i);
        for (let j = 0; j < dupCount(9); j++) txn.put(t.dups, "group-009", `member-${pad(j, 5)}`);
        txn.put(t.blobs, "blob-05", blob(5));
      });
      assertReference(env);
    } finally {
      env.close();
    }
    assertChkClean(db);
    const r = run("mdbx_stock_write", ["--verify", db]);
    assert.equal(r.status, 0, `stock verify failed:\n${r.output}`);
  } finally {
    removeDir(dir);
  }
});

test("stock mdbx_chk reports a damaged database (the referee can fail)", () => {
  const dir = tempDir("turbomdbx-compat-");
  try {
    const db = path.join(dir, "db");
    assert.equal(run("mdbx_stock_write", [db]).status, 0);
    assertChkClean(db);
    // Overwrite 64 KiB in the middle of the data file (in use: the file is ~93% full) with garbage.
    const file = path.join(db, "mdbx.dat");
    const data = fs.readFileSync(file);
    const at = Math.floor(data.length / 2 / 65536) * 65536;
    for (let i = 0; i < 65536; i++) data[at + i] = (i * 7 + 13) & 255;
    fs.writeFileSync(file, data);
    const r = run("mdbx_chk", ["-v", db]);
    assert.notEqual(r.status, 0, `mdbx_chk should fail on a damaged file:\n${r.output}`);
  } finally {
    removeDir(dir);
  }
});
