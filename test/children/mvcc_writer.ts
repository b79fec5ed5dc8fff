/**
 * Child process for test/multiprocess.test.ts: commits generations to a
 * database that the parent process reads concurrently.
 *
 *   mvcc_writer.ts <db> <keys> step        commit generation i on each stdin line "commit <i>",
 *                                          answer "committed <i>"; "exit" closes and exits
 *   mvcc_writer.ts <db> <keys> run <n>     commit generations 1..n as fast as possible, then exit
 *
 * Generation g: table "gen" holds counter=g and keys k000.. each tagged "g:<g>:";
 * table "log" (uint32 keys) holds 1..g. See writeGeneration / checkGeneration.
 */
import process from "node:process";
import { open } from "../../mod.ts";
import { writeGeneration } from "./mvcc_data.ts";

const [db, keysArg, mode, countArg] = process.argv.slice(2);
const keys = Number(keysArg);
const env = open(db);
const say = (line: string) => process.stdout.write(`${line}\n`);

if (mode === "run") {
  const n = Number(countArg);
  for (let g = 1; g <= n; g++) writeGeneration(env, keys, g);
  say(`done ${n}`);
  env.close();
} else {
  say("ready");
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line === "exit") {
        env.close();
        process.exit(0);
      }
      const g = Number(line.replace(/^commit /, ""));
      writeGeneration(env, keys, g);
      say(`committed ${g}`);
    }
  });
}
