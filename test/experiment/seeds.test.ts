import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { initBackend, type BackendInfo } from "../../src/backend/select";
import { CACHE_VERSION, hashKey } from "../../src/experiment/cache";
import { readResults } from "../../src/experiment/results";
import { resultsFileName, runSweep, sweepKey, trainingSeeds, writeResults } from "../../src/experiment/sweep";
import { QUICK_CONFIG, resolveConfig } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";

// The quick profile with two coefficients: enough to tell seeds apart, a few seconds per seed.
const config = resolveConfig({ ...QUICK_CONFIG, klCoefficients: [0, 2] });
const data = loadMnist(config);
let backend: BackendInfo;
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-seeds-"));

before(async () => {
  backend = await initBackend({ quiet: true });
});
after(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

/** The (seed, c) pairs a sweep trained (rather than loaded) in this process. */
async function sweepTrained(seeds: number[], workers = 0) {
  const trained: string[] = [];
  const result = await runSweep({
    config: resolveConfig({ ...config, seeds }),
    data,
    backend,
    cacheDir,
    workers,
    onRunStart: (event) => {
      if (!event.cached) trained.push(`${event.seed}/${event.klCoefficient}`);
    },
  });
  return { result, trained };
}

test("the training seeds: config.seeds, or config.seed alone", () => {
  assert.deepEqual(trainingSeeds(config), [42]);
  assert.deepEqual(trainingSeeds({ seed: 42, seeds: [7, 42] }), [7, 42]);
  assert.throws(() => resolveConfig({ ...config, seeds: [1, 1] }), /seeds must not repeat a value/);
  assert.throws(() => resolveConfig({ ...config, seeds: [-1] }), /seeds must be a list of whole numbers/);
});

test("the config's own seed keeps the cache key it had before seeds existed", () => {
  // The key as it was written before: every config field but the coefficients, the data, the backend.
  const { klCoefficients: _c, seeds: _s, ...fields } = config;
  const before = hashKey({
    cacheVersion: CACHE_VERSION,
    config: fields,
    data: data.fingerprint,
    backend: backend.name,
  });
  const arithmetic = backend.fma || backend.fusedGradients === false;
  if (!arithmetic) assert.equal(sweepKey(config, data, backend), before);
  assert.equal(
    sweepKey(resolveConfig({ ...config, seeds: [42, 7] }), data, backend, 42),
    sweepKey(config, data, backend),
  );
  // Another training seed gets its own key, which also differs from a sweep whose config seed it is
  // (that one splits the data and draws the metrics' reference sample with it).
  const seven = sweepKey(resolveConfig({ ...config, seeds: [42, 7] }), data, backend, 7);
  assert.notEqual(seven, sweepKey(config, data, backend));
  assert.notEqual(seven, sweepKey(resolveConfig({ ...config, seed: 7 }), data, backend));
});

test("each (seed, c) is one cache entry: a seed added later trains only itself", async () => {
  const one = await sweepTrained([42, 7]);
  assert.deepEqual(one.trained, ["42/0", "42/2", "7/0", "7/2"]);
  assert.deepEqual(
    one.result.seeds.map((s) => s.seed),
    [42, 7],
  );
  assert.equal(one.result.runs, one.result.seeds[0].runs);

  // The config's seed alone, as notebook 03 runs it, is the same sweep as that seed of the list.
  const alone = await runSweep({ config, data, backend, cacheDir });
  assert.equal(alone.key, one.result.seeds[0].key);
  assert.ok(alone.runs.every((run) => run.fromCache));

  const more = await sweepTrained([42, 7, 3]);
  assert.deepEqual(more.trained, ["3/0", "3/2"], "seeds 42 and 7 load from the cache");
  more.result.seeds.slice(0, 2).forEach((s, i) => {
    assert.equal(s.key, one.result.seeds[i].key);
    s.runs.forEach((run, j) => assert.deepEqual(run.weights, one.result.seeds[i].runs[j].weights));
  });

  // Seeds draw other initial weights and noise: other trained weights and other losses ...
  const [w42, w7, w3] = more.result.seeds.map((s) => s.runs[0]);
  assert.notDeepEqual(w42.weights, w7.weights);
  assert.notDeepEqual(w7.weights, w3.weights);
  assert.notEqual(w42.test.reconstruction, w7.test.reconstruction);
  // ... on the same test digits: every seed's zMean has one row per test digit of the one split.
  for (const s of more.result.seeds) for (const run of s.runs) assert.equal(run.zMean.length, data.testSize * 2);
  // The results file carries every seed's runs, the spread per c and the conclusions counted per seed.
  const file = writeResults(path.join(cacheDir, resultsFileName(more.result)), more.result);
  assert.equal(path.basename(file), `sweep-${more.result.key}-seeds-42_7_3.json`);
  const read = readResults(file);
  assert.deepEqual(
    read.seeds.map((s) => s.seed),
    [42, 7, 3],
  );
  const distortions = more.result.seeds.map((s) => s.runs[1].metrics.distortion);
  const mean = (distortions[0] + distortions[1] + distortions[2]) / 3;
  assert.ok(Math.abs(read.statistics[1].distortion.mean - mean) < 1e-9);
  assert.deepEqual(
    [read.statistics[1].distortion.min, read.statistics[1].distortion.max],
    [Math.min(...distortions), Math.max(...distortions)],
  );
  assert.equal(read.conclusions.length, 4);
  assert.ok(read.conclusions.every((c) => c.seeds === 3 && c.holdsIn === c.perSeed.filter((p) => p.holds).length));
  // Seed 7 of the list is what training with seed 7 on the seed-42 split gives.
  const seven = await runSweep({ config: resolveConfig({ ...config, seed: 7 }), data, backend, cacheDir: false });
  seven.runs.forEach((run, j) => assert.deepEqual(run.weights, more.result.seeds[1].runs[j].weights));
});

test("helper processes share the (seed, c) pairs: each trained once", async () => {
  const shared: string[] = [];
  const result = await runSweep({
    config: resolveConfig({ ...config, seeds: [42, 11, 12] }),
    data,
    backend,
    cacheDir,
    workers: 1,
    onRunStart: (event) => {
      if (!event.cached) shared.push(`${event.seed}/${event.klCoefficient}`);
    },
  });
  // Seed 42 is cached; the four pairs of seeds 11 and 12 are trained once each, here or in the helper.
  assert.deepEqual([...shared].sort(), ["11/0", "11/2", "12/0", "12/2"]);
  assert.ok(
    result.seeds.every((s) =>
      s.runs.every((run, j) => run.klCoefficient === config.klCoefficients[j] && run.seed === s.seed),
    ),
  );
});
