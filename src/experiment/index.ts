/**
 * `src/experiment`: the tutorial's sweep over c and what is measured of it.
 *
 * - `sweep.ts`: every coefficient from the same initial weights; results and their cache keys.
 * - `results.ts`: reading the results file back, refusing other schema versions.
 * - `cache.ts`, `lock.ts`, `workers.ts`: the on-disk cache, per-coefficient locks, helper processes
 *   (and the progress they send back).
 * - `metrics.ts`: rate, distortion, closeness to N(0, I) per coefficient.
 * - `conclusions.ts`: the tutorial's conclusions checked against the numbers.
 * - `statistics.ts`: mean, sample standard deviation, min and max of the metrics over training seeds.
 * - `analysis.ts`: comparison images (reconstructions, prior samples) from trained weights.
 * - `bench.ts`: training speed through the project's own loop, ratios of paired timings, sweep
 *   projections, and full-MNIST-sized IDX files tiled from the embedded digits.
 *
 * May import: system, vae, backend.
 */
export * from "./analysis";
export * from "./bench";
export * from "./cache";
export * from "./conclusions";
export * from "./metrics";
export * from "./results";
export * from "./statistics";
export * from "./sweep";
