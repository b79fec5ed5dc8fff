import { test } from "./shim.ts";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { libraryCandidates, libraryFileName, loadLibrary, open, runtime } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir, tempEnv } from "./helpers.ts";

const modUrl = new URL("../mod.ts", import.meta.url).href;
const localLib = fileURLToPath(new URL(`../zig-out/lib/${libraryFileName()}`, import.meta.url));

/** Runs `source` as a script in a child of this runtime with extra environment variables. */
function runChild(source: string, env: Record<string, string | undefined>) {
  const dir = tempDir();
  try {
    const script = path.join(dir, "child.ts");
    fs.writeFileSync(script, source);
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
    const { cmd, args } = runtimeCommand(script);
    const r = spawnSync(cmd, args, { encoding: "utf8", env: childEnv, timeout: 60_000 });
    return { status: r.status, out: (r.stdout ?? "") + (r.stderr ?? ""), dir };
  } finally {
    removeDir(dir);
  }
}

/** Sets (or unsets) TURBOMDBX_LIB while `fn` runs. */
function withLibVar<T>(value: string | undefined, fn: () => T): T {
  const old = process.env.TURBOMDBX_LIB;
  if (value === undefined) delete process.env.TURBOMDBX_LIB;
  else process.env.TURBOMDBX_LIB = value;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env.TURBOMDBX_LIB;
    else process.env.TURBOMDBX_LIB = old;
  }
}

test("runtime names the runtime running the tests", () => {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  assert.equal(runtime, isDeno ? "deno" : "bun");
});

test("libraryFileName is the platform's shared-library name", () => {
  const want = process.platform === "win32"
    ? "turbomdbx.dll"
    : process.platform === "darwin"
    ? "libturbomdbx.dylib"
    : "libturbomdbx.so";
  assert.equal(libraryFileName(), want);
});

test("libraryCandidates prefers the explicit path, then TURBOMDBX_LIB, then the local build", () => {
  withLibVar("/from/env/lib.so", () => {
    assert.deepEqual(libraryCandidates("/explicit/lib.so"), [
      { path: "/explicit/lib.so", from: "the libraryPath option" },
    ]);
    assert.deepEqual(libraryCandidates(), [{ path: "/from/env/lib.so", from: "TURBOMDBX_LIB" }]);
  });
  withLibVar(undefined, () => {
    assert.deepEqual(libraryCandidates(), [{ path: localLib, from: "the local build" }]);
  });
  // the library these tests run on is the local build unless TURBOMDBX_LIB points elsewhere
  assert.equal(loadLibrary().path, process.env.TURBOMDBX_LIB || localLib);
});

test("loadLibrary loads once per process; another explicit path afterwards is an error", () => {
  using t = tempEnv(); // makes sure the library is loaded
  const b = loadLibrary();
  assert.equal(b, loadLibrary(), "the same backend every time");
  assert.equal(b.runtime, runtime);
  assert.equal(loadLibrary(b.path), b, "naming the loaded path again is fine");
  assert.throws(() => loadLibrary("/some/other/libturbomdbx.so"), /already loaded from .*cannot be loaded as well/);
  assert.throws(() => open(t.dir + "/other", { libraryPath: "/some/other/libturbomdbx.so" }), /already loaded/);
});

test("a TURBOMDBX_LIB that does not exist fails open() with the path tried and how to build", () => {
  const r = runChild(
    `import { open } from ${JSON.stringify(modUrl)};
try { open("never-created.mdbx"); console.log("OPENED"); }
catch (e) { console.log("ERROR " + e.message); }`,
    { TURBOMDBX_LIB: "/nonexistent/lib.so" },
  );
  assert.equal(r.status, 0, r.out);
  assert.doesNotMatch(r.out, /OPENED/);
  assert.match(r.out, /could not load the turbomdbx shared library/);
  assert.match(r.out, /Tried:\n\s+\/nonexistent\/lib\.so \(TURBOMDBX_LIB\)/);
  assert.match(r.out, /\.\/run build/);
  assert.match(r.out, /libraryPath option/);
});

test("a file that is not a library is reported with its path and the loader's reason", () => {
  const dir = tempDir();
  try {
    const bogus = path.join(dir, "libturbomdbx.so");
    fs.writeFileSync(bogus, "not a shared library");
    const r = runChild(
      `import { open } from ${JSON.stringify(modUrl)};
try { open("never-created.mdbx", { libraryPath: ${JSON.stringify(bogus)} }); console.log("OPENED"); }
catch (e) { console.log("ERROR " + e.message); }`,
      {},
    );
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /could not load/);
    assert.ok(r.out.includes(`${bogus} (the libraryPath option): `), r.out);
  } finally {
    removeDir(dir);
  }
});

test("the libraryPath option wins over a bad TURBOMDBX_LIB", () => {
  const dir = tempDir();
  try {
    const db = path.join(dir, "db");
    const r = runChild(
      `import { open } from ${JSON.stringify(modUrl)};
const env = open(${JSON.stringify(db)}, { libraryPath: ${JSON.stringify(loadLibrary().path)} });
const t = env.table("t", { keys: "string", values: "string" });
env.write((txn) => txn.put(t, "k", "from child"));
console.log("OK " + env.read((txn) => txn.get(t, "k")));
env.close();`,
      { TURBOMDBX_LIB: "/nonexistent/lib.so" },
    );
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /OK from child/);
  } finally {
    removeDir(dir);
  }
});
