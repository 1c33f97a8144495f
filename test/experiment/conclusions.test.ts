import assert from "node:assert/strict";
import { test } from "node:test";
import { spearman } from "../../src/experiment/conclusions";

test("Spearman's rank correlation by hand", () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [9, 7, 3, 1]), -1);
  // Ranks (1, 2, 3) against (1, 3, 2): sum of d^2 = 2, rho = 1 - 6 x 2 / (3 x 8) = 0.5.
  assert.equal(spearman([1, 2, 3], [5, 9, 7]), 0.5);
});

test("each conclusion counts the seeds it holds for", async () => {
  const { checkConclusionsAcrossSeeds, seedConclusionsReport } = await import("../../src/experiment/conclusions");
  type M = {
    latentRadius: number;
    manifoldVariety: number;
    rate: number;
    distortion: number;
    aggregateEnergyDistance: number;
  };
  const coefficients = [0, 1, 20];
  // Seed 1: every claim holds. Radius falls with c; the mid value c = 1 has the most varied manifold;
  // rate falls and distortion rises; the energy distance is smallest at c = 1.
  const good: M[] = [
    { latentRadius: 10, manifoldVariety: 0.03, rate: 100, distortion: 150, aggregateEnergyDistance: 2 },
    { latentRadius: 3, manifoldVariety: 0.05, rate: 20, distortion: 170, aggregateEnergyDistance: 0.1 },
    { latentRadius: 0.5, manifoldVariety: 0.04, rate: 1, distortion: 250, aggregateEnergyDistance: 0.5 },
  ];
  // Seed 2: radius grows with c (claim 1 fails), c = 0 has the most varied manifold (claim 2 fails), the
  // energy distance is smallest at c = 0 (claim 4 fails); rate and distortion as in seed 1 (claim 3 holds).
  const bad: M[] = [
    { latentRadius: 3, manifoldVariety: 0.05, rate: 100, distortion: 150, aggregateEnergyDistance: 0.1 },
    { latentRadius: 5, manifoldVariety: 0.04, rate: 20, distortion: 170, aggregateEnergyDistance: 1 },
    { latentRadius: 10, manifoldVariety: 0.03, rate: 1, distortion: 250, aggregateEnergyDistance: 2 },
  ];
  // Seed 3: as seed 1 but the energy distance is smallest at the largest c (claim 4 fails).
  const third = good.map((m, i) => ({ ...m, aggregateEnergyDistance: [2, 1, 0.5][i] }));
  const seeds = [
    { seed: 1, metrics: good },
    { seed: 2, metrics: bad },
    { seed: 3, metrics: third },
  ].map(({ seed, metrics }) => ({
    seed,
    key: "",
    runs: coefficients.map((c, i) => ({ klCoefficient: c, seed, metrics: { klCoefficient: c, ...metrics[i] } })),
  }));
  const result = { config: {}, seeds } as unknown as Parameters<typeof checkConclusionsAcrossSeeds>[0];
  const conclusions = checkConclusionsAcrossSeeds(result);
  assert.deepEqual(
    conclusions.map((c) => [c.holdsIn, c.seeds]),
    [
      [2, 3],
      [2, 3],
      [3, 3],
      [1, 3],
    ],
  );
  assert.deepEqual(
    conclusions[0].perSeed.map((s) => [s.seed, s.holds]),
    [
      [1, true],
      [2, false],
      [3, true],
    ],
  );
  assert.deepEqual(
    conclusions[3].perSeed.map((s) => s.holds),
    [true, false, false],
  );
  const report = seedConclusionsReport(conclusions);
  assert.match(report, /1\. Without the KL loss[^\n]*\n   holds for 2 of 3 seeds \(not for seed 2\)/);
  assert.match(report, /3\. \(measured\)[^\n]*\n   holds for 3 of 3 seeds\n/);
  assert.match(report, /4\. [^\n]*\n   holds for 1 of 3 seeds \(not for seeds 2, 3\)$/);
});
