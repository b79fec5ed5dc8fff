/**
 * Results: per-operation medians from mitata's trials, the ratios the suite is
 * judged by, the summary table and the `--json` document.
 *
 * Every benchmark iteration runs a batch of `ops` operations (1000 gets, a full
 * scan, 100k puts, …); figures are reported per operation: the batch's median
 * time divided by `ops`.
 *
 * @module
 */

import type { Paired } from "./paired.ts";

/**
 * The implementations a workload runs on: turbomdbx, native, lmdb-js (and the
 * profile group) in the core suite; the cache suite adds turbomdbx without its
 * cache, libmdbx's own cache, and the memory-access floor.
 */
export type Impl = "turbomdbx" | "native" | "lmdb-js" | "profile" | "uncached" | "native-cache" | "floor";

/** One registered benchmark. */
export interface Spec {
  /** Unique id, e.g. "100B/get/turbomdbx". */
  id: string;
  /** Data set label, e.g. "100B". */
  dataset: string;
  /** Workload key, e.g. "get", "getView", "scan". */
  workload: string;
  impl: Impl;
  /** What exactly runs, e.g. "txn.get()". */
  what: string;
  /** Operations per iteration. */
  ops: number;
}

/** A measured benchmark. */
export interface Result extends Spec {
  /** Median ns per operation. */
  median: number;
  /** 75th and 99th percentile ns per operation. */
  p75: number;
  p99: number;
  /** Iterations measured. */
  samples: number;
}

/** A ratio the suite reports: turbomdbx's time over a baseline's (lower is better for turbomdbx). */
export interface Ratio {
  dataset: string;
  workload: string;
  /** "turbomdbx / native" or "turbomdbx / lmdb-js". */
  label: string;
  /** The headline: the paired median ratio when paired rounds ran, else `ofMedians`. */
  value: number;
  /** Median over paired rounds of the per-round ratio (see paired.ts). */
  paired?: number;
  /** Paired rounds measured. */
  rounds?: number;
  /** turbomdbx's mitata median over the baseline's mitata median. */
  ofMedians: number;
  /** The target the ratio should stay at or under, if there is one. */
  target?: number;
  met?: boolean;
}

/** The workloads in report order, with their labels and targets. */
export const WORKLOADS: { key: string; label: string; native?: number; lmdb?: number }[] = [
  { key: "get", label: "random get, copy", native: 1.25, lmdb: 1 },
  { key: "getView", label: "random get, zero-copy view (unsafeGetView)", native: 1.25, lmdb: 1 },
  { key: "scan", label: "full cursor scan (per entry)" },
  { key: "put", label: "random put, one txn", native: 1.3, lmdb: 1 },
  { key: "commitNosync", label: "1 put per txn, nosync" },
  { key: "commitDurable", label: "1 put per txn, durable" },
];

interface MitataRun {
  name: string;
  stats?: { p50: number; p75: number; p99: number; samples: number[] };
  error?: unknown;
}

/** Turns mitata trials into per-operation results for the specs it knows (matched by name = id). */
export function collect(trials: { runs: MitataRun[] }[], specs: Map<string, Spec>): Result[] {
  const out: Result[] = [];
  for (const t of trials) {
    for (const r of t.runs) {
      const spec = specs.get(r.name);
      if (!spec) continue;
      if (!r.stats) throw new Error(`benchmark ${r.name} failed: ${(r.error as Error)?.message ?? r.error}`);
      out.push({
        ...spec,
        median: r.stats.p50 / spec.ops,
        p75: r.stats.p75 / spec.ops,
        p99: r.stats.p99 / spec.ops,
        samples: r.stats.samples.length,
      });
    }
  }
  return out;
}

/** The ratios turbomdbx / native and turbomdbx / lmdb-js per dataset and workload. */
export function ratios(results: Result[], paired: Paired[] = []): Ratio[] {
  const by = new Map(results.map((r) => [`${r.dataset}/${r.workload}/${r.impl}`, r]));
  const out: Ratio[] = [];
  const datasets = [...new Set(results.map((r) => r.dataset))];
  for (const ds of datasets) {
    for (const w of WORKLOADS) {
      const tm = by.get(`${ds}/${w.key}/turbomdbx`);
      if (!tm) continue;
      for (const [impl, target] of [["native", w.native], ["lmdb-js", w.lmdb]] as const) {
        const other = by.get(`${ds}/${w.key}/${impl}`);
        if (!other) continue;
        const ofMedians = tm.median / other.median;
        const p = paired.find((x) => x.dataset === ds && x.workload === w.key);
        const pr = p?.ratio[impl];
        const r: Ratio = {
          dataset: ds,
          workload: w.key,
          label: `turbomdbx / ${impl}`,
          value: pr ?? ofMedians,
          ofMedians,
        };
        if (pr !== undefined) (r.paired = pr), (r.rounds = p!.rounds);
        if (target !== undefined) {
          r.target = target;
          r.met = r.value <= target;
        }
        out.push(r);
      }
    }
  }
  return out;
}

/** Formats nanoseconds for a table cell. */
export function ns(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)} µs`;
  return `${v.toFixed(v < 10 ? 2 : 1)} ns`;
}

function ratioCell(r: Ratio | undefined): string {
  if (!r) return "-";
  const mark = r.target === undefined ? "" : r.met ? ` ok ≤${r.target}` : ` MISS >${r.target}`;
  const also = r.paired !== undefined ? ` (${r.ofMedians.toFixed(2)}x)` : "";
  return `${r.value.toFixed(2)}x${also}${mark}`;
}

/** Renders rows as a plain-text table (first row is the header). */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...r[c]].length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

/**
 * The summary: time per operation of each implementation and the two ratios,
 * per dataset and workload. Times are the paired rounds' medians when those
 * ran (so that they agree with the ratios), mitata's medians otherwise.
 */
export function summary(results: Result[], rs: Ratio[], paired: Paired[] = []): string {
  const by = new Map(results.map((r) => [`${r.dataset}/${r.workload}/${r.impl}`, r]));
  const rows = [["data", "workload", "turbomdbx", "native", "lmdb-js", "turbomdbx / native", "turbomdbx / lmdb-js"]];
  const datasets = [...new Set(results.map((r) => r.dataset))];
  for (const ds of datasets) {
    for (const w of WORKLOADS) {
      const p = paired.find((x) => x.dataset === ds && x.workload === w.key);
      const get = (impl: Impl) => {
        const r = by.get(`${ds}/${w.key}/${impl}`);
        const ms = p?.medianMs[impl];
        return r === undefined ? NaN : ms !== undefined ? (ms * 1e6) / r.ops : r.median;
      };
      if (!by.has(`${ds}/${w.key}/turbomdbx`)) continue;
      const ratio = (label: string) => rs.find((r) => r.dataset === ds && r.workload === w.key && r.label === label);
      rows.push([
        ds,
        w.label,
        ns(get("turbomdbx")),
        ns(get("native")),
        ns(get("lmdb-js")),
        ratioCell(ratio("turbomdbx / native")),
        ratioCell(ratio("turbomdbx / lmdb-js")),
      ]);
    }
  }
  const profile = results.filter((r) => r.impl === "profile");
  let text = paired.length
    ? "Time per operation: median over paired rounds. Ratios: turbomdbx over the baseline (lower is better), the " +
      "median of per-round ratios; in brackets, the ratio of mitata's medians from the table above."
    : "Time per operation: mitata's median. Ratios: turbomdbx over the baseline (lower is better), of those medians.";
  text += "\n\n" + table(rows);
  if (profile.length) {
    const prow = [["data", "profile (per operation)", "median", "p75"]];
    for (const p of profile) prow.push([p.dataset, p.what, ns(p.median), ns(p.p75)]);
    text += "\n\n" + table(prow);
  }
  return text;
}
