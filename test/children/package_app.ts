/**
 * A small user program for test/package.test.ts, copied into a fresh project
 * outside the checkout that installed turbomdbx from its packages. The test
 * writes the project's entry, which imports turbomdbx statically the way the
 * README tells each kind of user to ("turbomdbx" under Bun, "npm:turbomdbx"
 * under Deno, "jsr:@turbomdbx/turbomdbx" from a JSR registry) and calls
 * `main()`: it opens a database, writes, reads through the get() cache, runs
 * concurrent transactions, and prints one JSON line with what it saw and
 * `libraryInfo()`. A load failure prints `{"error": ...}`.
 *
 * @module
 */
/** The module's exports, whichever package they come from. */
export type Turbomdbx = typeof import("../../mod.ts");

/** The program; `t` is the imported package. */
export async function main(t: Turbomdbx, dbPath: string): Promise<void> {
  try {
    using env = t.open(dbPath);
    const objects = env.table("objects", { keys: "string", values: "string", cache: true });
    const counters = env.table("counters", { keys: "string", values: "uint32" });
    env.write((txn) => {
      for (let i = 0; i < 100; i++) txn.put(objects, `user:${i}`, JSON.stringify({ i }));
      txn.put(counters, "n", 0);
    });
    // reads through the cache: the first pass fills it, the second is answered from it
    const first = env.read((txn) => txn.get(objects, "user:7"));
    const batch = env.read((txn) => txn.getMany(objects, ["user:1", "user:2", "absent"]));
    const again = env.read((txn) => txn.get(objects, "user:7"));
    const stats = objects.cacheStats();
    // concurrent transactions: 20 optimistic increments in flight at once, group-committed
    await Promise.all(
      Array.from({ length: 20 }, () =>
        env.transact(async (tx) => {
          const n = (await tx.get(counters, "n")) ?? 0;
          await tx.put(counters, "n", n + 1);
        })),
    );
    const counter = env.read((txn) => txn.get(counters, "n"));
    console.log("RESULT " + JSON.stringify({ first, batch, again, hits: stats?.hits, counter, info: t.libraryInfo() }));
  } catch (e) {
    const err = e as Error & { codeName?: string };
    console.log("RESULT " + JSON.stringify({ error: err.message, name: err.name, codeName: err.codeName }));
  }
}
