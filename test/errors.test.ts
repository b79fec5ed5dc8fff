import { test } from "./shim.ts";
import assert from "node:assert/strict";
import * as path from "node:path";
import { deleteDatabase, ErrorCode, errorName, MdbxError, open } from "../mod.ts";
import { tempEnv, throwsMdbx } from "./helpers.ts";
import { errorAdvice } from "../src/errors.ts";

test("ErrorCode holds libmdbx's negative codes and positive errno values", () => {
  assert.equal(ErrorCode.SUCCESS, 0);
  assert.equal(ErrorCode.KEYEXIST, -30799);
  assert.equal(ErrorCode.NOTFOUND, -30798);
  assert.equal(ErrorCode.MAP_FULL, -30792);
  assert.equal(ErrorCode.DBS_FULL, -30791);
  assert.equal(ErrorCode.BAD_VALSIZE, -30781);
  assert.equal(ErrorCode.BUSY, -30778);
  assert.equal(ErrorCode.EKEYMISMATCH, -30418);
  assert.equal(ErrorCode.TXN_OVERLAPPING, -30415);
  assert.equal(ErrorCode.LAGGARD_READER, -30409);
  assert.equal(ErrorCode.ENOENT, 2);
  assert.equal(ErrorCode.EACCES, 13);
  // every libmdbx code is negative, every errno positive, and no two names share a code
  const values = Object.values(ErrorCode);
  assert.equal(new Set(values).size, values.length);
});

test("errorName names every ErrorCode MDBX_<key>", () => {
  for (const [k, v] of Object.entries(ErrorCode)) assert.equal(errorName(v), `MDBX_${k}`);
});

test("errorName names an unknown errno MDBX_E<n> and an unknown libmdbx code MDBX_<n>", () => {
  assert.equal(errorName(77), "MDBX_E77");
  assert.equal(errorName(-12345), "MDBX_-12345");
});

test("MdbxError carries code, codeName and a message prefixed by the name", () => {
  const e = new MdbxError(ErrorCode.NOTFOUND, "nothing here");
  assert.ok(e instanceof Error);
  assert.ok(e instanceof MdbxError);
  assert.equal(e.name, "MdbxError");
  assert.equal(e.code, -30798);
  assert.equal(e.codeName, "MDBX_NOTFOUND");
  assert.equal(e.message, "MDBX_NOTFOUND: nothing here");
});

test("a native failure becomes an MdbxError that says what was done, libmdbx's text and advice", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((txn) => txn.put(tbl, "k", "v"));
  const e = throwsMdbx(
    () => t.env.write((txn) => txn.put(tbl, "k", "w", { noOverwrite: true })),
    "MDBX_KEYEXIST",
  );
  assert.equal(e.code, ErrorCode.KEYEXIST);
  assert.match(e.message, /^MDBX_KEYEXIST: put in table "t"/);
  // libmdbx's own text, then turbomdbx's advice in parentheses
  assert.match(e.message, /\(the key \(or key\/value pair\) already exists; drop the noOverwrite/);
});

test("an errno failure is reported with a positive code and its MDBX_E name", () => {
  using t = tempEnv();
  const dest = t.dir + "/copy.mdbx";
  t.env.copy(dest);
  // copying over an existing file without overwrite fails with EEXIST
  const e = throwsMdbx(() => t.env.copy(dest), "MDBX_EEXIST", /copying to/);
  assert.equal(e.code, ErrorCode.EEXIST);
  assert.ok(e.code > 0);
});

// ----------------------------------------------- messages say what to do ---

test("reopening a table with other options names the flags in words, in this Env and from the file", () => {
  using t = tempEnv();
  const d = t.env.table("d", { keys: "uint32", dupSort: true });
  assert.throws(
    () => t.env.table("d", { keys: "uint32" }),
    (e) =>
      e instanceof TypeError &&
      e.message ===
        'table "d" is already open in this Env with integer keys ("uint32", "uint64" or "bigint"), dupSort; ' +
          'these options ask for integer keys ("uint32", "uint64" or "bigint"): pass the options it was opened ' +
          "with (or accede: true)",
  );
  t.env.write((x) => x.put(d, 1, "v"));
  t.env.close();
  using env = open(t.path, { sync: "lazy" });
  const e = throwsMdbx(() => env.table("d", { keys: "uint32", reverseDup: true, dupSort: true }), "MDBX_INCOMPATIBLE");
  assert.match(e.message, /opening table "d": it was created with integer keys .*, dupSort; these options ask for/);
  assert.match(e.message, /dupSort, reverseDup: open it with the options it was created with, or with accede: true/);
  assert.doesNotMatch(e.message, /\(\d+ vs \d+\)/);
});

test("values of the wrong type are described in words and the message names the table", () => {
  using t = tempEnv();
  const b = t.env.table("b");
  const u = t.env.table("u", { keys: "uint32", values: "uint32" });
  const cases: [() => unknown, RegExp][] = [
    [
      () => t.env.write((x) => x.put(b, {} as never, "v")),
      /^table "b": key must be a Uint8Array or a string, got an object$/,
    ],
    [() => t.env.write((x) => x.put(b, undefined as never, "v")), /got undefined$/],
    [() => t.env.write((x) => x.put(b, "k", null as never)), /^table "b": value must be .*, got null$/],
    [() => t.env.write((x) => x.put(b, "k", new Map() as never)), /got a Map$/],
    [() => t.env.write((x) => x.put(b, "k", new ArrayBuffer(1) as never)), /got an ArrayBuffer$/],
    [
      () => t.env.write((x) => x.put(u, 1.5, 1)),
      /^table "u": key must be an integer from 0 to 2\^32-1, got the number 1.5$/,
    ],
    [() => t.env.write((x) => x.put(u, 1, "7" as never)), /got the string "7"$/],
    [
      () => t.env.read((x) => x.get({ name: "b" } as never, "k")),
      /^expected a Table from env.table\(\), got an object$/,
    ],
    [() => t.env.setSync(1 as never), /got the number 1$/],
  ];
  for (const [call, message] of cases) {
    assert.throws(call, (e) => e instanceof TypeError && message.test(e.message), String(message));
  }
});

test("a readOnly open of a missing path says it cannot create it instead of advising create: true", () => {
  using t = tempEnv();
  const missing = path.join(t.dir, "missing");
  const e = throwsMdbx(
    () => open(missing, { readOnly: true }),
    "MDBX_ENOENT",
    /does not exist, and a readOnly open cannot create it/,
  );
  assert.doesNotMatch(e.message, /create: true/);
});

test("cursor writes in a read transaction say the transaction is read-only, not just EACCES", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((x) => x.put(tbl, "k", "v"));
  t.env.read((x) => {
    const cur = x.cursor(tbl);
    cur.first();
    const ro = /the cursor belongs to a read transaction, which cannot write; open the cursor in a write transaction/;
    throwsMdbx(
      () => cur.put("a", "b"),
      "MDBX_EACCES",
      new RegExp(`^MDBX_EACCES: cursor put in table "t": ${ro.source}`),
    );
    throwsMdbx(() => cur.del(), "MDBX_EACCES", new RegExp(`cursor delete in table "t": ${ro.source}`));
  });
  assert.deepEqual(t.env.read((x) => [...x.keys(tbl)]), ["k"]);
});

test("deleteDatabase of a database this process has open says to close its Env, not to retry", () => {
  using t = tempEnv();
  t.env.table("t");
  for (const mode of ["ensureUnused", "waitForUnused"] as const) {
    const e = throwsMdbx(
      () => deleteDatabase(t.path, { mode }),
      "MDBX_BUSY",
      /deleting .*: it is open in this process; close its Env \(env.close\(\)\) first, then delete it/,
    );
    assert.doesNotMatch(e.message, /retry/);
  }
  t.env.close();
  assert.equal(deleteDatabase(t.path), true);
});

test("the advice of MDBX_CORRUPTED, MDBX_PROBLEM and MDBX_PAGE_NOTFOUND points to checkDatabase, chk and a backup", () => {
  for (const code of [ErrorCode.CORRUPTED, ErrorCode.PROBLEM, ErrorCode.PAGE_NOTFOUND]) {
    const advice = errorAdvice(code) ?? "";
    assert.match(advice, /checkDatabase\(path\)/, errorName(code));
    assert.match(advice, /turbomdbx chk <db>/, errorName(code));
    assert.match(advice, /restore the database from a backup/, errorName(code));
    assert.doesNotMatch(advice, /env\.check\(\)/, errorName(code));
  }
});

test("numbers that go to the library as u32 are range-checked first: a RangeError naming the parameter", () => {
  using te = tempEnv();
  const { env } = te;
  const t = env.table("t", { keys: "string", values: "string" });
  const idx = env.table("idx");
  env.write((txn) => txn.put(t, "a", "1"));
  // each was "TypeError: Invalid FFI u32 type" in Deno and a wrapped-around number (or EINVAL) in Bun
  const cases: [string, () => unknown, RegExp][] = [
    [
      "range offset",
      () => env.read((txn) => [...txn.range(t, { offset: 2 ** 32 })]),
      /offset option of a range read of table "t" must be an integer from 0 to 4294967295/,
    ],
    [
      "range limit",
      () => env.read((txn) => [...txn.keys(t, { limit: 2.5 })]),
      /limit option of a range read of table "t" must be a whole number/,
    ],
    ["count offset", () => env.read((txn) => txn.count(t, { offset: -1 })), /offset option of a range read/],
    [
      "follow at",
      () => env.read((txn) => [...txn.follow(idx, "", t, { at: 2 ** 32, length: 1 })]),
      /follow: options\.at must be an integer from 0 to 4294967295/,
    ],
    [
      "follow length",
      () => env.read((txn) => [...txn.follow(idx, "", t, { at: 0, length: 2 ** 33 })]),
      /follow: options\.length must be an integer/,
    ],
    [
      "follow limit",
      () => env.read((txn) => [...txn.follow(idx, "", t, { at: 0, length: 1, limit: 0.5 })]),
      /follow: options\.limit must be a whole number/,
    ],
    [
      "getInto offset",
      () => env.read((txn) => txn.getInto(t, "a", new Uint8Array(8), 2 ** 32)),
      /getInto: offset the number 4294967296 is not within/,
    ],
    [
      "maxKeySize flags",
      () => env.maxKeySize(2 ** 32),
      /maxKeySize\(tableFlags\): tableFlags must be an integer from 0 to 4294967295/,
    ],
    ["maxValueSize flags", () => env.maxValueSize(-1), /maxValueSize\(tableFlags\): tableFlags must be an integer/],
    [
      "warmup timeout",
      () => env.warmup({ timeoutSeconds: 2 ** 20 }),
      /timeoutSeconds option of warmup\(\) must be a number of seconds from 0 to 65535/,
    ],
    [
      "check timeout",
      () => env.check({ timeoutSeconds: -1 }),
      /timeoutSeconds option of check\(\) must be a number of seconds/,
    ],
    [
      "open mode",
      () => open(path.join(te.dir, "other"), { mode: 2 ** 32 }),
      /the mode option of open\(\) must be permission bits from 0 to 0o777/,
    ],
    ["open mode", () => open(path.join(te.dir, "other"), { mode: 0o1777 }), /the mode option of open\(\)/],
  ];
  for (const [what, f, message] of cases) {
    assert.throws(f, (e: unknown) => e instanceof RangeError && message.test(e.message), what);
  }
  // in range they work as before
  assert.equal(env.read((txn) => [...txn.range(t, { offset: 4294967295 })]).length, 0);
  assert.ok(env.maxKeySize(0) > 0);
});
