/**
 * Child process for test/concurrent.test.ts: moves money between the accounts
 * with concurrent transactions (and now and then a plain env.write()) for a
 * given time, while the parent does the same.
 *
 *   bank_worker.ts <db> <optimistic|pessimistic> <ms> <tasks> <seed>
 *
 * Prints "ready" once open, then "done <commits> <retries> <plain>".
 */
import * as fs from "node:fs";
import process from "node:process";
import { open } from "../../mod.ts";
import { accounts, plainTransfer, rng, transfer } from "./bank_data.ts";

const [db, mode, ms, tasks, seed] = process.argv.slice(2);
if (mode !== "optimistic" && mode !== "pessimistic") throw new Error(`bad mode ${mode}`);
const env = open(db, { sync: "lazy" });
const acc = accounts(env);
fs.writeSync(1, "ready\n");
const until = performance.now() + Number(ms);
const rnd = rng(Number(seed));
let commits = 0, retries = 0, plain = 0;
await Promise.all(Array.from({ length: Number(tasks) }, async (_, i) => {
  while (performance.now() < until) {
    if (i === 0 && rnd(8) === 0) {
      env.write((w) => plainTransfer(w, acc, rnd));
      plain++;
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    await env.transact((tx) => transfer(tx, acc, rnd, mode === "pessimistic" && rnd(2) === 0), {
      mode,
      retries: Infinity,
      onRetry: () => retries++,
    });
    commits++;
  }
}));
env.close();
fs.writeSync(1, `done ${commits} ${retries} ${plain}\n`);
