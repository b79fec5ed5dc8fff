/**
 * A walk through the turbomdbx API on Deno: open a database, make tables of
 * each key type, write, read, nest transactions, move cursors, read ranges,
 * look at values without copying, store objects under tuple keys with
 * versions, and let `using` close everything.
 *
 *   deno run -A examples/deno/walkthrough.ts
 *
 * Every step prints one line and checks its result; the last line is
 * "walkthrough ok".
 *
 * @module
 */
import assert from "node:assert/strict";
import { ErrorCode, MdbxError, msgpack, open, VersionMismatchError } from "../../mod.ts";

// Deno's own APIs for the temp folder; the rest of the file is the same on Bun.
const dir = Deno.makeTempDirSync({ prefix: "turbomdbx-walkthrough-" });
try {
  walkthrough(`${dir}/db`);
} finally {
  Deno.removeSync(dir, { recursive: true });
}

function walkthrough(dbPath: string): void {
  // `using` closes the environment at the end of the block, ending any
  // transaction still open.
  using env = open(dbPath, { geometry: { upper: "1GiB" } });
  console.log(`opened ${env.path} (page size ${env.info().pageSize})`);

  // One table per key type. The key and value kinds fix the JavaScript types
  // that go in and come out; integer keys sort numerically.
  const users = env.table("users", { keys: "string", values: "string" });
  const counters = env.table("counters", { keys: "uint32", values: "uint64" });
  const events = env.table("events", { keys: "bigint" }); // 8-byte keys as bigint, binary values
  const blobs = env.table("blobs"); // binary keys and values (Uint8Array)
  const tags = env.table("tags", { keys: "string", values: "string", dupSort: true }); // many values per key

  // Writes: env.write() commits when the callback returns, aborts if it throws.
  env.write((txn) => {
    txn.put(users, "ada", '{"name":"Ada Lovelace"}');
    txn.put(users, "alan", '{"name":"Alan Turing"}');
    txn.put(users, "grace", '{"name":"Grace Hopper"}');
    for (let i = 1; i <= 10; i++) txn.put(counters, i, i * 1_000_000_000_000);
    txn.put(events, 2n ** 40n, new TextEncoder().encode("later"));
    txn.put(events, 7n, new TextEncoder().encode("sooner"));
    txn.put(blobs, new Uint8Array([1, 2, 3]), new Uint8Array(1000).fill(7));
    for (const t of ["math", "poetry", "engines"]) txn.put(tags, "ada", t);
    txn.put(tags, "alan", "math");
  });
  console.log(`wrote ${env.tables().map((t) => `${t.name}=${t.stat.entries}`).join(" ")}`);

  // Reads: env.read() runs in a snapshot and ends it afterwards.
  const ada = env.read((txn) => txn.get(users, "ada"));
  assert.equal(JSON.parse(ada!).name, "Ada Lovelace");
  console.log(`get users/ada -> ${ada}`);

  // A failed write throws MdbxError with the native code and advice.
  try {
    env.write((txn) => txn.put(users, "ada", "{}", { noOverwrite: true }));
    assert.fail("noOverwrite should refuse an existing key");
  } catch (e) {
    assert.ok(e instanceof MdbxError && e.code === ErrorCode.KEYEXIST);
    console.log(`noOverwrite -> ${e.codeName}`);
  }

  // Nested transactions: a child's changes merge into the parent on commit
  // and disappear on abort, without touching the parent's other changes.
  {
    using txn = env.beginWrite(); // aborted at the end of the block unless committed
    txn.put(users, "edsger", '{"name":"Edsger Dijkstra"}');
    const child = txn.begin();
    child.put(users, "mallory", "{}");
    child.abort();
    const child2 = txn.begin();
    child2.put(users, "barbara", '{"name":"Barbara Liskov"}');
    child2.commit();
    txn.commit();
  }
  env.read((txn) => {
    assert.equal(txn.has(users, "mallory"), false);
    assert.equal(txn.has(users, "barbara"), true);
    console.log(`nested: ${[...txn.keys(users)].join(",")}`);
  });

  // Read transactions, cursors and ranges.
  {
    using txn = env.beginRead();

    // Ranges are lazy iterables that read in batches.
    const firstThree = [...txn.keys(counters, { gte: 3, limit: 3 })];
    assert.deepEqual(firstThree, [3, 4, 5]);
    const lastTwo = [...txn.range(counters, { reverse: true, limit: 2 })].map((e) => `${e.key}:${e.value}`);
    assert.deepEqual(lastTwo, ["10:10000000000000", "9:9000000000000"]);
    const aNames = [...txn.keys(users, { prefix: "a" })];
    assert.deepEqual(aNames, ["ada", "alan"]);
    console.log(`range: ${firstThree} | ${lastTwo} | prefix a: ${aNames}`);

    // Integer keys sort as numbers, not bytes.
    assert.deepEqual([...txn.keys(events)], [7n, 2n ** 40n]);
    // Several values of one key (dupSort), in sorted order.
    assert.deepEqual([...txn.dups(tags, "ada")], ["engines", "math", "poetry"]);
    console.log(`dups of ada: ${[...txn.dups(tags, "ada")]}; count(tags) = ${txn.count(tags)}`);

    // A cursor positions explicitly; `using` closes it (the txn would too).
    using cur = txn.cursor(users);
    assert.equal(cur.first()?.key, "ada");
    assert.equal(cur.next()?.key, "alan");
    assert.equal(cur.setRange("b")?.key, "barbara");
    assert.equal(cur.last()?.key, "grace");
    assert.equal(cur.next(), undefined);
    console.log(`cursor: first ada, setRange("b") -> barbara, last grace`);

    // unsafeGetView: the value in the database's own memory, no copy, typed
    // read-only. Writing into it or transferring its buffer to a Worker is
    // undefined (the map is read-only: a write crashes the process); get()
    // is the safe read. It is valid until the transaction ends; then it is
    // detached (length 0), so a stale view can never read freed memory.
    const view = txn.unsafeGetView(blobs, new Uint8Array([1, 2, 3]))!;
    assert.equal(view.length, 1000);
    assert.equal(view[999], 7);
    txn.end();
    assert.equal(view.length, 0);
    console.log(`unsafeGetView: 1000 bytes, detached after end (length ${view.length})`);
    assert.equal(cur.isOpen, false); // ending the transaction closed the cursor
  }

  // Updates that return the previous value, deletes, and table sequences.
  env.write((txn) => {
    const before = txn.replace(counters, 1, 42);
    assert.equal(before, 1_000_000_000_000);
    assert.equal(txn.del(users, "barbara"), true);
    assert.equal(txn.del(users, "nobody"), false);
    assert.equal(txn.del(tags, "ada", "poetry"), true); // one value of a dupSort key
    const seq = txn.incrementSequence(events, 5);
    console.log(`replace -> ${before}; sequence was ${seq}`);
  });

  // Statistics.
  const stat = env.read((txn) => txn.stat(users));
  assert.equal(stat.entries, 4);
  console.log(`users: ${stat.entries} entries, depth ${stat.depth}; env entries ${env.stat().entries}`);

  // Objects under tuple keys, with versions: values are msgpack, typed; keys sort element by element.
  const docs = env.table("docs", { keys: "tuple", values: msgpack<{ title: string }>(), versioned: true });
  env.write((txn) => {
    txn.put(docs, ["ada", 1843], { title: "Notes" });
    txn.put(docs, ["alan", 1936], { title: "On Computable Numbers" });
    txn.put(docs, ["alan", 1950], { title: "Computing Machinery and Intelligence" });
  });
  const alan = env.read((txn) => [...txn.values(docs, { prefix: ["alan"] })].map((d) => d.title));
  assert.deepEqual(alan, ["On Computable Numbers", "Computing Machinery and Intelligence"]);
  const entry = env.read((txn) => txn.getEntry(docs, ["ada", 1843]))!;
  env.write((txn) =>
    txn.put(docs, ["ada", 1843], { title: "Sketch of the Analytical Engine" }, { ifVersion: entry.version })
  );
  try {
    env.write((txn) => txn.put(docs, ["ada", 1843], { title: "stale" }, { ifVersion: entry.version }));
    assert.fail("a write on an old version must fail");
  } catch (e) {
    assert.ok(e instanceof VersionMismatchError);
  }
  const deleted = env.write((txn) => txn.delRange(docs, { prefix: ["alan"] }));
  assert.equal(deleted, 2);
  console.log(
    `tuple keys: alan wrote ${alan.length}; ifVersion of an old version -> VersionMismatchError; delRange ${deleted}`,
  );
  console.log("walkthrough ok");
}
