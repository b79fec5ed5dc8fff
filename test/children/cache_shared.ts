/**
 * Child process for test/cache_shared.test.ts: one of several processes using
 * one database whose table "t" has a get() cache shared by all of them.
 *
 *   cache_shared.ts <db> writer <ms> <seed> <keys> <id>   small commits to "t" for <ms> ms (the cache on, so they
 *                                                         are published); reads through the cache after each
 *   cache_shared.ts <db> reader <ms> <seed> <keys>        cached reads (fresh and long-lived readers, single and
 *                                                         batched) against uncached ones in the same transaction
 *   cache_shared.ts <db> foreign <ms> <seed> <keys>       commits to "t" without a cache: a writer that publishes
 *                                                         nothing (the others must notice and drop what it moved)
 *   cache_shared.ts <db> killme <seed> <keys>             commits as fast as it can until it is killed (kill -9);
 *                                                         prints "ready" after its first commit
 *
 * Each prints one line "done <JSON summary>" (killme never does). Writers stamp
 * the watched keys (0..WATCHED-1) with (id << 20 | commit number), so a reader
 * can tell that it follows their commits.
 */
import process from "node:process";
import { type Env, open, type ReadTxn, type Table } from "../../mod.ts";
import { Differ, int, makeKeys, makeValue, prng, stampOf, valueSize, WATCHED } from "./cache_data.ts";

type Bin = Table<"binary", "binary">;
const [db, mode, ...args] = process.argv.slice(2);
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

function writeSome(env: Env, t: Bin, rng: () => number, keys: Uint8Array[], stamp: number): void {
  const n = keys.length;
  env.write((txn) => {
    for (let i = 0; i < WATCHED; i++) if (rng() < 0.5) txn.put(t, keys[i], makeValue(rng, int(rng, 4, 200), stamp));
    for (let j = int(rng, 1, 10); j > 0; j--) {
      const i = int(rng, WATCHED, n - 1);
      if (rng() < 0.7) txn.put(t, keys[i], makeValue(rng, valueSize(rng), stamp));
      else txn.del(t, keys[i]);
    }
  });
}

if (mode === "killme") {
  const seed = Number(args[0]), n = Number(args[1]);
  const env = open(db, {});
  const t: Bin = env.table("t", { cache: true });
  const rng = prng(seed);
  const keys = makeKeys(n, seed);
  for (let c = 1;; c++) {
    writeSome(env, t, rng, keys, 0x7f00000 | c);
    if (c === 1) say("ready");
  }
} else {
  const ms = Number(args[0]), seed = Number(args[1]), n = Number(args[2]), id = Number(args[3] ?? 0);
  const env = open(db, {});
  const cached = mode !== "foreign";
  const t: Bin = env.table("t", cached ? { cache: true } : {});
  const rng = prng(seed ^ (id * 0x9e3779b1) ^ mode.length);
  const keys = makeKeys(n, seed);
  const differ = new Differ(`${mode} ${id}, seed ${seed}`);
  const start = Date.now();
  let commits = 0, rounds = 0;
  const stamps = new Set<number>();
  const long: { txn: ReadTxn; until: number }[] = [];
  const check = (r: ReadTxn, where: string, count: number) => {
    for (let i = 0; i < WATCHED; i++) {
      const v = differ.check(r, t, keys[i], `${where}, watched #${i}`);
      if (v !== undefined) stamps.add(stampOf(v));
    }
    for (let j = 0; j < count; j++) differ.check(r, t, keys[int(rng, 0, n - 1)], where);
    if (rng() < 0.3) {
      const batch = Array.from({ length: int(rng, 1, 40) }, () => keys[int(rng, 0, n - 1)]);
      differ.checkMany(r, t, batch, `${where}, batch`);
    }
  };
  while (Date.now() - start < ms) {
    rounds++;
    if (mode === "writer" || mode === "foreign") {
      commits++;
      writeSome(env, t, rng, keys, (id << 20) | commits);
      if (rng() < 0.3) sleep(int(rng, 0, 3));
      if (cached) {
        const r = env.beginRead();
        try {
          check(r, `after commit ${commits}`, 4);
        } finally {
          r.end();
        }
      }
    } else {
      const r = env.beginRead();
      try {
        check(r, `round ${rounds} @${r.id}`, 60);
      } finally {
        r.end();
      }
      const now = Date.now();
      for (const l of long) {
        if (now > l.until) l.txn.end();
        else check(l.txn, `long-lived @${l.txn.id}`, 10);
      }
      for (let j = long.length - 1; j >= 0; j--) if (!long[j].txn.isOpen) long.splice(j, 1);
      if (long.length < 3 && rng() < 0.1) long.push({ txn: env.beginRead(), until: now + int(rng, 20, 400) });
    }
  }
  for (const l of long) l.txn.end();
  const s = cached ? t.cacheStats()! : null;
  const summary = {
    mode,
    id,
    commits,
    rounds,
    compared: differ.compared,
    mismatches: differ.mismatches,
    message: differ.mismatches ? differ.message() : "",
    stamps: stamps.size,
    ...s,
  };
  env.close();
  say(`done ${JSON.stringify(summary)}`);
}
