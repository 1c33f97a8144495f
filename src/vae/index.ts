/**
 * `src/vae`: the VAE itself, as the tutorial builds it. Read this folder to learn the model; the speed
 * work behind the backend (`src/backend`) plugs in as registered kernels and is never imported here.
 *
 * - `config.ts`: the tutorial's values, typed and frozen; profiles; validation.
 * - `data.ts`, `idx.ts`: the digits (embedded split, full MNIST from IDX files).
 * - `random.ts`: seeded random numbers (shuffles, initial weights, sampling noise).
 * - `model.ts`: encoder, sampling layer, decoder; weight snapshot and restore; the manifold grid.
 * - `loss.ts`: reconstruction, KL, and the total with the coefficient c.
 * - `optimizer.ts`: Keras's Adam, its formula.
 * - `train.ts`: `trainStep`, `trainEpoch`, `evaluate`, `train`.
 *
 * May import: system.
 */
export * from "./config";
export * from "./data";
export * from "./idx";
export * from "./loss";
export * from "./model";
export * from "./optimizer";
export * from "./random";
export * from "./train";
