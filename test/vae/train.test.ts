import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import { resolveConfig } from "../../src/vae/config";
import { loadMnist, type MnistData } from "../../src/vae/data";
import { buildModel, snapshotWeights } from "../../src/vae/model";
import { gatherRows } from "../../src/vae/data";
import { evaluate, train, trainEpoch } from "../../src/vae/train";

const config = resolveConfig({ epochs: 3, trainSize: 512, testSize: 256, dataSource: "embedded", seed: 3 });
let data: MnistData;

before(async () => {
  await initBackend({ quiet: true });
  data = loadMnist(config);
});

test("one epoch on real digits lowers the test loss", () => {
  const model = buildModel(config);
  const options = { ...config, klCoefficient: 1 };
  const before = evaluate(model, data.xTest, options);
  const optimizer = tf.train.adam(config.learningRate);
  trainEpoch(model, optimizer, { config, klCoefficient: 1, xTrain: data.xTrain, xTest: data.xTest }, 1);
  const after = evaluate(model, data.xTest, options);
  // An untrained decoder outputs ~0.5 everywhere: about 784 ln 2 = 543 nats of reconstruction loss.
  assert.ok(
    Math.abs(before.reconstruction - 784 * Math.log(2)) < 30,
    `initial reconstruction ${before.reconstruction}`,
  );
  assert.ok(after.total < before.total - 50, `total ${before.total} -> ${after.total}`);
});

test("the history records each epoch; the total is reconstruction + c x KL", async () => {
  const history = await train(buildModel(config), {
    config,
    klCoefficient: 0.5,
    xTrain: data.xTrain,
    xTest: data.xTest,
  });
  assert.deepEqual(
    history.map((r) => r.epoch),
    [1, 2, 3],
  );
  for (const { test: t } of history) assert.ok(Math.abs(t.total - (t.reconstruction + 0.5 * t.kl)) < 1e-6);
  assert.ok(history[2].train.total < history[0].train.total);
});

test("seeded runs are repeatable on one backend: identical history and weights", async () => {
  const run = async () => {
    const model = buildModel(config);
    const history = await train(model, {
      config: { ...config, epochs: 1 },
      klCoefficient: 1,
      xTrain: data.xTrain,
      xTest: data.xTest,
    });
    return { history: history.map((r) => [r.train, r.test]), weights: snapshotWeights(model).map((w) => w.values) };
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a.history, b.history);
  assert.deepEqual(a.weights, b.weights);
});

test("no tensor leaks: the tensor count is the same after every epoch", async () => {
  const counts: number[] = [];
  await train(buildModel(config), {
    config,
    klCoefficient: 1,
    xTrain: data.xTrain,
    xTest: data.xTest,
    onEpochEnd: () => counts.push(tf.memory().numTensors),
  });
  assert.equal(counts.length, 3);
  assert.equal(new Set(counts).size, 1, `tensor counts per epoch: ${counts.join(", ")}`);
});

test("gatherRows copies the ordered rows, into a new buffer or the start of a given one", () => {
  const x = Float32Array.from({ length: 5 * 3 }, (_, i) => i); // row r holds 3r, 3r + 1, 3r + 2
  const order = [4, 0, 3, 1, 2];
  const want = [0, 1, 2, 9, 10, 11, 3, 4, 5]; // rows order[1..4) = 0, 3, 1
  assert.deepEqual(Array.from(gatherRows(x, order, 1, 4, 3)), want);
  const into = new Float32Array(12).fill(-1);
  const got = gatherRows(x, order, 1, 4, 3, into);
  assert.equal(got.buffer, into.buffer, "the given buffer is used");
  assert.deepEqual(Array.from(got), want);
  assert.deepEqual(Array.from(into.subarray(9)), [-1, -1, -1], "nothing written past the rows");
});
