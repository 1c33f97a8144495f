/**
 * The latent explorer (beyond the tutorial): beside each coefficient's encoder scatter, the digit that
 * the decoder draws for the latent point under the mouse, decoded in the page; a coefficient selector;
 * two clicks decode the path between two points. Introduced in `notebooks/04-analysis.ipynb`, also in
 * `npm run report`.
 *
 * The decoders travel in the page, so their weights are packed small: the 512 x 784 output kernel
 * (99.4% of a decoder's 403,728 weights) is quantised with one step per hidden unit, chosen so that
 * every unit adds the same share of logit error over the coefficient's latent window, as one code per
 * byte, deflated, in a fixed number of characters per coefficient; the small arrays (2 x 512 kernel,
 * both biases) stay float32. The page script (`explorerPage.js`, embedded as text) inflates the codes
 * with the browser's DecompressionStream and dequantises them exactly as `dequantizeRows` does, so the
 * page and the kernel multiply by the same float32 weights. Where scripts do not run, the page keeps a
 * static manifold grid per coefficient.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { constants as zlibConstants, deflateSync } from "node:zlib";
import type { SweepResult } from "../experiment/sweep";
import type { VaeConfig } from "../vae/config";
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
    throw new Error(`The flat weights hold ${flat.length} values, but a ${originalDim}-${intermediateDim}-${latentDim} VAE has ${expected}: they come from another configuration.`);
  }
  let offset = encoderSize;
  const [hiddenKernel, hiddenBias, outputKernel, outputBias] = sizes.map((size) => flat.slice(offset, (offset += size)));
  return { latentDim, hiddenDim: intermediateDim, outputDim: originalDim, hiddenKernel, hiddenBias, outputKernel, outputBias };
}

/**
 * A run's flat weights with the decoder replaced (the inverse of `decoderWeightsFromFlat`): how the
 * kernel side runs the page's dequantised decoder through tfjs (`modelFromRun`, `decode`).
 */
export function flatWithDecoder(flat: Float32Array, decoder: DecoderWeights, dims: DecoderDims): Float32Array {
  decoderWeightsFromFlat(flat, dims);
  const out = Float32Array.from(flat);
  let offset = flat.length - (decoder.hiddenKernel.length + decoder.hiddenBias.length + decoder.outputKernel.length + decoder.outputBias.length);
  for (const values of [decoder.hiddenKernel, decoder.hiddenBias, decoder.outputKernel, decoder.outputBias]) {
    out.set(values, offset);
    offset += values.length;
  }
  return out;
}

/** A [rows, cols] matrix quantised per row: value[i][j] is (codes[i * cols + j] - 128) * step[i], rounded to float32. */
export interface QuantizedRows {
  readonly rows: number;
  readonly cols: number;
  readonly step: Float32Array;
  readonly codes: Uint8Array;
}

/** The code that stands for zero; codes run from 0 to 255, so a row holds at most 127 steps either way. */
const ZERO_CODE = 128;

/**
 * Uniform quantisation of each row with its own step; a row whose largest weight would need more than
 * 127 steps gets a coarser step (its largest |weight| / 127), so no code is ever clipped. A step of 0
 * stands for a row of zeros.
 */
export function quantizeRows(matrix: Float32Array, rows: number, cols: number, steps: Float32Array): QuantizedRows {
  if (matrix.length !== rows * cols) throw new RangeError(`A ${rows} x ${cols} matrix has ${rows * cols} values, not ${matrix.length}.`);
  if (steps.length !== rows) throw new RangeError(`One step per row: ${rows} rows but ${steps.length} steps.`);
  const step = new Float32Array(rows);
  const codes = new Uint8Array(rows * cols).fill(ZERO_CODE);
  for (let i = 0; i < rows; i++) {
    let largest = 0;
    for (let j = 0; j < cols; j++) {
      const value = matrix[i * cols + j];
      if (!Number.isFinite(value)) throw new RangeError(`The matrix holds a non-finite value (${value}) at row ${i}, column ${j}: the weights are broken.`);
      largest = Math.max(largest, Math.abs(value));
    }
    if (!(steps[i] >= 0)) throw new RangeError(`Step ${i} is ${steps[i]}; steps must be 0 or more.`);
    if (steps[i] === 0 || largest === 0) continue;
    step[i] = Math.max(steps[i], largest / (ZERO_CODE - 1));
    for (let j = 0; j < cols; j++) codes[i * cols + j] = ZERO_CODE + Math.round(matrix[i * cols + j] / step[i]);
  }
  return { rows, cols, step, codes };
}

/** The float32 matrix that the codes stand for; the page computes the same expression, then rounds to float32 too. */
export function dequantizeRows(quantized: QuantizedRows): Float32Array {
  const { rows, cols, step, codes } = quantized;
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) values[i * cols + j] = (codes[i * cols + j] - ZERO_CODE) * step[i];
  }
  return values;
}

/** Latent points per side of the grid over which hidden activations and errors are measured. */
const WINDOW_GRID = 31;

/**
 * The root mean square of each hidden unit's activation relu(z W1 + b1) over a grid of the window. A
 * unit at 0 on the whole grid is off in the whole window: its pre-activation is linear in z, so its
 * largest value over the square is at a corner, and the corners are on the grid.
 */
export function hiddenRms(weights: DecoderWeights, window: readonly [number, number]): Float64Array {
  const { hiddenDim, latentDim } = weights;
  const grid = windowGrid(window, WINDOW_GRID);
  const points = grid.length / latentDim;
  const rms = new Float64Array(hiddenDim);
  for (let n = 0; n < points; n++) {
    for (let i = 0; i < hiddenDim; i++) {
      let sum = weights.hiddenBias[i];
      for (let k = 0; k < latentDim; k++) sum += grid[n * latentDim + k] * weights.hiddenKernel[k * hiddenDim + i];
      if (sum > 0) rms[i] += sum * sum;
    }
  }
  return rms.map((total) => Math.sqrt(total / points));
}

/**
 * Steps that spend the bits where they change the output: a weight's rounding error e moves a logit by
 * h_i * e, so every hidden unit gets the step `scale / rms(h_i)`, which makes each unit's share of the
 * logit error the same (and a unit that is off in the window costs nothing). This is the allocation
 * that minimises the mean squared logit error for a given entropy of the codes (reverse water-filling,
 * Cover and Thomas, section 10.3.3).
 */
export function errorBalancedSteps(rms: Float64Array, scale: number): Float32Array {
  return Float32Array.from(rms, (value) => (value === 0 ? 0 : scale / value));
}

/** One packed decoder as the page reads it (`unpackDecoder` in explorerPage.js): base64 strings. */
export interface PackedDecoder {
  readonly latentDim: number;
  readonly hiddenDim: number;
  readonly outputDim: number;
  readonly hiddenKernel: string;
  readonly hiddenBias: string;
  readonly outputBias: string;
  /** One float32 step per hidden unit (row of the output kernel). */
  readonly step: string;
  /** zlib-deflated output-kernel codes, one byte per weight, row-major [hiddenDim, outputDim]. */
  readonly codes: string;
}

/** A decoder packed for the page, with its dequantised output kernel (what the page will multiply by). */
export interface PackedResult {
  readonly packed: PackedDecoder;
  readonly decoder: DecoderWeights;
  /** The logit error scale chosen (the `scale` of `errorBalancedSteps`). */
  readonly scale: number;
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

function packWith(weights: DecoderWeights, rms: Float64Array, scale: number): PackedResult {
  const quantized = quantizeRows(weights.outputKernel, weights.hiddenDim, weights.outputDim, errorBalancedSteps(rms, scale));
  const packed: PackedDecoder = {
    latentDim: weights.latentDim,
    hiddenDim: weights.hiddenDim,
    outputDim: weights.outputDim,
    hiddenKernel: float32Base64(weights.hiddenKernel),
    hiddenBias: float32Base64(weights.hiddenBias),
    outputBias: float32Base64(weights.outputBias),
    step: float32Base64(quantized.step),
    codes: deflateSync(quantized.codes, { strategy: zlibConstants.Z_HUFFMAN_ONLY }).toString("base64"),
  };
  return { packed, decoder: { ...weights, outputKernel: dequantizeRows(quantized) }, scale };
}

/**
 * Packs a decoder for the page in at most `maxChars` characters, as finely as that allows: the error
 * scale is searched by bisection on a log scale (a coarser scale gives smaller codes), to within 5%.
 * The codes are one per byte, Huffman-coded by deflate without its string matching: on 512 x 784
 * quantised weights that was 11% smaller and three times faster than deflate's level 9 (the weights
 * hold no repeated strings, and one code per byte lets the Huffman stage see whole codes).
 */
export function packDecoder(weights: DecoderWeights, window: readonly [number, number], maxChars: number): PackedResult {
  const rms = hiddenRms(weights, window);
  let fine = 1e-4;
  let coarse = 10;
  let best = packWith(weights, rms, coarse);
  if (packedSize(best.packed) > maxChars) {
    throw new RangeError(`A decoder cannot be packed in ${maxChars} characters (the coarsest packing takes ${packedSize(best.packed)}); allow more.`);
  }
  for (let round = 0; round < 8; round++) {
    const middle = Math.sqrt(fine * coarse);
    const candidate = packWith(weights, rms, middle);
    if (packedSize(candidate.packed) <= maxChars) {
      best = candidate;
      coarse = middle;
    } else {
      fine = middle;
    }
  }
  return best;
}

/** Characters a packed decoder adds to the page (all base64 fields). */
export function packedSize(packed: PackedDecoder): number {
  return packed.hiddenKernel.length + packed.hiddenBias.length + packed.outputBias.length + packed.step.length + packed.codes.length;
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

/**
 * Characters of packed weights per coefficient: eight coefficients then take 1.52 MB, which leaves
 * room under the 2 MB budget for the test codes, the static grids and the script (README, "Latent
 * explorer").
 */
export const EXPLORER_WEIGHT_CHARS = 190_000;

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
  /** Characters of packed weights per coefficient; default `EXPLORER_WEIGHT_CHARS`. */
  readonly weightChars?: number;
  /** The coefficient shown first; default the first of the sweep. */
  readonly initialCoefficient?: number;
}

type ExplorerResult = Pick<SweepResult, "config" | "runs" | "yTest" | "gridX">;

/** The decoder of every coefficient of a sweep, as float32. */
export function sweepDecoders(result: Pick<SweepResult, "config" | "runs">): DecoderWeights[] {
  return result.runs.map((run) => decoderWeightsFromFlat(run.weights, result.config));
}

/** Everything the explorer needs for one sweep: the page's spec and, per coefficient, the decoder the page runs. */
export interface Explorer {
  readonly spec: ExplorerSpec;
  /** Per coefficient: the float32 decoder and the page's (dequantised) decoder. */
  readonly decoders: readonly { readonly klCoefficient: number; readonly exact: DecoderWeights; readonly page: DecoderWeights; readonly window: [number, number] }[];
}

export function buildExplorer(result: ExplorerResult, options: ExplorerOptions = {}): Explorer {
  const weightChars = options.weightChars ?? EXPLORER_WEIGHT_CHARS;
  const initialIndex = options.initialCoefficient === undefined ? 0 : result.runs.findIndex((run) => run.klCoefficient === options.initialCoefficient);
  if (initialIndex < 0) {
    throw new RangeError(`initialCoefficient ${options.initialCoefficient} is not in the sweep (c in ${result.runs.map((run) => run.klCoefficient).join(", ")}).`);
  }
  const exact = sweepDecoders(result);
  const windows = result.runs.map((run) => explorerWindow(run.zMean, result.config.manifoldExtent));
  const packs = exact.map((weights, index) => packDecoder(weights, windows[index], weightChars));
  return {
    spec: {
      digitSide: Math.round(Math.sqrt(result.config.originalDim)),
      initialIndex,
      labels: Buffer.from(result.yTest).toString("base64"),
      coefficients: result.runs.map((run, index) => ({ klCoefficient: run.klCoefficient, window: windows[index], ...packPoints(run.zMean), decoder: packs[index].packed })),
    },
    decoders: result.runs.map((run, index) => ({ klCoefficient: run.klCoefficient, exact: exact[index], page: packs[index].decoder, window: windows[index] })),
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
    kept.forEach((row, i) => kept.forEach((col, j) => digits.set(run.manifold.subarray((row * n + col) * size, (row * n + col + 1) * size), (i * kept.length + j) * size)));
    const { width, height, pixels } = tileDigits(digits, kept.length, kept.length, Math.round(Math.sqrt(size)));
    // 16 grey levels (multiples of 17) deflate to about half the bytes of 256 and look the same at this size.
    const png = Buffer.from(encodeGreyPng(width, height, pixels.map((grey) => Math.round(grey / 17) * 17))).toString("base64");
    return `<figure style="margin:4px"><img alt="Decoder output for KL coefficient = ${run.klCoefficient}" src="data:image/png;base64,${png}" width="210" height="210"><figcaption style="text-align:center">c = ${run.klCoefficient}</figcaption></figure>`;
  });
  return `<p>Decoder output over [-3, 3]^2 for each coefficient (a static grid: the latent explorer needs scripts to run).</p><div style="display:flex;flex-wrap:wrap">${cells.join("")}</div>`;
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

/** Sizes and errors of the page's decoders, for the notebook and the README. */
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
  return { points, maxAbs: Math.max(...errors.map((e) => e.maxAbs)), meanAbs: errors.reduce((sum, e) => sum + e.meanAbs * e.points, 0) / points };
}

/** Every `stride`-th point of row-major [count, 2] codes, so that at most `count` remain. */
function samplePoints(zMean: Float32Array, count: number): Float32Array {
  const total = zMean.length / 2;
  const stride = Math.max(1, Math.ceil(total / count));
  return Float32Array.from({ length: Math.ceil(total / stride) * 2 }, (_, i) => zMean[2 * stride * Math.floor(i / 2) + (i % 2)]);
}

/**
 * Sizes and errors; the error at the test codes is measured on at most `testCodes` of them per
 * coefficient, evenly spread (every code costs two decodes in plain JavaScript).
 */
export function explorerSummary(result: ExplorerResult, explorer: Explorer, html: string, testCodes = 250): ExplorerSummary {
  return {
    weightChars: explorer.spec.coefficients.reduce((sum, c) => sum + packedSize(c.decoder), 0),
    htmlChars: html.length,
    float32Chars: explorer.decoders.reduce((sum, d) => sum + 4 * Math.ceil((4 * (d.exact.hiddenKernel.length + d.exact.hiddenBias.length + d.exact.outputKernel.length + d.exact.outputBias.length)) / 3), 0),
    atTestCodes: combine(explorer.decoders.map((d, i) => pixelError(d.exact, d.page, samplePoints(result.runs[i].zMean, testCodes)))),
    onWindowGrid: combine(explorer.decoders.map((d) => pixelError(d.exact, d.page, windowGrid(d.window, 15)))),
  };
}

/** One line for the notebook: what the explorer weighs and how far its decoders are from float32. */
export function describeExplorer(summary: ExplorerSummary): string {
  const megabytes = (chars: number) => `${(chars / 1e6).toFixed(2)} MB`;
  return (
    `Latent explorer: ${megabytes(summary.htmlChars)} in the page, of which ${megabytes(summary.weightChars)} of packed decoder weights ` +
    `(base64 float32 would be ${megabytes(summary.float32Chars)}); pixel error against the float32 decoders: mean ${summary.atTestCodes.meanAbs.toFixed(4)}, ` +
    `max ${summary.atTestCodes.maxAbs.toFixed(3)} at the test codes; mean ${summary.onWindowGrid.meanAbs.toFixed(4)}, max ${summary.onWindowGrid.maxAbs.toFixed(3)} over the windows.`
  );
}
