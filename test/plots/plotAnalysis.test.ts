import assert from "node:assert/strict";
import { test } from "node:test";
import type { CoefficientMetrics } from "../../src/experiment/metrics";
import { allLossCurvesFigure, digitRowsFigure, manifoldGridFigure, rateDistortionFigure, scatterGridFigure, scatterSliderFigure } from "../../src/plots/plotAnalysis";
import type { CoefficientRun } from "../../src/experiment/sweep";

const coefficients = [0, 1, 10];
const runs = coefficients.map((klCoefficient, i) => ({
  klCoefficient,
  history: [1, 2].map((epoch) => ({ epoch, seconds: 1, train: { reconstruction: 150 + i, kl: 10 / (i + 1), total: 0 }, test: { reconstruction: 151 + i, kl: 9 / (i + 1), total: 0 } })),
  zMean: Float32Array.from([i, -i, 2 * i, 1]),
  manifold: new Float32Array(4 * 784).fill(0.25 * i),
})) as unknown as CoefficientRun[];
const metrics = coefficients.map((klCoefficient, i) => ({ klCoefficient, rate: 10 / (i + 1), distortion: 150 + i })) as unknown as CoefficientMetrics[];

test("rate-distortion: one labelled point per coefficient at (rate, distortion)", () => {
  const [trace] = rateDistortionFigure(metrics).data as { x: number[]; y: number[]; text: string[] }[];
  assert.deepEqual(trace.x, [10, 5, 10 / 3]);
  assert.deepEqual(trace.y, [150, 151, 152]);
  assert.deepEqual(trace.text, ["c = 0", "c = 1", "c = 10"]);
});

test("loss curves: train and test, reconstruction and KL, for every coefficient", () => {
  assert.equal(allLossCurvesFigure(runs).data.length, 4 * coefficients.length);
});

test("small multiples: one panel per coefficient, each on its own axes", () => {
  const scatters = scatterGridFigure({ runs, yTest: Uint8Array.from([3, 8]) });
  assert.deepEqual(scatters.data.map((t) => t.xaxis), ["x", "x2", "x3"]);
  assert.equal((scatters.layout.annotations as unknown[]).length, 3);
  const manifolds = manifoldGridFigure({ runs, gridX: [-3, 3] });
  assert.deepEqual(manifolds.data.map((t) => t.type), ["image", "image", "image"]);
});

test("the slider has one step and one frame per coefficient", () => {
  const figure = scatterSliderFigure({ runs, yTest: Uint8Array.from([3, 8]) });
  const steps = (figure.layout.sliders as { steps: { label: string; args: unknown[] }[] }[])[0].steps;
  assert.deepEqual(steps.map((s) => s.label), ["0", "1", "10"]);
  assert.deepEqual(figure.frames?.map((f) => f.name), ["c = 0", "c = 1", "c = 10"]);
  assert.deepEqual((figure.frames?.[2].data as { x: number[] }[])[0].x, [2, 4]);
});

test("digit rows: one row label per row", () => {
  const figure = digitRowsFigure({ labels: ["original", "c = 0"], digits: new Float32Array(2 * 3 * 784), columns: 3 }, "t");
  assert.deepEqual((figure.layout.yaxis as { ticktext: string[]; tickvals: number[] }).ticktext, ["original", "c = 0"]);
  assert.deepEqual((figure.layout.yaxis as { tickvals: number[] }).tickvals, [14, 42]);
});
