/**
 * The get() cache shared by every process that uses a database (issue 11,
 * docs/cache.md "Several processes and threads"). Real child processes
 * (test/children/cache_shared.ts) write and read one database whose table "t"
 * is cached in the sidecar beside the lock file; every cached read is compared
 * with the uncached read of the same transaction, byte for byte, and must
 * never differ: with writers in two processes, readers in three, a stock
 * libmdbx writer (mdbx_stock_write) and a turbomdbx writer without the cache
 * (neither publishes its retirements) interleaved, and with writers killed
 * (kill -9) in the middle of their commits.
 *
 * TURBOMDBX_SEED replays the data; the interleaving of the processes is up to
 * the machine. TURBOMDBX_SOAK=1 runs longer.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { open, type Table } from "../mod.ts";
import { assertStockChk, removeDir, runtimeCommand, tempDir } from "./helpers.ts";
import { Differ, int, makeKeys, makeValue, prng, valueSize } from "./children/cache_data.ts";

const SOAK = process.env.TURBOMDBX_SOAK === "1";
const SEED_ENV = process.env.TURBOMDBX_SEED;
type Bin = Table<"binary", "binary">;

function seedFor(salt: number): number {
  return SEED_ENV !== undefined ? Number(SEED_ENV) >>> 0 : (Date.now() ^ (salt * 0x9e3779b1)) >>> 0;
}

interface Child {
  proc: ReturnType<typeof spawn>;
  done: Promise<{ code: number | null; signal: string | null; out: string; err: string }>;
  /** Resolves when the child printed `line`. */
  saw(line: string): Promise<void>;
}

function child(args: string[]): Child {
  const file = fileURLToPath(new URL("./children/cache_shared.ts", import.meta.url));
  const { cmd, args: argv } = runtimeCommand(file, args);
  const proc = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  const waiters: { line: string; resolve: () => void }[] = [];
  proc.stdout!.setEncoding("utf8");
  proc.stderr!.setEncoding("utf8");
  proc.stdout!.on("data", (s: string) => {
    out += s;
    for (const w of waiters) if (out.includes(w.line)) w.resolve();
  });
  proc.stderr!.on("data", (s: string) => err += s);
  return {
    proc,
    done: new Promise((resolve) => proc.on("close", (code, signal) => resolve({ code, signal, out, err }))),
    saw: (line) => new Promise((resolve) => out.includes(line) ? resolve() : waiters.push({ line, resolve })),
  };
}

// deno-lint-ignore no-explicit-any
type Summary = Record<string, any>;

async function summaryOf(c: Child, what: string): Promise<Summary> {
  const { code, out, err } = await c.done;
  assert.equal(code, 0, `${what} failed: ${err}`);
  const m = /^done (.*)$/m.exec(out);
  assert.ok(m, `no summary from ${what}: ${out} ${err}`);
  return JSON.parse(m[1]);
}

const stockWriter = fileURLToPath(new URL("../zig-out/bin/mdbx_stock_write", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A database folder with table "t" holding n keys (loaded through a shared cache). */
function makeDb(seed: number, n: number): { dir: string; db: string } {
  const dir = tempDir("turbomdbx-cache-shared-");
  const db = path.join(dir, "db");
  const env = open(db, { maxReaders: 126 });
  const rng = prng(seed);
  const keys = makeKeys(n, seed);
  const t: Bin = env.table("t", { cache: true });
  env.write((x) => {
    for (let i = 0; i < n; i++) x.put(t, keys[i], makeValue(rng, valueSize(rng), 0));
  });
  assert.equal(t.cacheStats()!.shared, true, "the cache is shared (Linux, a writable folder)");
  env.close();
  return { dir, db };
}

test(
  "writers in 2 processes, cached readers in 3, a stock libmdbx writer and an uncached writer interleaved: 0 differences",
  async () => {
    const seed = seedFor(11);
    const N = 2000, ms = SOAK ? 30_000 : 4000;
    const { dir, db } = makeDb(seed, N);
    try {
      const common = [String(ms), String(seed), String(N)];
      const writers = [1, 2].map((id) => child([db, "writer", ...common, String(id)]));
      const readers = [0, 1, 2].map((id) => child([db, "reader", ...common, String(id)]));
      // meanwhile, writers that publish nothing: the stock library (its own tables, reusing freed pages) and a
      // turbomdbx process without the cache (table "t" itself)
      let stockRuns = 0;
      const start = Date.now();
      await sleep(ms / 4);
      const foreign = child([db, "foreign", String(ms / 4), String(seed), String(N), "3"]);
      while (Date.now() - start < (ms * 3) / 4) {
        const r = spawnSync(stockWriter, [db], { encoding: "utf8" });
        assert.equal(r.status, 0, `mdbx_stock_write failed: ${r.stdout} ${r.stderr}`);
        stockRuns++;
        await sleep(ms / 8);
      }
      const ws = await Promise.all(writers.map((w, i) => summaryOf(w, `writer ${i + 1}`)));
      const rs = await Promise.all(readers.map((r, i) => summaryOf(r, `reader ${i}`)));
      const fs = await summaryOf(foreign, "the uncached writer");
      const info = JSON.stringify({ seed, stockRuns, ws, rs, fs: { commits: fs.commits } });
      for (const s of [...ws, ...rs]) assert.equal(s.mismatches, 0, `${s.message}\n${info}`);
      for (const s of [...ws, ...rs]) assert.equal(s.shared, true, `every process shares the cache: ${info}`);
      assert.ok(stockRuns >= 2 && fs.commits > 10, `the foreign writers ran: ${info}`);
      for (const w of ws) assert.ok(w.commits > 50, `a writer committed too little: ${info}`);
      for (const r of rs) {
        assert.ok(r.compared > 5000, `a reader compared too little: ${info}`);
        assert.ok(r.stamps >= 10, `a reader hardly saw the writers' commits: ${info}`);
        // the writers' commits are published, not whole-table drops: most reads are hits
        assert.ok(r.hits > 0.3 * (r.hits + r.misses), `a reader's cache hardly hit: ${info}`);
      }
      // the database is untouched by the sidecar: stock mdbx_chk passes
      assertStockChk(db);
      assert.ok(existsSync(path.join(db, "mdbx.tmcache")), "the sidecar sits beside the lock file");
    } finally {
      removeDir(dir);
    }
  },
  { timeout: SOAK ? 300_000 : 120_000 },
);

test("a writer killed (kill -9) in the middle of its commits: the other processes keep reading exactly", async () => {
  const seed = seedFor(12);
  const N = 1500, ms = SOAK ? 20_000 : 5000;
  const { dir, db } = makeDb(seed, N);
  try {
    const readers = [0, 1].map((id) => child([db, "reader", String(ms), String(seed), String(N), String(id)]));
    const rng = prng(seed);
    let kills = 0;
    const start = Date.now();
    while (Date.now() - start < ms * 0.6) {
      const k = child([db, "killme", String(seed + kills), String(N)]);
      await k.saw("ready");
      await sleep(int(rng, 20, 250)); // it commits in a tight loop: most of its time is inside a commit
      k.proc.kill("SIGKILL");
      const { signal } = await k.done;
      assert.equal(signal, "SIGKILL");
      kills++;
    }
    // a writer that starts after the kills commits and publishes as usual
    const w = child([db, "writer", String(ms * 0.3), String(seed), String(N), "1"]);
    const ws = await summaryOf(w, "the writer after the kills");
    const rs = await Promise.all(readers.map((r, i) => summaryOf(r, `reader ${i}`)));
    const info = JSON.stringify({ seed, kills, ws, rs });
    for (const s of [ws, ...rs]) assert.equal(s.mismatches, 0, `${s.message}\n${info}`);
    assert.ok(kills >= 3 && ws.commits > 20, info);
    for (const r of rs) assert.ok(r.hits > 0 && r.compared > 2000, info);
    // and this process, opening now, reads exactly through the same sidecar
    const env = open(db, {});
    try {
      const t: Bin = env.table("t", { cache: true });
      const keys = makeKeys(N, seed);
      const differ = new Differ("after the kills");
      env.read((r) => {
        for (const k of keys) differ.check(r, t, k, "after the kills");
      });
      assert.equal(differ.mismatches, 0, differ.message());
      assert.ok(t.cacheStats()!.shared);
    } finally {
      env.close();
    }
    assertStockChk(db);
  } finally {
    removeDir(dir);
  }
}, { timeout: SOAK ? 300_000 : 120_000 });

test("a new process starts warm: entries another process made are hits for it", async () => {
  const seed = seedFor(13);
  const N = 500;
  const { dir, db } = makeDb(seed, N);
  const keys = makeKeys(N, seed);
  const env = open(db, {});
  try {
    const t: Bin = env.table("t", { cache: true });
    env.read((r) => {
      for (const k of keys) r.get(t, k);
    });
    const entries = t.cacheStats()!.entries;
    assert.ok(entries > N / 2, `this process filled the cache: ${entries}`);
    // a reader process reads the same keys: most of its reads are hits at once
    const r = child([db, "reader", "300", String(seed), String(N), "0"]);
    const s = await summaryOf(r, "the reader");
    assert.equal(s.mismatches, 0, s.message);
    assert.ok(s.hits > 0.5 * (s.hits + s.misses), `the new process did not start warm: ${JSON.stringify(s)}`);
  } finally {
    env.close();
    removeDir(dir);
  }
}, { timeout: 60_000 });

test("shared: false and a read-only open give a private cache; one mode per environment", () => {
  const seed = seedFor(14);
  const { dir, db } = makeDb(seed, 100);
  try {
    const keys = makeKeys(100, seed);
    {
      const env = open(db, {});
      const t: Bin = env.table("t", { cache: { shared: false } });
      assert.equal(t.cacheStats()!.shared, false);
      assert.throws(() => env.table("u", { cache: { shared: true } }), { name: "TypeError", message: /shared/ });
      const differ = new Differ("private");
      env.read((r) => {
        for (const k of keys) differ.check(r, t, k, "private");
      });
      assert.equal(differ.mismatches, 0, differ.message());
      assert.ok(t.cacheStats()!.hits > 0);
      env.close();
    }
    {
      const env = open(db, { readOnly: true });
      const t: Bin = env.table("t", { cache: true });
      assert.equal(t.cacheStats()!.shared, false, "a read-only open never writes the sidecar");
      const differ = new Differ("read-only");
      env.read((r) => {
        for (const k of keys) differ.check(r, t, k, "read-only");
      });
      assert.equal(differ.mismatches, 0, differ.message());
      assert.ok(t.cacheStats()!.hits > 0);
      env.close();
    }
    assert.throws(() => {
      const env = open(db, {});
      try {
        env.table("t", { cache: { shared: "yes" as unknown as boolean } });
      } finally {
        env.close();
      }
    }, TypeError);
  } finally {
    removeDir(dir);
  }
});

test("a live rebuild's switch starts a fresh sidecar (a new file for the new data file)", async () => {
  const seed = seedFor(15);
  const N = 300;
  const { dir, db } = makeDb(seed, N);
  const keys = makeKeys(N, seed);
  const env = open(db, {});
  try {
    const t: Bin = env.table("t", { cache: true });
    const differ = new Differ("rebuild");
    env.read((r) => {
      for (const k of keys) differ.check(r, t, k, "before the rebuild");
    });
    const side = path.join(db, "mdbx.tmcache");
    const before = spawnSync("stat", ["-c", "%i", side], { encoding: "utf8" }).stdout.trim();
    await env.rebuild();
    env.read((r) => {
      for (const k of keys) differ.check(r, t, k, "after the rebuild");
    });
    const after = spawnSync("stat", ["-c", "%i", side], { encoding: "utf8" }).stdout.trim();
    assert.equal(differ.mismatches, 0, differ.message());
    assert.ok(before !== "" && after !== "" && before !== after, `the sidecar is a new file: ${before} -> ${after}`);
    assert.ok(t.cacheStats()!.shared && t.cacheStats()!.hits > 0);
    assert.deepEqual(readdirSync(db).filter((f) => f.endsWith(".new")), [], "no temporary sidecar left behind");
  } finally {
    env.close();
    removeDir(dir);
  }
});

test("a cached table renamed, and a new table under the old name: each reads its own values through the cache", () => {
  const seed = seedFor(16);
  const { dir, db } = makeDb(seed, 10);
  const env = open(db, {});
  try {
    const keys = makeKeys(200, seed);
    const rng = prng(seed);
    const a: Bin = env.table("a", { cache: true });
    env.write((x) => {
      for (const k of keys) x.put(a, k, makeValue(rng, int(rng, 4, 100), 1));
    });
    const differ = new Differ("rename");
    env.read((r) => {
      for (const k of keys) differ.check(r, a, k, "before the rename");
    });
    env.write((x) => x.rename(a, "b"));
    const a2: Bin = env.table("a", { cache: true });
    env.write((x) => {
      for (const k of keys) x.put(a2, k, makeValue(rng, int(rng, 4, 100), 2));
    });
    env.read((r) => {
      for (const k of keys) {
        differ.check(r, a, k, "the renamed table");
        differ.check(r, a2, k, "the new table of the old name");
        assert.notDeepEqual(r.get(a, k), r.get(a2, k));
      }
    });
    assert.equal(differ.mismatches, 0, differ.message());
    assert.ok(a.cacheStats()!.hits > 0 && a2.cacheStats()!.hits > 0);
  } finally {
    env.close();
    removeDir(dir);
  }
});
