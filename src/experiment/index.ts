/**
 * `src/experiment`: the tutorial's sweep over c and what is measured of it.
 * - `sweep`: every coefficient from the same initial weights; `results`: the results file, read back.
 * - `cache`, `lock`, `workers`: the on-disk cache, per-coefficient locks, helper processes.
 * - `metrics`: rate, distortion, closeness to N(0, I); `conclusions`: the tutorial's, checked.
 * - `statistics`: spread over training seeds; `analysis`: comparison images; `bench`: training speed.
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
