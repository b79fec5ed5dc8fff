/**
 * Checks report damage, never throw on it or crash: `env.check()`,
 * `checkDatabase()` and the CLI's `chk` on real files damaged on disk (a leaf
 * page, a branch page, one meta page, all meta pages, a file cut short), each
 * in a child process so that a crash shows as a signal. Behind
 * TURBOMDBX_SOAK=1, a fuzz test: randomly byte-flipped files opened with
 * `validation: true`, read and checked, never crash the process.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { checkDatabase, type CheckResult, open } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir } from "./helpers.ts";
import { int, prng } from "./children/cache_data.ts";
import { damageMeta, damagePage, oldestMeta, pagesOf, populate } from "./damage.ts";

const child = fileURLToPath(new URL("./children/check_child.ts", import.meta.url));
const cli = fileURLToPath(new URL("../tools/turbomdbx.ts", import.meta.url));
const soak = process.env.TURBOMDBX_SOAK === "1";

interface Outcome {
  result?: CheckResult;
  error?: { name: string; codeName: string | null; message: string };
  read?: number;
  readErrors?: string[];
}

/** Runs check_child.ts; asserts it was not killed by a signal and exited normally. */
function run(mode: "database" | "env" | "scan", db: string, ...flags: ("noSubdir" | "readOnly")[]): Outcome {
  const { cmd, args } = runtimeCommand(child, [mode, db, ...flags]);
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.signal, null, `${mode} ${db}: the child was killed by ${r.signal}\n${r.stderr}`);
  assert.equal(r.status, 0, `${mode} ${db}: the child exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.stderr, "", `${mode} ${db}: nothing may reach stderr`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Outcome;
}

/** Asserts a check found damage and said so in words. */
function reportsDamage(o: Outcome, what: string, issue: RegExp): CheckResult {
  assert.equal(o.error, undefined, `${what}: reported, not thrown: ${o.error?.message}`);
  const r = o.result!;
  assert.equal(r.ok, false, `${what}: not ok`);
  assert.ok(r.problems > 0, `${what}: problems counted`);
  assert.ok(r.issues.some((i) => issue.test(i)), `${what}: an issue matches ${issue}:\n${r.issues.join("\n")}`);
  return r;
}

/** A fresh copy of a damaged database: `damage` gets its data file and page size. */
function damaged(dir: string, name: string, damage: (file: string, pageSize: number) => void): string {
  const p = path.join(dir, name);
  const { file, pageSize } = populate(p);
  damage(file, pageSize);
  return p;
}

test("a sound database checks ok with env.check() and checkDatabase(), with no issues", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    populate(p);
    const r = checkDatabase(p);
    assert.equal(r.ok, true, r.issues.join("\n"));
    assert.deepEqual(r.issues, []);
    assert.equal(r.stopped, undefined);
    assert.ok(r.processedPages > 3 && r.tables >= 1 && r.txnId > 0);
    using env = open(p, { sync: "lazy" });
    assert.equal(env.check().ok, true);
  } finally {
    removeDir(dir);
  }
});

test("a damaged leaf page is reported (page, what) by checkDatabase() and env.check(), not thrown or crashed", () => {
  const dir = tempDir();
  try {
    let pgno = 0;
    const p = damaged(dir, "leaf", (file, ps) => {
      const leaves = pagesOf(file, ps, "leaf");
      pgno = leaves[leaves.length >> 1];
      damagePage(file, ps, pgno);
    });
    for (const mode of ["database", "env"] as const) {
      const r = reportsDamage(run(mode, p), `${mode}: leaf ${pgno}`, new RegExp(`^page ${pgno}: `));
      assert.ok(r.issues.some((i) => /^page check: corrupted leaf-page #\d+/.test(i)), r.issues.join("\n"));
    }
  } finally {
    removeDir(dir);
  }
});

test("a damaged branch page is reported, and where the walk had to stop says so", () => {
  const dir = tempDir();
  try {
    let pgno = 0;
    const p = damaged(dir, "branch", (file, ps) => {
      const branches = pagesOf(file, ps, "branch");
      assert.ok(branches.length > 0, "the records table has branch pages");
      pgno = branches[0];
      damagePage(file, ps, pgno);
    });
    for (const mode of ["database", "env"] as const) {
      const r = reportsDamage(run(mode, p), `${mode}: branch ${pgno}`, new RegExp(`^page ${pgno}: `));
      assert.ok(r.issues.some((i) => /branch-page/.test(i)), r.issues.join("\n"));
      assert.match(r.stopped ?? "", /^walking the page trees stopped at MDBX_CORRUPTED/);
    }
  } finally {
    removeDir(dir);
  }
});

test("one damaged meta page is reported by name although the database still opens", () => {
  const dir = tempDir();
  try {
    let meta = 0;
    const p = damaged(dir, "meta", (file, ps) => damageMeta(file, ps, meta = oldestMeta(file, ps)));
    // read-only: a writable open lets libmdbx roll the damaged meta back (it rewrites it with txnid 0)
    for (const [mode, ...flags] of [["database"], ["env", "readOnly"]] as const) {
      const r = reportsDamage(
        run(mode, p, ...flags),
        `${mode}: meta ${meta}`,
        new RegExp(`^meta page ${meta}: not valid, libmdbx skips it: it does not start with libmdbx's magic`),
      );
      assert.equal(r.stopped, undefined, "the rest was checked");
      assert.ok(r.metaProblems >= 1);
    }
    // a writable open repairs it: libmdbx rolls the meta back, and the database checks ok after
    const repaired = run("env", p);
    assert.equal(repaired.result?.ok, true, JSON.stringify(repaired));
  } finally {
    removeDir(dir);
  }
});

test("all meta pages damaged, or the file cut short: checkDatabase() reports that it cannot open it", () => {
  const dir = tempDir();
  try {
    const allMetas = damaged(dir, "metas", (file, ps) => [0, 1, 2].forEach((i) => damageMeta(file, ps, i)));
    const cut = damaged(
      dir,
      "cut",
      (file) => fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2 / 4096) * 4096),
    );
    const empty = damaged(dir, "empty", (file) => fs.truncateSync(file, 0));
    for (
      const [p, why] of [
        [allMetas, /MDBX_INVALID: .*no valid libmdbx meta page/],
        [cut, /MDBX_CORRUPTED: .*but its newest meta page .* records .* in use/],
        [empty, /MDBX_CORRUPTED: .*exists but is empty/],
      ] as const
    ) {
      const r = reportsDamage(run("database", p), p, why);
      assert.match(r.stopped ?? "", /^the database could not be opened to check it: /);
    }
    // the data file by its own name
    const r = reportsDamage(run("database", path.join(cut, "mdbx.dat"), "noSubdir"), "cut, noSubdir", /cut short/);
    assert.ok(r.stopped);
  } finally {
    removeDir(dir);
  }
});

test("turbomdbx chk exits 0 with ok on a sound database and 1 with every issue on a damaged one", () => {
  const dir = tempDir();
  try {
    const sound = path.join(dir, "sound");
    populate(sound, 2000);
    const chk = (db: string) => {
      const { cmd, args } = runtimeCommand(cli, ["chk", db]);
      return spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
    };
    const ok = chk(sound);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^ok: .*\(\d+ pages, \d+ tables, txnid \d+\)\n$/);
    const p = damaged(dir, "leaf", (file, ps) => damagePage(file, ps, pagesOf(file, ps, "leaf")[3]));
    const bad = chk(p);
    assert.equal(bad.signal, null);
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /^page \d+: /m);
    assert.match(bad.stdout, /^damaged: .*: \d+ problems? \(/m);
    assert.equal(bad.stderr, "");
    const cut = damaged(dir, "cut", (file) => fs.truncateSync(file, 8192));
    const c = chk(path.join(cut, "mdbx.dat"));
    assert.equal(c.status, 1, c.stdout + c.stderr);
    assert.match(c.stdout, /^stopped: the database could not be opened/m);
  } finally {
    removeDir(dir);
  }
});

test("check options out of range are RangeErrors naming them, on both runtimes (not Deno's FFI TypeError)", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    populate(p, 100);
    for (const bad of [-1, 65536, 2 ** 40, Number.NaN, "1" as unknown as number]) {
      assert.throws(
        () => checkDatabase(p, { timeoutSeconds: bad }),
        (e: unknown) =>
          e instanceof RangeError &&
          /the timeoutSeconds option of checkDatabase\(\) must be a number of seconds from 0 to 65535/.test(e.message),
      );
    }
    using env = open(p, { sync: "lazy" });
    assert.throws(() => env.check({ timeoutSeconds: 2 ** 32 }), /timeoutSeconds option of check\(\)/);
    assert.throws(() => env.warmup({ timeoutSeconds: 1e6 }), /timeoutSeconds option of warmup\(\)/);
    assert.equal(env.check({ timeoutSeconds: 600 }).ok, true);
  } finally {
    removeDir(dir);
  }
});

test("randomly byte-flipped files, opened with validation, read and checked, never crash the process", () => {
  const dir = tempDir();
  try {
    const base = path.join(dir, "base");
    const { file, pageSize } = populate(base, 5000);
    const good = fs.readFileSync(file);
    const seeds = soak ? 200 : 4;
    const first = Number(process.env.TURBOMDBX_SEED ?? 1);
    for (let s = first; s < first + seeds; s++) {
      const rand = prng(s);
      const p = path.join(dir, `fuzz-${s}`);
      fs.mkdirSync(p);
      const bytes = new Uint8Array(good);
      // a few bursts of flipped bytes, anywhere past the meta pages (damaged metas are the tests above)
      const pages = Math.floor(bytes.length / pageSize);
      for (let k = int(rand, 1, 4); k > 0; k--) {
        const at = int(rand, 3, pages - 1) * pageSize + int(rand, 0, pageSize - 1);
        for (let j = 0; j < int(rand, 1, 16) && at + j < bytes.length; j++) bytes[at + j] ^= int(rand, 1, 255);
      }
      fs.writeFileSync(path.join(p, "mdbx.dat"), bytes);
      const o = run("scan", p);
      const replay = `seed ${s} (replay: TURBOMDBX_SEED=${s})`;
      if (o.error) assert.ok(o.error.codeName !== null, `${replay}: ${o.error.name}: ${o.error.message}`);
      else assert.ok(o.result, `${replay}: a check result`);
    }
  } finally {
    removeDir(dir);
  }
}, { timeout: soak ? 3_600_000 : 300_000 });
