import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, test } from "node:test";
import { initBackend } from "../../src/backend/select";
import { resolveConfig } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";
import { runSweep } from "../../src/experiment/sweep";
import type { EpochEndEvent } from "../../src/vae/train";

before(async () => {
  await initBackend({ quiet: true });
});

test("a sweep with a worker process gives the same per-coefficient results as one at a time", async () => {
  const config = resolveConfig({
    klCoefficients: [0, 0.5, 2, 10],
    epochs: 2,
    // Enough work that the worker, which starts its own backend (a few seconds), finds a coefficient left.
    trainSize: 4096,
    testSize: 256,
    dataSource: "embedded",
    manifoldSize: 6,
  });
  const data = loadMnist(config);
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-workers-"));
  const started: { klCoefficient: number; worker?: number; cached: boolean }[] = [];
  const epochs: EpochEndEvent[] = [];
  const parallel = await runSweep({
    config,
    data,
    cacheDir,
    workers: 1,
    onRunStart: (event) => started.push(event),
    onEpochEnd: (event) => epochs.push(event),
  });
  const sequential = await runSweep({ config, data, cacheDir: false });
  const byWorker = parallel.runs.filter((run) => run.fromCache).map((run) => run.klCoefficient);
  assert.ok(byWorker.length > 0, "the worker trained at least one coefficient");
  // The worker's progress reached this process: its start, and every epoch with the losses it cached.
  for (const c of byWorker) {
    assert.ok(
      started.some((event) => event.klCoefficient === c && event.worker === 1 && !event.cached),
      `c = ${c}: no start from the worker`,
    );
    const reported = epochs.filter((event) => event.klCoefficient === c).map((event) => event.record);
    const history = parallel.runs.find((run) => run.klCoefficient === c)?.history ?? [];
    assert.deepEqual(
      reported.map((r) => [r.epoch, r.train, r.test]),
      history.map((r) => [r.epoch, r.train, r.test]),
      `c = ${c}: epochs reported`,
    );
  }
  parallel.runs.forEach((run, i) => {
    const reference = sequential.runs[i];
    assert.equal(run.klCoefficient, reference.klCoefficient);
    assert.deepEqual(
      run.history.map((r) => [r.train, r.test]),
      reference.history.map((r) => [r.train, r.test]),
      `c = ${run.klCoefficient}: losses`,
    );
    assert.deepEqual(run.weights, reference.weights, `c = ${run.klCoefficient}: weights`);
    assert.deepEqual(run.zMean, reference.zMean);
  });
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

test("workers need the cache", async () => {
  const config = resolveConfig({
    klCoefficients: [0],
    epochs: 1,
    trainSize: 128,
    testSize: 128,
    dataSource: "embedded",
  });
  await assert.rejects(runSweep({ config, cacheDir: false, workers: 1 }), /workers need the cache/);
});
