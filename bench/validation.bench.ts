/**
 * What `validation: true` costs: the same database opened twice (two copies of
 * one file), once with libmdbx's page validation (MDBX_VALIDATION) and once
 * without, in one process, measured in paired rounds (bench/lib/paired.ts).
 * The figures decide the default (docs/api.md, "Damaged files"; the numbers in
 * docs/benchmarks.md, "Page validation").
 *
 *   bun bench/validation.bench.ts [--records N] [--values 100,1000] [--rounds N] [--json] [--out FILE]
 *   deno run -A bench/validation.bench.ts [...]
 *
 * Per data set (N random 16-byte keys; values of 100 and of 1000 bytes):
 *  - get: 1000 uniform random `get()`s of existing keys in one read transaction;
 *  - put: 20,000 random `put()`s of existing keys in one write transaction,
 *    aborted, so every iteration starts from the same database;
 *  - scan: `range()` over 100,000 entries from a random key (on from the first key past the last), values
 *    copied.
 *
 * Prints, per workload, the median time per operation with and without
 * validation and the median over rounds of their ratio (on / off: how many
 * times slower validation makes it); `--json` prints one JSON document.
 *
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { type Env, open, type Table } from "../mod.ts";
import { log, machineInfo, parseArgs, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { Batches, Dataset } from "./lib/data.ts";
import { pairRatio, runPaired } from "./lib/paired.ts";
import { ns, table } from "./lib/report.ts";

const KEY_SIZE = 16;
const GET_BATCH = 1000;
const PUTS_PER_TXN = 20_000;
const SCAN_LENGTH = 100_000;
const LOAD_TXN = 100_000;

const USAGE = `usage: validation.bench.ts [--records N] [--values 100,1000] [--rounds N] [--json] [--out FILE]
                           [--filter REGEX] [--dir PATH]
  --records N      records per data set (default 1000000; e.g. 20000 for a quick run)
  --values LIST    value sizes in bytes, one data set each (default 100,1000)
  --rounds N       minimum paired rounds per workload (default 9)
  --json           print one JSON document on stdout (progress goes to stderr)
  --out FILE       also write the JSON document to FILE
  --filter REGEX   only workloads whose id matches, e.g. "get", "1000B"
  --dir PATH       where the temporary databases go (default: the OS temp dir)`;

if (process.argv.includes("-h") || process.argv.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}
const args = parseArgs();
const scratch = scratchDir(args.dir);
const geometry = { upper: "64GiB", growth: "256MiB" };

type Bin = Table<"binary", "binary">;

interface Row {
  values: number;
  workload: "get" | "put" | "scan";
  /** Operations per iteration (gets, puts, entries scanned). */
  ops: number;
  rounds: number;
  /** Median ns per operation without and with validation. */
  offNs: number;
  onNs: number;
  /** Median over rounds of on / off. */
  ratio: number;
}

/** Two copies of one database of `ds`: `off` opened as usual, `on` with validation: true. */
function setUp(ds: Dataset, label: string): { off: Env; on: Env; closers: (() => void)[] } {
  const t0 = performance.now();
  const offPath = join(scratch.path, `off-${label}`), onPath = join(scratch.path, `on-${label}.mdbx`);
  {
    using env = open(offPath, { sync: "nosync", geometry });
    const t = env.table("data") as Bin;
    for (let i = 0; i < ds.count;) {
      const end = Math.min(ds.count, i + LOAD_TXN);
      env.write((txn) => {
        for (; i < end; i++) txn.put(t, ds.key(i), ds.value(i));
      });
    }
    env.sync(true);
    // a compacted copy would have fewer, fuller pages than the original: copy the file as it is
    env.copy(onPath, { compact: false });
  }
  const off = open(offPath, { sync: "nosync", geometry });
  const on = open(onPath, { noSubdir: true, sync: "nosync", geometry, validation: true });
  log(`  ${label}: ${ds.count} records, two copies, in ${since(t0)}`);
  return { off, on, closers: [() => off.close(), () => on.close()] };
}

function workloads(env: Env, ds: Dataset, seed: number): Map<Row["workload"], () => number> {
  const t = env.table("data") as Bin;
  const gets = new Batches(ds.sample(1 << 18, seed), GET_BATCH);
  const puts = ds.sample(PUTS_PER_TXN * 4, seed + 1);
  const starts = ds.sample(1024, seed + 2);
  let putRound = 0, scanRound = 0;
  const value = new Uint8Array(ds.valueSize);
  const m = new Map<Row["workload"], () => number>();
  m.set("get", () => {
    const base = gets.next() * GET_BATCH, list = gets.sample.list;
    return env.read((txn) => {
      let s = 0;
      for (let i = base; i < base + GET_BATCH; i++) s += txn.get(t, list[i])!.length;
      return s;
    });
  });
  m.set("put", () => {
    const base = (putRound++ % 4) * PUTS_PER_TXN, list = puts.list;
    value[0] = putRound & 255;
    const txn = env.beginWrite({ noSync: true });
    try {
      for (let i = base; i < base + PUTS_PER_TXN; i++) txn.put(t, list[i], value);
    } finally {
      txn.abort();
    }
    return PUTS_PER_TXN;
  });
  m.set("scan", () => {
    const from = starts.list[scanRound++ % starts.list.length];
    return env.read((txn) => {
      // from a random key; past the last one, on from the first, so every iteration reads scanLength entries
      let s = 0, n = 0;
      for (const { value } of txn.range(t, { gte: from, limit: scanLength })) s += value.length, n++;
      for (const { value } of txn.range(t, { lt: from, limit: scanLength - n })) s += value.length;
      return s;
    });
  });
  return m;
}

const scanLength = Math.min(SCAN_LENGTH, args.records);
const OPS: Record<Row["workload"], number> = { get: GET_BATCH, put: PUTS_PER_TXN, scan: scanLength };

const rows: Row[] = [];
const rt = runtimeInfo();
log(
  `validation.bench.ts: ${rt.runtime} ${rt.version}, ${args.records} records, values ${args.valueSizes.join(", ")} B`,
);
try {
  for (const size of args.valueSizes) {
    const label = `${size}B`;
    const ds = new Dataset(args.records, KEY_SIZE, size, 1);
    const { off, on, closers } = setUp(ds, label);
    try {
      const a = workloads(off, ds, 11), b = workloads(on, ds, 11);
      // touch every page of both maps once, so that neither pays the first faults in the rounds
      for (const env of [off, on]) {
        env.read((txn) => {
          for (const _ of txn.keys(env.table("data"))) { /* warm */ }
        });
      }
      for (const w of ["get", "put", "scan"] as const) {
        const id = `${label} ${w}`;
        if (args.filter && !args.filter.test(id)) continue;
        const p = runPaired(label, w, new Map([["off", a.get(w)!], ["on", b.get(w)!]]), {
          minRounds: Math.max(args.rounds, 3),
        });
        const row: Row = {
          values: size,
          workload: w,
          ops: OPS[w],
          rounds: p.rounds,
          offNs: p.medianMs.off! * 1e6 / OPS[w],
          onNs: p.medianMs.on! * 1e6 / OPS[w],
          ratio: pairRatio(p, "on", "off"),
        };
        rows.push(row);
        log(
          `  ${id}: off ${ns(row.offNs)}, on ${ns(row.onNs)} per op, on/off ${
            row.ratio.toFixed(2)
          } (${p.rounds} rounds)`,
        );
      }
    } finally {
      for (const c of closers) c();
    }
  }
} finally {
  scratch.remove();
}

const doc = {
  bench: "validation",
  runtime: rt,
  machine: machineInfo(),
  records: args.records,
  date: new Date().toISOString(),
  results: rows,
};
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + "\n");
if (args.json) console.log(JSON.stringify(doc, null, 2));
else {
  console.log(
    `\nvalidation: true over false (median of per-round ratios; > 1: slower with validation), ${rt.runtime}\n`,
  );
  console.log(table([
    ["values", "workload", "ops/iter", "off / op", "on / op", "on / off", "rounds"],
    ...rows.map((r) => [
      `${r.values} B`,
      r.workload,
      String(r.ops),
      ns(r.offNs),
      ns(r.onNs),
      r.ratio.toFixed(2),
      String(r.rounds),
    ]),
  ]));
}
