/**
 * Concurrent write transactions: group commit and the overhead of a logical
 * transaction, against one MDBX write transaction per logical transaction and
 * against lmdb-js's batched `transaction()` and `ifVersion()`, in the same
 * process, in the same run.
 *
 *   bun bench/concurrent.bench.ts [--json] [--out FILE] [--rounds N] [--filter REGEX] [--dir PATH]
 *   deno run -A bench/concurrent.bench.ts [...]
 *
 * (The shared options of bench/lib/cli.ts; --records and --values do not apply.)
 *
 * Workloads, on 10,000 counters (uint32 key → number), each transaction a small
 * read-modify-write (read one counter, write it back plus one):
 *  - group (durable): 1,000 transactions from 100 concurrent tasks;
 *  - uncontended (durable, and nosync): transactions one after the other,
 *    each awaited before the next begins (100 durable, 1,000 nosync).
 *
 * Implementations: `env.transact()` (optimistic; pessimistic with forUpdate in
 * the group workload), `env.write()` (one MDBX write transaction per logical
 * transaction: the baseline), lmdb-js `transaction()` (its async, batched
 * write transactions) and `ifVersion()` (optimistic: read entry and version,
 * write if the version is unchanged, retry otherwise).
 *
 * Ratios are medians over paired rounds (bench/lib/paired.ts explains why);
 * see docs/benchmarks.md, "Concurrent write transactions".
 *
 * @module
 */
import { bench, group, run } from "mitata";
import { open as lmdbOpen, type RootDatabase } from "lmdb";
import process from "node:process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { type Env, open, type Table } from "../mod.ts";
import { log, machineInfo, parseArgs, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { prng } from "./lib/data.ts";
import { existingState } from "../src/concurrent/state.ts";
import { ns, table } from "./lib/report.ts";

const COUNTERS = 10_000;
const GROUP_TXNS = 1000;
const GROUP_TASKS = 100;
const UNCONTENDED = { durable: 100, nosync: 1000 };
const LMDB_MAP = 4 * 1024 ** 3;

const args = parseArgs();
const scratch = scratchDir(args.dir);

type Counters = Table<"uint32", "uint32">;
type Lmdb = RootDatabase<number, number>;
type Mode = "durable" | "nosync";

/** One implementation of one workload: an async iteration of `txns` logical transactions. */
interface Impl {
  workload: string;
  impl: string;
  what: string;
  txns: number;
  fn: () => Promise<unknown>;
}

/** The ratios the suite is judged by: `num`'s time over `den`'s, lower is better unless `higherIsBetter`. */
const RATIOS: {
  workload: string;
  label: string;
  num: string;
  den: string;
  target?: number;
  higherIsBetter?: boolean;
}[] = [
  {
    workload: "group",
    label: "group commit speedup: env.write() per txn / transact()",
    num: "env.write",
    den: "transact",
    target: 20,
    higherIsBetter: true,
  },
  { workload: "group", label: "transact() / lmdb-js transaction()", num: "transact", den: "lmdb-js transaction" },
  { workload: "group", label: "transact() / lmdb-js ifVersion()", num: "transact", den: "lmdb-js ifVersion" },
  {
    workload: "group",
    label: "pessimistic / optimistic transact()",
    num: "transact pessimistic",
    den: "transact",
  },
  {
    workload: "uncontendedDurable",
    label: "transact() overhead: transact() / env.write()",
    num: "transact",
    den: "env.write",
    target: 1.5,
  },
  {
    workload: "uncontendedDurable",
    label: "transact() / lmdb-js transaction()",
    num: "transact",
    den: "lmdb-js transaction",
  },
  {
    workload: "uncontendedNosync",
    label: "transact() overhead: transact() / env.write()",
    num: "transact",
    den: "env.write",
    target: 1.5,
  },
  {
    workload: "uncontendedNosync",
    label: "transact() / lmdb-js transaction()",
    num: "transact",
    den: "lmdb-js transaction",
  },
];

function openLmdb(path: string, mode: Mode): Lmdb {
  return lmdbOpen<number, number>({
    path,
    keyEncoding: "uint32",
    compression: false,
    useVersions: true,
    mapSize: LMDB_MAP,
    // overlappingSync (lmdb-js's default) returns before the flush; off, a commit syncs as MDBX's durable mode does
    ...(mode === "durable" ? { overlappingSync: false } : { noSync: true }),
  }) as Lmdb;
}

/** Random counters to visit, in rotation. */
class Keys {
  readonly #list: Uint32Array;
  #at = 0;
  constructor(n: number, seed: number) {
    const r = prng(seed);
    this.#list = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.#list[i] = r() % COUNTERS;
  }
  next(): number {
    const k = this.#list[this.#at];
    this.#at = this.#at + 1 === this.#list.length ? 0 : this.#at + 1;
    return k;
  }
}

/** Runs `txns` logical transactions from `tasks` concurrent tasks. */
async function tasks(n: number, txns: number, one: () => Promise<unknown> | unknown): Promise<void> {
  let left = txns;
  await Promise.all(Array.from({ length: n }, async () => {
    while (left > 0) {
      left--;
      await one();
    }
  }));
}

function rmwTransact(env: Env, t: Counters, k: number, forUpdate = false): Promise<void> {
  return env.transact(async (tx) => {
    const v = (await tx.get(t, k, { forUpdate }))!;
    await tx.put(t, k, v + 1);
  }, { mode: forUpdate ? "pessimistic" : "optimistic", retries: Infinity });
}

function rmwWrite(env: Env, t: Counters, k: number): void {
  env.write((w) => w.put(t, k, w.get(t, k)! + 1));
}

function rmwLmdbTransaction(db: Lmdb, k: number): Promise<unknown> {
  return db.transaction(() => db.put(k, db.get(k)! + 1));
}

async function rmwLmdbIfVersion(db: Lmdb, k: number): Promise<void> {
  for (;;) {
    const e = db.getEntry(k)!;
    if (await db.ifVersion(k, e.version!, () => db.put(k, e.value + 1, e.version! + 1))) return;
  }
}

/** Opens and fills the stores of one durability mode. */
function stores(mode: Mode) {
  const env = open(join(scratch.path, `tm-${mode}`), { sync: mode, geometry: { upper: "4GiB", growth: "16MiB" } });
  const t = env.table("counters", { keys: "uint32", values: "uint32" }) as Counters;
  env.write((w) => {
    for (let i = 0; i < COUNTERS; i++) w.put(t, i, 0);
  });
  const db = openLmdb(join(scratch.path, `lmdb-${mode}`), mode);
  db.transactionSync(() => {
    for (let i = 0; i < COUNTERS; i++) db.put(i, 0, 1);
  });
  return { env, t, db };
}

// --- main ---
const t0 = performance.now();
const info = { ...runtimeInfo(), ...machineInfo() };
log(
  `turbomdbx concurrent-transaction benchmarks: ${info.runtime} ${info.version}, ${info.cores} x ${info.cpu}, ` +
    `scratch ${scratch.path}`,
);
const durable = stores("durable");
const nosync = stores("nosync");
const impls: Impl[] = [];
const add = (workload: string, impl: string, what: string, txns: number, fn: () => Promise<unknown>) => {
  const id = `${workload} ${impl}`;
  if (args.filter && !args.filter.test(id)) return;
  impls.push({ workload, impl, what, txns, fn });
};

{
  const { env, t, db } = durable;
  const k = new Keys(1 << 16, 1);
  const w = `${GROUP_TXNS} txns from ${GROUP_TASKS} tasks`;
  add(
    "group",
    "transact",
    `env.transact(rmw), ${w}`,
    GROUP_TXNS,
    () => tasks(GROUP_TASKS, GROUP_TXNS, () => rmwTransact(env, t, k.next())),
  );
  add(
    "group",
    "transact pessimistic",
    `env.transact(rmw, pessimistic, forUpdate), ${w}`,
    GROUP_TXNS,
    () => tasks(GROUP_TASKS, GROUP_TXNS, () => rmwTransact(env, t, k.next(), true)),
  );
  add(
    "group",
    "env.write",
    `env.write(rmw) per txn, ${w}`,
    GROUP_TXNS,
    () => tasks(GROUP_TASKS, GROUP_TXNS, () => rmwWrite(env, t, k.next())),
  );
  add(
    "group",
    "lmdb-js transaction",
    `db.transaction(rmw), ${w}`,
    GROUP_TXNS,
    () => tasks(GROUP_TASKS, GROUP_TXNS, () => rmwLmdbTransaction(db, k.next())),
  );
  add(
    "group",
    "lmdb-js ifVersion",
    `getEntry + db.ifVersion(put), ${w}`,
    GROUP_TXNS,
    () => tasks(GROUP_TASKS, GROUP_TXNS, () => rmwLmdbIfVersion(db, k.next())),
  );
}
for (const [mode, s] of [["durable", durable], ["nosync", nosync]] as const) {
  const { env, t, db } = s;
  const n = UNCONTENDED[mode];
  const k = new Keys(1 << 16, 2);
  const workload = mode === "durable" ? "uncontendedDurable" : "uncontendedNosync";
  const w = `${n} txns one after the other, ${mode}`;
  add(workload, "transact", `await env.transact(rmw), ${w}`, n, () => tasks(1, n, () => rmwTransact(env, t, k.next())));
  add(workload, "env.write", `env.write(rmw), ${w}`, n, () => tasks(1, n, () => rmwWrite(env, t, k.next())));
  add(
    workload,
    "lmdb-js transaction",
    `await db.transaction(rmw), ${w}`,
    n,
    () => tasks(1, n, () => rmwLmdbTransaction(db, k.next())),
  );
  add(
    workload,
    "lmdb-js transactionSync",
    `db.transactionSync(rmw), ${w}`,
    n,
    () =>
      tasks(1, n, () =>
        db.transactionSync(() => {
          const key = k.next();
          db.putSync(key, db.get(key)! + 1);
        })),
  );
}

// every implementation once (and how the group commits batched), and the stores must agree that it counted
const batching: Record<string, { batches: number; conflicts: number; maxBatch: number }> = {};
const stats = () => ({ batches: 0, conflicts: 0, maxBatch: 0, ...existingState(durable.env)?.pipeline.stats });
for (const i of impls) {
  const before = stats();
  await i.fn();
  if (i.workload === "group" && i.impl.startsWith("transact")) {
    const after = stats();
    batching[i.impl] = {
      batches: after.batches - before.batches,
      conflicts: after.conflicts - before.conflicts,
      maxBatch: after.maxBatch,
    };
    log(`  ${i.what}: ${batching[i.impl].batches} batches, ${batching[i.impl].conflicts} conflicts retried`);
  }
}
{
  const sum = (env: Env, t: Counters) => env.read((r) => [...r.values(t)].reduce((a, b) => a + b, 0));
  const n = sum(durable.env, durable.t) + sum(nosync.env, nosync.t);
  if (impls.length && n === 0) throw new Error("nothing was counted");
}

const workloads = [...new Set(impls.map((i) => i.workload))];
for (const w of workloads) {
  group(w, () => {
    for (const i of impls.filter((x) => x.workload === w)) bench(`${w} ${i.impl}: ${i.what}`, i.fn);
  });
}
const res = await run({ format: args.json ? "quiet" : "mitata", colors: !args.json && process.stdout.isTTY === true });

interface Result {
  workload: string;
  impl: string;
  what: string;
  txns: number;
  /** Median ns per logical transaction. */
  median: number;
  p75: number;
  p99: number;
  samples: number;
}
const results: Result[] = [];
for (const trial of res.benchmarks) {
  for (const r of trial.runs) {
    const i = impls.find((x) => r.name === `${x.workload} ${x.impl}: ${x.what}`);
    if (!i) continue;
    if (!r.stats) throw new Error(`benchmark ${r.name} failed: ${(r.error as Error)?.message ?? r.error}`);
    results.push({
      workload: i.workload,
      impl: i.impl,
      what: i.what,
      txns: i.txns,
      median: r.stats.p50 / i.txns,
      p75: r.stats.p75 / i.txns,
      p99: r.stats.p99 / i.txns,
      samples: r.stats.samples.length,
    });
  }
}

/** Paired rounds of async iterations: per round, each implementation once (rotating order). */
async function paired(w: string, minRounds: number) {
  const list = impls.filter((x) => x.workload === w);
  const times = new Map(list.map((i) => [i.impl, [] as number[]]));
  const start = performance.now();
  for (let r = 0; r < 101 && (r < minRounds || performance.now() - start < 2000); r++) {
    for (let j = 0; j < list.length; j++) {
      const i = list[(r + j) % list.length];
      const s = performance.now();
      await i.fn();
      times.get(i.impl)!.push(performance.now() - s);
    }
  }
  return times;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface Ratio {
  workload: string;
  label: string;
  /** Median over paired rounds of the per-round ratio (ratio of mitata's medians when no rounds ran). */
  value: number;
  rounds: number;
  /** The same ratio from mitata's medians. */
  ofMedians: number;
  target?: number;
  met?: boolean;
}
const ratios: Ratio[] = [];
const pairedTimes: Record<string, Record<string, number[]>> = {};
for (const w of workloads) {
  const times = args.rounds > 0 ? await paired(w, args.rounds) : new Map<string, number[]>();
  pairedTimes[w] = Object.fromEntries(times);
  for (const spec of RATIOS.filter((x) => x.workload === w)) {
    const a = results.find((x) => x.workload === w && x.impl === spec.num);
    const b = results.find((x) => x.workload === w && x.impl === spec.den);
    if (!a || !b) continue;
    const ta = times.get(spec.num), tb = times.get(spec.den);
    const ofMedians = a.median / b.median;
    const value = ta && tb ? median(ta.map((x, i) => x / tb[i])) : ofMedians;
    const r: Ratio = { workload: w, label: spec.label, value, rounds: ta?.length ?? 0, ofMedians };
    if (spec.target !== undefined) {
      r.target = spec.target;
      r.met = spec.higherIsBetter ? value >= spec.target : value <= spec.target;
    }
    ratios.push(r);
    log(`  ${w}: ${spec.label} = ${value.toFixed(2)}x (${r.rounds} rounds)`);
  }
}

durable.env.close();
nosync.env.close();
durable.db.close();
nosync.db.close();
scratch.remove();

const doc = {
  suite: "concurrent",
  date: new Date().toISOString(),
  ...info,
  counters: COUNTERS,
  unit: "ns per logical transaction (median of iterations / transactions per iteration)",
  benchmarks: results.map((r) => ({
    workload: r.workload,
    impl: r.impl,
    what: r.what,
    txnsPerIteration: r.txns,
    medianNs: r.median,
    p75Ns: r.p75,
    p99Ns: r.p99,
    samples: r.samples,
  })),
  ratios,
  paired: pairedTimes,
  batching,
};
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + "\n");
if (args.json) console.log(JSON.stringify(doc, null, 2));
else {
  const rows = [["workload", "implementation", "per transaction (median)", "p75", "transactions/s"]];
  for (const r of results) rows.push([r.workload, r.impl, ns(r.median), ns(r.p75), (1e9 / r.median).toFixed(0)]);
  const rrows = [["workload", "ratio", "paired median", "of mitata medians", "target"]];
  for (const r of ratios) {
    const mark = r.target === undefined
      ? ""
      : `${r.met ? "ok" : "MISS"} ${r.label.includes("speedup") ? "≥" : "≤"}${r.target}`;
    rrows.push([r.workload, r.label, `${r.value.toFixed(2)}x`, `${r.ofMedians.toFixed(2)}x`, mark]);
  }
  console.log(`\n${table(rows)}\n\n${table(rrows)}`);
}
log(`done in ${since(t0)}`);
