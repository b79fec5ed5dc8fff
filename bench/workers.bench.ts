/**
 * Workers: read throughput of one database shared by Workers of one process.
 * 4 Workers, each with its own Env over the one native environment
 * (docs/workers.md), run uncached random `txn.get()` loops; the baseline is 1
 * Worker doing the same total work, in the same process and run.
 *
 *   bun bench/workers.bench.ts [--json] [--out FILE] [--rounds N] [--records N] [--dir PATH]
 *   deno run -A bench/workers.bench.ts [...]
 *
 * (The shared options of bench/lib/cli.ts; --values and --filter do not
 * apply. --records defaults to 200,000 here.)
 *
 * Each round times both, in alternating order: 1 Worker doing G gets, then 4
 * Workers doing G/4 each at once (wall time from the requests to the last
 * answer). The figure is the median over rounds of the per-round ratio of the
 * two times (bench/lib/paired.ts explains why). Target: ≥ 1.7× with 4 Workers
 * on a 2-core machine (the speedup cannot exceed the cores). Beside it, the
 * same rounds with arithmetic only (no database) give the ceiling the machine
 * allowed meanwhile: on a machine other work keeps busy, both fall together.
 *
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { open } from "../mod.ts";
import { log, machineInfo, parseArgs, runtimeInfo, scratchDir } from "./lib/cli.ts";
import { table } from "./lib/report.ts";
import { DbWorker } from "../test/worker_rpc.ts";

const TARGET = 1.7;
const WORKERS = 4;

const args = parseArgs();
const records = process.argv.some((a) => a.startsWith("--records")) ? args.records : 200_000;
const rounds = Math.max(args.rounds, 5);
const gets = 400_000; // per round, split among the Workers

const dir = scratchDir(args.dir);
const dbPath = join(dir.path, "db");
const env = open(dbPath, { sync: "lazy" });
const kv = env.table("kv", { keys: "string", values: "uint32" });
log(`loading ${records} records`);
for (let i = 0; i < records; i += 50_000) {
  env.write((w) => {
    for (let j = i; j < Math.min(records, i + 50_000); j++) w.put(kv, `k${j}`, j & 0xffff);
  });
}

const workers = Array.from({ length: WORKERS }, () => new DbWorker());
await Promise.all(workers.map((w) => w.call("open", { path: dbPath })));

type Loop = { sum: number; ms: number };
let seed = 1;
async function one(): Promise<number> {
  const t0 = performance.now();
  await workers[0].call<Loop>("readLoop", { n: gets, keys: records, seed: seed++ });
  return performance.now() - t0;
}
/** The same rounds with arithmetic only: the parallelism the machine gives at that moment (the ceiling). */
const steps = 30_000_000;
async function oneCompute(): Promise<number> {
  const t0 = performance.now();
  await workers[0].call("compute", { n: steps });
  return performance.now() - t0;
}
async function allCompute(): Promise<number> {
  const t0 = performance.now();
  await Promise.all(workers.map((w) => w.call("compute", { n: steps / WORKERS })));
  return performance.now() - t0;
}
async function all(): Promise<number> {
  const t0 = performance.now();
  await Promise.all(workers.map((w) => w.call<Loop>("readLoop", { n: gets / WORKERS, keys: records, seed: seed++ })));
  return performance.now() - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

log("warming up");
await one();
await all();
const t1: number[] = [], t4: number[] = [], c1: number[] = [], c4: number[] = [];
for (let r = 0; r < rounds; r++) {
  if (r % 2 === 0) {
    t1.push(await one());
    t4.push(await all());
    c1.push(await oneCompute());
    c4.push(await allCompute());
  } else {
    c4.push(await allCompute());
    c1.push(await oneCompute());
    t4.push(await all());
    t1.push(await one());
  }
  log(
    `round ${r + 1}/${rounds}: get 1 Worker ${t1[r].toFixed(1)} ms, ${WORKERS} Workers ${t4[r].toFixed(1)} ms; ` +
      `arithmetic ${c1[r].toFixed(1)} / ${c4[r].toFixed(1)} ms`,
  );
}
await Promise.all(workers.map((w) => w.call("close")));
for (const w of workers) w.terminate();
env.close();
dir.remove();

const ratio = median(t1.map((t, i) => t / t4[i]));
const ceiling = median(c1.map((t, i) => t / c4[i]));
const met = ratio >= TARGET;
const machine = machineInfo();
const doc = {
  suite: "workers",
  date: new Date().toISOString(),
  ...runtimeInfo(),
  ...machine,
  records,
  getsPerRound: gets,
  workers: WORKERS,
  rounds,
  medianMs: { oneWorker: median(t1), fourWorkers: median(t4) },
  getsPerSecond: { oneWorker: gets / median(t1) * 1000, fourWorkers: gets / median(t4) * 1000 },
  ratio: { label: `${WORKERS} Workers / 1 Worker throughput`, value: ratio, target: TARGET, met },
  /** The same ratio for arithmetic without the database: what the machine allowed during the run. */
  ceiling,
  times: { oneWorker: t1, fourWorkers: t4, computeOne: c1, computeFour: c4 },
};
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + "\n");
if (args.json) console.log(JSON.stringify(doc, null, 2));
else {
  console.log(
    `\nWorkers sharing one Env: uncached random get, ${records} records, ${gets} gets per round, ` +
      `${machine.cores} cores, ${runtimeInfo().runtime}`,
  );
  console.log(table([
    ["", "median ms per round", "gets/s"],
    ["1 Worker", median(t1).toFixed(1), (gets / median(t1) * 1000).toFixed(0)],
    [`${WORKERS} Workers`, median(t4).toFixed(1), (gets / median(t4) * 1000).toFixed(0)],
  ]));
  console.log(
    `\n${WORKERS} Workers / 1 Worker throughput: ${ratio.toFixed(2)}x (paired median of ${rounds} rounds)  ` +
      `${met ? "ok" : "MISS"} ≥${TARGET}`,
  );
  console.log(
    `the machine's ceiling during the run (the same ratio for arithmetic, no database): ${ceiling.toFixed(2)}x`,
  );
}
