/**
 * A node:worker_threads Worker for test/workers.test.ts: opens the database
 * named in workerData, adds one to the counter "n" `times` times in plain
 * write transactions, reports how many Envs share the native environment,
 * closes and ends.
 *
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { open } from "../../mod.ts";
import { fn, scratch } from "../../src/core.ts";

const { path, times } = workerData as { path: string; times: number };
const env = open(path);
const kv = env.table("kv", { keys: "string", values: "uint32" });
for (let i = 0; i < times; i++) env.write((w) => w.put(kv, "n", (w.get(kv, "n") ?? 0) + 1));
fn.tm_registry_info(env.unsafeHandle as never, scratch.f64Bytes);
const refs = scratch.f64[0];
env.close();
parentPort!.postMessage({ refs });
