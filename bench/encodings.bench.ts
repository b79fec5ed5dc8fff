/**
 * Value encodings and tuple keys (issue 14): what msgpack values and tuple
 * keys cost against raw bytes, and msgpack values against lmdb-js with its
 * default msgpack encoding, in the same process, in paired rounds.
 *
 *   bun bench/encodings.bench.ts [--records N] [--json] [--out FILE] [--rounds N] [--filter REGEX] [--dir PATH]
 *   deno run -A bench/encodings.bench.ts [...]
 *
 * Data: N objects (default 100,000) `{ n, name, kind, score, tags }` under
 * random 16-byte keys, stored five ways: turbomdbx `values: "msgpack"`
 * (msgpackr, plain maps), `msgpack({ records: true })` (msgpackr records,
 * each value carrying its structure), `msgpack({ structures })` (records
 * with a fixed shared structure list), raw bytes (the msgpack bytes in a
 * binary table: the same B+tree work without the codec), and lmdb-js with
 * its defaults (msgpackr records, each value carrying its structure: the
 * like-for-like is `records: true`). Each iteration is 1000 random operations.
 *
 * Workloads (ratio = turbomdbx's time over the baseline's; lower is better):
 *  - get: `txn.get()` of an object in a read transaction; lmdb-js `db.get()`
 *    (target: < 1 against lmdb-js);
 *  - put: `txn.put()` of an object, 1000 in one write transaction, aborted;
 *    lmdb-js `transactionSync(put x1000)`, aborted (target: < 1);
 *  - tuple put: `txn.put(relations, [src, "out", "follows", dst], null)`
 *    against the same relation as a 35-byte key packed by hand
 *    (`<src 16B><dir 1B><type 2B><dst 16B>`, empty value): the encoding's cost;
 *  - tuple scan: `txn.keys(relations, { prefix: [src, "out"] })` decoding
 *    each tuple, against the raw prefix scan of the packed keys (20 keys per
 *    scan, 50 scans per iteration): the decoding's cost.
 *
 * ok/MISS is printed for the targets; the encoding costs against raw bytes
 * are reported without a target.
 *
 * @module
 */
import { ABORT, open as lmdbOpen, type RootDatabase } from "lmdb";
import process from "node:process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { msgpack, open } from "../mod.ts";
import { log, machineInfo, parseArgs, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { prng } from "./lib/data.ts";
import { type Paired, pairRatio, runPaired } from "./lib/paired.ts";
import { table } from "./lib/report.ts";

const args = parseArgs();
const N = args.records === 1_000_000 && !process.argv.includes("--records") ? 100_000 : args.records;
const OPS = 1000;
const SOURCES = 2000, PER_SOURCE = 20, SCANS = 50;
const t0 = performance.now();
const scratch = scratchDir(args.dir);
const next32 = prng(14);
const rnd = () => next32() / 4294967296;

interface Obj {
  n: number;
  name: string;
  kind: string;
  score: number;
  tags: string[];
}
const KINDS = ["person", "paper", "place", "thing"];
const objectOf = (i: number): Obj => ({
  n: i,
  name: `object ${i}`,
  kind: KINDS[i % 4],
  score: (i * 37) % 1000,
  tags: ["demo", "x"],
});
const randomKey = () => Uint8Array.from({ length: 16 }, () => Math.floor(rnd() * 256));
const keys = Array.from({ length: N }, randomKey);
const picks = Array.from({ length: 64 }, () => Uint32Array.from({ length: OPS }, () => Math.floor(rnd() * N)));
let pickRound = 0;
const nextPicks = () => picks[pickRound++ & 63];

const env = open(join(scratch.path, "tm"), { sync: "nosync", geometry: { upper: "8GiB" } });
const plain = env.table("plain", { values: "msgpack" });
const shape = ["n", "name", "kind", "score", "tags"];
const recordsCodec = msgpack<Obj>({ structures: [shape] });
const records = env.table("records", { values: recordsCodec });
const own = env.table("own", { values: msgpack<Obj>({ records: true }) });
const raw = env.table("raw");
const relations = env.table("relations", { keys: "tuple", values: "msgpack" });
const packed = env.table("packed");
const ldb = lmdbOpen<Obj, Uint8Array>({
  path: join(scratch.path, "lmdb"),
  keyEncoding: "binary",
  noSync: true,
}) as RootDatabase<Obj, Uint8Array>;

const sources: Uint8Array[] = [];
log(`encodings bench on ${runtimeInfo().runtime} ${runtimeInfo().version}: ${N} objects`);
{
  const enc = msgpack();
  for (let i = 0; i < N; i += 10_000) {
    env.write((txn) => {
      for (let j = i; j < Math.min(N, i + 10_000); j++) {
        const o = objectOf(j);
        txn.put(plain, keys[j], o);
        txn.put(records, keys[j], o);
        txn.put(own, keys[j], o);
        txn.put(raw, keys[j], enc.encode(o).slice());
      }
    });
    ldb.transactionSync(() => {
      for (let j = i; j < Math.min(N, i + 10_000); j++) ldb.put(keys[j], objectOf(j));
    });
  }
  // relations: SOURCES sources with PER_SOURCE outgoing relations each, both ways of keying
  const srcIds = Array.from({ length: SOURCES }, randomKey);
  const k = new Uint8Array(35);
  env.write((txn) => {
    for (let s = 0; s < SOURCES; s++) {
      for (let d = 0; d < PER_SOURCE; d++) {
        const dst = keys[(s * PER_SOURCE + d) % N];
        txn.put(relations, [srcIds[s], "out", "follows", dst], null);
        k.set(srcIds[s], 0);
        k[16] = 0;
        k[17] = 0;
        k[18] = 1;
        k.set(dst, 19);
        txn.put(packed, k, new Uint8Array(0));
      }
    }
  });
  sources.push(...srcIds);
  log(`  loaded in ${since(t0)}`);
}

// sanity: every store holds the same object
env.read((txn) => {
  const want = JSON.stringify(objectOf(7));
  const got = {
    plain: txn.get(plain, keys[7]),
    records: txn.get(records, keys[7]),
    own: txn.get(own, keys[7]),
    lmdb: ldb.get(keys[7]),
  };
  for (const [name, v] of Object.entries(got)) {
    if (JSON.stringify(v) !== want) throw new Error(`${name} returned ${JSON.stringify(v)}, not ${want}`);
  }

  if (txn.count(relations, { prefix: [sources[0], "out"] }) !== PER_SOURCE) throw new Error("relations not loaded");
});

const paired: Paired[] = [];
const options = { minRounds: Math.max(args.rounds, 9), budgetMs: 3000 };
const run = (workload: string, fns: Map<string, () => unknown>) => {
  if (args.filter && !args.filter.test(workload)) return;
  log(`  ${workload}`);
  paired.push(runPaired("encodings", workload, fns, options));
};

// get
run(
  "get",
  new Map<string, () => unknown>([
    ["turbomdbx", () => {
      const p = nextPicks();
      let s = 0;
      env.read((txn) => {
        for (let i = 0; i < OPS; i++) s += (txn.get(plain, keys[p[i]]) as Obj).score;
      });
      return s;
    }],
    ["turbomdbx-records", () => {
      const p = nextPicks();
      let s = 0;
      env.read((txn) => {
        for (let i = 0; i < OPS; i++) s += txn.get(records, keys[p[i]])!.score;
      });
      return s;
    }],
    ["turbomdbx-own", () => {
      const p = nextPicks();
      let s = 0;
      env.read((txn) => {
        for (let i = 0; i < OPS; i++) s += txn.get(own, keys[p[i]])!.score;
      });
      return s;
    }],
    ["raw", () => {
      const p = nextPicks();
      let s = 0;
      env.read((txn) => {
        for (let i = 0; i < OPS; i++) s += txn.get(raw, keys[p[i]])!.length;
      });
      return s;
    }],
    ["lmdb-js", () => {
      const p = nextPicks();
      let s = 0;
      for (let i = 0; i < OPS; i++) s += ldb.get(keys[p[i]])!.score;
      return s;
    }],
  ]),
);

// put
const objs = Array.from({ length: OPS }, (_, i) => objectOf(i));
const rawObjs = objs.map((o) => msgpack().encode(o).slice());
run(
  "put",
  new Map<string, () => unknown>([
    ["turbomdbx", () => {
      const p = nextPicks();
      const txn = env.beginWrite();
      for (let i = 0; i < OPS; i++) txn.put(plain, keys[p[i]], objs[i]);
      txn.abort();
    }],
    ["turbomdbx-records", () => {
      const p = nextPicks();
      const txn = env.beginWrite();
      for (let i = 0; i < OPS; i++) txn.put(records, keys[p[i]], objs[i]);
      txn.abort();
    }],
    ["turbomdbx-own", () => {
      const p = nextPicks();
      const txn = env.beginWrite();
      for (let i = 0; i < OPS; i++) txn.put(own, keys[p[i]], objs[i]);
      txn.abort();
    }],
    ["raw", () => {
      const p = nextPicks();
      const txn = env.beginWrite();
      for (let i = 0; i < OPS; i++) txn.put(raw, keys[p[i]], rawObjs[i]);
      txn.abort();
    }],
    ["lmdb-js", () => {
      const p = nextPicks();
      ldb.transactionSync(() => {
        for (let i = 0; i < OPS; i++) ldb.put(keys[p[i]], objs[i]);
        return ABORT;
      });
    }],
  ]),
);

// tuple keys: encode + put, against keys packed by hand
const relKey = new Uint8Array(35);
const empty = new Uint8Array(0);
run(
  "tuple put",
  new Map<string, () => unknown>([
    ["turbomdbx", () => {
      const p = nextPicks();
      const txn = env.beginWrite();
      for (let i = 0; i < OPS; i++) txn.put(relations, [sources[p[i] % SOURCES], "out", "follows", keys[p[i]]], null);
      txn.abort();
    }],
    ["raw", () => {
      const p = nextPicks();
      const txn = env.beginWrite();
      for (let i = 0; i < OPS; i++) {
        relKey.set(sources[p[i] % SOURCES], 0);
        relKey[16] = 0;
        relKey[17] = 0;
        relKey[18] = 1;
        relKey.set(keys[p[i]], 19);
        txn.put(packed, relKey, empty);
      }
      txn.abort();
    }],
  ]),
);

// tuple keys: prefix scan + decode, against the raw prefix scan
const rawPrefix = new Uint8Array(17);
const tuplePrefix: [Uint8Array, string] = [sources[0], "out"];
run(
  "tuple scan",
  new Map<string, () => unknown>([
    ["turbomdbx", () => {
      const p = nextPicks();
      let n = 0;
      env.read((txn) => {
        for (let i = 0; i < SCANS; i++) {
          tuplePrefix[0] = sources[p[i] % SOURCES];
          for (const k of txn.keys(relations, { prefix: tuplePrefix })) n += (k[3] as Uint8Array).length;
        }
      });
      return n;
    }],
    ["raw", () => {
      const p = nextPicks();
      let n = 0;
      env.read((txn) => {
        for (let i = 0; i < SCANS; i++) {
          rawPrefix.set(sources[p[i] % SOURCES], 0);
          for (const k of txn.keys(packed, { prefix: rawPrefix })) n += k.subarray(19, 35).length;
        }
      });
      return n;
    }],
  ]),
);

/** The ratios the suite is judged by: [workload, contender, baseline, target (contender / baseline below it)]. */
const JUDGED: [string, string, string, number | undefined][] = [
  ["get", "turbomdbx", "lmdb-js", 1],
  ["get", "turbomdbx-own", "lmdb-js", 1],
  ["get", "turbomdbx-records", "lmdb-js", 1],
  ["put", "turbomdbx", "lmdb-js", 1],
  ["put", "turbomdbx-own", "lmdb-js", 1],
  ["put", "turbomdbx-records", "lmdb-js", 1],
  ["get", "turbomdbx", "raw", undefined],
  ["get", "turbomdbx-records", "raw", undefined],
  ["put", "turbomdbx", "raw", undefined],
  ["tuple put", "turbomdbx", "raw", undefined],
  ["tuple scan", "turbomdbx", "raw", undefined],
];
const LABEL: Record<string, string> = {
  "turbomdbx": 'turbomdbx values: "msgpack"',
  "turbomdbx-own": "turbomdbx msgpack({ records: true })",
  "turbomdbx-records": "turbomdbx msgpack({ structures })",
  "raw": "turbomdbx raw bytes",
  "lmdb-js": "lmdb-js (default msgpack)",
};
const label = (workload: string, impl: string) =>
  workload.startsWith("tuple")
    ? (impl === "raw" ? "hand-packed 35-byte keys" : "tuple keys [src, dir, type, dst]")
    : (LABEL[impl] ?? impl);
const rows = [["workload", "implementation", "per op (median)"]];
for (const p of paired) {
  const per = p.workload === "tuple scan" ? SCANS * PER_SOURCE : OPS;
  for (const [impl, ms] of Object.entries(p.medianMs)) {
    rows.push([p.workload, label(p.workload, impl), `${((ms! * 1e6) / per).toFixed(0)} ns`]);
  }
}
const ratios: {
  workload: string;
  contender: string;
  baseline: string;
  ratio: number;
  target?: number;
  met?: boolean;
}[] = [];
const rrows = [["workload", "ratio (paired median)", "", "target"]];
for (const [workload, a, b, target] of JUDGED) {
  const p = paired.find((x) => x.workload === workload);
  if (!p) continue;
  const ratio = pairRatio(p, a, b);
  const met = target === undefined ? undefined : ratio < target;
  ratios.push({ workload, contender: a, baseline: b, ratio, target, met });
  rrows.push([
    workload,
    `${label(workload, a)} / ${label(workload, b)}`,
    `${ratio.toFixed(2)}x`,
    target === undefined ? "" : `${met ? "ok" : "MISS"} < ${target}`,
  ]);
}
const doc = {
  bench: "encodings",
  ...runtimeInfo(),
  ...machineInfo(),
  records: N,
  opsPerIteration: OPS,
  paired: paired.map((p) => ({ workload: p.workload, rounds: p.rounds, medianMs: p.medianMs, ratio: p.ratio })),
  ratios,
};
if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + "\n");
if (args.json) console.log(JSON.stringify(doc, null, 2));
else console.log(`\n${table(rows)}\n\n${table(rrows)}`);
env.close();
ldb.close();
scratch.remove();
log(`done in ${since(t0)}`);
