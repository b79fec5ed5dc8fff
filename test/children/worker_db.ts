/**
 * Worker script for test/workers.test.ts and bench/workers.bench.ts (Deno Web
 * Worker, Bun Web Worker): opens a database in its own thread and runs the
 * requests the parent posts, one at a time. Each request is
 * `{ id, op, ...args }`; the answer is `{ id, ok: value }` or
 * `{ id, error: { name, codeName, message } }`.
 *
 * Ops: open, close, put, get, count, incr (read-modify-write in plain write
 * transactions), txIncr (the same with env.transact), holdWrite (begins a
 * write transaction, writes, answers and never ends it), holdRead, readLoop
 * (random uncached gets for the benchmark), readWhile (reads until told to
 * stop; checks that every snapshot is consistent), diffLoop (cached against uncached reads while writing, until
 * stop), drop, registry.
 *
 * @module
 */
import { type Env, MdbxError, open, type OpenOptions, type Table } from "../../mod.ts";
import { fn, scratch } from "../../src/core.ts";

type Msg = { id: number; op: string; [k: string]: unknown };

/** The Worker's global scope (typed here: this file is also type-checked with the main thread's globals). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent<Msg>) => void) | null;
};

let env: Env | null = null;
let kv: Table<"string", "uint32"> | null = null;
let cached: Table<"string", "uint32"> | null = null;
let stopRead = false;
const held: unknown[] = [];

function theEnv(): Env {
  if (env === null) throw new Error("not open");
  return env;
}

/** The table "kv"; with `cache` in the request, the table "cached" with a get() cache (test/workers-cache.test.ts). */
function table(m?: Msg): Table<"string", "uint32"> {
  if (m?.cache) {
    cached ??= theEnv().table("cached", { keys: "string", values: "uint32", cache: true });
    return cached;
  }
  kv ??= theEnv().table("kv", { keys: "string", values: "uint32" });
  return kv;
}

/** A small deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

async function run(m: Msg): Promise<unknown> {
  switch (m.op) {
    case "open": {
      env = open(m.path as string, (m.options ?? {}) as OpenOptions);
      return { readOnly: env.readOnly };
    }
    case "close":
      theEnv().close();
      kv = cached = null;
      return true;
    case "isOpen":
      return env !== null && env.isOpen;
    case "put": {
      const t = table(m);
      theEnv().write((w) => {
        for (const [k, v] of m.entries as [string, number][]) w.put(t, k, v);
      });
      return true;
    }
    case "get": {
      const t = table(m);
      return theEnv().read((r) => (m.keys as string[]).map((k) => r.get(t, k) ?? null));
    }
    case "count": {
      const t = table();
      return theEnv().read((r) => r.count(t));
    }
    case "incr": {
      // read-modify-write of m.keys in plain write transactions, m.n times
      const t = table(m);
      for (let i = 0; i < (m.n as number); i++) {
        theEnv().write((w) => {
          for (const k of m.keys as string[]) w.put(t, k, (w.get(t, k) ?? 0) + 1);
        });
      }
      return true;
    }
    case "txIncr": {
      // the same with concurrent transactions, `tasks` at a time: lost updates would show in the totals
      const t = table();
      const e = theEnv();
      const per = Math.ceil((m.n as number) / (m.tasks as number));
      let done = 0;
      await Promise.all(Array.from({ length: m.tasks as number }, async (_, task) => {
        for (let i = 0; i < per && done < (m.n as number); i++) {
          done++;
          await e.transact(async (tx) => {
            const keys = m.keys as string[];
            const k = keys[(task + i) % keys.length];
            const v = (await tx.get(t, k)) ?? 0;
            await new Promise((r) => setTimeout(r, 0)); // others commit meanwhile
            tx.put(t, k, v + 1);
            tx.put(t, "total", ((await tx.get(t, "total")) ?? 0) + 1);
          }, { mode: m.mode as "optimistic" | "pessimistic" | undefined, retries: 10_000 });
        }
      }));
      return done;
    }
    case "holdWrite": {
      const t = table();
      const w = theEnv().beginWrite();
      w.put(t, m.key as string, m.value as number);
      held.push(w);
      return true;
    }
    case "spin": {
      // busy in JavaScript, never yielding: terminate() must stop it where it stands
      scope.postMessage({ id: m.id, progress: "spinning" });
      let x = 0;
      for (;;) x = (x + 1) | 0;
    }
    case "holdRead": {
      const r = theEnv().beginRead();
      held.push(r);
      return true;
    }
    case "readLoop": {
      // m.n random gets over keys k0..k(m.keys-1), in read transactions of 1000 gets
      const t = table(m);
      const next = rng(m.seed as number);
      const nkeys = m.keys as number;
      const names = Array.from({ length: nkeys }, (_, i) => `k${i}`);
      let sum = 0, left = m.n as number;
      const t0 = performance.now();
      while (left > 0) {
        const batch = Math.min(left, 1000);
        theEnv().read((r) => {
          for (let i = 0; i < batch; i++) sum += r.get(t, names[next() % nkeys]) ?? 0;
        });
        left -= batch;
      }
      return { sum, ms: performance.now() - t0 };
    }
    case "compute": {
      // m.n steps of arithmetic, no database: what the machine's cores give in parallel right now
      const t0 = performance.now();
      let x = 0;
      for (let i = 0; i < (m.n as number); i++) x = (x * 31 + i) % 1000003;
      return { sum: x, ms: performance.now() - t0 };
    }
    case "readWhile": {
      // reads every key until "stop": each snapshot must hold m.keys keys whose values are all equal
      const t = table(m);
      stopRead = false;
      let reads = 0, bad = 0;
      const keys = Array.from({ length: m.keys as number }, (_, i) => `k${i}`);
      scope.postMessage({ id: m.id, progress: "reading" });
      while (!stopRead) {
        theEnv().read((r) => {
          const first = r.get(t, keys[0]);
          for (const k of keys) if (r.get(t, k) !== first) bad++;
        });
        reads++;
        await new Promise((r) => setTimeout(r, 0));
      }
      return { reads, bad };
    }
    case "diffLoop": {
      // test/workers-cache.test.ts: writes random values and deletes to the cached table and reads it, until "stop"
      // (and at least m.min rounds); every cached get() is compared with an uncached read (getWithCount walks the
      // tree) in the same transaction, read and write
      const t = table({ ...m, cache: true });
      const next = rng(m.seed as number);
      const nkeys = m.keys as number;
      stopRead = false;
      let rounds = 0, compared = 0, diffs = 0;
      const details: string[] = [];
      const same = (
        r: { get(t: Table<"string", "uint32">, k: string): number | undefined },
        k: string,
        where: string,
      ) => {
        const got = r.get(t, k);
        const want =
          (r as unknown as { getWithCount(t: Table<"string", "uint32">, k: string): { value: number } | undefined })
            .getWithCount(t, k)?.value;
        compared++;
        if (got !== want) {
          diffs++;
          if (details.length < 5) details.push(`${where} ${k}: cached ${got}, uncached ${want}`);
        }
      };
      scope.postMessage({ id: m.id, progress: "running" });
      while (!stopRead || rounds < (m.min as number)) {
        theEnv().write((w) => {
          for (let i = 0; i < 20; i++) {
            const k = `k${next() % nkeys}`;
            if (next() % 5 === 0) w.del(t, k);
            else w.put(t, k, next());
            same(w, `k${next() % nkeys}`, "write");
          }
        });
        for (let j = 0; j < 3; j++) {
          theEnv().read((r) => {
            for (let i = 0; i < 100; i++) same(r, `k${next() % nkeys}`, "read");
          });
        }
        rounds++;
        await new Promise((r) => setTimeout(r, 0));
      }
      return { rounds, compared, diffs, details, hits: t.cacheStats()?.hits ?? 0 };
    }
    case "stop":
      stopRead = true;
      return true;
    case "drop": {
      const t = table();
      theEnv().write((w) => w.drop(t));
      return true;
    }
    case "registry": {
      fn.tm_registry_info(env === null ? null : theEnv().unsafeHandle as never, scratch.f64Bytes);
      return Array.from(scratch.f64.subarray(0, 6));
    }
    default:
      throw new Error(`unknown op ${m.op}`);
  }
}

scope.onmessage = async (e: MessageEvent<Msg>) => {
  const m = e.data;
  try {
    const ok = await run(m);
    scope.postMessage({ id: m.id, ok });
  } catch (err) {
    const x = err as Error;
    scope.postMessage({
      id: m.id,
      error: { name: x.name, codeName: err instanceof MdbxError ? err.codeName : undefined, message: x.message },
    });
  }
};
// Bun drops messages that arrive before a module Worker's top-level code set its handler: say when it is set
scope.postMessage({ ready: true });
