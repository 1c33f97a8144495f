import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import { TUTORIAL_CONFIG } from "../../src/vae/config";
import { buildModel, reparameterize, setWeights, snapshotWeights } from "../../src/vae/model";
import { trainStep } from "../../src/vae/train";

before(async () => {
  await initBackend({ quiet: true });
});

describe("buildModel", () => {
  test("has the Keras example's shapes and parameter count", () => {
    const model = buildModel(TUTORIAL_CONFIG);
    const x = tf.zeros([3, 784]);
    const [zMean, zLogVar, z] = model.encoder.predict(x) as tf.Tensor[];
    assert.deepEqual(
      [zMean.shape, zLogVar.shape, z.shape],
      [
        [3, 2],
        [3, 2],
        [3, 2],
      ],
    );
    assert.deepEqual((model.decoder.predict(tf.zeros([5, 2])) as tf.Tensor).shape, [5, 784]);
    assert.deepEqual((model.vae.predict(x) as tf.Tensor).shape, [3, 784]);
    // encoder: 784*512 + 512, two heads of 512*2 + 2; decoder: 2*512 + 512, 512*784 + 784.
    const expected = 784 * 512 + 512 + 2 * (512 * 2 + 2) + (2 * 512 + 512) + (512 * 784 + 784);
    assert.equal(model.vae.countParams(), expected);
    assert.equal(expected, 807_700);
  });

  test("starts from Glorot-uniform kernels within sqrt(6 / (fanIn + fanOut)) and zero biases", () => {
    const weights = snapshotWeights(buildModel(TUTORIAL_CONFIG));
    const [kernel, bias] = weights;
    const limit = Math.sqrt(6 / (784 + 512));
    assert.ok(kernel.values.every((v) => Math.abs(v) <= limit));
    // A uniform on (-l, l) has variance l^2 / 3.
    const variance = kernel.values.reduce((s, v) => s + v * v, 0) / kernel.values.length;
    assert.ok(Math.abs(variance - (limit * limit) / 3) < 0.01 * limit * limit);
    assert.ok(bias.values.every((v) => v === 0));
  });

  test("the same seed builds the same weights; another seed does not", () => {
    const a = snapshotWeights(buildModel(TUTORIAL_CONFIG))[0].values;
    const b = snapshotWeights(buildModel(TUTORIAL_CONFIG))[0].values;
    const c = snapshotWeights(buildModel({ ...TUTORIAL_CONFIG, seed: 7 }))[0].values;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });
});

test("restoring the initial snapshot after training is exact, bit for bit", () => {
  const model = buildModel(TUTORIAL_CONFIG);
  const initial = snapshotWeights(model);
  const optimizer = tf.train.adam(1e-3);
  const x = tf.randomUniform([16, 784], 0, 1, "float32", 1) as tf.Tensor2D;
  trainStep(model, optimizer, x, tf.zeros([16, 2]) as tf.Tensor2D, 1);
  assert.notDeepEqual(snapshotWeights(model)[0].values, initial[0].values, "a step must change the weights");
  setWeights(model, initial);
  const restored = snapshotWeights(model);
  restored.forEach((w, i) => assert.deepEqual(w.values, initial[i].values, w.name));
});

test("reparameterize computes zMean + exp(zLogVar / 2) x epsilon", () => {
  // Variance 4 -> standard deviation 2; 1 + 2 x 0.5 = 2. Variance 1 -> 0 + 1 x (-3) = -3.
  const z = reparameterize(tf.tensor2d([[1, 0]]), tf.tensor2d([[Math.log(4), 0]]), tf.tensor2d([[0.5, -3]]));
  assert.deepEqual(
    Array.from(z.dataSync()).map((v) => Math.round(v * 1e5) / 1e5),
    [2, -3],
  );
});
