import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import {
  klLoss,
  LOGIT_LIMIT,
  reconstructionLoss,
  reconstructionLossFromLogits,
  vaeLoss,
  vaeLossFromLogits,
} from "../../src/vae/loss";
import { Random } from "../../src/vae/random";

before(async () => {
  await initBackend({ quiet: true });
});

const close = (actual: number, expected: number, tolerance = 1e-5) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

describe("reconstructionLoss", () => {
  test("is originalDim x mean pixel BCE, averaged over the batch (hand arithmetic)", () => {
    // Row 1: pixels x = (1, 0), p = (0.8, 0.4): BCE per pixel -ln 0.8 and -ln 0.6; 2 x their mean = their sum.
    // Row 2: x = (0.5, 1), p = (0.5, 0.9): -(0.5 ln 0.5 + 0.5 ln 0.5) = ln 2, and -ln 0.9.
    const row1 = -Math.log(0.8) - Math.log(0.6);
    const row2 = Math.log(2) - Math.log(0.9);
    const loss = reconstructionLoss(
      tf.tensor2d([
        [1, 0],
        [0.5, 1],
      ]),
      tf.tensor2d([
        [0.8, 0.4],
        [0.5, 0.9],
      ]),
    );
    close(loss.dataSync()[0], (row1 + row2) / 2);
  });

  test("clips probabilities like Keras, so p = 0 for a lit pixel costs -ln(1e-7), not infinity", () => {
    const loss = reconstructionLoss(tf.tensor2d([[1]]), tf.tensor2d([[0]]));
    close(loss.dataSync()[0], -Math.log(1e-7), 1e-3);
  });
});

describe("reconstructionLossFromLogits", () => {
  test("matches hand arithmetic: logits 0 and ln 4 are p = 0.5 and 0.8", () => {
    // x = (1, 0): -ln 0.5 - ln(1 - 0.8) = ln 2 + ln 5.
    const loss = reconstructionLossFromLogits(tf.tensor2d([[1, 0]]), tf.tensor2d([[0, Math.log(4)]]));
    close(loss.dataSync()[0], Math.log(2) + Math.log(5));
  });

  test("clips like Keras: logit 40 on a dark pixel costs -ln(1e-7), logit limit ln((1 - 1e-7) / 1e-7)", () => {
    close(LOGIT_LIMIT, Math.log(9_999_999), 1e-9);
    close(reconstructionLossFromLogits(tf.tensor2d([[0]]), tf.tensor2d([[40]])).dataSync()[0], -Math.log(1e-7), 1e-4);
  });

  test("matches a float64 evaluation by hand and the probability form's automatic gradient, saturated pixels included", () => {
    const random = new Random(11);
    const rows = 16;
    const l = random.fillUniform(new Float32Array(rows * 784), -22, 22);
    const xs = random.fillUniform(new Float32Array(rows * 784), 0, 1).map((v, i) => (i % 3 === 0 ? Math.round(v) : v));
    const logits = tf.tensor2d(l, [rows, 784]);
    const x = tf.tensor2d(xs, [rows, 784]);
    // Float64 by hand: clip the logit, p = 1 / (1 + e^-l), BCE summed over pixels, averaged over rows.
    let expected = 0;
    l.forEach((logit, i) => {
      const clipped = Math.min(Math.max(logit, -LOGIT_LIMIT), LOGIT_LIMIT);
      const p = 1 / (1 + Math.exp(-clipped));
      expected -= (xs[i] * Math.log(p) + (1 - xs[i]) * Math.log(1 - p)) / rows;
    });
    const fromLogits = (t: tf.Tensor) => reconstructionLossFromLogits(x, t as tf.Tensor2D);
    close(fromLogits(logits).dataSync()[0], expected, 1e-5 * expected);
    // The gradient by hand, (p - x) / rows inside the clip and 0 outside; and the float32 probability
    // form's automatic gradient, which agrees except within float32 rounding of the clip's edge.
    const reference = tf
      .grad((t: tf.Tensor) => reconstructionLoss(x, tf.sigmoid(t) as tf.Tensor2D))(logits)
      .dataSync();
    const gradient = tf.grad(fromLogits)(logits).dataSync();
    let saturated = 0;
    gradient.forEach((value, i) => {
      const byHand = Math.abs(l[i]) <= LOGIT_LIMIT ? (1 / (1 + Math.exp(-l[i])) - xs[i]) / rows : 0;
      if (byHand === 0) saturated++;
      assert.ok(Math.abs(value - byHand) <= 1e-6, `pixel ${i}: ${value} vs ${byHand} by hand`);
      const nearEdge = Math.abs(Math.abs(l[i]) - LOGIT_LIMIT) < 0.6;
      if (!nearEdge)
        assert.ok(Math.abs(value - reference[i]) <= 1e-6, `pixel ${i}: ${value} vs ${reference[i]} by autodiff`);
    });
    assert.ok(saturated > 1000, `the test should cover clipped pixels; ${saturated} had a zero gradient`);
  });
});

describe("klLoss", () => {
  test("is 0 when q(z|x) is the prior: zMean = 0, zLogVar = 0", () => {
    assert.equal(klLoss(tf.zeros([4, 2]) as tf.Tensor2D, tf.zeros([4, 2]) as tf.Tensor2D).dataSync()[0], 0);
  });

  test("matches the closed form by hand: zMean (1, 2), variances (1, 4)", () => {
    // -0.5 [(1 + 0 - 1 - 1) + (1 + ln 4 - 4 - 4)] = -0.5 (ln 4 - 8) = 4 - ln 2.
    const kl = klLoss(tf.tensor2d([[1, 2]]), tf.tensor2d([[0, Math.log(4)]]));
    close(kl.dataSync()[0], 4 - Math.log(2));
  });

  test("agrees with a Monte-Carlo estimate E_q[log q(z) - log p(z)]", () => {
    const mu = [0.7, -1.2];
    const sigma = [0.5, 1.5];
    const samples = 200_000;
    const eps = new Random(7).fillNormal(new Float32Array(samples * 2));
    let sum = 0;
    for (let i = 0; i < samples; i++) {
      for (let j = 0; j < 2; j++) {
        const e = eps[2 * i + j];
        const z = mu[j] + sigma[j] * e;
        // log N(z; mu, sigma^2) - log N(z; 0, 1); the 0.5 ln(2 pi) terms cancel.
        sum += -Math.log(sigma[j]) - 0.5 * e * e + 0.5 * z * z;
      }
    }
    const monteCarlo = sum / samples;
    const closedForm = klLoss(tf.tensor2d([mu]), tf.tensor2d([sigma.map((s) => Math.log(s * s))])).dataSync()[0];
    assert.ok(Math.abs(monteCarlo - closedForm) < 0.02, `Monte Carlo ${monteCarlo} vs closed form ${closedForm}`);
  });

  test("its gradient in zMean is zMean / batch (d/dmu of mu^2 / 2, averaged)", () => {
    const zMean = tf.tensor2d([
      [1, -2],
      [3, 0.5],
    ]);
    const zLogVar = tf.tensor2d([
      [0.1, 0.2],
      [-0.3, 0],
    ]);
    const gradient = tf
      .grad((m: tf.Tensor) => klLoss(m as tf.Tensor2D, zLogVar))(zMean)
      .arraySync() as number[][];
    assert.deepEqual(
      gradient.flat().map((g) => Math.round(g * 1e6) / 1e6),
      [0.5, -1, 1.5, 0.25],
    );
  });
});

describe("vaeLoss", () => {
  test("total = reconstruction + c x KL, with the terms returned apart", () => {
    const x = tf.tensor2d([[1, 0]]);
    const xDecoded = tf.tensor2d([[0.8, 0.4]]);
    const zMean = tf.tensor2d([[1, 2]]);
    const zLogVar = tf.tensor2d([[0, Math.log(4)]]);
    const { reconstruction, kl, total } = vaeLoss(x, xDecoded, zMean, zLogVar, 0.5);
    const expectedReconstruction = -Math.log(0.8) - Math.log(0.6);
    const expectedKl = 4 - Math.log(2);
    close(reconstruction.dataSync()[0], expectedReconstruction);
    close(kl.dataSync()[0], expectedKl);
    close(total.dataSync()[0], expectedReconstruction + 0.5 * expectedKl);
    const fromLogits = vaeLossFromLogits(
      x,
      tf.log(tf.div(xDecoded, tf.sub(1, xDecoded))) as tf.Tensor2D,
      zMean,
      zLogVar,
      0.5,
    );
    close(fromLogits.total.dataSync()[0], expectedReconstruction + 0.5 * expectedKl);
  });
});
