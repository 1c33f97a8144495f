/**
 * Images for comparing coefficients, computed from a sweep's trained weights.
 * Introduced in `notebooks/04-analysis.ipynb`.
 */
import * as tf from "@tensorflow/tfjs";
import type { VaeConfig } from "../vae/config";
import { decode, encode } from "../vae/model";
import { readValues } from "../vae/latent";
import { deriveSeed, Random, RANDOM_STREAMS } from "../vae/random";
import { modelFromRun, type SweepResult } from "./sweep";

export interface DigitRows {
  /** One label per row, e.g. "original" or "c = 0.5". */
  readonly labels: string[];
  /** Row-major digits: rows x columns x 784 values in [0, 1]. */
  readonly digits: Float32Array;
  readonly columns: number;
}

function decodeWith(
  result: Pick<SweepResult, "config" | "runs">,
  rows: (model: ReturnType<typeof modelFromRun>) => Float32Array,
): Float32Array[] {
  return result.runs.map((run) => {
    const model = modelFromRun(result.config, run);
    try {
      return rows(model);
    } finally {
      model.vae.dispose();
    }
  });
}

/**
 * The first `count` test digits and, for each c, their reconstruction decode(zMean(x)): the decoder
 * applied to the encoder's mean, so the picture has no sampling noise.
 */
export function reconstructionRows(
  result: Pick<SweepResult, "config" | "runs">,
  xTest: Float32Array,
  count = 10,
): DigitRows {
  const { originalDim } = result.config;
  const originals = xTest.slice(0, count * originalDim);
  const reconstructions = decodeWith(result, (model) =>
    readValues(() => decode(model, encode(model, tf.tensor2d(originals, [count, originalDim])).zMean)),
  );
  return stack(
    ["original", ...result.runs.map((run) => `c = ${run.klCoefficient}`)],
    [originals, ...reconstructions],
    count,
  );
}

/**
 * For each c, digits decoded from the same `count` samples of the prior N(0, I): what the VAE would
 * generate with that coefficient.
 */
export function priorSampleRows(result: Pick<SweepResult, "config" | "runs">, count = 10): DigitRows {
  const z = new Random(deriveSeed(result.config.seed, RANDOM_STREAMS.priorSamples)).fillNormal(
    new Float32Array(count * 2),
  );
  const samples = decodeWith(result, (model) => readValues(() => decode(model, tf.tensor2d(z, [count, 2]))));
  return stack(
    result.runs.map((run) => `c = ${run.klCoefficient}`),
    samples,
    count,
  );
}

function stack(labels: string[], rows: Float32Array[], columns: number): DigitRows {
  const digits = new Float32Array(rows.reduce((sum, row) => sum + row.length, 0));
  let offset = 0;
  for (const row of rows) {
    digits.set(row, offset);
    offset += row.length;
  }
  return { labels, digits, columns };
}

/** The config fields worth showing in a report, as label/value pairs. */
export function configRows(config: VaeConfig): [string, string][] {
  return [
    ["coefficients c", config.klCoefficients.join(", ")],
    ["epochs", String(config.epochs)],
    ["batch size", String(config.batchSize)],
    ["learning rate (Adam)", String(config.learningRate)],
    ["model", `${config.originalDim}-${config.intermediateDim}-${config.latentDim}`],
    ["data", `${config.dataSource}: ${config.trainSize} train / ${config.testSize} test`],
    ["seed", String(config.seed)],
  ];
}
