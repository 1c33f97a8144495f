import assert from "node:assert/strict";
import { test } from "node:test";
import { deflateSync } from "node:zlib";
import { initBackend } from "../../src/backend/select";
import { weightsFromFlat } from "../../src/experiment/sweep";
import {
  decodeReference,
  decoderWeightsFromFlat,
  dequantizeRows,
  errorBalancedSteps,
  explorerScriptSource,
  explorerWindow,
  flatWithDecoder,
  float32Base64,
  hiddenRms,
  packDecoder,
  packedSize,
  packPoints,
  pixelError,
  quantizeRows,
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
  return { latentDim: 2, hiddenDim: 512, outputDim: 784, hiddenKernel: fill(1024, 1), hiddenBias: fill(512, 0.5), outputKernel: fill(512 * 784, 0.1), outputBias: fill(784, 1) };
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
  assert.equal(decoder.hiddenKernel.length + decoder.hiddenBias.length + decoder.outputKernel.length + decoder.outputBias.length, 2 * 512 + 512 + 512 * 784 + 784);
  // Putting a decoder back changes the decoder's arrays only.
  const replaced = { ...decoder, outputBias: new Float32Array(784).fill(7) };
  const back = weightsFromFlat(model, flatWithDecoder(flat, replaced, dims));
  assert.deepEqual(back.find((w) => w.name === "decoder_output/bias")?.values, new Float32Array(784).fill(7));
  assert.deepEqual(back.find((w) => w.name === "encoder_hidden/kernel")?.values, byName("encoder_hidden/kernel"));
  assert.throws(() => decoderWeightsFromFlat(flat.subarray(1), dims), /hold 807699 values, but a 784-512-2 VAE has 807700/);
  model.vae.dispose();
});

test("rows are quantised with their own step, never clipped, and dequantised exactly", () => {
  // Row 0: step 0.25 gives codes 128 + (2, -4, 1). Row 1 asks 0.001 but 1.0 would need 1000 steps: its
  // step becomes 1/127. Row 2 is all zeros; row 3 has step 0 (a unit that is off).
  const matrix = Float32Array.from([0.5, -1, 0.25, 1, -0.5, 0, 0, 0, 0, 3, 3, 3]);
  const q = quantizeRows(matrix, 4, 3, Float32Array.from([0.25, 0.001, 0.5, 0]));
  assert.deepEqual(Array.from(q.codes), [130, 124, 129, 255, 128 - 64, 128, 128, 128, 128, 128, 128, 128]);
  assert.deepEqual(Array.from(q.step), [0.25, Math.fround(1 / 127), 0, 0]);
  const values = dequantizeRows(q);
  assert.deepEqual(Array.from(values.subarray(0, 3)), [0.5, -1, 0.25]);
  assert.ok(Math.abs(values[3] - 1) < 1e-6 && Math.abs(values[4] + 64 / 127) < 1e-6);
  assert.deepEqual(Array.from(values.subarray(6)), [0, 0, 0, 0, 0, 0]);
  assert.throws(() => quantizeRows(Float32Array.from([NaN]), 1, 1, Float32Array.from([1])), /non-finite value \(NaN\) at row 0, column 0/);
  assert.throws(() => quantizeRows(matrix, 4, 3, new Float32Array(3)), /4 rows but 3 steps/);
});

test("each hidden unit's step is inversely proportional to its RMS activation over the window", () => {
  assert.deepEqual(Array.from(errorBalancedSteps(Float64Array.from([2, 0, 0.5]), 1)), [0.5, 0, 2]);
  // Unit 0 of this decoder is relu(z0) (kernel (1, 0), bias 0); over the 31 x 31 grid of [-1, 1]^2 the
  // mean of relu(z0)^2 is (1/31) sum_{k=1..15} (k/15)^2 = (1/31) (15 * 16 * 31 / 6) / 225 = 1240 / 6975.
  // Unit 1 is relu(z0 + z1 - 3): below 0 at every corner, so off in the whole window.
  const decoder = { ...TINY, hiddenKernel: Float32Array.from([1, 1, 0, 1]), hiddenBias: Float32Array.from([0, -3]) };
  const rms = hiddenRms(decoder, [-1, 1]);
  assert.ok(Math.abs(rms[0] - Math.sqrt(1240 / 6975)) < 1e-6, `rms ${rms[0]}`);
  assert.equal(rms[1], 0);
});

test("the reference decoder computes sigmoid(relu(z W1 + b1) W2 + b2)", () => {
  // z = (1, 0.5): hidden = relu([1 + 1 + 0.5, -1 + 0.5 - 1]) = [2.5, 0]; logits = [2.5, -5 + 1, -1].
  const pixels = decodeReference(TINY, Float32Array.from([1, 0.5]));
  [sigmoid(2.5), sigmoid(-4), sigmoid(-1)].forEach((expected, i) => assert.ok(Math.abs(pixels[i] - expected) < 1e-7));
});

test("a packed decoder fits its budget, and a larger budget gives a smaller error", () => {
  const decoder = randomDecoder(5);
  const window: [number, number] = [-3, 3];
  const z = windowGrid(window, 8);
  const small = packDecoder(decoder, window, 150_000);
  const large = packDecoder(decoder, window, 350_000);
  assert.ok(packedSize(small.packed) <= 150_000 && packedSize(large.packed) <= 350_000);
  // The search spends most of the budget: a coarser packing would not have been needed.
  assert.ok(packedSize(large.packed) > 0.9 * 350_000, `large packing uses ${packedSize(large.packed)}`);
  const smallError = pixelError(decoder, small.decoder, z);
  const largeError = pixelError(decoder, large.decoder, z);
  assert.ok(largeError.meanAbs < smallError.meanAbs / 2, `${largeError.meanAbs} vs ${smallError.meanAbs}`);
  assert.ok(largeError.meanAbs > 0, "a quantised decoder is not the float32 one");
  assert.throws(() => packDecoder(decoder, window, 1000), /cannot be packed in 1000 characters/);
});

test("the page unpacks exactly the dequantised weights of the kernel side and decodes as the reference", async () => {
  const page = pageApi();
  const decoder = randomDecoder(8);
  const { packed, decoder: expected } = packDecoder(decoder, [-4, 4], 200_000);
  const unpacked = await page.unpackDecoder(packed);
  assert.equal(unpacked.outputKernel.length, 512 * 784);
  let mismatches = 0;
  for (let i = 0; i < expected.outputKernel.length; i++) if (unpacked.outputKernel[i] !== expected.outputKernel[i]) mismatches++;
  assert.equal(mismatches, 0, "every float32 weight bit-identical");
  const z = [1.25, -0.75];
  const reference = decodeReference(expected, Float32Array.from(z));
  const pixels = page.decode(unpacked, z);
  assert.ok(Math.max(...pixels.map((p, i) => Math.abs(p - reference[i]))) < 1e-6);
  // Against the hand-computed tiny decoder too: z = (1, 0.5) gives sigmoid([2.5, -4, -1]).
  const tiny = page.decode({ ...TINY }, [1, 0.5]);
  [sigmoid(2.5), sigmoid(-4), sigmoid(-1)].forEach((value, i) => assert.ok(Math.abs(tiny[i] - value) < 1e-7));
  // A packed decoder whose codes do not match its size is refused.
  await assert.rejects(page.unpackDecoder({ ...packed, codes: deflateSync(new Uint8Array(10)).toString("base64") }), /holds 10 codes, not 401408/);
});

test("the page's path has 10 evenly spaced points from the first click to the second", () => {
  const page = pageApi();
  const path = page.linePath([0, 1], [9, -8], 10);
  assert.deepEqual(path.map((p) => p.map((v) => Math.round(v * 1e9) / 1e9)), Array.from({ length: 10 }, (_, i) => [i, 1 - i]));
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
  assert.deepEqual(Array.from(codes), [Math.round(0.5 / pointScale), -32767, Math.round(2 / pointScale), Math.round(1 / pointScale)]);
  // The window holds [-3, 3]^2 and every code with 5% to spare: 4 * 1.05 = 4.2.
  assert.deepEqual(explorerWindow(zMean), [-4.2, 4.2]);
  assert.deepEqual(explorerWindow(Float32Array.from([0.1, -0.2])), [-3, 3]);
  assert.deepEqual(Array.from(windowGrid([-1, 1], 2)), [-1, 1, 1, 1, -1, -1, 1, -1]);
});
