/**
 * Child process for test/kv.test.ts: every read that returns bytes returns an
 * ordinary Uint8Array of its own. It transfers each kind of result away
 * (structuredClone with transfer, as postMessage does) and checks that the
 * other results are untouched and that reading goes on. A result that shared
 * its buffer with others (a pooled slab) fails here, or crashes the process.
 *
 *   transfer_results.ts <db>     prints one JSON line: {"ok":true,"checked":N} or {"ok":false,"error":"..."}
 */
import process from "node:process";
import { open } from "../../mod.ts";

const [db] = process.argv.slice(2);
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
let checked = 0;
function check(what: string, v: Uint8Array | undefined, want: Uint8Array): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new Error(`${what}: not a Uint8Array`);
  if (v.buffer.byteLength !== v.length || v.byteOffset !== 0) {
    throw new Error(
      `${what}: its buffer holds ${v.buffer.byteLength} bytes at offset ${v.byteOffset}, not ${v.length}`,
    );
  }
  if (v.length !== want.length || v.some((b, i) => b !== want[i])) throw new Error(`${what}: wrong bytes`);
  checked++;
  return v;
}
/** Transfers v's buffer away, as postMessage(v, [v.buffer]) does. */
function give(v: Uint8Array): void {
  structuredClone(v, { transfer: [v.buffer as ArrayBuffer] });
}
try {
  const env = open(db, { sync: "lazy" });
  for (const cache of [false, true]) {
    const t = env.table(cache ? "cached" : "plain", { cache });
    const value = (i: number) => new Uint8Array(20 + (i % 50)).fill(i);
    const key = (i: number) => new TextEncoder().encode(`key-${String(i).padStart(4, "0")}`);
    env.write((w) => {
      for (let i = 0; i < 200; i++) w.put(t, key(i), value(i));
    });
    env.read((r) => {
      for (let round = 0; round < 2; round++) { // with a cache: a fill, then hits
        const kept = [1, 2, 3].map((i) => check(`get ${i}`, r.get(t, key(i)), value(i)));
        const moved = check("get 4", r.get(t, key(4)), value(4));
        give(moved);
        if (moved.length !== 0) throw new Error("the transferred result was not detached");
        kept.forEach((v, j) => check(`get ${j + 1} after a transfer`, v, value(j + 1)));
        for (let i = 0; i < 200; i++) check(`get ${i} after a transfer`, r.get(t, key(i)), value(i));
        const many = r.getMany(t, [key(5), key(6), key(7)]) as Uint8Array[];
        give(many[0]);
        check("getMany 6 after its neighbour moved", many[1], value(6));
        check("getMany 7 after its neighbour moved", many[2], value(7));
        const keys = [...r.keys(t, { prefix: "key-00" })];
        give(keys[0] as Uint8Array);
        check("a key of keys() after its neighbour moved", keys[1] as Uint8Array, key(1));
        const entries = [...r.range(t, { limit: 3 })];
        give(entries[0].value);
        check("a value of range() after its neighbour moved", entries[1].value, value(1));
        check("a key of range()", entries[2].key, key(2));
      }
    });
  }
  env.close();
  say({ ok: true, checked });
} catch (e) {
  say({ ok: false, error: String((e as Error).stack ?? e) });
}
