import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { ErrorCode, errorName, MdbxError } from "../mod.ts";
import { tempEnv, throwsMdbx } from "./helpers.ts";

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
