import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { BCE_LOGITS_KERNEL, registerBceLogitsKernels, setBceLogitsWasmSimd } from "../../src/backend/fusedLoss";
import { initBackend } from "../../src/backend/select";
import { LOGIT_LIMIT, reconstructionLossFromLogits } from "../../src/vae/loss";
import { Random } from "../../src/vae/random";

before(async () => {
  await initBackend({ backend: "wasm", quiet: true });
});

const L = Math.fround(LOGIT_LIMIT);
const ROWS = 128;
const PIXELS = 784;

/** Logits over [-24, 24] with the edge cases planted at the start; pixels 0, 1 or in between. */
function batch(seed: number): { l: Float32Array; x: Float32Array } {
  const random = new Random(seed);
  const l = random.fillUniform(new Float32Array(ROWS * PIXELS), -24, 24);
  const specials = [
    0,
    -0,
    1e-8,
    -1e-8,
    L,
    -L,
    Math.fround(L * (1 - 2 ** -23)),
    -Math.fround(L * (1 - 2 ** -23)),
    16,
    -16,
    40,
    -40,
    87,
    -87,
    0.5,
    -0.5,
  ];
  l.set(specials);
  const x = random.fillUniform(new Float32Array(ROWS * PIXELS), 0, 1).map((v, i) => (i % 3 === 0 ? Math.round(v) : v));
  return { l, x };
}

/** By hand in float64: Keras's clipped binary cross-entropy per pixel, and its gradient in the logit. */
function byHand(l: Float32Array, x: Float32Array): { sum: number; grad: Float64Array } {
  let sum = 0;
  const grad = new Float64Array(l.length);
  for (let i = 0; i < l.length; i++) {
    const p = 1 / (1 + Math.exp(-Math.min(Math.max(l[i], -L), L)));
    sum -= x[i] * Math.log(p) + (1 - x[i]) * Math.log(1 - p);
    grad[i] = Math.abs(l[i]) < L ? 1 / (1 + Math.exp(-l[i])) - x[i] : 0;
  }
  return { sum, grad };
}

function runKernel(l: Float32Array, x: Float32Array): { sum: number; grad: Float32Array } {
  const [sum, grad] = tf
    .engine()
    .runKernel(
      BCE_LOGITS_KERNEL,
      { logits: tf.tensor2d(l, [ROWS, PIXELS]), x: tf.tensor2d(x, [ROWS, PIXELS]) },
      {},
    ) as unknown as tf.Tensor[];
  const out = { sum: sum.dataSync()[0], grad: grad.dataSync() as Float32Array };
  tf.dispose([sum, grad]);
  return out;
}

for (const simd of [true, false]) {
  test(`the wasm kernel (${simd ? "SIMD polynomials" : "float64 loop"}) matches float64 by hand: the sum and every gradient`, (t) => {
    const previous = setBceLogitsWasmSimd(simd);
    try {
      const { l, x } = batch(simd ? 1 : 2);
      const want = byHand(l, x);
      const got = tf.tidy(() => runKernel(l, x));
      const relative = Math.abs(got.sum - want.sum) / want.sum;
      assert.ok(relative < 1e-6, `sum ${got.sum} vs ${want.sum}: relative error ${relative}`);
      let worst = 0;
      for (let i = 0; i < l.length; i++) worst = Math.max(worst, Math.abs(got.grad[i] - want.grad[i]));
      // The gradient lies in [-1, 1]: float32 holds it to 6e-8; the polynomials add a few ulps.
      assert.ok(worst <= (simd ? 3e-7 : 6e-8), `a gradient is ${worst} from float64`);
      t.diagnostic(`sum relative error ${relative.toExponential(2)}, worst gradient error ${worst.toExponential(2)}`);
    } finally {
      setBceLogitsWasmSimd(previous);
    }
  });
}

test("the loss with the kernel agrees with the loss composed of ordinary ops: the gradient to float32 rounding, the value closer to float64", (t) => {
  const { l, x } = batch(3);
  const want = byHand(l, x).sum / ROWS;
  const logits = tf.tensor2d(l, [ROWS, PIXELS]);
  const xs = tf.tensor2d(x, [ROWS, PIXELS]);
  const loss = (t: tf.Tensor) => reconstructionLossFromLogits(xs, t as tf.Tensor2D);
  const fused = { value: loss(logits).dataSync()[0], grad: tf.grad(loss)(logits).dataSync() };
  const kernel = tf.getKernel(BCE_LOGITS_KERNEL, "wasm");
  assert.ok(kernel, "the kernel is registered for wasm");
  tf.unregisterKernel(BCE_LOGITS_KERNEL, "wasm");
  try {
    const composed = { value: loss(logits).dataSync()[0], grad: tf.grad(loss)(logits).dataSync() };
    // The kernel sums each row in float32 and the rows in float64; the composed ops sum all 100,352
    // float32 terms in float32, which drifts by about 1e-5 of the total.
    const fusedError = Math.abs(fused.value - want) / want;
    const composedError = Math.abs(composed.value - want) / want;
    assert.ok(fusedError <= 1e-6, `kernel: ${fused.value} vs ${want} by hand`);
    assert.ok(composedError <= 1e-4, `composed: ${composed.value} vs ${want} by hand`);
    t.diagnostic(
      `loss relative to float64: kernel ${fusedError.toExponential(2)}, composed ops ${composedError.toExponential(2)}`,
    );
    let worst = 0;
    for (let i = 0; i < l.length; i++) worst = Math.max(worst, Math.abs(fused.grad[i] - composed.grad[i]));
    assert.ok(worst <= 4e-7 / ROWS, `a gradient differs by ${worst}`);
  } finally {
    registerBceLogitsKernels();
  }
  assert.ok(tf.getKernel(BCE_LOGITS_KERNEL, "wasm"));
  tf.dispose([logits, xs]);
});

test("a NaN logit makes the loss NaN (training then stops and says so); its gradient is 0", () => {
  const { l, x } = batch(4);
  l[1000] = NaN;
  for (const simd of [true, false]) {
    const previous = setBceLogitsWasmSimd(simd);
    const got = tf.tidy(() => runKernel(l, x));
    setBceLogitsWasmSimd(previous);
    assert.ok(Number.isNaN(got.sum));
    assert.equal(got.grad[1000], 0);
    assert.ok(got.grad.every((g, i) => i === 1000 || Number.isFinite(g)));
  }
});

test("memory stays flat: the row sums' buffer is freed", () => {
  const { l, x } = batch(5);
  const logits = tf.tensor2d(l, [ROWS, PIXELS]);
  const xs = tf.tensor2d(x, [ROWS, PIXELS]);
  const step = () =>
    tf.tidy(() =>
      tf
        .grad((t: tf.Tensor) => reconstructionLossFromLogits(xs, t as tf.Tensor2D))(logits)
        .sum()
        .dataSync(),
    );
  step();
  const backend = tf.engine().backend as unknown as { numDataIds(): number };
  const tensors = tf.memory().numTensors;
  const buffers = backend.numDataIds();
  for (let i = 0; i < 10; i++) step();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), buffers);
  tf.dispose([logits, xs]);
});
