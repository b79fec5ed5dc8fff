/**
 * Workers: every Env of a database in one process shares one native
 * environment (native/registry.c, docs/workers.md). Real Workers (Deno Web
 * Workers, Bun Web Workers) run test/children/worker_db.ts.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { deleteDatabase, open } from "../mod.ts";
import { fn, scratch } from "../src/core.ts";
import { removeDir, tempDir, tempEnv, throwsMdbx } from "./helpers.ts";
import { runtime, test } from "./shim.ts";
import { closeAll, DbWorker, waitFor, WorkerError, workers } from "./worker_rpc.ts";

/** native/registry.c's counters: [refs of env, entries, recovered txns, recovered refs, exited threads, instance]. */
function registry(h: unknown = null): number[] {
  fn.tm_registry_info(h as never, scratch.f64Bytes);
  return Array.from(scratch.f64.subarray(0, 6));
}

async function rejects(p: Promise<unknown>, codeName: string, message: RegExp): Promise<WorkerError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof WorkerError, `expected a WorkerError, got ${e}`);
    assert.equal(e.codeName, codeName, e.message);
    assert.match(e.message, message);
    return e;
  }
  throw new assert.AssertionError({ message: `expected ${codeName}, nothing was thrown` });
}

test("every Worker loads the same library instance and shares one native environment", async () => {
  using t = tempEnv();
  const before = registry(t.env.unsafeHandle);
  assert.equal(before[0], 1);
  const ws = await workers(2, t.path);
  try {
    const here = registry(t.env.unsafeHandle);
    assert.equal(here[0], 3, "one reference per Env");
    for (const w of ws) {
      const there = await w.call<number[]>("registry");
      assert.equal(there[5], here[5], "the registry's address differs: two copies of the library");
      assert.equal(there[0], 3);
    }
  } finally {
    await closeAll(ws);
  }
  assert.equal(registry(t.env.unsafeHandle)[0], 1);
});

test("several Workers read and write one database at once, with an exact final state", async () => {
  using t = tempEnv();
  const kv = t.env.table("kv", { keys: "string", values: "uint32" });
  const ws = await workers(3, t.path);
  try {
    const n = 150;
    const keys = ["a", "b", "c"];
    const own = ws.map((w, i) =>
      w.call("put", { entries: Array.from({ length: 100 }, (_, j) => [`w${i}-${j}`, j] as [string, number]) })
    );
    const incr = ws.map((w) => w.call("incr", { n, keys }));
    // the main thread writes too, and reads what the Workers see
    for (let i = 0; i < n; i++) {
      t.env.write((w) => {
        for (const k of keys) w.put(kv, k, (w.get(kv, k) ?? 0) + 1);
      });
    }
    await Promise.all([...own, ...incr]);
    const total = (ws.length + 1) * n;
    t.env.read((r) => {
      for (const k of keys) assert.equal(r.get(kv, k), total, `key ${k}`);
      assert.equal(r.count(kv), keys.length + 100 * ws.length);
    });
    for (const w of ws) {
      assert.deepEqual(await w.call("get", { keys: [...keys, "w0-99", "w2-7"] }), [total, total, total, 99, 7]);
    }
  } finally {
    await closeAll(ws);
  }
});

test("options that conflict with the open environment are refused, naming the option and both values", async () => {
  using t = tempEnv({ maxTables: 20, geometry: { upper: "64MiB" } });
  const [w] = await workers(1, t.path, { maxTables: 20 }); // the same value: shares
  try {
    await w.call("close");
    await rejects(
      w.call("open", { path: t.path, options: { maxTables: 30 } }),
      "MDBX_INCOMPATIBLE",
      /maxTables 20.*maxTables 30/,
    );
    await rejects(
      w.call("open", { path: t.path, options: { sync: "durable" } }),
      "MDBX_INCOMPATIBLE",
      /sync "lazy".*sync "durable"/,
    );
    await rejects(
      w.call("open", { path: t.path, options: { writeMap: true } }),
      "MDBX_INCOMPATIBLE",
      /writeMap false.*writeMap true/,
    );
    await rejects(
      w.call("open", { path: t.path, options: { geometry: { upper: "128MiB" } } }),
      "MDBX_INCOMPATIBLE",
      /geometry\.upper 67108864.*geometry\.upper 134217728/,
    );
    await rejects(
      w.call("open", { path: t.path, options: { stickyThreads: true } }),
      "MDBX_INCOMPATIBLE",
      /stickyThreads false/,
    );
    // nothing of the refused opens is left behind
    assert.equal(registry(t.env.unsafeHandle)[0], 1);
    // accede takes the environment as it is; readOnly: true makes a read-only Env over the writable one
    assert.deepEqual(await w.call("open", { path: t.path, options: { accede: true, maxTables: 5 } }), {
      readOnly: false,
    });
    await w.call("close");
    assert.deepEqual(await w.call("open", { path: t.path, options: { readOnly: true } }), { readOnly: true });
    const kv = t.env.table("kv", { keys: "string", values: "uint32" });
    t.env.write((x) => x.put(kv, "x", 1));
    await rejects(w.call("put", { entries: [["y", 2]] }), "MDBX_EACCES", /read-only/);
    assert.deepEqual(await w.call("get", { keys: ["x"] }), [1]);
  } finally {
    await closeAll([w]);
  }
});

test("over an environment opened read-only, readOnly: false is refused and an open without it is read-only", async () => {
  const dir = tempDir();
  const p = path.join(dir, "db");
  try {
    open(p).close();
    const env = open(p, { readOnly: true });
    const [w] = await workers(0, p).then(() => [new DbWorker()]);
    try {
      await rejects(
        w.call("open", { path: p, options: { readOnly: false } }),
        "MDBX_INCOMPATIBLE",
        /readOnly true.*readOnly false/,
      );
      assert.deepEqual(await w.call("open", { path: p }), { readOnly: true });
      await w.call("close");
    } finally {
      w.terminate();
      env.close();
    }
  } finally {
    removeDir(dir);
  }
});

test("closing one Worker's Env leaves the others working; the last close closes the file", async () => {
  const dir = tempDir();
  const p = path.join(dir, "db");
  try {
    const env = open(p, { sync: "lazy" });
    const kv = env.table("kv", { keys: "string", values: "uint32" });
    env.write((w) => w.put(kv, "a", 1));
    const ws = await workers(2, p);
    env.close();
    await ws[0].call("close");
    await ws[1].call("put", { entries: [["b", 2]] });
    assert.deepEqual(await ws[1].call("get", { keys: ["a", "b"] }), [1, 2]);
    assert.equal(registry()[1], 1, "still open: one env");
    await ws[1].call("close");
    assert.equal(registry()[1], 0, "the last close closed it");
    for (const w of ws) w.terminate();
    // closed for real: an open with other options is a new environment
    const again = open(p, { sync: "durable", maxTables: 3 });
    try {
      assert.equal(again.getOption("maxTables"), 3);
      const kv2 = again.table("kv", { keys: "string", values: "uint32" });
      assert.equal(again.read((r) => r.get(kv2, "b")), 2);
    } finally {
      again.close();
    }
  } finally {
    removeDir(dir);
  }
});

test("a Worker terminated with a write and a read transaction open does not wedge the others", async () => {
  using t = tempEnv();
  const kv = t.env.table("kv", { keys: "string", values: "uint32" });
  const [dying, other] = await workers(2, t.path);
  try {
    await dying.call("holdRead");
    await dying.call("holdWrite", { key: "lost", value: 1 });
    const readers = t.env.readers().length;
    const exited = registry()[4];
    dying.terminate();
    // its thread ends; native/registry.c aborts its transactions there and drops its reference
    await waitFor(() => registry()[4] > exited, "the terminated Worker's thread to exit");
    assert.equal(registry(t.env.unsafeHandle)[0], 2);
    t.env.write((w) => w.put(kv, "main", 1));
    await other.call("put", { entries: [["other", 2]] });
    assert.deepEqual(await other.call("get", { keys: ["lost", "main", "other"] }), [null, 1, 2]);
    assert.equal(t.env.readers().length, readers - 1, "its reader slot was freed");
  } finally {
    await closeAll([other]);
  }
});

test("a Worker terminated while it waits for the writer lock does not wedge the others", async () => {
  using t = tempEnv();
  const kv = t.env.table("kv", { keys: "string", values: "uint32" });
  const [waiting, other] = await workers(2, t.path);
  try {
    await waiting.call("get", { keys: ["x"] }); // its table is open: the next call waits for the lock only
    const exited = registry()[4];
    const w = t.env.beginWrite();
    const p = waiting.call("holdWrite", { key: "lost", value: 1 }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 50));
    waiting.terminate(); // returns although the Worker waits for the lock this thread holds
    w.put(kv, "main", 1);
    w.commit();
    await p;
    await waitFor(() => registry()[4] > exited, "the terminated Worker's thread to exit");
    await other.call("put", { entries: [["other", 2]] });
    assert.deepEqual(await other.call("get", { keys: ["lost", "main", "other"] }), [null, 1, 2]);
  } finally {
    await closeAll([other]);
  }
});

test(
  "a Worker terminated while busy in JavaScript with a write transaction open does not wedge the others",
  async () => {
    using t = tempEnv();
    const kv = t.env.table("kv", { keys: "string", values: "uint32" });
    const [dying] = await workers(1, t.path);
    await dying.call("holdWrite", { key: "lost", value: 1 });
    const exited = registry()[4];
    await new Promise<void>((r) => dying.call("spin", {}, r).catch(() => {}));
    dying.terminate();
    await waitFor(() => registry()[4] > exited, "the terminated Worker's thread to exit");
    t.env.write((w) => w.put(kv, "main", 1));
    assert.deepEqual(t.env.read((r) => [r.get(kv, "lost"), r.get(kv, "main")]), [undefined, 1]);
  },
  // Deno's terminate() does not stop a Worker in an endless JavaScript loop (its thread runs on; a runtime bug,
  // docs/workers.md): nothing can end that thread's transaction while it runs, as for a hung process
  { ignore: runtime === "deno" },
);

for (const mode of ["optimistic", "pessimistic"] as const) {
  test(`concurrent transactions (${mode}) from several Workers lose no update`, async () => {
    using t = tempEnv();
    const kv = t.env.table("kv", { keys: "string", values: "uint32" });
    const ws = await workers(3, t.path);
    try {
      const n = 60;
      const keys = ["a", "b", "c", "d"];
      const done = await Promise.all(ws.map((w) => w.call<number>("txIncr", { n, keys, tasks: 4, mode })));
      assert.deepEqual(done, [n, n, n]);
      t.env.read((r) => {
        assert.equal(r.get(kv, "total"), 3 * n, "every increment of the shared total is there");
        let sum = 0;
        for (const k of keys) sum += r.get(kv, k) ?? 0;
        assert.equal(sum, 3 * n, "and of the per-key counters");
      });
    } finally {
      await closeAll(ws);
    }
  });
}

test("a live rebuild's switch moves every Worker's Env to the new file while they read and write", async () => {
  using t = tempEnv();
  const kv = t.env.table("kv", { keys: "string", values: "uint32" });
  const nkeys = 200;
  t.env.write((w) => {
    for (let i = 0; i < nkeys; i++) w.put(kv, `k${i}`, 0);
  });
  const [reader, writer] = await workers(2, t.path);
  try {
    const data = path.join(t.path, "mdbx.dat");
    const inode = fs.statSync(data).ino;
    // the reader checks that every snapshot it reads has all keys equal; the writer moves them all at once
    let reading!: () => void;
    const started = new Promise<void>((r) => reading = r);
    const reads = reader.call<{ reads: number; bad: number }>("readWhile", { keys: nkeys }, reading);
    await started;
    const bump = (async () => {
      for (let i = 0; i < 30; i++) {
        await writer.call("put", { entries: Array.from({ length: nkeys }, (_, j) => [`k${j}`, i + 1]) });
      }
    })();
    await t.env.rebuild();
    await bump;
    await reader.call("stop");
    const r = await reads;
    assert.ok(r.reads > 0);
    assert.equal(r.bad, 0, "a snapshot mixed two states");
    assert.notEqual(fs.statSync(data).ino, inode, "the database is a new file");
    // after the switch every Env reads and writes the new file, and sees the others' writes
    t.env.write((w) => w.put(kv, "after", 7));
    assert.deepEqual(await reader.call("get", { keys: ["k0", `k${nkeys - 1}`, "after"] }), [30, 30, 7]);
    await writer.call("put", { entries: [["fromWorker", 8]] });
    assert.equal(t.env.read((x) => x.get(kv, "fromWorker")), 8);
    assert.equal(registry()[1], 1, "the replaced file's env was closed; one env left");
  } finally {
    await closeAll([reader, writer]);
  }
});

test("node:worker_threads Workers share the environment as Web Workers do", async () => {
  using t = tempEnv();
  const kv = t.env.table("kv", { keys: "string", values: "uint32" });
  const { Worker: NodeWorker } = await import("node:worker_threads");
  const script = new URL("./children/worker_threads_db.ts", import.meta.url);
  const run = () =>
    new Promise<{ refs: number }>((ok, fail) => {
      const w = new NodeWorker(script, { workerData: { path: t.path, times: 50 } });
      w.once("message", ok);
      w.once("error", fail);
    });
  const answers = await Promise.all([run(), run()]);
  for (const a of answers) assert.ok(a.refs >= 2, `the worker's Env shared the environment (refs ${a.refs})`);
  assert.equal(t.env.read((r) => r.get(kv, "n")), 100);
  await waitFor(() => registry(t.env.unsafeHandle)[0] === 1, "the workers' references to be released");
});

test("a table is not deleted while other Workers share the environment (clearing it is fine)", async () => {
  using t = tempEnv();
  const kv = t.env.table("kv", { keys: "string", values: "uint32" });
  t.env.write((w) => w.put(kv, "a", 1));
  const [w] = await workers(1, t.path);
  try {
    throwsMdbx(() => t.env.write((x) => x.drop(kv)), "MDBX_BUSY", /other Envs of this process.*txn\.clear\(\)/);
    await rejects(w.call("drop"), "MDBX_BUSY", /other Workers/);
    assert.deepEqual(await w.call("get", { keys: ["a"] }), [1]);
    t.env.write((x) => x.clear(kv));
    assert.deepEqual(await w.call("get", { keys: ["a"] }), [null]);
  } finally {
    await closeAll([w]);
  }
  t.env.write((x) => x.drop(kv)); // alone again
});

test("deleteDatabase() refuses a database another Worker has open", async () => {
  const dir = tempDir();
  const p = path.join(dir, "db");
  try {
    open(p).close();
    const [w] = await workers(1, p);
    throwsMdbx(() => deleteDatabase(p), "MDBX_BUSY", /other Worker of this process/);
    await closeAll([w]);
    assert.equal(deleteDatabase(p), true);
  } finally {
    removeDir(dir);
  }
});

test("one Env per database per thread: another spelling of its path in the same thread is refused", () => {
  using t = tempEnv();
  const link = path.join(t.dir, "link");
  fs.symlinkSync(t.path, link);
  throwsMdbx(() => open(t.path), "MDBX_BUSY", /already open in this process, in this thread/);
  throwsMdbx(() => open(link), "MDBX_BUSY", /already has it open under another spelling/);
});
