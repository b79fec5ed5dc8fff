/**
 * The examples and the demo run as programs and print what they promise.
 * Each example runs under its own runtime (Deno examples in `deno test`, Bun
 * examples in `bun test`); the demo runs under whichever runtime runs this file.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { runtime, test } from "./shim.ts";
import { runtimeCommand } from "./helpers.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function runScript(script: string, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const { cmd, args: argv } = runtimeCommand(path.join(root, script), args);
  const r = spawnSync(cmd, argv, { cwd: root, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function assertOk(r: { status: number | null; stdout: string; stderr: string }, last: string): string[] {
  assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(lines.at(-1), last, r.stdout);
  return lines;
}

for (const rt of ["deno", "bun"] as const) {
  const skip = rt !== runtime;
  const label = skip ? ` (skipped: runs under ${rt})` : "";

  test(`examples/${rt}/walkthrough.ts runs every step, checks it, and removes its temp folder${label}`, () => {
    const lines = assertOk(runScript(`examples/${rt}/walkthrough.ts`), "walkthrough ok");
    assert.ok(lines.includes("noOverwrite -> MDBX_KEYEXIST"));
    assert.ok(lines.includes("nested: ada,alan,barbara,edsger,grace"));
    assert.ok(lines.includes("unsafeGetView: 1000 bytes, detached after end (length 0)"));
    assert.ok(lines.includes("dups of ada: engines,math,poetry; count(tags) = 4"));
    const opened = /^opened (\S+)/.exec(lines[0]);
    assert.ok(opened, lines[0]);
    assert.equal(fs.existsSync(path.dirname(opened[1])), false, "the temp folder is left behind");
  }, { ignore: skip });

  test(`examples/${rt}/objects_and_relations.ts follows relations both ways${label}`, () => {
    const lines = assertOk(runScript(`examples/${rt}/objects_and_relations.ts`), "relations ok");
    assert.ok(lines.includes("Ada follows: Alan, Grace"));
    assert.ok(lines.includes("Alan is followed by: Ada, Edsger, Grace"));
    assert.ok(lines.includes("Alan has 3 followers"));
    assert.ok(lines.includes("after unfollowing Grace, Ada follows: Alan"));
  }, { ignore: skip });
}

test(`examples/demo.ts --records 2000 builds, checks and measures the relation workload on ${runtime}`, () => {
  const lines = assertOk(
    runScript("examples/demo.ts", ["--records", "2000", "--seconds", "0.1"]),
    "ok: 2,000 objects, 40,000 relations, every relation leads to its object",
  );
  assert.match(lines[0], new RegExp(`^turbomdbx demo on ${runtime} \\S+: 2,000 objects, 20 relations each$`));
  for (const op of ["put objects (1 txn)", "put relations (1 txn)", "random get", "prefix scan", "follow relations"]) {
    const row = lines.find((l) => l.startsWith(op));
    assert.ok(row, `no row for ${op}`);
    // ops, ops/s and a median with a unit
    assert.match(row, /\s[\d,]+\s+[\d,]+\s+[\d.]+ (ns|µs|ms)/, row);
  }
  assert.ok(lines.find((l) => l.startsWith("put objects"))!.includes(" 2,000 "));
  assert.ok(lines.find((l) => l.startsWith("put relations"))!.includes(" 40,000 "));
});

test("examples/demo.ts refuses an unknown argument with exit code 2 and a hint", () => {
  const r = runScript("examples/demo.ts", ["--frobnicate", "1"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown argument --frobnicate; try --help/);
});
