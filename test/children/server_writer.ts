/**
 * Child process for test/server.test.ts (kill -9): durable concurrent
 * transactions from 32 tasks, and auto-batched env.put() calls when the Env
 * has them; prints "<id>" once the write's promise resolved (so it is durable).
 *
 *   server_writer.ts <db> <run>
 */
import * as fs from "node:fs";
import process from "node:process";
import { open } from "../../mod.ts";

if (import.meta.main) {
  const [db, run] = process.argv.slice(2);
  const env = open(db, { sync: "durable" });
  const logs = env.table("logs", { keys: "string", values: "string" });
  const hasPut = typeof (env as { put?: unknown }).put === "function";
  await Promise.all(Array.from({ length: 32 }, async (_, task) => {
    for (let n = 0;; n++) {
      const id = `${run}.${task}.${n}`;
      if (hasPut && task % 2 === 1) {
        await (env as unknown as { put(t: unknown, k: string, v: string): Promise<void> }).put(
          logs,
          id,
          `value of ${id}`,
        );
      } else {
        await env.transact(async (tx) => {
          await tx.put(logs, id, `value of ${id}`);
        });
      }
      fs.writeSync(1, `${id}\n`);
    }
  }));
}
