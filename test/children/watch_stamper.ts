/**
 * Child process of bench/server.bench.ts (change-feed latency across
 * processes): commits key "x" of table "feed" `n` times, about every 2 ms,
 * each value the commit's time (performance.timeOrigin + performance.now(),
 * comparable across processes), then key "end".
 *
 *   watch_stamper.ts <db> <n>
 */
import process from "node:process";
import { open } from "../../mod.ts";

if (import.meta.main) {
  const [db, n] = process.argv.slice(2);
  const env = open(db, { sync: "lazy" });
  const t = env.table("feed", { keys: "string", values: "string" });
  for (let i = 0; i < Number(n); i++) {
    env.write((w) => w.put(t, "x", String(performance.timeOrigin + performance.now())));
    await new Promise((r) => setTimeout(r, 1 + (i % 3)));
  }
  env.write((w) => w.put(t, "end", "1"));
  env.close();
}
