/**
 * Multi-process MVCC: another process (the same runtime, running a script from
 * test/children/) writes while this one reads. Snapshots must stay exact across
 * the other process's commits, newer snapshots must see them, and exclusive
 * opens must keep other processes out with a clear error.
 */
import { test } from "./shim.ts";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { deleteDatabase, type Env, MdbxError, open, type ReadTxn } from "../mod.ts";
import { removeDir, runtimeCommand, tempDir } from "./helpers.ts";
import { checkGeneration, tables, writeGeneration } from "./children/mvcc_data.ts";

const child = (name: string) => fileURLToPath(new URL(`./children/${name}`, import.meta.url));

/** A child process running `script` in this runtime, with its stdout read line by line. */
class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #ended = false;
  #stderr = "";

  constructor(script: string, args: string[]) {
    const { cmd, args: argv } = runtimeCommand(child(script), args);
    this.proc = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"] });
    let buf = "";
    this.proc.stdout!.setEncoding("utf8");
    this.proc.stdout!.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        this.#push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => this.#stderr += chunk);
    this.exited = new Promise((resolve) => {
      this.proc.on("close", (code) => {
        this.#ended = true;
        if (this.#waiting) this.#waiting(null);
        resolve(code);
      });
    });
  }

  #push(line: string): void {
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = null;
      w(line);
    } else this.#lines.push(line);
  }

  /** The next line of output; fails if the child ends first or is silent for `ms`. */
  async line(ms = 20_000): Promise<string> {
    const got = this.#lines.shift() ??
      (this.#ended ? null : await new Promise<string | null>((resolve) => {
        const timer = setTimeout(() => {
          this.#waiting = null;
          resolve(null);
        }, ms);
        this.#waiting = (l) => {
          clearTimeout(timer);
          resolve(l);
        };
      }));
    if (got === null) throw new Error(`child ${this.proc.pid} gave no more output; its stderr:\n${this.#stderr}`);
    return got;
  }

  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  get stderr(): string {
    return this.#stderr;
  }
}

const KEYS = 200;

function withDb(fn: (db: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = tempDir("turbomdbx-mp-");
    try {
      await fn(path.join(dir, "db"));
    } finally {
      removeDir(dir);
    }
  };
}

test(
  "a read snapshot keeps exactly its generation while another process commits; newer snapshots see each commit",
  withDb(async (db) => {
    const env = open(db);
    tables(env, true); // this process reads through a get() cache; the other one writes
    const snapshots: { txn: ReadTxn; g: number }[] = [];
    const c = new Child("mvcc_writer.ts", [db, String(KEYS), "step"]);
    try {
      writeGeneration(env, KEYS, 0);
      snapshots.push({ txn: env.beginRead(), g: 0 });
      assert.equal(await c.line(), "ready");
      for (let g = 1; g <= 8; g++) {
        c.send(`commit ${g}`);
        assert.equal(await c.line(), `committed ${g}`);
        // A snapshot begun after the other process's commit sees it exactly.
        const txn = env.beginRead();
        assert.equal(checkGeneration(env, txn, KEYS), g);
        snapshots.push({ txn, g });
        // Every older snapshot still sees only its own generation.
        for (const s of snapshots) {
          assert.equal(checkGeneration(env, s.txn, KEYS), s.g, `snapshot of generation ${s.g}`);
        }
        // And this process's writes interleave with the other's: the next generation is written here.
        if (g === 4) {
          writeGeneration(env, KEYS, 5);
          g = 5;
          const own = env.beginRead();
          assert.equal(checkGeneration(env, own, KEYS), 5);
          snapshots.push({ txn: own, g: 5 });
        }
      }
      c.send("exit");
      assert.equal(await c.exited, 0, c.stderr);
      env.read((txn) => assert.equal(checkGeneration(env, txn, KEYS), 8));
      for (const s of snapshots) assert.equal(checkGeneration(env, s.txn, KEYS), s.g);
      const st = tables(env).gen.cacheStats()!;
      assert.ok(st.hits > 0 && st.invalidations > 0, `the get() cache was not exercised: ${JSON.stringify(st)}`);
    } finally {
      for (const s of snapshots) s.txn.end();
      c.proc.kill();
      await c.exited;
      env.close();
    }
  }),
);

test(
  "snapshots stay consistent and monotonic while another process commits continuously; its final state is visible after it exits",
  withDb(async (db) => {
    const env = open(db);
    tables(env, true);
    const COMMITS = 300;
    try {
      writeGeneration(env, KEYS, 0);
      const old = env.beginRead();
      const c = new Child("mvcc_writer.ts", [db, String(KEYS), "run", String(COMMITS)]);
      let exited = false;
      c.exited.then(() => exited = true);
      const seen = new Set<number>();
      let last = 0;
      while (!exited) {
        const txn = env.beginRead();
        try {
          const g = checkGeneration(env, txn, KEYS);
          assert.ok(g >= last, `generation went back from ${last} to ${g}`);
          last = g;
          seen.add(g);
        } finally {
          txn.end();
        }
        await new Promise((r) => setTimeout(r, 0));
      }
      assert.equal(await c.exited, 0, c.stderr);
      assert.equal(await c.line(), `done ${COMMITS}`);
      env.read((txn) => assert.equal(checkGeneration(env, txn, KEYS), COMMITS));
      assert.equal(checkGeneration(env, old, KEYS), 0, "the snapshot from before the child started");
      old.end();
      // 0 and the last one at least; usually over a hundred in between
      assert.ok(seen.size >= 3, `saw only generations ${[...seen]} while the other process committed ${COMMITS}`);
    } finally {
      env.close();
    }
  }),
);

/** Runs open_probe.ts with `options`; returns its one-line JSON report. */
async function probe(db: string, options: object): Promise<Record<string, unknown>> {
  const c = new Child("open_probe.ts", [db, JSON.stringify(options), "probe"]);
  const report = JSON.parse(await c.line());
  assert.equal(await c.exited, 0, c.stderr);
  return report;
}

function assertExclusiveError(report: Record<string, unknown>): void {
  assert.equal(report.ok, false, `the open should have failed: ${JSON.stringify(report)}`);
  assert.equal(report.name, "MdbxError", JSON.stringify(report));
  assert.equal(typeof report.code, "number");
  assert.match(String(report.message), /^MDBX_\w+: /, JSON.stringify(report));
  assert.match(String(report.message), /exclusive|in use|busy|locked/i, `not a clear message: ${report.message}`);
}

test(
  "another process can open, read and write the database while this process has it open",
  withDb(async (db) => {
    const env: Env = open(db);
    try {
      const t = env.table("probe", { keys: "string", values: "string" });
      env.write((txn) => txn.put(t, "parent", "from the parent"));
      const report = await probe(db, {});
      assert.deepEqual(report, { ok: true, parent: "from the parent" });
      assert.match(env.read((txn) => txn.get(t, "child")) ?? "", /^hello from \d+$/);
      // Read-only in the other process works too.
      assert.deepEqual(await probe(db, { readOnly: true }), { ok: true, parent: "from the parent" });
    } finally {
      env.close();
    }
  }),
);

test(
  "an exclusive open in this process makes another process's open fail with a clear MdbxError",
  withDb(async (db) => {
    const env = open(db, { exclusive: true });
    try {
      const t = env.table("probe", { keys: "string", values: "string" });
      env.write((txn) => txn.put(t, "parent", "exclusive"));
      assertExclusiveError(await probe(db, {}));
      assertExclusiveError(await probe(db, { readOnly: true }));
    } finally {
      env.close();
    }
    // Once closed, others get in.
    assert.deepEqual(await probe(db, {}), { ok: true, parent: "exclusive" });
  }),
);

test(
  "an exclusive open in another process makes this process's open fail with a clear MdbxError",
  withDb(async (db) => {
    const c = new Child("open_probe.ts", [db, JSON.stringify({ exclusive: true }), "hold"]);
    try {
      assert.deepEqual(JSON.parse(await c.line()), { ok: true, parent: null });
      let error: unknown;
      try {
        open(db).close();
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof MdbxError, `expected an MdbxError, got ${error}`);
      assertExclusiveError({ ok: false, name: error.name, code: error.code, message: error.message });
      // Shared opens were refused too: this process can try again once the other one is gone.
      c.send("exit");
      assert.equal(await c.exited, 0, c.stderr);
      const env = open(db);
      try {
        const t = env.table("probe", { keys: "string", values: "string" });
        assert.match(env.read((txn) => txn.get(t, "child")) ?? "", /^hello from \d+$/);
      } finally {
        env.close();
      }
    } finally {
      c.proc.kill();
      await c.exited;
    }
  }),
);

test(
  "deleteDatabase of a database another process has open says so and how to wait, not to retry",
  withDb(async (db) => {
    open(db).close();
    const c = new Child("open_probe.ts", [db, "{}", "hold"]);
    try {
      assert.deepEqual(JSON.parse(await c.line()), { ok: true, parent: null });
      let error: unknown;
      try {
        deleteDatabase(db);
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof MdbxError, `expected an MdbxError, got ${error}`);
      assert.match(error.message, /deleting .*: another process has the database open; close it there/);
      assert.match(error.message, /mode: "waitForUnused" to wait/);
      assert.doesNotMatch(error.message, /retry/);
      c.send("exit");
      assert.equal(await c.exited, 0, c.stderr);
      assert.equal(deleteDatabase(db), true);
    } finally {
      c.proc.kill();
      await c.exited;
    }
  }),
);

test(
  "an exclusive open is refused with a clear MdbxError while another process has the database open",
  withDb(async (db) => {
    const c = new Child("open_probe.ts", [db, "{}", "hold"]);
    try {
      assert.deepEqual(JSON.parse(await c.line()), { ok: true, parent: null });
      let error: unknown;
      try {
        open(db, { exclusive: true }).close();
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof MdbxError, `expected an MdbxError, got ${error}`);
      assertExclusiveError({ ok: false, name: error.name, code: error.code, message: error.message });
      c.send("exit");
      assert.equal(await c.exited, 0, c.stderr);
      open(db, { exclusive: true }).close();
    } finally {
      c.proc.kill();
      await c.exited;
    }
  }),
);
