import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import { TUTORIAL_CONFIG } from "../../src/vae/config";
import { decodeManifold, manifoldGrid } from "../../src/vae/latent";
import { buildModel, decode } from "../../src/vae/model";

before(async () => {
  await initBackend({ quiet: true });
});

describe("the manifold", () => {
  test("grid: top row z[1] = +3, left column z[0] = -3, steps of 6 / 29", () => {
    const { gridX, gridY, z } = manifoldGrid(30, 3);
    assert.equal(gridX[0], -3);
    assert.ok(Math.abs(gridX[29] - 3) < 1e-12);
    assert.ok(Math.abs(gridX[1] - gridX[0] - 6 / 29) < 1e-12);
    assert.equal(gridY[0], 3);
    // Row 0, column 0 is the top-left corner (-3, 3); row 29, column 29 is (3, -3).
    assert.deepEqual([z[0], z[1]], [-3, 3]);
    assert.ok(Math.abs(z[2 * 899] - 3) < 1e-6 && Math.abs(z[2 * 899 + 1] + 3) < 1e-6);
  });

  test("one batched decode equals decoding the points one at a time", () => {
    const model = buildModel(TUTORIAL_CONFIG);
    const n = 4;
    const batched = decodeManifold(model, n, 3);
    const { z } = manifoldGrid(n, 3);
    for (const row of [0, 5, 15]) {
      const single = decode(model, tf.tensor2d(z.subarray(2 * row, 2 * row + 2), [1, 2])).dataSync();
      const slice = batched.subarray(row * 784, (row + 1) * 784);
      const maxDiff = Math.max(...Array.from(single, (v, i) => Math.abs(v - slice[i])));
      assert.ok(maxDiff < 1e-5, `row ${row}: max difference ${maxDiff}`);
    }
  });
});
