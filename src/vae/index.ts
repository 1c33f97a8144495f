/**
 * `src/vae`: the VAE itself, as the tutorial builds it. Read this folder to learn the model; a faster
 * whole training step plugs in behind one hook (`registerFastTrainStep`); the wasm engine in
 * `src/backend` registers it, and is never imported here.
 *
 * - `config.ts`: the tutorial's values, typed and frozen; profiles; validation.
 * - `data.ts`, `idx.ts`: the digits (embedded split, full MNIST from IDX files).
 * - `random.ts`: seeded random numbers and the named streams (shuffles, initial weights, noise).
 * - `model.ts`: encoder, sampling layer, decoder; weight snapshot and restore.
 * - `latent.ts`: what the figures read from a trained model (zMean of every digit, the manifold).
 * - `loss.ts`: reconstruction, KL, and the total with the coefficient c.
 * - `optimizer.ts`: Keras's Adam, its formula.
 * - `train.ts`: `trainStep`, `trainEpoch`, `evaluate`, `train`.
 *
 * May import: system.
 */
export * from "./config";
export * from "./data";
export * from "./idx";
export * from "./latent";
export * from "./loss";
export * from "./model";
export * from "./optimizer";
export * from "./random";
export * from "./train";
