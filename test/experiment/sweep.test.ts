import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, test } from "node:test";
import { initBackend } from "../../src/backend/select";
import { resolveConfig } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";
import { buildModel, snapshotWeights } from "../../src/vae/model";
import { runSweep, weightsFromFlat } from "../../src/experiment/sweep";

const config = resolveConfig({
  klCoefficients: [0, 20],
  epochs: 2,
  trainSize: 512,
  testSize: 256,
  dataSource: "embedded",
  manifoldSize: 10,
});

before(async () => {
  await initBackend({ quiet: true });
});

test("a small sweep end to end: every coefficient trained from the same start, then served from the cache", async () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-sweep-"));
  const data = loadMnist(config);
  const first = await runSweep({ config, data, cacheDir });
  assert.deepEqual(
    first.runs.map((r) => r.klCoefficient),
    [0, 20],
  );
  for (const run of first.runs) {
    assert.equal(run.fromCache, false);
    assert.equal(run.history.length, 2);
    assert.equal(run.zMean.length, 256 * 2);
    assert.equal(run.manifold.length, 10 * 10 * 784);
    assert.ok(
      run.manifold.every((p) => p > 0 && p < 1),
      "decoded pixels are sigmoid outputs",
    );
  }
  // The tutorial's trend already shows after two epochs: a large c buys a small KL with a worse reconstruction.
  const [c0, c20] = first.runs;
  assert.ok(c20.test.kl < c0.test.kl / 5, `KL ${c0.test.kl} (c = 0) vs ${c20.test.kl} (c = 20)`);
  assert.ok(c20.test.reconstruction > c0.test.reconstruction, "reconstruction gets worse as c grows");

  const second = await runSweep({ config, data, cacheDir });
  assert.equal(second.key, first.key);
  second.runs.forEach((run, i) => {
    assert.equal(run.fromCache, true);
    assert.deepEqual(run.history, first.runs[i].history);
    assert.deepEqual(run.zMean, first.runs[i].zMean);
    assert.deepEqual(run.manifold, first.runs[i].manifold);
    assert.deepEqual(run.weights, first.runs[i].weights);
  });

  // A run of c = 0 alone (another coefficient list, same key) reuses its entry and starts from the same weights.
  const alone = await runSweep({ config: resolveConfig({ ...config, klCoefficients: [0] }), data, cacheDir });
  assert.equal(alone.key, first.key);
  assert.equal(alone.runs[0].fromCache, true);
  const other = await runSweep({ config: resolveConfig({ ...config, seed: 1, klCoefficients: [0] }), data, cacheDir });
  assert.notEqual(other.key, first.key, "the seed is part of the key");
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

test("both coefficients start from the same initial weights and the same batches", async () => {
  // With c = 0 the KL term has no gradient, so it is the same coefficient twice under two names:
  // training c = 0 inside a list and alone must give identical weights.
  const data = loadMnist(config);
  const inList = await runSweep({
    config: resolveConfig({ ...config, klCoefficients: [20, 0], epochs: 1 }),
    data,
    cacheDir: false,
  });
  const alone = await runSweep({
    config: resolveConfig({ ...config, klCoefficients: [0], epochs: 1 }),
    data,
    cacheDir: false,
  });
  assert.deepEqual(inList.runs[1].weights, alone.runs[0].weights);
  const model = buildModel(config);
  assert.equal(weightsFromFlat(model, alone.runs[0].weights).length, snapshotWeights(model).length);
});

test("npm run sweep writes the documented results JSON", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "vae-out-"));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "vae-cache-"));
  const stdout = execFileSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/sweep.ts",
      "--coefficients",
      "0,1",
      "--epochs",
      "1",
      "--train-size",
      "256",
      "--test-size",
      "128",
      "--data",
      "embedded",
      "--out",
      out,
      "--cache-dir",
      cache,
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  assert.match(stdout, /\|\s+c \| train rec \| train KL \| train total \| test rec \| test KL \| test total/);
  const results = JSON.parse(fs.readFileSync(path.join(out, "latest.json"), "utf8"));
  assert.equal(results.schema, "vae-kl-sweep/1");
  assert.equal(results.seed, 42);
  assert.equal(results.config.epochs, 1);
  assert.ok(["tensorflow", "wasm", "cpu"].includes(results.backend.name));
  assert.deepEqual(
    results.coefficients.map((c: { klCoefficient: number }) => c.klCoefficient),
    [0, 1],
  );
  for (const c of results.coefficients) {
    assert.equal(c.history.length, 1);
    for (const split of ["train", "test"]) {
      const terms = c.history[0][split];
      assert.ok(Math.abs(terms.total - (terms.reconstruction + c.klCoefficient * terms.kl)) < 1e-6 * terms.total);
    }
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(cache, { recursive: true, force: true });
});
