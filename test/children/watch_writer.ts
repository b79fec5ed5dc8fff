/**
 * Child process for test/watch.test.ts: commits a seeded random workload to
 * table "feed" (string keys and values) and prints one line per commit:
 * "<txnid> <JSON of [key, value | null][]>" (null: deleted), then "done".
 *
 *   watch_writer.ts <db> <seed> <commits>
 */
import * as fs from "node:fs";
import process from "node:process";
import { open } from "../../mod.ts";
import { randomOps } from "./watch_data.ts";

if (import.meta.main) {
  const [db, seed, commits] = process.argv.slice(2);
  const env = open(db, { sync: "lazy" });
  const t = env.table("feed", { keys: "string", values: "string" });
  const next = randomOps(Number(seed), "c");
  for (let i = 0; i < Number(commits); i++) {
    const ops = next();
    const id = env.write((w) => {
      for (const [k, v] of ops) {
        if (v === null) w.del(t, k);
        else w.put(t, k, v);
      }
      return w.id;
    });
    fs.writeSync(1, `${id} ${JSON.stringify(ops)}\n`);
    // let the parent's commits interleave with ours
    if (i % 7 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  env.close();
  fs.writeSync(1, "done\n");
}
