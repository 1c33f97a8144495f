/**
 * Every number with its spread: per coefficient, the mean, the sample standard deviation, the minimum
 * and the maximum of the metrics over a sweep's training seeds (`npm run sweep -- --seeds 42-46`).
 * Introduced in `notebooks/04-analysis.ipynb`.
 */
import type { CoefficientMetrics, MeasuredSeeds } from "./metrics";

/** The spread of one number over seeds. */
export interface Spread {
  /** How many values (seeds). */
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation, sqrt(sum (x - mean)^2 / (n - 1)); null for a single value, which has none. */
  readonly sd: number | null;
  readonly min: number;
  readonly max: number;
}

/** Mean, sample standard deviation (n - 1), min and max of a non-empty list. */
export function spread(values: readonly number[]): Spread {
  const n = values.length;
  if (n === 0) throw new RangeError("spread() needs at least one value.");
  const mean = values.reduce((sum, x) => sum + x, 0) / n;
  const squares = values.reduce((sum, x) => sum + (x - mean) ** 2, 0);
  return {
    n,
    mean,
    sd: n > 1 ? Math.sqrt(squares / (n - 1)) : null,
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** The metrics given with their spread, as named in tables. */
export const SPREAD_METRICS = [
  { key: "distortion", label: "distortion", digits: 2 },
  { key: "rate", label: "rate", digits: 2 },
  { key: "negativeElbo", label: "-ELBO", digits: 2 },
  { key: "aggregateEnergyDistance", label: "energy distance", digits: 4 },
  { key: "latentRadius", label: "latent radius", digits: 2 },
  { key: "manifoldVariety", label: "manifold variety", digits: 3 },
] as const;

export type SpreadMetric = (typeof SPREAD_METRICS)[number]["key"];

/** One coefficient's metrics over the seeds. */
export type CoefficientSpread = { readonly klCoefficient: number; readonly seeds: readonly number[] } & {
  readonly [K in SpreadMetric]: Spread;
};

/** Per coefficient, the spread of each metric of `SPREAD_METRICS` over the sweep's training seeds. */
export function seedSpreads(result: MeasuredSeeds): CoefficientSpread[] {
  const first = result.seeds[0];
  if (!first) throw new RangeError("seedSpreads() needs a sweep with at least one seed.");
  return first.runs.map((run, index) => {
    const metrics: CoefficientMetrics[] = result.seeds.map((s) => s.runs[index].metrics);
    const spreads = Object.fromEntries(SPREAD_METRICS.map(({ key }) => [key, spread(metrics.map((m) => m[key]))])) as {
      [K in SpreadMetric]: Spread;
    };
    return { klCoefficient: run.klCoefficient, seeds: result.seeds.map((s) => s.seed), ...spreads };
  });
}

/** "12.34 ± 0.56 [11.90, 13.02]"; a single seed has no standard deviation: "12.34 [12.34, 12.34]". */
export function formatSpread(s: Spread, digits: number): string {
  const sd = s.sd === null ? "" : ` ± ${s.sd.toFixed(digits)}`;
  return `${s.mean.toFixed(digits)}${sd} [${s.min.toFixed(digits)}, ${s.max.toFixed(digits)}]`;
}

/** A plain-text table: one row per coefficient, each metric as mean ± sample sd [min, max]. */
export function spreadTable(spreads: readonly CoefficientSpread[]): string {
  const header = ["c", ...SPREAD_METRICS.map((m) => m.label)];
  const rows = spreads.map((s) => [
    String(s.klCoefficient),
    ...SPREAD_METRICS.map((m) => formatSpread(s[m.key], m.digits)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}
