import assert from "node:assert/strict";
import { test } from "node:test";
import { spearman } from "../../src/experiment/conclusions";

test("Spearman's rank correlation by hand", () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [9, 7, 3, 1]), -1);
  // Ranks (1, 2, 3) against (1, 3, 2): sum of d^2 = 2, rho = 1 - 6 x 2 / (3 x 8) = 0.5.
  assert.equal(spearman([1, 2, 3], [5, 9, 7]), 0.5);
});
