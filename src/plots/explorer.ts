/**
 * The latent explorer (beyond the tutorial): beside each coefficient's encoder scatter, the digit the decoder
 * draws for the latent point under the mouse, decoded in the page; two clicks decode a path. Introduced in
 * `notebooks/04-analysis.ipynb`, also in `npm run report`.
 *
 * The decoders travel in the page, so the 512 x 784 output kernel is replaced by two thin quantised, deflated
 * factors that span the logit directions the decoder uses (docs/explorer.md). The page script (`explorerPage.js`)
 * rebuilds the kernel exactly as `lowRankProduct` does, so page and kernel multiply by the same float32 weights.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { deflateSync } from "node:zlib";
import type { SweepResult } from "../experiment/sweep";
import type { VaeConfig } from "../vae/config";
import { Random } from "../vae/random";
import { encodeGreyPng, tileDigits } from "./png";

/** The decoder's four weight arrays, row-major as tfjs keeps them (kernel [in, out]). */
export interface DecoderWeights {
  readonly latentDim: number;
  readonly hiddenDim: number;
  readonly outputDim: number;
  /** [latentDim, hiddenDim] */
  readonly hiddenKernel: Float32Array;
  readonly hiddenBias: Float32Array;
  /** [hiddenDim, outputDim] */
  readonly outputKernel: Float32Array;
  readonly outputBias: Float32Array;
}

type DecoderDims = Pick<VaeConfig, "originalDim" | "intermediateDim" | "latentDim">;

/**
 * The decoder's arrays out of a run's flat weights (`CoefficientRun.weights`, in `vae.getWeights()`
 * order): encoder_hidden kernel and bias, z_mean kernel and bias, z_log_var kernel and bias, then
 * decoder_hidden kernel and bias and decoder_output kernel and bias, the last four being the decoder.
 */
export function decoderWeightsFromFlat(flat: Float32Array, dims: DecoderDims): DecoderWeights {
  const { originalDim, intermediateDim, latentDim } = dims;
  const encoderSize = originalDim * intermediateDim + intermediateDim + 2 * (intermediateDim * latentDim + latentDim);
  const sizes = [latentDim * intermediateDim, intermediateDim, intermediateDim * originalDim, originalDim];
  const expected = encoderSize + sizes.reduce((a, b) => a + b, 0);
  if (flat.length !== expected) {
    throw new Error(
      `The flat weights hold ${flat.length} values, but a ${originalDim}-${intermediateDim}-${latentDim} VAE ` +
        `has ${expected}: they come from another configuration.`,
    );
  }
  let offset = encoderSize;
  const [hiddenKernel, hiddenBias, outputKernel, outputBias] = sizes.map((size) =>
    flat.slice(offset, (offset += size)),
  );
  return {
    latentDim,
    hiddenDim: intermediateDim,
    outputDim: originalDim,
    hiddenKernel,
    hiddenBias,
    outputKernel,
    outputBias,
  };
}

/**
 * A run's flat weights with the decoder replaced (the inverse of `decoderWeightsFromFlat`): how the
 * kernel side runs the page's dequantised decoder through tfjs (`modelFromRun`, `decode`).
 */
export function flatWithDecoder(flat: Float32Array, decoder: DecoderWeights, dims: DecoderDims): Float32Array {
  decoderWeightsFromFlat(flat, dims);
  const out = Float32Array.from(flat);
  let offset =
    flat.length -
    (decoder.hiddenKernel.length + decoder.hiddenBias.length + decoder.outputKernel.length + decoder.outputBias.length);
  for (const values of [decoder.hiddenKernel, decoder.hiddenBias, decoder.outputKernel, decoder.outputBias]) {
    out.set(values, offset);
    offset += values.length;
  }
  return out;
}

/**
 * A [rows, cols] matrix quantised per column: value[i][j] is low[j] + codes[i * cols + j] * step[j], rounded to
 * float32.
 */
export interface QuantizedColumns {
  readonly rows: number;
  readonly cols: number;
  readonly low: Float32Array;
  readonly step: Float32Array;
  readonly codes: Uint16Array;
}

/**
 * Uniform quantisation of each column over its own [min, max] in 2^bits levels: a value's rounding
 * error is at most half its column's step, (max - min) / (2^bits - 1) / 2.
 */
export function quantizeColumns(matrix: ArrayLike<number>, rows: number, cols: number, bits: number): QuantizedColumns {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16)
    throw new RangeError(`bits must be a whole number from 1 to 16; got ${bits}.`);
  if (matrix.length !== rows * cols)
    throw new RangeError(`A ${rows} x ${cols} matrix has ${rows * cols} values, not ${matrix.length}.`);
  const levels = 2 ** bits - 1;
  const low = new Float32Array(cols).fill(Infinity);
  const high = new Float32Array(cols).fill(-Infinity);
  for (let i = 0; i < rows * cols; i++) {
    const value = matrix[i];
    if (!Number.isFinite(value))
      throw new RangeError(
        `The matrix holds a non-finite value (${value}) at row ${Math.floor(i / cols)}, column ${i % cols}: ` +
          "the weights are broken.",
      );
    low[i % cols] = Math.min(low[i % cols], value);
    high[i % cols] = Math.max(high[i % cols], value);
  }
  const step = Float32Array.from(low, (lowest, j) => (high[j] - lowest) / levels);
  const codes = new Uint16Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    const j = i % cols;
    codes[i] = step[j] === 0 ? 0 : Math.min(levels, Math.max(0, Math.round((matrix[i] - low[j]) / step[j])));
  }
  return { rows, cols, low, step, codes };
}

/** The float32 matrix that the codes stand for; the page computes the same expression, then rounds to float32 too. */
export function dequantizeColumns(quantized: QuantizedColumns): Float32Array {
  const { rows, cols, low, step, codes } = quantized;
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) values[i] = low[i % cols] + codes[i] * step[i % cols];
  return values;
}

/** relu(z W1 + b1) at each latent point (row-major [count, latentDim]): row-major [count, hiddenDim]. */
export function hiddenActivations(weights: DecoderWeights, z: Float32Array): Float64Array {
  const { latentDim, hiddenDim } = weights;
  const count = z.length / latentDim;
  const hidden = new Float64Array(count * hiddenDim);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < hiddenDim; i++) {
      let sum = weights.hiddenBias[i];
      for (let k = 0; k < latentDim; k++) sum += z[n * latentDim + k] * weights.hiddenKernel[k * hiddenDim + i];
      hidden[n * hiddenDim + i] = Math.max(0, sum);
    }
  }
  return hidden;
}

/** Orthonormalises the columns of a row-major [rows, cols] matrix in place (modified Gram-Schmidt). */
export function orthonormalizeColumns(matrix: Float64Array, rows: number, cols: number): void {
  for (let c = 0; c < cols; c++) {
    for (let previous = 0; previous < c; previous++) {
      let dot = 0;
      for (let r = 0; r < rows; r++) dot += matrix[r * cols + c] * matrix[r * cols + previous];
      for (let r = 0; r < rows; r++) matrix[r * cols + c] -= dot * matrix[r * cols + previous];
    }
    let norm = 0;
    for (let r = 0; r < rows; r++) norm += matrix[r * cols + c] ** 2;
    norm = Math.sqrt(norm);
    for (let r = 0; r < rows; r++) matrix[r * cols + c] = norm === 0 ? 0 : matrix[r * cols + c] / norm;
  }
}

/** a [n, m] times b [m, p], row-major, in float64. */
function multiply(a: ArrayLike<number>, b: ArrayLike<number>, n: number, m: number, p: number): Float64Array {
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < m; k++) {
      const value = a[i * m + k];
      if (value === 0) continue;
      for (let j = 0; j < p; j++) out[i * p + j] += value * b[k * p + j];
    }
  }
  return out;
}

/** h^T h for a row-major [rows, cols] matrix h: one triangle computed, skipping the zeros ReLU leaves. */
function gramMatrix(h: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) {
      const value = h[r * cols + i];
      if (value === 0) continue;
      for (let j = i; j < cols; j++) out[i * cols + j] += value * h[r * cols + j];
    }
  }
  for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) out[i * cols + j] = out[j * cols + i];
  return out;
}

/** The transpose of a row-major [rows, cols] matrix. */
function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}

/** Power iterations of the subspace search; each multiplies the gap between kept and dropped directions. */
const POWER_ITERATIONS = 4;

/**
 * An orthonormal basis, row-major [outputDim, rank], of the `rank` directions of pixel-logit space that
 * the decoder uses most at the given latent points: the leading right singular vectors of the logits
 * L = H W2 (H the hidden activations), found by subspace iteration on L^T L = W2^T (H^T H) W2 from a
 * seeded random start (Halko, Martinsson and Tropp 2011, algorithm 4.4). A 2-dimensional latent space
 * draws a 2-dimensional surface of logits, which a few dozen directions hold almost entirely.
 */
export function logitBasis(weights: DecoderWeights, z: Float32Array, rank: number, seed = 1): Float64Array {
  const { hiddenDim, outputDim } = weights;
  if (!Number.isInteger(rank) || rank < 1 || rank > outputDim)
    throw new RangeError(`rank must be a whole number from 1 to ${outputDim}; got ${rank}.`);
  const hidden = hiddenActivations(weights, z);
  const count = z.length / weights.latentDim;
  const gram = gramMatrix(hidden, count, hiddenDim);
  const kernelTransposed = transpose(weights.outputKernel, hiddenDim, outputDim);
  let basis = Float64Array.from(new Random(seed).fillNormal(new Float32Array(outputDim * rank)));
  orthonormalizeColumns(basis, outputDim, rank);
  for (let iteration = 0; iteration < POWER_ITERATIONS; iteration++) {
    const projected = multiply(weights.outputKernel, basis, hiddenDim, outputDim, rank);
    basis = multiply(
      kernelTransposed,
      multiply(gram, projected, hiddenDim, hiddenDim, rank),
      outputDim,
      hiddenDim,
      rank,
    );
    orthonormalizeColumns(basis, outputDim, rank);
  }
  return basis;
}

/**
 * left [rows, rank] times right [cols, rank] transposed, summed in float64 in a fixed order and rounded to float32
 * (as the page does).
 */
export function lowRankProduct(
  left: Float32Array,
  right: Float32Array,
  rows: number,
  cols: number,
  rank: number,
): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let sum = 0;
      for (let k = 0; k < rank; k++) sum += left[i * rank + k] * right[j * rank + k];
      out[i * cols + j] = sum;
    }
  }
  return out;
}

/** One packed decoder as the page reads it (`unpackDecoder` in explorerPage.js): base64 strings. */
export interface PackedDecoder {
  readonly latentDim: number;
  readonly hiddenDim: number;
  readonly outputDim: number;
  readonly rank: number;
  readonly hiddenKernel: string;
  readonly hiddenBias: string;
  readonly outputBias: string;
  /** float32 low and step of the `rank` columns of the left factor, then of the right factor. */
  readonly low: string;
  readonly step: string;
  /** zlib-deflated uint16 codes: the left factor [hiddenDim, rank], then the right factor [outputDim, rank]. */
  readonly codes: string;
}

/** A decoder packed for the page, with the decoder the page rebuilds from it (what it will multiply by). */
export interface PackedResult {
  readonly packed: PackedDecoder;
  readonly decoder: DecoderWeights;
}

/** Little-endian float32 bytes as base64 (the page reads them with a DataView). */
export function float32Base64(values: Float32Array): string {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => bytes.writeFloatLE(value, 4 * i));
  return bytes.toString("base64");
}

/** Little-endian int16 bytes as base64. */
export function int16Base64(values: Int16Array): string {
  const bytes = Buffer.alloc(values.length * 2);
  values.forEach((value, i) => bytes.writeInt16LE(value, 2 * i));
  return bytes.toString("base64");
}

/** How the output kernel is packed: its rank and the bits of each factor entry. */
export interface PackingOptions {
  readonly rank: number;
  readonly bits: number;
}

/** Rank 48 at 12 bits: about 150,000 characters a coefficient on the tutorial's sweep (docs/explorer.md). */
export const EXPLORER_PACKING: PackingOptions = Object.freeze({ rank: 48, bits: 12 });

/**
 * Packs a decoder for the page. The 512 x 784 output kernel W2 becomes W2 V V^T, with V the `rank`
 * directions of `logitBasis` at the latent points `z` (the page only decodes there and near there):
 * two factors, A = W2 V [hiddenDim, rank] and V [outputDim, rank], each quantised per column to `bits`
 * bits and deflated. The small arrays (2 x 512 kernel, both biases) stay float32.
 */
export function packDecoder(
  weights: DecoderWeights,
  z: Float32Array,
  options: PackingOptions = EXPLORER_PACKING,
): PackedResult {
  const { rank, bits } = options;
  const { hiddenDim, outputDim } = weights;
  const basis = logitBasis(weights, z, rank);
  const left = quantizeColumns(
    multiply(weights.outputKernel, basis, hiddenDim, outputDim, rank),
    hiddenDim,
    rank,
    bits,
  );
  const right = quantizeColumns(basis, outputDim, rank, bits);
  const codes = Buffer.alloc(2 * (left.codes.length + right.codes.length));
  [...left.codes, ...right.codes].forEach((code, i) => codes.writeUInt16LE(code, 2 * i));
  const concat = (a: Float32Array, b: Float32Array) => Float32Array.from([...a, ...b]);
  const packed: PackedDecoder = {
    latentDim: weights.latentDim,
    hiddenDim,
    outputDim,
    rank,
    hiddenKernel: float32Base64(weights.hiddenKernel),
    hiddenBias: float32Base64(weights.hiddenBias),
    outputBias: float32Base64(weights.outputBias),
    low: float32Base64(concat(left.low, right.low)),
    step: float32Base64(concat(left.step, right.step)),
    codes: deflateSync(codes, { level: 9 }).toString("base64"),
  };
  const outputKernel = lowRankProduct(dequantizeColumns(left), dequantizeColumns(right), hiddenDim, outputDim, rank);
  return { packed, decoder: { ...weights, outputKernel } };
}

/** Characters a packed decoder adds to the page (all base64 fields). */
export function packedSize(packed: PackedDecoder): number {
  return (
    packed.hiddenKernel.length +
    packed.hiddenBias.length +
    packed.outputBias.length +
    packed.low.length +
    packed.step.length +
    packed.codes.length
  );
}

/**
 * sigmoid(relu(z W1 + b1) W2 + b2) for a batch of latent points (row-major [count, latentDim]) in plain
 * float64 arithmetic: an independent decoder used to measure what the quantisation costs.
 */
export function decodeReference(weights: DecoderWeights, z: Float32Array): Float32Array {
  const { latentDim, hiddenDim, outputDim } = weights;
  const count = z.length / latentDim;
  const out = new Float32Array(count * outputDim);
  const hidden = new Float64Array(hiddenDim);
  const logits = new Float64Array(outputDim);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < hiddenDim; i++) {
      let sum = weights.hiddenBias[i];
      for (let k = 0; k < latentDim; k++) sum += z[n * latentDim + k] * weights.hiddenKernel[k * hiddenDim + i];
      hidden[i] = Math.max(0, sum);
    }
    logits.set(weights.outputBias);
    for (let i = 0; i < hiddenDim; i++) {
      if (hidden[i] === 0) continue;
      for (let j = 0; j < outputDim; j++) logits[j] += hidden[i] * weights.outputKernel[i * outputDim + j];
    }
    for (let j = 0; j < outputDim; j++) out[n * outputDim + j] = 1 / (1 + Math.exp(-logits[j]));
  }
  return out;
}

/** How far one decoder's pixels are from another's (pixel values in [0, 1]). */
export interface PixelError {
  readonly points: number;
  readonly maxAbs: number;
  readonly meanAbs: number;
}

/** The pixel error of decoder `approximate` against `exact` over latent points (row-major [count, latentDim]). */
export function pixelError(exact: DecoderWeights, approximate: DecoderWeights, z: Float32Array): PixelError {
  const expected = decodeReference(exact, z);
  const actual = decodeReference(approximate, z);
  let maxAbs = 0;
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(expected[i] - actual[i]);
    maxAbs = Math.max(maxAbs, difference);
    sum += difference;
  }
  return { points: z.length / exact.latentDim, maxAbs, meanAbs: sum / expected.length };
}

/** The square latent window drawn for one coefficient: [-r, r]^2 holding every test code and [-extent, extent]^2. */
export function explorerWindow(zMean: Float32Array, extent = 3): [number, number] {
  let radius = extent;
  for (const value of zMean) radius = Math.max(radius, Math.abs(value) * 1.05);
  const rounded = Math.ceil(radius * 10) / 10;
  return [-rounded, rounded];
}

/** n x n latent points evenly over a square window, row-major [n * n, 2], top row (z[1] largest) first. */
export function windowGrid(window: readonly [number, number], n: number): Float32Array {
  const z = new Float32Array(n * n * 2);
  const at = (i: number) => window[0] + ((window[1] - window[0]) * i) / (n - 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      z[2 * (i * n + j)] = at(j);
      z[2 * (i * n + j) + 1] = at(n - 1 - i);
    }
  }
  return z;
}

/** Test codes as int16 with one scale per coefficient: 4 bytes a point instead of two JSON numbers. */
export function packPoints(zMean: Float32Array): { points: string; pointScale: number } {
  let largest = 0;
  for (const value of zMean) largest = Math.max(largest, Math.abs(value));
  const pointScale = largest === 0 ? 1 : largest / 32767;
  return { points: int16Base64(Int16Array.from(zMean, (value) => Math.round(value / pointScale))), pointScale };
}

/** What the page receives: `mount(rootId, spec)` in explorerPage.js. */
export interface ExplorerSpec {
  readonly digitSide: number;
  readonly initialIndex: number;
  /** Test labels, one byte each, base64. */
  readonly labels: string;
  readonly coefficients: readonly {
    readonly klCoefficient: number;
    readonly window: [number, number];
    readonly points: string;
    readonly pointScale: number;
    readonly decoder: PackedDecoder;
  }[];
}

export interface ExplorerOptions {
  /** Rank and bits of the packed output kernels; default `EXPLORER_PACKING`. */
  readonly packing?: PackingOptions;
  /** The coefficient shown first; default the first of the sweep. */
  readonly initialCoefficient?: number;
}

type ExplorerResult = Pick<SweepResult, "config" | "runs" | "yTest" | "gridX">;

/**
 * Where the page decodes, as the packing sees it: a 17 x 17 grid over the window (the mouse can go
 * anywhere in it) and up to 400 test codes (where the digits are, and where a reader looks most).
 */
export function packingPoints(window: readonly [number, number], zMean: Float32Array): Float32Array {
  const grid = windowGrid(window, 17);
  const codes = samplePoints(zMean, 400);
  const points = new Float32Array(grid.length + codes.length);
  points.set(grid);
  points.set(codes, grid.length);
  return points;
}

/** The decoder of every coefficient of a sweep, as float32. */
export function sweepDecoders(result: Pick<SweepResult, "config" | "runs">): DecoderWeights[] {
  return result.runs.map((run) => decoderWeightsFromFlat(run.weights, result.config));
}

/** Everything the explorer needs for one sweep: the page's spec and, per coefficient, the decoder the page runs. */
export interface Explorer {
  readonly spec: ExplorerSpec;
  /** Per coefficient: the float32 decoder and the page's (dequantised) decoder. */
  readonly decoders: readonly {
    readonly klCoefficient: number;
    readonly exact: DecoderWeights;
    readonly page: DecoderWeights;
    readonly window: [number, number];
  }[];
}

export function buildExplorer(result: ExplorerResult, options: ExplorerOptions = {}): Explorer {
  const initialIndex =
    options.initialCoefficient === undefined
      ? 0
      : result.runs.findIndex((run) => run.klCoefficient === options.initialCoefficient);
  if (initialIndex < 0) {
    throw new RangeError(
      `initialCoefficient ${options.initialCoefficient} is not in the sweep ` +
        `(c in ${result.runs.map((run) => run.klCoefficient).join(", ")}).`,
    );
  }
  const exact = sweepDecoders(result);
  const windows = result.runs.map((run) => explorerWindow(run.zMean, result.config.manifoldExtent));
  const packs = exact.map((weights, index) =>
    packDecoder(weights, packingPoints(windows[index], result.runs[index].zMean), options.packing),
  );
  return {
    spec: {
      digitSide: Math.round(Math.sqrt(result.config.originalDim)),
      initialIndex,
      labels: Buffer.from(result.yTest).toString("base64"),
      coefficients: result.runs.map((run, index) => ({
        klCoefficient: run.klCoefficient,
        window: windows[index],
        ...packPoints(run.zMean),
        decoder: packs[index].packed,
      })),
    },
    decoders: result.runs.map((run, index) => ({
      klCoefficient: run.klCoefficient,
      exact: exact[index],
      page: packs[index].decoder,
      window: windows[index],
    })),
  };
}

/** The page script's text (explorerPage.js beside this file), safe inside a `<script>` element. */
export function explorerScriptSource(): string {
  return fs.readFileSync(path.join(__dirname, "explorerPage.js"), "utf8").replace(/<\/script/gi, "<\\/script");
}

/**
 * The static grid shown where scripts do not run: each coefficient's decoded manifold, every other
 * digit of the 30 x 30 grid (15 x 15 over the same [-3, 3]^2) in 16 grey levels, to keep the page small.
 */
export function fallbackGridHtml(result: Pick<SweepResult, "runs" | "gridX">, stride = 2): string {
  const n = result.gridX.length;
  const kept = Array.from({ length: Math.ceil(n / stride) }, (_, i) => i * stride);
  const cells = result.runs.map((run) => {
    const size = run.manifold.length / (n * n);
    const digits = new Float32Array(kept.length * kept.length * size);
    kept.forEach((row, i) =>
      kept.forEach((col, j) =>
        digits.set(
          run.manifold.subarray((row * n + col) * size, (row * n + col + 1) * size),
          (i * kept.length + j) * size,
        ),
      ),
    );
    const { width, height, pixels } = tileDigits(digits, kept.length, kept.length, Math.round(Math.sqrt(size)));
    // 16 grey levels (multiples of 17) deflate to about half the bytes of 256 and look the same at this size.
    const png = Buffer.from(
      encodeGreyPng(
        width,
        height,
        pixels.map((grey) => Math.round(grey / 17) * 17),
      ),
    ).toString("base64");
    return (
      `<figure style="margin:4px"><img alt="Decoder output for KL coefficient = ${run.klCoefficient}" ` +
      `src="data:image/png;base64,${png}" width="210" height="210">` +
      `<figcaption style="text-align:center">c = ${run.klCoefficient}</figcaption></figure>`
    );
  });
  return (
    "<p>Decoder output over [-3, 3]^2 for each coefficient " +
    "(a static grid: the latent explorer needs scripts to run).</p>" +
    `<div style="display:flex;flex-wrap:wrap">${cells.join("")}</div>`
  );
}

/** The explorer figure's HTML: a static grid, replaced by the explorer where scripts run. */
export function explorerHtml(result: ExplorerResult, explorer: Explorer = buildExplorer(result)): string {
  const id = `vae-explorer-${Math.random().toString(16).slice(2, 14)}`;
  const spec = JSON.stringify(explorer.spec).replace(/<\//g, "<\\/");
  return [
    `<div id="${id}" class="vae-explorer"><div class="vae-explorer-fallback">${fallbackGridHtml(result)}</div></div>`,
    `<script type="text/javascript">(function () {`,
    explorerScriptSource(),
    `VaeExplorer.mount("${id}", ${spec});`,
    `})();</script>`,
  ].join("\n");
}

/** Sizes and errors of the page's decoders, for the notebook and docs/explorer.md. */
export interface ExplorerSummary {
  /** Characters of packed weights, for every coefficient together. */
  readonly weightChars: number;
  /** Characters of the whole figure (weights, test codes, static grids, script). */
  readonly htmlChars: number;
  /** Characters the same weights would take as base64 float32. */
  readonly float32Chars: number;
  /** Pixel error of the page's decoders against float32 at every test code, over all coefficients. */
  readonly atTestCodes: PixelError;
  /** The same on a 15 x 15 grid over each coefficient's window. */
  readonly onWindowGrid: PixelError;
}

function combine(errors: readonly PixelError[]): PixelError {
  const points = errors.reduce((sum, e) => sum + e.points, 0);
  return {
    points,
    maxAbs: Math.max(...errors.map((e) => e.maxAbs)),
    meanAbs: errors.reduce((sum, e) => sum + e.meanAbs * e.points, 0) / points,
  };
}

/** Every `stride`-th point of row-major [count, 2] codes, so that at most `count` remain. */
export function samplePoints(zMean: Float32Array, count: number): Float32Array {
  const total = zMean.length / 2;
  const stride = Math.max(1, Math.ceil(total / count));
  return Float32Array.from(
    { length: Math.ceil(total / stride) * 2 },
    (_, i) => zMean[2 * stride * Math.floor(i / 2) + (i % 2)],
  );
}

/**
 * Sizes and errors; the error at the test codes is measured on at most `testCodes` of them per
 * coefficient, evenly spread (every code costs two decodes in plain JavaScript).
 */
export function explorerSummary(
  result: ExplorerResult,
  explorer: Explorer,
  html: string,
  testCodes = 250,
): ExplorerSummary {
  return {
    weightChars: explorer.spec.coefficients.reduce((sum, c) => sum + packedSize(c.decoder), 0),
    htmlChars: html.length,
    float32Chars: explorer.decoders.reduce(
      (sum, d) =>
        sum +
        4 *
          Math.ceil(
            (4 *
              (d.exact.hiddenKernel.length +
                d.exact.hiddenBias.length +
                d.exact.outputKernel.length +
                d.exact.outputBias.length)) /
              3,
          ),
      0,
    ),
    atTestCodes: combine(
      explorer.decoders.map((d, i) => pixelError(d.exact, d.page, samplePoints(result.runs[i].zMean, testCodes))),
    ),
    onWindowGrid: combine(explorer.decoders.map((d) => pixelError(d.exact, d.page, windowGrid(d.window, 15)))),
  };
}

/** Two lines for the notebook: what the explorer weighs and how far its decoders are from float32. */
export function describeExplorer(summary: ExplorerSummary): string {
  const megabytes = (chars: number) => `${(chars / 1e6).toFixed(2)} MB`;
  const error = (e: PixelError) => `mean ${e.meanAbs.toFixed(5)}, max ${e.maxAbs.toFixed(4)}`;
  return (
    `Latent explorer: ${megabytes(summary.htmlChars)} in the page, ` +
    `of which ${megabytes(summary.weightChars)} of packed decoder weights ` +
    `(base64 float32 would be ${megabytes(summary.float32Chars)}).\n` +
    `Pixel error of the packed decoders against float32: ${error(summary.atTestCodes)} at the test codes; ` +
    `${error(summary.onWindowGrid)} over the windows.`
  );
}
