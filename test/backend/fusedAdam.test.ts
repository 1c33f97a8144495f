import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { kerasAdamUpdateComposed } from "../../src/vae/optimizer";
import { kerasAdamUpdateFused } from "../../src/backend/fusedAdam";
import { assertClose, onEachBackend, prng, size, uniform, useWasmBackend } from "../adamHelpers";

useWasmBackend();

test("the fused kernel flushes moments that would be denormal to exactly 0, and keeps normal ones", async () => {
  // The smallest normal float32 is 2^-126 = 1.1754943508222875e-38.
  const MIN_NORMAL = 2 ** -126;
  assert.equal(MIN_NORMAL, 1.1754943508222875e-38);
  const m0 = new Float32Array([1e-39, -1e-39, 1.3e-38, -1.3e-38, 2e-38, 1e-30, 0, 0.5]);
  const v0 = new Float32Array([1e-39, 1.176e-38, 1.1e-38, 1e-45, 2e-38, 1e-30, 0, 0.25]);
  assert.ok(m0[0] > 0 && m0[0] < MIN_NORMAL && v0[3] > 0, "the inputs really hold denormal float32s");
  const attrs = { alpha: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
  // With g = 0: m' = 0.9 m, v' = 0.999 v; flushed when below MIN_NORMAL in magnitude.
  const flush = (x: number) => (Math.abs(x) < MIN_NORMAL ? 0 : Math.fround(x));
  const expectedM = Array.from(m0, (x) => flush(x * 0.9));
  const expectedV = Array.from(v0, (x) => flush(x * 0.999));
  // 1.3e-38 * 0.9 = 1.17e-38 and 1.176e-38 * 0.999 = 1.1748e-38 fall below MIN_NORMAL and are flushed;
  // 2e-38 * 0.9 = 1.8e-38 and 2e-38 * 0.999 are kept.
  assert.deepEqual(
    expectedM.slice(0, 5).map((x) => Math.abs(x)),
    [0, 0, 0, 0, Math.fround(m0[4] * 0.9)],
  );
  assert.deepEqual(expectedV.slice(0, 5), [0, 0, 0, 0, Math.fround(v0[4] * 0.999)]);
  assert.ok(expectedM[4] > MIN_NORMAL && expectedV[4] > MIN_NORMAL);
  // Flushed entries must be exactly 0; kept ones equal 0.9 m and 0.999 v up to float32 rounding.
  const check = (actual: Float32Array | Int32Array | Uint8Array, expected: number[], what: string) =>
    expected.forEach((e, i) => {
      if (e === 0) assert.equal(actual[i], 0, `${what}[${i}] = ${actual[i]} should be flushed to 0`);
      else assert.ok(Math.abs(actual[i] - e) <= 1e-6 * Math.abs(e), `${what}[${i}]: ${actual[i]} vs ${e}`);
    });
  await onEachBackend((label) => {
    const [w, m, v] = kerasAdamUpdateFused(tf.ones([8]), tf.tensor1d(m0), tf.tensor1d(v0), tf.zeros([8]), attrs);
    check(m.dataSync(), expectedM, `${label} m`);
    check(v.dataSync(), expectedV, `${label} v`);
    assert.ok(w.dataSync().every((x) => Number.isFinite(x)));
    tf.dispose([w, m, v]);
  });
});

test("the fused kernel equals the composed-op fallback within 1e-6", async () => {
  await onEachBackend((label) => {
    const next = prng(777);
    // A multiple of 4 elements, and sizes that leave 1-3 elements to the SIMD loop's scalar tail.
    for (const shape of [[784, 512], [7], [3, 3], [2], [1]]) {
      const n = size(shape);
      const w = tf.tensor(uniform(next, n, 1), shape);
      const mValues = uniform(next, n, 0.1);
      const m = tf.tensor(mValues, shape);
      const v = tf.tensor(
        Float32Array.from(uniform(next, n, 0.1), (x) => x * x),
        shape,
      );
      const g = tf.tensor(uniform(next, n, 1), shape);
      const attrs = {
        alpha: (1e-3 * Math.sqrt(1 - 0.999 ** 7)) / (1 - 0.9 ** 7),
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-7,
      };
      const fused = kerasAdamUpdateFused(w, m, v, g, attrs);
      const composed = kerasAdamUpdateComposed(w, m, v, g, attrs);
      ["w", "m", "v"].forEach((what, i) => {
        assert.deepEqual(fused[i].shape, shape);
        assertClose(fused[i].dataSync(), composed[i].dataSync(), `${label} [${shape}] ${what}`);
      });
      // Inputs are untouched (tensors are immutable).
      assert.deepEqual(m.dataSync(), mValues, `${label}: m unchanged`);
      tf.dispose([w, m, v, g, ...fused, ...composed]);
    }
  });
});
