/**
 * The data written by test/children/crash_writer.ts and checked by
 * test/crash.test.ts. Commit n writes KEYS keys for n (one with a value on
 * large pages every few commits), deletes the keys of commit n - WINDOW, and
 * sets "last" = n, so the whole content follows from "last" alone.
 */

/** Keys written per commit. */
export const KEYS = 8;
/** Commits kept: commit n deletes commit n - WINDOW. */
export const WINDOW = 25;

/** Key j of commit n (zero-padded: key order is commit order). */
export function keyOf(n: number, j: number): string {
  return `c${String(n).padStart(9, "0")}:${j}`;
}

/** Value of key j of commit n: 20..400 bytes, or 5000..13000 (large pages) for j = 0 of every 5th commit. */
export function valueOf(n: number, j: number): Uint8Array {
  let x = (n * 7919 + j * 104729 + 1) >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const len = j === 0 && n % 5 === 0 ? 5000 + next() % 8000 : 20 + next() % 380;
  const v = new Uint8Array(len);
  for (let i = 0; i < len; i++) v[i] = next() >>> 24;
  return v;
}

/** The commits present when "last" is `last`. */
export function liveCommits(last: number): number[] {
  const out: number[] = [];
  for (let n = Math.max(1, last - WINDOW + 1); n <= last; n++) out.push(n);
  return out;
}
