/**
 * What the tutorial's figures read from a trained model: the encoder's zMean of every test digit (the
 * scatter) and the decoded 30 x 30 manifold over the latent grid. Introduced in
 * `notebooks/03-kl-sweep.ipynb`.
 */
import * as tf from "@tensorflow/tfjs";
import { decode, encode, type Vae } from "./model";

/**
 * Runs `compute` in a tidy scope and returns its values. The values are read outside the scope on
 * purpose: `tf.tidy` inspects whatever its function returns for tensors to keep, and walking a large
 * Float32Array element by element costs many times the decode itself (docs/performance.md).
 */
export function readValues(compute: () => tf.Tensor): Float32Array {
  const tensor = tf.tidy(compute);
  const values = tensor.dataSync() as Float32Array;
  tensor.dispose();
  return values;
}

/** The encoder's zMean for every row of `x` (row-major [rows, latentDim]), in batches. */
export function encodeMeans(model: Vae, x: Float32Array, originalDim: number, batchRows = 1000): Float32Array {
  const rows = x.length / originalDim;
  const latentDim = (model.layers.zMean.getWeights()[1] as tf.Tensor).size;
  const out = new Float32Array(rows * latentDim);
  for (let start = 0; start < rows; start += batchRows) {
    const end = Math.min(rows, start + batchRows);
    const values = readValues(
      () =>
        encode(model, tf.tensor2d(x.subarray(start * originalDim, end * originalDim), [end - start, originalDim]))
          .zMean,
    );
    out.set(values, start * latentDim);
  }
  return out;
}

/**
 * The grid of the tutorial's manifold: n x n latent points over [-extent, extent]^2, row by row from
 * the top, so row i has z[1] = grid_y[i] (grid_y descending from +extent) and column j has
 * z[0] = grid_x[j] (ascending), like `np.linspace(-3, 3, n)` and its reverse.
 */
export function manifoldGrid(n: number, extent: number): { gridX: number[]; gridY: number[]; z: Float32Array } {
  const gridX = Array.from({ length: n }, (_, j) => (n === 1 ? 0 : -extent + (2 * extent * j) / (n - 1)));
  const gridY = [...gridX].reverse();
  const z = new Float32Array(n * n * 2);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      z[2 * (i * n + j)] = gridX[j];
      z[2 * (i * n + j) + 1] = gridY[i];
    }
  }
  return { gridX, gridY, z };
}

/** Decodes the whole n x n manifold in one batched call; returns [n * n, originalDim] row-major. */
export function decodeManifold(model: Vae, n: number, extent: number): Float32Array {
  const { z } = manifoldGrid(n, extent);
  return readValues(() => decode(model, tf.tensor2d(z, [n * n, 2])));
}
