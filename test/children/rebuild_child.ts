/**
 * Child process for test/rebuild.test.ts.
 *
 *   rebuild_child.ts writer <db> <stopfile>
 *     commits numbered transactions (table "child": key n -> value of n, meta
 *     "last" = n), printing each n after its commit returned, until <stopfile>
 *     exists; then prints "done <n>". Follows a live rebuild by itself.
 *   rebuild_child.ts rebuild <db> [maxSize]
 *     runs env.rebuild() and prints "ok <json>" or "error <codeName>".
 *   rebuild_child.ts rebuilder <db>
 *     commits numbered transactions as `writer` does while rebuilding the
 *     database over and over, until killed.
 */
import * as fs from "node:fs";
import process from "node:process";
import { MdbxError, open } from "../../mod.ts";
import { childValue } from "./rebuild_data.ts";

const [mode, db, arg] = process.argv.slice(2);
const env = open(db, { sync: "lazy" });
// the writing modes' tables ("rebuild" writes nothing: it may run under a file-size limit)
const child = mode === "rebuild" ? null! : env.table("child", { keys: "uint32", values: "string" });
const meta = mode === "rebuild" ? null! : env.table("meta", { keys: "string", values: "uint32" });

function commit(n: number): void {
  env.write((txn) => {
    txn.put(child, n, childValue(n));
    txn.put(meta, "child", n);
  });
  fs.writeSync(1, `${n}\n`);
}

const last = mode === "rebuild" ? 0 : env.read((txn) => txn.get(meta, "child")) ?? 0;
if (mode === "writer") {
  fs.writeSync(1, `ready ${last}\n`);
  let n = last + 1;
  for (;; n++) {
    commit(n);
    if (n % 16 === 0) {
      if (fs.existsSync(arg)) break;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  fs.writeSync(1, `done ${n}\n`);
  env.close();
} else if (mode === "rebuild") {
  try {
    const r = await env.rebuild({ maxSize: arg === undefined ? undefined : Number(arg) });
    fs.writeSync(1, `ok ${JSON.stringify(r)}\n`);
  } catch (e) {
    fs.writeSync(1, `error ${e instanceof MdbxError ? e.codeName : String(e)}\n`);
  }
  env.close();
} else if (mode === "rebuilder") {
  fs.writeSync(1, `ready ${last}\n`);
  // commits and rebuilds interleave until the parent kills this process
  void (async () => {
    for (let n = last + 1;; n++) {
      commit(n);
      if (n % 4 === 0) await new Promise((r) => setTimeout(r, 0));
    }
  })();
  for (;;) await env.rebuild({ progressIntervalMs: 5 });
} else {
  throw new Error(`unknown mode ${mode}`);
}
