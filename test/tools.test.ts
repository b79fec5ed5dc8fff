/**
 * The turbomdbx CLI (tools/turbomdbx.ts) run as a program on a small
 * database, and (under Bun) the compiled single-file binary.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { open } from "../mod.ts";
import { runtime, test } from "./shim.ts";
import { removeDir, runtimeCommand, tempDir } from "./helpers.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(root, "tools", "turbomdbx.ts");

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

function turbomdbx(...args: string[]): Result {
  const { cmd, args: argv } = runtimeCommand(cli, args);
  const r = spawnSync(cmd, argv, { cwd: root, encoding: "utf8", timeout: 60_000 });
  const stdout = r.stdout ?? "";
  return { status: r.status, stdout, stderr: r.stderr ?? "", lines: stdout.trimEnd().split("\n") };
}

/** A database with one table of each shape the CLI prints differently. */
function makeDb(dbPath: string): void {
  using env = open(dbPath);
  const users = env.table("users", { keys: "string", values: "string" });
  const counters = env.table("counters", { keys: "uint32", values: "string" });
  const big = env.table("big", { keys: "uint64", values: "uint64", dupSort: true });
  const blobs = env.table("blobs");
  const tags = env.table("tags", { keys: "string", values: "string", dupSort: true });
  env.write((txn) => {
    txn.put(users, "ada", '{"name":"Ada"}');
    txn.put(users, "alan", '{"name":"Alan"}');
    txn.put(users, "note", "two\nlines");
    for (let i = 1; i <= 50; i++) txn.put(counters, i, `count ${i}`);
    txn.put(big, 2 ** 40, 7);
    txn.put(big, 2 ** 40, 9);
    txn.put(blobs, new Uint8Array([0xff, 0x00]), new Uint8Array([0xfe, 0x01, 0x02]));
    txn.put(tags, "ada", "math");
    txn.put(tags, "ada", "poetry");
  });
}

const ok = (r: Result) => assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);

test("the CLI reports an environment (stat) and its tables with entries and flags", () => {
  const dir = tempDir("turbomdbx-cli-");
  try {
    const db = path.join(dir, "db");
    makeDb(db);
    const stat = turbomdbx("stat", db);
    ok(stat);
    assert.ok(stat.lines.includes(`path        ${db}`), stat.stdout);
    assert.match(stat.stdout, /^page size\s+\d+$/m);
    assert.match(stat.stdout, /^tables\s+5$/m);
    assert.match(stat.stdout, /^entries\s+58 in named tables \(63 in all\)$/m);

    const tables = turbomdbx("tables", db);
    ok(tables);
    assert.match(tables.lines[0], /^name\s+entries\s+depth\s+branch\s+leaf\s+large\s+flags$/);
    const row = (name: string) => tables.lines.find((l) => l.startsWith(name + " "))?.split(/\s+/);
    assert.deepEqual(row("users")?.slice(0, 3), ["users", "3", "1"]);
    assert.deepEqual([row("counters")?.[1], row("counters")?.at(-1)], ["50", "integerkey"]);
    assert.equal(row("big")?.at(-1), "dupsort,integerkey,dupfixed,integerdup");
    assert.equal(row("tags")?.at(-1), "dupsort");
  } finally {
    removeDir(dir);
  }
});

test("the CLI gets values by text, integer and hex keys, and exits 1 for a missing key", () => {
  const dir = tempDir("turbomdbx-cli-");
  try {
    const db = path.join(dir, "db");
    makeDb(db);
    const ada = turbomdbx("get", db, "users", "ada");
    ok(ada);
    assert.equal(ada.stdout, '{"name":"Ada"}\n');
    assert.equal(turbomdbx("get", db, "counters", "42").stdout, "count 42\n");
    assert.equal(turbomdbx("get", db, "big", String(2 ** 40)).stdout, "7\n9\n");
    assert.equal(turbomdbx("get", db, "tags", "ada").stdout, "math\npoetry\n");
    assert.equal(turbomdbx("get", db, "blobs", "--hex", "ff00").stdout, "0xfe0102\n");

    const missing = turbomdbx("get", db, "users", "grace");
    assert.equal(missing.status, 1);
    assert.equal(missing.stdout, "");
    assert.match(missing.stderr, /key grace not found in table "users"/);

    const noTable = turbomdbx("get", db, "nope", "x");
    assert.equal(noTable.status, 2);
    assert.match(noTable.stderr, /no table "nope"/);
    const badInt = turbomdbx("get", db, "counters", "x");
    assert.equal(badInt.status, 2);
    assert.match(badInt.stderr, /integer keys; "x" is not a decimal integer/);
  } finally {
    removeDir(dir);
  }
});

test("the CLI dumps a table in key order, escaping line breaks and printing binary as hex", () => {
  const dir = tempDir("turbomdbx-cli-");
  try {
    const db = path.join(dir, "db");
    makeDb(db);
    const users = turbomdbx("dump", db, "users");
    ok(users);
    assert.deepEqual(users.lines, ['ada\t{"name":"Ada"}', 'alan\t{"name":"Alan"}', 'note\t"two\\nlines"']);
    assert.deepEqual(turbomdbx("dump", db, "counters", "--limit", "3").lines, [
      "1\tcount 1",
      "2\tcount 2",
      "3\tcount 3",
    ]);
    assert.deepEqual(turbomdbx("dump", db, "counters", "--limit=1").lines, ["1\tcount 1"]);
    assert.deepEqual(turbomdbx("dump", db, "blobs").lines, ["0xff00\t0xfe0102"]);
    assert.deepEqual(turbomdbx("dump", db, "users", "--hex", "--limit", "1").lines, [
      "0x616461\t0x7b226e616d65223a22416461227d",
    ]);
    // "-" is the main table, which lists the named tables
    const main = turbomdbx("dump", db, "-");
    ok(main);
    assert.deepEqual(main.lines.map((l) => l.split("\t")[0]), ["big", "blobs", "counters", "tags", "users"]);
  } finally {
    removeDir(dir);
  }
});

test("the CLI copies a database (compacted by default) into a file that opens with the same data", () => {
  const dir = tempDir("turbomdbx-cli-");
  try {
    const db = path.join(dir, "db");
    makeDb(db);
    for (const [name, extra] of [["compact.mdbx", []], ["plain.mdbx", ["--no-compact"]]] as const) {
      const dest = path.join(dir, name);
      const r = turbomdbx("copy", db, dest, ...extra);
      ok(r);
      assert.match(
        r.stdout.trimEnd(),
        new RegExp(`^copied .* to .*${name} \\(\\d+ bytes${extra.length ? "" : ", compacted"}\\)$`),
      );
      assert.ok(fs.statSync(dest).isFile());
      // the copy is a single data file: the CLI opens it as such
      assert.equal(turbomdbx("get", dest, "counters", "50").stdout, "count 50\n");
    }
    {
      using env = open(path.join(dir, "compact.mdbx"), { noSubdir: true, readOnly: true });
      const users = env.table("users", { keys: "string", values: "string" });
      assert.equal(env.read((txn) => txn.get(users, "alan")), '{"name":"Alan"}');
    }
  } finally {
    removeDir(dir);
  }
});

test("the CLI rebuilds a database live, printing progress and what it did", () => {
  const dir = tempDir("turbomdbx-cli-");
  try {
    const db = path.join(dir, "db");
    makeDb(db);
    const before = fs.statSync(path.join(db, "mdbx.dat")).ino;
    const r = turbomdbx("rebuild", db);
    ok(r);
    assert.match(
      r.stdout.trimEnd(),
      /^rebuilt .*: .* -> .* in [\d.]+ s \(copy [\d.]+ s, \d+ catch-up rounds, .* writers held [\d.]+ ms\)$/,
    );
    assert.match(r.stderr, /^done: \d+ rounds, [\d,]+ keys replayed$/m, "progress lines when stderr is not a terminal");
    assert.notEqual(fs.statSync(path.join(db, "mdbx.dat")).ino, before, "a new data file");
    assert.equal(turbomdbx("get", db, "counters", "50").stdout, "count 50\n");
    const bad = turbomdbx("rebuild", path.join(dir, "nothing"));
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /does not exist/);
  } finally {
    removeDir(dir);
  }
});

test("the CLI lists the readers of a database, including another process's open read transaction", () => {
  const dir = tempDir("turbomdbx-cli-");
  try {
    const db = path.join(dir, "db");
    makeDb(db);
    assert.deepEqual(turbomdbx("readers", db).lines, ["no active readers"]);
    using env = open(db);
    using txn = env.beginRead();
    const r = turbomdbx("readers", db);
    ok(r);
    assert.match(r.lines[0], /^slot\s+pid\s+thread\s+txnid\s+lag\s+used\s+retained$/);
    const ours = r.lines.slice(1).map((l) => l.trim().split(/\s+/)).find((c) => c[1] === String(process.pid));
    assert.ok(ours, `no reader of pid ${process.pid} in\n${r.stdout}`);
    assert.equal(ours[3], String(txn.id));
  } finally {
    removeDir(dir);
  }
});

test("the CLI explains bad usage with exit code 2", () => {
  const none = turbomdbx();
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^usage: turbomdbx <command>/);
  const help = turbomdbx("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: turbomdbx <command>/);
  const unknown = turbomdbx("frob");
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frob"/);
  const arity = turbomdbx("get", "x");
  assert.equal(arity.status, 2);
  assert.match(arity.stderr, /get takes <db> <table> <key>/);
  const missing = turbomdbx("stat", path.join(root, ".no-such-database"));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /does not exist/);
});

test(
  `the compiled CLI (bun build --compile) carries its library and runs stat from another folder${
    runtime === "bun" ? "" : " (skipped: Bun only)"
  }`,
  () => {
    const dir = tempDir("turbomdbx-cli-");
    try {
      const db = path.join(dir, "db");
      makeDb(db);
      const build = spawnSync(process.execPath, [path.join(root, "tools", "build.ts")], {
        cwd: root,
        encoding: "utf8",
        timeout: 120_000,
      });
      assert.equal(build.status, 0, `${build.stdout}\n${build.stderr}`);
      const bin = path.join(root, "zig-out", "bin", "turbomdbx-cli");
      assert.ok(fs.statSync(bin).size > 0);
      // No TURBOMDBX_LIB and a working folder without zig-out: only the embedded library can load.
      const env = { ...process.env };
      delete env.TURBOMDBX_LIB;
      const r = spawnSync(bin, ["stat", "db"], { cwd: dir, encoding: "utf8", env, timeout: 60_000 });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /^path\s+db$/m);
      assert.match(r.stdout, /^tables\s+5$/m);
      const get = spawnSync(bin, ["get", "db", "users", "ada"], { cwd: dir, encoding: "utf8", env });
      assert.equal(get.stdout, '{"name":"Ada"}\n');
    } finally {
      removeDir(dir);
    }
  },
  { ignore: runtime !== "bun" },
);
