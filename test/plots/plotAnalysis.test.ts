import assert from "node:assert/strict";
import { test } from "node:test";
import type { CoefficientMetrics } from "../../src/experiment/metrics";
import {
  allLossCurvesFigure,
  digitRowsFigure,
  manifoldGridFigure,
  rateDistortionFigure,
  rateDistortionSeedsFigure,
  scatterGridFigure,
  scatterSliderFigure,
} from "../../src/plots/plotAnalysis";
import type { CoefficientRun } from "../../src/experiment/sweep";

const coefficients = [0, 1, 10];
const runs = coefficients.map((klCoefficient, i) => ({
  klCoefficient,
  history: [1, 2].map((epoch) => ({
    epoch,
    seconds: 1,
    train: { reconstruction: 150 + i, kl: 10 / (i + 1), total: 0 },
    test: { reconstruction: 151 + i, kl: 9 / (i + 1), total: 0 },
  })),
  zMean: Float32Array.from([i, -i, 2 * i, 1]),
  manifold: new Float32Array(4 * 784).fill(0.25 * i),
})) as unknown as CoefficientRun[];
const metrics = coefficients.map((klCoefficient, i) => ({
  klCoefficient,
  rate: 10 / (i + 1),
  distortion: 150 + i,
})) as unknown as CoefficientMetrics[];

test("rate-distortion: one labelled point per coefficient at (rate, distortion)", () => {
  const [trace] = rateDistortionFigure(metrics).data as { x: number[]; y: number[]; text: string[] }[];
  assert.deepEqual(trace.x, [10, 5, 10 / 3]);
  assert.deepEqual(trace.y, [150, 151, 152]);
  assert.deepEqual(trace.text, ["c = 0", "c = 1", "c = 10"]);
});

test("rate-distortion over seeds: the mean with sd error bars both ways, every seed's point behind it", () => {
  // Two seeds, two coefficients: c = 0 at (rate, distortion) (100, 150) and (110, 160); c = 1 at (20, 170) and (20, 174).
  const points = {
    5: [
      [100, 150],
      [20, 170],
    ],
    6: [
      [110, 160],
      [20, 174],
    ],
  } as Record<number, number[][]>;
  const seeds = Object.entries(points).map(([seed, perC]) => ({
    seed: Number(seed),
    runs: perC.map(([rate, distortion], i) => ({
      klCoefficient: i,
      metrics: {
        klCoefficient: i,
        rate,
        distortion,
        negativeElbo: 0,
        aggregateEnergyDistance: 0,
        latentRadius: 0,
        manifoldVariety: 0,
      },
    })),
  })) as unknown as Parameters<typeof rateDistortionSeedsFigure>[0]["seeds"];
  const [each, mean] = rateDistortionSeedsFigure({ seeds }).data as {
    x: number[];
    y: number[];
    text: string[];
    marker: { opacity?: number };
    error_x: { array: number[] };
    error_y: { array: number[] };
  }[];
  assert.deepEqual(each.x, [100, 20, 110, 20]);
  assert.deepEqual(each.y, [150, 170, 160, 174]);
  assert.deepEqual(each.text, ["c = 0, seed 5", "c = 1, seed 5", "c = 0, seed 6", "c = 1, seed 6"]);
  assert.ok((each.marker.opacity ?? 1) < 0.5, "the seeds' points are faint");
  assert.deepEqual(mean.x, [105, 20]);
  assert.deepEqual(mean.y, [155, 172]);
  // Two values a, b have sample sd |a - b| / sqrt(2): 10 / sqrt(2) for c = 0's rate and distortion,
  // 0 for c = 1's rate, 4 / sqrt(2) for its distortion.
  assert.deepEqual(
    mean.error_x.array.map((v) => v.toFixed(6)),
    [(10 / Math.SQRT2).toFixed(6), "0.000000"],
  );
  assert.deepEqual(
    mean.error_y.array.map((v) => v.toFixed(6)),
    [(10 / Math.SQRT2).toFixed(6), (4 / Math.SQRT2).toFixed(6)],
  );
});

test("loss curves: train and test, reconstruction and KL, for every coefficient", () => {
  assert.equal(allLossCurvesFigure(runs).data.length, 4 * coefficients.length);
});

test("small multiples: one panel per coefficient, each on its own axes", () => {
  const scatters = scatterGridFigure({ runs, yTest: Uint8Array.from([3, 8]) });
  assert.deepEqual(
    scatters.data.map((t) => t.xaxis),
    ["x", "x2", "x3"],
  );
  assert.equal((scatters.layout.annotations as unknown[]).length, 3);
  const manifolds = manifoldGridFigure({ runs, gridX: [-3, 3] });
  assert.deepEqual(
    manifolds.data.map((t) => t.type),
    ["image", "image", "image"],
  );
});

test("the slider has one step and one frame per coefficient", () => {
  const figure = scatterSliderFigure({ runs, yTest: Uint8Array.from([3, 8]) });
  const steps = (figure.layout.sliders as { steps: { label: string; args: unknown[] }[] }[])[0].steps;
  assert.deepEqual(
    steps.map((s) => s.label),
    ["0", "1", "10"],
  );
  assert.deepEqual(
    figure.frames?.map((f) => f.name),
    ["c = 0", "c = 1", "c = 10"],
  );
  assert.deepEqual((figure.frames?.[2].data as { x: number[] }[])[0].x, [2, 4]);
});

test("digit rows: one row label per row", () => {
  const figure = digitRowsFigure(
    { labels: ["original", "c = 0"], digits: new Float32Array(2 * 3 * 784), columns: 3 },
    "t",
  );
  assert.deepEqual((figure.layout.yaxis as { ticktext: string[]; tickvals: number[] }).ticktext, ["original", "c = 0"]);
  assert.deepEqual((figure.layout.yaxis as { tickvals: number[] }).tickvals, [14, 42]);
});
