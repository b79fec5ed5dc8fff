/**
 * Live rebuild (env.rebuild(), native/rebuild.c, patch 0003): the new file
 * holds exactly the database, compacted with every table's leaves in key
 * order; writes of this process and of another process go on during the
 * rebuild and none is lost; readers keep their snapshot; other processes move
 * to the new file by themselves; a cancelled or failed rebuild (size limit,
 * RLIMIT_FSIZE) leaves the database as it was; `kill -9` of the rebuilding
 * process at any moment, including in the middle of the switch, leaves one
 * complete database, clean for the stock mdbx_chk.
 *
 * TURBOMDBX_SOAK=1 kills many more times; TURBOMDBX_SEED=<n> replays a run.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type Env, type KeyKind, MdbxError, open, type TableOptions, type ValueKind } from "../mod.ts";
import { assertStockChk, removeDir, runtimeCommand, tempDir, tempEnv } from "./helpers.ts";
import { childValue } from "./children/rebuild_data.ts";

const SOAK = process.env.TURBOMDBX_SOAK === "1";
const seed = process.env.TURBOMDBX_SEED !== undefined
  ? Number(process.env.TURBOMDBX_SEED) >>> 0
  : Math.floor(Math.random() * 2 ** 32);
const childScript = fileURLToPath(new URL("./children/rebuild_child.ts", import.meta.url));

/** mulberry32 */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * Fills a database the way fragmentation happens: several kinds of tables,
 * random inserts, then random deletes and size-changing updates.
 */
function fragment(env: Env, rnd: () => number, n: number): void {
  const plain = env.table("plain");
  const ints = env.table("ints", { keys: "uint32" });
  const dups = env.table("dups", { dupSort: true });
  const big = env.table("big");
  const main = env.table(null);
  const key = (i: number) => new TextEncoder().encode(`key-${(i * 2654435761 >>> 0).toString(16)}-${i}`);
  const val = (i: number, len: number) => new Uint8Array(len).fill(i & 0xff);
  for (let b = 0; b < n; b += 500) {
    env.write((txn) => {
      for (let i = b; i < Math.min(n, b + 500); i++) {
        txn.put(plain, key(i), val(i, 20 + Math.floor(rnd() * 300)));
        txn.put(ints, (i * 7919) % 1_000_003, val(i, 8 + (i % 40)));
        if (i % 5 === 0) {
          for (let d = 0; d < (i % 50 === 0 ? 300 : 3); d++) txn.put(dups, key(i % 400), val(d, 4 + (d % 9)));
        }
        if (i % 97 === 0) txn.put(big, key(i), val(i, 5000 + Math.floor(rnd() * 20000)));
        if (i % 211 === 0) txn.put(main, key(i), val(i, 10));
      }
    });
  }
  env.write((txn) => {
    for (let i = 0; i < n; i++) {
      const r = rnd();
      if (r < 0.3) txn.del(plain, key(i));
      else if (r < 0.6) txn.put(plain, key(i), val(i + 1, 10 + Math.floor(rnd() * 500)));
      if (rnd() < 0.3) txn.del(ints, (i * 7919) % 1_000_003);
      if (i % 97 === 0 && rnd() < 0.5) txn.del(big, key(i));
    }
    txn.del(dups, key(0));
  });
}

/** How the tests open their tables (a name has one set of key/value kinds per Env). */
const KINDS: Record<string, TableOptions<KeyKind, ValueKind>> = {
  ints: { keys: "uint32" },
  dups: { dupSort: true },
  child: { keys: "uint32", values: "string" },
  mine: { keys: "uint32", values: "string" },
  meta: { keys: "string", values: "uint32" },
  bank: { keys: "uint32", values: "uint32" },
  t: { keys: "uint32", values: "string" },
  objects: { keys: "uint32" },
};

const text = (x: unknown) => x instanceof Uint8Array ? hex(x) : JSON.stringify(x);

/** Every pair of every table (dupsort: every value), as text: the comparison of two states. */
function dump(env: Env, skip: string[] = []): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const names = env.tables().filter((t) => !skip.includes(t.name));
  env.read((txn) => {
    for (const e of names) {
      const t = env.table(e.name, { create: false, ...KINDS[e.name] });
      const rows: string[] = [];
      for (const { key, value } of txn.range(t)) rows.push(`${text(key)}=${text(value)}`);
      out.set(e.name, rows);
    }
    const main: string[] = [];
    const all = new Set(env.tables().map((e) => e.name));
    for (const { key, value } of txn.range(env.table(null))) {
      if (!all.has(new TextDecoder().decode(key as Uint8Array))) main.push(`${text(key)}=${text(value)}`);
    }
    out.set("(main)", main);
  });
  return out;
}

function assertSameContent(a: Map<string, string[]>, b: Map<string, string[]>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), "the same tables");
  for (const [name, rows] of a) {
    const other = b.get(name)!;
    assert.equal(other.length, rows.length, `${name}: ${other.length} pairs, expected ${rows.length}`);
    for (let i = 0; i < rows.length; i++) assert.equal(other[i], rows[i], `${name}: pair ${i} differs`);
  }
}

function dataFile(p: string): string {
  return path.join(p, "mdbx.dat");
}

function leftovers(p: string): string[] {
  return fs.readdirSync(p).filter((f) => f.includes("rebuild") || f.endsWith("-paused"));
}

test("rebuild: the new file holds exactly the database, compacted, every table's leaves in key order", async () => {
  using t = tempEnv({}, "turbomdbx-rebuild-");
  const { env } = t;
  const rnd = prng(seed);
  fragment(env, rnd, 6000);
  const before = dump(env);
  const tables = ["plain", "ints", "dups", "big"].map((n) => env.table(n, { create: false, ...KINDS[n] }));
  const disorder = tables.reduce((s, tb) => s + env.leafOrder(tb).outOfOrder, 0);
  assert.ok(disorder > 0, `random inserts leave leaves out of key order (seed ${seed})`);
  const sizeBefore = fs.statSync(dataFile(t.path)).size;
  const inodeBefore = fs.statSync(dataFile(t.path)).ino;

  const phases = new Set<string>();
  let lastCopied = -1;
  const r = await env.rebuild({
    progressIntervalMs: 1,
    onProgress: (p) => {
      phases.add(p.phase);
      assert.ok(p.pagesCopied >= lastCopied, "progress never goes back");
      lastCopied = p.pagesCopied;
    },
  });
  assert.ok(phases.has("done"), `the last report is "done": ${[...phases]}`);
  assert.ok(lastCopied > 0, "pages were reported copied");
  assert.ok(r.rounds >= 1 && r.stallMs >= 0 && r.seconds > 0, JSON.stringify(r));
  assert.notEqual(fs.statSync(dataFile(t.path)).ino, inodeBefore, "a new file");
  assert.ok(fs.statSync(dataFile(t.path)).size < sizeBefore, "smaller than the fragmented file");
  assert.deepEqual(leftovers(t.path), []);

  // the same handles read the new file, with the same content, in key order
  assertSameContent(before, dump(env));
  for (const tb of tables) assert.equal(env.leafOrder(tb).outOfOrder, 0, `${tb} leaves in key order`);
  // as small as mdbx_copy -c makes it
  const copy = path.join(t.dir, "copy.mdbx");
  env.copy(copy, { compact: true });
  assert.ok(fs.statSync(dataFile(t.path)).size <= fs.statSync(copy).size * 1.01 + 65536);
  fs.rmSync(copy);
  env.write((txn) => txn.put(tables[0], "after", "rebuild"));
  env.close();
  assertStockChk(t.path);
  const again = open(t.path);
  try {
    assert.deepEqual(again.read((txn) => txn.get(again.table("plain"), "after")), new TextEncoder().encode("rebuild"));
  } finally {
    again.close();
  }
});

test("rebuild: a reader keeps its snapshot of the old file; the old file closes when it ends", async () => {
  using t = tempEnv({}, "turbomdbx-rebuild-");
  const { env } = t;
  const tb = env.table("t", { keys: "uint32", values: "string" });
  env.write((txn) => {
    for (let i = 0; i < 2000; i++) txn.put(tb, i, `v${i}`);
  });
  const old = env.beginRead();
  env.write((txn) => txn.put(tb, 1, "changed"));
  await env.rebuild();
  assert.equal(old.get(tb, 1), "v1", "the old snapshot");
  assert.equal(old.get(tb, 1999), "v1999");
  assert.equal(env.read((txn) => txn.get(tb, 1)), "changed", "new transactions read the new file");
  // the old file is unlinked but still open for the reader
  const oldFileOpen = () =>
    fs.readdirSync("/proc/self/fd").some((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dataFile(t.path)} (deleted)`);
      } catch {
        return false;
      }
    });
  const procFs = fs.existsSync("/proc/self/fd");
  if (procFs) assert.ok(oldFileOpen(), "the old file stays open while its reader lives");
  old.end();
  // closed (on a thread of its own) once its last transaction ended
  for (let i = 0; procFs && i < 200 && oldFileOpen(); i++) await new Promise((r) => setTimeout(r, 10));
  if (procFs) assert.ok(!oldFileOpen(), "the old file is closed");
});

test("rebuild: a table with a get() cache answers exactly after the switch", async () => {
  using t = tempEnv({}, "turbomdbx-rebuild-");
  const { env } = t;
  const tb = env.table("objects", { keys: "uint32", cache: true });
  const v = (i: number, g: number) => new Uint8Array(24 + (i % 50)).fill((i + g) & 0xff);
  env.write((txn) => {
    for (let i = 0; i < 5000; i++) txn.put(tb, i, v(i, 0));
  });
  env.read((txn) => {
    for (let i = 0; i < 5000; i++) txn.get(tb, i); // fill the cache with locations in the old file
  });
  assert.ok(tb.cacheStats()!.entries > 1000);
  await env.rebuild();
  env.write((txn) => {
    for (let i = 0; i < 5000; i += 3) txn.put(tb, i, v(i, 1));
  });
  for (let pass = 0; pass < 2; pass++) {
    env.read((txn) => {
      for (let i = 0; i < 5000; i++) assert.deepEqual(txn.get(tb, i), v(i, i % 3 === 0 ? 1 : 0), `key ${i}`);
    });
  }
  assert.ok(tb.cacheStats()!.hits > 0, "the cache works on the new file");
});

/** A child process running test/children/rebuild_child.ts; collects its numbered lines. */
interface Child {
  proc: ChildProcess;
  acked: number[];
  lines: string[];
  ready: Promise<number>;
  closed: Promise<{ code: number | null; signal: string | null; stderr: string }>;
}

function startChild(mode: string, args: string[], env: Record<string, string> = {}, shell?: string): Child {
  const { cmd, args: a } = runtimeCommand(childScript, [mode, ...args]);
  const proc = shell
    ? spawn("bash", ["-c", `${shell}; exec "$0" "$@"`, cmd, ...a], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    })
    : spawn(cmd, a, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const c: Child = { proc, acked: [], lines: [], ready: null!, closed: null! };
  let buf = "", stderr = "";
  let onReady: (n: number) => void;
  c.ready = new Promise((r) => onReady = r);
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (/^\d+$/.test(line)) c.acked.push(Number(line));
      else {
        c.lines.push(line);
        const m = /^ready (\d+)$/.exec(line);
        if (m) onReady(Number(m[1]));
      }
    }
  });
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (chunk: string) => stderr += chunk);
  c.closed = new Promise((resolve) => proc.on("close", (code, signal) => resolve({ code, signal, stderr })));
  return c;
}

test("rebuild: writes of this process and of another one go on during the rebuild and none is lost", async () => {
  const dir = tempDir("turbomdbx-rebuild-");
  const db = path.join(dir, "db");
  try {
    const env = open(db, { sync: "lazy" });
    const rnd = prng(seed ^ 0x5eed);
    fragment(env, rnd, 8000);
    const base = dump(env);
    const bank = env.table("bank", { keys: "uint32", values: "uint32" });
    const mine = env.table("mine", { keys: "uint32", values: "string" });
    env.write((txn) => {
      for (let i = 0; i < 100; i++) txn.put(bank, i, 1000);
    });
    const stop = path.join(dir, "stop");
    const writer = startChild("writer", [db, stop]);
    await writer.ready;

    // this process: transfers that keep the total, and numbered writes; readers audit the total
    let running = true, mineCount = 0, audits = 0, transfers = 0;
    const model = new Array<number>(100).fill(1000); // the bank as this process's acknowledged commits left it
    const local = (async () => {
      while (running) {
        const a = Math.floor(rnd() * 100), b = Math.floor(rnd() * 100), x = Math.floor(rnd() * 50);
        env.write((txn) => {
          const va = txn.get(bank, a)!;
          assert.equal(va, model[a], "the database agrees with the model before each transfer");
          if (va >= x && a !== b) {
            txn.put(bank, a, va - x);
            txn.put(bank, b, txn.get(bank, b)! + x);
          }
          txn.put(mine, mineCount, `mine ${mineCount}`);
        });
        if (model[a] >= x && a !== b) {
          model[a] -= x;
          model[b] += x;
        }
        mineCount++;
        transfers++;
        env.read((txn) => {
          let sum = 0;
          for (const { value } of txn.range(bank)) sum += value;
          assert.equal(sum, 100_000, "every snapshot keeps the total");
          audits++;
        });
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    // let some commits happen first, rebuild, and let the child commit after the switch too
    await new Promise((r) => setTimeout(r, 100));
    const result = await env.rebuild();
    const childAfterSwitch = writer.acked.length;
    await new Promise((r) => setTimeout(r, 200));
    running = false;
    await local;
    fs.writeFileSync(stop, "");
    const end = await writer.closed;
    assert.equal(end.code, 0, end.stderr);
    assert.ok(writer.acked.length > childAfterSwitch, "the child kept committing after the switch");
    assert.ok(result.keysReplayed > 0, "commits made during the copy were replayed");
    assert.ok(transfers > 5 && audits > 5);

    // every acknowledged commit is there, in the new file, for this process and for a new one
    const lastChild = writer.acked[writer.acked.length - 1];
    base.delete("(main)");
    const verify = (e2: Env) => {
      const child = e2.table("child", { keys: "uint32", values: "string", create: false });
      const meta = e2.table("meta", { keys: "string", values: "uint32", create: false });
      const m2 = e2.table("mine", { keys: "uint32", values: "string", create: false });
      e2.read((txn) => {
        assert.equal(txn.get(meta, "child"), lastChild);
        for (const n of writer.acked) assert.equal(txn.get(child, n), childValue(n), `child commit ${n}`);
        assert.equal(txn.count(child), writer.acked.length, "nothing but the child's commits");
        const bankNow = e2.table("bank", { keys: "uint32", values: "uint32", create: false });
        for (let i = 0; i < 100; i++) assert.equal(txn.get(bankNow, i), model[i], `account ${i} as the model has it`);
        for (let i = 0; i < mineCount; i++) assert.equal(txn.get(m2, i), `mine ${i}`);
        assert.equal(txn.count(m2), mineCount);
      });
      // the tables nobody wrote during the rebuild are unchanged
      const now = dump(e2, ["bank", "mine", "child", "meta"]);
      now.delete("(main)");
      assertSameContent(base, now);
    };
    verify(env);
    env.close();
    const fresh = open(db);
    try {
      verify(fresh);
    } finally {
      fresh.close();
    }
    assertStockChk(db);
    assert.deepEqual(leftovers(db), []);
  } finally {
    removeDir(dir);
  }
}, { timeout: 120_000 });

test("rebuild: concurrent transactions (group commit) go on across the switch, none lost", async () => {
  using t = tempEnv({}, "turbomdbx-rebuild-");
  const { env } = t;
  fragment(env, prng(seed + 8), 6000);
  const acc = env.table("bank", { keys: "uint32", values: "uint32" });
  const log = env.table("mine", { keys: "uint32", values: "string" });
  env.write((txn) => {
    for (let i = 0; i < 50; i++) txn.put(acc, i, 100);
  });
  const rnd = prng(seed + 9);
  let running = true, next = 0;
  const committed: number[] = [];
  const tasks = Array.from({ length: 8 }, async () => {
    while (running) {
      const id = next++;
      await env.transact(async (tx) => {
        const a = Math.floor(rnd() * 50), b = (a + 1 + Math.floor(rnd() * 49)) % 50;
        const va = (await tx.get(acc, a))!, vb = (await tx.get(acc, b))!;
        if (va > 0) {
          tx.put(acc, a, va - 1);
          tx.put(acc, b, vb + 1);
        }
        tx.put(log, id, `txn ${id}`);
      });
      committed.push(id);
      await new Promise((r) => setTimeout(r, 0)); // let timers (the rebuild's polling) run
    }
  });
  await new Promise((r) => setTimeout(r, 20));
  const before = committed.length;
  await env.rebuild();
  const atSwitch = committed.length;
  await new Promise((r) => setTimeout(r, 100));
  running = false;
  await Promise.all(tasks);
  assert.ok(atSwitch > before && committed.length > atSwitch, `commits during and after (${before}, ${atSwitch})`);
  env.read((txn) => {
    let sum = 0;
    for (const { value } of txn.range(acc)) sum += value;
    assert.equal(sum, 5000, "transfers kept the total");
    for (const id of committed) assert.equal(txn.get(log, id), `txn ${id}`, `transaction ${id}`);
    assert.equal(txn.count(log), committed.length);
  });
});

test("rebuild: cancelled through its AbortSignal, the database is as it was", async () => {
  using t = tempEnv({}, "turbomdbx-rebuild-");
  const { env } = t;
  fragment(env, prng(seed + 1), 20000);
  const before = dump(env);
  const ino = fs.statSync(dataFile(t.path)).ino;
  const ac = new AbortController();
  const reason = new Error("stop");
  const p = env.rebuild({ signal: ac.signal, progressIntervalMs: 1, onProgress: () => ac.abort(reason) });
  await assert.rejects(p, (e) => e === reason);
  assert.equal(fs.statSync(dataFile(t.path)).ino, ino, "the same file");
  assert.deepEqual(leftovers(t.path), [], "no partial copy left");
  assertSameContent(before, dump(env));
  // an aborted signal is refused at once
  await assert.rejects(env.rebuild({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  // and a later rebuild works
  await env.rebuild();
  assertSameContent(before, dump(env));
});

test("rebuild: a new file over maxSize fails with MDBX_MAP_FULL and changes nothing", async () => {
  using t = tempEnv({}, "turbomdbx-rebuild-");
  const { env } = t;
  fragment(env, prng(seed + 2), 4000);
  const before = dump(env);
  const ino = fs.statSync(dataFile(t.path)).ino;
  await assert.rejects(env.rebuild({ maxSize: 64 * 1024 }), (e) => {
    assert.ok(e instanceof MdbxError && e.codeName === "MDBX_MAP_FULL", String(e));
    assert.match(e.message, /did not fit.*as it was/);
    return true;
  });
  assert.equal(fs.statSync(dataFile(t.path)).ino, ino);
  assert.deepEqual(leftovers(t.path), []);
  assertSameContent(before, dump(env));
  env.write((txn) => txn.put(env.table("plain"), "still", "writable"));
});

test("rebuild: a second rebuild at the same time is refused with MDBX_BUSY", async () => {
  using t = tempEnv({}, "turbomdbx-rebuild-");
  const { env } = t;
  fragment(env, prng(seed + 3), 20000);
  const first = env.rebuild();
  await assert.rejects(env.rebuild(), (e) => e instanceof MdbxError && e.codeName === "MDBX_BUSY");
  await first;
});

test(
  "rebuild: disk full (RLIMIT_FSIZE) in the rebuilding process leaves the database as it was",
  async (): Promise<void> => {
    if (process.platform === "win32") return;
    using t = tempEnv({}, "turbomdbx-rebuild-");
    const { env } = t;
    fragment(env, prng(seed + 4), 8000);
    const before = dump(env);
    const ino = fs.statSync(dataFile(t.path)).ino;
    env.close();
    const size = fs.statSync(dataFile(t.path)).size;
    // files may not grow past a quarter of the database: the copy hits EFBIG (SIGXFSZ ignored)
    const blocks = Math.max(8, Math.floor(size / 4 / 1024));
    const c = startChild("rebuild", [t.path], {}, `trap '' XFSZ; ulimit -f ${blocks}`);
    const end = await c.closed;
    assert.equal(end.code, 0, end.stderr);
    assert.deepEqual(c.lines, ["error MDBX_EFBIG"], end.stderr);
    assert.equal(fs.statSync(dataFile(t.path)).ino, ino);
    assert.deepEqual(leftovers(t.path), []);
    const again = open(t.path);
    try {
      assertSameContent(before, dump(again));
    } finally {
      again.close();
    }
    assertStockChk(t.path);
  },
  { timeout: 60_000 },
);

/** After a kill: the database opens, is clean for stock mdbx_chk, and holds every acknowledged commit. */
function checkAfterKill(db: string, acked: number[], base: Map<string, string[]>, what: string): void {
  const env = open(db);
  try {
    assert.deepEqual(leftovers(db), [], `${what}: open cleaned up`);
    const child = env.table("child", { keys: "uint32", values: "string", create: false });
    const meta = env.table("meta", { keys: "string", values: "uint32", create: false });
    env.read((txn) => {
      const last = txn.get(meta, "child") ?? 0;
      const lastAcked = acked.length ? acked[acked.length - 1] : 0;
      assert.ok(last >= lastAcked, `${what}: last commit ${last} >= acknowledged ${lastAcked}`);
      for (let n = 1; n <= last; n++) assert.equal(txn.get(child, n), childValue(n), `${what}: commit ${n}`);
      assert.equal(txn.count(child), last, `${what}: nothing more`);
    });
    const now = dump(env, ["child", "meta"]);
    now.delete("(main)");
    assertSameContent(base, now);
  } finally {
    env.close();
  }
  assertStockChk(db);
}

test("rebuild: kill -9 of the rebuilding process at random moments loses nothing", async () => {
  if (process.platform === "win32") return;
  const dir = tempDir("turbomdbx-rebuild-");
  const db = path.join(dir, "db");
  try {
    const env = open(db, { sync: "lazy" });
    fragment(env, prng(seed + 5), 3000);
    const base = dump(env);
    base.delete("(main)");
    env.close();
    const rnd = prng(seed + 6);
    const runs = SOAK ? 60 : 6;
    for (let i = 0; i < runs; i++) {
      const c = startChild("rebuilder", [db]);
      await c.ready;
      const delay = Math.floor(rnd() * 700);
      await new Promise((r) => setTimeout(r, delay));
      c.proc.kill("SIGKILL");
      const end = await c.closed;
      assert.equal(end.signal, "SIGKILL", `run ${i} (seed ${seed}): the child ended by itself: ${end.stderr}`);
      checkAfterKill(db, c.acked, base, `run ${i}, killed after ${delay} ms (seed ${seed})`);
    }
  } finally {
    removeDir(dir);
  }
}, { timeout: 240_000 });

test("rebuild: kill -9 in the middle of the switch: the next open finishes it", async () => {
  if (process.platform === "win32") return;
  for (const step of [1, 2]) {
    const dir = tempDir("turbomdbx-rebuild-");
    const db = path.join(dir, "db");
    try {
      const env = open(db, { sync: "lazy" });
      fragment(env, prng(seed + 7), 2000);
      const base = dump(env);
      base.delete("(main)");
      // a process that stays on the old file across the kill, and must move by itself
      const stays = env.table("child", { keys: "uint32", values: "string" });
      env.write((txn) => txn.put(stays, 1, childValue(1)));
      env.write((txn) => txn.put(env.table("meta", { keys: "string", values: "uint32" }), "child", 1));
      const c = startChild("rebuilder", [db], { TURBOMDBX_REBUILD_PAUSE: String(step) });
      await c.ready;
      const flag = dataFile(db) + "-paused";
      for (let i = 0; i < 3000 && !fs.existsSync(flag); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(fs.existsSync(flag), `the child reached step ${step} of the switch`);
      c.proc.kill("SIGKILL");
      const end = await c.closed;
      assert.equal(end.signal, "SIGKILL");
      fs.rmSync(flag);
      // this process: its next write moves it to whatever the database is now, and is kept
      const acked = [...c.acked];
      const next = (acked.length ? acked[acked.length - 1] : 1) + 1;
      env.write((txn) => {
        txn.put(stays, next, childValue(next));
        txn.put(env.table("meta", { keys: "string", values: "uint32" }), "child", next);
      });
      acked.push(next);
      env.close();
      checkAfterKill(db, acked, base, `killed at switch step ${step} (seed ${seed})`);
    } finally {
      removeDir(dir);
    }
  }
}, { timeout: 120_000 });

test("rebuild: refused on a read-only or sticky-threads Env; deleteDatabase removes turbomdbx's files too", async () => {
  const dir = tempDir("turbomdbx-rebuild-");
  const db = path.join(dir, "db");
  try {
    open(db).close();
    const ro = open(db, { readOnly: true });
    await assert.rejects(ro.rebuild(), (e) => e instanceof MdbxError && e.codeName === "MDBX_EACCES");
    ro.close();
    const sticky = open(db, { stickyThreads: true });
    await assert.rejects(sticky.rebuild(), (e) => e instanceof MdbxError && /stickyThreads/.test(e.message));
    sticky.close();
    assert.ok(fs.existsSync(dataFile(db) + "-turbomdbx"), "the sidecar exists");
    const { deleteDatabase } = await import("../mod.ts");
    assert.equal(deleteDatabase(db), true);
    assert.equal(fs.existsSync(db), false, "the folder is gone");
  } finally {
    removeDir(dir);
  }
});
