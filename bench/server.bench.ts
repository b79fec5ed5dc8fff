/**
 * For servers: durable group commits off the event loop, auto-batched
 * `env.put()`, and the change feed's latency, each beside its baseline in the
 * same process.
 *
 *   bun bench/server.bench.ts [--json] [--out FILE] [--rounds N] [--filter REGEX] [--dir PATH]
 *   deno run -A bench/server.bench.ts [...]
 *
 * Workloads:
 *  - lateness: a 1 ms interval timer's lateness (p99 and max, ms) while 100
 *    tasks run 10 durable read-modify-write transactions each; the sync on a
 *    native thread ("after") against the sync inside the commit on the
 *    JavaScript thread ("before", the old behaviour, same code path otherwise).
 *    p99 over every tick of all rounds of a mode; max as the median over
 *    paired rounds of after/before of each round's worst; target < 1.
 *  - put-update / put-insert: 100 tasks each awaiting 20 puts of 100-byte
 *    values in durable mode, overwriting keys of a 20,000-key table (the same
 *    keys in both stores) / adding new keys:
 *    `await env.put()` against lmdb-js `await db.put()` (overlappingSync off:
 *    its promise, too, resolves once the write is on disk). Time ratio
 *    turbomdbx/lmdb-js, median over paired rounds; target < 1 (faster).
 *  - feed: commit → delivery latency of `env.watch()` (p50, p99, ms), for
 *    commits of this process (env.write) and of a child process (which stamps
 *    each value with its clock). Reported with the feed's poll interval
 *    (5 ms) as the reference: targets p50 < 1 ms in-process, p99 < 2 polls
 *    (10 ms) cross-process.
 *
 * @module
 */
import { open as lmdbOpen } from "lmdb";
import process from "node:process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type Env, open } from "../mod.ts";
import { log, machineInfo, parseArgs, runtimeInfo, scratchDir } from "./lib/cli.ts";
import { offThread } from "../src/durable.ts";

const args = parseArgs();
const scratch = scratchDir(args.dir);
const rounds = Math.max(args.rounds, 3);
const want = (name: string) => !args.filter || args.filter.test(name);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figure {
  workload: string;
  label: string;
  value: number;
  unit: string;
  target: string;
  met: boolean;
  detail?: Record<string, number>;
}
const figures: Figure[] = [];
function report(f: Figure): void {
  figures.push(f);
  log(`${f.met ? "ok  " : "MISS"} ${f.workload}: ${f.label} = ${f.value.toFixed(3)} ${f.unit} (target ${f.target})`);
}

/** Reports commit → delivery latencies (ms) with `which` percentile judged against `targetMs`. */
function latencyFigure(where: string, lat: number[], which: "p50" | "p99", targetMs: number): void {
  const detail = { p50Ms: pct(lat, 0.5), p99Ms: pct(lat, 0.99), samples: lat.length };
  log(`  ${where} feed latency ms: p50 ${detail.p50Ms.toFixed(3)} p99 ${detail.p99Ms.toFixed(3)}`);
  const value = which === "p50" ? detail.p50Ms : detail.p99Ms;
  report({
    workload: "feed",
    label: `${where} commit→delivery ${which}`,
    value,
    unit: "ms",
    target: `< ${targetMs}`,
    met: value < targetMs,
    detail,
  });
}

// ---------------------------------------------------------------- lateness
if (want("lateness")) {
  const env = open(join(scratch.path, "lateness"), { sync: "durable" });
  const t = env.table("counters", { keys: "uint32", values: "uint32" });
  let r = 0;
  const load = async (): Promise<number[]> => {
    const late: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      late.push(Math.max(0, now - last - 1));
      last = now;
    }, 1);
    await Promise.all(Array.from({ length: 100 }, async (_, task) => {
      for (let i = 0; i < 10; i++) {
        await env.transact(async (tx) => {
          const k = (task * 7 + i * 13 + r) % 1000;
          await tx.put(t, k, ((await tx.get(t, k)) ?? 0) + 1);
        });
      }
    }));
    clearInterval(timer);
    late.push(Math.max(0, performance.now() - last - 1)); // the stretch since the last tick counts too
    r++;
    return late;
  };
  // every timer tick's lateness, pooled per mode over the rounds (for p99), and each round's worst (for max)
  const all = { before: [] as number[], after: [] as number[] },
    max = { before: [] as number[], after: [] as number[] };
  for (let i = 0; i < rounds * 2; i++) {
    for (const mode of (i % 2 ? ["before", "after"] : ["after", "before"]) as ("before" | "after")[]) {
      offThread.disabled = mode === "before";
      const late = await load();
      all[mode].push(...late);
      max[mode].push(Math.max(...late));
    }
  }
  offThread.disabled = false;
  env.close();
  const detail = {
    p99BeforeMs: pct(all.before, 0.99),
    p99AfterMs: pct(all.after, 0.99),
    maxBeforeMs: median(max.before),
    maxAfterMs: median(max.after),
    ticksBefore: all.before.length,
    ticksAfter: all.after.length,
    rounds: max.before.length,
  };
  log(
    `  lateness ms: p99 before ${detail.p99BeforeMs.toFixed(2)} after ${detail.p99AfterMs.toFixed(2)}; ` +
      `max (median of rounds) before ${detail.maxBeforeMs.toFixed(2)} after ${detail.maxAfterMs.toFixed(2)}; ` +
      `ticks before ${detail.ticksBefore} after ${detail.ticksAfter}`,
  );
  const rp = detail.p99AfterMs / detail.p99BeforeMs;
  const rm = median(max.after.map((x, i) => x / max.before[i]));
  report({
    workload: "lateness",
    label: "p99 timer lateness after/before",
    value: rp,
    unit: "x",
    target: "< 1",
    met: rp < 1,
    detail,
  });
  report({
    workload: "lateness",
    label: "max timer lateness after/before (paired rounds)",
    value: rm,
    unit: "x",
    target: "< 1",
    met: rm < 1,
    detail,
  });
}

// ---------------------------------------------------------------- auto-batched put
for (const kind of ["update", "insert"] as const) {
  if (!want(`put-${kind}`)) continue;
  const env = open(join(scratch.path, `put-${kind}`), {
    sync: "durable",
    geometry: { upper: "4GiB", growth: "16MiB" },
  });
  const t = env.table("kv", { keys: "uint32", values: "binary" });
  const db = lmdbOpen<Uint8Array, number>({
    path: join(scratch.path, `lmdb-put-${kind}`),
    keyEncoding: "uint32",
    encoding: "binary",
    compression: false,
    overlappingSync: false,
    mapSize: 4 * 1024 ** 3,
  });
  const value = new Uint8Array(100).fill(7);
  // update: both stores hold the same 20,000 keys first, each round overwrites 2,000 of them;
  // insert: each round adds 2,000 new keys
  const KEYS = 20_000;
  if (kind === "update") {
    env.write((w) => {
      for (let k = 0; k < KEYS; k++) w.put(t, k, value);
    });
    await db.transaction(() => {
      for (let k = 0; k < KEYS; k++) db.put(k, value);
    });
  }
  let seq = 0;
  const keyOf = (base: number, task: number, i: number) =>
    kind === "update" ? (base + task * 20 + i) % KEYS : base + task * 20 + i;
  const tm = async () => {
    const base = seq++ * 2000;
    await Promise.all(Array.from({ length: 100 }, async (_, task) => {
      for (let i = 0; i < 20; i++) await env.put(t, keyOf(base, task, i), value);
    }));
  };
  const lm = async () => {
    const base = seq++ * 2000;
    await Promise.all(Array.from({ length: 100 }, async (_, task) => {
      for (let i = 0; i < 20; i++) await db.put(keyOf(base, task, i), value);
    }));
  };
  for (let i = 0; i < 3; i++) await tm(), await lm(); // warm
  const a: number[] = [], b: number[] = [];
  const start = performance.now();
  for (let i = 0; i < 101 && (i < rounds || performance.now() - start < 3000); i++) {
    for (const [f, out] of (i % 2 ? [[tm, a], [lm, b]] : [[lm, b], [tm, a]]) as [() => Promise<void>, number[]][]) {
      const s = performance.now();
      await f();
      out.push(performance.now() - s);
    }
  }
  const ratio = median(a.map((x, i) => x / b[i]));
  const detail = {
    turbomdbxPutsPerSec: 2000 / (median(a) / 1000),
    lmdbPutsPerSec: 2000 / (median(b) / 1000),
    rounds: a.length,
  };
  log(
    `  ${kind} puts/s: turbomdbx ${detail.turbomdbxPutsPerSec.toFixed(0)}, lmdb-js ${detail.lmdbPutsPerSec.toFixed(0)}`,
  );
  report({
    workload: `put-${kind}`,
    label: "await env.put() / lmdb-js await db.put() time",
    value: ratio,
    unit: "x",
    target: "< 1",
    met: ratio < 1,
    detail,
  });
  env.close();
  await db.close();
}

// ---------------------------------------------------------------- change feed latency
if (want("feed")) {
  const path = join(scratch.path, "feed");
  const env: Env = open(path, { sync: "lazy" });
  const t = env.table("feed", { keys: "string", values: "string" });
  const n = 300;
  // in-process
  {
    const w = env.watch(t);
    const lat: number[] = [];
    const consumer = (async () => {
      for await (const b of w) {
        const now = performance.now();
        for (const c of b.changes) if (c.key === "t") lat.push(now - Number(c.value));
        if (lat.length >= n) break;
      }
    })();
    for (let i = 0; i < n; i++) {
      env.write((x) => x.put(t, "t", String(performance.now())));
      await sleep(1);
    }
    await consumer;
    latencyFigure("in-process", lat, "p50", 1);
  }
  // cross-process: the child stamps each value with performance.timeOrigin + performance.now()
  {
    const w = env.watch(t);
    const lat: number[] = [];
    const child = fileURLToPath(new URL("../test/children/watch_stamper.ts", import.meta.url));
    const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
    const argv = isDeno ? ["run", "-A", child, path, String(n)] : [child, path, String(n)];
    const proc = spawn(process.execPath, argv, { stdio: ["ignore", "ignore", "inherit"] });
    const exited = new Promise((r) => proc.on("exit", r));
    for await (const b of w) {
      const now = performance.timeOrigin + performance.now();
      for (const c of b.changes) if (c.key === "x") lat.push(now - Number(c.value));
      if (lat.length >= n - 5 || b.changes.some((c) => c.key === "end")) break;
    }
    await exited;
    latencyFigure("cross-process", lat, "p99", 10);
  }
  env.close();
}

scratch.remove();
const doc = { suite: "server", date: new Date().toISOString(), ...runtimeInfo(), ...machineInfo(), figures };
if (args.json) console.log(JSON.stringify(doc, null, 2));
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2));
process.exit(0);
