import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ConfigError,
  loadConfig,
  profileFromEnv,
  QUICK_CONFIG,
  resolveConfig,
  TUTORIAL_CONFIG,
  type VaeConfig,
} from "../../src/vae/config";

test("the tutorial's values, frozen", () => {
  assert.deepEqual(TUTORIAL_CONFIG.klCoefficients, [0, 0.02, 0.1, 0.5, 1, 2, 10, 20]);
  assert.equal(TUTORIAL_CONFIG.epochs, 40);
  assert.equal(TUTORIAL_CONFIG.batchSize, 128);
  assert.equal(TUTORIAL_CONFIG.intermediateDim, 512);
  assert.ok(Object.isFrozen(TUTORIAL_CONFIG) && Object.isFrozen(TUTORIAL_CONFIG.klCoefficients));
  assert.throws(() => ((TUTORIAL_CONFIG as { epochs: number }).epochs = 1), TypeError);
});

test("VAE_PROFILE selects the profile; overrides spread on top", () => {
  assert.equal(profileFromEnv({}), "tutorial");
  assert.equal(loadConfig({}, { VAE_PROFILE: "quick" }).epochs, QUICK_CONFIG.epochs);
  assert.equal(loadConfig({ epochs: 5 }, { VAE_PROFILE: "quick" }).epochs, 5);
  assert.throws(
    () => profileFromEnv({ VAE_PROFILE: "fast" }),
    /VAE_PROFILE="fast" is not a profile; use one of: tutorial, quick/,
  );
});

const refused: [string, Record<string, unknown>, RegExp][] = [
  ["an unknown key", { epoch: 5 }, /Unknown config field\(s\): epoch\. Allowed fields: originalDim/],
  [
    "a negative coefficient",
    { klCoefficients: [0, -1] },
    /klCoefficients must hold finite numbers >= 0; got -1 in \[0, -1\]/,
  ],
  ["a non-finite coefficient", { klCoefficients: [Infinity] }, /got Infinity/],
  ["NaN as a coefficient", { klCoefficients: [NaN] }, /got NaN/],
  ["a coefficient given as text", { klCoefficients: ["1"] }, /got 1 in/],
  ["an empty coefficient list", { klCoefficients: [] }, /klCoefficients must be a non-empty list/],
  ["a repeated coefficient", { klCoefficients: [1, 1] }, /must not repeat a value; got \[1, 1\]/],
  ["zero epochs", { epochs: 0 }, /epochs must be a whole number >= 1; got 0/],
  ["fractional epochs", { epochs: 1.5 }, /epochs must be a whole number >= 1; got 1\.5/],
  ["a fractional batch size", { batchSize: 12.5 }, /batchSize must be a whole number >= 1; got 12\.5/],
  ["a zero batch size", { batchSize: 0 }, /batchSize must be a whole number >= 1; got 0/],
  [
    "a 3D latent space",
    { latentDim: 3 },
    /latentDim must be 2: the encoder scatter and the decoder manifold draw a 2D latent space; got 3/,
  ],
  ["a negative learning rate", { learningRate: -0.1 }, /learningRate must be a finite number > 0; got -0\.1/],
  ["an unknown data source", { dataSource: "web" }, /dataSource must be "auto", "embedded" or "idx"; got "web"/],
  ["a negative seed", { seed: -1 }, /seed must be a whole number from 0 to 4294967295; got -1/],
];

for (const [what, overrides, message] of refused) {
  test(`refuses ${what}, naming the field, the value and what is allowed`, () => {
    assert.throws(
      () => resolveConfig(overrides as Partial<VaeConfig>),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
    );
  });
}

test("a valid config comes back frozen, with the coefficients copied", () => {
  const coefficients = [0, 1];
  const config = resolveConfig({ klCoefficients: coefficients });
  coefficients.push(5);
  assert.deepEqual(config.klCoefficients, [0, 1]);
  assert.ok(Object.isFrozen(config));
});
