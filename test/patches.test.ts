/**
 * native/libmdbx.py: the patch step (`apply`) and the SHA-256 verification of
 * the fetched libmdbx sources. Runs python3 as a child process, on copies in
 * temporary folders under the OS temp dir.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCRIPT = path.join(ROOT, "native", "libmdbx.py");
const STOCK = path.join(ROOT, ".deps", "libmdbx-0.14.3", "stock");
const PYTHON = process.env.TURBOMDBX_PYTHON ?? "python3";

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function python(args: string[]): Ran {
  const r = spawnSync(PYTHON, args, {
    encoding: "utf8",
    // No __pycache__ next to native/libmdbx.py when a snippet imports it.
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
    timeout: 60_000,
  });
  if (r.error) throw new Error(`${PYTHON} could not be run: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbomdbx-patches-"));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ORIGINAL = "one\ntwo\nthree\nfour\n";

/** A patch in native/patches/ style: prose before the first `diff --git`, paths relative to the tree. */
const GOOD_PATCH = `test patch: two becomes TWO

diff --git a/hello.txt b/hello.txt
--- a/hello.txt
+++ b/hello.txt
@@ -1,4 +1,4 @@
 one
-two
+TWO
 three
 four
`;

/** Context that is not in the file: neither applies nor is applied. */
const BAD_PATCH = `test patch written against another version

diff --git a/hello.txt b/hello.txt
--- a/hello.txt
+++ b/hello.txt
@@ -1,4 +1,4 @@
 uno
-dos
+DOS
 tres
 cuatro
`;

function tree(dir: string): string {
  const t = path.join(dir, "tree");
  fs.mkdirSync(t);
  fs.writeFileSync(path.join(t, "hello.txt"), ORIGINAL);
  return t;
}

test("libmdbx.py apply: a patch that applies is applied, and reported so", () => {
  withTempDir((dir) => {
    const t = tree(dir);
    const patch = path.join(dir, "0001-good.patch");
    fs.writeFileSync(patch, GOOD_PATCH);
    const r = python([SCRIPT, "apply", t, patch]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "applied 0001-good.patch");
    assert.equal(fs.readFileSync(path.join(t, "hello.txt"), "utf8"), "one\nTWO\nthree\nfour\n");
  });
});

test("libmdbx.py apply: running it again reports the patch as already applied and changes nothing", () => {
  withTempDir((dir) => {
    const t = tree(dir);
    const patch = path.join(dir, "0001-good.patch");
    fs.writeFileSync(patch, GOOD_PATCH);
    assert.equal(python([SCRIPT, "apply", t, patch]).status, 0);
    const again = python([SCRIPT, "apply", t, patch]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout.trim(), "already applied 0001-good.patch");
    assert.equal(fs.readFileSync(path.join(t, "hello.txt"), "utf8"), "one\nTWO\nthree\nfour\n");
  });
});

test("libmdbx.py apply: a patch that does not apply stops with exit 2 and names the patch", () => {
  withTempDir((dir) => {
    const t = tree(dir);
    const good = path.join(dir, "0001-good.patch");
    const bad = path.join(dir, "0002-bad.patch");
    fs.writeFileSync(good, GOOD_PATCH);
    fs.writeFileSync(bad, BAD_PATCH);
    const r = python([SCRIPT, "apply", t, good, bad]);
    assert.equal(r.status, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /0002-bad\.patch does not apply/);
    assert.doesNotMatch(r.stderr, /0001-good\.patch does not apply/);
  });
});

/** Imports native/libmdbx.py and runs verify_tree on argv[2]; exit 2 with the message on CheckFailed. */
const VERIFY = `
import importlib.util, pathlib, sys
spec = importlib.util.spec_from_file_location("libmdbx", sys.argv[1])
m = importlib.util.module_from_spec(spec)
sys.modules["libmdbx"] = m
spec.loader.exec_module(m)
try:
    m.verify_tree(pathlib.Path(sys.argv[2]))
except m.CheckFailed as e:
    print(e)
    sys.exit(2)
print("verified")
`;

test("libmdbx.py verify_tree accepts the pinned sources and rejects a copy with one byte changed", () => {
  assert.ok(
    fs.existsSync(path.join(STOCK, ".verified")),
    `${STOCK} is missing: run ./run setup (it fetches and verifies libmdbx) before the tests`,
  );
  withTempDir((dir) => {
    const copy = path.join(dir, "stock");
    fs.cpSync(STOCK, copy, { recursive: true });

    const ok = python(["-c", VERIFY, SCRIPT, copy]);
    assert.equal(ok.status, 0, `pristine copy: ${ok.stdout}${ok.stderr}`);
    assert.equal(ok.stdout.trim(), "verified");

    const header = path.join(copy, "mdbx.h");
    const bytes = fs.readFileSync(header);
    const at = bytes.length >> 1;
    bytes[at] ^= 0x01;
    fs.writeFileSync(header, bytes);

    const bad = python(["-c", VERIFY, SCRIPT, copy]);
    assert.equal(bad.status, 2, `tampered copy: ${bad.stdout}${bad.stderr}`);
    assert.match(bad.stdout, /SHA-256 mismatch for mdbx\.h/);
  });
});
