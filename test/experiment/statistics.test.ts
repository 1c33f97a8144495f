import assert from "node:assert/strict";
import { test } from "node:test";
import { formatSpread, seedSpreads, spread, spreadTable } from "../../src/experiment/statistics";
import type { CoefficientMetrics } from "../../src/experiment/metrics";
import type { SweepResult } from "../../src/experiment/sweep";

function close(actual: number | null, expected: number, tolerance = 1e-12): void {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${actual} != ${expected}`);
}

test("mean, sample standard deviation (n - 1), min and max by hand", () => {
  // Deviations from the mean 5: -3, -1, -1, -1, 0, 0, 2, 4; squares sum to 9 + 1 + 1 + 1 + 0 + 0 + 4 + 16 = 32.
  const s = spread([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.equal(s.n, 8);
  assert.equal(s.mean, 5);
  close(s.sd, Math.sqrt(32 / 7)); // 2.138..., not the population's sqrt(32 / 8) = 2
  assert.equal(s.min, 2);
  assert.equal(s.max, 9);
  // Two values a, b: sd = |a - b| / sqrt(2).
  close(spread([100, 110]).sd, 10 / Math.SQRT2);
  // One value has a mean but no sample standard deviation.
  assert.deepEqual(spread([3.5]), { n: 1, mean: 3.5, sd: null, min: 3.5, max: 3.5 });
  assert.throws(() => spread([]), /at least one value/);
});

function metrics(klCoefficient: number, values: Partial<CoefficientMetrics>): CoefficientMetrics {
  return {
    klCoefficient,
    distortion: 0,
    rate: 0,
    negativeElbo: 0,
    aggregateEnergyDistance: 0,
    latentRadius: 0,
    manifoldVariety: 0,
    ...values,
  } as CoefficientMetrics;
}

function sweepOf(
  seeds: Record<number, Partial<CoefficientMetrics>[]>,
  coefficients: number[],
): Pick<SweepResult, "seeds"> {
  return {
    seeds: Object.entries(seeds).map(([seed, perC]) => ({
      seed: Number(seed),
      key: `key-${seed}`,
      runs: coefficients.map((c, i) => ({ klCoefficient: c, seed: Number(seed), metrics: metrics(c, perC[i]) })),
    })),
  } as unknown as Pick<SweepResult, "seeds">;
}

test("per coefficient, each metric's spread over the seeds", () => {
  const result = sweepOf(
    {
      1: [
        { distortion: 150, rate: 100, negativeElbo: 250, latentRadius: 10 },
        { distortion: 200, rate: 5 },
      ],
      2: [
        { distortion: 160, rate: 90, negativeElbo: 250, latentRadius: 14 },
        { distortion: 202, rate: 7 },
      ],
      3: [
        { distortion: 170, rate: 110, negativeElbo: 280, latentRadius: 12 },
        { distortion: 204, rate: 3 },
      ],
    },
    [0, 1],
  );
  const [c0, c1] = seedSpreads(result);
  assert.equal(c0.klCoefficient, 0);
  assert.deepEqual(c0.seeds, [1, 2, 3]);
  // c = 0: distortion 150, 160, 170: mean 160, squares 100 + 0 + 100 = 200, sd sqrt(200 / 2) = 10.
  assert.equal(c0.distortion.mean, 160);
  close(c0.distortion.sd, 10);
  assert.deepEqual([c0.distortion.min, c0.distortion.max], [150, 170]);
  // rate 100, 90, 110: the same deviations, so sd 10 around 100.
  assert.equal(c0.rate.mean, 100);
  close(c0.rate.sd, 10);
  // -ELBO 250, 250, 280: mean 260, squares 100 + 100 + 400 = 600, sd sqrt(300).
  assert.equal(c0.negativeElbo.mean, 260);
  close(c0.negativeElbo.sd, Math.sqrt(300));
  // radius 10, 14, 12: mean 12, squares 4 + 4 + 0, sd 2.
  close(c0.latentRadius.sd, 2);
  // c = 1: distortion 200, 202, 204: sd 2; rate 5, 7, 3: mean 5, sd 2.
  close(c1.distortion.sd, 2);
  assert.equal(c1.rate.mean, 5);
  close(c1.rate.sd, 2);
  assert.deepEqual([c1.rate.min, c1.rate.max], [3, 7]);
  // A metric that does not move between seeds has sd 0.
  assert.equal(c1.manifoldVariety.sd, 0);
});

test("the spread as text: mean ± sd [min, max], and a table row per coefficient", () => {
  assert.equal(formatSpread(spread([150, 160, 170]), 2), "160.00 ± 10.00 [150.00, 170.00]");
  assert.equal(formatSpread(spread([3.5]), 1), "3.5 [3.5, 3.5]");
  const table = spreadTable(seedSpreads(sweepOf({ 1: [{ distortion: 150 }], 2: [{ distortion: 170 }] }, [0.5])));
  const lines = table.split("\n");
  assert.equal(lines.length, 3);
  assert.match(
    lines[0],
    /\|\s+c \|\s+distortion \|\s+rate \|\s+-ELBO \|\s+energy distance \|\s+latent radius \|\s+manifold variety \|/,
  );
  // 150 and 170: mean 160, sd 20 / sqrt(2) = 14.142...
  assert.match(lines[2], /\| 0\.5 \|\s+160\.00 ± 14\.14 \[150\.00, 170\.00\] \|/);
});
