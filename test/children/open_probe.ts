/**
 * Child process for test/multiprocess.test.ts: opens a database with the
 * options given as JSON and reports the outcome as one JSON line.
 *
 *   open_probe.ts <db> <options-json> probe   open, read "probe"/"parent", write "probe"/"child", close
 *   open_probe.ts <db> <options-json> hold    open, report, keep it open until stdin says "exit"
 *
 * Report: {"ok":true,"parent":<value or null>} or {"ok":false,"name","code","codeName","message"}.
 */
import process from "node:process";
import { type Env, MdbxError, open } from "../../mod.ts";

const [db, optionsJson, mode] = process.argv.slice(2);
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

let env: Env;
try {
  env = open(db, JSON.parse(optionsJson));
} catch (e) {
  const err = e as Error;
  say({
    ok: false,
    name: err.name,
    code: e instanceof MdbxError ? e.code : null,
    codeName: e instanceof MdbxError ? e.codeName : null,
    message: err.message,
  });
  process.exit(0);
}

const t = env.table("probe", { keys: "string", values: "string" });
const parent = env.read((txn) => txn.get(t, "parent")) ?? null;
if (!env.readOnly) env.write((txn) => txn.put(t, "child", `hello from ${process.pid}`));
say({ ok: true, parent });
if (mode === "hold") {
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    if (chunk.includes("exit")) {
      env.close();
      process.exit(0);
    }
  });
} else {
  env.close();
}
