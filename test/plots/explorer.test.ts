import assert from "node:assert/strict";
import { test } from "node:test";
import { deflateSync } from "node:zlib";
import { initBackend } from "../../src/backend/select";
import { weightsFromFlat } from "../../src/experiment/sweep";
import {
  decodeReference,
  decoderWeightsFromFlat,
  dequantizeColumns,
  explorerScriptSource,
  explorerWindow,
  flatWithDecoder,
  float32Base64,
  logitBasis,
  lowRankProduct,
  orthonormalizeColumns,
  packDecoder,
  packedSize,
  packPoints,
  pixelError,
  quantizeColumns,
  windowGrid,
  type DecoderWeights,
} from "../../src/plots/explorer";
import { buildModel, snapshotWeights } from "../../src/vae/model";
import { Random } from "../../src/vae/random";

interface PageDecoder {
  hiddenDim: number;
  outputKernel: Float32Array;
}
interface PageApi {
  base64Float32(text: string): Float32Array;
  unpackDecoder(packed: unknown): Promise<PageDecoder>;
  decode(decoder: unknown, z: number[]): Float32Array;
  linePath(from: number[], to: number[], steps: number): number[][];
  decodePath(decoder: unknown, from: number[], to: number[], steps: number): Float32Array[];
}

/** The page script's own text, evaluated here as the browser evaluates it (no window: nothing mounts). */
function pageApi(): PageApi {
  return new Function(`${explorerScriptSource()}\nreturn VaeExplorer;`)() as PageApi;
}

/** A decoder with 2 latent dims, 2 hidden units and 3 pixels, small enough to decode by hand. */
const TINY: DecoderWeights = {
  latentDim: 2,
  hiddenDim: 2,
  outputDim: 3,
  // hidden = relu([z0 + 2 z1 + 0.5, -z0 + z1 - 1])
  hiddenKernel: Float32Array.from([1, -1, 2, 1]),
  hiddenBias: Float32Array.from([0.5, -1]),
  // logits = hidden[0] * [1, -2, 0] + hidden[1] * [0.5, 0.5, 3] + [0, 1, -1]
  outputKernel: Float32Array.from([1, -2, 0, 0.5, 0.5, 3]),
  outputBias: Float32Array.from([0, 1, -1]),
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** A decoder of the tutorial's size with seeded weights. */
function randomDecoder(seed: number): DecoderWeights {
  const random = new Random(seed);
  const fill = (size: number, scale: number) => random.fillNormal(new Float32Array(size)).map((v) => v * scale);
  return {
    latentDim: 2,
    hiddenDim: 512,
    outputDim: 784,
    hiddenKernel: fill(1024, 1),
    hiddenBias: fill(512, 0.5),
    outputKernel: fill(512 * 784, 0.1),
    outputBias: fill(784, 1),
  };
}

test("the decoder's arrays are the last four of a run's flat weights, as the model names them", async () => {
  await initBackend({ backend: "cpu", quiet: true });
  const dims = { originalDim: 784, intermediateDim: 512, latentDim: 2, seed: 3 };
  const model = buildModel(dims);
  const named = snapshotWeights(model);
  const flat = Float32Array.from(named.flatMap((w) => Array.from(w.values)));
  const decoder = decoderWeightsFromFlat(flat, dims);
  const byName = (name: string) => (named.find((w) => w.name === name) as { values: Float32Array }).values;
  assert.deepEqual(decoder.hiddenKernel, byName("decoder_hidden/kernel"));
  assert.deepEqual(decoder.hiddenBias, byName("decoder_hidden/bias"));
  assert.deepEqual(decoder.outputKernel, byName("decoder_output/kernel"));
  assert.deepEqual(decoder.outputBias, byName("decoder_output/bias"));
  assert.equal(
    decoder.hiddenKernel.length + decoder.hiddenBias.length + decoder.outputKernel.length + decoder.outputBias.length,
    2 * 512 + 512 + 512 * 784 + 784,
  );
  // Putting a decoder back changes the decoder's arrays only.
  const replaced = { ...decoder, outputBias: new Float32Array(784).fill(7) };
  const back = weightsFromFlat(model, flatWithDecoder(flat, replaced, dims));
  assert.deepEqual(back.find((w) => w.name === "decoder_output/bias")?.values, new Float32Array(784).fill(7));
  assert.deepEqual(back.find((w) => w.name === "encoder_hidden/kernel")?.values, byName("encoder_hidden/kernel"));
  assert.throws(
    () => decoderWeightsFromFlat(flat.subarray(1), dims),
    /hold 807699 values, but a 784-512-2 VAE has 807700/,
  );
  model.vae.dispose();
});

test("columns are quantised over their own range and dequantised exactly", () => {
  // Column 0 spans [0, 3] and column 1 [10, 40]: with 2 bits (3 steps) the steps are 1 and 10.
  const matrix = Float32Array.from([0, 10, 1, 20, 3, 40]);
  const q = quantizeColumns(matrix, 3, 2, 2);
  assert.deepEqual(Array.from(q.codes), [0, 0, 1, 1, 3, 3]);
  assert.deepEqual(Array.from(q.step), [1, 10]);
  assert.deepEqual(Array.from(dequantizeColumns(q)), Array.from(matrix));
  // With 1 bit, column 0's step is 3: 1 rounds to 0 (1/3 of a step), 3 stays.
  assert.deepEqual(Array.from(dequantizeColumns(quantizeColumns(matrix, 3, 2, 1))), [0, 10, 0, 10, 3, 40]);
  // A constant column needs no step.
  assert.deepEqual(Array.from(dequantizeColumns(quantizeColumns(Float32Array.from([5, 5]), 2, 1, 4))), [5, 5]);
  assert.throws(
    () => quantizeColumns(Float32Array.from([NaN]), 1, 1, 8),
    /non-finite value \(NaN\) at row 0, column 0/,
  );
  assert.throws(() => quantizeColumns(matrix, 3, 2, 17), /bits must be a whole number from 1 to 16/);
});

test("Gram-Schmidt and the low-rank product, by hand", () => {
  // Columns (3, 4) and (1, 2): the first normalises to (0.6, 0.8); the second loses 2.2 times it,
  // (1 - 1.32, 2 - 1.76) = (-0.32, 0.24), of length 0.4: (-0.8, 0.6).
  const matrix = Float64Array.from([3, 1, 4, 2]);
  orthonormalizeColumns(matrix, 2, 2);
  [0.6, -0.8, 0.8, 0.6].forEach((value, i) => assert.ok(Math.abs(matrix[i] - value) < 1e-12));
  // [1, 2] times [[3, 4], [5, 6]] transposed: [1 * 3 + 2 * 4, 1 * 5 + 2 * 6] = [11, 17].
  assert.deepEqual(
    Array.from(lowRankProduct(Float32Array.from([1, 2]), Float32Array.from([3, 4, 5, 6]), 1, 2, 2)),
    [11, 17],
  );
});

/** A decoder of the tutorial's size whose output kernel has rank `rank` exactly. */
function lowRankDecoder(seed: number, rank: number): DecoderWeights {
  const random = new Random(seed);
  const left = random.fillNormal(new Float32Array(512 * rank)).map((v) => v * 0.3);
  const right = random.fillNormal(new Float32Array(784 * rank)).map((v) => v * 0.3);
  return { ...randomDecoder(seed), outputKernel: lowRankProduct(left, right, 512, 784, rank) };
}

test("the logit basis is orthonormal and holds an output kernel of that rank entirely", () => {
  const decoder = lowRankDecoder(4, 5);
  const z = windowGrid([-3, 3], 12);
  const basis = logitBasis(decoder, z, 5);
  for (let a = 0; a < 5; a++) {
    for (let b = 0; b < 5; b++) {
      let dot = 0;
      for (let r = 0; r < 784; r++) dot += basis[r * 5 + a] * basis[r * 5 + b];
      assert.ok(Math.abs(dot - (a === b ? 1 : 0)) < 1e-9, `column ${a} . column ${b} = ${dot}`);
    }
  }
  // W2 V V^T = W2 when the kernel's rows lie in the span of V: the packed decoder at 16 bits is then
  // the float32 decoder up to rounding.
  const { packed, decoder: page } = packDecoder(decoder, z, { rank: 5, bits: 16 });
  assert.ok(pixelError(decoder, page, z).maxAbs < 1e-3, `max pixel error ${pixelError(decoder, page, z).maxAbs}`);
  // Two factors of 16-bit codes, (512 + 784) x 5 x 2 = 12,960 bytes, and the float32 arrays kept as
  // they are, (2 x 512 + 512 + 784) x 4 = 9,280 bytes: at most 22,240 bytes + the 20 steps and lows,
  // 29,760 characters of base64 with deflate gaining nothing, against 2,153,216 for the float32 decoder.
  assert.ok(
    packedSize(packed) <= 29_760 + 4 * Math.ceil((2 * 10 * 4) / 3) + 200,
    `packed in ${packedSize(packed)} characters`,
  );
  assert.throws(() => logitBasis(decoder, z, 0), /rank must be a whole number from 1 to 784/);
});

test("the reference decoder computes sigmoid(relu(z W1 + b1) W2 + b2)", () => {
  // z = (1, 0.5): hidden = relu([1 + 1 + 0.5, -1 + 0.5 - 1]) = [2.5, 0]; logits = [2.5, -5 + 1, -1].
  const pixels = decodeReference(TINY, Float32Array.from([1, 0.5]));
  [sigmoid(2.5), sigmoid(-4), sigmoid(-1)].forEach((expected, i) => assert.ok(Math.abs(pixels[i] - expected) < 1e-7));
});

test("the page unpacks exactly the dequantised weights of the kernel side and decodes as the reference", async () => {
  const page = pageApi();
  const decoder = randomDecoder(8);
  const { packed, decoder: expected } = packDecoder(decoder, windowGrid([-4, 4], 10));
  const unpacked = await page.unpackDecoder(packed);
  assert.equal(unpacked.outputKernel.length, 512 * 784);
  let mismatches = 0;
  for (let i = 0; i < expected.outputKernel.length; i++)
    if (unpacked.outputKernel[i] !== expected.outputKernel[i]) mismatches++;
  assert.equal(mismatches, 0, "every float32 weight bit-identical");
  const z = [1.25, -0.75];
  const reference = decodeReference(expected, Float32Array.from(z));
  const pixels = page.decode(unpacked, z);
  assert.ok(Math.max(...pixels.map((p, i) => Math.abs(p - reference[i]))) < 1e-6);
  // Against the hand-computed tiny decoder too: z = (1, 0.5) gives sigmoid([2.5, -4, -1]).
  const tiny = page.decode({ ...TINY }, [1, 0.5]);
  [sigmoid(2.5), sigmoid(-4), sigmoid(-1)].forEach((value, i) => assert.ok(Math.abs(tiny[i] - value) < 1e-7));
  // A packed decoder whose codes do not match its size is refused.
  await assert.rejects(
    page.unpackDecoder({ ...packed, codes: deflateSync(new Uint8Array(20)).toString("base64") }),
    /holds 10 codes, not 62208/,
  );
});

test("the page's path has 10 evenly spaced points from the first click to the second", () => {
  const page = pageApi();
  const path = page.linePath([0, 1], [9, -8], 10);
  assert.deepEqual(
    path.map((p) => p.map((v) => Math.round(v * 1e9) / 1e9)),
    Array.from({ length: 10 }, (_, i) => [i, 1 - i]),
  );
  const digits = page.decodePath({ ...TINY }, [1, 0.5], [0, 0], 10);
  assert.equal(digits.length, 10);
  // z = (0, 0): hidden = relu([0.5, -1]) = [0.5, 0]; logits = [0.5, 0, -1].
  [sigmoid(0.5), sigmoid(0), sigmoid(-1)].forEach((value, i) => assert.ok(Math.abs(digits[9][i] - value) < 1e-7));
  [sigmoid(2.5), sigmoid(-4), sigmoid(-1)].forEach((value, i) => assert.ok(Math.abs(digits[0][i] - value) < 1e-7));
});

test("base64 float32, test codes and windows survive the trip to the page", () => {
  const page = pageApi();
  const values = Float32Array.from([1.5, -2.25, 3.4028234663852886e38, 1e-40]);
  assert.deepEqual(page.base64Float32(float32Base64(values)), values);
  const zMean = Float32Array.from([0.5, -4, 2, 1]);
  const { points, pointScale } = packPoints(zMean);
  assert.equal(pointScale, 4 / 32767);
  const codes = new Int16Array(Uint8Array.from(Buffer.from(points, "base64")).buffer);
  assert.deepEqual(Array.from(codes), [
    Math.round(0.5 / pointScale),
    -32767,
    Math.round(2 / pointScale),
    Math.round(1 / pointScale),
  ]);
  // The window holds [-3, 3]^2 and every code with 5% to spare: 4 * 1.05 = 4.2.
  assert.deepEqual(explorerWindow(zMean), [-4.2, 4.2]);
  assert.deepEqual(explorerWindow(Float32Array.from([0.1, -0.2])), [-3, 3]);
  assert.deepEqual(Array.from(windowGrid([-1, 1], 2)), [-1, 1, 1, 1, -1, -1, 1, -1]);
});
