/**
 * Child process for test/log.test.ts: makes libmdbx log (a full map, a lock
 * held by another process, other flags than another process's, a damaged
 * meta page, a damaged page) and reports, as one JSON line on stdout, the
 * error it got and what its logger received. Its stderr must stay empty:
 * libmdbx may not write there on its own.
 *
 *   log_child.ts mapfull <db> <logLevel|->           fill a 256 KiB map until MDBX_MAP_FULL
 *   log_child.ts open <db> <options-json> <logLevel|->   open (and close) with these options
 *   log_child.ts read <db> <options-json> <logLevel|->   open, read every table to its end, close
 *
 * `-` opens without a logger. Report: {"error":{"codeName","message","detail"}|null,"entries":[...]}.
 */
import process from "node:process";
import { type LogEntry, type LogLevel, MdbxError, open, type OpenOptions } from "../../mod.ts";

const [scenario, db, a, b] = process.argv.slice(2);
const level = (scenario === "mapfull" ? a : b) as LogLevel | "-";
const entries: LogEntry[] = [];
const logging: OpenOptions = level === "-" ? {} : { logger: (e) => entries.push(e), logLevel: level };
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

function report(e: unknown): void {
  if (!(e instanceof MdbxError)) throw e;
  say({ error: { codeName: e.codeName, message: e.message, detail: e.detail ?? null }, entries });
}

try {
  if (scenario === "mapfull") {
    const env = open(db, {
      ...logging,
      sync: "lazy",
      geometry: { lower: "64KiB", now: "64KiB", upper: "256KiB", growth: "64KiB" },
    });
    const t = env.table("fill", { keys: "uint32" });
    try {
      for (let i = 0; i < 1_000_000; i++) env.write((txn) => txn.put(t, i, new Uint8Array(1000).fill(i & 255)));
      throw new Error("the map never filled up");
    } catch (e) {
      report(e);
    } finally {
      env.close();
    }
  } else if (scenario === "open" || scenario === "read") {
    const env = open(db, { ...logging, ...JSON.parse(a) });
    try {
      if (scenario === "read") {
        for (const { name } of env.tables()) {
          const t = env.table(name, { accede: true, create: false });
          env.read((txn) => {
            for (const _ of txn.range(t)) { /* every page of the table */ }
          });
        }
      }
    } finally {
      env.close();
    }
    say({ error: null, entries });
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
} catch (e) {
  report(e);
}
