/**
 * The tutorial's conclusions, checked against a sweep's numbers instead of by eye: for one seed in
 * `notebooks/03-kl-sweep.ipynb`, and seed by seed over several in `notebooks/04-analysis.ipynb`.
 */
import { sweepMetrics, type CoefficientMetrics, type MeasuredRuns, type MeasuredSeeds } from "./metrics";

export interface Conclusion {
  /** The tutorial's claim, in its words where possible. */
  readonly claim: string;
  /** What was measured to test it. */
  readonly evidence: string;
  readonly holds: boolean;
}

/** Spearman's rank correlation of two equally long lists (ties get their mean rank). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const ranks = (values: readonly number[]) => {
    const order = values.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
    const rank = new Array<number>(values.length);
    for (let i = 0; i < order.length;) {
      let j = i;
      while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
      for (let k = i; k <= j; k++) rank[order[k][1]] = (i + j) / 2 + 1;
      i = j + 1;
    }
    return rank;
  };
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (ra.length + 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) ** 2;
    db += (rb[i] - mean) ** 2;
  }
  return da === 0 || db === 0 ? 0 : num / Math.sqrt(da * db);
}

function list(metrics: readonly CoefficientMetrics[], pick: (m: CoefficientMetrics) => number, digits = 2): string {
  return metrics.map((m) => `${m.klCoefficient}: ${pick(m).toFixed(digits)}`).join(", ");
}

/** Checks each conclusion of the tutorial on the sweep's test-set metrics. */
export function checkConclusions(result: MeasuredRuns): Conclusion[] {
  const metrics = sweepMetrics(result);
  const c = metrics.map((m) => m.klCoefficient);
  const first = metrics[0];
  const last = metrics[metrics.length - 1];
  const mid = metrics.filter((m) => [0.5, 1, 2].includes(m.klCoefficient));
  const best = metrics.reduce((a, b) => (b.aggregateEnergyDistance < a.aggregateEnergyDistance ? b : a));
  const rhoRadius = spearman(
    c,
    metrics.map((m) => m.latentRadius),
  );
  const rhoRate = spearman(
    c,
    metrics.map((m) => m.rate),
  );
  const rhoDistortion = spearman(
    c,
    metrics.map((m) => m.distortion),
  );
  const bestMidVariety = Math.max(...mid.map((m) => m.manifoldVariety), -Infinity);
  return [
    {
      claim: "Without the KL loss (c = 0) the encoder output is spread out; increasing c gathers it around the origin.",
      evidence:
        `mean distance of zMean from the origin per c: ${list(metrics, (m) => m.latentRadius)}; ` +
        `rank correlation with c ${rhoRadius.toFixed(2)}`,
      holds: first.latentRadius > last.latentRadius && rhoRadius < 0,
    },
    {
      claim:
        "The larger the coefficient, the blurrier and less varied the decoded digits; " +
        "a very small coefficient fails to produce all digits; mid values (0.5, 1, 2) look best.",
      evidence:
        `variety of the manifold's digits over [-3, 3]^2 per c: ${list(metrics, (m) => m.manifoldVariety, 3)}; ` +
        `the best mid value ${bestMidVariety.toFixed(3)}`,
      holds: first.manifoldVariety < bestMidVariety && last.manifoldVariety < bestMidVariety,
    },
    {
      claim: "(measured) The rate (KL) falls and the distortion (reconstruction) rises as c grows.",
      evidence:
        `test KL per c: ${list(metrics, (m) => m.rate)}; ` +
        `test reconstruction per c: ${list(metrics, (m) => m.distortion)}`,
      holds: rhoRate < 0 && rhoDistortion > 0,
    },
    {
      claim:
        "A properly chosen coefficient brings the encoder output closer to the 2D standard normal " +
        "than c = 0 or the largest c.",
      evidence:
        "energy distance of the test zMean to as many N(0, I) samples per c: " +
        `${list(metrics, (m) => m.aggregateEnergyDistance, 4)}; smallest at c = ${best.klCoefficient}`,
      holds: best !== first && best !== last,
    },
  ];
}

export function conclusionsReport(conclusions: readonly Conclusion[]): string {
  return conclusions
    .map((c, i) => `${i + 1}. ${c.claim}\n   ${c.holds ? "HOLDS" : "DOES NOT HOLD"} here: ${c.evidence}`)
    .join("\n\n");
}

/** A conclusion checked on every training seed of a sweep. */
export interface SeedConclusion {
  readonly claim: string;
  /** In how many of the seeds it holds. */
  readonly holdsIn: number;
  /** How many seeds were checked. */
  readonly seeds: number;
  /** The check of each seed, in the sweep's seed order. */
  readonly perSeed: readonly { readonly seed: number; readonly holds: boolean; readonly evidence: string }[];
}

/** Checks each conclusion on each training seed's runs alone, and counts the seeds where it holds. */
export function checkConclusionsAcrossSeeds(result: MeasuredSeeds): SeedConclusion[] {
  const checks = result.seeds.map((s) => ({ seed: s.seed, conclusions: checkConclusions(s) }));
  if (checks.length === 0) throw new RangeError("checkConclusionsAcrossSeeds() needs a sweep with at least one seed.");
  return checks[0].conclusions.map((conclusion, i) => {
    const perSeed = checks.map(({ seed, conclusions }) => ({
      seed,
      holds: conclusions[i].holds,
      evidence: conclusions[i].evidence,
    }));
    return { claim: conclusion.claim, holdsIn: perSeed.filter((s) => s.holds).length, seeds: perSeed.length, perSeed };
  });
}

/** "holds for 4 of 5 seeds (not 44)", one line per claim. */
export function seedConclusionsReport(conclusions: readonly SeedConclusion[]): string {
  return conclusions
    .map((c, i) => {
      const failed = c.perSeed.filter((s) => !s.holds).map((s) => s.seed);
      const which =
        failed.length > 0 && failed.length < c.seeds
          ? ` (not for seed${failed.length > 1 ? "s" : ""} ${failed.join(", ")})`
          : "";
      return `${i + 1}. ${c.claim}\n   holds for ${c.holdsIn} of ${c.seeds} seed${c.seeds === 1 ? "" : "s"}${which}`;
    })
    .join("\n\n");
}
