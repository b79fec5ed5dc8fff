/**
 * The turbomdbx demo: the workload the project exists for, measured.
 *
 * An application keeps "objects" (msgpack-encoded, `values: msgpack<Obj>()`)
 * keyed by the tuple `[id]` and a relation index whose keys are the tuples
 * `[src, "out", "follows", dst]` (values null). Following the relations of an
 * object is a prefix scan over the index for `[src, "out"]` and then one
 * `get()` per destination id. IDs are random integers (JavaScript numbers:
 * each encodes to 9 bytes in a tuple, so a destination's key `[dst]` lies at
 * a fixed place in every index key, which `txn.follow()` needs). Reads return
 * decoded objects: msgpack decoding is part of every timing.
 *
 * The demo builds such a database in a temp folder, checks that every
 * relation leads to its object, and measures the workload every way
 * turbomdbx offers, as a table: without the get() cache, then with it
 * (`env.table("objects", { cache: true })`) one get() at a time, batched
 * (`txn.getMany`) and as one native traversal (`txn.follow`). Then it removes
 * the folder again. It runs under Bun (`./run demo`) and Deno:
 *
 *   bun examples/demo.ts [--records N] [--relations R] [--seconds S]
 *   deno run -A examples/demo.ts [--records N] ...
 *
 * "median/op" is the median over batches of (batch time / batch size): a
 * single operation is too short to time on its own; "speedup" compares it with
 * the same workload without the cache, one get() at a time.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { msgpack, open, packTuple, type ReadTxn, runtime } from "../mod.ts";

interface Args {
  records: number;
  relations: number;
  seconds: number;
}

function usageError(message: string): never {
  console.error(`demo: ${message}`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { records: 100_000, relations: 20, seconds: 1 };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    if (name === "--help" || name === "-h") {
      console.log(
        "usage: demo.ts [--records N (100000)] [--relations R per object (20)] [--seconds S per benchmark (1)]",
      );
      process.exit(0);
    }
    const key = name.replace(/^--/, "") as keyof Args;
    if (!name.startsWith("--") || !(key in a)) usageError(`unknown argument ${name}; try --help`);
    const v = Number(argv[++i]);
    if (!(v > 0)) usageError(`${name} needs a positive number`);
    a[key] = key === "seconds" ? v : Math.floor(v);
  }
  return a;
}

// Bun has a nanosecond clock; Deno's performance.now() is the precise one there.
const bunClock = (globalThis as { Bun?: { nanoseconds(): number } }).Bun;
const nowMs: () => number = bunClock ? () => bunClock.nanoseconds() / 1e6 : () => performance.now();

/** A small deterministic PRNG (mulberry32): the same database on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  name: string;
  ops: number;
  ms: number;
  median: number;
  note?: string;
  /** The row this one's speedup is taken against. */
  base?: Row;
}

/**
 * Runs `batch(from, n)` (operations from .. from+n-1) repeatedly, for all
 * `total` operations or until `budgetMs` has passed; returns ops, time and
 * the median per-op time over batches.
 */
function measure(
  name: string,
  batchSize: number,
  total: number,
  budgetMs: number,
  batch: (from: number, n: number) => void,
): Row {
  const perOp: number[] = [];
  let ops = 0, ms = 0;
  while (ops < total && (ms < budgetMs || perOp.length < 5)) {
    const n = Math.min(batchSize, total - ops);
    const t0 = nowMs();
    batch(ops, n);
    const dt = nowMs() - t0;
    ops += n;
    ms += dt;
    perOp.push(dt / n);
  }
  perOp.sort((x, y) => x - y);
  return { name, ops, ms, median: perOp[perOp.length >> 1] };
}

function fmtTime(ms: number): string {
  const ns = ms * 1e6;
  if (ns < 1000) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1000).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");

function printTable(rows: Row[]): void {
  const head = ["operation", "ops", "ops/s", "median/op", "speedup", "note"];
  const body = rows.map((r) => [
    r.name,
    int(r.ops),
    int(r.ops / (r.ms / 1000)),
    fmtTime(r.median),
    r.base ? `${(r.base.median / r.median).toFixed(1)}x` : "",
    r.note ?? "",
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ").trimEnd();
  console.log(line(head));
  console.log(line(w.map((n) => "-".repeat(n))));
  for (const b of body) console.log(line(b));
}

/** The direction element: "out" (an "in" would mark the reverse, incoming index). */
const OUT = "out";
const TYPES = ["follows", "likes", "owns", "mentions"];

/** An object of the demo. */
interface Obj {
  n: number;
  name: string;
  kind: string;
  score: number;
  tags: string[];
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const N = args.records;
  const R = Math.min(args.relations, Math.max(1, N - 1));
  const budget = args.seconds * 1000;
  const version = runtime === "bun"
    ? (globalThis as unknown as { Bun: { version: string } }).Bun.version
    : (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbomdbx-demo-"));
  try {
    using env = open(path.join(dir, "db"), { geometry: { upper: "16GiB", growth: "64MiB" } });
    // objects are msgpack-encoded objects keyed by [id]; relations are tuples [src, "out", type, dst] with null values
    const objectCodec = msgpack<Obj>();
    const objects = env.table("objects", { keys: "tuple", values: objectCodec });
    const relations = env.table("relations", { keys: "tuple", values: "msgpack" });

    // IDs of all objects: distinct random integers below 2^53 (numbers, exact).
    const rnd = prng(42);
    const idSet = new Set<number>();
    while (idSet.size < N) idSet.add(Math.floor(rnd() * 2 ** 32) * 2 ** 21 + Math.floor(rnd() * 2 ** 21));
    const ids = [...idSet];
    // One key per object, made up front so that the measured loops allocate no key.
    const objectKeys = ids.map((id) => [id]);
    const id = (i: number) => ids[i];
    const objectOf = (i: number): Obj => ({
      n: i,
      name: `object ${i}`,
      kind: TYPES[i % 4],
      score: (i * 37) % 1000,
      tags: ["demo", "x"],
    });

    console.log(`turbomdbx demo on ${runtime} ${version}: ${int(N)} objects, ${R} relations each`);
    const rows: Row[] = [];

    // 1. Objects: every put in one write transaction; the commit (one sync) is timed too.
    {
      using txn = env.beginWrite(); // aborted by `using` if anything throws before the commit
      const row = measure("put objects (1 txn)", 1000, N, Infinity, (from, n) => {
        for (let i = from; i < from + n; i++) txn.put(objects, objectKeys[i], objectOf(i));
      });
      const t0 = nowMs();
      txn.commit();
      row.ms += nowMs() - t0;
      row.note = "incl. commit";
      rows.push(row);
    }

    // 2. Relations: R outgoing edges per object with distinct destinations
    // (offsets 1 + r + j*stride never wrap onto the source or each other).
    const stride = Math.max(1, Math.floor(N / (R + 1)));
    const dstOf = (src: number, j: number, r: number) => (src + 1 + r + j * stride) % N;
    const offsets = new Uint32Array(N);
    for (let i = 0; i < N; i++) offsets[i] = Math.floor(rnd() * stride);
    {
      using txn = env.beginWrite();
      const row = measure("put relations (1 txn)", 1000, N * R, Infinity, (from, n) => {
        for (let e = from; e < from + n; e++) {
          const src = Math.floor(e / R), j = e % R;
          txn.put(relations, [id(src), OUT, "follows", id(dstOf(src, j, offsets[src]))], null);
        }
      });
      const t0 = nowMs();
      txn.commit();
      row.ms += nowMs() - t0;
      row.note = "incl. commit";
      rows.push(row);
    }

    // The same reads twice: without the get() cache, then with it.
    const pick = prng(7);
    const randomObject = () => Math.floor(pick() * N);
    const prefix: [number, string] = [0, OUT]; // [src, dir]
    const typed: [number, string, string] = [0, OUT, "follows"]; // [src, dir, type]: dst starts where this ends
    const at = packTuple(typed).length, idLength = packTuple([0]).length; // 23 and 9 bytes
    const BATCH = 100;
    const batchIds: number[][] = new Array(BATCH);
    let misses = 0, seen = 0, reached = 0;
    const checks = { scans: 0, follows: 0 };

    // The relation pattern itself: scan <src><dir>, then get() each destination.
    const followRelations = (txn: ReadTxn, src: number): Obj[] => {
      prefix[0] = id(src);
      const out: Obj[] = [];
      for (const key of txn.keys(relations, { prefix })) {
        const value = txn.get(objects, [key[3]]);
        if (value === undefined) throw new Error("a relation points to a missing object");
        out.push(value);
      }
      return out;
    };

    let baseGet: Row | undefined, baseFollow: Row | undefined;
    for (const cached of [false, true]) {
      const how = cached ? "cached" : "uncached";
      if (cached) {
        env.table("objects", { keys: "tuple", values: objectCodec, cache: true }); // the same table, now cached
        env.read((txn) => { // fill it: one read of every object
          for (let i = 0; i < N; i++) txn.get(objects, objectKeys[i]);
        });
      }
      using txn = env.beginRead();

      // 3. Random get: one lookup per ID.
      const get = measure(`random get, ${how}`, 1000, 2_000_000, budget, (_, n) => {
        for (let k = 0; k < n; k++) if (txn.get(objects, objectKeys[randomObject()]) === undefined) misses++;
      });
      get.base = baseGet ??= get;
      rows.push(get);
      if (cached) {
        // the same gets, BATCH IDs per call
        const many = measure(`random getMany, ${how}`, 10 * BATCH, 2_000_000, budget, (_, n) => {
          for (let k = 0; k < n; k += BATCH) {
            for (let j = 0; j < BATCH; j++) batchIds[j] = objectKeys[randomObject()];
            for (const v of txn.getMany(objects, batchIds)) if (v === undefined) misses++;
          }
        });
        many.base = baseGet;
        many.note = `${BATCH} IDs per call`;
        rows.push(many);
      } else {
        // 4. Prefix scan of one object's outgoing relations (keys only).
        const scan = measure("prefix scan (one source)", 100, 500_000, budget, (_, n) => {
          for (let k = 0; k < n; k++) {
            prefix[0] = id(randomObject());
            for (const _ of txn.keys(relations, { prefix })) seen++;
          }
        });
        scan.note = `${R} keys per scan`;
        checks.scans += scan.ops;
        rows.push(scan);
      }

      // 5. Follow relations end-to-end: the scan, then one get() per destination.
      const loop = measure(`follow relations, ${how}`, 100, 500_000, budget, (_, n) => {
        for (let k = 0; k < n; k++) reached += followRelations(txn, randomObject()).length;
      });
      loop.base = baseFollow ??= loop;
      loop.note = `keys() + get(): ${int(loop.ops * R / (loop.ms / 1000))} objects/s`;
      checks.follows += loop.ops;
      rows.push(loop);
      if (cached) {
        // 6. The same in one native traversal per source.
        const trav = measure(`follow relations, ${how} traversal`, 100, 500_000, budget, (_, n) => {
          for (let k = 0; k < n; k++) {
            typed[0] = id(randomObject());
            for (const { value } of txn.follow(relations, typed, objects, { at, length: idLength })) {
              if (value === undefined) throw new Error("a relation points to a missing object");
              reached++;
            }
          }
        });
        trav.base = baseFollow;
        trav.note = `txn.follow(): ${int(trav.ops * R / (trav.ms / 1000))} objects/s`;
        checks.follows += trav.ops;
        rows.push(trav);
      }
    }
    const stats = objects.cacheStats()!;

    console.log();
    printTable(rows);
    console.log();

    // The checks a reader (and test/examples.test.ts) can rely on.
    using txn = env.beginRead();
    const entries = txn.stat(objects).entries, edges = txn.stat(relations).entries;
    if (entries !== N) throw new Error(`expected ${N} objects, found ${entries}`);
    if (edges !== N * R) throw new Error(`expected ${N * R} relations, found ${edges}`);
    if (misses !== 0) throw new Error(`${misses} random gets found nothing`);
    if (seen !== checks.scans * R || reached !== checks.follows * R) {
      throw new Error("a scan returned the wrong number of keys");
    }
    const sample = followRelations(txn, 0).map((o) => o.n);
    const expect = Array.from({ length: R }, (_, j) => dstOf(0, j, offsets[0]));
    if (sample.sort((a, b) => a - b).join() !== expect.sort((a, b) => a - b).join()) {
      throw new Error("object 0 does not lead to its expected relations");
    }
    console.log(
      `get() cache: ${int(stats.entries)} entries in ${(stats.bytes / 2 ** 20).toFixed(1)} MiB ` +
        `(${(stats.bytes / stats.entries).toFixed(1)} bytes each), ${int(stats.hits)} hits, ${
          int(stats.misses)
        } misses`,
    );
    console.log(`ok: ${int(entries)} objects, ${int(edges)} relations, every relation leads to its object`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
