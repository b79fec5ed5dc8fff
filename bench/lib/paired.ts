/**
 * Paired rounds: the ratios' measurement on a shared, noisy machine.
 *
 * mitata times each benchmark in one stretch, so load from other processes
 * that comes and goes between stretches lands on one implementation and not
 * the other. Here every round runs one iteration of each implementation back
 * to back (in a rotating order), and the ratio is the median over rounds of
 * the per-round ratios: a burst of load skews a round, not the result.
 *
 * @module
 */
import type { Impl } from "./report.ts";

/** The per-round measurement of one workload. */
export interface Paired {
  dataset: string;
  workload: string;
  rounds: number;
  /** Median ms per iteration of each implementation. */
  medianMs: Partial<Record<Impl | string, number>>;
  /** Median over rounds of turbomdbx's time over each baseline's (when one of them is "turbomdbx"). */
  ratio: Partial<Record<Impl | string, number>>;
  /** Every round's time of each implementation (ms), in round order; not in the JSON documents. */
  times?: Record<string, number[]>;
}

/** Median over the rounds of `p` of a's time over b's (both must have run in every round). */
export function pairRatio(p: Paired, a: string, b: string): number {
  const ta = p.times?.[a], tb = p.times?.[b];
  if (!ta || !tb) return NaN;
  return median(ta.map((t, i) => t / tb[i]));
}

export interface PairedOptions {
  /** At least this many rounds (default 9). */
  minRounds?: number;
  /** Keep adding rounds until this much time has passed (default 2000 ms)... */
  budgetMs?: number;
  /** ...but no more than this many (default 101). */
  maxRounds?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `fns` (turbomdbx plus baselines, each one iteration of the same work) in paired rounds. */
export function runPaired(
  dataset: string,
  workload: string,
  fns: Map<Impl | string, () => unknown>,
  options: PairedOptions = {},
): Paired {
  const minRounds = options.minRounds ?? 9, budget = options.budgetMs ?? 2000, maxRounds = options.maxRounds ?? 101;
  const impls = [...fns.keys()];
  const times = new Map<Impl | string, number[]>(impls.map((i) => [i, []]));
  const t0 = performance.now();
  let sink = 0;
  for (let r = 0; r < maxRounds && (r < minRounds || performance.now() - t0 < budget); r++) {
    for (let k = 0; k < impls.length; k++) {
      const impl = impls[(r + k) % impls.length];
      const f = fns.get(impl)!;
      const s = performance.now();
      const v = f();
      times.get(impl)!.push(performance.now() - s);
      if (typeof v === "number") sink += v;
    }
  }
  const tm = times.get("turbomdbx");
  const out: Paired = { dataset, workload, rounds: times.get(impls[0])!.length, medianMs: {}, ratio: {} };
  for (const impl of impls) {
    const ts = times.get(impl)!;
    out.medianMs[impl] = median(ts);
    if (tm && impl !== "turbomdbx") out.ratio[impl] = median(tm.map((t, i) => t / ts[i]));
  }
  if (sink === -1) console.error(sink); // keeps the results observable
  Object.defineProperty(out, "times", { value: Object.fromEntries(times), enumerable: false });
  return out;
}
