/**
 * Objects and the relations between them, the pattern turbomdbx is built for
 * (Deno version), with object values and tuple keys.
 *
 *   deno run -A examples/deno/objects_and_relations.ts
 *
 * - "objects": `[id]` -> the object (msgpack, typed `Thing`), read through the
 *   get() cache.
 * - "relations": an index whose keys are tuples and whose values are null:
 *
 *       [src, dir, type, dst]      e.g. [adaId, OUT, "follows", alanId]
 *
 *   Tuple keys sort element by element (docs/encodings.md), so all relations
 *   of one object sit next to each other, grouped by direction, then by type:
 *   following them is one prefix scan over `[src, dir]` (or `[src, dir,
 *   type]`) and one get() per `dst`. Every relation is written twice, once
 *   from each end (OUT at the source, IN at the destination), so it can be
 *   followed both ways.
 *
 * @module
 */
import assert from "node:assert/strict";
import { msgpack, open, packTuple, type ReadTxn, type WriteTxn } from "../../mod.ts";

const OUT = "out", IN = "in";
type RelType = "follows" | "wrote" | "cites";
interface Thing {
  name: string;
}

const tmp = Deno.makeTempDirSync({ prefix: "turbomdbx-relations-" });
try {
  main(`${tmp}/db`);
} finally {
  Deno.removeSync(tmp, { recursive: true });
}

/** Builds a small graph, follows it both ways, and checks every answer. */
function main(dbPath: string): void {
  using env = open(dbPath);
  // ids are UUID strings; the get() cache answers reads of objects by id, exact at every snapshot
  const objects = env.table("objects", { keys: "tuple", values: msgpack<Thing>(), cache: true });
  const relations = env.table("relations", { keys: "tuple", values: "msgpack" });

  /** Stores a relation from both ends; values are null, the key is the data. */
  function relate(txn: WriteTxn, src: string, type: RelType, dst: string): void {
    txn.put(relations, [src, OUT, type, dst], null);
    txn.put(relations, [dst, IN, type, src], null);
  }

  /**
   * The objects related to `src` in direction `dir`, of one type: the index scanned over the prefix
   * `[src, dir, type]` and each destination read, in one native traversal (txn.follow). The destination
   * id is the key's last element, and the objects table's key `[dst]` is exactly those bytes: they start
   * where the prefix's encoding ends and are as long as one packed UUID string.
   */
  function follow(txn: ReadTxn, src: string, dir: string, type: RelType): Thing[] {
    const prefix = [src, dir, type];
    const found: Thing[] = [];
    const at = packTuple(prefix).length, length = packTuple([src]).length;
    for (const { value } of txn.follow(relations, prefix, objects, { at, length })) {
      if (value !== undefined) found.push(value);
    }
    return found;
  }

  /** Of any type: the keys under `[src, dir]`, then the objects of their last elements in one getMany(). */
  function followAll(txn: ReadTxn, src: string, dir: string): Thing[] {
    const dsts = [...txn.keys(relations, { prefix: [src, dir] })].map((key) => [key[3]] as [string]);
    return txn.getMany(objects, dsts).filter((o): o is Thing => o !== undefined);
  }

  // People and papers.
  const ids: Record<string, string> = {};
  const names = ["Ada", "Alan", "Grace", "Edsger", "paper: On Computable Numbers", "paper: Go To Considered Harmful"];
  env.write((txn) => {
    for (const name of names) {
      ids[name] = crypto.randomUUID();
      txn.put(objects, [ids[name]], { name });
    }
    relate(txn, ids.Ada, "follows", ids.Alan);
    relate(txn, ids.Ada, "follows", ids.Grace);
    relate(txn, ids.Grace, "follows", ids.Alan);
    relate(txn, ids.Edsger, "follows", ids.Alan);
    relate(txn, ids.Alan, "wrote", ids["paper: On Computable Numbers"]);
    relate(txn, ids.Edsger, "wrote", ids["paper: Go To Considered Harmful"]);
    relate(txn, ids["paper: Go To Considered Harmful"], "cites", ids["paper: On Computable Numbers"]);
  });

  const sorted = (list: Thing[]) => list.map((o) => o.name).sort();
  const t0 = performance.now(); // Deno's high-resolution clock
  env.read((txn) => {
    const adaFollows = sorted(follow(txn, ids.Ada, OUT, "follows"));
    const alanFollowers = sorted(follow(txn, ids.Alan, IN, "follows"));
    const alanAll = sorted(followAll(txn, ids.Alan, OUT));
    const cites = sorted(followAll(txn, ids["paper: On Computable Numbers"], IN));
    console.log(`Ada follows: ${adaFollows.join(", ")}`);
    console.log(`Alan is followed by: ${alanFollowers.join(", ")}`);
    console.log(`Alan (outgoing, any type): ${alanAll.join(", ")}`);
    console.log(`On Computable Numbers, incoming: ${cites.join(", ")}`);
    assert.deepEqual(adaFollows, ["Alan", "Grace"]);
    assert.deepEqual(alanFollowers, ["Ada", "Edsger", "Grace"]);
    assert.deepEqual(alanAll, ["paper: On Computable Numbers"]);
    assert.deepEqual(cites, ["Alan", "paper: Go To Considered Harmful"]);

    // Counting needs no get() at all: the index alone answers it.
    const followers = txn.count(relations, { prefix: [ids.Alan, IN, "follows"] });
    console.log(`Alan has ${followers} followers`);
    assert.equal(followers, 3);
  });
  console.log(`queries took ${(performance.now() - t0).toFixed(2)} ms`);

  // Deleting a relation removes both of its keys.
  env.write((txn) => {
    txn.del(relations, [ids.Ada, OUT, "follows", ids.Grace]);
    txn.del(relations, [ids.Grace, IN, "follows", ids.Ada]);
  });
  const after = env.read((txn) => sorted(follow(txn, ids.Ada, OUT, "follows")));
  assert.deepEqual(after, ["Alan"]);
  console.log(`after unfollowing Grace, Ada follows: ${after.join(", ")}`);

  // Removing an object and every relation it has: one range delete per direction of its own index entries.
  env.write((txn) => {
    const edsger = ids.Edsger;
    for (const key of txn.keys(relations, { prefix: [edsger] })) {
      txn.del(relations, [key[3], key[1] === OUT ? IN : OUT, key[2], edsger]);
    }
    const n = txn.delRange(relations, { prefix: [edsger] });
    txn.del(objects, [edsger]);
    console.log(`removed Edsger and ${n} relation keys of his (and their mirrors)`);
  });
  env.read((txn) => assert.deepEqual(sorted(follow(txn, ids.Alan, IN, "follows")), ["Ada", "Grace"]));
  console.log("relations ok");
}
