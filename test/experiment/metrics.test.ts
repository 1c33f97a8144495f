import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  activeUnits,
  energyDistance,
  gaussianKlFromStandard,
  latentSpread,
  manifoldSharpness,
  manifoldVariety,
  meanAndCovariance,
} from "../../src/experiment/metrics";
import { Random } from "../../src/vae/random";

const close = (actual: number, expected: number, tolerance: number, what = "") =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what} expected ${expected} +- ${tolerance}, got ${actual}`);

/** n points of N(mean, diag(sd^2)). */
function gaussian(
  n: number,
  seed: number,
  mean: [number, number] = [0, 0],
  sd: [number, number] = [1, 1],
): Float32Array {
  const points = new Random(seed).fillNormal(new Float32Array(2 * n));
  for (let i = 0; i < n; i++) {
    points[2 * i] = mean[0] + sd[0] * points[2 * i];
    points[2 * i + 1] = mean[1] + sd[1] * points[2 * i + 1];
  }
  return points;
}

describe("meanAndCovariance", () => {
  test("matches hand arithmetic on three points", () => {
    // Points (0, 0), (2, 2), (4, -2): mean (2, 0).
    // Var x = (4 + 0 + 4) / 3 = 8/3; Var y = (0 + 4 + 4) / 3 = 8/3; Cov = ((-2)(0) + 0(2) + 2(-2)) / 3 = -4/3.
    const { mean, covariance } = meanAndCovariance(Float32Array.from([0, 0, 2, 2, 4, -2]));
    assert.deepEqual(mean, [2, 0]);
    close(covariance[0][0], 8 / 3, 1e-6);
    close(covariance[1][1], 8 / 3, 1e-6);
    close(covariance[0][1], -4 / 3, 1e-6);
    close(covariance[1][0], -4 / 3, 1e-6);
  });
});

describe("gaussianKlFromStandard", () => {
  test("is 0 for N(0, I)", () => {
    assert.equal(
      gaussianKlFromStandard(
        [0, 0],
        [
          [1, 0],
          [0, 1],
        ],
      ),
      0,
    );
  });

  test("a shifted, scaled Gaussian gives the closed form by hand", () => {
    // m = (1, 2), S = diag(4, 0.25): 0.5 (4 + 0.25 + 1 + 4 - 2 - ln 1) = 3.625.
    close(
      gaussianKlFromStandard(
        [1, 2],
        [
          [4, 0],
          [0, 0.25],
        ],
      ),
      3.625,
      1e-12,
    );
    // Correlated: S = [[1, 0.5], [0.5, 1]], det 0.75: 0.5 (2 - 2 - ln 0.75) = -0.5 ln 0.75.
    close(
      gaussianKlFromStandard(
        [0, 0],
        [
          [1, 0.5],
          [0.5, 1],
        ],
      ),
      -0.5 * Math.log(0.75),
      1e-12,
    );
  });

  test("a degenerate covariance is infinitely far from N(0, I)", () => {
    assert.equal(
      gaussianKlFromStandard(
        [0, 0],
        [
          [1, 1],
          [1, 1],
        ],
      ),
      Infinity,
    );
  });
});

describe("energyDistance", () => {
  test("hand arithmetic on one point each: 2|x - y| - 0 - 0", () => {
    // With one point per sample there are no pairs within a sample; the within terms are 0/0, so use two points.
    // X = {(0,0), (0,2)}, Y = {(3,0), (3,2)}: E|X-Y| = (3 + sqrt(13) + sqrt(13) + 3) / 4, E|X-X'| = 2, E|Y-Y'| = 2.
    const expected = 2 * ((6 + 2 * Math.sqrt(13)) / 4) - 2 - 2;
    close(energyDistance(Float32Array.from([0, 0, 0, 2]), Float32Array.from([3, 0, 3, 2])), expected, 1e-6);
  });

  test("tends to 0 for two samples of one distribution and is clearly positive for a shifted one", () => {
    const a = gaussian(1500, 1);
    const b = gaussian(1500, 2);
    const shifted = gaussian(1500, 3, [1, 0]);
    const same = energyDistance(a, b);
    const apart = energyDistance(a, shifted);
    assert.ok(Math.abs(same) < 0.01, `same distribution: ${same}`);
    // For N(0, I) against N((1, 0), I): E|X - X'| = E|Y - Y'| = sqrt(2) sqrt(pi / 2) = sqrt(pi) (a Rayleigh
    // mean), and E|X - Y| = 1.9862 (the norm of N((1, 0), 2I), by a 4,000,000-draw Monte Carlo in NumPy),
    // so the distance is 2 x 1.9862 - 2 sqrt(pi) = 0.4274.
    close(apart, 2 * 1.9862 - 2 * Math.sqrt(Math.PI), 0.06, "shifted by one unit:");
  });
});

describe("latent summaries", () => {
  test("active units count the dimensions whose zMean varies more than 0.01", () => {
    const varying = gaussian(2000, 4, [0, 0], [1, 0.05]); // variances 1 and 0.0025
    assert.equal(activeUnits(varying), 1);
    assert.equal(activeUnits(gaussian(2000, 5)), 2);
  });

  test("spread: the mean radius of N(0, I) is sqrt(pi / 2)", () => {
    const { radius, std } = latentSpread(gaussian(20_000, 6));
    close(radius, Math.sqrt(Math.PI / 2), 0.02, "radius");
    close(std[0], 1, 0.02, "std");
  });

  test("manifold variety and sharpness by hand", () => {
    // Two 2-pixel digits: (0, 1) and (1, 1). Pixel 0 has sd 0.5, pixel 1 sd 0: variety 0.25.
    close(manifoldVariety(Float32Array.from([0, 1, 1, 1]), 2), 0.25, 1e-7);
    // |2p - 1| of 0, 1, 0.5, 0.75 is 1, 1, 0, 0.5: mean 0.625.
    close(manifoldSharpness(Float32Array.from([0, 1, 0.5, 0.75])), 0.625, 1e-7);
  });
});
