/** Data shared by test/rebuild.test.ts and its child process. */

/** The value the child writer stores under key n of table "child". */
export function childValue(n: number): string {
  return `child commit ${n} `.repeat(1 + (n % 7));
}
