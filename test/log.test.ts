/**
 * libmdbx's log: never on stderr (native/log.c keeps it in a ring), delivered
 * to the `logger` option of open() at its `logLevel`, and the last message of
 * a failure in `MdbxError.detail`. What used to print lines on stderr (a full
 * map, a lock held by another process, a damaged meta page, a damaged page)
 * runs in child processes whose stderr must stay empty.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { type LogEntry, type LogLevel, MdbxError, open } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir, throwsMdbx } from "./helpers.ts";
import { damageMeta, damagePage, oldestMeta, pagesOf, populate } from "./damage.ts";

const child = fileURLToPath(new URL("./children/log_child.ts", import.meta.url));

interface Report {
  error: { codeName: string; message: string; detail: string | null } | null;
  entries: LogEntry[];
}

/** Runs log_child.ts; asserts it exited normally with nothing on stderr. */
function run(...args: string[]): Report {
  const { cmd, args: argv } = runtimeCommand(child, args);
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.signal, null, `the child was killed by ${r.signal}\n${r.stderr}`);
  assert.equal(r.status, 0, `the child exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.stderr, "", `nothing may reach stderr, got:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Report;
}

const wheres = (r: Report) => new Set(r.entries.map((e) => e.where));

test("MAP_FULL prints nothing on stderr; the logger gets gc_alloc_ex's message and it is the error's detail", () => {
  const dir = tempDir();
  try {
    for (const level of ["-", "warning"]) {
      const r = run("mapfull", path.join(dir, `db-${level}`), level);
      assert.equal(r.error?.codeName, "MDBX_MAP_FULL");
      assert.match(r.error!.detail ?? "", /^gc_alloc_ex: /, "the detail is libmdbx's own message");
      if (level === "-") assert.equal(r.entries.length, 0);
      else assert.ok(wheres(r).has("gc_alloc_ex"), JSON.stringify(r.entries));
    }
  } finally {
    removeDir(dir);
  }
});

test("a lock held by another process, and another process's flags, print nothing on stderr; the logger gets lck_seize", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    {
      // this process holds the database exclusively while the child tries
      using _env = open(p, { sync: "lazy", exclusive: true });
      const quiet = run("open", p, "{}", "-");
      assert.equal(quiet.error?.codeName, "MDBX_EAGAIN");
      const logged = run("open", p, "{}", "warning");
      assert.equal(logged.error?.codeName, "MDBX_EAGAIN");
      assert.ok(wheres(logged).has("lck_seize"), JSON.stringify(logged.entries));
      assert.ok(logged.entries.every((e) => e.level === "error" || e.level === "warning"));
    }
    {
      // open here without, there with writeMap and exclusive: other flags than the holder's
      using _env = open(p, { sync: "lazy" });
      for (const options of [{ writeMap: true }, { exclusive: true }, { sync: "nosync" }]) {
        run("open", p, JSON.stringify(options), "-");
        run("open", p, JSON.stringify(options), "notice");
      }
    }
  } finally {
    removeDir(dir);
  }
});

test("a damaged meta page prints nothing on stderr; the logger gets meta_validate's message", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    const { file, pageSize } = populate(p, 2000);
    damageMeta(file, pageSize, oldestMeta(file, pageSize));
    // read-only first: a writable open lets libmdbx roll the damaged meta back (it rewrites it with txnid 0)
    for (const readOnly of [true, false]) {
      const r = run("open", p, JSON.stringify({ readOnly }), "warning");
      assert.equal(r.error, null);
      const meta = r.entries.find((e) => e.where === "meta_validate" && /has invalid magic\/version/.test(e.message));
      assert.ok(meta, JSON.stringify(r.entries));
      assert.match(meta.message, /^meta\[\d\] has invalid magic\/version/);
      assert.equal(meta.level, "error");
      assert.ok(meta.line > 0);
      if (readOnly) assert.deepEqual(run("open", p, JSON.stringify({ readOnly }), "-"), { error: null, entries: [] });
    }
  } finally {
    removeDir(dir);
  }
});

test("a damaged page read with validation prints nothing on stderr; MDBX_CORRUPTED's detail is libmdbx's badpage line", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    const { file, pageSize } = populate(p);
    const leaves = pagesOf(file, pageSize, "leaf");
    damagePage(file, pageSize, leaves[leaves.length >> 1]);
    const quiet = run("read", p, JSON.stringify({ validation: true }), "-");
    assert.equal(quiet.error?.codeName, "MDBX_CORRUPTED");
    assert.match(quiet.error!.detail ?? "", /^badpage: /);
    assert.match(quiet.error!.message, /libmdbx reported: badpage: /, "named in the message too");
    assert.match(quiet.error!.message, /checkDatabase\(path\)/, "the advice points to checkDatabase");
    const logged = run("read", p, JSON.stringify({ validation: true }), "error");
    assert.ok(logged.entries.some((e) => e.where === "badpage" && /corrupted leaf-page #\d+/.test(e.message)));
  } finally {
    removeDir(dir);
  }
});

test("every logger gets the messages at or above its logLevel, whichever environment logged them", () => {
  const dir = tempDir();
  const got: Record<string, LogEntry[]> = { fatal: [], error: [], warning: [], notice: [] };
  try {
    const damaged = path.join(dir, "damaged");
    const { file, pageSize } = populate(damaged, 2000);
    damageMeta(file, pageSize, oldestMeta(file, pageSize));
    const envs = (["fatal", "error", "notice"] as LogLevel[]).map((logLevel, i) =>
      open(path.join(dir, `db-${i}`), { sync: "lazy", logLevel, logger: (e) => got[logLevel].push(e) })
    );
    try {
      // a damaged meta: libmdbx logs one error (the magic) when this env opens
      using _env = open(damaged, { sync: "lazy", logger: (e) => got.warning.push(e) });
      // a full map: errors, and notices ("gc-alloc: next … > upper") that only "notice" asks for
      using small = open(path.join(dir, "small"), {
        sync: "lazy",
        geometry: { lower: "64KiB", now: "64KiB", upper: "256KiB", growth: "64KiB" },
      });
      const t = small.table("fill", { keys: "uint32" });
      const e = throwsMdbx(() => {
        for (let i = 0; i < 1000; i++) small.write((txn) => txn.put(t, i, new Uint8Array(1000)));
      }, "MDBX_MAP_FULL");
      assert.match(e.detail ?? "", /^gc_alloc_ex: unable alloc/);
    } finally {
      for (const env of envs) env.close();
    }
    assert.equal(got.fatal.length, 0);
    assert.ok(got.error.some((e) => e.where === "meta_validate"), "an env's logger hears another env's open");
    assert.ok(got.error.some((e) => e.where === "gc_alloc_ex"));
    assert.ok(got.error.every((e) => e.level === "error" || e.level === "fatal"), JSON.stringify(got.error));
    assert.ok(got.notice.some((e) => e.level === "notice" && e.where === "gc_alloc_ex"), "notices at notice");
    assert.ok(got.warning.some((e) => e.where === "meta_validate"), "the opening env's own logger hears it");
    assert.ok(got.warning.every((e) => e.level !== "notice"), "no notices at warning");
  } finally {
    removeDir(dir);
  }
});

test("a closed environment's logger hears nothing more", () => {
  const dir = tempDir();
  try {
    const heard: LogEntry[] = [];
    const env = open(path.join(dir, "quiet"), { sync: "lazy", logger: (e) => heard.push(e) });
    env.close();
    const damaged = path.join(dir, "damaged");
    const { file, pageSize } = populate(damaged, 500);
    damageMeta(file, pageSize, oldestMeta(file, pageSize));
    open(damaged, { sync: "lazy" }).close();
    assert.equal(heard.length, 0);
  } finally {
    removeDir(dir);
  }
});

test("a logger that is not a function, or an unknown logLevel, is a TypeError naming the option; nothing opens", () => {
  const dir = tempDir();
  try {
    const p = path.join(dir, "db");
    assert.throws(
      () => open(p, { logger: "console" as unknown as () => void }),
      (e: unknown) => e instanceof TypeError && /the logger option of open\(\) must be a function/.test(e.message),
    );
    assert.throws(
      () => open(p, { logLevel: "loud" as LogLevel }),
      (e: unknown) =>
        e instanceof TypeError && /the logLevel option of open\(\) must be one of "fatal", .*"debug"; got "loud"/
          .test(e.message),
    );
    // nothing was created or left registered: the path opens normally
    using env = open(p, { sync: "lazy" });
    assert.ok(env.isOpen);
  } finally {
    removeDir(dir);
  }
});

test("MdbxError carries libmdbx's message as detail only when libmdbx logged one", () => {
  const dir = tempDir();
  try {
    using env = open(path.join(dir, "db"), { sync: "lazy" });
    const t = env.table("t", { keys: "string", values: "string" });
    env.write((txn) => txn.put(t, "a", "1"));
    const e = throwsMdbx(() => env.write((txn) => txn.put(t, "a", "2", { noOverwrite: true })), "MDBX_KEYEXIST");
    assert.equal(e.detail, undefined);
    assert.ok(new MdbxError(-30796, "x", "badpage: y").detail === "badpage: y");
  } finally {
    removeDir(dir);
  }
});
