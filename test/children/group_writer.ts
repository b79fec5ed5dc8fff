/**
 * Child process for test/concurrent.test.ts (kill -9 during group commits):
 * many concurrent transactions in durable mode, each writing KEYS keys of its
 * own and moving money between two accounts; one line "<id>" per transaction
 * once its commit promise resolved (so it is durable).
 *
 *   group_writer.ts <db> <run>
 *
 * Prints "ready" first. Transaction ids are "<run>.<task>.<n>".
 */
import * as fs from "node:fs";
import process from "node:process";
import { open } from "../../mod.ts";
import { accounts, openBank, rng, transfer } from "./bank_data.ts";

/** Keys each logical transaction writes. */
export const KEYS = 6;
/** Concurrent tasks. */
export const TASKS = 48;

if (import.meta.main) {
  const [db, run] = process.argv.slice(2);
  const env = open(db, { sync: "durable" });
  openBank(env);
  const acc = accounts(env);
  const logs = env.table("logs", { keys: "string", values: "string" });
  const rnd = rng(Number(run) * 7919 + 1);
  const filler = "x".repeat(300);
  fs.writeSync(1, "ready\n");
  await Promise.all(Array.from({ length: TASKS }, async (_, task) => {
    for (let n = 0;; n++) {
      const id = `${run}.${task}.${n}`;
      await env.transact(async (tx) => {
        for (let j = 0; j < KEYS; j++) await tx.put(logs, `${id}/${j}`, `${id}:${j}:${filler}`);
        await transfer(tx, acc, rnd);
      }, { retries: Infinity });
      fs.writeSync(1, `${id}\n`);
    }
  }));
}
