/**
 * Fixes for three of the wasm backend's stock kernels that training calls at every step: transposed
 * matrix products (`BatchMatMul`), sums over the batch rows (`Sum`) and `Identity`. Each is re-registered
 * in front of the stock kernel, gives the same numbers and serves only the cases it covers; nothing
 * changes for other backends. `select.ts` installs them when it loads the wasm backend.
 */
import * as tf from "@tensorflow/tfjs";
import { option } from "../system/options";

let matMulFixed = false;

/**
 * The wasm `BatchMatMul` kernel is many times slower when asked to transpose an operand, and every backward
 * pass of a dense layer asks for that (dW = x^T dy, dx = dy W^T; docs/performance.md). This re-registers it to
 * transpose the operand explicitly with the wasm `Transpose` kernel and run the stock kernel untransposed (the
 * same numbers); a large transposed weight matrix is multiplied the other way round instead. The large
 * products of training are taken before they get here by `wasmGemm.ts` (installed after this fix); this fix
 * serves the shapes those loops do not cover. Nothing changes for other backends or in the training code.
 */
export function installWasmMatMulFix(): void {
  // VAE_WASM_FAST_KERNELS=0 keeps the stock kernel, to measure the difference (npm run bench).
  if (matMulFixed || !option("wasmFastKernels")) return;
  const stock = tf.getKernel("BatchMatMul", "wasm");
  const transpose = tf.getKernel("Transpose", "wasm");
  if (!stock || !transpose) return;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({
    ...stock,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      if (!transposeA && !transposeB) return stock.kernelFunc({ inputs, backend, attrs });
      const release = backend as unknown as { disposeData(dataId: object): void };
      const swapLastTwo = (x: tf.TensorInfo): tf.TensorInfo => {
        const perm = x.shape.map((_, i) => i);
        [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
        return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
      };
      const plain = { ...attrs, transposeA: false, transposeB: false };
      const matMul = (a: tf.TensorInfo, b: tf.TensorInfo) =>
        stock.kernelFunc({ inputs: { a, b }, backend, attrs: plain }) as tf.TensorInfo;
      const size = (x: tf.TensorInfo) => x.shape.reduce((p, d) => p * d, 1);
      const a = inputs.a as tf.TensorInfo;
      const b = inputs.b as tf.TensorInfo;
      // Transposing costs about 6 ns per element here, so move as few as possible. A transposed operand
      // can be avoided by computing the transposed product instead: a b^T = (b a^T)^T and
      // a^T b = (b^T a)^T, which pays off when the other operand and the product are small (the
      // backward pass's dy W^T with a 784 x 512 weight W and a 128-row dy).
      const m = transposeA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2];
      const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
      const batch = Math.max(size(a) / (a.shape[a.shape.length - 1] * a.shape[a.shape.length - 2]), 1);
      const direct = (transposeA ? size(a) : 0) + (transposeB ? size(b) : 0);
      const swapped = transposeA !== transposeB ? (transposeA ? size(b) : size(a)) + batch * m * n : Infinity;
      if (swapped < direct) {
        // One operand transposed: compute the product the other way round, then transpose it back.
        const other = transposeB ? swapLastTwo(a) : swapLastTwo(b);
        const reversed = transposeB ? matMul(b, other) : matMul(other, a);
        const out = swapLastTwo(reversed);
        release.disposeData(other.dataId);
        release.disposeData(reversed.dataId);
        return out;
      }
      const left = transposeA ? swapLastTwo(a) : a;
      const right = transposeB ? swapLastTwo(b) : b;
      const out = matMul(left, right);
      if (transposeA) release.disposeData(left.dataId);
      if (transposeB) release.disposeData(right.dataId);
      return out;
    },
  });
  matMulFixed = true;
}

let columnSumFixed = false;

/**
 * The wasm `Sum` kernel reduces over leading axes by transposing the input first, and every dense layer's
 * bias gradient is such a sum (over the batch rows). This re-registers `Sum` so that a float32 tensor summed
 * over its leading axes is summed column by column in one JavaScript pass over the wasm heap (float64
 * accumulators), several times faster (docs/performance.md). Other sums, and other backends, are untouched.
 */
export function installWasmColumnSumFix(): void {
  // VAE_WASM_FAST_KERNELS=0 keeps this stock kernel too, to measure the difference (npm run bench).
  if (columnSumFixed || !option("wasmFastKernels")) return;
  const stock = tf.getKernel("Sum", "wasm");
  if (!stock) return;
  tf.unregisterKernel("Sum", "wasm");
  tf.registerKernel({
    ...stock,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const x = inputs.x as tf.TensorInfo;
      const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
      const axes = (Array.isArray(axis) ? axis : [axis])
        .map((a) => (a < 0 ? a + x.shape.length : a))
        .sort((a, b) => a - b);
      const leading = axes.every((a, i) => a === i) && axes.length > 0 && axes.length < x.shape.length;
      if (!leading || x.dtype !== "float32") return stock.kernelFunc({ inputs, backend, attrs });
      const rest = x.shape.slice(axes.length);
      const cols = rest.reduce((p, d) => p * d, 1);
      const rows = x.shape.slice(0, axes.length).reduce((p, d) => p * d, 1);
      const wasmBackend = backend as unknown as {
        makeOutput(shape: number[], dtype: string): tf.TensorInfo;
        typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
      };
      const out = wasmBackend.makeOutput(keepDims ? [...axes.map(() => 1), ...rest] : rest, "float32");
      // Views after the allocation: growing the heap replaces its buffer.
      const input = wasmBackend.typedArrayFromHeap(x);
      const output = wasmBackend.typedArrayFromHeap(out);
      const sums = new Float64Array(cols);
      let r = 0;
      for (; r + 4 <= rows; r += 4) {
        const o = r * cols;
        for (let c = 0; c < cols; c++)
          sums[c] += input[o + c] + input[o + cols + c] + input[o + 2 * cols + c] + input[o + 3 * cols + c];
      }
      for (; r < rows; r++) {
        for (let c = 0; c < cols; c++) sums[c] += input[r * cols + c];
      }
      output.set(sums);
      return out;
    },
  });
  columnSumFixed = true;
}

let identityFixed = false;

/**
 * The wasm `Identity` kernel copies its input into a new buffer; the gradient tape calls it several
 * times a step, among others on the 784 x 512 weight matrices (docs/performance.md). Tensors on
 * this backend are never written in place (every kernel, the fused Adam and the matrix products
 * included, writes into a new output, and a variable's `assign` swaps its buffer), so the output can
 * share the input's buffer, counted by reference, as `Reshape` does on wasm and `Identity` on the cpu
 * backend. Strings keep the stock kernel.
 */
export function installWasmIdentityFix(): void {
  // VAE_WASM_FAST_KERNELS=0 keeps this stock kernel too, to measure the difference (npm run bench).
  if (identityFixed || !option("wasmFastKernels")) return;
  const stock = tf.getKernel("Identity", "wasm");
  if (!stock) return;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === "string") return stock.kernelFunc(args);
      (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
    },
  });
  identityFixed = true;
}
