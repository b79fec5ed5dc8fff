/**
 * Runs one test suite unchanged under `deno test` and `bun test`.
 *
 * Test files import `test` from here and assert with `node:assert/strict`,
 * which both runtimes ship.
 *
 * @module
 */
export { runtime } from "../src/ffi/mod.ts";

type TestFn = () => void | Promise<void>;
interface Options {
  /** Milliseconds before the runner gives up on the test (default 60 000). */
  timeout?: number;
  /** Skip the test (with a reason in the name). */
  ignore?: boolean;
}

interface DenoTest {
  test(def: { name: string; fn: TestFn; ignore?: boolean; sanitizeResources: boolean; sanitizeOps: boolean }): void;
}
type BunTest = ((name: string, fn: TestFn, timeout?: number) => void) & { skip(name: string, fn: TestFn): void };

const deno = (globalThis as { Deno?: DenoTest }).Deno;
// A non-literal specifier keeps Deno's checker from resolving bun:test.
const bunSpec = "bun:test";
const bunTest: BunTest | undefined = deno ? undefined : ((await import(bunSpec)) as { test: BunTest }).test;

/** Declares one test: the name states the behaviour it checks. */
export function test(name: string, fn: TestFn, options: Options = {}): void {
  if (deno) {
    // Resource sanitizers would flag the library handle that stays open for the
    // whole process; the tests check native resources themselves.
    deno.test({ name, fn, ignore: options.ignore, sanitizeResources: false, sanitizeOps: false });
  } else if (options.ignore) {
    bunTest!.skip(name, fn);
  } else {
    bunTest!(name, fn, options.timeout ?? 60_000);
  }
}
