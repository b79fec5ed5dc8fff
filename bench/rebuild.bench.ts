/**
 * Live rebuild: `env.rebuild()` on a fragmented database while writers keep
 * committing, against libmdbx's in-place `env.defrag()`, in the same run.
 *
 *   bun bench/rebuild.bench.ts [--size MiB] [--json] [--out FILE] [--dir PATH] [--keep] [--sync MODE] [--rate N] ...
 *   deno run -A bench/rebuild.bench.ts [...]
 *
 * The database (default 1024 MiB; `--size 64` for a quick run): table "data"
 * of 16-byte random keys with values of 50 to 400 bytes (random sizes), put in
 * random order until the data file reaches `--size`; then a random 30 % of the
 * keys deleted and another 30 % updated to values of another size, in write
 * transactions of 4000 operations (built with sync "nosync"). Its leaves end up
 * in random order in the file and partly empty. Table "writes" is for the
 * writers only, so the content of "data" never changes after the build.
 *
 * Steps (on a copy R of that database, and a second copy D for the baseline):
 *  1. before: data file size, `env.leafOrder(data)`, full-scan time (JavaScript
 *     `txn.range()`, and a C cursor loop of bench/lib/native.ts on the same
 *     handles), and the size `env.copy(tmp, { compact: true })` (mdbx_copy -c)
 *     writes.
 *  2. writers: one in this process and one in a child process (this file with
 *     `--child`: same runtime, same database), each committing one put of a
 *     pseudo-random key per `env.write()` at `--rate` commits/s, measure the
 *     latency of each `env.write()` call and the gap between commits, for
 *     `--seconds` seconds.
 *  3. `env.rebuild()` while both writers go on; then 1 s more (the child must
 *     follow to the new file by itself).
 *  4. after: size (against mdbx_copy -c of the same content), leafOrder, scan
 *     time; then a second rebuild without writers (what a quiet rebuild gives).
 *  5. baseline: `env.defrag()` on D (a byte copy of the same fragmented file),
 *     with a child writer on D (defrag runs on this process's JavaScript
 *     thread, so only another process can commit meanwhile).
 *  6. checks: "data" holds exactly what the build wrote (count and an
 *     order-independent hash over every key/value pair, from the build's model,
 *     by scans before and after), every commit either writer acknowledged is
 *     there with its value (the child's last one included), and mdbx_chk
 *     (`env.check()`) finds no problem.
 *
 * Timing: scans use mitata's `measure()` with a fixed sample count (a scan of a
 * large table takes seconds, so mitata's default of 12+ samples and its
 * `bench`/`run` reporting do not fit); the latencies, gaps and stalls are custom
 * measurements (performance.now() around each `env.write()` call), because they
 * are about single slow events, not about a typical iteration. The page cache
 * holds the whole files (scans are hot).
 *
 * @module
 */
import { measure } from "mitata";
import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setImmediate } from "node:timers";
import {
  type DefragResult,
  type Env,
  loadLibrary,
  open,
  type RebuildProgress,
  type RebuildResult,
  type SyncMode,
  type Table,
} from "../mod.ts";
import { log, machineInfo, runtimeInfo, scratchDir, since } from "./lib/cli.ts";
import { fillRandom, prng } from "./lib/data.ts";
import { type Harness, harnessPath, loadHarness } from "./lib/native.ts";
import { ns, table } from "./lib/report.ts";

type Bin = Table<"binary", "binary">;

const KEY_SIZE = 16;
const VALUE_MIN = 50;
const VALUE_MAX = 400;
const OPS_PER_TXN = 4000;
const DELETE_SHARE = 0.3;
const UPDATE_SHARE = 0.3;
const POOL = 1 << 20;
/** Key prefixes of the writers: this process, the child on R, the child on D. */
const PREFIX = { main: 0x6d, child: 0x63, defrag: 0x64 } as const;
const WARMUP_MS = 500;
const AFTER_MS = 1000;

// ------------------------------------------------------------------ options

interface Args {
  sizeMiB: number;
  json: boolean;
  out?: string;
  dir: string;
  keep: boolean;
  sync: SyncMode;
  rate: number;
  seconds: number;
  scans: number;
  seed: number;
  defrag: boolean;
  quiet: boolean;
}

const USAGE = `usage: rebuild.bench.ts [--size MiB] [--json] [--out FILE] [--dir PATH] [--keep] [--sync MODE]
                        [--rate N] [--seconds S] [--scans N] [--seed N] [--no-defrag] [--no-quiet]
  --size MiB     size of the fragmented data file (default 1024; 64 for a quick run)
  --json         print one JSON document on stdout (progress goes to stderr)
  --out FILE     also write that JSON document to FILE
  --dir PATH     where the databases go (default: the OS temp dir)
  --keep         keep the fragmented database in PATH and reuse it in later runs with --keep
                 (turbomdbx-rebuild-bench-<size>MiB-s<seed>; every run works on copies of it)
  --sync MODE    durability of the writers' commits: nosync (default), lazy, noMetaSync, durable
  --rate N       commits per second of each writer (default 1000; 0: as fast as they can)
  --seconds S    how long the writers are measured before the rebuild and the defrag (default 3)
  --scans N      full scans timed per figure (median; default 3)
  --seed N       seed of the data (default 1)
  --no-defrag    skip the env.defrag() baseline
  --no-quiet     skip the second rebuild without writers`;

function parseArgs(argv: string[]): Args {
  const a: Args = {
    sizeMiB: 1024,
    json: false,
    dir: tmpdir(),
    keep: false,
    sync: "nosync",
    rate: 1000,
    seconds: 3,
    scans: 3,
    seed: 1,
    defrag: true,
    quiet: true,
  };
  const bad = (msg: string): never => {
    console.error(`${msg}\n${USAGE}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? bad(`${flag} needs a value`);
    const num = (min: number, int = true) => {
      const n = Number(value().replaceAll("_", ""));
      if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) bad(`${flag} must be a number >= ${min}`);
      return n;
    };
    switch (flag) {
      case "--size":
        a.sizeMiB = num(4);
        break;
      case "--json":
        a.json = true;
        break;
      case "--out":
        a.out = value();
        break;
      case "--dir":
        a.dir = value();
        break;
      case "--keep":
        a.keep = true;
        break;
      case "--sync": {
        const m = value();
        if (!["nosync", "lazy", "noMetaSync", "durable"].includes(m)) {
          bad("--sync must be nosync, lazy, noMetaSync or durable");
        }
        a.sync = m as SyncMode;
        break;
      }
      case "--rate":
        a.rate = num(0, false);
        break;
      case "--seconds":
        a.seconds = num(0.5, false);
        break;
      case "--scans":
        a.scans = num(1);
        break;
      case "--seed":
        a.seed = num(0);
        break;
      case "--no-defrag":
        a.defrag = false;
        break;
      case "--no-quiet":
        a.quiet = false;
        break;
      case "-h":
      case "--help":
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        bad(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

/** Geometry of every database here: small growth steps, so that file sizes say how many pages are in use. */
function geometryFor(sizeMiB: number) {
  return { upper: `${Math.max(16, Math.ceil(sizeMiB * 8 / 1024))}GiB`, growth: "2MiB", shrink: "4MiB" };
}

// ------------------------------------------------------------------ small helpers

const immediate = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** FNV-1a over key and value, finalized: one key/value pair's hash. */
function pairHash(k: Uint8Array, v: Uint8Array): number {
  let h = 0x811c9dc5 ^ v.length;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k[i], 0x01000193);
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i], 0x01000193);
  return mix32(h);
}

/** An order-independent digest of a set of key/value pairs: count and two sums of pair hashes. */
class Digest {
  count = 0;
  #a = 0;
  #b = 0;
  add(h: number): void {
    this.count++;
    this.#a = (this.#a + h) >>> 0;
    this.#b = (this.#b + mix32(h ^ 0x5bd1e995)) >>> 0;
  }
  toString(): string {
    return `${this.count}:${this.#a.toString(16).padStart(8, "0")}${this.#b.toString(16).padStart(8, "0")}`;
  }
}

/** A writer's key for commit `seq`: its prefix, then pseudo-random bytes (so puts land all over the table). */
function writerKey(prefix: number, seq: number): Uint8Array {
  const k = new Uint8Array(KEY_SIZE), d = new DataView(k.buffer);
  k[0] = prefix;
  d.setUint32(1, mix32(seq ^ (prefix << 24)));
  d.setUint32(5, seq);
  d.setUint32(9, mix32(seq + 0x1234567));
  d.setUint16(13, mix32(seq ^ 0xabcdef) & 0xffff);
  k[15] = prefix;
  return k;
}

/** A writer's value for commit `seq`: 32 to 96 bytes, starting with seq. */
function writerValue(seq: number): Uint8Array {
  const h = mix32(seq * 7 + 1);
  const v = new Uint8Array(32 + (h % 65));
  new DataView(v.buffer).setUint32(0, seq);
  for (let i = 4; i < v.length; i++) v[i] = (h + i * 0x9e) & 0xff;
  return v;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const fileSize = (dbDir: string) => statSync(join(dbDir, "mdbx.dat")).size;

function fsync(file: string): void {
  const fd = openSync(file, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (
  v: number,
) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`);
const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(v < 10 ? 3 : 1)}x` : "-");
const int = (v: number) => v.toLocaleString("en-US");

// ------------------------------------------------------------------ writers (both processes)

/** Commit latency and gaps of one writer, per named phase. */
interface PhaseStats {
  commits: number;
  seconds: number;
  commitsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Longest time between the ends of two commits (includes the writer's own pacing, about 1000/rate ms). */
  maxGapMs: number;
}

class Recorder {
  #phase: string;
  #lat = new Map<string, number[]>();
  #gap = new Map<string, number>();
  #span = new Map<string, [number, number]>();
  #lastEnd = -1;

  constructor(phase: string) {
    this.#phase = phase;
    this.mark(phase);
  }

  mark(phase: string): void {
    const now = performance.now();
    const prev = this.#span.get(this.#phase);
    if (prev) prev[1] = now;
    this.#phase = phase;
    if (!this.#lat.has(phase)) this.#lat.set(phase, []), this.#gap.set(phase, 0), this.#span.set(phase, [now, now]);
  }

  add(start: number, end: number): void {
    this.#lat.get(this.#phase)!.push(end - start);
    if (this.#lastEnd >= 0) this.#gap.set(this.#phase, Math.max(this.#gap.get(this.#phase)!, end - this.#lastEnd));
    this.#lastEnd = end;
  }

  summary(): Record<string, PhaseStats> {
    this.mark(this.#phase);
    const out: Record<string, PhaseStats> = {};
    for (const [phase, lat] of this.#lat) {
      const s = Float64Array.from(lat).sort();
      const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
      const [t0, t1] = this.#span.get(phase)!;
      const seconds = (t1 - t0) / 1000;
      out[phase] = {
        commits: s.length,
        seconds,
        commitsPerSecond: seconds > 0 ? s.length / seconds : 0,
        p50Ms: q(0.5),
        p99Ms: q(0.99),
        maxMs: s.length ? s[s.length - 1] : NaN,
        maxGapMs: this.#gap.get(phase)!,
      };
    }
    return out;
  }
}

/**
 * Commits one put per `env.write()` at `rate` per second (0: back to back), and
 * yields to the event loop after every commit, so that timers (the rebuild's
 * polling, stdin of the child) run.
 */
class Writer {
  acked = 0;
  error: unknown = null;
  /** Latency of each commit that moved this process to a rebuilt file (it opens the new file first), ms. */
  followMs: number[] = [];
  #stopped = false;

  constructor(
    readonly env: Env,
    readonly t: Bin,
    readonly prefix: number,
    readonly rate: number,
    readonly rec: Recorder,
  ) {}

  stop(): void {
    this.#stopped = true;
  }

  async run(): Promise<void> {
    const period = this.rate > 0 ? 1000 / this.rate : 0;
    let next = performance.now();
    try {
      while (!this.#stopped) {
        const key = writerKey(this.prefix, this.acked), value = writerValue(this.acked);
        const h = this.env.unsafeHandle;
        const s = performance.now();
        this.env.write((w) => w.put(this.t, key, value));
        const e = performance.now();
        this.acked++;
        this.rec.add(s, e);
        if (this.env.unsafeHandle !== h) this.followMs.push(e - s);
        if (period === 0) {
          await immediate();
          continue;
        }
        next = Math.max(next + period, e - 100); // a backlog of at most 100 ms is caught up
        if (next > e) await sleep(next - e);
        else await immediate();
      }
    } catch (e) {
      this.error = e;
    }
  }
}

/** Checks that commits 0 .. acked-1 of a writer are in `t` with their values; returns a problem or null. */
function checkWriter(env: Env, t: Bin, prefix: number, acked: number, who: string): string | null {
  return env.read((txn) => {
    for (let seq = 0; seq < acked; seq++) {
      if (!sameBytes(txn.get(t, writerKey(prefix, seq)), writerValue(seq))) {
        return `${who}: acknowledged commit ${seq} of ${acked} is ${seq === acked - 1 ? "(the last one) " : ""}missing`;
      }
    }
    return null;
  });
}

/** `--child <db> <sync> <rate> <prefix>`: a writer in its own process, driven over stdin. */
async function childMain(argv: string[]): Promise<void> {
  const [db, sync, rate, prefix] = argv;
  const say = (o: unknown) => new Promise<void>((r) => process.stdout.write(JSON.stringify(o) + "\n", () => r()));
  let env: Env | null = null;
  try {
    env = open(db, { sync: sync as SyncMode });
    const t = env.table("writes") as Bin;
    const rec = new Recorder("warmup");
    const w = new Writer(env, t, Number(prefix), Number(rate), rec);
    let buffered = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line.startsWith("mark ")) {
          rec.mark(line.slice(5));
          say({ mark: line.slice(5), acked: w.acked });
        } else if (line === "stop") w.stop();
      }
    });
    process.stdin.on("end", () => w.stop());
    await say({ ready: true, pid: process.pid });
    await w.run();
    if (w.error) throw w.error;
    await say({ stats: rec.summary(), acked: w.acked, followMs: w.followMs });
    env.close();
    process.exit(0);
  } catch (e) {
    await say({ error: String((e as Error)?.stack ?? e) });
    process.exit(1);
  }
}

/** The parent's side of a child writer: JSON lines, one answer per request. */
class ChildWriter {
  readonly proc: ChildProcess;
  #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #ended = false;
  #stderr = "";

  constructor(db: string, sync: SyncMode, rate: number, readonly prefix: number) {
    const script = fileURLToPath(import.meta.url);
    const args = ["--child", db, sync, String(rate), String(prefix)];
    const argv = runtimeInfo().runtime === "deno" ? ["run", "-A", script, ...args] : [script, ...args];
    this.proc = spawn(process.execPath, argv, { stdio: ["pipe", "pipe", "pipe"] });
    let buf = "";
    this.proc.stdout!.setEncoding("utf8");
    this.proc.stdout!.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (this.#waiting) {
          const w = this.#waiting;
          this.#waiting = null;
          w(line);
        } else this.#lines.push(line);
      }
    });
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => this.#stderr += chunk);
    this.proc.on("close", () => {
      this.#ended = true;
      if (this.#waiting) this.#waiting(null);
    });
  }

  /** The next message; fails if the child ends, reports an error, or is silent for `timeout` ms. */
  async next(timeout = 120_000): Promise<Record<string, unknown>> {
    const line = this.#lines.shift() ??
      (this.#ended ? null : await new Promise<string | null>((resolve) => {
        const timer = setTimeout(() => {
          this.#waiting = null;
          resolve(null);
        }, timeout);
        this.#waiting = (l) => {
          clearTimeout(timer);
          resolve(l);
        };
      }));
    if (line === null) throw new Error(`child writer ${this.proc.pid} gave no answer; its stderr:\n${this.#stderr}`);
    const msg = JSON.parse(line) as Record<string, unknown>;
    if (msg.error) throw new Error(`child writer ${this.proc.pid} failed: ${msg.error}\n${this.#stderr}`);
    return msg;
  }

  async request(line: string): Promise<Record<string, unknown>> {
    await new Promise<void>((r) => this.proc.stdin!.write(`${line}\n`, () => r()));
    return await this.next();
  }

  /** Stops it and returns its figures and how many commits it acknowledged. */
  async stop(): Promise<{ stats: Record<string, PhaseStats>; acked: number; followMs: number[] }> {
    const m = await this.request("stop");
    this.proc.stdin!.end();
    return { stats: m.stats as Record<string, PhaseStats>, acked: m.acked as number, followMs: m.followMs as number[] };
  }

  kill(): void {
    if (!this.#ended) this.proc.kill();
  }
}

// ------------------------------------------------------------------ the fragmented database

interface BuildInfo {
  inserted: number;
  deleted: number;
  updated: number;
  entries: number;
  fileBytes: number;
  seconds: number;
  /** Digest of table "data" from the build's model (what was written). */
  digest: string;
}

/** Builds the fragmented database in `dir` (see the header) and returns what it holds. */
function buildFragmented(dir: string, sizeMiB: number, seed: number): BuildInfo {
  const t0 = performance.now();
  const target = sizeMiB * 2 ** 20;
  mkdirSync(dir, { recursive: true });
  const env = open(dir, { sync: "nosync", geometry: geometryFor(sizeMiB) });
  try {
    const data = env.table("data") as Bin;
    env.table("writes");
    const rand = prng(seed);
    const pool = new Uint8Array(POOL + VALUE_MAX);
    fillRandom(pool, rand);
    // the model: every key written, its current value (an offset into the pool and a length), deleted or not
    let cap = Math.ceil(target / 240) + OPS_PER_TXN;
    let keys = new Uint8Array(cap * KEY_SIZE), vlen = new Uint16Array(cap), voff = new Uint32Array(cap);
    let dead = new Uint8Array(cap);
    let n = 0, deleted = 0, updated = 0;
    const grow = () => {
      cap = Math.ceil(cap * 1.5);
      const k = new Uint8Array(cap * KEY_SIZE), l = new Uint16Array(cap), o = new Uint32Array(cap);
      const d = new Uint8Array(cap);
      k.set(keys), l.set(vlen), o.set(voff), d.set(dead);
      keys = k, vlen = l, voff = o, dead = d;
    };
    const key = (i: number) => keys.subarray(i * KEY_SIZE, (i + 1) * KEY_SIZE);
    const value = (i: number) => pool.subarray(voff[i], voff[i] + vlen[i]);
    const newValue = (i: number) => {
      const old = vlen[i];
      do vlen[i] = VALUE_MIN + (rand() % (VALUE_MAX - VALUE_MIN + 1)); while (vlen[i] === old);
      voff[i] = rand() % POOL;
    };
    const fileNow = () => env.info().geometry.current;
    const insertUntil = (bytes: number) => {
      while (fileNow() < bytes) {
        env.write((w) => {
          for (let b = 0; b < OPS_PER_TXN; b++, n++) {
            if (n === cap) grow();
            fillRandom(key(n), rand);
            newValue(n);
            w.put(data, key(n), value(n));
          }
        });
      }
    };

    // 1. random inserts until the file has the size asked for
    insertUntil(target);
    log(`  inserted ${int(n)} keys (${mib(fileNow())}) in ${since(t0)}`);
    // 2. delete 30 % and update another 30 %, interleaved, in random key order
    const perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = rand() % (i + 1);
      const t = perm[i];
      perm[i] = perm[j], perm[j] = t;
    }
    const ops = Math.floor(n * (DELETE_SHARE + UPDATE_SHARE));
    const delEvery = (DELETE_SHARE + UPDATE_SHARE) / DELETE_SHARE; // 2: every other operation is a delete
    for (let i = 0; i < ops;) {
      const end = Math.min(ops, i + OPS_PER_TXN);
      env.write((w) => {
        for (; i < end; i++) {
          const k = perm[i];
          if (i % delEvery < 1) {
            if (!w.del(data, key(k))) throw new Error("a key of the build is missing");
            dead[k] = 1, deleted++;
          } else {
            newValue(k);
            w.put(data, key(k), value(k));
            updated++;
          }
        }
      });
    }
    log(`  deleted ${int(deleted)}, updated ${int(updated)} (${mib(fileNow())}) at ${since(t0)}`);
    // 3. the file may have shrunk below the size asked for: top it up with more random inserts
    insertUntil(target);
    env.sync(true);
    const entries = env.read((txn) => txn.stat(data).entries);
    const digest = new Digest();
    for (let i = 0; i < n; i++) if (!dead[i]) digest.add(pairHash(key(i), value(i)));
    if (digest.count !== entries) throw new Error(`the model has ${digest.count} keys, the table ${entries}`);
    return {
      inserted: n,
      deleted,
      updated,
      entries,
      fileBytes: fileNow(),
      seconds: (performance.now() - t0) / 1000,
      digest: String(digest),
    };
  } finally {
    env.close();
  }
}

// ------------------------------------------------------------------ measurements

/** The second rebuild, without writers. */
interface Quiet {
  result: RebuildResult;
  fileBytes: number;
  usedBytes: number;
  compactBytes: number;
  compactUsedBytes: number;
  /** Leaves out of order in tables data and writes. */
  data: number;
  writes: number;
}

interface Shape {
  fileBytes: number;
  /** Pages in use (up to the last allocated page), in bytes. */
  usedBytes: number;
  /** Size of `env.copy(tmp, { compact: true })` (mdbx_copy -c) of the same content, its pages in use, and how long it took. */
  compactBytes: number;
  compactUsedBytes: number;
  compactSeconds: number;
  leafPages: number;
  outOfOrder: number;
  writesLeafPages: number;
  writesOutOfOrder: number;
  /** Median full-scan times of table "data", ms. */
  scanRangeMs: number;
  scanNativeMs: number;
  entries: number;
}

/** Hashes every pair of table "data" by a cursor scan. */
function scanDigest(env: Env, data: Bin): string {
  const d = new Digest();
  env.read((txn) => {
    for (const { key, value } of txn.range(data)) d.add(pairHash(key, value));
  });
  return String(d);
}

async function timeScans(env: Env, data: Bin, harness: Harness | null, samples: number) {
  const opts = { min_samples: samples, max_samples: samples, min_cpu_time: 0 };
  const range = await measure(() => {
    let n = 0;
    env.read((txn) => {
      for (const _ of txn.range(data)) n++;
    });
    return n;
  }, opts);
  let native = NaN;
  if (harness) {
    const sum = new Float64Array(1);
    const r = await measure(() => {
      const n = env.read((txn) => harness.scan(txn.unsafeHandle, data.dbi, sum));
      if (n < 0) throw new Error(`tmb_scan failed: ${n}`);
      return n;
    }, opts);
    native = r.p50 / 1e6;
  }
  return { scanRangeMs: range.p50 / 1e6, scanNativeMs: native };
}

/** Pages in use (up to the last allocated one) in bytes. */
function usedBytes(env: Env): number {
  const i = env.info();
  return (i.lastPgno + 1) * i.pageSize;
}

/** `env.copy(tmp, { compact: true })` (mdbx_copy -c): its file size and pages in use; then deletes it. */
function compactCopy(env: Env, tmp: string): { fileBytes: number; usedBytes: number } {
  env.copy(tmp, { compact: true, overwrite: true });
  const fileBytes = statSync(tmp).size;
  const c = open(tmp, { noSubdir: true, readOnly: true });
  const used = usedBytes(c);
  c.close();
  const dir = dirname(tmp), name = basename(tmp);
  for (const f of readdirSync(dir)) if (f.startsWith(name)) rmSync(join(dir, f), { force: true });
  return { fileBytes, usedBytes: used };
}

async function shape(env: Env, dir: string, tmp: string, harness: Harness | null, samples: number): Promise<Shape> {
  const data = env.table("data") as Bin, writes = env.table("writes") as Bin;
  const lo = env.leafOrder(data), wo = env.leafOrder(writes);
  const t0 = performance.now();
  const c = compactCopy(env, tmp);
  const compactSeconds = (performance.now() - t0) / 1000;
  return {
    fileBytes: fileSize(dir),
    usedBytes: usedBytes(env),
    compactBytes: c.fileBytes,
    compactUsedBytes: c.usedBytes,
    compactSeconds,
    leafPages: lo.leafPages,
    outOfOrder: lo.outOfOrder,
    writesLeafPages: wo.leafPages,
    writesOutOfOrder: wo.outOfOrder,
    ...(await timeScans(env, data, harness, samples)),
    entries: env.read((txn) => txn.stat(data).entries),
  };
}

function progressLogger(label: string): (p: RebuildProgress) => void {
  let last = 0, lastPhase = "";
  return (p) => {
    const now = performance.now();
    if (p.phase === lastPhase && now - last < 1000 && p.phase !== "done") return;
    last = now, lastPhase = p.phase;
    const pct = p.pagesTotal ? ` ${(100 * p.pagesCopied / p.pagesTotal).toFixed(0)}%` : "";
    const detail = p.phase === "copy"
      ? `${pct} of ${mib(p.bytesTotal)}, ${mib(p.rate)}/s, eta ${p.etaSeconds.toFixed(1)} s`
      : ` ${p.rounds} rounds, ${int(p.keysReplayed)} keys replayed`;
    log(`  ${label}: ${p.phase}${detail} (${p.elapsedSeconds.toFixed(1)} s)`);
  };
}

// ------------------------------------------------------------------ main

async function main(args: Args): Promise<number> {
  const t0 = performance.now();
  const info = { ...runtimeInfo(), ...machineInfo() };
  const scratch = scratchDir(args.dir);
  log(
    `turbomdbx rebuild benchmark: ${info.runtime} ${info.version}, ${info.cores} x ${info.cpu}, ` +
      `${args.sizeMiB} MiB, writers ${args.rate || "unthrottled"}/s ${args.sync}, scratch ${scratch.path}`,
  );
  const lib = loadLibrary();
  let harness: Harness | null = null;
  try {
    harness = await loadHarness(harnessPath(lib.path));
  } catch (e) {
    log(`  (no native scan: ${(e as Error).message})`);
  }
  const geometry = geometryFor(args.sizeMiB);
  const R = join(scratch.path, "rebuild"), D = join(scratch.path, "defrag");
  const tmpCopy = join(scratch.path, "compact-copy.mdbx");
  const children: ChildWriter[] = [];
  const problems: string[] = [];
  try {
    // --- the fragmented database, and a byte copy of it for the defrag baseline
    let build: BuildInfo & { reused: boolean };
    mkdirSync(R), mkdirSync(D);
    if (args.keep) {
      const kept = join(args.dir, `turbomdbx-rebuild-bench-${args.sizeMiB}MiB-s${args.seed}`);
      const model = join(kept, "model.json");
      if (existsSync(model) && existsSync(join(kept, "mdbx.dat"))) {
        build = { ...JSON.parse(readFileSync(model, "utf8")) as BuildInfo, reused: true };
        log(`reusing the fragmented database ${kept}`);
      } else {
        rmSync(kept, { recursive: true, force: true });
        log(`building the fragmented database (${args.sizeMiB} MiB) in ${kept}, kept for later runs`);
        build = { ...buildFragmented(kept, args.sizeMiB, args.seed), reused: false };
        writeFileSync(model, JSON.stringify(build, null, 2) + "\n");
      }
      copyFileSync(join(kept, "mdbx.dat"), join(R, "mdbx.dat"));
    } else {
      log(`building the fragmented database (${args.sizeMiB} MiB)`);
      build = { ...buildFragmented(R, args.sizeMiB, args.seed), reused: false };
    }
    if (args.defrag) {
      copyFileSync(join(R, "mdbx.dat"), join(D, "mdbx.dat"));
      fsync(join(D, "mdbx.dat")); // so that the kernel's write-back of the copy does not stall the writers later
    }
    log(`  ${int(build.entries)} entries, ${mib(build.fileBytes)}${build.reused ? "" : `, built in ${since(t0)}`}`);

    // --- R: before
    const env = open(R, { sync: args.sync, geometry });
    const data = env.table("data") as Bin, writes = env.table("writes") as Bin;
    fsync(join(R, "mdbx.dat"));
    const digestBefore = scanDigest(env, data);
    if (digestBefore !== build.digest) problems.push(`data before: scan ${digestBefore} != model ${build.digest}`);
    log("before: leaf order, scans, mdbx_copy -c");
    const before = await shape(env, R, tmpCopy, harness, args.scans);
    log(
      `  ${mib(before.fileBytes)}, compact copy ${mib(before.compactBytes)}, ` +
        `${int(before.outOfOrder)} of ${int(before.leafPages)} leaves out of order, ` +
        `scan ${ms(before.scanRangeMs)} (native ${ms(before.scanNativeMs)})`,
    );

    // --- writers, then the rebuild under them
    log(`writers: this process and a child, ${args.rate || "unthrottled"} commits/s each, ${args.sync}`);
    const child = new ChildWriter(R, args.sync, args.rate, PREFIX.child);
    children.push(child);
    await child.next();
    const rec = new Recorder("warmup");
    const writer = new Writer(env, writes, PREFIX.main, args.rate, rec);
    const running = writer.run();
    const mark = async (phase: string) => {
      rec.mark(phase);
      await child.request(`mark ${phase}`);
    };
    await sleep(WARMUP_MS);
    await mark("before");
    await sleep(args.seconds * 1000);
    if (writer.error) throw writer.error;
    await mark("rebuild");
    log("rebuild, with both writers committing");
    let result: RebuildResult;
    const handle = env.unsafeHandle;
    try {
      result = await env.rebuild({ onProgress: progressLogger("rebuild") });
    } catch (e) {
      writer.stop();
      await running;
      throw e;
    }
    await mark("after");
    await sleep(AFTER_MS);
    writer.stop();
    await running;
    if (writer.error) throw writer.error;
    const childEnd = await child.stop();
    const mainStats = rec.summary();
    if (env.unsafeHandle === handle) problems.push("this process did not move to the rebuilt file");
    if (childEnd.followMs.length !== 1) {
      problems.push(`the child moved to a new file ${childEnd.followMs.length} times`);
    }
    const follow = { main: writer.followMs, child: childEnd.followMs };
    log(
      `  ${result.seconds.toFixed(2)} s (copy ${result.copySeconds.toFixed(2)} s, catch-up ` +
        `${result.catchUpSeconds.toFixed(2)} s in ${result.rounds} rounds, ${int(result.keysReplayed)} keys), ` +
        `stall ${ms(result.stallMs)}; writers acknowledged ${int(writer.acked)} + ${int(childEnd.acked)} commits`,
    );

    // --- R: after, and checks
    log("after: leaf order, scans, mdbx_copy -c, checks");
    const after = await shape(env, R, tmpCopy, harness, args.scans);
    const digestAfter = scanDigest(env, data);
    if (digestAfter !== build.digest) problems.push(`data after rebuild: ${digestAfter} != ${build.digest}`);
    for (
      const p of [
        checkWriter(env, writes, PREFIX.main, writer.acked, "writer in this process"),
        checkWriter(env, writes, PREFIX.child, childEnd.acked, "child writer"),
      ]
    ) if (p) problems.push(p);
    const writesEntries = env.read((txn) => txn.stat(writes).entries);
    if (writesEntries !== writer.acked + childEnd.acked) {
      problems.push(
        `table writes has ${writesEntries} entries, the writers acknowledged ${writer.acked + childEnd.acked}`,
      );
    }
    if (childEnd.stats.after.commits === 0) problems.push("the child writer committed nothing after the switch");
    const t1 = performance.now();
    const chk = env.check();
    const checkSeconds = (performance.now() - t1) / 1000;
    if (!chk.ok) {
      problems.push(`mdbx_chk after rebuild: ${chk.problems} problems: ${chk.issues.slice(0, 5).join("; ")}`);
    }
    log(
      `  ${mib(after.fileBytes)} (compact copy ${mib(after.compactBytes)}), ${int(after.outOfOrder)} of ` +
        `${
          int(after.leafPages)
        } leaves out of order (writes: ${after.writesOutOfOrder} of ${after.writesLeafPages}), ` +
        `scan ${ms(after.scanRangeMs)} (native ${ms(after.scanNativeMs)}), check ${chk.ok ? "ok" : "FAILED"} ` +
        `in ${checkSeconds.toFixed(1)} s`,
    );

    // --- a second rebuild, without writers
    let quiet: Quiet | null = null;
    if (args.quiet) {
      log("rebuild again, without writers");
      const q = await env.rebuild({ onProgress: progressLogger("quiet rebuild") });
      const c = compactCopy(env, tmpCopy);
      quiet = {
        result: q,
        fileBytes: fileSize(R),
        usedBytes: usedBytes(env),
        compactBytes: c.fileBytes,
        compactUsedBytes: c.usedBytes,
        data: env.leafOrder(data).outOfOrder,
        writes: env.leafOrder(writes).outOfOrder,
      };
      if (scanDigest(env, data) !== build.digest) problems.push("data after the quiet rebuild differs");
      log(
        `  ${q.seconds.toFixed(2)} s, ${mib(quiet.fileBytes)} (compact copy ${mib(c.fileBytes)}), out of order: ` +
          `data ${quiet.data}, writes ${quiet.writes}`,
      );
    }
    env.close();

    // --- D: env.defrag() with a child writer
    let defrag: Defrag | null = null;
    if (args.defrag) {
      log("baseline: env.defrag() on a byte copy of the fragmented database, with a child writer");
      const envD = open(D, { sync: args.sync, geometry });
      const dataD = envD.table("data") as Bin, writesD = envD.table("writes") as Bin;
      const childD = new ChildWriter(D, args.sync, args.rate, PREFIX.defrag);
      children.push(childD);
      await childD.next();
      await sleep(WARMUP_MS);
      await childD.request("mark before");
      await sleep(args.seconds * 1000);
      await childD.request("mark defrag");
      const res = envD.defrag(); // synchronous: holds the write lock (and this thread) for its whole run
      await childD.request("mark after");
      await sleep(AFTER_MS);
      const end = await childD.stop();
      log(`  ${res.seconds.toFixed(2)} s, complete: ${res.complete}, ${int(res.pagesMoved)} pages moved`);
      const afterD = await shape(envD, D, tmpCopy, harness, args.scans);
      if (scanDigest(envD, dataD) !== build.digest) problems.push("data after defrag differs");
      const p = checkWriter(envD, writesD, PREFIX.defrag, end.acked, "child writer during defrag");
      if (p) problems.push(p);
      envD.close();
      defrag = { result: res, after: afterD, child: end.stats, acked: end.acked };
      log(
        `  ${mib(afterD.fileBytes)} (compact copy ${mib(afterD.compactBytes)}), ${int(afterD.outOfOrder)} of ` +
          `${int(afterD.leafPages)} leaves out of order, scan ${ms(afterD.scanRangeMs)}`,
      );
    }

    // --- report
    const cs = childEnd.stats;
    const ratios: Ratio[] = [];
    const ratio = (label: string, value: number, target?: number) => {
      ratios.push(target === undefined ? { label, value } : { label, value, target, met: value <= target });
    };
    ratio("rebuild: file after / mdbx_copy -c of the same content", after.fileBytes / after.compactBytes, 1.01);
    ratio("rebuild: pages in use after / mdbx_copy -c's", after.usedBytes / after.compactUsedBytes);
    ratio("rebuild: new file at the switch (bytesAfter) / mdbx_copy -c after", result.bytesAfter / after.compactBytes);
    if (quiet) {
      ratio("quiet rebuild: file / mdbx_copy -c of the same content", quiet.fileBytes / quiet.compactBytes, 1.01);
      ratio("quiet rebuild: pages in use / mdbx_copy -c's", quiet.usedBytes / quiet.compactUsedBytes);
    }
    ratio("rebuild: file after / before", after.fileBytes / before.fileBytes);
    ratio("rebuild: scan time after / before, txn.range()", after.scanRangeMs / before.scanRangeMs);
    if (harness) ratio("rebuild: scan time after / before, C cursor loop", after.scanNativeMs / before.scanNativeMs);
    ratio("rebuild: seconds / mdbx_copy -c seconds (before, no writers)", result.seconds / before.compactSeconds);
    for (const [who, st] of [["writer in this process", mainStats], ["child writer", cs]] as const) {
      ratio(`${who}: p50 commit latency during rebuild / before`, st.rebuild.p50Ms / st.before.p50Ms);
      ratio(`${who}: p99 commit latency during rebuild / before`, st.rebuild.p99Ms / st.before.p99Ms);
      ratio(`${who}: max commit latency during rebuild / before`, st.rebuild.maxMs / st.before.maxMs);
      ratio(`${who}: max gap during rebuild / before`, st.rebuild.maxGapMs / st.before.maxGapMs);
    }
    if (defrag) {
      const da = defrag.after, dc = defrag.child;
      ratio("defrag: file after / mdbx_copy -c of the same content", da.fileBytes / da.compactBytes);
      ratio("defrag: pages in use after / mdbx_copy -c's", da.usedBytes / da.compactUsedBytes);
      ratio("defrag: scan time after / before, txn.range()", da.scanRangeMs / before.scanRangeMs);
      if (harness) ratio("defrag: scan time after / before, C cursor loop", da.scanNativeMs / before.scanNativeMs);
      ratio("child writer: max commit latency during defrag / before", dc.defrag.maxMs / dc.before.maxMs);
      ratio("child writer: max gap during defrag / before", dc.defrag.maxGapMs / dc.before.maxGapMs);
      ratio("child writer: max gap, during defrag / during rebuild", dc.defrag.maxGapMs / cs.rebuild.maxGapMs);
      ratio("writers held: defrag's whole run / rebuild's stallMs", defrag.result.seconds * 1000 / result.stallMs);
    }

    const doc: Doc = {
      suite: "rebuild",
      date: new Date().toISOString(),
      ...info,
      options: {
        sizeMiB: args.sizeMiB,
        sync: args.sync,
        rate: args.rate,
        seconds: args.seconds,
        scans: args.scans,
        seed: args.seed,
        keep: args.keep,
        geometry,
      },
      build,
      before,
      rebuild: { result, after, check: { ok: chk.ok, problems: chk.problems, seconds: checkSeconds }, quiet },
      defrag,
      writers: { main: mainStats, child: cs, mainAcked: writer.acked, childAcked: childEnd.acked, followMs: follow },
      ratios,
      verify: { ok: problems.length === 0, problems, digest: build.digest },
    };
    if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + "\n");
    if (args.json) console.log(JSON.stringify(doc, null, 2));
    else {
      console.log(report(doc, harness !== null));
    }
    log(`done in ${since(t0)}`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    for (const c of children) c.kill();
    scratch.remove();
  }
}

interface Ratio {
  label: string;
  value: number;
  target?: number;
  met?: boolean;
}

interface Defrag {
  result: DefragResult;
  after: Shape;
  child: Record<string, PhaseStats>;
  acked: number;
}

/** The --json document. */
interface Doc {
  suite: "rebuild";
  date: string;
  runtime: string;
  version: string;
  cpu: string;
  cores: number;
  options: Omit<Args, "json" | "out" | "dir" | "defrag" | "quiet"> & { geometry: Record<string, string> };
  build: BuildInfo & { reused: boolean };
  before: Shape;
  rebuild: {
    result: RebuildResult;
    after: Shape;
    check: { ok: boolean; problems: number; seconds: number };
    quiet: Quiet | null;
  };
  defrag: Defrag | null;
  writers: {
    main: Record<string, PhaseStats>;
    child: Record<string, PhaseStats>;
    mainAcked: number;
    childAcked: number;
    /** Latency of the commits that moved a writer to the rebuilt file (none: it moved outside a commit). */
    followMs: { main: number[]; child: number[] };
  };
  ratios: Ratio[];
  verify: { ok: boolean; problems: string[]; digest: string };
}

function report(doc: Doc, native: boolean): string {
  const { options: o, build, before, defrag } = doc;
  const { result: r, after, quiet } = doc.rebuild;
  const out: string[] = [];
  out.push(
    `Fragmented database: ${int(build.entries)} entries (16-byte random keys, ${VALUE_MIN}-${VALUE_MAX}-byte values; ` +
      `${int(build.inserted)} inserted in random order, ${int(build.deleted)} deleted, ${
        int(build.updated)
      } updated), ` +
      `${mib(build.fileBytes)}. Writers: one put of a random key per env.write(), ` +
      `${o.rate ? `${o.rate} commits/s` : "back to back"} each, sync "${o.sync}". ${doc.runtime} ${doc.version}.`,
  );
  const d = defrag?.after;
  const rows = [["table data", "before", "after rebuild", "after / before", "after defrag", "defrag / before"]];
  const row = (label: string, b: number, a: number, dv: number | undefined, f: (v: number) => string) =>
    rows.push([label, f(b), f(a), x(a / b), dv === undefined ? "-" : f(dv), dv === undefined ? "-" : x(dv / b)]);
  const pair = (label: string, f: (s: Shape) => string) =>
    rows.push([label, f(before), f(after), "", d ? f(d) : "-", ""]);
  row("data file", before.fileBytes, after.fileBytes, d?.fileBytes, mib);
  row("mdbx_copy -c of the same content", before.compactBytes, after.compactBytes, d?.compactBytes, mib);
  pair("file / mdbx_copy -c (target ≤ 1.01)", (s) => x(s.fileBytes / s.compactBytes));
  pair("pages in use / mdbx_copy -c's", (s) => x(s.usedBytes / s.compactUsedBytes));
  row("leaf pages", before.leafPages, after.leafPages, d?.leafPages, int);
  pair("leaves out of order (target 0)", (s) => int(s.outOfOrder));
  pair("leaves out of order, table writes", (s) => `${int(s.writesOutOfOrder)} of ${int(s.writesLeafPages)}`);
  row(`full scan, txn.range() (median of ${o.scans})`, before.scanRangeMs, after.scanRangeMs, d?.scanRangeMs, ms);
  if (native) {
    row(
      `full scan, C cursor loop (median of ${o.scans})`,
      before.scanNativeMs,
      after.scanNativeMs,
      d?.scanNativeMs,
      ms,
    );
  }
  out.push(table(rows));

  const op = [["operation", "seconds", "writers held", "detail"]];
  op.push([
    "env.rebuild(), with writers",
    r.seconds.toFixed(2),
    `${ms(r.stallMs)} (stallMs)`,
    `copy ${r.copySeconds.toFixed(2)} s, catch-up ${r.catchUpSeconds.toFixed(2)} s in ${r.rounds} rounds, ` +
    `${int(r.keysReplayed)} keys replayed (${int(r.switchKeys)} at the switch)`,
  ]);
  if (quiet) {
    const q = quiet.result;
    op.push([
      "env.rebuild() again, no writers",
      q.seconds.toFixed(2),
      `${ms(q.stallMs)} (stallMs)`,
      `${mib(quiet.fileBytes)} / mdbx_copy -c ${mib(quiet.compactBytes)} = ${
        x(quiet.fileBytes / quiet.compactBytes)
      }; ` +
      `out of order: data ${quiet.data}, writes ${quiet.writes}`,
    ]);
  }
  op.push(["env.copy({ compact: true }) (mdbx_copy -c)", before.compactSeconds.toFixed(2), "-", "before, no writers"]);
  if (defrag) {
    const dr = defrag.result;
    op.push([
      "env.defrag()",
      dr.seconds.toFixed(2),
      "its whole run",
      `complete: ${dr.complete}, ${int(dr.pagesMoved)} pages moved, file ${int(dr.pagesShrinked)} pages shorter, ` +
      `${dr.cycles} cycles`,
    ]);
  }
  out.push(table(op));

  const lat = [["writer", "phase", "commits", "commits/s", "p50", "p99", "max", "max gap"]];
  const add = (who: string, st: Record<string, PhaseStats>, phases: [string, string][]) => {
    for (const [key, label] of phases) {
      const s = st[key];
      if (!s) continue;
      const t = (v: number) => ns(v * 1e6);
      lat.push([
        who,
        label,
        int(s.commits),
        s.commitsPerSecond.toFixed(0),
        t(s.p50Ms),
        t(s.p99Ms),
        t(s.maxMs),
        t(s.maxGapMs),
      ]);
    }
  };
  const rb: [string, string][] = [["before", "before"], ["rebuild", "during rebuild"], ["after", "after rebuild"]];
  add("this process", doc.writers.main, rb);
  add("child process", doc.writers.child, rb);
  if (defrag) {
    add("child process, D", defrag.child, [["before", "before"], ["defrag", "during defrag"], ["after", "after"]]);
  }
  const f = doc.writers.followMs;
  const fl = (v: number[]) => (v.length ? v.map((m) => ms(m)).join(", ") : "none (moved inside env.rebuild())");
  out.push(
    "Commit latency: the time of each env.write() call; gap: between the ends of two commits (includes the pacing).\n" +
      table(lat) + `\nThe commit that moved to the rebuilt file: this process ${fl(f.main)}, child ${fl(f.child)}.`,
  );

  const rr = [["ratio", "value", "target"]];
  for (const q of doc.ratios) {
    rr.push([q.label, x(q.value), q.target === undefined ? "" : `${q.met ? "ok" : "MISS"} ≤ ${q.target}`]);
  }
  out.push(table(rr));
  const p = doc.verify.problems;
  out.push(
    p.length === 0
      ? `Checks: ok (table data equals the build's model before and after; every acknowledged commit of both ` +
        `writers is there, the child's last one included; mdbx_chk finds no problem).`
      : `Checks FAILED:\n  ${p.join("\n  ")}`,
  );
  return out.join("\n\n");
}

const argv = process.argv.slice(2);
if (argv[0] === "--child") await childMain(argv.slice(1));
else process.exitCode = await main(parseArgs(argv));
