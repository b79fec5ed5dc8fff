import { test } from "./shim.ts";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ErrorCode, open, ReadTxn, Txn, WriteTxn } from "../mod.ts";
import { tempEnv, throwsMdbx } from "./helpers.ts";

const S = { keys: "string", values: "string" } as const;

function setup(options = {}) {
  const t = tempEnv(options);
  const tbl = t.env.table("t", S);
  return { t, env: t.env, tbl };
}

// ------------------------------------------------------------ callbacks ---

test("env.read runs the callback in a read transaction, returns its result and ends the transaction", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => txn.put(tbl, "k", "v"));
  let seen: ReadTxn | undefined;
  const r = env.read((txn) => {
    seen = txn;
    assert.ok(txn instanceof ReadTxn);
    assert.ok(txn instanceof Txn);
    assert.equal(txn.isWrite, false);
    return txn.get(tbl, "k");
  });
  assert.equal(r, "v");
  assert.equal(seen!.isOpen, false);
  assert.deepEqual(env.readers(), []);
});

test("env.read ends the transaction when the callback throws, and rethrows", () => {
  const { t, env } = setup();
  using _ = t;
  let seen: ReadTxn | undefined;
  assert.throws(() =>
    env.read((txn) => {
      seen = txn;
      throw new Error("boom");
    }), /boom/);
  assert.equal(seen!.isOpen, false);
  assert.deepEqual(env.readers(), []);
});

test("env.write commits what the callback wrote and returns its result", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const r = env.write((txn) => {
    assert.ok(txn instanceof WriteTxn);
    assert.equal(txn.isWrite, true);
    txn.put(tbl, "k", "v");
    return 42;
  });
  assert.equal(r, 42);
  assert.equal(env.read((txn) => txn.get(tbl, "k")), "v");
});

test("env.write aborts when the callback throws: nothing is written and the error propagates", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  assert.throws(() =>
    env.write((txn) => {
      txn.put(tbl, "k", "v");
      throw new Error("boom");
    }), /boom/);
  assert.equal(env.read((txn) => txn.get(tbl, "k")), undefined);
  // the writer was released
  env.write((txn) => txn.put(tbl, "k", "w"));
  assert.equal(env.read((txn) => txn.get(tbl, "k")), "w");
});

test("env.write with an async callback is a TypeError and writes nothing", async () => {
  const { t, env, tbl } = setup();
  using _ = t;
  let ran = false;
  assert.throws(
    () =>
      env.write(async (txn) => {
        txn.put(tbl, "k", "v");
        await null;
        ran = true;
      }),
    (e: unknown) => e instanceof TypeError && /returned a Promise.*Nothing was written/s.test(e.message),
  );
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(ran, true, "the async part ran later, outside any transaction");
  assert.equal(env.read((txn) => txn.get(tbl, "k")), undefined);
  env.write((txn) => txn.put(tbl, "x", "y")); // the writer was released
});

test("env.write accepts a callback that commits or aborts the transaction itself", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => {
    txn.put(tbl, "a", "1");
    txn.commit();
  });
  env.write((txn) => {
    txn.put(tbl, "b", "2");
    txn.abort();
  });
  assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["a"]);
});

test("an async env.read keeps its snapshot until the promise settles, then ends", async () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => txn.put(tbl, "k", "old"));
  let seen: ReadTxn | undefined;
  const p = env.read(async (txn) => {
    seen = txn;
    const before = txn.get(tbl, "k");
    await new Promise((r) => setTimeout(r, 5));
    return [before, txn.get(tbl, "k")];
  });
  assert.ok(p instanceof Promise);
  env.write((txn) => txn.put(tbl, "k", "new"));
  assert.equal(seen!.isOpen, true);
  assert.deepEqual(await p, ["old", "old"]);
  assert.equal(seen!.isOpen, false);
  assert.deepEqual(env.readers(), []);
  assert.equal(env.read((txn) => txn.get(tbl, "k")), "new");
});

test("an async env.read that rejects still ends its transaction", async () => {
  const { t, env } = setup();
  using _ = t;
  let seen: ReadTxn | undefined;
  await assert.rejects(
    env.read(async (txn) => {
      seen = txn;
      await null;
      throw new Error("late");
    }),
    /late/,
  );
  assert.equal(seen!.isOpen, false);
});

// ----------------------------------------------------- explicit control ---

test("beginWrite/commit makes changes visible; commit twice throws MDBX_BAD_TXN", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const w = env.beginWrite();
  w.put(tbl, "k", "v");
  assert.equal(w.get(tbl, "k"), "v", "a write transaction sees its own writes");
  assert.equal(env.read((txn) => txn.get(tbl, "k")), undefined, "readers do not see uncommitted writes");
  w.commit();
  assert.equal(w.isOpen, false);
  assert.equal(env.read((txn) => txn.get(tbl, "k")), "v");
  throwsMdbx(() => w.commit(), "MDBX_BAD_TXN", /was committed; begin a new one/);
  throwsMdbx(() => w.put(tbl, "k", "w"), "MDBX_BAD_TXN");
  w.abort(); // abort after commit is a no-op
});

test("beginWrite/abort discards changes; abort is idempotent", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const w = env.beginWrite({ noSync: true, noMetaSync: true });
  w.put(tbl, "k", "v");
  w.abort();
  w.abort();
  assert.equal(w.isOpen, false);
  throwsMdbx(() => w.get(tbl, "k"), "MDBX_BAD_TXN", /was aborted/);
  assert.equal(env.read((txn) => txn.get(tbl, "k")), undefined);
});

test("a read transaction's end, commit and abort all end it, idempotently", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  for (const how of ["end", "commit", "abort"] as const) {
    const r = env.beginRead();
    r[how]();
    r[how]();
    r.end();
    assert.equal(r.isOpen, false);
    throwsMdbx(() => r.get(tbl, "k"), "MDBX_BAD_TXN", /has ended/);
  }
  assert.deepEqual(env.readers(), []);
});

test("every method of an ended transaction throws MDBX_BAD_TXN", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const r = env.beginRead();
  r.end();
  const w = env.beginWrite();
  w.abort();
  const reads = (x: ReadTxn | WriteTxn): [string, () => unknown][] => [
    ["id", () => x.id],
    ["unsafeHandle", () => x.unsafeHandle],
    ["get", () => x.get(tbl, "k")],
    ["unsafeGetView", () => x.unsafeGetView(tbl, "k")],
    ["getWithCount", () => x.getWithCount(tbl, "k")],
    ["has", () => x.has(tbl, "k")],
    ["getGreaterOrEqual", () => x.getGreaterOrEqual(tbl, "k")],
    ["range", () => [...x.range(tbl)]],
    ["keys", () => [...x.keys(tbl)]],
    ["values", () => [...x.values(tbl)]],
    ["count", () => x.count(tbl)],
    ["estimateRange", () => x.estimateRange(tbl)],
    ["compare", () => x.compare(tbl, "a", "b")],
    ["cursor", () => x.cursor(tbl)],
    ["stat", () => x.stat(tbl)],
    ["tableFlags", () => x.tableFlags(tbl)],
    ["tables", () => x.tables()],
    ["sequence", () => x.sequence(tbl)],
    ["canary", () => x.canary()],
    ["info", () => x.info()],
    ["copyTo", () => x.copyTo(path.join(t.dir, "copy"))],
  ];
  const writes: [string, () => unknown][] = [
    ["put", () => w.put(tbl, "k", "v")],
    ["unsafeReserve", () => w.unsafeReserve(tbl, "k", 4)],
    ["del", () => w.del(tbl, "k")],
    ["replace", () => w.replace(tbl, "k", "v")],
    ["clear", () => w.clear(tbl)],
    ["drop", () => w.drop(tbl)],
    ["rename", () => w.rename(tbl, "u")],
    ["incrementSequence", () => w.incrementSequence(tbl)],
    ["setCanary", () => w.setCanary({ x: 1 })],
    ["begin", () => w.begin()],
    ["commit", () => w.commit()],
  ];
  const others: [string, () => unknown][] = [["renew", () => r.renew()], ["reset", () => r.reset()], [
    "park",
    () => r.park(),
  ], ["unpark", () => r.unpark()]];
  for (const [name, call] of [...reads(r), ...reads(w), ...writes, ...others]) {
    assert.throws(call, (e: unknown) => (e as { codeName?: string }).codeName === "MDBX_BAD_TXN", name);
  }
  assert.equal(fs.existsSync(path.join(t.dir, "copy")), false);
  // the table is intact
  env.write((txn) => txn.put(tbl, "k", "v"));
  assert.equal(env.read((txn) => txn.get(tbl, "k")), "v");
});

test("a second top-level write transaction fails with MDBX_TXN_OVERLAPPING and says to use begin()", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const w = env.beginWrite();
  const e = throwsMdbx(() => env.beginWrite(), "MDBX_TXN_OVERLAPPING", /already open.*txn\.begin\(\)/);
  assert.equal(e.code, ErrorCode.TXN_OVERLAPPING);
  throwsMdbx(() => env.write(() => {}), "MDBX_TXN_OVERLAPPING");
  // the first one is unaffected
  w.put(tbl, "k", "v");
  w.commit();
  env.write((txn) => assert.equal(txn.get(tbl, "k"), "v"));
});

test("env.write inside env.write fails with MDBX_TXN_OVERLAPPING and the outer one can still commit", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => {
    txn.put(tbl, "outer", "1");
    throwsMdbx(() => env.write((inner) => inner.put(tbl, "inner", "1")), "MDBX_TXN_OVERLAPPING");
  });
  assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["outer"]);
});

test("read transactions may be open beside the write transaction", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  using w = env.beginWrite();
  using r1 = env.beginRead();
  using r2 = env.beginRead();
  w.put(tbl, "k", "v");
  assert.equal(r1.get(tbl, "k"), undefined);
  assert.equal(r2.id, r1.id);
  assert.equal(w.id, r1.id + 1);
});

// --------------------------------------------------------------- nested ---

test("a committed nested transaction merges into its parent", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const w = env.beginWrite();
  w.put(tbl, "parent", "1");
  const c = w.begin();
  assert.equal(c.get(tbl, "parent"), "1", "the child sees the parent's writes");
  c.put(tbl, "child", "2");
  c.commit();
  assert.equal(w.get(tbl, "child"), "2");
  assert.equal(env.read((txn) => txn.get(tbl, "child")), undefined, "not visible before the parent commits");
  w.commit();
  assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["child", "parent"]);
});

test("an aborted nested transaction discards only its own changes", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((w) => {
    w.put(tbl, "parent", "1");
    const c = w.begin();
    c.put(tbl, "child", "2");
    c.del(tbl, "parent");
    c.abort();
    assert.equal(w.get(tbl, "parent"), "1");
    assert.equal(w.get(tbl, "child"), undefined);
  });
  assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["parent"]);
});

test("a parent refuses every call while its nested transaction is active", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const w = env.beginWrite();
  const cur = w.cursor(tbl);
  const c = w.begin();
  const msg = /active nested transaction/;
  throwsMdbx(() => w.get(tbl, "k"), "MDBX_BAD_TXN", msg);
  throwsMdbx(() => w.put(tbl, "k", "v"), "MDBX_BAD_TXN", msg);
  throwsMdbx(() => w.begin(), "MDBX_BAD_TXN", msg);
  throwsMdbx(() => w.commit(), "MDBX_BAD_TXN", msg);
  throwsMdbx(() => w.id, "MDBX_BAD_TXN", msg);
  throwsMdbx(() => cur.first(), "MDBX_BAD_TXN", msg);
  c.put(tbl, "k", "v");
  c.commit();
  // usable again once the child ended
  assert.equal(w.get(tbl, "k"), "v");
  assert.deepEqual(cur.first(), { key: "k", value: "v" });
  w.commit();
});

test("aborting a parent aborts its nested transactions", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const w = env.beginWrite();
  const c = w.begin();
  const g = c.begin();
  g.put(tbl, "k", "v");
  w.abort();
  assert.equal(c.isOpen, false);
  assert.equal(g.isOpen, false);
  throwsMdbx(() => g.put(tbl, "k", "v"), "MDBX_BAD_TXN", /its parent ended/);
  throwsMdbx(() => c.commit(), "MDBX_BAD_TXN");
  assert.equal(env.read((txn) => txn.get(tbl, "k")), undefined);
  env.write((txn) => txn.put(tbl, "after", "1")); // the writer was released
});

test("nested transactions nest several levels deep, each merging into its parent", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((w) => {
    let cur: WriteTxn = w;
    const chain: WriteTxn[] = [];
    for (let i = 0; i < 5; i++) {
      cur = cur.begin();
      cur.put(tbl, `level${i}`, String(i));
      chain.push(cur);
    }
    chain[4].abort(); // discards level4 only
    for (let i = 3; i >= 0; i--) chain[i].commit();
  });
  assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["level0", "level1", "level2", "level3"]);
});

test("a table first opened inside a nested transaction works, and is forgotten if that transaction aborts", () => {
  const { t, env } = setup();
  using _ = t;
  env.write((w) => {
    const c = w.begin();
    const inner = env.table("inner", S);
    c.put(inner, "k", "v");
    c.commit();
    assert.equal(w.get(inner, "k"), "v");
  });
  assert.deepEqual(env.tables().map((e) => e.name).sort(), ["inner", "t"]);
  assert.throws(() =>
    env.write((w) => {
      const gone = env.table("gone", S);
      w.put(gone, "k", "v");
      throw new Error("abort");
    }), /abort/);
  // the aborted creation left no stale handle behind
  const gone = env.table("gone", S);
  env.write((w) => w.put(gone, "k2", "v2"));
  assert.deepEqual(env.read((txn) => [...txn.keys(gone)]), ["k2"]);
});

// ------------------------------------------------------------ snapshots ---

test("a read transaction keeps its snapshot: later commits are invisible to it", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => txn.put(tbl, "a", "1"));
  const r = env.beginRead();
  const id = r.id;
  env.write((txn) => {
    txn.put(tbl, "a", "2");
    txn.put(tbl, "b", "2");
  });
  env.write((txn) => txn.del(tbl, "a"));
  assert.equal(r.get(tbl, "a"), "1");
  assert.equal(r.get(tbl, "b"), undefined);
  assert.deepEqual([...r.keys(tbl)], ["a"]);
  assert.equal(r.id, id);
  assert.equal(r.info().readerLag, 2);
  using fresh = env.beginRead();
  assert.deepEqual([...fresh.keys(tbl)], ["b"]);
  assert.equal(fresh.id, id + 2);
  r.end();
});

test("reset releases the snapshot (reads throw) and renew starts again on the newest one", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => txn.put(tbl, "k", "1"));
  const r = env.beginRead();
  const view = r.unsafeGetView(tbl, "k")!;
  r.reset();
  assert.equal(view.length, 0, "reset detaches views");
  assert.equal(r.isOpen, true);
  throwsMdbx(() => r.get(tbl, "k"), "MDBX_BAD_TXN");
  env.write((txn) => txn.put(tbl, "k", "2"));
  r.renew();
  assert.equal(r.get(tbl, "k"), "2");
  assert.equal(r.id, env.info().recentTxnId);
  r.end();
  throwsMdbx(() => r.renew(), "MDBX_BAD_TXN");
});

test("a parked reader keeps its snapshot; unpark returns true when it was not ousted", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => txn.put(tbl, "k", "1"));
  using r = env.beginRead();
  r.park(false);
  throwsMdbx(() => r.get(tbl, "k"), "MDBX_BAD_TXN", /get in table "t"/);
  env.write((txn) => txn.put(tbl, "k", "2"));
  assert.equal(r.unpark(), true);
  assert.equal(r.get(tbl, "k"), "1");
  // autoUnpark: the next read unparks it
  r.park();
  assert.equal(r.get(tbl, "k"), "1");
  assert.equal(r.unpark(), true);
});

/** A parked reader that a writer filling a 1 MiB map has to oust. */
function ousted(restart: boolean) {
  const t = tempEnv({ geometry: { lower: "256KiB", now: "256KiB", upper: "1MiB", growth: "64KiB" } });
  const tbl = t.env.table("t", { keys: "uint32" });
  t.env.write((txn) => {
    for (let j = 0; j < 20; j++) txn.put(tbl, j, new Uint8Array(3000));
  });
  const r = t.env.beginRead();
  const id = r.id;
  r.park(false);
  for (let i = 1; i < 40; i++) {
    t.env.write((txn) => {
      for (let j = 0; j < 20; j++) txn.put(tbl, j, new Uint8Array(3000).fill(i));
    });
  }
  return { t, tbl, r, id, restart };
}

test("a parked reader that writers had to oust fails to unpark with MDBX_OUSTED", () => {
  const { t, tbl, r } = ousted(false);
  using _ = t;
  throwsMdbx(() => r.unpark(false), "MDBX_OUSTED");
  throwsMdbx(() => r.get(tbl, 0), "MDBX_BAD_TXN");
  r.end();
  assert.equal(r.isOpen, false);
});

test("unpark(true) restarts an ousted reader on the newest snapshot and returns false", () => {
  const { t, tbl, r, id } = ousted(true);
  using _ = t;
  assert.equal(r.unpark(true), false);
  assert.ok(r.id > id);
  assert.equal(r.get(tbl, 0)![0], 39);
  r.end();
});

test("txn.info describes the snapshot of a reader and the dirty space of a writer", () => {
  const { t, env, tbl } = setup({ geometry: { upper: "16MiB" } });
  using _ = t;
  env.write((txn) => txn.put(tbl, "k", "v"));
  const r = env.beginRead();
  const ri = r.info();
  assert.equal(ri.id, r.id);
  assert.equal(ri.readerLag, 0);
  assert.ok(ri.spaceUsed > 0);
  assert.equal(ri.spaceLimitHard, 16 * 1024 * 1024);
  const w = env.beginWrite();
  for (let i = 0; i < 100; i++) w.put(tbl, `k${i}`, "x".repeat(100));
  const wi = w.info(true);
  assert.equal(wi.id, w.id);
  assert.equal(wi.id, r.id + 1);
  assert.ok(wi.spaceDirty > 0);
  assert.ok(wi.spaceLeftover > 0);
  w.abort();
  r.end();
});

test("txn.id is the snapshot's txnid for readers and the next txnid for the writer", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const before = env.read((txn) => txn.id);
  const wid = env.write((txn) => {
    txn.put(tbl, "k", "v");
    return txn.id;
  });
  assert.equal(wid, before + 1);
  assert.equal(env.read((txn) => txn.id), wid);
  assert.equal(env.info().recentTxnId, wid);
});

test("unsafeHandle is a native handle while the transaction is open", () => {
  const { t, env } = setup();
  using _ = t;
  using r = env.beginRead();
  assert.ok(r.unsafeHandle !== null && r.unsafeHandle !== undefined && r.unsafeHandle !== 0);
});

test("copyTo writes the transaction's snapshot, not later commits", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  env.write((txn) => {
    for (let i = 0; i < 100; i++) txn.put(tbl, `k${String(i).padStart(3, "0")}`, `v${i}`);
  });
  const r = env.beginRead();
  env.write((txn) => txn.clear(tbl));
  const dest = path.join(t.dir, "snap.mdbx");
  r.copyTo(dest, { compact: true });
  throwsMdbx(() => r.copyTo(dest), "MDBX_EEXIST");
  r.copyTo(dest, { overwrite: true });
  r.end();
  using copy = open(dest, { noSubdir: true, readOnly: true });
  const ct = copy.table("t", S);
  assert.equal(copy.read((txn) => txn.count(ct)), 100);
  assert.equal(copy.read((txn) => txn.get(ct, "k042")), "v42");
});

test("copyTo in a write transaction fails with MDBX_BAD_TXN and leaves the transaction usable", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  const dest = path.join(t.dir, "w.mdbx");
  env.write((txn) => {
    txn.put(tbl, "pending", "1");
    // libmdbx copies read snapshots only
    throwsMdbx(() => txn.copyTo(dest), "MDBX_BAD_TXN", /copying to/);
    txn.put(tbl, "more", "1");
  });
  assert.equal(fs.existsSync(dest), false);
  assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["more", "pending"]);
});

// ---------------------------------------------------------------- using ---

test("`using` ends a ReadTxn at the end of its block", () => {
  const { t, env } = setup();
  using _ = t;
  let outer: ReadTxn;
  {
    using r = env.beginRead();
    outer = r;
    assert.equal(env.readers().length, 1);
  }
  assert.equal(outer.isOpen, false);
  assert.deepEqual(env.readers(), []);
});

test("`using` aborts an uncommitted WriteTxn and leaves a committed one alone", () => {
  const { t, env, tbl } = setup();
  using _ = t;
  {
    using w = env.beginWrite();
    w.put(tbl, "aborted", "1");
  }
  {
    using w = env.beginWrite();
    w.put(tbl, "committed", "1");
    w.commit();
  }
  assert.deepEqual(env.read((txn) => [...txn.keys(tbl)]), ["committed"]);
  env.write(() => {}); // no writer left behind
});

test("env.read(async ...) past the last reader slot rejects its promise with MDBX_READERS_FULL saying how to raise maxReaders", async () => {
  using t = tempEnv({ maxReaders: 16 });
  const tbl = t.env.table("t", { keys: "string", values: "string" });
  t.env.write((x) => x.put(tbl, "k", "v"));
  const slots = t.env.info().maxReaders;
  const n = slots + 20;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const calls: Promise<string | undefined>[] = [];
  let thrown = 0;
  for (let i = 0; i < n; i++) {
    try {
      calls.push(t.env.read(async (txn) => {
        await gate; // every read holds its slot until the gate opens
        return txn.get(tbl, "k");
      }));
    } catch {
      thrown++;
    }
  }
  assert.equal(thrown, 0, "a promise-returning call never throws synchronously");
  release();
  const settled = await Promise.allSettled(calls);
  const ok = settled.filter((s) => s.status === "fulfilled");
  const failed = settled.filter((s) => s.status === "rejected").map((s) => (s as PromiseRejectedResult).reason);
  assert.ok(ok.length > 0 && ok.every((s) => s.value === "v"), `${ok.length} reads succeeded`);
  assert.ok(failed.length >= 20, `${failed.length} of ${n} rejected`);
  for (const e of failed) {
    assert.equal(e.codeName, "MDBX_READERS_FULL");
    assert.match(e.message, new RegExp(`all ${slots} reader slots .* taken \\(\\d+ by read transactions open in this`));
    assert.match(
      e.message,
      /open the database with a larger maxReaders \(e\.g\. open\(path, \{ maxReaders: \d+ \}\)\)/,
    );
  }
  // the slots are free again
  assert.equal(t.env.read((x) => x.get(tbl, "k")), "v");
  // a synchronous callback still throws synchronously
  const held = Array.from({ length: slots }, () => {
    try {
      return t.env.beginRead();
    } catch {
      return null;
    }
  });
  throwsMdbx(() => t.env.read((x) => x.get(tbl, "k")), "MDBX_READERS_FULL", /maxReaders/);
  for (const r of held) r?.end();
});
