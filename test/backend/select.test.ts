import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend, parseBackendName } from "../../src/backend/select";
import { FLOP_PER_SAMPLE } from "../../src/experiment/bench";
import { TUTORIAL_CONFIG } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";
import { buildModel, trainableVariables } from "../../src/vae/model";
import { forwardLoss } from "../../src/vae/train";

before(async () => {
  await initBackend({ quiet: true });
});

test("backend names: aliases and a clear error", () => {
  assert.equal(parseBackendName("tfjs-node"), "tensorflow");
  assert.equal(parseBackendName(" WASM "), "wasm");
  assert.equal(parseBackendName(undefined), undefined);
  assert.throws(() => parseBackendName("gpu"), /Unknown backend "gpu"; use one of: tensorflow, wasm, cpu/);
});

test("transposed products equal the products of explicitly transposed operands", () => {
  const a = tf.randomNormal([128, 784], 0, 1, "float32", 1);
  const w = tf.randomNormal([512, 784], 0, 1, "float32", 2);
  const g = tf.randomNormal([128, 512], 0, 1, "float32", 3);
  const same = (x: tf.Tensor, y: tf.Tensor) => assert.deepEqual(x.dataSync(), y.dataSync());
  same(tf.matMul(a, w, false, true), tf.matMul(a, tf.transpose(w)));
  same(tf.matMul(a, g, true, false), tf.matMul(tf.transpose(a), g));
  same(tf.matMul(g, a, true, false), tf.matMul(tf.transpose(g), a));
  const b = tf.randomNormal([64, 128], 0, 1, "float32", 4);
  same(tf.matMul(g, b, true, true), tf.matMul(tf.transpose(g), tf.transpose(b)));
});

test("sums over leading axes (the bias gradients) equal float64 sums by hand, in every shape tfjs asks for", () => {
  const values = Float32Array.from({ length: 3 * 5 * 7 }, (_, i) => Math.sin(i) * 100 + i / 7);
  const byHand = (rows: number, cols: number) =>
    Array.from({ length: cols }, (_, c) => Array.from({ length: rows }, (_, r) => values[r * cols + c]).reduce((p, v) => p + v, 0));
  const near = (actual: tf.Tensor, expected: number[], shape: number[]) => {
    assert.deepEqual(actual.shape, shape);
    actual.dataSync().forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= 1e-4, `column ${i}: ${v} vs ${expected[i]}`));
  };
  const x = tf.tensor2d(values.subarray(0, 15 * 7), [15, 7]);
  near(tf.sum(x, 0), byHand(15, 7), [7]);
  near(tf.sum(x, -2, true), byHand(15, 7), [1, 7]);
  near(tf.sum(tf.tensor3d(values, [3, 5, 7]), [0, 1]), byHand(15, 7), [7]);
  near(tf.sum(tf.tensor3d(values, [3, 5, 7]), [1, 0], true), byHand(15, 7), [1, 1, 7]);
  near(tf.sum(tf.tensor3d(values, [3, 5, 7]), 0), byHand(3, 35), [5, 7]);
  // Not leading axes: the stock kernel, still right.
  near(tf.sum(x, 1), Array.from({ length: 15 }, (_, r) => Array.from({ length: 7 }, (_, c) => values[r * 7 + c]).reduce((p, v) => p + v, 0)), [15]);
});

test("the VAE's gradients on real digits match the plain-JavaScript cpu backend", async () => {
  const data = loadMnist({ dataSource: "embedded", trainSize: 64, testSize: 1, seed: 5 });
  const gradients = (): Float32Array[] => {
    const model = buildModel(TUTORIAL_CONFIG);
    const x = tf.tensor2d(data.xTrain, [64, 784]);
    const epsilon = tf.tensor2d(new Float32Array(128).map((_, i) => Math.sin(i)), [64, 2]);
    const { grads } = tf.variableGrads(() => forwardLoss(model, x, epsilon, 1).total, trainableVariables(model));
    const values = Object.values(grads).map((grad) => Float32Array.from(grad.dataSync()));
    model.vae.dispose();
    return values;
  };
  const active = tf.getBackend();
  const fast = gradients();
  await tf.setBackend("cpu");
  const reference = gradients();
  await tf.setBackend(active);
  assert.equal(fast.length, reference.length);
  fast.forEach((grad, i) => {
    let scale = 0;
    let diff = 0;
    grad.forEach((v, j) => {
      scale = Math.max(scale, Math.abs(reference[i][j]));
      diff = Math.max(diff, Math.abs(v - reference[i][j]));
    });
    assert.ok(diff <= 1e-3 * scale + 1e-6, `weight ${i}: max difference ${diff} against a largest gradient of ${scale}`);
  });
});

test("the benchmark's FLOP count per sample, by hand", () => {
  // Forward multiply-adds 784*512 + 2*(512*2) + 2*512 + 512*784 = 805,888; weight gradients the same;
  // input gradients of all but the first layer 2*(512*2) + 2*512 + 512*784 = 404,480; 2 FLOP each.
  assert.equal(FLOP_PER_SAMPLE, 2 * (805_888 + 805_888 + 404_480));
  assert.equal(FLOP_PER_SAMPLE, 4_032_512);
});

test("Identity shares its input's buffer: a clone keeps its values after the source is gone, and nothing is left over", () => {
  assert.equal(tf.getBackend(), "wasm");
  const backend = tf.engine().backend as unknown as { numDataIds(): number };
  const buffers = backend.numDataIds();
  const source = tf.tensor2d([1.5, -2, 3.25, 0], [2, 2]);
  const copy = tf.clone(source);
  assert.equal(backend.numDataIds(), buffers + 1, "the clone made a second buffer");
  source.dispose();
  assert.deepEqual(Array.from(copy.dataSync()), [1.5, -2, 3.25, 0]);
  copy.dispose();
  assert.equal(backend.numDataIds(), buffers, "the shared buffer was not freed with its last tensor");
  // A variable's value is replaced, never overwritten: a clone taken before an assign keeps the old value.
  const variable = tf.variable(tf.tensor1d([1, 2]));
  const before = tf.clone(variable);
  variable.assign(tf.tensor1d([7, 8]));
  assert.deepEqual(Array.from(before.dataSync()), [1, 2]);
  assert.deepEqual(Array.from(variable.dataSync()), [7, 8]);
  tf.dispose([variable, before]);
});
