/**
 * Objects and the relations between them, the pattern turbomdbx is built for
 * (Bun version).
 *
 *   bun examples/bun/objects_and_relations.ts
 *
 * - "objects": 16-byte ID -> JSON text.
 * - "relations": an index with composite keys and empty values:
 *
 *       <src 16 bytes><dir 1 byte><type 2 bytes, big-endian><dst 16 bytes>
 *
 *   Every relation is written twice, once from each end (dir OUT at the
 *   source, dir IN at the destination), so it can be followed both ways.
 *   Keys sort byte-wise, so all relations of one object sit next to each
 *   other, grouped by direction, then by type: following them is one prefix
 *   scan over `<src><dir>` (or `<src><dir><type>`) and one get() per `dst`.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { open, type ReadTxn, type Table, type WriteTxn } from "../../mod.ts";

// The one Bun global used here (typed locally: no @types/bun is installed).
declare const Bun: { nanoseconds(): number };

const OUT = 0, IN = 1;
const TYPE = { follows: 1, wrote: 2, cites: 3 } as const;
type RelType = keyof typeof TYPE;

/** A new random 16-byte ID (a UUID's bytes). */
function newId(): Uint8Array {
  const hex = crypto.randomUUID().replaceAll("-", "");
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

/** The relation key `<src><dir><type>[<dst>]`; without `dst` it is the prefix of a scan. */
function relationKey(src: Uint8Array, dir: number, type?: number, dst?: Uint8Array): Uint8Array {
  const key = new Uint8Array(type === undefined ? 17 : dst === undefined ? 19 : 35);
  key.set(src, 0);
  key[16] = dir;
  if (type !== undefined) {
    key[17] = type >> 8; // big-endian, so types sort numerically
    key[18] = type & 0xff;
  }
  if (dst !== undefined) key.set(dst, 19);
  return key;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "turbomdbx-relations-"));
try {
  main(path.join(tmp, "db"));
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

/** Builds a small graph, follows it both ways, and checks every answer. */
function main(dbPath: string): void {
  using env = open(dbPath);
  // the get() cache: reads of objects by ID answer from a native hash table of locations, exact at every snapshot
  const objects = env.table("objects", { values: "string", cache: true });
  const relations = env.table("relations");

  /** Stores a relation from both ends; values are empty, the key is the data. */
  function relate(txn: WriteTxn, src: Uint8Array, type: RelType, dst: Uint8Array): void {
    const empty = new Uint8Array(0);
    txn.put(relations, relationKey(src, OUT, TYPE[type], dst), empty);
    txn.put(relations, relationKey(dst, IN, TYPE[type], src), empty);
  }

  /**
   * The objects related to `src` in direction `dir` (optionally of one type): the index scanned over the prefix and
   * each destination read, in one native traversal (txn.follow; by hand it is a keys() loop with one get() per key).
   */
  function follow(
    txn: ReadTxn,
    table: Table<"binary", "string">,
    src: Uint8Array,
    dir: number,
    type?: RelType,
  ): { name: string }[] {
    const prefix = relationKey(src, dir, type === undefined ? undefined : TYPE[type]);
    const found: { name: string }[] = [];
    // the dst ID is the last 16 bytes of each index key
    for (const { value } of txn.follow(relations, prefix, table, { at: 19, length: 16 })) {
      if (value !== undefined) found.push(JSON.parse(value));
    }
    return found;
  }

  // People and papers.
  const ids: Record<string, Uint8Array> = {};
  const names = ["Ada", "Alan", "Grace", "Edsger", "paper: On Computable Numbers", "paper: Go To Considered Harmful"];
  env.write((txn) => {
    for (const name of names) {
      ids[name] = newId();
      txn.put(objects, ids[name], JSON.stringify({ name }));
    }
    relate(txn, ids.Ada, "follows", ids.Alan);
    relate(txn, ids.Ada, "follows", ids.Grace);
    relate(txn, ids.Grace, "follows", ids.Alan);
    relate(txn, ids.Edsger, "follows", ids.Alan);
    relate(txn, ids.Alan, "wrote", ids["paper: On Computable Numbers"]);
    relate(txn, ids.Edsger, "wrote", ids["paper: Go To Considered Harmful"]);
    relate(txn, ids["paper: Go To Considered Harmful"], "cites", ids["paper: On Computable Numbers"]);
  });

  const sorted = (list: { name: string }[]) => list.map((o) => o.name).sort();
  const t0 = Bun.nanoseconds(); // Bun's nanosecond clock
  env.read((txn) => {
    const adaFollows = sorted(follow(txn, objects, ids.Ada, OUT, "follows"));
    const alanFollowers = sorted(follow(txn, objects, ids.Alan, IN, "follows"));
    const alanAll = sorted(follow(txn, objects, ids.Alan, OUT));
    const cites = sorted(follow(txn, objects, ids["paper: On Computable Numbers"], IN));
    console.log(`Ada follows: ${adaFollows.join(", ")}`);
    console.log(`Alan is followed by: ${alanFollowers.join(", ")}`);
    console.log(`Alan (outgoing, any type): ${alanAll.join(", ")}`);
    console.log(`On Computable Numbers, incoming: ${cites.join(", ")}`);
    assert.deepEqual(adaFollows, ["Alan", "Grace"]);
    assert.deepEqual(alanFollowers, ["Ada", "Edsger", "Grace"]);
    assert.deepEqual(alanAll, ["paper: On Computable Numbers"]);
    assert.deepEqual(cites, ["Alan", "paper: Go To Considered Harmful"]);

    // Counting needs no get() at all: the index alone answers it.
    const followers = txn.count(relations, { prefix: relationKey(ids.Alan, IN, TYPE.follows) });
    console.log(`Alan has ${followers} followers`);
    assert.equal(followers, 3);
  });
  console.log(`queries took ${((Bun.nanoseconds() - t0) / 1e6).toFixed(2)} ms`);

  // Deleting a relation removes both of its keys.
  env.write((txn) => {
    txn.del(relations, relationKey(ids.Ada, OUT, TYPE.follows, ids.Grace));
    txn.del(relations, relationKey(ids.Grace, IN, TYPE.follows, ids.Ada));
  });
  const after = env.read((txn) => sorted(follow(txn, objects, ids.Ada, OUT, "follows")));
  assert.deepEqual(after, ["Alan"]);
  console.log(`after unfollowing Grace, Ada follows: ${after.join(", ")}`);
  console.log("relations ok");
}
