/**
 * Order statistics (docs/order-statistics.md): `txn.count()`, `rank()`, `at()`
 * and `range({ offset })` by memoised subtree counts, against the walking
 * count and offset stepping they replace, in one process, in paired rounds
 * (bench/lib/paired.ts); and the compact relation index (dupsort + dupfixed)
 * against the composite-key layout.
 *
 *   bun bench/ostat.bench.ts [--records N] [--large] [--rounds N] [--json] [--out FILE] [--dir PATH]
 *   deno run -A bench/ostat.bench.ts [...]
 *
 * Data: N entries (default 1,000,000) with 16-byte keys and 16-byte values;
 * the cost-flatness rows also build 100,000 (and with --large 10,000,000).
 *
 * Rows:
 *  - count of half the table (a bounded range of N/2 entries) and of a bounded
 *    range over all N: warm `count()` vs the walking count (target >= 100x for
 *    ranges of 1M entries);
 *  - rank of a random key vs walking count({ lt: key }); at(i) and range({ offset: i })
 *    at random positions vs offset stepping (the native scan skipping i entries);
 *  - warm rank cost at 100k / 1M (/ 10M) entries: flat within 2x;
 *  - cold: the first count after the memo is cleared vs one full scan of the table;
 *  - memory: memo bytes per page of the table (every branch page memoised);
 *  - writes: commits of 1,000 random updates to the table, each followed by a
 *    count (outside the timing: counts kept warm) or not, in alternating rounds
 *    (target <= 10 % slower), and the count right after such a commit (what
 *    re-warming costs);
 *  - relation index: 1M relations as <src16><dir1><type2><dst16> keys vs a
 *    dupsort+dupfixed table <src16><dir1><type2> -> dst16: file pages (target
 *    >= 35 % smaller) and the time to read all relations of random sources
 *    (dups(), and dupsPacked(): a page of values per native call).
 *
 * Prints every figure with its target and ok or MISS; --json prints one JSON document.
 *
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { configureOrderStatistics, type Env, open, orderStatistics, type Table } from "../mod.ts";
import { ostatBaseline } from "../src/ostat.ts";
import { log, machineInfo, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { prng as prng32 } from "./lib/data.ts";
import { runPaired } from "./lib/paired.ts";
import { table } from "./lib/report.ts";

const USAGE = `usage: ostat.bench.ts [--records N] [--large] [--rounds N] [--json] [--out FILE] [--dir PATH]
  --records N   entries of the main table (default 1000000)
  --large       also build 10,000,000 entries for the cost-flatness row (minutes, ~1 GB of disk)
  --rounds N    minimum paired rounds per workload (default 7)
  --json        print one JSON document on stdout (progress goes to stderr)
  --out FILE    also write the JSON document to FILE
  --dir PATH    where the temporary databases go (default: the OS temp dir)`;

interface Args {
  records: number;
  large: boolean;
  rounds: number;
  json: boolean;
  out?: string;
  dir: string;
}

function parse(argv: string[]): Args {
  const a: Args = { records: 1_000_000, large: false, rounds: 7, json: false, dir: process.env.TMPDIR || "/tmp" };
  const bad = (m: string): never => {
    console.error(`${m}\n${USAGE}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? bad(`${flag} needs a value`);
    if (flag === "--records") {
      a.records = Number(value().replaceAll("_", ""));
      if (!Number.isSafeInteger(a.records) || a.records < 10_000) bad("--records must be an integer >= 10000");
    } else if (flag === "--large") a.large = true;
    else if (flag === "--rounds") a.rounds = Number(value());
    else if (flag === "--json") a.json = true;
    else if (flag === "--out") a.out = value();
    else if (flag === "--dir") a.dir = value();
    else if (flag === "-h" || flag === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else bad(`unknown option ${flag}`);
  }
  return a;
}

const args = parse(process.argv.slice(2));
const scratch = scratchDir(args.dir);
const geometry = { upper: "64GiB", growth: "256MiB" };
type Bin = Table<"binary", "binary">;

function key(i: number): Uint8Array {
  const k = new Uint8Array(16);
  const dv = new DataView(k.buffer);
  dv.setUint32(0, Math.floor(i / 2 ** 32));
  dv.setUint32(4, i >>> 0);
  dv.setUint32(8, 0x9e3779b9 ^ i); // not all zeros: a realistic prefix spread
  return k;
}

/** A database with `n` entries in table "data". */
function build(n: number, name: string): Env {
  const t0 = performance.now();
  const env = open(join(scratch.path, name), { sync: "nosync", geometry });
  const t = env.table("data") as Bin;
  const v = new Uint8Array(16);
  for (let i = 0; i < n;) {
    const end = Math.min(n, i + 200_000);
    env.write((txn) => {
      for (; i < end; i++) {
        const k = key(i);
        v[0] = i & 255;
        txn.put(t, k, v);
      }
    });
  }
  log(`  ${name}: ${n} entries in ${since(t0)}`);
  return env;
}

interface Row {
  /** What is compared. */
  name: string;
  /** The measured figure. */
  value: number;
  unit: "x" | "us" | "ms" | "B" | "%";
  /** The target, if this row has one: value >= min or value <= max. */
  min?: number;
  max?: number;
  rounds?: number;
  /** Medians of the two sides (ms per iteration), where paired. */
  ms?: Record<string, number>;
  met?: boolean;
}

const rows: Row[] = [];
function row(r: Row): void {
  if (r.min !== undefined) r.met = r.value >= r.min;
  if (r.max !== undefined) r.met = r.value <= r.max;
  rows.push(r);
  log(`  ${r.name}: ${fmt(r)}${r.met === undefined ? "" : r.met ? "  ok" : "  MISS"}`);
}
function fmt(r: Row): string {
  const v = r.unit === "x" ? r.value.toFixed(r.value >= 100 ? 0 : 2) : r.value.toFixed(r.unit === "B" ? 2 : 3);
  return `${v} ${r.unit}`;
}

/** Paired rounds of turbomdbx (ostat) against the baseline (walking/stepping); the speedup is baseline / ostat. */
function speedup(name: string, ostat: () => number, baseline: () => number, min?: number, rounds = args.rounds): Row {
  const fns = new Map<string, () => number>([
    ["turbomdbx", ostat],
    ["baseline", () => {
      ostatBaseline.walking = true;
      try {
        return baseline();
      } finally {
        ostatBaseline.walking = false;
      }
    }],
  ]);
  const p = runPaired("ostat", name, fns, { minRounds: rounds, budgetMs: 3000, maxRounds: 41 });
  const r: Row = {
    name,
    value: 1 / p.ratio.baseline!,
    unit: "x",
    min,
    rounds: p.rounds,
    ms: { ostat: p.medianMs.turbomdbx!, baseline: p.medianMs.baseline! },
  };
  row(r);
  return r;
}

/** Numbers uniform in [0, 1) from the benchmarks' seeded generator. */
function prng(seed: number): () => number {
  const next = prng32(seed);
  return () => next() / 2 ** 32;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/**
 * Warm rank cost at several table sizes, in paired rounds: each round times
 * 2000 ranks of random keys on every size (rotating order), so drift of the
 * machine or the runtime's heap lands on all sizes alike. Returns the median
 * µs per rank of each size and the median over rounds of largest / smallest.
 */
function flatness(
  envs: { n: number; env: Env }[],
): { us: number[]; ratio: number; getUs: number[]; getRatio: number; rounds: number } {
  const txns = envs.map(({ env }) => env.beginRead());
  try {
    const sets = envs.map(({ n }, i) => {
      const rng = prng(5 + i);
      return Array.from({ length: 2000 }, () => key(Math.floor(rng() * n)));
    });
    const tables = envs.map(({ env }) => env.table("data") as Bin);
    txns.forEach((txn, i) => txn.count(tables[i], { gte: sets[i][0] })); // warm: every branch memoised
    const times = envs.map(() => [] as number[]), gets = envs.map(() => [] as number[]);
    const rounds = 31;
    let sink = 0;
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < envs.length; j++) {
        const i = (r + j) % envs.length, txn = txns[i], t = tables[i];
        const s = performance.now();
        for (const k of sets[i]) sink += txn.rank(t, k);
        times[i].push((performance.now() - s) * 1000 / sets[i].length);
        // beside it, the B-tree lookup of the same keys: how much of the growth is the tree's, not the counts'
        const s2 = performance.now();
        for (const k of sets[i]) sink += txn.get(t, k)!.length;
        gets[i].push((performance.now() - s2) * 1000 / sets[i].length);
      }
    }
    if (sink < 0) log("");
    const last = envs.length - 1;
    return {
      us: times.map(median),
      ratio: median(times[last].map((x, r) => x / times[0][r])),
      getUs: gets.map(median),
      getRatio: median(gets[last].map((x, r) => x / gets[0][r])),
      rounds,
    };
  } finally {
    for (const txn of txns) txn.abort();
  }
}

const rt = runtimeInfo();
log(`ostat.bench.ts: ${rt.runtime} ${rt.version}, ${args.records} entries${args.large ? ", --large" : ""}`);
const t0 = performance.now();
try {
  const N = args.records;
  const env = build(N, "main");
  const t = env.table("data") as Bin;
  const rng = prng(7);
  const rand = (n: number) => Math.floor(rng() * n);
  try {
    // --- cold, memory ---------------------------------------------------------------------------------------------
    env.read((txn) => {
      const colds: number[] = [], scans: number[] = [];
      for (let r = 0; r < 3; r++) {
        configureOrderStatistics(txn, { clear: true });
        let s = performance.now();
        txn.count(t, { gte: key(N >> 2), lt: key(N - (N >> 2)) });
        colds.push(performance.now() - s);
        s = performance.now();
        txn._countWalk(t);
        scans.push(performance.now() - s);
      }
      const st = txn.stat(t);
      const pages = st.branchPages + st.leafPages;
      row({ name: "cold first count (memo cleared), ms", value: median(colds), unit: "ms" });
      row({ name: "one full walking count of the table, ms", value: median(scans), unit: "ms" });
      row({ name: "cold first count / full walking count", value: median(colds) / median(scans), unit: "x" });
      const os = orderStatistics(txn);
      row({
        name: `memo bytes per page of the table (${pages} pages, ${os.entries} memoised)`,
        value: os.bytes / pages,
        unit: "B",
      });
      row({ name: "memo bytes per entry of the table", value: os.bytes / N, unit: "B" });
    });

    // --- counts, ranks, positions -----------------------------------------------------------------------------------
    env.read((txn) => {
      txn.count(t); // warm
      const half = { gte: key(N >> 2), lt: key(N - (N >> 2)) };
      const all = { gte: key(0), lte: key(N - 1) };
      speedup(
        `count of a range of ${N >> 1} entries: walking / ostat`,
        () => txn.count(t, half),
        () => txn.count(t, half),
      );
      speedup(
        `count of a bounded range of ${N} entries: walking / ostat`,
        () => txn.count(t, all),
        () => txn.count(t, all),
        N >= 1_000_000 ? 100 : undefined,
      );
      const ranks = Array.from({ length: 10 }, () => key(rand(N)));
      speedup("rank of a random key (10 per iteration): walking count({ lt }) / rank", () => {
        let s = 0;
        for (const k of ranks) s += txn.rank(t, k);
        return s;
      }, () => {
        let s = 0;
        for (const k of ranks) s += txn.count(t, { lt: k });
        return s;
      });
      const pos = Array.from({ length: 10 }, () => rand(N));
      speedup("at(i) at random positions (10 per iteration): offset stepping / at", () => {
        let s = 0;
        for (const i of pos) s += txn.at(t, i)!.key[7];
        return s;
      }, () => {
        let s = 0;
        for (const i of pos) for (const e of txn.range(t, { offset: i, limit: 1 })) s += e.key[7];
        return s;
      });
      speedup("range({ offset: i, limit: 10 }) at random positions: stepping / by position", () => {
        let s = 0;
        for (const i of pos) for (const e of txn.range(t, { offset: i, limit: 10 })) s += e.key[7];
        return s;
      }, () => {
        let s = 0;
        for (const i of pos) for (const e of txn.range(t, { offset: i, limit: 10 })) s += e.key[7];
        return s;
      });
    });

    // --- writes with counts warm -------------------------------------------------------------------------------------
    {
      const v = new Uint8Array(16);
      const commit = (tt: Bin) => () => {
        env.write((txn) => {
          for (let i = 0; i < 1000; i++) {
            v[1] = rand(256);
            txn.put(tt, key(rand(N)), v);
          }
        });
        return 0;
      };
      // paired rounds by hand, both sides on the same table (the same tree): the warm side counts after its commit
      // (timed apart, not as part of the write), the other side does not; the memo has no hook in the write path,
      // so this shows whether keeping counts warm costs writes anything (CPU caches, allocation, the memo's upkeep)
      const warmMs: number[] = [], coldMs: number[] = [], recounts: number[] = [];
      const half = { gte: key(N >> 2), lt: key(N - (N >> 2)) };
      env.read((txn) => txn.count(t, half));
      const warm = commit(t), cold = commit(t);
      const rounds = Math.max(args.rounds, 41);
      for (let r = 0; r < rounds; r++) {
        for (const side of r % 2 ? ["warm", "cold"] : ["cold", "warm"]) {
          const s = performance.now();
          (side === "warm" ? warm : cold)();
          (side === "warm" ? warmMs : coldMs).push(performance.now() - s);
          if (side === "warm") {
            const s2 = performance.now();
            env.read((txn) => txn.count(t, half));
            recounts.push(performance.now() - s2);
          }
        }
      }
      const ratios = warmMs.map((w, i) => w / coldMs[i]);
      const p = { rounds };
      const writeMs = median(warmMs), base = median(coldMs);
      row({
        name: "commit of 1000 random updates, counted after each / not counted (slowdown %)",
        value: (median(ratios) - 1) * 100,
        unit: "%",
        max: 10,
        rounds: p.rounds,
        ms: { warm: writeMs, baseline: base },
      });
      row({
        name: "count of half the table right after such a commit (re-warming), ms",
        value: median(recounts),
        unit: "ms",
      });
    }

    // --- flatness: the same warm rank at 100k, N (and 10M) entries -----------------------------------------------
    const others = [100_000, ...(args.large ? [10_000_000] : [])].filter((n) => n !== N);
    const built = others.map((n) => ({ n, env: build(n, `n${n}`) }));
    try {
      const envs = [...built, { n: N, env }].sort((a, b) => a.n - b.n);
      const f = flatness(envs);
      envs.forEach(({ n }, i) =>
        row({ name: `warm rank at ${n.toLocaleString("en-US")} entries, us`, value: f.us[i], unit: "us" })
      );
      row({
        name: `warm rank cost, ${envs[envs.length - 1].n.toLocaleString("en-US")} / ${
          envs[0].n.toLocaleString("en-US")
        } entries`,
        value: f.ratio,
        unit: "x",
        max: 2,
        rounds: f.rounds,
      });
      envs.forEach(({ n }, i) =>
        row({
          name: `get() of the same keys at ${n.toLocaleString("en-US")} entries, us`,
          value: f.getUs[i],
          unit: "us",
        })
      );
      row({
        name: `get() cost beside it, ${envs[envs.length - 1].n.toLocaleString("en-US")} / ${
          envs[0].n.toLocaleString("en-US")
        } entries`,
        value: f.getRatio,
        unit: "x",
        rounds: f.rounds,
      });
    } finally {
      for (const b of built) b.env.close();
    }
  } finally {
    env.close();
  }

  // --- relation index ------------------------------------------------------------------------------------------------
  relations();
} finally {
  scratch.remove();
}

function relations(): void {
  const SOURCES = 50_000, PER = 20; // 1,000,000 relations, 20 per source (10 of each of two types)
  const src = (s: number) => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setUint32(0, Math.imul(s, 0x9e3779b1) >>> 0);
    new DataView(b.buffer).setUint32(12, s);
    return b;
  };
  const dst = (s: number, j: number) => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setUint32(0, Math.imul(s * 31 + j, 0x85ebca6b) >>> 0);
    new DataView(b.buffer).setUint32(12, j);
    return b;
  };
  const prefixOf = (s: number, type: number) => {
    const p = new Uint8Array(19);
    p.set(src(s));
    p[16] = 0; // dir: outgoing
    p[18] = type;
    return p;
  };
  const t1 = performance.now();
  const a = open(join(scratch.path, "rel-composite"), { sync: "nosync", geometry });
  const b = open(join(scratch.path, "rel-dupfixed"), { sync: "nosync", geometry });
  try {
    const comp = a.table("relations") as Bin;
    const packed = b.table("relations", { dupSort: true, dupFixed: true }) as Bin;
    const empty = new Uint8Array(0);
    for (let s0 = 0; s0 < SOURCES; s0 += 5000) {
      a.write((txn) => {
        for (let s = s0; s < s0 + 5000; s++) {
          for (let j = 0; j < PER; j++) {
            const k = new Uint8Array(35);
            k.set(prefixOf(s, j & 1));
            k.set(dst(s, j), 19);
            txn.put(comp, k, empty);
          }
        }
      });
      b.write((txn) => {
        for (let s = s0; s < s0 + 5000; s++) {
          for (let j = 0; j < PER; j++) txn.put(packed, prefixOf(s, j & 1), dst(s, j));
        }
      });
    }
    log(`  relation index: ${SOURCES * PER} relations, both layouts, in ${since(t1)}`);
    const pagesOf = (e: Env, tt: Bin) =>
      e.read((txn) => {
        const st = txn.stat(tt);
        return st.branchPages + st.leafPages + st.largePages;
      });
    const pa = pagesOf(a, comp), pb = pagesOf(b, packed);
    row({
      name: `relation index pages: composite keys ${pa}, dupsort+dupfixed ${pb} (smaller by %)`,
      value: (1 - pb / pa) * 100,
      unit: "%",
      min: 35,
    });
    const rng = prng(11);
    const picks = Array.from({ length: 200 }, () => Math.floor(rng() * SOURCES));
    const rb = b.beginRead(), ra = a.beginRead();
    try {
      const compositeScan = () => {
        let n = 0;
        for (const s of picks) for (const _ of ra.keys(comp, { prefix: prefixOf(s, 1) })) n++;
        return n;
      };
      const scans: [string, () => number][] = [
        ["dups()", () => {
          let n = 0;
          for (const s of picks) for (const _ of rb.dups(packed, prefixOf(s, 1))) n++;
          return n;
        }],
        ["dupsPacked()", () => {
          let n = 0;
          for (const s of picks) n += rb.dupsPacked(packed, prefixOf(s, 1)).length >> 4;
          return n;
        }],
      ];
      for (const [name, f] of scans) {
        const p = runPaired("relations", name, new Map([["turbomdbx", f], ["baseline", compositeScan]]), {
          minRounds: args.rounds,
          budgetMs: 2000,
        });
        row({
          name: `reading the relations of a source and type: composite prefix scan / dupfixed ${name}`,
          value: 1 / p.ratio.baseline!,
          unit: "x",
          rounds: p.rounds,
          ms: { dupfixed: p.medianMs.turbomdbx!, composite: p.medianMs.baseline! },
        });
      }
    } finally {
      rb.abort();
      ra.abort();
    }
  } finally {
    a.close();
    b.close();
  }
}

// --- report ----------------------------------------------------------------------------------------------------------
const doc = {
  bench: "ostat",
  runtime: rt,
  machine: machineInfo(),
  records: args.records,
  large: args.large,
  seconds: (performance.now() - t0) / 1000,
  rows,
};
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2));
if (args.json) console.log(JSON.stringify(doc, null, 2));
else {
  const out = rows.map((r) => [
    r.name,
    fmt(r),
    r.min !== undefined ? `>= ${r.min}` : r.max !== undefined ? `<= ${r.max}` : "-",
    r.rounds ? String(r.rounds) : "-",
    r.met === undefined ? "" : r.met ? "ok" : "MISS",
  ]);
  console.log(
    `\nostat.bench.ts on ${rt.runtime} ${rt.version}, ${args.records} entries (${doc.seconds.toFixed(0)} s)\n`,
  );
  console.log(table([["figure", "measured", "target", "rounds", ""], ...out]));
}
