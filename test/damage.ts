/**
 * Damaged databases for the tests of checks and logging: a database of
 * records, then bytes flipped on disk in the way a bad disk or a stray write
 * would: the node offsets of a leaf or a branch page the tree uses, a meta
 * page, every meta page, or the file cut short. The page layout (header
 * flags u16 @10, lower u16 @12, pgno u32 @16, txnid u64 @0; meta at @20 with
 * magic @0 and txnid_a @8) is libmdbx 0.14's, as docs and native/integrity.c
 * describe it.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { open } from "../mod.ts";

/** The records `populate()` writes: key i (uint32) → this value. */
export const recordValue = (i: number): string => `value of record ${i} `.repeat(4);

/** A database of `n` records in table "records" at `p`; returns its data file and page size. */
export function populate(p: string, n = 20_000, noSubdir = false): { file: string; pageSize: number } {
  using env = open(p, { sync: "lazy", noSubdir });
  const t = env.table("records", { keys: "uint32", values: "string" });
  env.write((txn) => {
    for (let i = 0; i < n; i++) txn.put(t, i, recordValue(i));
  });
  return { file: noSubdir ? p : path.join(p, "mdbx.dat"), pageSize: env.info().pageSize };
}

const P_BRANCH = 1, P_LEAF = 2;

/**
 * Pages of a kind (`"leaf"` or `"branch"`) that the newest tree uses: written
 * by the last transaction (the highest page txnid of that kind) and holding
 * more than one entry (a stale copy an older transaction left, or the main
 * table's one-record leaf, is not what the test means to damage).
 */
export function pagesOf(file: string, pageSize: number, kind: "leaf" | "branch"): number[] {
  const bytes = fs.readFileSync(file);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const flag = kind === "leaf" ? P_LEAF : P_BRANCH;
  const found: { pgno: number; txnid: bigint }[] = [];
  for (let pgno = 3; (pgno + 1) * pageSize <= bytes.length; pgno++) {
    const at = pgno * pageSize;
    if (dv.getUint16(at + 10, true) !== flag || dv.getUint32(at + 16, true) !== pgno) continue;
    if (dv.getUint16(at + 12, true) / 2 < 2) continue;
    found.push({ pgno, txnid: dv.getBigUint64(at, true) });
  }
  const newest = found.reduce((m, p) => (p.txnid > m ? p.txnid : m), 0n);
  return found.filter((p) => p.txnid === newest).map((p) => p.pgno);
}

/** XORs `length` bytes at `offset` of the file with 0xff. */
export function flip(file: string, offset: number, length: number): void {
  const fd = fs.openSync(file, "r+");
  try {
    const b = new Uint8Array(length);
    fs.readSync(fd, b, 0, length, offset);
    for (let i = 0; i < length; i++) b[i] ^= 0xff;
    fs.writeSync(fd, b, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Flips the first node offsets of page `pgno`: its nodes now point outside it or into each other. */
export function damagePage(file: string, pageSize: number, pgno: number): void {
  flip(file, pgno * pageSize + 20, 8);
}

/** The txnid each meta page records (txnid_a). */
export function metaTxnids(file: string, pageSize: number): bigint[] {
  const b = fs.readFileSync(file);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  return [0, 1, 2].map((i) => dv.getBigUint64(i * pageSize + 20 + 8, true));
}

/** Flips the magic number of meta page `i` (libmdbx: "meta[i] has invalid magic/version"). */
export function damageMeta(file: string, pageSize: number, i: number): void {
  flip(file, i * pageSize + 20, 4);
}

/** The meta page with the lowest txnid: damaging it loses no commit. */
export function oldestMeta(file: string, pageSize: number): number {
  const t = metaTxnids(file, pageSize);
  return t.indexOf(t.reduce((m, x) => (x < m ? x : m)));
}
