import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import { sweepKey } from "../../src/experiment/sweep";
import { TUTORIAL_CONFIG } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";
import { buildModel, snapshotWeights, setWeights, trainableVariables, type Vae } from "../../src/vae/model";
import { kerasAdam } from "../../src/vae/optimizer";
import { Random } from "../../src/vae/random";
import {
  FUSED_GRADIENTS_ENV,
  fusedGradientsWanted,
  fusedLossGradients,
  fusedTrainStep,
  hasFusedGradients,
  setFusedGradients,
  VAE_GRADIENTS_KERNEL,
  VAE_TRAIN_STEP_KERNEL,
} from "../../src/backend/fusedTrainStep";
import { forwardLoss, trainStep } from "../../src/vae/train";

before(async () => {
  await initBackend({ backend: "wasm", quiet: true });
});

const data = loadMnist({ dataSource: "embedded", trainSize: 512, testSize: 1, seed: 5 });

function batch(rows: number, offset = 0): { x: tf.Tensor2D; epsilon: tf.Tensor2D } {
  return {
    x: tf.tensor2d(data.xTrain.subarray(offset * 784, (offset + rows) * 784), [rows, 784]),
    epsilon: tf.tensor2d(new Random(rows + offset).fillNormal(new Float32Array(rows * 2)), [rows, 2]),
  };
}

/** A model a few Adam steps into training (so that ReLUs are dead and alive, and the latent layers not at their start). */
function trainedModel(): Vae {
  const model = buildModel(TUTORIAL_CONFIG);
  const optimizer = kerasAdam(1e-3);
  const previous = setFusedGradients(false);
  for (let step = 0; step < 6; step++) {
    const { x, epsilon } = batch(64, 64 * step);
    trainStep(model, optimizer, x, epsilon, 1);
    tf.dispose([x, epsilon]);
  }
  setFusedGradients(previous);
  optimizer.dispose();
  return model;
}

/** The largest difference between two arrays, relative to the larger magnitude found in either. */
function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]), Math.abs(b[i]));
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  return scale === 0 ? 0 : worst / scale;
}

test("the kernel is registered on wasm, and VAE_FUSED_GRADIENTS switches it, naming itself when wrong", () => {
  assert.ok(hasFusedGradients("wasm"));
  assert.equal(hasFusedGradients("tensorflow"), false);
  assert.equal(fusedGradientsWanted({}), true);
  assert.equal(fusedGradientsWanted({ [FUSED_GRADIENTS_ENV]: "0" }), false);
  assert.throws(
    () => fusedGradientsWanted({ [FUSED_GRADIENTS_ENV]: "off" }),
    /VAE_FUSED_GRADIENTS must be 0 .* or 1 .*got "off"/,
  );
  const data = { fingerprint: "f" };
  assert.notEqual(
    sweepKey(TUTORIAL_CONFIG, data, { name: "wasm", fma: false, fusedGradients: true }),
    sweepKey(TUTORIAL_CONFIG, data, { name: "wasm", fma: false, fusedGradients: false }),
    "the two ways of differentiating have keys of their own",
  );
});

for (const c of [0, 1, 20]) {
  test(`c = ${c}: the terms and all ten gradients agree with tfjs's automatic differentiation of forwardLoss`, (t) => {
    const model = trainedModel();
    const { x, epsilon } = batch(128, 100);
    const variables = trainableVariables(model);
    const { terms, gradients } = fusedLossGradients(model, x, epsilon, c);
    const want = tf.variableGrads(() => forwardLoss(model, x, epsilon, c).total, variables);
    const wantTerms = tf.tidy(() => {
      const loss = forwardLoss(model, x, epsilon, c);
      return [loss.reconstruction, loss.kl, loss.total].map((s) => s.dataSync()[0]);
    });
    const got = terms.dataSync();
    for (const [i, name] of ["reconstruction", "kl", "total"].entries()) {
      assert.ok(
        Math.abs(got[i] - wantTerms[i]) <= 1e-5 * Math.abs(wantTerms[i]) + 1e-6,
        `${name}: ${got[i]} vs ${wantTerms[i]}`,
      );
    }
    assert.deepEqual(Object.keys(gradients).sort(), Object.keys(want.grads).sort());
    const report: string[] = [];
    for (const variable of variables) {
      const fused = gradients[variable.name];
      const tape = want.grads[variable.name];
      assert.deepEqual(fused.shape, tape.shape, variable.name);
      const difference = relativeDifference(fused.dataSync(), tape.dataSync());
      // Float32 sums in another order: within a few units in the 7th digit of the largest element (seen: 4e-7).
      assert.ok(
        difference <= 2e-6,
        `${variable.name}: differs by ${difference.toExponential(2)} of its largest element`,
      );
      report.push(`${variable.name.split("/").slice(-2).join("/")} ${difference.toExponential(1)}`);
    }
    t.diagnostic(report.join(", "));
    tf.dispose([x, epsilon, terms, ...Object.values(gradients), want.value, ...Object.values(want.grads)]);
    model.vae.dispose();
  });
}

test("trainStep takes the kernels for batches of a multiple of 8 rows (at least 64), tfjs for the rest; both train alike", () => {
  const kernels = [VAE_GRADIENTS_KERNEL, VAE_TRAIN_STEP_KERNEL].map((name) => tf.getKernel(name, "wasm"));
  let calls = 0;
  for (const kernel of kernels) {
    assert.ok(kernel);
    tf.unregisterKernel(kernel.kernelName, "wasm");
    tf.registerKernel({ ...kernel, kernelFunc: (args) => (calls++, kernel.kernelFunc(args)) });
  }
  try {
    const model = buildModel(TUTORIAL_CONFIG);
    const start = snapshotWeights(model);
    const run = (fused: boolean) => {
      setWeights(model, start);
      const optimizer = kerasAdam(1e-3);
      const previous = setFusedGradients(fused);
      const losses: number[] = [];
      for (let step = 0; step < 12; step++) {
        const rows = step === 11 ? 100 : 128; // the last batch: 100 rows, differentiated by tfjs
        const { x, epsilon } = batch(rows, (step * 37) % 300);
        losses.push(trainStep(model, optimizer, x, epsilon, 1).total);
        tf.dispose([x, epsilon]);
      }
      setFusedGradients(previous);
      optimizer.dispose();
      return { losses, weights: snapshotWeights(model) };
    };
    const before = calls;
    const fused = run(true);
    assert.equal(calls - before, 11, "11 batches of 128 rows through the kernel, the 100-row one through tfjs");
    const tape = run(false);
    assert.equal(calls - before, 11, "switched off, the kernel is not called");
    for (let i = 0; i < fused.losses.length; i++)
      assert.ok(
        Math.abs(fused.losses[i] - tape.losses[i]) <= 1e-4 * tape.losses[i],
        `step ${i}: ${fused.losses[i]} vs ${tape.losses[i]}`,
      );
    for (const [i, w] of fused.weights.entries()) {
      const difference = relativeDifference(w.values, tape.weights[i].values);
      assert.ok(
        difference <= 1e-4,
        `${w.name} after 12 steps differs by ${difference.toExponential(2)} of its largest element`,
      );
    }
    model.vae.dispose();
  } finally {
    for (const kernel of kernels) {
      if (!kernel) continue;
      tf.unregisterKernel(kernel.kernelName, "wasm");
      tf.registerKernel(kernel);
    }
  }
});

test("the whole step in one kernel equals the fused gradients then the optimizer's update, to the bit, and counts the step", () => {
  const model = trainedModel();
  const start = snapshotWeights(model);
  const run = (whole: boolean) => {
    setWeights(model, start);
    const optimizer = kerasAdam(1e-3);
    for (let step = 0; step < 5; step++) {
      const { x, epsilon } = batch(128, 40 * step);
      if (whole) {
        fusedTrainStep(model, optimizer, x, epsilon, 2);
      } else {
        const { terms, gradients } = fusedLossGradients(model, x, epsilon, 2);
        optimizer.applyGradients(gradients);
        tf.dispose([terms, ...Object.values(gradients)]);
      }
      tf.dispose([x, epsilon]);
    }
    const iterations = optimizer.iterations;
    optimizer.dispose();
    return { weights: snapshotWeights(model), iterations };
  };
  const whole = run(true);
  const parts = run(false);
  assert.equal(whole.iterations, 5);
  assert.equal(parts.iterations, 5);
  for (const [i, w] of whole.weights.entries()) assert.deepEqual(w.values, parts.weights[i].values, w.name);
  model.vae.dispose();
});

test("layers too small for the generated loops (products below 2^16 multiply-adds) go to XNNPACK's inside the kernel, with the same gradients", () => {
  const small = { ...TUTORIAL_CONFIG, intermediateDim: 24 };
  const model = buildModel(small);
  const { x, epsilon } = batch(64, 7);
  const variables = trainableVariables(model);
  const { terms, gradients } = fusedLossGradients(model, x, epsilon, 1);
  const want = tf.variableGrads(() => forwardLoss(model, x, epsilon, 1).total, variables);
  for (const variable of variables) {
    const difference = relativeDifference(gradients[variable.name].dataSync(), want.grads[variable.name].dataSync());
    assert.ok(difference <= 2e-6, `${variable.name}: differs by ${difference.toExponential(2)}`);
  }
  tf.dispose([x, epsilon, terms, ...Object.values(gradients), want.value, ...Object.values(want.grads)]);
  model.vae.dispose();
});

test("memory stays flat over fused steps: no tensors or heap buffers left over", () => {
  const model = buildModel(TUTORIAL_CONFIG);
  const optimizer = kerasAdam(1e-3);
  const { x, epsilon } = batch(128);
  trainStep(model, optimizer, x, epsilon, 1);
  const backend = tf.engine().backend as unknown as { numDataIds(): number };
  const tensors = tf.memory().numTensors;
  const buffers = backend.numDataIds();
  for (let i = 0; i < 10; i++) trainStep(model, optimizer, x, epsilon, 1);
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), buffers);
  tf.dispose([x, epsilon]);
  optimizer.dispose();
  model.vae.dispose();
});
