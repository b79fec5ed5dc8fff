/**
 * The conditional increments of the versioned-counter tests, shared by
 * test/encodings.test.ts and its child process: read the counter's entry, then
 * write value + 1 only if nobody wrote since ("cas": put with ifVersion;
 * "check": a concurrent transaction with tx.check), again after every
 * VersionMismatchError.
 */
import { type Env, type Table, VersionMismatchError } from "../../mod.ts";

/** Makes `n` increments of `counter`'s key "c"; `gap` awaits a macrotask between the read and the write. */
export async function incrementVersioned(
  env: Env,
  counter: Table<"string", "uint32">,
  mode: "cas" | "check",
  n: number,
  gap: boolean,
): Promise<number> {
  let mismatches = 0;
  for (let i = 0; i < n;) {
    const e = env.read((txn) => txn.getEntry(counter, "c"))!;
    if (gap) await new Promise((r) => setTimeout(r, 0)); // the read and the write apart: the other process may write between
    try {
      if (mode === "cas") {
        env.write((txn) => txn.put(counter, "c", e.value + 1, { ifVersion: e.version }));
      } else {
        const tx = env.beginConcurrent();
        tx.check(counter, "c", e.version);
        await tx.put(counter, "c", e.value + 1);
        await tx.commit();
      }
      i++;
    } catch (err) {
      if (!(err instanceof VersionMismatchError)) throw err;
      mismatches++;
    }
  }
  return mismatches;
}
