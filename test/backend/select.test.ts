import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend, parseBackendName } from "../../src/backend/select";
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

test("the VAE's gradients on real digits match the plain-JavaScript cpu backend", async () => {
  const data = loadMnist({ dataSource: "embedded", trainSize: 64, testSize: 1, seed: 5 });
  const gradients = (): Float32Array[] => {
    const model = buildModel(TUTORIAL_CONFIG);
    const x = tf.tensor2d(data.xTrain, [64, 784]);
    const epsilon = tf.tensor2d(
      new Float32Array(128).map((_, i) => Math.sin(i)),
      [64, 2],
    );
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
    assert.ok(
      diff <= 1e-3 * scale + 1e-6,
      `weight ${i}: max difference ${diff} against a largest gradient of ${scale}`,
    );
  });
});
