/**
 * Child process for test/check.test.ts: checks a database that may be
 * damaged, and (with `scan`) reads it, in a process of its own so that a
 * crash shows as a signal instead of taking the test runner down.
 *
 *   check_child.ts database <db> [noSubdir]           checkDatabase(db)
 *   check_child.ts env <db> [noSubdir] [readOnly]     open(db) with the defaults (no validation), then env.check()
 *   check_child.ts scan <db> [noSubdir]               open(db, { readOnly, validation }), read every table, get
 *                                                     keys, then env.check() (the fuzz test)
 *
 * Prints one JSON line: {"result": CheckResult} or {"error": {"name","codeName","message"}}, and for `scan`
 * also {"read": entries read, "readErrors": [codeName...]}.
 */
import process from "node:process";
import { checkDatabase, type CheckResult, type Env, MdbxError, open } from "../../mod.ts";

const [mode, db, ...flags] = process.argv.slice(2);
const noSubdir = flags.includes("noSubdir"), readOnly = flags.includes("readOnly");
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
const errorOf = (e: unknown) => ({
  name: (e as Error).name,
  codeName: e instanceof MdbxError ? e.codeName : null,
  message: (e as Error).message,
});

try {
  if (mode === "database") {
    say({ result: checkDatabase(db, { noSubdir }) });
  } else if (mode === "env") {
    let result: CheckResult;
    {
      using env = open(db, { noSubdir, readOnly, sync: "lazy" });
      result = env.check();
    }
    say({ result });
  } else if (mode === "scan") {
    let read = 0;
    const readErrors: string[] = [];
    let env: Env;
    try {
      env = open(db, { noSubdir, readOnly: true, validation: true });
    } catch (e) {
      say({ error: errorOf(e), read, readErrors });
      process.exit(0);
    }
    // libmdbx fails a transaction that met a damaged page: one transaction per attempt
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        if (!(e instanceof MdbxError)) throw e;
        readErrors.push(e.codeName);
      }
    };
    let names: string[] = [];
    attempt(() => names = env.tables().map((t) => t.name));
    for (const name of names) {
      attempt(() => {
        const t = env.table(name, { accede: true, create: false });
        env.read((txn) => {
          for (const _ of txn.range(t)) read++;
        });
        env.read((txn) => {
          for (const _ of txn.range(t, { reverse: true })) read++;
        });
        for (let i = 0; i < 2000; i += 37) {
          attempt(() => env.read((txn) => txn.get(t, new Uint8Array(new Uint32Array([i]).buffer))));
        }
      });
    }
    const result = env.check();
    env.close();
    say({ result, read, readErrors });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (e) {
  say({ error: errorOf(e) });
}
