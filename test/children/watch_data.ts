/**
 * The random workload of the change-feed tests (test/watch.test.ts and its
 * child test/children/watch_writer.ts): each commit puts or deletes a few of
 * 40 keys shared by every writer, plus keys of its own writer, and always
 * changes its writer's counter key.
 */
import { int, prng } from "./cache_data.ts";

/** One commit's writes: [key, value] or [key, null] for a delete. */
export type Ops = [string, string | null][];

/** A generator of commits for writer `who`, seeded. */
export function randomOps(seed: number, who: string): () => Ops {
  const rnd = prng(seed);
  let n = 0;
  return () => {
    const ops: Ops = [];
    const count = 1 + int(rnd, 0, 4);
    for (let j = 0; j < count; j++) {
      const shared = int(rnd, 0, 2) > 0;
      const key = shared
        ? `k${String(int(rnd, 0, 39)).padStart(2, "0")}`
        : `${who}${String(int(rnd, 0, 199)).padStart(3, "0")}`;
      ops.push([key, int(rnd, 0, 3) === 0 ? null : `${who}:${n}:${j}:${"v".repeat(int(rnd, 0, 299))}`]);
    }
    // a put that always changes something: a commit that changed nothing gets no txnid of its own (libmdbx
    // commits an empty write transaction without a new meta), and the model orders commits by txnid
    ops.push([`${who}seq`, String(n)]);
    n++;
    return ops;
  };
}
