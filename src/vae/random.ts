/**
 * Seeded pseudo-random numbers computed in JavaScript, so that shuffles, initial weights and sampling
 * noise are the same on every TensorFlow.js backend (tfjs-node, wasm, cpu).
 */

/** A 32-bit generator (mulberry32): small, fast and good enough for shuffling and noise. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A uniform whole number in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fills `out` with standard normal draws (Box-Muller: two uniforms give two independent normals). */
  fillNormal(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = 1 - this.next(); // in (0, 1], so the log is finite
      const u2 = this.next();
      const radius = Math.sqrt(-2 * Math.log(u1));
      out[i] = radius * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = radius * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }

  /** Fills `out` with uniform draws from [low, high). */
  fillUniform(out: Float32Array, low: number, high: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * this.next();
    return out;
  }
}

/**
 * A seed derived from a base seed and a list of integers (for example an epoch number), so that each
 * use of randomness has its own stream and changing one does not shift the others.
 */
export function deriveSeed(base: number, ...parts: number[]): number {
  let h = (base ^ 0x9e3779b9) >>> 0;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

/**
 * The random streams, one per use of randomness: each derives its seed from the config's seed and its
 * stream (`deriveSeed(seed, RANDOM_STREAMS.batchNoise, epoch, batch)`). The numbers are arbitrary but
 * fixed: changing one changes every result drawn from that stream.
 */
export const RANDOM_STREAMS = Object.freeze({
  /** The split of the embedded digits into training and test rows (`loadMnist`). */
  dataSplit: 0x5b117,
  /** The order of the training rows in each epoch (`trainEpoch`). */
  epochShuffle: 0x5f1e,
  /** The sampling noise epsilon of each batch (`batchEpsilon`). */
  batchNoise: 0xe95,
  /** The points of the prior N(0, I) decoded into digits (`priorSampleRows`). */
  priorSamples: 0x9a1,
  /** The N(0, I) sample the encoder's output is compared with (`coefficientMetrics`). */
  referenceNormal: 0xe4e,
});

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const random = new Random(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = random.int(i + 1);
    const swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  return order;
}

/** The noise of one batch: its own seeded stream, so a batch's epsilon never depends on other runs. */
export function batchEpsilon(
  seed: number,
  epoch: number,
  batch: number,
  rows: number,
  latentDim: number,
): Float32Array {
  return new Random(deriveSeed(seed, RANDOM_STREAMS.batchNoise, epoch, batch)).fillNormal(
    new Float32Array(rows * latentDim),
  );
}

/** `count` rows of a 2D standard normal, as the tutorial's first figure draws them. */
export function standardNormalSamples(count: number, seed: number, dim = 2): Float32Array {
  return new Random(seed).fillNormal(new Float32Array(count * dim));
}
