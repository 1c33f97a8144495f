import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { KerasAdam, kerasAdam } from "../../src/vae/optimizer";
import { hasFusedKerasAdam, KERAS_ADAM_KERNEL, registerKerasAdamKernels } from "../../src/backend/fusedAdam";
import { assertClose, onEachBackend, prng, size, uniform, useWasmBackend } from "../adamHelpers";

useWasmBackend();

test("five steps on three weight arrays match a float64 reference of Keras's formula, on wasm (SIMD and JavaScript loops) and cpu", async () => {
  await onEachBackend((label) => {
    const next = prng(12345);
    const shapes = [[3, 4], [5], [784, 512]];
    const lr = 2e-3;
    const initial = shapes.map((shape) => uniform(next, size(shape), 1));
    const names = shapes.map((_, i) => `adamref-${label}/${i}`);
    const variables = shapes.map((shape, i) => tf.variable(tf.tensor(initial[i], shape), true, names[i]));
    const optimizer = kerasAdam(lr);
    // The reference: plain float64 arrays, Keras's formula written out.
    const w = initial.map((a) => Array.from(a));
    const m = initial.map((a) => new Array<number>(a.length).fill(0));
    const v = initial.map((a) => new Array<number>(a.length).fill(0));
    for (let t = 1; t <= 5; t++) {
      // Gradients of a different size each step (down to 1e-2, up to 1e2), as float32.
      const gradients = shapes.map((shape) => uniform(next, size(shape), 10 ** (t - 3)));
      const tensors = gradients.map((g, i) => tf.tensor(g, shapes[i]));
      // Alternate the two forms applyGradients accepts.
      if (t % 2 === 1) optimizer.applyGradients(Object.fromEntries(tensors.map((g, i) => [names[i], g])));
      else optimizer.applyGradients(tensors.map((tensor, i) => ({ name: names[i], tensor })));
      tf.dispose(tensors);
      const alpha = (lr * Math.sqrt(1 - 0.999 ** t)) / (1 - 0.9 ** t);
      gradients.forEach((g, i) => {
        for (let j = 0; j < g.length; j++) {
          m[i][j] = m[i][j] + (g[j] - m[i][j]) * (1 - 0.9);
          v[i][j] = v[i][j] + (g[j] * g[j] - v[i][j]) * (1 - 0.999);
          w[i][j] = w[i][j] - (alpha * m[i][j]) / (Math.sqrt(v[i][j]) + 1e-7);
        }
      });
    }
    assert.equal(optimizer.iterations, 5);
    return optimizer.getWeights().then((weights) => {
      const byName = new Map(weights.map(({ name, tensor }) => [name, tensor]));
      assert.deepEqual(
        weights.map(({ name }) => name),
        ["iter", ...names.map((n) => `${n}/m`), ...names.map((n) => `${n}/v`)],
      );
      assert.equal(byName.get("iter")!.dataSync()[0], 5);
      variables.forEach((variable, i) => {
        assertClose(variable.dataSync(), w[i], `${label} w${i}`);
        assertClose(byName.get(`${names[i]}/m`)!.dataSync(), m[i], `${label} m${i}`);
        assertClose(byName.get(`${names[i]}/v`)!.dataSync(), v[i], `${label} v${i}`);
      });
      // The weights really moved (by about lr per step), so the comparison is not vacuous.
      assert.ok(Math.abs(variables[1].dataSync()[0] - initial[1][0]) > lr);
      tf.dispose(weights[0].tensor);
      optimizer.dispose();
      tf.dispose(variables);
    });
  });
});

test("one step by hand: g = 2 on w = 1 from zero moments moves w by almost exactly the learning rate", async () => {
  // m = 0 + (2 - 0) * 0.1 = 0.2;  v = 0 + (4 - 0) * 0.001 = 0.004;
  // alpha = lr * sqrt(1 - 0.999) / (1 - 0.9) = lr * 0.0316228 / 0.1 = 0.316228 * lr;
  // w = 1 - alpha * 0.2 / (sqrt(0.004) + 1e-7) = 1 - 0.316228 lr * 0.2 / 0.0632457 = 1 - 0.99999842 lr.
  const lr = 1e-3;
  const alpha = (lr * Math.sqrt(0.001)) / 0.1;
  const expectedW = 1 - (alpha * 0.2) / (Math.sqrt(0.004) + 1e-7);
  assert.ok(Math.abs(expectedW - (1 - lr)) < 2e-9);
  await onEachBackend(async (label) => {
    const name = `adamhand-${label}`;
    const w = tf.variable(tf.tensor2d([1, 1, 1, 1], [2, 2]), true, name);
    const optimizer = kerasAdam(lr);
    const g = tf.fill([2, 2], 2);
    optimizer.applyGradients({ [name]: g });
    const weights = await optimizer.getWeights();
    // Within one float32 ulp (2^-24 just below 1): the SIMD loop rounds each operation to float32.
    for (const x of w.dataSync())
      assert.ok(Math.abs(x - expectedW) <= 2 ** -24, `${label}: w = ${x}, expected ${expectedW}`);
    for (const x of weights[1].tensor.dataSync()) assert.equal(x, Math.fround(0.2));
    for (const x of weights[2].tensor.dataSync()) assert.equal(x, Math.fround(0.004));
    tf.dispose([weights[0].tensor, g]);
    optimizer.dispose();
    w.dispose();
  });
});

test("a moment decaying under zero gradients becomes exactly 0 once it would be denormal (no waiting)", async () => {
  const name = "adamdecay";
  const w = tf.variable(tf.tensor1d([1]), true, name);
  const optimizer = kerasAdam(1e-3);
  const zero = tf.tensor1d([0]);
  optimizer.applyGradients({ [name]: tf.tensor1d([1e-36]) });
  // m = 1e-37 after step 1, then 1e-37 * 0.9^k: 1.216e-38 for k = 20 (normal), 1.094e-38 for k = 21
  // (below 2^-126 = 1.1755e-38, a denormal float32).
  let m = 1e-37;
  for (let k = 1; k <= 22; k++) {
    optimizer.applyGradients({ [name]: zero });
    m *= 0.9;
    const actual = (await optimizer.getWeights())[1].tensor.dataSync()[0];
    if (k <= 20) assert.ok(Math.abs(actual - m) <= 1e-5 * m, `after ${k} zero gradients: m = ${actual}, expected ${m}`);
    else assert.equal(actual, 0, `after ${k} zero gradients: m = ${actual} should have been flushed`);
  }
  optimizer.dispose();
  tf.dispose([w, zero]);
});

test("where the kernel is not registered, the optimizer composes the same update from tf ops", async () => {
  await tf.setBackend("cpu");
  const run = () => {
    const name = "adamfallback";
    const w = tf.variable(tf.tensor1d([0.5, -0.25, 3]), true, name);
    const optimizer = kerasAdam(1e-2);
    for (const g of [
      [1, 2, -3],
      [-1, 0.5, 0],
      [4, -2, 1e-3],
    ])
      optimizer.applyGradients({ [name]: tf.tensor1d(g) });
    const result = Array.from(w.dataSync());
    optimizer.dispose();
    w.dispose();
    return result;
  };
  const fused = run();
  tf.unregisterKernel(KERAS_ADAM_KERNEL, "cpu");
  try {
    assert.equal(hasFusedKerasAdam(), false);
    assertClose(run(), fused, "composed");
  } finally {
    registerKerasAdamKernels();
    await tf.setBackend("wasm");
  }
  assert.ok(hasFusedKerasAdam("cpu"));
});

test("memory stays flat over 20 minimize() steps after the first (tensors and backend data)", async () => {
  await onEachBackend(() => {
    const next = prng(99);
    const w1 = tf.variable(tf.tensor(uniform(next, 16 * 8, 0.5), [16, 8]));
    const b1 = tf.variable(tf.zeros([8]));
    const w2 = tf.variable(tf.tensor(uniform(next, 8 * 1, 0.5), [8, 1]));
    const x = tf.tensor(uniform(next, 32 * 16, 1), [32, 16]);
    const y = tf.tensor(uniform(next, 32, 1), [32, 1]);
    const optimizer = kerasAdam(1e-2);
    const loss = () => tf.losses.meanSquaredError(y, tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2)) as tf.Scalar;
    const step = () => optimizer.minimize(loss, false, [w1, b1, w2]);
    const first = loss().dataSync()[0];
    step();
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    for (let i = 0; i < 20; i++) {
      step();
      assert.equal(tf.memory().numTensors, tensors, `tensors after step ${i + 2}`);
    }
    assert.equal(tf.engine().backend.numDataIds(), dataIds);
    const last = loss().dataSync()[0];
    assert.ok(last < first, `the loss went down: ${first} -> ${last}`);
    optimizer.dispose();
    tf.dispose([w1, b1, w2, x, y]);
  });
});

test("weights round-trip through getWeights/setWeights, and the config through fromConfig", async () => {
  const name = "adamtrip";
  const a = tf.variable(tf.tensor1d([0.5, -0.25]), true, name);
  const first = kerasAdam(1e-2);
  first.applyGradients({ [name]: tf.tensor1d([1, 2]) });
  const afterOne = a.dataSync().slice();
  const saved = (await first.getWeights()).map(({ name: n, tensor }) => ({ name: n, tensor: tensor.clone() }));
  first.applyGradients({ [name]: tf.tensor1d([-1, 3]) });
  const expected = Array.from(a.dataSync());
  first.dispose();

  a.assign(tf.tensor1d(afterOne));
  const restored = KerasAdam.fromConfig(KerasAdam, first.getConfig());
  assert.ok(restored instanceof KerasAdam);
  assert.deepEqual(restored.getConfig(), { learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
  assert.equal(restored.getClassName(), "KerasAdam");
  await restored.setWeights(saved);
  tf.dispose(saved.map(({ tensor }) => tensor));
  assert.equal(restored.iterations, 1);
  restored.applyGradients({ [name]: tf.tensor1d([-1, 3]) });
  assert.deepEqual(Array.from(a.dataSync()), expected);
  restored.dispose();

  // A fresh optimizer (zero moments, t = 1) lands elsewhere: the restore mattered.
  a.assign(tf.tensor1d(afterOne));
  const fresh = kerasAdam(1e-2);
  fresh.applyGradients({ [name]: tf.tensor1d([-1, 3]) });
  assert.notDeepEqual(Array.from(a.dataSync()), expected);
  fresh.dispose();
  a.dispose();
  assert.throws(() => new KerasAdam(1e-3, 1), /beta1 must be a finite number > 0 and < 1/);
});

test("dispose() releases the moments", () => {
  const name = "adamdispose";
  const w = tf.variable(tf.zeros([10, 10]), true, name);
  const g = tf.ones([10, 10]);
  const before = tf.memory().numTensors;
  const optimizer = kerasAdam();
  optimizer.applyGradients({ [name]: g });
  assert.equal(tf.memory().numTensors, before + 2);
  optimizer.dispose();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([w, g]);
});
