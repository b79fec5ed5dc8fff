/**
 * Concurrent write transactions (env.transact(), env.beginConcurrent()):
 * snapshot reads merged with buffered writes, serializable outcomes in both
 * modes (lost update, write skew, phantoms, bank transfers across two
 * processes), locks, deadlocks and timeouts, group commit, and all-or-nothing
 * per logical transaction across kill -9.
 *
 * Each anomaly test also runs with the guarantee removed (test-only switches
 * of src/concurrent: no validation, no locks) and checks that the anomaly then
 * shows: the test would notice if the guarantee were lost.
 *
 * TURBOMDBX_SOAK=1 runs the bank longer and kills more often.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type ConcurrencyMode,
  type ConcurrentTxn,
  ConflictError,
  DeadlockError,
  type Env,
  LockTimeoutError,
  MdbxError,
  open,
  type RangeOptions,
  type Table,
} from "../mod.ts";
import { existingState } from "../src/concurrent/state.ts";
import { removeDir, runtimeCommand, tempDir, tempEnv } from "./helpers.ts";
import { accounts, openBank, plainTransfer, rng, sumOf, TOTAL, transfer } from "./children/bank_data.ts";
import { KEYS } from "./children/group_writer.ts";

const SOAK = process.env.TURBOMDBX_SOAK === "1";
const MODES: ConcurrencyMode[] = ["optimistic", "pessimistic"];
const child = (name: string) => fileURLToPath(new URL(`./children/${name}`, import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The Env's concurrent-transaction internals (created on first use). */
function internals(env: Env) {
  env.beginConcurrent().abort();
  return existingState(env)!;
}

/** Runs `fn` with validation and locks switched off: the guarantees removed. */
async function withoutGuarantees<T>(env: Env, fn: () => Promise<T>): Promise<T> {
  const st = internals(env);
  st.pipeline.unsafeSkipValidation = true;
  st.unsafeSkipLocks = true;
  try {
    return await fn();
  } finally {
    st.pipeline.unsafeSkipValidation = false;
    st.unsafeSkipLocks = false;
  }
}

/** A promise that resolves once `n` parties have called `arrive()`. */
function barrier(n: number) {
  let left = n, open: () => void;
  const done = new Promise<void>((r) => open = r);
  return {
    async arrive(): Promise<void> {
      if (--left === 0) open();
      await done;
    },
  };
}

// ---------------------------------------------------------------- basics

test("reads see the snapshot merged with the transaction's own writes; others see nothing before commit", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  env.write((w) => {
    w.put(t, "a", "1");
    w.put(t, "b", "2");
  });
  const tx = env.beginConcurrent();
  assert.equal(await tx.get(t, "a"), "1");
  await tx.put(t, "a", "10");
  await tx.del(t, "b");
  await tx.put(t, "c", "3");
  assert.equal(await tx.get(t, "a"), "10");
  assert.equal(await tx.get(t, "b"), undefined);
  assert.equal(await tx.has(t, "b"), false);
  assert.equal(await tx.has(t, "c"), true);
  assert.equal(await tx.replace(t, "c", "30"), "3");
  assert.equal(tx.writeCount, 3);
  assert.deepEqual(env.read((r) => [r.get(t, "a"), r.get(t, "b"), r.get(t, "c")]), ["1", "2", undefined]);
  // a stable snapshot: a later commit by someone else is not seen
  const other = env.beginConcurrent();
  assert.equal(await other.get(t, "a"), "1");
  await tx.commit();
  assert.equal(tx.isOpen, false);
  assert.equal(await other.get(t, "a"), "1");
  assert.equal(await other.get(t, "c"), undefined);
  other.abort();
  assert.deepEqual(env.read((r) => [...r.range(t)].map((e) => `${e.key}=${e.value}`)), ["a=10", "c=30"]);
});

test("a transaction begun after a local commit returned reads that commit (shared snapshots never predate it)", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "uint32" });
  env.write((w) => w.put(t, "x", 1));
  const first = env.beginConcurrent();
  assert.equal(await first.get(t, "x"), 1); // takes a snapshot that others begun right now could share
  env.write((w) => w.put(t, "x", 2));
  const second = env.beginConcurrent();
  assert.equal(await second.get(t, "x"), 2);
  await env.transact((tx) => tx.put(t, "x", 3));
  assert.equal(await env.transact((tx) => tx.get(t, "x")), 3);
  assert.equal(await first.get(t, "x"), 1); // its own snapshot stays
  first.abort();
  second.abort();
});

test("abort discards the writes; an ended transaction refuses further use", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  const tx = env.beginConcurrent();
  await tx.put(t, "a", "1");
  tx.abort();
  tx.abort(); // idempotent
  assert.equal(env.read((r) => r.get(t, "a")), undefined);
  await assert.rejects(tx.get(t, "a"), (e: unknown) => e instanceof MdbxError && e.codeName === "MDBX_BAD_TXN");
  await assert.rejects(tx.put(t, "a", "2"), MdbxError);
  await assert.rejects(tx.commit(), MdbxError);
  const done = env.beginConcurrent();
  await done.put(t, "b", "2");
  await done.commit();
  await assert.rejects(done.commit(), /cannot be used: it was committed/);
  // await using aborts an uncommitted transaction
  {
    await using t2 = env.beginConcurrent();
    await t2.put(t, "c", "3");
  }
  assert.equal(env.read((r) => r.get(t, "c")), undefined);
});

test("transact() returns the function's result and commits; a non-conflict error aborts without retrying", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "uint32" });
  assert.equal(await env.transact(async (tx) => (await tx.put(t, "n", 7), "ok")), "ok");
  assert.equal(env.read((r) => r.get(t, "n")), 7);
  let runs = 0;
  await assert.rejects(
    env.transact(async (tx) => {
      runs++;
      await tx.put(t, "n", 8);
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(runs, 1);
  assert.equal(env.read((r) => r.get(t, "n")), 7);
});

test("range, keys, values and count merge the snapshot with buffered writes in the table's key order (differential)", async () => {
  using db = tempEnv();
  const env = db.env;
  const rnd = rng(1234);
  const tables = [
    { t: env.table("s", { keys: "string", values: "string" }), key: (i: number) => `k${i * 37 % 101}` },
    { t: env.table("u", { keys: "uint32", values: "string" }), key: (i: number) => (i * 7919) % 5000 },
    { t: env.table("r", { keys: "binary", values: "string", reverseKeys: true }), key: (i: number) => `${i}.r` },
  ] as { t: Table; key: (i: number) => unknown }[];
  for (const { t, key } of tables) {
    env.write((w) => {
      for (let i = 0; i < 60; i++) if (rnd(2)) w.put(t, key(i) as never, `v${i}` as never);
    });
    for (let round = 0; round < 30; round++) {
      const ops: [unknown, string | null][] = [];
      for (let j = 0; j < 1 + rnd(25); j++) ops.push([key(rnd(70)), rnd(3) ? `w${round}.${j}` : null]);
      const lo = key(rnd(70)), hi = key(rnd(70));
      const o: RangeOptions = {};
      const side = rnd(4);
      if (side & 1) rnd(2) ? (o.gte = lo as never) : (o.gt = lo as never);
      if (side & 2) rnd(2) ? (o.lte = hi as never) : (o.lt = hi as never);
      if (rnd(2)) o.reverse = true;
      if (rnd(3) === 0) o.limit = rnd(8);
      if (rnd(3) === 0) o.offset = rnd(5);
      // the model: the same writes in a write transaction that is aborted
      const w = env.beginWrite();
      for (const [k, v] of ops) v === null ? w.del(t, k as never) : w.put(t, k as never, v as never);
      const want = [...w.range(t, o)];
      const wantCount = w.count(t, o);
      w.abort();
      const tx = env.beginConcurrent();
      for (const [k, v] of ops) await (v === null ? tx.del(t, k as never) : tx.put(t, k as never, v as never));
      const got = [];
      for await (const e of tx.range(t, o)) got.push(e);
      assert.deepEqual(got, want, `${t} ${JSON.stringify(o, (_, v) => v instanceof Uint8Array ? [...v] : v)}`);
      const keys = [];
      for await (const k of tx.keys(t, o)) keys.push(k);
      assert.deepEqual(keys, want.map((e) => e.key));
      const values = [];
      for await (const v of tx.values(t, o)) values.push(v);
      assert.deepEqual(values, want.map((e) => e.value));
      assert.equal(await tx.count(t, o), wantCount);
      tx.abort();
    }
  }
});

test("prefix ranges merge buffered writes, and a prefix read conflicts with an insert under the prefix", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  env.write((w) => {
    for (const k of ["a/1", "a/3", "b/1", "a0"]) w.put(t, k, k);
  });
  const tx = env.beginConcurrent();
  await tx.put(t, "a/2", "new");
  await tx.del(t, "a/3");
  const got = [];
  for await (const k of tx.keys(t, { prefix: "a/" })) got.push(k);
  assert.deepEqual(got, ["a/1", "a/2"]);
  env.write((w) => w.put(t, "a/9", "other"));
  await assert.rejects(tx.commit(), (e: unknown) => e instanceof ConflictError && e.range === '["a/", "a0")');
});

test("a prefix with gte/gt/lte/lt reads the keys under the prefix within the bounds, merged with buffered writes", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  env.write((w) => {
    for (const k of ["a/1", "a/3", "a/5", "a/7", "b/1", "a0", "a"]) w.put(t, k, k);
  });
  const cases: RangeOptions<"string">[] = [
    { prefix: "a/", gt: "a/1" },
    { prefix: "a/", gte: "a/3", lt: "a/7" },
    { prefix: "a/", lte: "a/4", reverse: true },
    { prefix: "a/", gt: "a/5", limit: 1 },
    { prefix: "a/", gte: "a", lte: "b" }, // bounds wider than the prefix
    { prefix: "a/", gt: "a/9" }, // past the prefix: nothing
    { prefix: "a/", lt: "a/" },
  ];
  for (const o of cases) {
    const ops: [string, string | null][] = [["a/2", "new"], ["a/5", null], ["a/8", "new"], ["a00", "new"]];
    const w = env.beginWrite();
    for (const [k, v] of ops) v === null ? w.del(t, k) : w.put(t, k, v);
    const want = [...w.keys(t, o)];
    w.abort();
    const tx = env.beginConcurrent();
    for (const [k, v] of ops) await (v === null ? tx.del(t, k) : tx.put(t, k, v));
    const got = [];
    for await (const k of tx.keys(t, o)) got.push(k);
    assert.deepEqual(got, want, JSON.stringify(o));
    assert.ok(got.every((k) => k.startsWith("a/")), JSON.stringify(o));
    tx.abort();
  }
  // the read set is the intersection: an insert under the prefix but outside the bounds does not conflict
  const tx = env.beginConcurrent();
  for await (const _ of tx.keys(t, { prefix: "a/", gte: "a/3", lt: "a/7" })) { /* read */ }
  await tx.put(t, "x", "y");
  env.write((w) => w.put(t, "a/8", "outside the bounds"));
  await tx.commit();
  const tx2 = env.beginConcurrent();
  for await (const _ of tx2.keys(t, { prefix: "a/", gte: "a/3", lt: "a/7" })) { /* read */ }
  await tx2.put(t, "x", "z");
  env.write((w) => w.put(t, "a/4", "inside"));
  await assert.rejects(tx2.commit(), (e: unknown) => e instanceof ConflictError && e.range === '["a/3", "a/7")');
});

test("dupSort tables are refused with a clear TypeError", async () => {
  using db = tempEnv();
  const env = db.env;
  const d = env.table("d", { keys: "string", values: "string", dupSort: true });
  const tx = env.beginConcurrent();
  await assert.rejects(tx.get(d, "a"), /dupSort table: concurrent transactions support plain tables only/);
  tx.abort();
});

// ------------------------------------------------------------- conflicts

test("a plain env.write() between read and commit is a ConflictError naming the table and key", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("accounts", { keys: "string", values: "uint32" });
  env.write((w) => w.put(t, "alice", 10));
  const tx = env.beginConcurrent();
  const v = (await tx.get(t, "alice"))!;
  env.write((w) => w.put(t, "alice", 11));
  await tx.put(t, "alice", v + 1);
  const e = await tx.commit().then(() => null, (e) => e);
  assert.ok(e instanceof ConflictError, String(e));
  assert.equal(e.name, "ConflictError");
  assert.equal(e.table, "accounts");
  assert.equal(e.key, "alice");
  assert.match(e.message, /key "alice" of table "accounts" was changed by another transaction/);
  assert.equal(env.read((r) => r.get(t, "alice")), 11);
});

test("a range read covers only what the loop passed over: an insert there conflicts, one beyond it does not", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  env.write((w) => {
    for (const k of ["a", "b", "c", "d", "e"]) w.put(t, k, k);
  });
  for (const [insert, conflict] of [["bb", true], ["a0", true], ["cc", false], ["f", false]] as const) {
    const tx = env.beginConcurrent();
    const seen = [];
    for await (const k of tx.keys(t)) {
      seen.push(k);
      if (k === "c") break;
    }
    assert.deepEqual(seen, ["a", "b", "c"]);
    await tx.put(t, "summary", seen.join(""));
    env.write((w) => w.put(t, insert, "x"));
    if (conflict) await assert.rejects(tx.commit(), ConflictError, `insert of ${insert}`);
    else await tx.commit();
    env.write((w) => w.del(t, insert));
  }
  // a reverse read with a limit covers from the end down to the last key it returned
  const out = env.table("out", { keys: "string", values: "string" });
  const tx = env.beginConcurrent();
  assert.deepEqual(await keysOf(tx.keys(t, { reverse: true, limit: 2, gte: "a", lte: "e" })), ["e", "d"]);
  await tx.put(out, "x", "1");
  env.write((w) => w.put(t, "c1", "not covered"));
  await tx.commit();
  const tx2 = env.beginConcurrent();
  assert.deepEqual(await keysOf(tx2.keys(t, { reverse: true, limit: 2, gte: "a", lte: "e" })), ["e", "d"]);
  await tx2.put(out, "y", "1");
  env.write((w) => w.del(t, "d"));
  await assert.rejects(tx2.commit(), (e: unknown) => e instanceof ConflictError && e.range === '["d", "e"]');
});

async function keysOf<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const k of it) out.push(k);
  return out;
}

test("blind writes never conflict, and read-only optimistic transactions commit without the pipeline", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "uint32" });
  const st = internals(env);
  const batches = st.pipeline.stats.batches;
  const ro = env.beginConcurrent();
  assert.equal(await ro.get(t, "k"), undefined);
  env.write((w) => w.put(t, "k", 1)); // changes what it read: a read-only snapshot is still a valid point
  await ro.commit();
  assert.equal(st.pipeline.stats.batches, batches);
  const blind = env.beginConcurrent();
  await blind.put(t, "k", 5);
  env.write((w) => w.put(t, "k", 2));
  await blind.commit();
  assert.equal(env.read((r) => r.get(t, "k")), 5);
});

// ------------------------------------------------------------- anomalies

/** 64 tasks increment one counter; returns its final value. */
async function counterRace(env: Env, mode: ConcurrencyMode, forUpdate: boolean): Promise<number> {
  const t = env.table("counter", { keys: "string", values: "uint32" });
  env.write((w) => w.put(t, "n", 0));
  const rnd = rng(99);
  await Promise.all(Array.from({ length: 64 }, () =>
    env.transact(async (tx) => {
      const n = (await tx.get(t, "n", { forUpdate }))!;
      await sleep(rnd(3));
      await tx.put(t, "n", n + 1);
    }, { mode, retries: Infinity })));
  return env.read((r) => r.get(t, "n"))!;
}

for (const mode of MODES) {
  test(`lost update on a counter is prevented (${mode})`, async () => {
    using db = tempEnv();
    assert.equal(await counterRace(db.env, mode, false), 64);
    if (mode === "pessimistic") assert.equal(await counterRace(db.env, mode, true), 64);
  });
}

test("negative control: without validation and locks the counter loses updates", async () => {
  using db = tempEnv();
  for (const mode of MODES) {
    const n = await withoutGuarantees(db.env, () => counterRace(db.env, mode, false));
    assert.ok(n < 64, `${mode}: expected lost updates, got ${n}`);
  }
});

/** Two doctors on call; each goes off call if the other is still on. Returns how many remain on call. */
async function doctors(env: Env, mode: ConcurrencyMode): Promise<number> {
  const t = env.table("oncall", { keys: "string", values: "uint32" });
  env.write((w) => {
    w.put(t, "alice", 1);
    w.put(t, "bob", 1);
  });
  const both = barrier(2);
  const goOff = (me: string) => {
    let attempt = 0;
    return env.transact(async (tx) => {
      const onCall = (await tx.get(t, "alice"))! + (await tx.get(t, "bob"))!;
      if (attempt++ === 0) await both.arrive(); // both have read before either writes
      if (onCall >= 2) await tx.put(t, me, 0);
    }, { mode, retries: 10 });
  };
  await Promise.all([goOff("alice"), goOff("bob")]);
  return env.read((r) => r.get(t, "alice")! + r.get(t, "bob")!);
}

for (const mode of MODES) {
  test(`write skew (two doctors on call) is prevented (${mode})`, async () => {
    using db = tempEnv();
    assert.equal(await doctors(db.env, mode), 1);
  });
}

test("negative control: without validation and locks both doctors go off call", async () => {
  for (const mode of MODES) {
    using db = tempEnv();
    assert.equal(await withoutGuarantees(db.env, () => doctors(db.env, mode)), 0, mode);
  }
});

/** At most two shifts a day: two transactions count the day's shifts and add one. Returns the day's count. */
async function phantom(env: Env, mode: ConcurrencyMode): Promise<number> {
  const t = env.table("shifts", { keys: "string", values: "string" });
  env.write((w) => w.put(t, "2024-01-01/carol", "on"));
  const both = barrier(2);
  const book = (me: string) => {
    let attempt = 0;
    return env.transact(async (tx) => {
      const n = await tx.count(t, { prefix: "2024-01-01/" });
      if (attempt++ === 0) await both.arrive(); // both have counted before either inserts
      if (n < 2) await tx.put(t, `2024-01-01/${me}`, "on");
    }, { mode, retries: 10 });
  };
  await Promise.all([book("dave"), book("erin")]);
  return env.read((r) => r.count(t, { prefix: "2024-01-01/" }));
}

for (const mode of MODES) {
  test(`a phantom insert into a scanned range is prevented (${mode})`, async () => {
    using db = tempEnv();
    assert.equal(await phantom(db.env, mode), 2);
  });
}

test("negative control: without validation and locks a third shift slips into the scanned range", async () => {
  for (const mode of MODES) {
    using db = tempEnv();
    assert.equal(await withoutGuarantees(db.env, () => phantom(db.env, mode)), 3, mode);
  }
});

/** One operation of a transaction and what it observed. */
type Op =
  | { get: string; saw: string | undefined }
  | { put: string; value: string | null }
  | { range: RangeOptions<"string">; saw: [string, string][] };

/**
 * 32 tasks (16 pessimistic ones) run random transactions (point reads, range
 * reads, writes, awaits in between) over 12 keys. Returns the committed ones in the order their
 * commits resolved, and the initial state.
 */
async function randomHistory(env: Env, mode: ConcurrencyMode, seed: number) {
  const t = env.table("h", { keys: "string", values: "string" });
  const key = (i: number) => `k${String(i).padStart(2, "0")}`;
  const initial = new Map<string, string>();
  env.write((w) => {
    for (let i = 0; i < 12; i += 2) {
      w.put(t, key(i), `init${i}`);
      initial.set(key(i), `init${i}`);
    }
  });
  const rnd = rng(seed);
  const committed: Op[][] = [];
  let serial = 0;
  await Promise.all(Array.from({ length: mode === "optimistic" ? 32 : 16 }, async (_, task) => {
    for (let n = 0; n < 12; n++) {
      let ops: Op[] = [];
      await env.transact(async (tx) => {
        ops = [];
        const steps = 2 + rnd(5);
        for (let s = 0; s < steps; s++) {
          const what = rnd(10);
          if (what < 4) {
            const k = key(rnd(12));
            ops.push({ get: k, saw: await tx.get(t, k, { forUpdate: rnd(2) === 0 }) });
          } else if (what < 6) {
            const o: RangeOptions<"string"> = {};
            if (rnd(2)) o.gte = key(rnd(12));
            if (rnd(2)) o.lt = key(rnd(13));
            if (rnd(3) === 0) o.reverse = true;
            if (rnd(3) === 0) o.limit = 1 + rnd(3);
            const saw: [string, string][] = [];
            for await (const e of tx.range(t, o)) saw.push([e.key, e.value]);
            ops.push({ range: o, saw });
          } else {
            const k = key(rnd(12));
            const value = rnd(4) === 0 ? null : `t${task}.${n}.${s}`;
            await (value === null ? tx.del(t, k) : tx.put(t, k, value));
            ops.push({ put: k, value });
          }
          if (rnd(3) === 0) await sleep(rnd(2));
        }
        const k = key(rnd(12)); // every transaction writes: read-only ones serialize at their snapshot instead
        await tx.put(t, k, `t${task}.${n}.w`);
        ops.push({ put: k, value: `t${task}.${n}.w` });
      }, { mode, retries: Infinity, timeoutMs: 60_000, maxBackoffMs: 10 });
      committed[serial++] = ops;
    }
  }));
  return { committed, initial, final: new Map(env.read((r) => [...r.range(t)].map((e) => [e.key, e.value]))) };
}

/** Replays the committed transactions one at a time in commit order; returns the first observation that differs. */
function replay(h: Awaited<ReturnType<typeof randomHistory>>): string | null {
  const db = new Map(h.initial);
  for (let i = 0; i < h.committed.length; i++) {
    const view = new Map(db); // the database plus this transaction's own writes so far
    for (const op of h.committed[i]) {
      if ("put" in op) op.value === null ? view.delete(op.put) : view.set(op.put, op.value);
      else if ("get" in op) {
        if (view.get(op.get) !== op.saw) return `#${i} read ${op.get} = ${op.saw}, serially ${view.get(op.get)}`;
      } else {
        const o = op.range;
        let want = [...view].filter(([k]) => (o.gte === undefined || k >= o.gte) && (o.lt === undefined || k < o.lt))
          .sort(([a], [b]) => a < b ? -1 : 1);
        if (o.reverse) want.reverse();
        if (o.limit !== undefined) want = want.slice(0, o.limit);
        if (JSON.stringify(want) !== JSON.stringify(op.saw)) {
          return `#${i} range ${JSON.stringify(o)} saw ${JSON.stringify(op.saw)}, serially ${JSON.stringify(want)}`;
        }
      }
    }
    for (const op of h.committed[i]) if ("put" in op) op.value === null ? db.delete(op.put) : db.set(op.put, op.value);
  }
  const final = JSON.stringify([...db].sort());
  return final === JSON.stringify([...h.final].sort()) ? null : `final state differs: ${final}`;
}

for (const mode of MODES) {
  test(`a random concurrent history equals the serial one in commit order (${mode})`, async () => {
    for (const seed of SOAK ? [1, 2, 3, 4, 5, 6, 7, 8] : [1, 2]) {
      using db = tempEnv();
      assert.equal(replay(await randomHistory(db.env, mode, seed)), null, `seed ${seed}`);
    }
  });
}

test("negative control: without validation and locks the random history is not serializable", async () => {
  for (const mode of MODES) {
    using db = tempEnv();
    const h = await withoutGuarantees(db.env, () => randomHistory(db.env, mode, 1));
    assert.notEqual(replay(h), null, mode);
  }
});

// -------------------------------------------------- locks, deadlocks, timeouts

test("a deadlock between two pessimistic transactions is broken at once: the younger is the victim and is retried", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  const both = barrier(2);
  const victims: string[] = [];
  const t0 = performance.now();
  const run = (me: string, first: string, second: string) =>
    env.transact(async (tx) => {
      await tx.put(t, first, me);
      await both.arrive();
      await tx.put(t, second, me);
    }, {
      mode: "pessimistic",
      timeoutMs: 20_000,
      onRetry: (e) => {
        assert.ok(e instanceof DeadlockError, String(e));
        victims.push(me);
        both.arrive = async () => {};
      },
    });
  await Promise.all([run("older", "a", "b"), run("younger", "b", "a")]);
  assert.ok(performance.now() - t0 < 5000, "the deadlock was not broken before the timeout");
  assert.deepEqual(victims, ["younger"]);
  // the younger one ran again after the older one committed: its writes are the last
  assert.deepEqual(env.read((r) => [r.get(t, "a"), r.get(t, "b")]), ["younger", "younger"]);
});

test("the deadlock victim gets a DeadlockError naming the lock; its locks are released so the other proceeds", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("locks", { keys: "string", values: "string" });
  const a = env.beginConcurrent({ mode: "pessimistic" });
  const b = env.beginConcurrent({ mode: "pessimistic" });
  await a.put(t, "x", "a");
  await b.put(t, "y", "b");
  const aWaits = a.get(t, "y");
  const e = await b.get(t, "x").then(() => null, (e) => e);
  assert.ok(e instanceof DeadlockError, String(e));
  assert.ok(e instanceof ConflictError);
  assert.equal(e.table, "locks");
  assert.equal(e.key, "x");
  assert.match(e.message, /deadlock: transaction #\d+ was chosen as the victim/);
  await assert.rejects(b.put(t, "z", "b"), DeadlockError); // doomed
  assert.equal(await aWaits, undefined); // b's lock on y was released at once
  await a.commit();
  b.abort();
  assert.equal(env.read((r) => r.get(t, "x")), "a");
});

test("a lock wait longer than timeoutMs fails with LockTimeoutError, which transact() does not retry", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  const holder = env.beginConcurrent({ mode: "pessimistic" });
  await holder.put(t, "k", "held");
  let retries = 0;
  const t0 = performance.now();
  const e = await env.transact((tx) => tx.get(t, "k"), {
    mode: "pessimistic",
    timeoutMs: 120,
    onRetry: () => retries++,
  }).then(() => null, (e) => e);
  const waited = performance.now() - t0;
  assert.ok(e instanceof LockTimeoutError, String(e));
  assert.equal(e.timeoutMs, 120);
  assert.equal(e.key, "k");
  assert.ok(waited >= 100 && waited < 3000, `waited ${waited} ms`);
  assert.equal(retries, 0);
  await holder.commit();
  assert.equal(await env.transact((tx) => tx.get(t, "k"), { mode: "pessimistic", timeoutMs: 120 }), "held");
});

test("lock waits are FIFO: a later reader queues behind a waiting writer", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  const order: string[] = [];
  const r1 = env.beginConcurrent({ mode: "pessimistic" });
  await r1.get(t, "k");
  const w = env.beginConcurrent({ mode: "pessimistic" });
  const wDone = w.put(t, "k", "w").then(() => order.push("writer"));
  await sleep(5);
  const r2 = env.beginConcurrent({ mode: "pessimistic" });
  const r2Done = r2.get(t, "k").then(() => order.push("reader 2"));
  await sleep(5);
  assert.deepEqual(order, []);
  await r1.commit();
  await wDone;
  await w.commit();
  await r2Done;
  assert.deepEqual(order, ["writer", "reader 2"]);
  r2.abort();
});

test("a pessimistic range read makes inserts into the range wait until it ends", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  env.write((w) => w.put(t, "m", "1"));
  const scan = env.beginConcurrent({ mode: "pessimistic" });
  assert.equal(await scan.count(t, { gte: "a", lt: "n" }), 1);
  let inserted = false;
  const writer = env.transact((tx) => tx.put(t, "c", "new").then(() => inserted = true), { mode: "pessimistic" });
  const outside = env.transact((tx) => tx.put(t, "z", "free"), { mode: "pessimistic" });
  await outside; // outside the range: no wait
  await sleep(10);
  assert.equal(inserted, false);
  await scan.commit();
  await writer;
  assert.equal(env.read((r) => r.get(t, "c")), "new");
});

test("an AbortSignal cancels a lock wait and aborts the transaction; transact() stops retrying", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  const holder = env.beginConcurrent({ mode: "pessimistic" });
  await holder.put(t, "k", "held");
  const ac = new AbortController();
  const p = env.transact((tx) => tx.get(t, "k"), { mode: "pessimistic", signal: ac.signal });
  await sleep(5);
  ac.abort(new Error("user gave up"));
  await assert.rejects(p, /user gave up/);
  await assert.rejects(env.transact(() => 1, { signal: ac.signal }), /user gave up/);
  holder.abort();
  assert.equal(internals(env).locks.waiting, 0);
});

// ------------------------------------------------------------ group commit

test("group commit: concurrent commits share one MDBX write transaction; one conflict does not abort the others", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  env.write((w) => {
    w.put(t, "shared", "0");
    w.put(t, "stable", "s");
  });
  const st = internals(env);
  const before = { ...st.pipeline.stats };
  const txs: ConcurrentTxn[] = [];
  const conflicts = [20, 25, 27];
  for (let i = 0; i < 50; i++) {
    const tx = env.beginConcurrent();
    if (i === 10) await tx.put(t, "shared", "10");
    // all read the same snapshot, before #10's write lands in the batch:
    if (i === 20) await tx.get(t, "shared"); // a key written earlier in the batch: conflict
    if (i === 25) await tx.count(t, { gte: "sh", lt: "si" }); // a range holding it: conflict
    if (i === 26) await tx.count(t, { gte: "x", lt: "y" }); // a range nobody writes: fine
    if (i === 27) await tx.has(t, "k3"); // a key #3 creates: conflict
    if (i === 35) await tx.put(t, "stable", "s"); // rewrites the value it has
    if (i === 40) await tx.get(t, "stable"); // so this read is still valid
    await tx.put(t, `k${i}`, `v${i}`);
    txs.push(tx);
  }
  const results = await Promise.allSettled(txs.map((tx) => tx.commit()));
  assert.equal(st.pipeline.stats.batches - before.batches, 1);
  assert.equal(st.pipeline.stats.committed - before.committed, 50 - conflicts.length);
  results.forEach((r, i) => assert.equal(r.status, conflicts.includes(i) ? "rejected" : "fulfilled", `#${i}`));
  for (const i of conflicts) assert.ok((results[i] as PromiseRejectedResult).reason instanceof ConflictError);
  env.read((r) => {
    for (let i = 0; i < 50; i++) assert.equal(r.get(t, `k${i}`), conflicts.includes(i) ? undefined : `v${i}`);
    assert.equal(r.get(t, "shared"), "10");
  });
});

test("a transaction whose writes cannot be applied is rejected alone; nothing of it is written", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "binary" });
  const gone = env.table("gone", { keys: "string", values: "string" });
  const txs: ConcurrentTxn[] = [];
  for (let i = 0; i < 10; i++) {
    const tx = env.beginConcurrent();
    await tx.put(t, `k${i}`, new Uint8Array(100));
    if (i === 4) await tx.put(gone, "x", "y"); // its table is dropped before the commit
    await tx.put(t, `z${i}`, new Uint8Array(100));
    txs.push(tx);
  }
  env.write((w) => w.drop(gone));
  const results = await Promise.allSettled(txs.map((tx) => tx.commit()));
  results.forEach((r, i) => assert.equal(r.status, i === 4 ? "rejected" : "fulfilled", `#${i}`));
  const e = (results[4] as PromiseRejectedResult).reason;
  assert.ok(e instanceof MdbxError, String(e));
  env.read((r) => {
    for (let i = 0; i < 10; i++) assert.equal(r.has(t, `k${i}`) && r.has(t, `z${i}`), i !== 4, `#${i}`);
    assert.equal(r.has(t, "k4") || r.has(t, "z4"), false);
  });
});

test("a lone transaction commits at once in a batch of its own, with the same checks; with others open it waits for the group", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "uint32" });
  const gone = env.table("gone", { keys: "string", values: "string" });
  const st = internals(env);
  const before = st.pipeline.stats.batches;
  // alone: committed by the time commit() returns (no queue, no microtask)
  const tx = env.beginConcurrent();
  await tx.put(t, "a", 1);
  const p = tx.commit();
  assert.equal(tx.isOpen, false);
  assert.equal(env.read((r) => r.get(t, "a")), 1);
  await p;
  assert.equal(st.pipeline.stats.batches, before + 1);
  // still validated: a plain write between its read and its commit
  const stale = env.beginConcurrent();
  const v = (await stale.get(t, "a"))!;
  env.write((w) => w.put(t, "a", 5));
  await stale.put(t, "a", v + 1);
  await assert.rejects(stale.commit(), ConflictError);
  assert.equal(env.read((r) => r.get(t, "a")), 5);
  // still all or nothing: a write that cannot be applied rejects it and leaves nothing of it
  const failing = env.beginConcurrent();
  await failing.put(t, "b", 2);
  await failing.put(gone, "x", "y");
  env.write((w) => w.drop(gone));
  await assert.rejects(failing.commit(), MdbxError);
  assert.equal(env.read((r) => r.has(t, "b")), false);
  // not alone: another transaction is open, so the commit waits for the next flush
  const other = env.beginConcurrent();
  const grouped = env.beginConcurrent();
  await grouped.put(t, "c", 3);
  const q = grouped.commit();
  assert.equal(env.read((r) => r.has(t, "c")), false);
  other.abort(); // the last open one ends: the flush runs
  await q;
  assert.equal(env.read((r) => r.get(t, "c")), 3);
  // an open write transaction of the Env: not alone either, the commit waits for it
  const w = env.beginWrite();
  const late = env.beginConcurrent();
  await late.put(t, "d", 4);
  const r = late.commit();
  assert.equal(late.isOpen, false); // committing
  w.commit();
  await r;
  assert.equal(env.read((r) => r.get(t, "d")), 4);
});

test("binary keys and values a transaction keeps are private copies: changing or transferring what was passed or returned changes nothing", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "binary", values: "binary" });
  const fill = (n: number, b: number) => new Uint8Array(n).fill(b);
  // small (kept in a shared slab), medium, and longer than a point read's landing room
  env.write((w) => {
    w.put(t, Uint8Array.of(5), fill(600, 5));
    w.put(t, Uint8Array.of(6), fill(70_000, 6));
    w.put(t, Uint8Array.of(8), fill(3, 8));
  });
  const tx = env.beginConcurrent();
  const k = Uint8Array.of(1, 2, 3), v = Uint8Array.of(9, 9, 9);
  await tx.put(t, k, v);
  k[0] = 7;
  v[0] = 7;
  const transfer = (a: Uint8Array) => (a.buffer as unknown as { transfer(): ArrayBuffer }).transfer();
  const mine = (await tx.get(t, Uint8Array.of(1, 2, 3)))!;
  assert.deepEqual([...mine], [9, 9, 9]);
  transfer(mine);
  assert.deepEqual([...(await tx.get(t, Uint8Array.of(1, 2, 3)))!], [9, 9, 9]);
  assert.equal(await tx.get(t, Uint8Array.of(7, 2, 3)), undefined);
  // the same key as the last one, then another of the same length: two keys
  await tx.put(t, Uint8Array.of(1, 2, 4), Uint8Array.of(4));
  assert.deepEqual([...(await tx.get(t, Uint8Array.of(1, 2, 3)))!], [9, 9, 9]);
  for (const [key, n] of [[5, 600], [6, 70_000], [8, 3]]) {
    const got = (await tx.get(t, Uint8Array.of(key)))!;
    assert.equal(got.length, n);
    assert.ok(got.every((b) => b === key));
    got.fill(0);
    transfer(got);
    const again = (await tx.get(t, Uint8Array.of(key)))!;
    assert.ok(again.length === n && again.every((b) => b === key), `key ${key} read back changed`);
  }
  await tx.commit();
  env.read((r) => {
    assert.deepEqual([...r.get(t, Uint8Array.of(1, 2, 3))!], [9, 9, 9]);
    assert.deepEqual([...r.get(t, Uint8Array.of(1, 2, 4))!], [4]);
    assert.equal(r.get(t, Uint8Array.of(7, 2, 3)), undefined);
  });
  // what was read is what validation compares: one byte changed in the long value is a conflict
  for (const [key, n] of [[5, 600], [6, 70_000], [8, 3]]) {
    const reader = env.beginConcurrent();
    await reader.get(t, Uint8Array.of(key));
    await reader.put(t, Uint8Array.of(99), Uint8Array.of(1));
    env.write((w) => {
      const changed = fill(n, key);
      changed[n - 1] = 0;
      w.put(t, Uint8Array.of(key), changed);
    });
    const e = await reader.commit().then(() => null, (e) => e);
    assert.ok(e instanceof ConflictError, `key ${key}: ${e}`);
  }
});

test("the pipeline waits for a write transaction of the same Env left open across an await, instead of failing", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("t", { keys: "string", values: "string" });
  const w = env.beginWrite();
  w.put(t, "plain", "1");
  let done = false;
  const p = env.transact((tx) => tx.put(t, "concurrent", "1")).then(() => done = true);
  await sleep(20);
  assert.equal(done, false);
  w.commit();
  await p;
  assert.deepEqual(env.read((r) => [r.get(t, "plain"), r.get(t, "concurrent")]), ["1", "1"]);
});

test("commits feed the get() cache: cached reads stay exact through concurrent transactions", async () => {
  using db = tempEnv();
  const env = db.env;
  const t = env.table("c", { keys: "uint32", values: "uint32", cache: true });
  env.write((w) => {
    for (let i = 0; i < 200; i++) w.put(t, i, i);
  });
  const rnd = rng(5);
  const model = Array.from({ length: 200 }, (_, i) => i);
  for (let round = 0; round < 20; round++) {
    env.read((r) => {
      for (let i = 0; i < 200; i++) assert.equal(r.get(t, i), model[i]);
    });
    await Promise.all(Array.from({ length: 8 }, () =>
      env.transact(async (tx) => {
        const k = rnd(200);
        const v = (await tx.get(t, k))!;
        await tx.put(t, k, v + 1);
      }, { retries: Infinity })));
    // recompute the model from the database's own tree (a fresh read bypassing nothing: same values)
    env.read((r) => {
      for (const { key, value } of r.range(t)) model[key] = value;
    });
  }
  const stats = t.cacheStats()!;
  assert.ok(stats.hits > 0, JSON.stringify(stats));
  const sum = env.read((r) => sumOf(r.values(t)));
  assert.equal(sum, 199 * 200 / 2 + 20 * 8);
});

// ----------------------------------------------------- the bank, two processes

/** Runs a child process to its end; returns its "done" line. */
function bankWorker(db: string, mode: ConcurrencyMode, ms: number, seed: number): Promise<string> {
  const { cmd, args } = runtimeCommand(child("bank_worker.ts"), [db, mode, String(ms), "16", String(seed)]);
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  proc.stdout!.setEncoding("utf8").on("data", (s: string) => out += s);
  proc.stderr!.setEncoding("utf8").on("data", (s: string) => err += s);
  return new Promise((resolve, reject) => {
    proc.on("close", (code) => {
      const done = /^done .*$/m.exec(out);
      if (code !== 0 || !done) reject(new Error(`bank worker exited with ${code}: ${out}\n${err}`));
      else resolve(done[0]);
    });
  });
}

/** 64 tasks (plus plain writes and auditors) move money for `ms`; returns what the auditors saw. */
async function bank(env: Env, mode: ConcurrencyMode, ms: number, seed: number) {
  const acc = accounts(env);
  const rnd = rng(seed);
  const until = performance.now() + ms;
  let commits = 0, retries = 0, audits = 0;
  const bad: string[] = [];
  const tasks = Array.from({ length: 64 }, async () => {
    while (performance.now() < until) {
      await env.transact((tx) => transfer(tx, acc, rnd, mode === "pessimistic" && rnd(2) === 0), {
        mode,
        retries: Infinity,
        onRetry: () => retries++,
      });
      commits++;
    }
  });
  const plain = (async () => {
    while (performance.now() < until) {
      env.write((w) => plainTransfer(w, acc, rnd));
      await sleep(3);
    }
  })();
  const readers = (async () => {
    while (performance.now() < until) {
      const s = env.read((r) => sumOf(r.values(acc)));
      if (s !== TOTAL) bad.push(`reader saw ${s}`);
      const a = await env.transact(async (tx) => {
        let sum = 0;
        for await (const v of tx.values(acc)) sum += v;
        return sum;
      }, { mode, retries: Infinity });
      if (a !== TOTAL) bad.push(`audit transaction saw ${a}`);
      audits++;
      await sleep(2);
    }
  })();
  await Promise.all([...tasks, plain, readers]);
  return { commits, retries, audits, bad, total: env.read((r) => sumOf(r.values(acc))) };
}

for (const mode of MODES) {
  test(
    `bank: 64 concurrent transactions and a second process move money; the total never changes (${mode})`,
    async () => {
      const dir = tempDir();
      const db = path.join(dir, "bank");
      const ms = SOAK ? 30_000 : 2_500;
      try {
        const env = open(db, { sync: "lazy" });
        try {
          openBank(env);
          const other = bankWorker(db, mode, ms + 500, 17);
          await sleep(300); // let the worker start
          const r = await bank(env, mode, ms, 42);
          const done = await other;
          const [, theirCommits] = done.split(" ").map(Number);
          assert.deepEqual(r.bad, []);
          assert.equal(r.total, TOTAL);
          assert.equal(env.read((rt) => sumOf(rt.values(accounts(env)))), TOTAL);
          assert.ok(r.commits > 100 && theirCommits > 10, `${r.commits} here, ${done}`);
          assert.ok(r.retries > 0, "no conflict at all: the test does not exercise validation");
          assert.ok(r.audits > 5);
          assert.ok(env.check().ok);
        } finally {
          env.close();
        }
      } finally {
        removeDir(dir);
      }
    },
    { timeout: SOAK ? 120_000 : 60_000 },
  );
}

test("negative control: without validation and locks the bank's total changes", async () => {
  using db = tempEnv();
  openBank(db.env);
  const acc = accounts(db.env);
  await withoutGuarantees(db.env, async () => {
    const rnd = rng(3);
    await Promise.all(Array.from({ length: 64 }, async () => {
      for (let i = 0; i < 10; i++) await db.env.transact((tx) => transfer(tx, acc, rnd));
    }));
  });
  assert.notEqual(db.env.read((r) => sumOf(r.values(acc))), TOTAL);
});

// ------------------------------------------------------------------ kill -9

test(
  "kill -9 during group commits: after reopen every logical transaction is fully present or fully absent",
  async () => {
    const dir = tempDir();
    const db = path.join(dir, "groups");
    const kills = SOAK ? 25 : 4;
    const rnd = rng(Date.now() >>> 0);
    let acked = 0;
    try {
      for (let run = 1; run <= kills; run++) {
        const { cmd, args } = runtimeCommand(child("group_writer.ts"), [db, String(run)]);
        const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
        const acks: string[] = [];
        let buf = "", err = "";
        proc.stderr!.setEncoding("utf8").on("data", (s: string) => err += s);
        const ready = new Promise<void>((resolve) => {
          proc.stdout!.setEncoding("utf8").on("data", (s: string) => {
            buf += s;
            let nl;
            while ((nl = buf.indexOf("\n")) >= 0) {
              const line = buf.slice(0, nl);
              buf = buf.slice(nl + 1);
              if (line === "ready") resolve();
              else acks.push(line);
            }
          });
        });
        const closed = new Promise<void>((r) => proc.on("close", () => r()));
        await Promise.race([ready, closed]);
        await sleep(50 + rnd(400));
        proc.kill("SIGKILL");
        await closed;
        assert.ok(!/Error/.test(err), err);
        const env = open(db, { sync: "durable" });
        try {
          const logs = env.table("logs", { keys: "string", values: "string" });
          env.read((r) => {
            const groups = new Map<string, number>();
            for (const { key, value } of r.range(logs)) {
              const id = key.slice(0, key.indexOf("/"));
              assert.ok(value.startsWith(`${id}:`), `${key} holds ${value.slice(0, 20)}`);
              groups.set(id, (groups.get(id) ?? 0) + 1);
            }
            for (const [id, n] of groups) assert.equal(n, KEYS, `logical transaction ${id} has ${n} of ${KEYS} keys`);
            for (const id of acks) assert.equal(groups.get(id), KEYS, `acknowledged ${id} is missing`);
            assert.equal(sumOf(r.values(accounts(env))), TOTAL);
          });
          assert.ok(env.check().ok);
          acked += acks.length;
        } finally {
          env.close();
        }
      }
      assert.ok(acked > 0, "no commit was acknowledged before the kills");
    } finally {
      removeDir(dir);
    }
  },
  { timeout: SOAK ? 300_000 : 60_000 },
);
