/**
 * Measuring what the tutorial judges by eye, per coefficient, on the test set.
 * Introduced in `notebooks/03-kl-sweep.ipynb` (spread, variety) and `notebooks/04-analysis.ipynb`.
 * - distortion, -E log p(x|z), and rate, E KL(q(z|x) || N(0, I)), in nats (their sum is the negative ELBO);
 * - the aggregate encoder output (zMean over the test set) against N(0, I): mean, covariance, the KL of a
 *   Gaussian fitted to it, and the energy distance to as many N(0, I) samples;
 * - active units (Burda, Grosse & Salakhutdinov 2016); the decoded manifold's variety and sharpness.
 */
import { deriveSeed, Random, RANDOM_STREAMS } from "../vae/random";
import type { LossTerms } from "../vae/loss";

/** Mean and (population) covariance of row-major [rows, dim] points. */
export function meanAndCovariance(points: Float32Array, dim = 2): { mean: number[]; covariance: number[][] } {
  const rows = points.length / dim;
  const mean = new Array(dim).fill(0);
  for (let i = 0; i < rows; i++) for (let j = 0; j < dim; j++) mean[j] += points[i * dim + j] / rows;
  const covariance = Array.from({ length: dim }, () => new Array(dim).fill(0));
  for (let i = 0; i < rows; i++) {
    for (let a = 0; a < dim; a++) {
      for (let b = 0; b < dim; b++)
        covariance[a][b] += ((points[i * dim + a] - mean[a]) * (points[i * dim + b] - mean[b])) / rows;
    }
  }
  return { mean, covariance };
}

/**
 * KL(N(mean, covariance) || N(0, I)) for a 2 x 2 covariance, closed form:
 * 0.5 * (tr(S) + m^T m - k - ln det S), with k = 2.
 */
export function gaussianKlFromStandard(mean: readonly number[], covariance: readonly number[][]): number {
  const [[a, b], [c, d]] = covariance;
  const det = a * d - b * c;
  if (!(det > 0)) return Infinity;
  return 0.5 * (a + d + mean[0] ** 2 + mean[1] ** 2 - 2 - Math.log(det));
}

function meanDistance(x: Float32Array, y: Float32Array, same: boolean): number {
  const n = x.length / 2;
  const m = y.length / 2;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x0 = x[2 * i];
    const x1 = x[2 * i + 1];
    for (let j = same ? i + 1 : 0; j < m; j++) sum += Math.hypot(x0 - y[2 * j], x1 - y[2 * j + 1]);
  }
  // For one sample with itself, average over the n(n-1)/2 distinct pairs (the U-statistic).
  return same ? sum / ((n * (n - 1)) / 2) : sum / (n * m);
}

/**
 * Energy distance (Szekely & Rizzo) between two 2D samples: 2 E|X - Y| - E|X - X'| - E|Y - Y'|.
 * Zero exactly when the distributions are equal; computed over all pairs.
 */
export function energyDistance(x: Float32Array, y: Float32Array): number {
  return 2 * meanDistance(x, y, false) - meanDistance(x, x, true) - meanDistance(y, y, true);
}

/** Latent dimensions whose zMean varies across inputs: Var_x(E[z|x]) > threshold (0.01). */
export function activeUnits(zMean: Float32Array, dim = 2, threshold = 0.01): number {
  const { covariance } = meanAndCovariance(zMean, dim);
  return covariance.filter((row, j) => row[j] > threshold).length;
}

/** The average distance of zMean from the origin and the standard deviation of each coordinate. */
export function latentSpread(zMean: Float32Array): { radius: number; std: [number, number] } {
  const { covariance } = meanAndCovariance(zMean);
  let radius = 0;
  for (let i = 0; i < zMean.length; i += 2) radius += Math.hypot(zMean[i], zMean[i + 1]) / (zMean.length / 2);
  return { radius, std: [Math.sqrt(covariance[0][0]), Math.sqrt(covariance[1][1])] };
}

/**
 * How different the decoded digits are: the per-pixel standard deviation across all digits of the
 * manifold, averaged over pixels. A manifold showing one blurry digit everywhere scores near 0.
 */
export function manifoldVariety(manifold: Float32Array, pixels = 784): number {
  const count = manifold.length / pixels;
  let total = 0;
  for (let p = 0; p < pixels; p++) {
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < count; i++) {
      const v = manifold[i * pixels + p];
      sum += v;
      squares += v * v;
    }
    const mean = sum / count;
    total += Math.sqrt(Math.max(0, squares / count - mean * mean));
  }
  return total / pixels;
}

/** How decided the decoded pixels are: mean |2p - 1| over the manifold (1 = pure black/white, 0 = grey). */
export function manifoldSharpness(manifold: Float32Array): number {
  let sum = 0;
  for (const p of manifold) sum += Math.abs(2 * p - 1);
  return sum / manifold.length;
}

export interface CoefficientMetrics {
  readonly klCoefficient: number;
  /** Reconstruction term on the test set (nats per digit). */
  readonly distortion: number;
  /** KL term on the test set (nats per digit). */
  readonly rate: number;
  /** distortion + rate: the negative ELBO, the loss with c = 1. */
  readonly negativeElbo: number;
  readonly zMeanMean: readonly number[];
  readonly zMeanCovariance: readonly number[][];
  /** KL(N(fitted mean, fitted covariance) || N(0, I)) of the aggregate zMean. */
  readonly aggregateGaussianKl: number;
  /** Energy distance between the test zMean and as many N(0, I) samples. */
  readonly aggregateEnergyDistance: number;
  readonly activeUnits: number;
  readonly latentRadius: number;
  readonly manifoldVariety: number;
  readonly manifoldSharpness: number;
}

/** What the metrics read of one coefficient's run (a `CoefficientRun` of `src/experiment/sweep.ts`). */
export interface RunOutputs {
  readonly klCoefficient: number;
  /** The test-set terms after the last epoch. */
  readonly test: LossTerms;
  /** The encoder's zMean of every test row, row-major [testSize, 2]. */
  readonly zMean: Float32Array;
  /** The decoded manifold, row-major [manifoldSize^2, 784]. */
  readonly manifold: Float32Array;
}

/** Every metric of one coefficient's run; `seed` fixes the N(0, I) reference sample. */
export function coefficientMetrics(run: RunOutputs, seed: number): CoefficientMetrics {
  const { mean, covariance } = meanAndCovariance(run.zMean);
  const reference = new Random(deriveSeed(seed, RANDOM_STREAMS.referenceNormal)).fillNormal(
    new Float32Array(run.zMean.length),
  );
  return {
    klCoefficient: run.klCoefficient,
    distortion: run.test.reconstruction,
    rate: run.test.kl,
    negativeElbo: run.test.reconstruction + run.test.kl,
    zMeanMean: mean,
    zMeanCovariance: covariance,
    aggregateGaussianKl: gaussianKlFromStandard(mean, covariance),
    aggregateEnergyDistance: energyDistance(run.zMean, reference),
    activeUnits: activeUnits(run.zMean),
    latentRadius: latentSpread(run.zMean).radius,
    manifoldVariety: manifoldVariety(run.manifold),
    manifoldSharpness: manifoldSharpness(run.manifold),
  };
}

/** What is measured of a sweep for one training seed: each coefficient's metrics (a `SweepResult`'s `runs`). */
export interface MeasuredRuns {
  readonly runs: readonly { readonly klCoefficient: number; readonly metrics: CoefficientMetrics }[];
}

/** What is measured of a sweep over training seeds (a `SweepResult`'s `seeds`). */
export interface MeasuredSeeds {
  readonly seeds: readonly (MeasuredRuns & { readonly seed: number })[];
}

/** The metrics of every coefficient, as computed (and cached) with the sweep. */
export function sweepMetrics(result: {
  readonly runs: readonly { readonly metrics: CoefficientMetrics }[];
}): CoefficientMetrics[] {
  return result.runs.map((run) => run.metrics);
}

/** A plain-text table of the metrics, one row per coefficient. */
export function metricsTable(metrics: readonly CoefficientMetrics[]): string {
  const header = [
    "c",
    "distortion",
    "rate",
    "-ELBO",
    "agg. KL",
    "energy dist.",
    "active",
    "radius",
    "variety",
    "sharpness",
  ];
  const rows = metrics.map((m) => [
    String(m.klCoefficient),
    m.distortion.toFixed(2),
    m.rate.toFixed(2),
    m.negativeElbo.toFixed(2),
    m.aggregateGaussianKl.toFixed(3),
    m.aggregateEnergyDistance.toFixed(4),
    String(m.activeUnits),
    m.latentRadius.toFixed(2),
    m.manifoldVariety.toFixed(3),
    m.manifoldSharpness.toFixed(3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}
