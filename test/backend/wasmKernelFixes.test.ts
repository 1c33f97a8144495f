import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";

before(async () => {
  await initBackend({ backend: "wasm", quiet: true });
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
    Array.from({ length: cols }, (_, c) =>
      Array.from({ length: rows }, (_, r) => values[r * cols + c]).reduce((p, v) => p + v, 0),
    );
  const near = (actual: tf.Tensor, expected: number[], shape: number[]) => {
    assert.deepEqual(actual.shape, shape);
    actual
      .dataSync()
      .forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= 1e-4, `column ${i}: ${v} vs ${expected[i]}`));
  };
  const x = tf.tensor2d(values.subarray(0, 15 * 7), [15, 7]);
  near(tf.sum(x, 0), byHand(15, 7), [7]);
  near(tf.sum(x, -2, true), byHand(15, 7), [1, 7]);
  near(tf.sum(tf.tensor3d(values, [3, 5, 7]), [0, 1]), byHand(15, 7), [7]);
  near(tf.sum(tf.tensor3d(values, [3, 5, 7]), [1, 0], true), byHand(15, 7), [1, 1, 7]);
  near(tf.sum(tf.tensor3d(values, [3, 5, 7]), 0), byHand(3, 35), [5, 7]);
  // Not leading axes: the stock kernel, still right.
  near(
    tf.sum(x, 1),
    Array.from({ length: 15 }, (_, r) =>
      Array.from({ length: 7 }, (_, c) => values[r * 7 + c]).reduce((p, v) => p + v, 0),
    ),
    [15],
  );
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
