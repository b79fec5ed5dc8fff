/**
 * The change feed (env.watch, env.watchKeys; src/watch.ts, native/watch.c):
 * every commit after a watch started — of this process, of a child process and
 * of the stock libmdbx (mdbx_stock_write) — is reported exactly once, in
 * order, with the right values; a slow consumer gets coalesced batches and
 * bounded memory.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type ChangeBatch, type Env, MdbxError, open, type Table } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir, tempEnv } from "./helpers.ts";
import { type Ops, randomOps } from "./children/watch_data.ts";
import { int, prng } from "./children/cache_data.ts";
import * as path from "node:path";

type Batch = ChangeBatch<string, string>;
interface Commit {
  id: number;
  ops: Ops;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds, failing after `ms` (a guard against hanging, not a speed check). */
async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await sleep(2);
  }
}

/**
 * Checks batches against the commits (any order; sorted by txnid here): the
 * batches are contiguous from `start` to the last commit, and each lists
 * exactly the keys whose value differs between its two versions, with the
 * value at its version. `keep` restricts the keys a watch reports.
 */
function verify(
  start: number,
  commits: Commit[],
  batches: Batch[],
  initial: Map<string, string> = new Map(),
  keep: (k: string) => boolean = () => true,
): void {
  commits = [...commits].sort((a, b) => a.id - b.id);
  assert.ok(commits.length > 0 && commits[0].id > start, "the workload commits after the watch started");
  const state = new Map(initial);
  let next = 0;
  const advance = (v: number) => {
    while (next < commits.length && commits[next].id <= v) {
      for (const [k, val] of commits[next].ops) {
        if (val === null) state.delete(k);
        else state.set(k, val);
      }
      next++;
    }
  };
  let prev = start;
  for (const [i, b] of batches.entries()) {
    assert.equal(b.fromVersion, prev, `batch ${i} starts where the one before ended`);
    assert.ok(b.version > prev, `batch ${i} moves forward`);
    const before = new Map(state);
    advance(b.version);
    const expected = new Map<string, string | null>();
    for (const k of new Set([...before.keys(), ...state.keys()])) {
      if (keep(k) && before.get(k) !== state.get(k)) expected.set(k, state.get(k) ?? null);
    }
    const actual = new Map<string, string | null>();
    for (const c of b.changes) {
      assert.ok(!actual.has(c.key), `batch ${i} lists ${c.key} once`);
      assert.equal(c.deleted, c.value === undefined);
      actual.set(c.key, c.deleted ? null : c.value!);
    }
    const wrong = [...new Set([...actual.keys(), ...expected.keys()])].filter((k) => actual.get(k) !== expected.get(k));
    if (wrong.length) {
      // the history of the first wrong key, to diagnose a failure
      const K = wrong[0];
      const hist = commits.filter((x) => x.ops.some(([k]) => k === K)).map((
        x,
      ) => [x.id, x.ops.filter(([k]) => k === K)]);
      const seen = batches.filter((x) => x.changes.some((c) => c.key === K)).map((x) => [x.fromVersion, x.version]);
      assert.fail(
        `batch ${i} (${b.fromVersion}..${b.version}): keys reported wrongly: ${wrong}; ${K} expected ` +
          `${expected.get(K)} got ${actual.get(K)}; commits ${JSON.stringify(hist)}; batches ${JSON.stringify(seen)}`,
      );
    }
    assert.deepEqual(
      [...actual].sort(),
      [...expected].sort(),
      `batch ${i} (${b.fromVersion}..${b.version}) holds exactly what changed`,
    );
    prev = b.version;
  }
  assert.equal(prev, commits.at(-1)!.id, "the last batch reaches the last commit");
  assert.equal(next, commits.length);
}

/** Collects a watch's batches in the background; `slow` makes the consumer dawdle. */
function collect(w: AsyncIterable<Batch>, slow: () => number): { batches: Batch[]; done: Promise<void> } {
  const batches: Batch[] = [];
  const done = (async () => {
    for await (const b of w) {
      batches.push(b);
      const ms = slow();
      if (ms > 0) await sleep(ms);
    }
  })();
  return { batches, done };
}

function write(env: Env, t: Table<"string", "string">, ops: Ops): number {
  return env.write((w) => {
    for (const [k, v] of ops) {
      if (v === null) w.del(t, k);
      else w.put(t, k, v);
    }
    return w.id;
  });
}

test("watch: every commit of this process and of a child process is seen once, in order, with its values", async () => {
  using db = tempEnv();
  const { env } = db;
  const t = env.table("feed", { keys: "string", values: "string" });
  const other = env.table("other", { keys: "string", values: "string" });
  const initial = new Map<string, string>();
  write(env, t, [["k00", "before"], ["k01", "before"]]);
  initial.set("k00", "before").set("k01", "before");
  const w = env.watch(t);
  const rnd = prng(7);
  const c = collect(w, () => (int(rnd, 0, 3) === 0 ? int(rnd, 0, 4) : 0));
  const commits: Commit[] = [];
  // the child commits meanwhile
  const script = fileURLToPath(new URL("./children/watch_writer.ts", import.meta.url));
  const { cmd, args } = runtimeCommand(script, [db.path, "11", "150"]);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const next = randomOps(3, "p");
  for (let i = 0; i < 200; i++) {
    const ops = next();
    commits.push({ id: write(env, t, ops), ops });
    if (i % 10 === 3) write(env, other, [["x", String(i)]]); // commits to another table: not in this feed
    if (int(rnd, 0, 2) === 0) await sleep(int(rnd, 0, 2));
  }
  assert.equal(await exited, 0, `child failed: ${err}`);
  const lines = out.trim().split("\n");
  assert.equal(lines.pop(), "done");
  for (const line of lines) {
    const sp = line.indexOf(" ");
    commits.push({ id: Number(line.slice(0, sp)), ops: JSON.parse(line.slice(sp + 1)) });
  }
  assert.equal(commits.length, 350);
  const last = Math.max(...commits.map((x) => x.id));
  await until(() => (c.batches.at(-1)?.version ?? 0) >= last, "the last commit's batch");
  w.close();
  await c.done;
  verify(w.startVersion, commits, c.batches, initial);
  assert.ok(c.batches.length > 1, "the feed delivered as it went, not only at the end");
});

test("watch: a stock libmdbx writer's commits are seen (mdbx_stock_write)", async () => {
  const dir = tempDir();
  const p = path.join(dir, "db");
  const env = open(p, { sync: "durable" }); // the stock writer opens in libmdbx's default mode
  try {
    const t = env.table("strings", { keys: "string", values: "string" });
    const w = env.watch(t);
    const c = collect(w, () => 0);
    const tool = fileURLToPath(new URL("../zig-out/bin/mdbx_stock_write", import.meta.url));
    const child = spawn(tool, [p], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
    assert.equal(await new Promise((r) => child.on("exit", r)), 0, err);
    const final = env.read((r) => r.id);
    await until(() => (c.batches.at(-1)?.version ?? 0) >= final, "the stock writer's last commit");
    w.close();
    await c.done;
    // replaying the batches from empty gives exactly the table's content
    const state = new Map<string, string>();
    let prev = w.startVersion;
    for (const b of c.batches) {
      assert.equal(b.fromVersion, prev);
      prev = b.version;
      for (const ch of b.changes) {
        if (ch.deleted) state.delete(ch.key);
        else state.set(ch.key, ch.value!);
      }
    }
    const content = env.read((r) => new Map([...r.range(t)].map((e) => [e.key, e.value] as [string, string])));
    assert.equal(content.size, 10_000);
    assert.deepEqual(state, content);
  } finally {
    env.close();
    removeDir(dir);
  }
});

test("watch: a slow consumer gets coalesced batches, and memory stays bounded by maxPendingKeys", async () => {
  using db = tempEnv();
  const { env } = db;
  const t = env.table("feed", { keys: "string", values: "string" });
  const w = env.watch(t);
  const commits: Commit[] = [];
  // 100 commits to 5 keys while nobody reads: one batch with the 5 newest values
  for (let i = 0; i < 100; i++) {
    const ops: Ops = [[`k${i % 5}`, `v${i}`]];
    commits.push({ id: write(env, t, ops), ops });
    if (i % 10 === 0) await sleep(1); // the hub runs between commits
  }
  const first = await w.next();
  assert.equal(first.done, false);
  verify(w.startVersion, commits, [first.value!]);
  assert.equal(first.value!.changes.length, 5);

  // a bound of 3 pending keys: 20 commits of distinct keys while nobody reads
  const w2 = env.watch(t, { maxPendingKeys: 3 });
  const more: Commit[] = [];
  for (let i = 0; i < 20; i++) {
    const ops: Ops = [[`m${String(i).padStart(2, "0")}`, `v${i}`]];
    more.push({ id: write(env, t, ops), ops });
    await sleep(1);
  }
  const last = more.at(-1)!.id;
  const batches: Batch[] = [];
  while ((batches.at(-1)?.version ?? 0) < last) {
    const r = await w2.next();
    assert.equal(r.done, false);
    batches.push(r.value!);
  }
  verify(w2.startVersion, more, batches);
  // the feed paused with 3 keys pending (its snapshot pinned rather than memory spent), and resumed when taken
  assert.equal(batches[0].changes.length, 3);
  assert.ok(batches.length >= 2);
  w.close();
  w2.close();
  assert.deepEqual(await w.next(), { value: undefined, done: true });
});

test("watch: prefix and keys restrict the feed; watchKeys yields current values when one changes", async () => {
  using db = tempEnv();
  const { env } = db;
  const t = env.table("feed", { keys: "string", values: "string" });
  const wp = env.watch(t, { prefix: "k1" });
  const wk = env.watch(t, { keys: ["k03", "c000"] });
  const ac = new AbortController();
  const wkeys = env.watchKeys(t, ["k05", "k06"], { signal: ac.signal });
  const firstKeys = await wkeys.next();
  assert.deepEqual(firstKeys.value!.map((e) => [e.key, e.value]), [["k05", undefined], ["k06", undefined]]);
  const cp = collect(wp, () => 0), ck = collect(wk, () => 0);
  const commits: Commit[] = [];
  const next = randomOps(5, "c");
  for (let i = 0; i < 150; i++) {
    const ops = next();
    commits.push({ id: write(env, t, ops), ops });
    if (i % 5 === 0) await sleep(1);
  }
  const final: Ops = [["k10", "end"], ["k03", "end"], ["c000", "end"]];
  commits.push({ id: write(env, t, final), ops: final });
  commits.push({ id: write(env, t, [["k05", "five"]]), ops: [["k05", "five"]] });
  // watchKeys: the newest values, whatever came in between
  let seen = (await wkeys.next()).value!;
  while (seen[0].value !== "five") seen = (await wkeys.next()).value!;
  assert.equal(seen[1].value, env.read((r) => r.get(t, "k06")));
  assert.ok(seen[0].version > 0);
  const last = commits.at(-1)!.id;
  await until(() => (cp.batches.at(-1)?.version ?? 0) >= last, "the prefix feed");
  await until(() => (ck.batches.at(-1)?.version ?? 0) >= last, "the keys feed");
  wp.close();
  wk.close();
  ac.abort();
  await Promise.all([cp.done, ck.done]);
  assert.deepEqual(await wkeys.next(), { value: undefined, done: true });
  verify(wp.startVersion, commits, cp.batches, new Map(), (k) => k.startsWith("k1"));
  verify(wk.startVersion, commits, ck.batches, new Map(), (k) => k === "k03" || k === "c000");
  assert.ok(cp.batches.every((b) => b.changes.every((c) => c.key.startsWith("k1"))));
});

test("watch: bad arguments are typed errors naming what is wrong", () => {
  using db = tempEnv();
  const { env } = db;
  const t = env.table("feed", { keys: "string", values: "string" });
  const dups = env.table("dups", { dupSort: true });
  assert.throws(() => env.watch({} as never), (e) => e instanceof TypeError && /Table from env.table/.test(e.message));
  assert.throws(() => env.watch(dups), (e) => e instanceof TypeError && /dupSort/.test(e.message));
  assert.throws(() => env.watch(t, { maxPendingKeys: 0 }), RangeError);
  assert.throws(() => env.watch(t, { keys: "k" as never }), TypeError);
  const ints = env.table("ints", { keys: "uint32" });
  assert.throws(() => env.watch(ints, { prefix: "x" }), (e) => e instanceof TypeError && /prefix/.test(e.message));
  const w = env.watch(t);
  const p = w.next();
  assert.rejects(w.next(), TypeError);
  env.close();
  return p.then((r) => assert.equal(r.done, true)).then(() => assert.ok(!(p instanceof MdbxError)));
});

test("watch across a live rebuild's switch: the batches still add up to the table, the switch is flagged", async () => {
  using db = tempEnv();
  const { env } = db;
  const t = env.table("feed", { keys: "string", values: "string" });
  const initial = new Map<string, string>();
  env.write((w) => {
    for (let i = 0; i < 300; i++) {
      w.put(t, `k${i}`, `v${i}`);
      initial.set(`k${i}`, `v${i}`);
    }
  });
  const w = env.watch(t, { prefix: "k" });
  const c = collect(w, () => 0);
  let stop = false;
  const rnd = prng(3);
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const k = `k${int(rnd, 0, 349)}`;
      env.write((x) => (int(rnd, 0, 4) === 0 ? x.del(t, k) : x.put(t, k, `w${i}`)));
      env.write((x) => x.put(t, `other${i % 5}`, "not in the prefix"));
      await sleep(int(rnd, 0, 1));
    }
  })();
  await sleep(20);
  await env.rebuild();
  await sleep(20);
  stop = true;
  await writer;
  const final = env.read((r) => r.id);
  await until(() => (c.batches.at(-1)?.version ?? 0) >= final && c.batches.some((b) => b.switched), "the batches");
  w.close();
  await c.done;
  const state = new Map(initial);
  let prev = w.startVersion, switches = 0;
  for (const b of c.batches) {
    assert.equal(b.fromVersion, prev, "contiguous");
    if (b.switched) switches++;
    else assert.ok(b.version > b.fromVersion);
    prev = b.version;
    for (const ch of b.changes) {
      assert.ok(ch.key.startsWith("k"));
      if (ch.deleted) state.delete(ch.key);
      else state.set(ch.key, ch.value!);
    }
  }
  assert.equal(switches, 1, "one batch spans the switch");
  const content = env.read((r) =>
    new Map([...r.range(t, { prefix: "k" })].map((e) => [e.key, e.value] as [string, string]))
  );
  assert.deepEqual(state, content);
});
