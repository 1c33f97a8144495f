import assert from "node:assert/strict";
import { test } from "node:test";
import { deriveSeed, permutation, Random, standardNormalSamples } from "../../src/vae/random";

test("permutation holds every index once and depends on the seed", () => {
  const order = permutation(1000, 3);
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.deepEqual(permutation(1000, 3), order);
  assert.notDeepEqual(permutation(1000, 4), order);
});

test("normal draws have mean 0 and variance 1 (100,000 draws: standard error 0.003)", () => {
  const draws = new Random(11).fillNormal(new Float32Array(100_000));
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
  const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length;
  assert.ok(Math.abs(mean) < 0.015, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
  // About 68.27% of a standard normal lies within one standard deviation.
  const within = draws.filter((d) => Math.abs(d) < 1).length / draws.length;
  assert.ok(Math.abs(within - 0.6827) < 0.01, `within one sd: ${within}`);
});

test("uniform draws stay in [low, high) and seeds are repeatable", () => {
  const draws = new Random(5).fillUniform(new Float32Array(10_000), -2, 3);
  assert.ok(draws.every((d) => d >= -2 && d < 3));
  assert.deepEqual(new Random(5).fillUniform(new Float32Array(10_000), -2, 3), draws);
  assert.equal(standardNormalSamples(5000, 1).length, 10_000);
});

test("derived seeds differ per part and are stable", () => {
  assert.equal(deriveSeed(42, 1, 2), deriveSeed(42, 1, 2));
  assert.notEqual(deriveSeed(42, 1, 2), deriveSeed(42, 2, 1));
  assert.notEqual(deriveSeed(42, 1), deriveSeed(43, 1));
});
