/**
 * The bank of test/concurrent.test.ts and its child process: accounts, the
 * conserved total, and one transfer as a concurrent transaction.
 *
 * @module
 */
import type { ConcurrentTxn, Env, Table, WriteTxn } from "../../mod.ts";

/** Number of accounts. */
export const ACCOUNTS = 100;
/** Opening balance of each account. */
export const OPENING = 1000;
/** What the balances must always add up to. */
export const TOTAL: number = ACCOUNTS * OPENING;

/** The accounts table: account number → balance. */
export function accounts(env: Env): Table<"uint32", "uint32"> {
  return env.table("accounts", { keys: "uint32", values: "uint32" });
}

/** mulberry32: a seeded generator of integers below n. */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Moves a random amount between two random accounts: read both, think (await),
 * write both. `forUpdate` takes exclusive locks at once (pessimistic).
 */
export async function transfer(
  tx: ConcurrentTxn,
  acc: Table<"uint32", "uint32">,
  rnd: (n: number) => number,
  forUpdate = false,
): Promise<void> {
  const a = rnd(ACCOUNTS), b = (a + 1 + rnd(ACCOUNTS - 1)) % ACCOUNTS;
  const va = await tx.get(acc, a, { forUpdate });
  if (rnd(4) === 0) await sleep(rnd(3));
  else await null;
  const vb = await tx.get(acc, b, { forUpdate });
  if (va === undefined || vb === undefined) throw new Error(`account ${va === undefined ? a : b} is missing`);
  const amount = Math.min(va, rnd(50));
  await tx.put(acc, a, va - amount);
  await tx.put(acc, b, vb + amount);
}

/** The same transfer in a plain write transaction (no await inside). */
export function plainTransfer(w: WriteTxn, acc: Table<"uint32", "uint32">, rnd: (n: number) => number): void {
  const a = rnd(ACCOUNTS), b = (a + 1 + rnd(ACCOUNTS - 1)) % ACCOUNTS;
  const va = w.get(acc, a)!, vb = w.get(acc, b)!;
  const amount = Math.min(va, rnd(50));
  w.put(acc, a, va - amount);
  w.put(acc, b, vb + amount);
}

/** Opens the accounts with their opening balances (once). */
export function openBank(env: Env): void {
  const acc = accounts(env);
  env.write((w) => {
    if (w.stat(acc).entries === 0) { for (let i = 0; i < ACCOUNTS; i++) w.put(acc, i, OPENING); }
  });
}

/** The sum of all balances in one snapshot. */
export function sumOf(values: Iterable<number>): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}
