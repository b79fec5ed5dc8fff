/**
 * Workers and the get() cache: cached tables used from several Workers of one
 * process at once, which share one native environment and so one native cache
 * (docs/workers.md, "The get() cache"; docs/cache.md, "Threads").
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { tempEnv } from "./helpers.ts";
import { test } from "./shim.ts";
import { closeAll, DbWorker, workers } from "./worker_rpc.ts";

test(
  "cached reads in several Workers stay exact while another Worker commits to the cached table",
  async () => {
    using t = tempEnv();
    const cached = t.env.table("cached", { keys: "string", values: "uint32", cache: true });
    const nkeys = 300;
    t.env.write((w) => {
      for (let i = 0; i < nkeys; i++) w.put(cached, `k${i}`, 0);
    });
    const ws = await workers(3, t.path);
    try {
      const [writer, ...readers] = ws;
      const started = readers.map((r) =>
        new Promise<void>((ok) => r.call("get", { keys: ["k0"], cache: true }).then(() => ok()))
      );
      await Promise.all(started);
      const reads = readers.map((r) =>
        r.call<{ reads: number; bad: number }>("readWhile", { keys: nkeys, cache: true })
      );
      for (let i = 1; i <= 50; i++) {
        await writer.call("put", { entries: Array.from({ length: nkeys }, (_, j) => [`k${j}`, i]), cache: true });
        // the main thread reads through the same native cache meanwhile
        t.env.read((r) => {
          const first = r.get(cached, "k0");
          for (let j = 0; j < nkeys; j += 7) assert.equal(r.get(cached, `k${j}`), first);
        });
      }
      await Promise.all(readers.map((r) => r.call("stop")));
      for (const r of await Promise.all(reads)) {
        assert.ok(r.reads > 0);
        assert.equal(r.bad, 0, "a cached read disagreed with its snapshot");
      }
      for (const r of readers) {
        assert.deepEqual(await r.call("get", { keys: ["k0", `k${nkeys - 1}`], cache: true }), [50, 50]);
      }
    } finally {
      await closeAll(ws);
    }
  },
);

test(
  "cached read-modify-writes from several Workers lose no update",
  async () => {
    using t = tempEnv();
    const cached = t.env.table("cached", { keys: "string", values: "uint32", cache: true });
    const ws = await workers(3, t.path);
    try {
      await Promise.all(ws.map((w) => w.call("incr", { n: 100, keys: ["a", "b"], cache: true })));
      t.env.read((r) => {
        assert.equal(r.get(cached, "a"), 300);
        assert.equal(r.get(cached, "b"), 300);
      });
    } finally {
      await closeAll(ws);
    }
  },
);

type Diff = { rounds: number; compared: number; diffs: number; details: string[]; hits: number };

test(
  "Workers writing and reading one cached table at once: every cached read equals the uncached one (differential)",
  async () => {
    using t = tempEnv();
    const cached = t.env.table("cached", { keys: "string", values: "uint32", cache: true });
    const nkeys = 400;
    t.env.write((w) => {
      for (let i = 0; i < nkeys; i++) w.put(cached, `k${i}`, i);
    });
    const ws = await workers(3, t.path);
    try {
      const runs = ws.map((w, i) => w.call<Diff>("diffLoop", { keys: nkeys, seed: 1000 + i, min: 30 }));
      // the main thread reads through the same native cache meanwhile, compared the same way
      let compared = 0, diffs = 0;
      for (let round = 0; round < 40; round++) {
        t.env.read((r) => {
          for (let i = 0; i < nkeys; i += 3) {
            compared++;
            if (r.get(cached, `k${i}`) !== r.getWithCount(cached, `k${i}`)?.value) diffs++;
          }
        });
        await new Promise((r) => setTimeout(r, 1));
      }
      await Promise.all(ws.map((w) => w.call("stop")));
      const res = await Promise.all(runs);
      for (const r of res) {
        assert.equal(r.diffs, 0, `cached reads disagreed with uncached ones: ${r.details.join("; ")}`);
        assert.ok(r.rounds >= 30 && r.compared > 30 * 300, `too few comparisons: ${JSON.stringify(r)}`);
      }
      assert.equal(diffs, 0, "the main thread's cached reads disagreed with uncached ones");
      assert.ok(compared > 0);
      // the cache was used, not bypassed
      assert.ok(res.reduce((n, r) => n + r.hits, 0) > 0, "no Worker's read ever hit the cache");
    } finally {
      await closeAll(ws);
    }
  },
);

test(
  "a Worker terminated while others read and write through the shared cache: the others stay exact",
  async () => {
    using t = tempEnv();
    const cached = t.env.table("cached", { keys: "string", values: "uint32", cache: true });
    const nkeys = 300;
    t.env.write((w) => {
      for (let i = 0; i < nkeys; i++) w.put(cached, `k${i}`, i);
    });
    const ws = await workers(3, t.path);
    const [victim, ...rest] = ws;
    try {
      const runs = rest.map((w, i) => w.call<Diff>("diffLoop", { keys: nkeys, seed: 2000 + i, min: 20 }));
      // the victim is in the middle of its own cached reads and writes when it is terminated
      await new Promise<void>((ok) => {
        victim.call("diffLoop", { keys: nkeys, seed: 1999, min: 1_000_000 }, () => ok()).catch(() => {});
      });
      await new Promise((r) => setTimeout(r, 50));
      victim.terminate();
      for (let round = 0; round < 20; round++) {
        t.env.read((r) => {
          for (let i = 0; i < nkeys; i += 5) {
            assert.equal(r.get(cached, `k${i}`), r.getWithCount(cached, `k${i}`)?.value);
          }
        });
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(rest.map((w) => w.call("stop")));
      for (const r of await Promise.all(runs)) {
        assert.equal(r.diffs, 0, `cached reads disagreed with uncached ones: ${r.details.join("; ")}`);
        assert.ok(r.rounds >= 20);
      }
      // a write from this thread after all that, read back through the cache
      t.env.write((w) => w.put(cached, "k1", 12345));
      t.env.read((r) => assert.equal(r.get(cached, "k1"), 12345));
      assert.deepEqual(await rest[0].call("get", { keys: ["k1"], cache: true }), [12345]);
    } finally {
      await Promise.all(rest.map((w) => w.call("close").catch(() => {})));
      for (const w of ws) w.terminate();
    }
  },
);

test("one cache mode per database per process: a Worker asking for the other one gets a TypeError", async () => {
  using t = tempEnv();
  t.env.table("cached", { keys: "string", values: "uint32", cache: { shared: false } });
  const w = new DbWorker();
  try {
    await w.call("open", { path: t.path });
    // the Worker's table asks for the default (shared) mode: refused with the reason
    await assert.rejects(w.call("get", { keys: ["a"], cache: true }), /cache shared: true conflicts/);
  } finally {
    await w.call("close").catch(() => {});
    w.terminate();
  }
});

test(
  "a live rebuild's switch with cached tables in several Workers: each new environment gets one new cache, still exact",
  async () => {
    using t = tempEnv();
    const cached = t.env.table("cached", { keys: "string", values: "uint32", cache: true });
    const nkeys = 300;
    t.env.write((w) => {
      for (let i = 0; i < nkeys; i++) w.put(cached, `k${i}`, i);
    });
    const ws = await workers(2, t.path);
    try {
      const sidecar = path.join(t.path, "mdbx.tmcache");
      const data = path.join(t.path, "mdbx.dat");
      const [dataIno, sidecarIno] = [fs.statSync(data).ino, fs.statSync(sidecar).ino];
      const runs = ws.map((w, i) => w.call<Diff>("diffLoop", { keys: nkeys, seed: 3000 + i, min: 20 }));
      await t.env.rebuild();
      for (let round = 0; round < 10; round++) {
        t.env.read((r) => {
          for (let i = 0; i < nkeys; i += 3) {
            assert.equal(r.get(cached, `k${i}`), r.getWithCount(cached, `k${i}`)?.value);
          }
        });
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(ws.map((w) => w.call("stop")));
      for (const r of await Promise.all(runs)) {
        assert.equal(r.diffs, 0, `cached reads disagreed with uncached ones: ${r.details.join("; ")}`);
      }
      assert.notEqual(fs.statSync(data).ino, dataIno, "the database is a new file");
      assert.notEqual(fs.statSync(sidecar).ino, sidecarIno, "the new file's environment has a new sidecar");
      // after the switch everyone reads the others' writes through the cache of the new file
      t.env.write((w) => w.put(cached, "k0", 777));
      for (const w of ws) assert.deepEqual(await w.call("get", { keys: ["k0"], cache: true }), [777]);
      t.env.read((r) => {
        assert.equal(r.get(cached, "k0"), 777);
        assert.equal(r.get(cached, "k0"), 777);
      });
      assert.ok((cached.cacheStats()?.hits ?? 0) > 0, "the main thread's reads never hit the new cache");
    } finally {
      await closeAll(ws);
    }
  },
);
