import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { DENORMAL_FLUSH_EVERY, flushDenormals, kerasAdam } from "../src/optimizer";
import { Random } from "../src/random";

before(async () => {
  await initBackend({ quiet: true });
});

test("one step by hand: g = 2 on w = 1 from zero moments moves w by almost exactly the learning rate", () => {
  // m = 0.1 * 2 = 0.2; v = 0.001 * 4 = 0.004; alpha = 1e-3 * sqrt(1 - 0.999) / (1 - 0.9) = 3.16228e-4;
  // w = 1 - alpha * 0.2 / (sqrt(0.004) + 1e-7) = 1 - 3.16228e-4 * 3.16227 = 1 - 0.000999998.
  const w = tf.variable(tf.tensor1d([1]), true, "hand/w");
  const optimizer = kerasAdam(1e-3);
  optimizer.applyGradients({ "hand/w": tf.tensor1d([2]) });
  const alpha = (1e-3 * Math.sqrt(0.001)) / 0.1;
  assert.ok(Math.abs(w.dataSync()[0] - (1 - (alpha * 0.2) / (Math.sqrt(0.004) + 1e-7))) < 1e-7);
  assert.ok(Math.abs(w.dataSync()[0] - 0.999) < 1e-6);
  optimizer.dispose();
  w.dispose();
});

test("five steps on three weight arrays match Keras's formula evaluated in float64", () => {
  const random = new Random(3);
  const shapes = [[3, 4], [5], [784, 512]];
  const initial = shapes.map((shape) => random.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1)), -1, 1));
  const variables = shapes.map((shape, i) => tf.variable(tf.tensor(initial[i], shape), true, `ref/${i}`));
  const optimizer = kerasAdam(2e-3);
  const w = initial.map((a) => Float64Array.from(a));
  const m = initial.map((a) => new Float64Array(a.length));
  const v = initial.map((a) => new Float64Array(a.length));
  for (let t = 1; t <= 5; t++) {
    const gradients = shapes.map((_, i) => random.fillNormal(new Float32Array(initial[i].length)).map((g) => g * 10 ** (t - 3)));
    optimizer.applyGradients(Object.fromEntries(gradients.map((g, i) => [`ref/${i}`, tf.tensor(g, shapes[i])])));
    const alpha = (2e-3 * Math.sqrt(1 - 0.999 ** t)) / (1 - 0.9 ** t);
    gradients.forEach((g, i) =>
      g.forEach((gj, j) => {
        m[i][j] += (gj - m[i][j]) * 0.1;
        v[i][j] += (gj * gj - v[i][j]) * 0.001;
        w[i][j] -= (alpha * m[i][j]) / (Math.sqrt(v[i][j]) + 1e-7);
      }),
    );
  }
  variables.forEach((variable, i) => {
    const actual = variable.dataSync();
    w[i].forEach((expected, j) => assert.ok(Math.abs(actual[j] - expected) <= 1e-6 * (1 + Math.abs(expected)), `weight ${i}[${j}]: ${actual[j]} vs ${expected}`));
  });
  optimizer.dispose();
  tf.dispose(variables);
});

test("denormals are flushed to zero, normal floats kept", () => {
  const x = tf.tensor1d([1e-39, -1e-39, 1e-37, -1e-37, 0, 2, -3]);
  assert.ok(x.dataSync()[0] > 0, "the input really holds a denormal float32");
  // -1e-39 becomes -0 (= 0).
  assert.deepEqual(Array.from(flushDenormals(x).dataSync()).map((v) => v + 0), Array.from(new Float32Array([0, 0, 1e-37, -1e-37, 0, 2, -3])));
});

test(`after ${DENORMAL_FLUSH_EVERY} steps of zero gradient, a moment that decayed into denormals is exactly 0`, async () => {
  const w = tf.variable(tf.tensor1d([1]), true, "decay/w");
  const optimizer = kerasAdam(1e-3);
  optimizer.applyGradients({ "decay/w": tf.tensor1d([1e-36]) });
  // m = 1e-37 after the first step; 0.9^k later it is denormal (below 1.18e-38) from k = 21 on.
  for (let t = 2; t < DENORMAL_FLUSH_EVERY; t++) optimizer.applyGradients({ "decay/w": tf.tensor1d([0]) });
  const moments = async () => Object.fromEntries((await optimizer.getWeights()).map(({ name, tensor }) => [name, tensor.dataSync()[0]]));
  const before = await moments();
  assert.ok(before["decay/w/m"] > 0 && before["decay/w/m"] < 1.18e-38, `m should be denormal before the flush; got ${before["decay/w/m"]}`);
  optimizer.applyGradients({ "decay/w": tf.tensor1d([0]) });
  assert.equal((await moments())["decay/w/m"], 0);
  optimizer.dispose();
  w.dispose();
});

test("weights and moments round-trip: a restored optimizer continues exactly", async () => {
  const a = tf.variable(tf.tensor1d([0.5, -0.25]), true, "trip/a");
  const first = kerasAdam(1e-2);
  first.applyGradients({ "trip/a": tf.tensor1d([1, 2]) });
  const afterOne = a.dataSync().slice();
  const saved = (await first.getWeights()).map(({ name, tensor }) => ({ name, tensor: tensor.clone() }));
  first.applyGradients({ "trip/a": tf.tensor1d([-1, 3]) });
  const expected = Array.from(a.dataSync());
  first.dispose();
  a.assign(tf.tensor1d(afterOne));
  const restored = kerasAdam(1e-2);
  await restored.setWeights(saved);
  assert.equal(restored.iterations, 1);
  restored.applyGradients({ "trip/a": tf.tensor1d([-1, 3]) });
  assert.deepEqual(Array.from(a.dataSync()), expected);
  restored.dispose();
  // A fresh optimizer (no moments, t = 1) lands elsewhere: the restore mattered.
  a.assign(tf.tensor1d(afterOne));
  const fresh = kerasAdam(1e-2);
  fresh.applyGradients({ "trip/a": tf.tensor1d([-1, 3]) });
  assert.notDeepEqual(Array.from(a.dataSync()), expected);
  fresh.dispose();
  a.dispose();
});

test("memory stays flat over training steps", () => {
  const w = tf.variable(tf.randomNormal([64, 32]), true, "flat/w");
  const x = tf.randomNormal([8, 64]);
  const optimizer = kerasAdam(1e-3);
  const step = () => optimizer.minimize(() => tf.mean(tf.square(tf.matMul(x, w))) as tf.Scalar, false, [w]);
  step();
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 40; i++) step();
  assert.equal(tf.memory().numTensors, tensors);
  optimizer.dispose();
  tf.dispose([w, x]);
});
