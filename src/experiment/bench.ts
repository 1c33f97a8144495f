/**
 * Training speed of the tutorial's VAE through the project's own training code (`npm run bench`).
 * FLOP per training sample (matrix products only; element-wise ops and Adam left out): the forward pass
 * multiplies 784x512 (encoder), 512x2 twice (zMean, zLogVar), 2x512 and 512x784 (decoder): 805,888
 * multiply-adds. The backward pass takes every weight gradient (as many) and the input gradient of every
 * layer but the first (its input is the data): 512x2 twice, 2x512, 512x784 = 404,480 multiply-adds.
 * Total 2 x (805,888 + 805,888 + 404,480) = 4,032,512 FLOP per sample, 242 GFLOP per 60,000-row epoch.
 */
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { BackendInfo } from "../backend/select";
import { resolveConfig, type VaeConfig } from "../vae/config";
import { PIXELS, readEmbeddedDigits, type MnistData } from "../vae/data";
import { IDX_FILES, encodeIdx } from "../vae/idx";
import { writeFileAtomic } from "./cache";
import { buildModel, decode, trainableVariables } from "../vae/model";
import { decodeManifold, manifoldGrid, readValues } from "../vae/latent";
import { kerasAdam } from "../vae/optimizer";
import { trainEpoch } from "../vae/train";

export const FLOP_PER_SAMPLE = 2 * 805_888 + 2 * 805_888 + 2 * 404_480;

export interface BenchResult {
  readonly backend: string;
  readonly backendReason: string;
  /** Threads of the wasm backend's matrix products (1 elsewhere). */
  readonly threads: number;
  readonly rows: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly epochSeconds: number[];
  /**
   * CPU seconds of each epoch, every thread of the process together: less sensitive than wall time to
   * other processes on a shared machine, though with threads it counts their waiting too.
   */
  readonly epochCpuSeconds: number[];
  readonly medianEpochSeconds: number;
  /** The median epoch scaled to the tutorial's 60,000 training rows. */
  readonly secondsPer60kEpoch: number;
  readonly samplesPerSecond: number;
  readonly flopPerSample: number;
  readonly gflopPerSecond: number;
  /** One batched decode of the 30 x 30 manifold (900 rows), median of several. */
  readonly manifoldBatchedMs: number;
  /** The tutorial's way: 900 single-row decodes, for comparison. */
  readonly manifoldOneByOneMs: number;
}

/** The bench's training set: `rows` of the embedded digits, up to 1,000 of the rest as the test set. */
export function benchConfig(rows: number): VaeConfig {
  return resolveConfig({ dataSource: "embedded", trainSize: rows, testSize: Math.min(1000, 10_000 - rows) || 1 });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Trains a fresh model for `epochs` epochs on `data.xTrain` (c = 1) and times every epoch. `afterEpoch`
 * runs between epochs, outside the timing (the bench times PyTorch's epochs there, alternately with
 * these, so that both see the same load on a shared machine).
 */
export async function benchTraining(
  config: VaeConfig,
  data: MnistData,
  backend: BackendInfo,
  epochs: number,
  afterEpoch: (epoch: number) => Promise<void> = () => new Promise((resolve) => setImmediate(resolve)),
): Promise<BenchResult> {
  const model = buildModel(config);
  const optimizer = kerasAdam(config.learningRate);
  const variables = trainableVariables(model);
  const options = { config, klCoefficient: 1, xTrain: data.xTrain, xTest: data.xTest };
  const epochSeconds: number[] = [];
  const epochCpuSeconds: number[] = [];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    trainEpoch(model, optimizer, options, epoch, variables);
    epochSeconds.push((performance.now() - started) / 1000);
    const used = process.cpuUsage(cpu);
    epochCpuSeconds.push((used.user + used.system) / 1e6);
    await afterEpoch(epoch);
  }
  const time = (run: () => void, repeats: number) =>
    median(
      Array.from({ length: repeats }, () => {
        const started = performance.now();
        run();
        return performance.now() - started;
      }),
    );
  const n = config.manifoldSize;
  const manifoldBatchedMs = time(() => decodeManifold(model, n, config.manifoldExtent), 7);
  const { z } = manifoldGrid(n, config.manifoldExtent);
  const manifoldOneByOneMs = time(() => {
    for (let i = 0; i < n * n; i++) readValues(() => decode(model, tf.tensor2d(z.subarray(2 * i, 2 * i + 2), [1, 2])));
  }, 3);
  optimizer.dispose();
  model.vae.dispose();
  const rows = data.trainSize;
  const medianEpochSeconds = median(epochSeconds.slice(epochs > 1 ? 1 : 0));
  const samplesPerSecond = rows / medianEpochSeconds;
  return {
    backend: backend.name,
    backendReason: backend.reason,
    threads: backend.threads,
    rows,
    epochs,
    batchSize: config.batchSize,
    epochSeconds,
    epochCpuSeconds,
    medianEpochSeconds,
    secondsPer60kEpoch: (medianEpochSeconds * 60_000) / rows,
    samplesPerSecond,
    flopPerSample: FLOP_PER_SAMPLE,
    gflopPerSecond: (samplesPerSecond * FLOP_PER_SAMPLE) / 1e9,
    manifoldBatchedMs,
    manifoldOneByOneMs,
  };
}

/**
 * The ratio of two series timed alternately (project epoch, reference epoch, project epoch, ...): the
 * median of the ratios of each pair, leaving out the first pair (the warm-up of epochs in one process)
 * when there are more and `warmUp` is true. A pair was measured under the same load, so this is steadier
 * on a shared machine than a ratio of medians.
 */
export function pairedRatio(project: readonly number[], reference: readonly number[], warmUp = true): number {
  const pairs = Math.min(project.length, reference.length);
  if (pairs === 0) throw new RangeError("pairedRatio: no pairs of timings.");
  const ratios = Array.from({ length: pairs }, (_, i) => project[i] / reference[i]);
  return median(warmUp && pairs > 1 ? ratios.slice(1) : ratios);
}

/**
 * The projected time of a whole sweep from a measured part: `epochSeconds` per epoch (training and the
 * test-set evaluation) for `epochs` epochs per coefficient, plus `tailSeconds` per coefficient (its
 * start, the zMean and manifold decodes, the metrics), with `jobs` coefficients trained at once.
 */
export function projectSweepSeconds(options: {
  epochSeconds: number;
  epochs: number;
  tailSeconds: number;
  coefficients: number;
  jobs: number;
}): number {
  const { epochSeconds, epochs, tailSeconds, coefficients, jobs } = options;
  return Math.ceil(coefficients / jobs) * (epochSeconds * epochs + tailSeconds);
}

export function formatBench(result: BenchResult): string {
  const threads = result.backend === "wasm" ? `, ${result.threads} thread${result.threads === 1 ? "" : "s"}` : "";
  const seconds = (values: number[]) => values.map((s) => s.toFixed(2)).join(", ");
  return [
    `backend ${result.backend}${threads} (${result.backendReason})`,
    `${result.epochs} epochs of ${result.rows} rows, batch ${result.batchSize}; ` +
      `epoch seconds ${seconds(result.epochSeconds)} (median excludes the first); ` +
      `CPU seconds ${seconds(result.epochCpuSeconds)}`,
    `median ${result.medianEpochSeconds.toFixed(2)} s/epoch = ` +
      `${result.secondsPer60kEpoch.toFixed(1)} s per 60,000-row epoch`,
    `${Math.round(result.samplesPerSecond)} samples/s, ${result.gflopPerSecond.toFixed(1)} GFLOP/s ` +
      `(${(result.flopPerSample / 1e6).toFixed(2)} MFLOP of matrix products per sample: ` +
      "2 FLOP per multiply-add: forward 805,888, weight gradients 805,888, input gradients 404,480; " +
      "element-wise ops and Adam not counted)",
    `manifold 30 x 30: ${result.manifoldBatchedMs.toFixed(1)} ms batched, ` +
      `${result.manifoldOneByOneMs.toFixed(0)} ms as 900 single decodes`,
  ].join("\n");
}

/**
 * Writes the four MNIST IDX files into `dir` at full MNIST's sizes (60,000 training and 10,000 test
 * digits) by tiling the 10,000 embedded digits: training speed depends on the row count, not on which
 * digits they are, so this times the full data where it cannot be downloaded. Pixels are stored as
 * bytes (round(255 x)), as in the real files. Returns `dir`.
 */
export function writeTiledMnist(dir: string, trainRows = 60_000, testRows = 10_000): string {
  const { images, labels } = readEmbeddedDigits();
  const count = labels.length;
  const split = (rows: number) => {
    const pixels = new Uint8Array(rows * PIXELS);
    const digits = new Uint8Array(rows);
    for (let row = 0; row < rows; row++) {
      const source = row % count;
      for (let p = 0; p < PIXELS; p++) pixels[row * PIXELS + p] = Math.round(255 * images[source * PIXELS + p]);
      digits[row] = labels[source];
    }
    return { pixels, digits };
  };
  const train = split(trainRows);
  const test = split(testRows);
  writeFileAtomic(path.join(dir, IDX_FILES.trainImages), encodeIdx([trainRows, 28, 28], train.pixels));
  writeFileAtomic(path.join(dir, IDX_FILES.trainLabels), encodeIdx([trainRows], train.digits));
  writeFileAtomic(path.join(dir, IDX_FILES.testImages), encodeIdx([testRows, 28, 28], test.pixels));
  writeFileAtomic(path.join(dir, IDX_FILES.testLabels), encodeIdx([testRows], test.digits));
  return dir;
}
