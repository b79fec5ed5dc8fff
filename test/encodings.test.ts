/**
 * Issue 14: value encodings (msgpack, json, codecs of the user's own), strict
 * kinds, versions and conditional writes (in one process and across two),
 * range deletes against a model, and growing the map while readers run.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, json, MdbxError, msgpack, open, packTuple, type ValueCodec, VersionMismatchError } from "../mod.ts";
import { Packr } from "msgpackr";
import { assertStockChk, removeDir, runtimeCommand, tempDir, tempEnv, throwsMdbx } from "./helpers.ts";
import { compareBytes, int, prng } from "./children/cache_data.ts";
import { incrementVersioned } from "./children/version_increments.ts";

const SEED = Number(process.env.TURBOMDBX_SEED ?? 1414);
const childScript = fileURLToPath(new URL("./children/encodings_child.ts", import.meta.url));

// ------------------------------------------------------------------ codecs

interface User {
  name: string;
  age: number;
  tags?: string[];
}

test("msgpack values round-trip objects, arrays, binaries, bigints, dates and null through msgpackr", () => {
  using t = tempEnv();
  const users = t.env.table("users", { keys: "string", values: "msgpack" });
  const bin = Uint8Array.from([0, 1, 255]);
  const doc = { name: "Ada", n: 1.5, list: [1, "two", null, true], nested: { deep: [{ x: -3 }] }, bin };
  const when = new Date(1_700_000_000_000);
  t.env.write((txn) => {
    txn.put(users, "ada", doc);
    txn.put(users, "nil", null);
    txn.put(users, "big", 2n ** 60n);
    txn.put(users, "when", when);
    txn.put(users, "text", "just a string");
  });
  t.env.read((txn) => {
    const got = txn.get(users, "ada") as typeof doc;
    assert.deepEqual({ ...got, bin: Uint8Array.from(got.bin) }, doc);
    assert.equal(txn.get(users, "nil"), null);
    assert.equal(txn.get(users, "big"), 2n ** 60n);
    assert.deepEqual(txn.get(users, "when"), when);
    assert.equal(txn.get(users, "text"), "just a string");
    assert.equal(txn.get(users, "none"), undefined);
    // a decoded binary is a copy, not a view of the read buffer the next get reuses
    const b1 = (txn.get(users, "ada") as typeof doc).bin;
    txn.get(users, "text");
    assert.deepEqual(Uint8Array.from(b1), bin);
    // getInto stays raw bytes: the msgpack encoding itself
    const raw = new Uint8Array(256);
    const n = txn.getInto(users, "ada", raw);
    assert.deepEqual(raw.subarray(0, n), Uint8Array.from(new Packr({ useRecords: false }).pack(doc)));
    // ranges and getMany decode too
    assert.deepEqual([...txn.values(users, { prefix: "n" })], [null]);
    assert.deepEqual(txn.getMany(users, ["nil", "text", "x"]), [null, "just a string", undefined]);
  });
  t.env.write((txn) => {
    assert.throws(
      () => txn.put(users, "u", undefined),
      (e) => e instanceof TypeError && /undefined.*store null/.test(e.message),
    );
  });
});

test("msgpack<T>() and json<T>() type the table's values; a table handle carries the type", () => {
  using t = tempEnv();
  const users = t.env.table("users", { keys: "tuple", values: msgpack<User>() });
  const docs = t.env.table("docs", { keys: "string", values: json<{ title: string }>() });
  const plainJson = t.env.table("plain", { values: "json" });
  t.env.write((txn) => {
    txn.put(users, [1], { name: "Ada", age: 36, tags: ["math"] });
    txn.put(docs, "d", { title: "On Computable Numbers" });
    txn.put(plainJson, "k", [1, { a: "b" }]);
  });
  t.env.read((txn) => {
    const u: User | undefined = txn.get(users, [1]);
    assert.equal(u?.age, 36);
    const d: { title: string } | undefined = txn.get(docs, "d");
    assert.equal(d?.title, "On Computable Numbers");
    assert.deepEqual(txn.get(plainJson, "k"), [1, { a: "b" }]);
    // json is UTF-8 JSON text
    const raw = new Uint8Array(64);
    const n = txn.getInto(docs, "d", raw);
    assert.equal(new TextDecoder().decode(raw.subarray(0, n)), '{"title":"On Computable Numbers"}');
  });
  t.env.write((txn) => assert.throws(() => txn.put(plainJson, "f", (() => 1) as never), /JSON cannot encode/));
});

test("msgpack records are self-contained without structures, and smaller with a fixed list of structures", () => {
  const dir = tempDir();
  const db = path.join(dir, "db");
  try {
    const shape = ["id", "name", "age"];
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i, name: `user ${i}`, age: 20 + i }));
    const sizes: Record<string, number> = {};
    {
      using env = open(db, { sync: "lazy" });
      const plain = env.table("plain", { keys: "uint32", values: "msgpack" });
      const own = env.table("own", { keys: "uint32", values: msgpack({ records: true }) });
      const shared = env.table("shared", { keys: "uint32", values: msgpack({ structures: [shape] }) });
      env.write((txn) => {
        for (const r of rows) {
          txn.put(plain, r.id, r);
          txn.put(own, r.id, r);
          txn.put(shared, r.id, r);
        }
        txn.put(own, 1000, { other: "shape" });
        txn.put(shared, 1000, { other: "shape" }); // not in the list: written self-contained
      });
      const buf = new Uint8Array(256);
      env.read((txn) => {
        for (const [name, tbl] of [["plain", plain], ["own", own], ["shared", shared]] as const) {
          sizes[name] = txn.getInto(tbl, 7, buf);
        }
      });
    }
    assert.ok(sizes.shared < sizes.plain, `shared structures make values smaller (${JSON.stringify(sizes)})`);
    // a new process (a new Env, new codec objects): the structures list appended to still reads old values
    using env = open(db, { sync: "lazy" });
    const own = env.table("own", { keys: "uint32", values: msgpack({ records: true }) });
    const shared = env.table("shared", { keys: "uint32", values: msgpack({ structures: [shape, ["x", "y"]] }) });
    env.read((txn) => {
      assert.deepEqual([...txn.values(own, { lt: 1000 })], rows);
      assert.deepEqual([...txn.values(shared, { lt: 1000 })], rows);
      assert.deepEqual(txn.get(own, 1000), { other: "shape" });
      assert.deepEqual(txn.get(shared, 1000), { other: "shape" });
    });
  } finally {
    removeDir(dir);
  }
});

test("a codec of your own encodes and decodes every value; decode gets a copy it may keep", () => {
  using t = tempEnv();
  const kept: Uint8Array[] = [];
  const point: ValueCodec<{ x: number; y: number }> = {
    encode: (p) => new Uint8Array(new Float64Array([p.x, p.y]).buffer),
    decode: (b) => {
      kept.push(b);
      const f = new Float64Array(b.slice().buffer);
      return { x: f[0], y: f[1] };
    },
  };
  const pts = t.env.table("pts", { keys: "tuple", values: point });
  t.env.write((txn) => {
    txn.put(pts, ["a"], { x: 1.5, y: -2 });
    txn.put(pts, ["b"], { x: 3, y: 4 });
  });
  t.env.read((txn) => {
    assert.deepEqual(txn.get(pts, ["a"]), { x: 1.5, y: -2 });
    assert.deepEqual([...txn.values(pts)], [{ x: 1.5, y: -2 }, { x: 3, y: 4 }]);
  });
  assert.deepEqual(new Float64Array(kept[0].slice().buffer), new Float64Array([1.5, -2]), "a kept copy is intact");
  const bad = t.env.table("bad", { values: { encode: () => "no" as never, decode: (b: Uint8Array) => b } });
  t.env.write((txn) =>
    assert.throws(() => txn.put(bad, "k", 1 as never), /returned the string "no", not a Uint8Array/)
  );
});

// ------------------------------------------------------------------ strict kinds

test("strict kinds: unknown kinds, other codecs on reopen, versioned mismatches are TypeErrors at env.table()", () => {
  using t = tempEnv();
  assert.throws(() => t.env.table("a", { keys: "tuples" as never }), /keys "tuples" is not a key kind/);
  assert.throws(() => t.env.table("a", { values: "msgpackr" as never }), /values "msgpackr" is not a value kind/);
  assert.throws(() => t.env.table("a", { values: { encode: 1 } as never }), /not a value kind/);
  assert.throws(() => t.env.table("a", { versioned: "yes" as never }), /versioned must be true or false/);
  assert.throws(() => t.env.table("a", { versioned: true, dupSort: true }), /versioned tables cannot be dupSort/);
  const m = msgpack();
  t.env.table("b", { values: m });
  assert.equal(t.env.table("b", { values: m }).values, m, "the same codec object reopens it");
  assert.throws(() => t.env.table("b", { values: msgpack() }), /another codec object/);
  assert.throws(() => t.env.table("b", { values: m, versioned: true }), /without versioned: true/);
  assert.deepEqual(t.env.tables().map((e) => e.name), ["b"]);
});

test("strict kinds: uint64 refuses what it cannot return exactly; another integer width is an error, not NaN", () => {
  using t = tempEnv();
  const u = t.env.table("u", { keys: "uint64", values: "uint64" });
  t.env.write((txn) => {
    assert.throws(() => txn.put(u, 2 ** 53, 1), TypeError);
    assert.throws(() => txn.put(u, 1, 2n ** 53n as never), /above 2\^53-1/);
    assert.throws(() => txn.put(u, -1, 1), TypeError);
    assert.throws(() => txn.put(u, 1.5, 1), TypeError);
    txn.put(u, 2 ** 53 - 1, 2 ** 53 - 1);
  });
  const w = t.env.table("w", { keys: "uint32", values: "uint32" });
  t.env.write((txn) => txn.put(w, 1, 2));
  t.env.close();
  using env = open(t.path);
  throwsMdbx(() => env.table("w", { keys: "uint64" }), "MDBX_INCOMPATIBLE", /4-byte key/);
  throwsMdbx(() => env.table("w", { keys: "uint32", values: "uint64" }), "MDBX_INCOMPATIBLE", /4-byte value/);
  throwsMdbx(() => env.table("w", { keys: "uint32", values: "uint32", versioned: true }), "MDBX_INCOMPATIBLE");
  assert.equal(env.read((txn) => txn.get(env.table("w", { keys: "uint32", values: "uint32" }), 1)), 2);
});

// ------------------------------------------------------------------ versions

test("a versioned table stores the commit's txnid with each value: getEntry, ifVersion, check, del", () => {
  using t = tempEnv();
  const docs = t.env.table("docs", { keys: "tuple", values: "msgpack", versioned: true });
  const id1 = t.env.write((txn) => {
    txn.put(docs, ["a"], { v: 1 });
    return txn.id;
  });
  const e = t.env.read((txn) => txn.getEntry(docs, ["a"]))!;
  assert.deepEqual(e, { value: { v: 1 }, version: id1 });
  t.env.read((txn) => {
    // the stored layout: 8 bytes of big-endian txnid, then the encoded value (what getInto copies)
    const raw = new Uint8Array(64);
    const n = txn.getInto(docs, ["a"], raw);
    assert.equal(new DataView(raw.buffer).getBigUint64(0, false), BigInt(id1));
    assert.deepEqual(raw.subarray(8, n), Uint8Array.from(new Packr({ useRecords: false }).pack({ v: 1 })));
    assert.deepEqual(txn.get(docs, ["a"]), { v: 1 }, "get() skips the version");
    assert.deepEqual([...txn.values(docs)], [{ v: 1 }]);
  });
  // a conditional write on the version read succeeds once; the second, on the old version, fails and writes nothing
  const id2 = t.env.write((txn) => {
    txn.put(docs, ["a"], { v: 2 }, { ifVersion: e.version });
    return txn.id;
  });
  const err = assert.throws(
    () => t.env.write((txn) => txn.put(docs, ["a"], { v: 3 }, { ifVersion: e.version })),
    (x) =>
      x instanceof VersionMismatchError && x.expected === id1 && x.actual === id2 && x.table === "docs" &&
      /conditional on the key being version/.test(x.message),
  );
  void err;
  assert.deepEqual(t.env.read((txn) => txn.getEntry(docs, ["a"])), { value: { v: 2 }, version: id2 });
  // null: only if absent
  t.env.write((txn) => txn.put(docs, ["b"], 1, { ifVersion: null }));
  assert.throws(() => t.env.write((txn) => txn.put(docs, ["b"], 2, { ifVersion: null })), VersionMismatchError);
  // check() + del(): a conditional delete; a nested transaction's write carries its top-level one's version
  t.env.write((txn) => {
    txn.check(docs, ["a"], id2);
    txn.del(docs, ["a"]);
    const child = txn.begin();
    child.put(docs, ["c"], "nested");
    child.commit();
    assert.equal(txn.getEntry(docs, ["c"])!.version, txn.id);
    // cursor puts and replace() stamp too
    using cur = txn.cursor(docs);
    cur.put(["d"], "cursor");
    assert.deepEqual(txn.replace(docs, ["d"], "replaced"), "cursor");
    assert.equal(txn.getEntry(docs, ["d"])!.version, txn.id);
  });
  t.env.read((txn) => assert.equal(txn.getEntry(docs, ["a"]), undefined));
  // on a table without versions, the version calls are TypeErrors
  const plain = t.env.table("plain");
  t.env.write((txn) => {
    assert.throws(() => txn.getEntry(plain, "k"), /not versioned/);
    assert.throws(() => txn.put(plain, "k", "v", { ifVersion: 1 }), /not versioned/);
    assert.throws(() => txn.check(docs, ["b"], "1" as never), /must be a version/);
  });
});

test("a cached versioned table answers get() and getEntry() from the cache with the version skipped", () => {
  using t = tempEnv();
  const objs = t.env.table("objs", { keys: "uint32", values: "msgpack", versioned: true, cache: true });
  const id = t.env.write((txn) => {
    for (let i = 0; i < 100; i++) txn.put(objs, i, { i });
    return txn.id;
  });
  t.env.read((txn) => {
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < 100; i++) assert.deepEqual(txn.getEntry(objs, i), { value: { i }, version: id });
    }
    assert.deepEqual(txn.getMany(objs, [3, 200]), [{ i: 3 }, undefined]);
  });
  assert.ok(objs.cacheStats()!.hits > 0);
});

test("tx.check() makes a concurrent transaction's commit conditional; a mismatch rejects it and is not retried", async () => {
  using t = tempEnv();
  const counter = t.env.table("counter", { keys: "string", values: "uint32", versioned: true });
  t.env.write((txn) => txn.put(counter, "c", 1));
  const e = t.env.read((txn) => txn.getEntry(counter, "c"))!;
  t.env.write((txn) => txn.put(counter, "c", 5)); // someone else wrote it
  const tx = t.env.beginConcurrent();
  tx.check(counter, "c", e.version);
  await tx.put(counter, "c", e.value + 1);
  await assert.rejects(tx.commit(), (x) => x instanceof VersionMismatchError && x.actual !== e.version);
  assert.equal(t.env.read((txn) => txn.get(counter, "c")), 5, "nothing of it was written");
  let retries = 0;
  await assert.rejects(
    t.env.transact((tx) => {
      tx.check(counter, "c", e.version);
      return tx.put(counter, "c", 0);
    }, { onRetry: () => retries++ }),
    VersionMismatchError,
  );
  assert.equal(retries, 0);
  // the right version commits, stamped with the group commit's txnid; a check alone (no write) is validated too
  const now = t.env.read((txn) => txn.getEntry(counter, "c"))!;
  await t.env.transact(async (tx) => {
    tx.check(counter, "c", now.version);
    tx.check(counter, "absent", null);
    await tx.put(counter, "c", now.value + 1);
  });
  const after = t.env.read((txn) => txn.getEntry(counter, "c"))!;
  assert.equal(after.value, 6);
  assert.ok(after.version > now.version);
  const ro = t.env.beginConcurrent();
  ro.check(counter, "c", now.version);
  await assert.rejects(ro.commit(), VersionMismatchError);
  // getEntry in a concurrent transaction: the snapshot's version, 0 for its own write
  await t.env.transact(async (tx) => {
    assert.deepEqual(await tx.getEntry(counter, "c"), after);
    await tx.put(counter, "n", 1);
    assert.deepEqual(await tx.getEntry(counter, "n"), { value: 1, version: 0 });
  });
});

/** Runs the child script; resolves with its stdout lines once it exits 0. */
function runChild(args: string[]): Promise<string[]> {
  const { cmd, args: argv } = runtimeCommand(childScript, args);
  const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  p.stdout!.setEncoding("utf8").on("data", (c: string) => out += c);
  p.stderr!.setEncoding("utf8").on("data", (c: string) => err += c);
  return new Promise((resolve, reject) => {
    p.on("close", (code) => {
      if (code === 0) resolve(out.trim().split("\n"));
      else reject(new Error(`child ${args.join(" ")} exited with ${code}:\n${out}\n${err}`));
    });
  });
}

for (const mode of ["cas", "check"] as const) {
  test(
    `two processes incrementing one versioned counter with ${
      mode === "cas" ? "put ifVersion" : "tx.check"
    } lose no update`,
    async () => {
      const dir = tempDir();
      const db = path.join(dir, "db");
      try {
        const env = open(db, { sync: "lazy" });
        const counter = env.table("counter", { keys: "string", values: "uint32", versioned: true });
        env.write((txn) => txn.put(counter, "c", 0));
        const N = 300;
        const child = runChild([mode, db, String(N)]);
        const mismatches = await incrementVersioned(env, counter, mode, N, true);
        const lines = await child;
        assert.match(lines.at(-1)!, /^done \d+$/);
        assert.equal(
          env.read((txn) => txn.get(counter, "c")),
          2 * N,
          `no lost update (mismatches here: ${mismatches})`,
        );
        env.close();
      } finally {
        removeDir(dir);
      }
    },
    { timeout: 120_000 },
  );
}

// ------------------------------------------------------------------ range delete

const hexOf = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

test("delRange deletes exactly the keys of random ranges and prefixes, against a model", () => {
  using t = tempEnv();
  const tbl = t.env.table("t", { cache: true });
  const rng = prng(SEED);
  const model = new Set<string>();
  const alphabet = [0, 1, 2, 0x7f, 0xff];
  const randomKey = () => Uint8Array.from({ length: int(rng, 1, 3) }, () => alphabet[int(rng, 0, 4)]);
  const refill = () =>
    t.env.write((txn) => {
      for (let i = 0; i < 150; i++) {
        const k = randomKey();
        txn.put(tbl, k, k);
        model.add(hexOf(k));
      }
    });
  const before = t.env.beginRead(); // an old snapshot keeps what delRange removes
  const kept = before.count(tbl);
  for (let round = 0; round < 150; round++) {
    if (round % 10 === 0) refill();
    const a = randomKey(), b = randomKey();
    const [lo, hi] = compareBytes(a, b) <= 0 ? [a, b] : [b, a];
    const range: { gte?: Uint8Array; gt?: Uint8Array; lte?: Uint8Array; lt?: Uint8Array; prefix?: Uint8Array } = {};
    const kind = int(rng, 0, 5);
    if (kind === 5) range.prefix = lo.subarray(0, int(rng, 1, lo.length));
    else {
      if (kind !== 4) rng() < 0.5 ? (range.gte = lo) : (range.gt = lo);
      if (kind !== 3) rng() < 0.5 ? (range.lte = hi) : (range.lt = hi);
    }
    const inRange = (k: Uint8Array) =>
      (range.prefix === undefined || compareBytes(k.subarray(0, range.prefix.length), range.prefix) === 0) &&
      (range.gte === undefined || compareBytes(k, range.gte) >= 0) &&
      (range.gt === undefined || compareBytes(k, range.gt) > 0) &&
      (range.lte === undefined || compareBytes(k, range.lte) <= 0) &&
      (range.lt === undefined || compareBytes(k, range.lt) < 0);
    const gone = [...model].filter((h) => inRange(fromHex(h)));
    const n = t.env.write((txn) => {
      const n = txn.delRange(tbl, range);
      for (const h of gone) assert.equal(txn.get(tbl, fromHex(h)), undefined, "gone inside the transaction");
      return n;
    });
    for (const h of gone) model.delete(h);
    assert.equal(
      n,
      gone.length,
      `round ${round}: ${JSON.stringify(range, (_, v) => v instanceof Uint8Array ? hexOf(v) : v)}`,
    );
    const left = t.env.read((txn) => [...txn.keys(tbl)].map(hexOf));
    assert.deepEqual(left, [...model].sort((x, y) => compareBytes(fromHex(x), fromHex(y))), `round ${round}`);
    // the cached table answers the truth
    t.env.read((txn) => {
      for (const h of gone.slice(0, 5)) assert.equal(txn.get(tbl, fromHex(h)), undefined);
      for (const h of [...model].slice(0, 5)) assert.deepEqual(txn.get(tbl, fromHex(h)), fromHex(h));
    });
  }
  assert.equal(before.count(tbl), kept, "an older snapshot still sees every key it had");
  before.end();
  assert.equal(t.env.write((txn) => txn.delRange(tbl)), model.size, "no bounds: the whole table");
  assert.equal(t.env.read((txn) => txn.count(tbl)), 0);
  const report = t.env.check();
  assert.ok(report.ok, report.issues.join("\n"));
  assertStockChk(t.path); // what mdbx_cursor_delete_range left is a stock libmdbx file
});

test("delRange on dupSort and tuple tables deletes every value of the keys in range", () => {
  using t = tempEnv();
  const tags = t.env.table("tags", { keys: "uint32", values: "uint32", dupSort: true });
  const rel = t.env.table("rel", { keys: "tuple", values: "msgpack" });
  t.env.write((txn) => {
    for (let k = 0; k < 200; k++) for (let v = 0; v < 30; v++) txn.put(tags, k, v);
    for (let s = 0; s < 50; s++) {
      for (const dir of ["in", "out"]) for (let d = 0; d < 20; d++) txn.put(rel, [s, dir, "follows", d], null);
    }
  });
  t.env.write((txn) => {
    assert.equal(txn.delRange(tags, { gte: 10, lte: 19 }), 10 * 30);
    assert.equal(txn.delRange(tags, { gt: 100, lt: 102 }), 30);
    assert.equal(txn.delRange(rel, { prefix: [7, "out"] }), 20);
    assert.equal(txn.delRange(rel, { prefix: [8] }), 40);
    assert.equal(txn.delRange(rel, { prefix: [7, "out"] }), 0, "nothing left there");
    assert.equal(txn.delRange(rel, { gte: [9, "in", "follows", 5], lt: [9, "out"] }), 15);
  });
  t.env.read((txn) => {
    assert.equal(txn.count(tags), (200 - 11) * 30);
    assert.deepEqual([...txn.dups(tags, 9)].length, 30);
    assert.equal(txn.count(tags, { gte: 10, lte: 19 }), 0);
    assert.equal(txn.count(rel), 50 * 40 - 20 - 40 - 15);
    assert.equal(txn.count(rel, { prefix: [7] }), 20);
  });
  t.env.write((txn) => {
    assert.throws(() => txn.delRange(tags, { gte: 1, gt: 2 }), /at most one of gte\/gt/);
    assert.throws(() => txn.delRange(tags, { limit: 3 } as never), /unknown range option "limit"/);
  });
  assert.ok(t.env.check().ok);
});

// ------------------------------------------------------------------ growing the map

test("after MDBX_MAP_FULL, env.resize({ upper }) lets writes go on without reopening, while readers run", async () => {
  const dir = tempDir();
  const db = path.join(dir, "db");
  try {
    const env = open(db, { sync: "lazy", geometry: { lower: "64KiB", upper: "1MiB", growth: "64KiB" } });
    const tbl = env.table("t", { cache: true }); // the get() cache must follow a map that moves
    env.write((txn) => txn.put(tbl, "first", new Uint8Array(100).fill(1)));
    const { cmd, args } = runtimeCommand(childScript, ["reader", db]);
    const reader = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    reader.stdout!.setEncoding("utf8").on("data", (c: string) => out += c);
    reader.stderr!.setEncoding("utf8").on("data", (c: string) => err += c);
    const exited = new Promise<number | null>((r) => reader.on("close", r));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 600 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re, `the reader child: ${err}`);
      return re.exec(out)!;
    };
    try {
      await waitFor(/ready 1\n/);
      const snap = env.beginRead(); // a reader of this process, with a view into the map
      const view = snap.unsafeGetView(tbl, "first")!;
      // fill the map until it is full
      let i = 0;
      const full = throwsMdbx(
        () => {
          for (;; i++) env.write((txn) => txn.put(tbl, `k${String(i).padStart(6, "0")}`, new Uint8Array(1000).fill(i)));
        },
        "MDBX_MAP_FULL",
        /env\.resize\(\{ upper/,
      );
      assert.equal(full.code, ErrorCode.MAP_FULL);
      assert.ok(i > 10, `${i} writes fitted in 1 MiB`);
      // The map grows in place if the addresses after it are free. If not, it must be mapped anew, which waits
      // for this process's transactions to end (their views point into it): the error says so.
      let geometry;
      try {
        geometry = env.resize({ upper: "8MiB" });
        assert.equal(snap.count(tbl), 1, "grown in place: this process's reader and its view are intact");
        assert.deepEqual(Uint8Array.from(view), new Uint8Array(100).fill(1));
        snap.end();
      } catch (e) {
        assert.ok(e instanceof MdbxError && e.code === ErrorCode.UNABLE_EXTEND_MAPSIZE, String(e));
        assert.match(e.message, /this Env has 1 open transaction.*end them and call resize\(\) again/);
        assert.equal(snap.count(tbl), 1, "the reader still reads its snapshot");
        assert.deepEqual(Uint8Array.from(view), new Uint8Array(100).fill(1));
        snap.end();
        geometry = env.resize({ upper: "8MiB" });
      }
      assert.equal(geometry.upper, 8 * 1024 * 1024);
      assert.equal(env.info().geometry.upper, 8 * 1024 * 1024);
      // the write that failed goes through now, and more, through the same table handle
      env.write((txn) => {
        for (let j = i; j < i + 2000; j++) txn.put(tbl, `k${String(j).padStart(6, "0")}`, new Uint8Array(1000).fill(j));
      });
      assert.equal(env.read((txn) => txn.count(tbl)), 1 + i + 2000);
      env.read((txn) => {
        for (let r = 0; r < 2; r++) { // a miss, then a hit, of the cache
          assert.deepEqual(txn.get(tbl, "first"), new Uint8Array(100).fill(1));
          for (const j of [0, i - 1, i, i + 1999]) {
            assert.deepEqual(txn.get(tbl, `k${String(j).padStart(6, "0")}`), new Uint8Array(1000).fill(j));
          }
        }
      });
      // the other process, which had the database open with the old limit, reads and writes past it
      reader.stdin!.write("go\n");
      const m = await waitFor(/read (\d+) (\d+)\n/);
      assert.equal(Number(m[1]), 1, "the child's old snapshot");
      assert.equal(Number(m[2]), 1 + i + 2000, "the child's new snapshot");
      assert.equal(await exited, 0, err);
      assert.equal(env.read((txn) => txn.count(tbl)), 2 + i + 2000, "the child's write landed");
      assert.throws(
        () => env.write(() => env.resize({ upper: "16MiB" })),
        /commit or abort the open write transaction/,
      );
      assert.throws(() => env.resize({ upper: "lots" }), RangeError);
      assert.ok(env.check().ok);
      assertStockChk(db); // the geometry written by the resize is stock libmdbx's
    } finally {
      if (reader.exitCode === null) reader.kill("SIGKILL");
      env.close();
    }
  } finally {
    removeDir(dir);
  }
}, { timeout: 120_000 });

test("a key of a tuple table too long for the page names its size; packTuple shows what is stored", () => {
  using t = tempEnv();
  const rel = t.env.table("rel", { keys: "tuple" });
  const long = ["x".repeat(3000)];
  t.env.write((txn) => {
    throwsMdbx(() => txn.put(rel, long, "v"), "MDBX_BAD_VALSIZE", /the key of 3002 bytes is longer/);
  });
  assert.equal(packTuple(long).length, 3002);
  assert.ok(MdbxError);
});
