/**
 * Child process for test/crash.test.ts: commits numbered transactions in
 * durable mode until it is killed, and prints each number (one line, written
 * synchronously) only after its commit has returned.
 *
 *   crash_writer.ts <db> <writeMap 0|1>
 *
 * Prints "ready <last>" first, where <last> is the last commit found on open.
 */
import * as fs from "node:fs";
import process from "node:process";
import { open } from "../../mod.ts";
import { keyOf, KEYS, valueOf, WINDOW } from "./crash_data.ts";

const [db, writeMap] = process.argv.slice(2);
const env = open(db, { sync: "durable", writeMap: writeMap === "1" });
const data = env.table("data", { keys: "string" });
const meta = env.table("meta", { keys: "string", values: "uint32" });
const last = env.read((txn) => txn.get(meta, "last")) ?? 0;
// Synchronous writes: a line the parent reads is never lost in a buffer, and
// none is printed before its commit returned.
fs.writeSync(1, `ready ${last}\n`);
for (let n = last + 1;; n++) {
  env.write((txn) => {
    for (let j = 0; j < KEYS; j++) txn.put(data, keyOf(n, j), valueOf(n, j));
    for (let j = 0; n > WINDOW && j < KEYS; j++) {
      if (!txn.del(data, keyOf(n - WINDOW, j))) throw new Error(`commit ${n - WINDOW} is incomplete`);
    }
    txn.put(meta, "last", n);
  });
  fs.writeSync(1, `${n}\n`);
}
