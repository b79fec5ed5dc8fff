/**
 * Child process of test/encodings.test.ts (the same runtime):
 *
 *   cas <db> <n>      n increments of a versioned counter: read its entry, then put it with ifVersion, again on
 *                     VersionMismatchError; prints "done <mismatches>"
 *   check <db> <n>    the same through concurrent transactions: tx.check(version) + put, commit
 *   reader <db>       holds a read transaction, prints "ready <count>"; on "go" on stdin, reads the same count in it,
 *                     then a new transaction's count, and prints "read <old> <new>"
 */
import { open } from "../../mod.ts";
import { incrementVersioned } from "./version_increments.ts";
import * as readline from "node:readline";

const [mode, db, nArg] = process.argv.slice(2);
const env = open(db, { sync: "lazy" });

if (mode === "cas" || mode === "check") {
  const counter = env.table("counter", { keys: "string", values: "uint32", versioned: true });
  const n = Number(nArg);
  const mismatches = await incrementVersioned(env, counter, mode, n, false);
  console.log(`done ${mismatches}`);
  env.close();
} else if (mode === "reader") {
  const tbl = env.table("t");
  const txn = env.beginRead();
  console.log(`ready ${txn.count(tbl)}`);
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line !== "go") continue;
    const old = txn.count(tbl);
    txn.end();
    const now = env.read((t) => t.count(tbl));
    // a write from this process too: the file's new upper bound is this process's as well
    env.write((t) => t.put(tbl, `child-${now}`, new Uint8Array(100)));
    console.log(`read ${old} ${now}`);
    break;
  }
  rl.close();
  env.close();
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
