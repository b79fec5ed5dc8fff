/**
 * The data of one "generation" shared by test/multiprocess.test.ts and its
 * child writer: writing generation g and checking that a snapshot holds
 * exactly generation g.
 */
import type { Env, Txn } from "../../mod.ts";

const pad = (n: number) => String(n).padStart(3, "0");
const tag = (g: number, j: number) => `g:${g}:${j}:${"v".repeat(60 + (j % 50))}`;

/** Opens the tables; with `cache`, "gen" answers get() from a cache (call before any other use). */
export function tables(env: Env, cache = false) {
  if (cache) env.table("gen", { keys: "string", values: "string", cache: true });
  return {
    gen: env.table("gen", { keys: "string", values: "string" }),
    log: env.table("log", { keys: "uint32", values: "string" }),
  };
}

/** Commits generation `g`: counter = g, every key tagged g, log entry g (one write transaction). */
export function writeGeneration(env: Env, keys: number, g: number): void {
  const t = tables(env);
  env.write((txn) => {
    txn.put(t.gen, "counter", String(g));
    for (let j = 0; j < keys; j++) txn.put(t.gen, `k${pad(j)}`, tag(g, j));
    if (g > 0) txn.put(t.log, g, `commit ${g}`);
  });
}

/**
 * The generation a snapshot holds, after checking that it holds exactly that
 * one: every key tagged with the counter's generation, log entries 1..g.
 * Throws (with what differs) otherwise.
 */
export function checkGeneration(env: Env, txn: Txn, keys: number): number {
  const t = tables(env);
  const counter = txn.get(t.gen, "counter");
  if (counter === undefined) throw new Error("no counter in this snapshot");
  const g = Number(counter);
  let j = 0;
  for (const { key, value } of txn.range(t.gen, { prefix: "k" })) {
    if (key !== `k${pad(j)}` || value !== tag(g, j)) {
      throw new Error(`snapshot of generation ${g}: ${key} = ${value.slice(0, 12)}…, expected k${pad(j)} tagged ${g}`);
    }
    j++;
  }
  if (j !== keys) throw new Error(`snapshot of generation ${g} has ${j} keys, expected ${keys}`);
  // Point reads too: through the get() cache when the table has one (it must follow other processes' commits).
  for (j = 0; j < keys; j++) {
    const v = txn.get(t.gen, `k${pad(j)}`);
    if (v !== tag(g, j)) throw new Error(`snapshot of generation ${g}: get k${pad(j)} = ${v?.slice(0, 12)}…`);
  }
  const log = [...txn.keys(t.log)];
  if (log.length !== g || (g > 0 && log[g - 1] !== g)) {
    throw new Error(`snapshot of generation ${g} has log entries ${log.length ? `1..${log.at(-1)}` : "none"}`);
  }
  return g;
}
