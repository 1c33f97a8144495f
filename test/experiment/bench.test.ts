import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { FLOP_PER_SAMPLE, pairedRatio, projectSweepSeconds, writeTiledMnist } from "../../src/experiment/bench";
import { PIXELS, readEmbeddedDigits } from "../../src/vae/data";
import { readIdxMnist } from "../../src/vae/idx";

test("the paired ratio is the median of the pairs' ratios, the warm-up pair left out", () => {
  // Ratios 10/5 = 2 (warm-up), 6/3 = 2, 9/3 = 3, 4/4 = 1: the median of 2, 3, 1 is 2.
  assert.equal(pairedRatio([10, 6, 9, 4], [5, 3, 3, 4]), 2);
  // One pair: its ratio. Two pairs: the second's.
  assert.equal(pairedRatio([3], [2]), 1.5);
  assert.equal(pairedRatio([8, 3], [2, 4]), 0.75);
  assert.throws(() => pairedRatio([], []), /no pairs/);
  // Without a warm-up (whole sweeps, each in fresh processes) every pair counts: median of 2, 2, 3, 1 = 2.
  assert.equal(pairedRatio([10, 6, 9, 4], [5, 3, 3, 4], false), 2);
  assert.equal(pairedRatio([8, 3], [2, 4], false), (4 + 0.75) / 2);
});

test("the sweep projection: rounds of as many coefficients as processes, each its epochs and its tail", () => {
  // 8 coefficients on 2 processes: 4 rounds of (40 epochs x 3 s + 5 s) = 4 x 125 = 500 s.
  assert.equal(projectSweepSeconds({ epochSeconds: 3, epochs: 40, tailSeconds: 5, coefficients: 8, jobs: 2 }), 500);
  // 3 coefficients on 2 processes still take 2 rounds.
  assert.equal(projectSweepSeconds({ epochSeconds: 1, epochs: 10, tailSeconds: 0, coefficients: 3, jobs: 2 }), 20);
});

test("tiled MNIST files: the embedded digits repeated to the asked row count, as bytes, readable as IDX", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-tiled-"));
  try {
    writeTiledMnist(dir, 10_003, 7);
    const { train, test } = readIdxMnist(dir);
    assert.equal(train.count, 10_003);
    assert.equal(test.count, 7);
    const { images, labels } = readEmbeddedDigits();
    // Row 10,001 is embedded digit 1 again; its pixels are round(255 x) of the embedded values.
    for (const [row, digit] of [
      [0, 0],
      [10_001, 1],
    ]) {
      assert.equal(train.labels[row], labels[digit]);
      for (let p = 0; p < PIXELS; p++)
        assert.equal(train.images[row * PIXELS + p], Math.round(255 * images[digit * PIXELS + p]));
    }
    assert.deepEqual(Array.from(test.labels), Array.from(labels.subarray(0, 7)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the benchmark's FLOP count per sample, by hand", () => {
  // Forward multiply-adds 784*512 + 2*(512*2) + 2*512 + 512*784 = 805,888; weight gradients the same;
  // input gradients of all but the first layer 2*(512*2) + 2*512 + 512*784 = 404,480; 2 FLOP each.
  assert.equal(FLOP_PER_SAMPLE, 2 * (805_888 + 805_888 + 404_480));
  assert.equal(FLOP_PER_SAMPLE, 4_032_512);
});
