/**
 * Child process for test/cache.test.ts: another process writing to a table
 * that the parent reads through its get() cache.
 *
 *   cache_writer.ts <db> run <ms> <seed> <keys>   many small commits for <ms> milliseconds (updates
 *                                                 with size changes, deletes, inserts, cursor range
 *                                                 deletes, twice heavy deletes and a defrag), then
 *                                                 prints one line "done <JSON summary>"
 *   cache_writer.ts <db> drop <table>             drops the table, prints "dropped"
 *
 * In "run" mode the watched keys (indices 0..WATCHED-1) get a new value in every
 * commit, stamped with the commit's number (see stampOf), so that the parent
 * can tell that it follows this process's commits. This process reads through
 * its own cache too and counts differences from uncached reads.
 */
import process from "node:process";
import { open } from "../../mod.ts";
import { compareBytes, Differ, int, makeKeys, makeValue, prng, valueSize, WATCHED } from "./cache_data.ts";

const [db, mode, ...args] = process.argv.slice(2);
const env = open(db, { sync: "lazy" });
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

if (mode === "drop") {
  const t = env.table(args[0]);
  env.write((txn) => txn.drop(t));
  env.close();
  say("dropped");
} else {
  const ms = Number(args[0]), seed = Number(args[1]), n = Number(args[2]);
  const rng = prng(seed ^ 0x2545f491);
  const keys = makeKeys(n, seed);
  const t = env.table("t", { cache: true });
  const differ = new Differ(`child, seed ${seed}`);
  const start = Date.now();
  let commits = 0, defragMoved = 0, heavy = 0;
  while (Date.now() - start < ms) {
    commits++;
    env.write((txn) => {
      for (let i = 0; i < WATCHED; i++) txn.put(t, keys[i], makeValue(rng, int(rng, 4, 300), commits));
      for (let j = int(rng, 0, 12); j > 0; j--) {
        const i = int(rng, WATCHED, n - 1), x = rng();
        if (x < 0.6) txn.put(t, keys[i], makeValue(rng, valueSize(rng), commits));
        else if (x < 0.95) txn.del(t, keys[i]);
        else {
          // a range of keys deleted through a cursor
          const end = keys[Math.min(n - 1, i + int(rng, 1, 20))];
          const c = txn.cursor(t);
          for (let e = c.setRange(keys[i]); e !== undefined && compareBytes(e.key, end) < 0; e = c.next()) c.del();
          c.close();
        }
      }
    });
    if (heavy < 2 && Date.now() - start > ms * (heavy + 1) / 3) {
      // most keys go, the file is defragmented (pages the parent's readers hold stay), then refilled
      heavy++;
      env.write((txn) => {
        const c = txn.cursor(t);
        let i = 0;
        for (let e = c.setRange(keys[WATCHED]); e !== undefined; e = c.next()) {
          // after a delete, next() is the entry that followed the deleted one
          if (i++ % 5 !== 0) c.del();
        }
        c.close();
      });
      // the other process's readers hold the freed pages for a while: try again until pages move
      for (let tries = 0, until = Date.now() + 500; Date.now() < until && tries < 25; tries++) {
        const moved = env.defrag({ timeLimitSeconds: 0.2 }).pagesMoved;
        defragMoved += moved;
        if (moved > 0) break;
        sleep(20);
      }
      env.write((txn) => {
        for (let i = WATCHED; i < n; i++) if (rng() < 0.5) txn.put(t, keys[i], makeValue(rng, valueSize(rng), commits));
      });
    }
    // bursts and pauses: sometimes the other process sees many commits at once, sometimes none for a while
    if (rng() < 0.15) sleep(int(rng, 1, 12));
    const r = env.beginRead();
    try {
      for (let i = 0; i < WATCHED; i++) differ.check(r, t, keys[i], `child after commit ${commits}`);
      for (let j = 0; j < 8; j++) {
        const i = int(rng, 0, n - 1);
        differ.check(r, t, keys[i], `child after commit ${commits}`);
      }
    } finally {
      r.end();
    }
  }
  const s = t.cacheStats()!;
  const summary = { commits, defragMoved, mismatches: differ.mismatches, message: differ.message(), ...s };
  env.close();
  say(`done ${JSON.stringify(summary)}`);
}
