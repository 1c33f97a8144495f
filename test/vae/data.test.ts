import assert from "node:assert/strict";
import { test } from "node:test";
import { EMBEDDED_DIGIT_COUNT, loadMnist, readEmbeddedDigits } from "../../src/vae/data";

test("the embedded digits are the npm package's 10,000, with its per-digit counts", () => {
  const { images, labels } = readEmbeddedDigits();
  assert.equal(labels.length, EMBEDDED_DIGIT_COUNT);
  assert.equal(images.length, EMBEDDED_DIGIT_COUNT * 784);
  const counts = new Array(10).fill(0);
  labels.forEach((label) => counts[label]++);
  // Counted from the package's src/digits/N.json files.
  assert.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  assert.ok(images.every((pixel) => pixel >= 0 && pixel <= 1));
});

test("the seeded split is a partition: train and test together hold every digit exactly once", () => {
  const data = loadMnist({ dataSource: "embedded", trainSize: 8000, testSize: 2000, seed: 42 });
  assert.equal(data.trainSize, 8000);
  assert.equal(data.testSize, 2000);
  const counts = new Array(10).fill(0);
  [...data.yTrain, ...data.yTest].forEach((label) => counts[label]++);
  assert.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  // Pixel mass is preserved too: the sums over all rows match the unsplit package.
  const { images } = readEmbeddedDigits();
  const total = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(total(data.xTrain) + total(data.xTest) - total(images)) < 1e-3 * total(images));
});

test("the split is shuffled, repeatable for a seed and different for another", () => {
  const a = loadMnist({ dataSource: "embedded", trainSize: 500, testSize: 100, seed: 1 });
  const b = loadMnist({ dataSource: "embedded", trainSize: 500, testSize: 100, seed: 1 });
  const c = loadMnist({ dataSource: "embedded", trainSize: 500, testSize: 100, seed: 2 });
  assert.equal(a.fingerprint, b.fingerprint);
  assert.notEqual(a.fingerprint, c.fingerprint);
  // The package stores digits grouped by label; a shuffled subset of 500 holds every digit.
  assert.equal(new Set(a.yTrain).size, 10);
});

test("asking for more embedded digits than exist is refused with the sizes named", () => {
  assert.throws(
    () => loadMnist({ dataSource: "embedded", trainSize: 9000, testSize: 2000, seed: 1 }),
    /9000 \+ 2000 exceeds the 10000/,
  );
});
