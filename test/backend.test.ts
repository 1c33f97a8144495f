import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend, parseBackendName } from "../src/backend";
import { FLOP_PER_SAMPLE } from "../src/bench";
import { TUTORIAL_CONFIG } from "../src/config";
import { loadMnist } from "../src/data";
import { buildModel, trainableVariables } from "../src/model";
import { forwardLoss } from "../src/train";

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
