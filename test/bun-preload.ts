/**
 * Bun only (bunfig.toml `[test] preload`): a generous default timeout for every
 * test. Bun's own default is 5 s and bunfig.toml has no setting for it; tests
 * declared through `./shim.ts` pass their own (60 s unless they say otherwise).
 * Deno never loads this file.
 *
 * @module
 */
// A non-literal specifier keeps Deno's checker from resolving bun:test.
const spec = "bun:test";
const { setDefaultTimeout } = (await import(spec)) as { setDefaultTimeout(ms: number): void };
setDefaultTimeout(120_000);
