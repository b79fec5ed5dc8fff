/**
 * Durable commits off the event loop (src/durable.ts, native/sync.c) and
 * auto-batched writes (env.put/env.del): the event loop runs while group
 * commits are synced, and nothing acknowledged is lost across kill -9.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import { type Env, open } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir } from "./helpers.ts";
import { existingState } from "../src/concurrent/state.ts";
import { offThread } from "../src/durable.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const child = (name: string) => fileURLToPath(new URL(`./children/${name}`, import.meta.url));

/** 100 tasks, `rounds` durable transactions each; counts timer ticks, and those that ran while a sync was in flight. */
async function durableLoad(
  env: Env,
  rounds: number,
  tag: string,
): Promise<{ ticks: number; duringSync: number; maxLateMs: number }> {
  const t = env.table("counters", { keys: "string", values: "uint32" });
  let ticks = 0, duringSync = 0, maxLateMs = 0, last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxLateMs = Math.max(maxLateMs, now - last - 1);
    last = now;
    ticks++;
    const s = existingState(env)?.pipeline.durable?.syncer();
    if (s && s.inFlight > 0) duringSync++;
  }, 1);
  try {
    await Promise.all(Array.from({ length: 100 }, async (_, task) => {
      for (let r = 0; r < rounds; r++) {
        await env.transact(async (tx) => {
          const n = (await tx.get(t, `${tag}${task}`)) ?? 0;
          await tx.put(t, `${tag}${task}`, n + 1);
        });
      }
    }));
  } finally {
    clearInterval(timer);
  }
  env.read((r) => {
    for (let task = 0; task < 100; task++) assert.equal(r.get(t, `${tag}${task}`), rounds);
  });
  return { ticks, duringSync, maxLateMs };
}

test("durable group commits are synced off the event loop: timers run while a batch is being synced", async () => {
  const dir = tempDir();
  try {
    const env = open(path.join(dir, "db"), { sync: "durable" });
    try {
      // a 1 ms timer keeps running while batches are synced; on a fast disk a sync may end before a tick: load again
      let after = await durableLoad(env, 5, "a0");
      for (let i = 1; after.duringSync === 0 && i < 10; i++) after = await durableLoad(env, 5, `a${i}`);
      const syncer = existingState(env)!.pipeline.durable!.syncer()!;
      assert.ok(syncer !== null, "durable mode uses the sync thread");
      assert.ok(after.duringSync > 0, `no timer ran while a sync was in flight (${after.ticks} ticks)`);
      // the same load with the sync inside the commit, on the JavaScript thread (the old behaviour): no sync requests
      const requests = syncer.stats.requests;
      offThread.disabled = true;
      try {
        await durableLoad(env, 5, "before");
      } finally {
        offThread.disabled = false;
      }
      assert.equal(syncer.stats.requests, requests, "the switch puts the sync back into the commit");
      assert.ok(env.check().ok);
    } finally {
      env.close();
    }
  } finally {
    removeDir(dir);
  }
});

test("durable group commits: a transaction that conflicts is retried while the batch before it syncs", async () => {
  const dir = tempDir();
  try {
    const env = open(path.join(dir, "db"), { sync: "durable" });
    try {
      const t = env.table("c", { keys: "string", values: "uint32" });
      await Promise.all(Array.from({ length: 64 }, () =>
        env.transact(async (tx) => {
          const n = (await tx.get(t, "one")) ?? 0;
          await sleep(0);
          await tx.put(t, "one", n + 1);
        })));
      assert.equal(env.read((r) => r.get(t, "one")), 64);
      assert.ok(env.check().ok);
    } finally {
      env.close();
    }
    // reopened: everything is there
    const env2 = open(path.join(dir, "db"), { sync: "durable" });
    try {
      assert.equal(env2.read((r) => r.get(env2.table("c", { keys: "string", values: "uint32" }), "one")), 64);
    } finally {
      env2.close();
    }
  } finally {
    removeDir(dir);
  }
});

test("kill -9 during durable group commits and auto-batched puts: every resolved write is there after reopen", async () => {
  const dir = tempDir();
  const db = path.join(dir, "db");
  try {
    let acked = 0;
    for (let run = 1; run <= 3; run++) {
      const { cmd, args } = runtimeCommand(child("server_writer.ts"), [db, String(run)]);
      const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
      const acks: string[] = [];
      let buf = "", err = "";
      proc.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
      proc.stdout!.setEncoding("utf8").on("data", (s: string) => {
        buf += s;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          acks.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
      const closed = new Promise<void>((r) => proc.on("close", () => r()));
      // kill once it acknowledged some writes, at a random moment after
      for (let i = 0; i < 3000 && acks.length < 50 + run * 30; i++) await sleep(5);
      await sleep(Math.floor(Math.random() * 40));
      proc.kill("SIGKILL");
      await closed;
      assert.ok(!/Error/.test(err), err);
      const seen = acks.filter((a) => a !== "ready");
      assert.ok(seen.length > 0, `the child acknowledged nothing: ${err}`);
      const env = open(db, { sync: "durable" });
      try {
        const logs = env.table("logs", { keys: "string", values: "string" });
        env.read((r) => {
          for (const id of seen) assert.equal(r.get(logs, id), `value of ${id}`, `acknowledged ${id} is missing`);
        });
        assert.ok(env.check().ok);
      } finally {
        env.close();
      }
      acked += seen.length;
    }
    assert.ok(acked > 0);
  } finally {
    removeDir(dir);
  }
});

test("env.put/env.del: one turn's writes commit together, in call order; bad input rejects the promise", async () => {
  const dir = tempDir();
  try {
    const env = open(path.join(dir, "db"), { sync: "durable" });
    try {
      const t = env.table("t", { keys: "string", values: "string" });
      const before = existingState(env)?.pipeline.stats.batches ?? 0;
      const ps: Promise<void>[] = [];
      for (let i = 0; i < 1000; i++) ps.push(env.put(t, `k${i % 100}`, `v${i}`)); // the last write of a key wins
      ps.push(env.del(t, "k5"), env.del(t, "missing"));
      await Promise.all(ps);
      const stats = existingState(env)!.pipeline.stats;
      assert.equal(stats.batches - before, 1, "one turn, one commit");
      env.read((r) => {
        assert.equal(r.get(t, "k5"), undefined);
        for (let k = 0; k < 100; k++) if (k !== 5) assert.equal(r.get(t, `k${k}`), `v${900 + k}`);
      });
      // mixed with a concurrent transaction and awaited one by one
      for (let i = 0; i < 20; i++) await env.put(t, "seq", String(i));
      assert.equal(env.read((r) => r.get(t, "seq")), "19");
      // bad input: a rejected promise, never a synchronous throw
      let p: Promise<void> | undefined;
      assert.doesNotThrow(() => (p = env.put(t, 42 as never, "x")));
      await assert.rejects(p!, TypeError);
      await assert.rejects(env.put(t, "x".repeat(5000), "x"), RangeError);
      await assert.rejects(env.put({} as never, "k", "v"), TypeError);
      const dups = env.table("dups", { dupSort: true });
      await assert.rejects(env.put(dups, new Uint8Array([1]), new Uint8Array([2])), TypeError);
      // a bad write does not take the turn's good writes down
      const good = env.put(t, "good", "yes");
      const bad = assert.rejects(env.put(t, "y".repeat(5000), "x"), RangeError);
      await good;
      await bad;
      assert.equal(env.read((r) => r.get(t, "good")), "yes");
    } finally {
      env.close();
    }
  } finally {
    removeDir(dir);
  }
});
