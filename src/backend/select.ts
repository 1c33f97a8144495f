/**
 * Picks the TensorFlow.js backend: the native `tensorflow` backend of `@tensorflow/tfjs-node` when it
 * is installed and loads, else `wasm` (`@tensorflow/tfjs-backend-wasm`), else the pure-JavaScript
 * `cpu`. `VAE_BACKEND=tensorflow|wasm|cpu` forces one. Introduced in every notebook's first cell.
 */
import * as tf from "@tensorflow/tfjs";
import type { WasmBackendLike } from "./wasmCode";
import { installWasmGemm, setWasmGemmFma, setWasmGemmThreads, startWasmGemmThreads, wasmFmaWanted, wasmGemmFma } from "./wasmGemm";
import { wasmThreadCount, withWasmThreads } from "./wasmThreads";
import { hasFusedGradients } from "../vae/train";
// Registers Keras's Adam as one fused kernel call per weight array on the wasm and cpu backends.
import "./fusedAdam";
import "./fusedLoss";
import "./fusedGradients";

export type BackendName = "tensorflow" | "wasm" | "cpu";
export const BACKEND_ENV = "VAE_BACKEND";
export const BACKEND_NAMES: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];

export interface BackendInfo {
  /** The backend now active in `tf`. */
  readonly name: BackendName;
  /** Why this one: forced by the environment, or which preferred backends could not load. */
  readonly reason: string;
  readonly tfjsVersion: string;
  /** Threads the wasm backend's matrix products use (1 elsewhere). */
  readonly threads: number;
  /**
   * Whether the wasm backend's matrix products use fused multiply-adds (`VAE_WASM_FMA`; results differ
   * in the last bits from separate multiplies and adds, so it is part of the cache key). Absent elsewhere
   * and in results written before it existed.
   */
  readonly fma?: boolean;
  /**
   * Whether training on wasm takes its gradients from the fused kernel (`src/backend/fusedGradients.ts`)
   * rather than tfjs's automatic differentiation (`VAE_FUSED_GRADIENTS=0`); part of the cache key.
   * Absent elsewhere.
   */
  readonly fusedGradients?: boolean;
}

/** Loads the native addon if it is installed; returns why not otherwise. */
function loadNative(): string | undefined {
  try {
    // Required lazily: the package is optional and its absence must not break importing this module.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require("@tensorflow/tfjs-node");
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return `@tensorflow/tfjs-node is not usable (${message})`;
  }
}

/** How long the threaded build and its product threads may take to start before the backend gives up on threads. */
const THREAD_START_TIMEOUT_MS = 30_000;

/** Threads the wasm backend started with, and why only one when the threaded build failed to start. */
let wasmThreads = { count: 1, note: "" };

async function tryBackend(name: BackendName, threads: number, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (name === "tensorflow") {
    const failure = loadNative();
    if (failure) return failure;
  } else if (name === "wasm") {
    await import("@tensorflow/tfjs-backend-wasm");
    installWasmMatMulFix();
    installWasmColumnSumFix();
    installWasmIdentityFix();
    installWasmGemm();
    // The products' arithmetic is chosen before any product runs, so that a run never mixes the two.
    setWasmGemmFma(process.env.VAE_WASM_MATMUL_FIX !== "0" && wasmFmaWanted(env));
    if (threads > 1 && !("wasm" in (tf.engine() as unknown as { registry: object }).registry)) {
      try {
        const started = await withWasmThreads(threads, () => tf.setBackend("wasm"), THREAD_START_TIMEOUT_MS);
        if (started.ok) {
          setWasmGemmThreads(started.threads);
          // The product threads are started now, not at the first product, so that training uses them
          // from its first step; if they do not come up, the products stay on the main thread.
          const ready = started.threads === 1 || (await startWasmGemmThreads(tf.backend() as unknown as WasmBackendLike, THREAD_START_TIMEOUT_MS));
          if (!ready) setWasmGemmThreads(1);
          wasmThreads = ready
            ? { count: started.threads, note: "" }
            : { count: 1, note: `the matrix-product threads did not start within ${THREAD_START_TIMEOUT_MS / 1000} s` };
          return undefined;
        }
        wasmThreads = { count: 1, note: "the threaded build did not start" };
      } catch (error) {
        wasmThreads = { count: 1, note: `the threaded build did not start: ${error instanceof Error ? error.message : String(error)}` };
      }
      tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    }
  }
  try {
    return (await tf.setBackend(name)) ? undefined : `tf.setBackend("${name}") returned false`;
  } catch (error) {
    return `tf.setBackend("${name}") failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

let active: BackendInfo | undefined;

/**
 * Selects and initialises the backend once per process (later calls return the same answer unless a
 * different backend is asked for). Throws with the reason when a forced backend cannot load.
 */
export async function initBackend(
  options: { backend?: BackendName; env?: NodeJS.ProcessEnv; quiet?: boolean; wasmThreads?: number } = {},
): Promise<BackendInfo> {
  const env = options.env ?? process.env;
  const forced = options.backend ?? parseBackendName(env[BACKEND_ENV]);
  const threads = options.wasmThreads ?? wasmThreadCount(env);
  if (active && (!forced || forced === active.name)) return active;

  let info: BackendInfo;
  if (forced) {
    const failure = await tryBackend(forced, threads, env);
    if (failure) {
      throw new Error(`Backend "${forced}" was asked for but cannot be used: ${failure}. Unset ${BACKEND_ENV} or pick another.`);
    }
    info = { name: forced, reason: options.backend ? "asked for by the caller" : `forced by ${BACKEND_ENV}`, tfjsVersion: tf.version.tfjs, threads: 1 };
  } else {
    const skipped: string[] = [];
    let chosen: BackendName | undefined;
    for (const name of BACKEND_NAMES) {
      const failure = await tryBackend(name, threads, env);
      if (!failure) {
        chosen = name;
        break;
      }
      skipped.push(failure);
    }
    if (!chosen) throw new Error(`No TensorFlow.js backend could be initialised: ${skipped.join("; ")}.`);
    const reason = skipped.length === 0 ? "the native backend loaded" : `fallback: ${skipped.join("; ")}`;
    info = { name: chosen, reason, tfjsVersion: tf.version.tfjs, threads: 1 };
  }
  if (info.name === "wasm") {
    info = { ...info, threads: wasmThreads.count, fma: wasmGemmFma(), fusedGradients: hasFusedGradients("wasm"), reason: wasmThreads.note ? `${info.reason}; ${wasmThreads.note}` : info.reason };
  }
  active = Object.freeze(info);
  if (!options.quiet) console.log(describeBackend(active));
  return active;
}

export function describeBackend(info: BackendInfo): string {
  // Results written before threads were recorded have no count.
  const threads = info.name !== "wasm" || info.threads === undefined ? "" : `, ${info.threads} thread${info.threads === 1 ? "" : "s"}`;
  const fma = info.fma === undefined ? "" : info.fma ? ", fused multiply-adds" : ", separate multiplies and adds";
  const gradients = info.fusedGradients === false ? ", gradients by tfjs" : "";
  return `TensorFlow.js ${info.tfjsVersion} on backend "${info.name}" (${info.reason}${threads}${fma}${gradients})`;
}

/** Parses a backend name from a flag or environment variable; undefined when absent. */
export function parseBackendName(value: string | undefined): BackendName | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const name = value.trim().toLowerCase();
  if (name === "node" || name === "tfjs-node") return "tensorflow";
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new Error(`Unknown backend "${value}"; use one of: ${BACKEND_NAMES.join(", ")} (tfjs-node is "tensorflow").`);
}

let matMulFixed = false;

/**
 * The wasm `BatchMatMul` kernel is about 12x slower when asked to transpose an operand (33 vs 2.5
 * GFLOP/s for 128x784x512 here), and every backward pass of a dense layer asks for that (dW = x^T dy,
 * dx = dy W^T). This re-registers the kernel so that it transposes the operand explicitly with the wasm
 * `Transpose` kernel and then runs the stock kernel untransposed: the same numbers, about 3x faster
 * training; where the transposed operand is a large weight matrix, the product is computed the other
 * way round instead. Nothing changes for other backends or in the training code. The large products of
 * training are taken before they get here by `src/backend/wasmGemm.ts` (installed after this fix); this fix
 * serves the shapes those loops do not cover.
 */
export function installWasmMatMulFix(): void {
  // VAE_WASM_MATMUL_FIX=0 keeps the stock kernel, to measure the difference (npm run bench).
  if (matMulFixed || process.env.VAE_WASM_MATMUL_FIX === "0") return;
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
      const matMul = (a: tf.TensorInfo, b: tf.TensorInfo) => stock.kernelFunc({ inputs: { a, b }, backend, attrs: plain }) as tf.TensorInfo;
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
      const swapped = (transposeA !== transposeB) ? (transposeA ? size(b) : size(a)) + batch * m * n : Infinity;
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
 * The wasm `Sum` kernel reduces over leading axes by transposing the input first: 0.2-0.34 ms for a
 * 128 x 784 batch, and every dense layer's bias gradient is such a sum (over the batch rows). This
 * re-registers `Sum` so that a float32 tensor summed over its leading axes is summed column by column
 * in one JavaScript pass over the wasm heap (float64 accumulators), about 0.05 ms. Other sums, and
 * other backends, are untouched.
 */
export function installWasmColumnSumFix(): void {
  // VAE_WASM_MATMUL_FIX=0 keeps this stock kernel too, to measure the difference (npm run bench).
  if (columnSumFixed || process.env.VAE_WASM_MATMUL_FIX === "0") return;
  const stock = tf.getKernel("Sum", "wasm");
  if (!stock) return;
  tf.unregisterKernel("Sum", "wasm");
  tf.registerKernel({
    ...stock,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const x = inputs.x as tf.TensorInfo;
      const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
      const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + x.shape.length : a)).sort((a, b) => a - b);
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
        for (let c = 0; c < cols; c++) sums[c] += input[o + c] + input[o + cols + c] + input[o + 2 * cols + c] + input[o + 3 * cols + c];
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
 * times a step, among others on the 784 x 512 weight matrices (about 0.3 ms each here). Tensors on
 * this backend are never written in place (every kernel, the fused Adam and the matrix products
 * included, writes into a new output, and a variable's `assign` swaps its buffer), so the output can
 * share the input's buffer, counted by reference, as `Reshape` does on wasm and `Identity` on the cpu
 * backend. Strings keep the stock kernel.
 */
export function installWasmIdentityFix(): void {
  // VAE_WASM_MATMUL_FIX=0 keeps this stock kernel too, to measure the difference (npm run bench).
  if (identityFixed || process.env.VAE_WASM_MATMUL_FIX === "0") return;
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
