/**
 * `src/vae`: the VAE as the tutorial builds it; read `model.ts`, `loss.ts` and `train.ts` to learn it.
 * `config.ts` holds the tutorial's values, `data.ts` and `idx.ts` the digits, `random.ts` the seeded
 * streams, `optimizer.ts` Keras's Adam, `latent.ts` what the figures read from a trained model.
 * `fastPath.ts` is the one hook through which a backend (the wasm engine in `src/backend`, never
 * imported here) supplies a faster training step. May import: system.
 */
export * from "./config";
export * from "./data";
export * from "./fastPath";
export * from "./idx";
export * from "./latent";
export * from "./loss";
export * from "./model";
export * from "./optimizer";
export * from "./random";
export * from "./train";
