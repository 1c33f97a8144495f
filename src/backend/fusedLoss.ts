/**
 * The reconstruction loss from the decoder's logits (`reconstructionLossFromLogits` in `src/vae/loss.ts`)
 * as one kernel call on the wasm and cpu backends: one pass computes the loss's sum and its gradient in
 * the logits, instead of about twenty element-wise ops. Per pixel, with c the logit clipped to [-L, L]:
 *   loss = max(c, 0) - x c + log(1 + exp(-|c|));  grad = sigmoid(c) - x where |l| < L, else 0.
 * The wasm loop computes exp and log1p in float32 with polynomials (within a few float32 ulps; the test
 * checks every result against float64). The derivation and the figures: docs/wasm-engine.md.
 */
import * as tf from "@tensorflow/tfjs";
import { registerFastPath } from "../vae/fastPath";
import { LOGIT_LIMIT } from "../vae/loss";
import {
  type EmscriptenModuleLike,
  F32,
  I32,
  V128,
  type WasmBackendLike,
  heapBuffer,
  instantiate,
  isShared,
  memoryModule,
  memoryOf,
  op,
} from "./wasmCode";
import { runSplitLoop } from "./wasmThreadPool";

/**
 * The fused kernel: inputs `logits` and `x`, outputs the loss summed over the batch and the gradient
 * (sigmoid(l) - x where |l| < LOGIT_LIMIT, else 0).
 */
export const BCE_LOGITS_KERNEL = "VaeBceWithLogits";

/** Batches of at least this many rows are split across the products' threads. */
const THREADED_BCE_ROWS = 32;

/** The backends the fused kernel is registered for. */
export const BCE_LOGITS_FUSED_BACKENDS: readonly string[] = ["wasm", "cpu"];

const L = Math.fround(LOGIT_LIMIT);

/** 1.5 * 2^23: a float32 in [2^23, 2^24) has no fraction bits, so adding it rounds to a whole number. */
const ROUNDER = 12582912;
/** 127 minus the rounder's bits: added to k's bits (as an i32), gives n + 127. */
const BIAS_BITS = 127 - new Int32Array(new Float32Array([ROUNDER]).buffer)[0];

/** exp's Taylor coefficients 1/7!, ..., 1/1!, 1/0!, highest first (float32). */
const EXP_COEFFICIENTS = [5040, 720, 120, 24, 6, 2, 1, 1].map((f) => Math.fround(1 / f));
/** 1/15, 1/13, ..., 1/3, 1: log1p(e) = 2 u q(u^2). */
const ATANH_COEFFICIENTS = [15, 13, 11, 9, 7, 5, 3, 1].map((d) => Math.fround(1 / d));
/** ln 2 in two parts: the first exact in few bits, so n ln2_hi is exact for |n| <= 2^15. */
const LN2_HI = 0.693359375;
const LN2_LO = -2.1219444e-4;

/**
 * `bce(l, x, grad, sums, rows, vectors, scale)`: byte offsets of the rows x (4 vectors) logits, pixels
 * and gradient, and of `rows` float32 row sums of the loss; the gradient is multiplied by `scale`.
 */
function bceModule(shared: boolean, taskVectors = 0): Uint8Array {
  // As a task of the products' threads (`runSplitLoop`), the parameters are locals 5-11, read from a
  // block, and the function is gemm(block, -, offset, -, rows) for the rows from offset (bytes) on.
  const base = taskVectors ? 5 : 0;
  const [l, x, grad, sums, rows, vectors, scale] = Array.from({ length: 7 }, (_, k) => base + k);
  const [rowEnd, sumsEnd] = [base + 7, base + 8]; // i32
  // v128:
  const [lv, c, t, n, p, e, u, w, xv, acc, inside, s, k] = Array.from({ length: 13 }, (_, index) => base + 9 + index);
  const { get, set } = op;
  const splat = (value: number) => [...op.f32Const(value), ...op.f32x4Splat];
  const horner = (variable: number, coefficients: number[]) => {
    const code = [...splat(coefficients[0])];
    for (const coefficient of coefficients.slice(1))
      code.push(...get(variable), ...op.f32x4Mul, ...splat(coefficient), ...op.f32x4Add);
    return code;
  };
  const vector = [
    ...get(l),
    ...op.v128Load(0),
    ...set(lv),
    // c = clip(l, -L, L); t = -|c|
    ...get(lv),
    ...splat(-L),
    ...op.f32x4Max,
    ...splat(L),
    ...op.f32x4Min,
    ...set(c),
    ...get(c),
    ...op.f32x4Abs,
    ...op.f32x4Neg,
    ...set(t),
    // e = exp(t) = 2^n p(r), r = t - n ln2_hi - n ln2_lo
    // n = round(t / ln 2): adding 1.5 * 2^23 rounds to a whole number, held in the low bits of k.
    ...get(t),
    ...splat(Math.LOG2E),
    ...op.f32x4Mul,
    ...splat(ROUNDER),
    ...op.f32x4Add,
    ...set(k),
    ...get(k),
    ...splat(ROUNDER),
    ...op.f32x4Sub,
    ...set(n),
    ...get(t),
    ...get(n),
    ...splat(LN2_HI),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...get(n),
    ...splat(LN2_LO),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...set(p),
    ...horner(p, EXP_COEFFICIENTS),
    // 2^n: (n + 127) << 23 as the bits of a float; n + 127 is k's bits minus the rounder's, plus 127.
    ...get(k),
    ...op.i32Const(BIAS_BITS),
    ...op.i32x4Splat,
    ...op.i32x4Add,
    ...op.i32Const(23),
    ...op.i32x4Shl,
    ...op.f32x4Mul,
    ...set(e),
    // log(1 + e) = 2 u q(u^2), u = e / (2 + e)
    ...get(e),
    ...splat(2),
    ...get(e),
    ...op.f32x4Add,
    ...op.f32x4Div,
    ...set(u),
    ...get(u),
    ...get(u),
    ...op.f32x4Mul,
    ...set(w),
    ...get(u),
    ...splat(2),
    ...op.f32x4Mul,
    ...horner(w, ATANH_COEFFICIENTS),
    ...op.f32x4Mul,
    ...set(w),
    // loss = max(c, 0) - x c + log(1 + e)
    ...get(x),
    ...op.v128Load(0),
    ...set(xv),
    ...get(acc),
    ...get(c),
    ...op.v128Zero,
    ...op.f32x4Max,
    ...get(xv),
    ...get(c),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...get(w),
    ...op.f32x4Add,
    ...op.f32x4Add,
    ...set(acc),
    // grad = (sigmoid(c) - x) where |l| < L, else 0
    ...get(lv),
    ...op.f32x4Abs,
    ...splat(L),
    ...op.f32x4Lt,
    ...set(inside),
    ...splat(1),
    ...get(e),
    ...get(c),
    ...op.v128Zero,
    ...op.f32x4Ge,
    ...op.v128Bitselect,
    ...splat(1),
    ...get(e),
    ...op.f32x4Add,
    ...op.f32x4Div,
    ...set(s),
    ...get(grad),
    ...get(s),
    ...get(xv),
    ...op.f32x4Sub,
    ...get(inside),
    ...op.v128And,
    ...get(scale),
    ...op.f32x4Splat,
    ...op.f32x4Mul,
    ...op.v128Store(0),
    ...get(l),
    ...op.i32Const(16),
    ...op.i32Add,
    ...set(l),
    ...get(x),
    ...op.i32Const(16),
    ...op.i32Add,
    ...set(x),
    ...get(grad),
    ...op.i32Const(16),
    ...op.i32Add,
    ...set(grad),
  ];
  const body = [
    ...get(sums),
    ...get(rows),
    ...op.i32Const(4),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(sumsEnd),
    ...op.block,
    ...get(rows),
    ...op.i32Eqz,
    ...op.brIf(0),
    ...op.loop,
    ...op.v128Zero,
    ...set(acc),
    ...get(l),
    ...get(vectors),
    ...op.i32Const(16),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(rowEnd),
    ...op.loop,
    ...vector,
    ...get(l),
    ...get(rowEnd),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
    // The row's sum: its four lanes.
    ...get(sums),
    ...get(acc),
    ...op.f32x4ExtractLane(0),
    ...get(acc),
    ...op.f32x4ExtractLane(1),
    ...op.f32Add,
    ...get(acc),
    ...op.f32x4ExtractLane(2),
    ...op.f32Add,
    ...get(acc),
    ...op.f32x4ExtractLane(3),
    ...op.f32Add,
    ...op.f32Store(0),
    ...get(sums),
    ...op.i32Const(4),
    ...op.i32Add,
    ...op.tee(sums),
    ...get(sumsEnd),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
    ...op.end,
  ];
  if (taskVectors) {
    // Block: l, x, grad, sums (i32 addresses), scale (f32). The part's rows start `offset` bytes into
    // l, x and grad, and offset / (16 vectors) rows, 4 bytes each, into sums.
    const [block, offset, count] = [0, 2, 4];
    const prologue = [
      ...[l, x, grad].flatMap((local, k) => [
        ...get(block),
        ...op.i32Load(4 * k),
        ...get(offset),
        ...op.i32Add,
        ...set(local),
      ]),
      ...get(block),
      ...op.i32Load(12),
      ...get(offset),
      ...op.i32Const(4 * taskVectors),
      ...op.i32DivU,
      ...op.i32Add,
      ...set(sums),
      ...get(count),
      ...set(rows),
      ...op.i32Const(taskVectors),
      ...set(vectors),
      ...get(block),
      ...op.f32Load(16),
      ...set(scale),
    ];
    return memoryModule(
      {
        name: "gemm",
        params: [I32, I32, I32, I32, I32],
        locals: [
          [6, I32],
          [1, F32],
          [2, I32],
          [13, V128],
        ],
        body: [...prologue, ...body],
      },
      shared,
    );
  }
  return memoryModule(
    {
      name: "bce",
      params: [I32, I32, I32, I32, I32, I32, F32],
      locals: [
        [2, I32],
        [13, V128],
      ],
      body,
    },
    shared,
  );
}

type SimdBce = (l: number, x: number, grad: number, sums: number, rows: number, vectors: number, scale: number) => void;

/**
 * The float64 loop (the cpu kernel, and the wasm kernel without SIMD or for widths not a multiple of
 * 4): fills grad and returns the sum of the loss over all elements.
 */
export function bceLogitsLoop(logits: ArrayLike<number>, x: ArrayLike<number>, grad: Float32Array, scale = 1): number {
  let sum = 0;
  for (let i = 0; i < grad.length; i++) {
    const l = logits[i];
    const c = Math.min(Math.max(l, -L), L);
    const e = Math.exp(-Math.abs(c));
    sum += Math.max(c, 0) - x[i] * c + Math.log1p(e);
    grad[i] = Math.abs(l) < L ? ((c >= 0 ? 1 : e) / (1 + e) - x[i]) * scale : 0;
  }
  return sum;
}

const simdLoops = new WeakMap<object, SimdBce | null>();
let simdEnabled = true;

function simdLoopFor(module: EmscriptenModuleLike): SimdBce | null {
  const memory = memoryOf(module);
  if (!memory) return null;
  let loop = simdLoops.get(memory);
  if (loop === undefined) {
    loop = instantiate<SimdBce>(bceModule(isShared(memory)), memory, "bce");
    simdLoops.set(memory, loop);
  }
  return loop;
}

/** Chooses the wasm kernel's loop: SIMD (default) or the float64 one. Returns the previous setting. */
export function setBceLogitsWasmSimd(enabled: boolean): boolean {
  const previous = simdEnabled;
  simdEnabled = enabled;
  return previous;
}

function checkedInputs(inputs: tf.NamedTensorInfoMap): {
  logits: tf.TensorInfo;
  x: tf.TensorInfo;
  rows: number;
  columns: number;
} {
  const { logits, x } = inputs as { logits?: tf.TensorInfo; x?: tf.TensorInfo };
  if (
    !logits ||
    !x ||
    logits.dtype !== "float32" ||
    x.dtype !== "float32" ||
    logits.shape.length !== 2 ||
    logits.shape.join() !== x.shape.join()
  ) {
    throw new Error(
      `${BCE_LOGITS_KERNEL} takes float32 logits and x of one [rows, pixels] shape; ` +
        `got ${logits?.shape} and ${x?.shape}.`,
    );
  }
  return { logits, x, rows: logits.shape[0], columns: logits.shape[1] };
}

/**
 * The wasm loop on tensors of the backend: writes scale times the gradient into `grad` (a [rows,
 * columns] float32 buffer) and returns the loss summed over all elements.
 */
export function bceLogitsWasm(
  wasm: WasmBackendLike,
  logits: tf.TensorInfo,
  x: tf.TensorInfo,
  grad: tf.TensorInfo,
  scale = 1,
): number {
  const [rows, columns] = logits.shape;
  const offset = (info: tf.TensorInfo) => wasm.dataIdMap.get(info.dataId).memoryOffset;
  const simd = simdEnabled && columns % 4 === 0 ? simdLoopFor(wasm.wasm) : null;
  if (simd) {
    const rowSums = wasm.makeOutput([rows], "float32");
    const block = wasm.makeOutput([5], "float32");
    try {
      const vectors = columns / 4;
      // Across the products' threads, rows split as a product's are (each row's sum is computed the same way).
      const buffer = heapBuffer(wasm.wasm);
      new Int32Array(buffer, offset(block), 4).set([offset(logits), offset(x), offset(grad), offset(rowSums)]);
      new Float32Array(buffer, offset(block) + 16, 1)[0] = scale;
      const split =
        rows >= THREADED_BCE_ROWS &&
        runSplitLoop(
          wasm,
          `bce ${vectors}`,
          (shared) => bceModule(shared, vectors),
          offset(block),
          rows,
          16 * vectors,
          rows * columns * 16,
        );
      if (!split) simd(offset(logits), offset(x), offset(grad), offset(rowSums), rows, vectors, scale);
      const perRow = new Float32Array(heapBuffer(wasm.wasm), offset(rowSums), rows);
      let total = 0;
      for (let i = 0; i < rows; i++) total += perRow[i];
      return total;
    } finally {
      wasm.disposeData(rowSums.dataId);
      wasm.disposeData(block.dataId);
    }
  }
  const buffer = heapBuffer(wasm.wasm);
  const size = rows * columns;
  return bceLogitsLoop(
    new Float32Array(buffer, offset(logits), size),
    new Float32Array(buffer, offset(x), size),
    new Float32Array(buffer, offset(grad), size),
    scale,
  );
}

const wasmKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const wasm = backend as unknown as WasmBackendLike;
  const { logits, x, rows, columns } = checkedInputs(inputs);
  // Looking the inputs up first moves any that live on another backend onto the heap.
  wasm.dataIdMap.get(logits.dataId);
  wasm.dataIdMap.get(x.dataId);
  const sum = wasm.makeOutput([], "float32");
  const grad = wasm.makeOutput([rows, columns], "float32");
  const total = bceLogitsWasm(wasm, logits, x, grad);
  new Float32Array(heapBuffer(wasm.wasm), wasm.dataIdMap.get(sum.dataId).memoryOffset, 1)[0] = total;
  return [sum, grad];
};

interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

const cpuKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as unknown as CpuBackendLike;
  const { logits, x, rows, columns } = checkedInputs(inputs);
  const values = (info: tf.TensorInfo) => cpu.data.get(info.dataId).values as ArrayLike<number>;
  const grad = new Float32Array(rows * columns);
  const total = bceLogitsLoop(values(logits), values(x), grad);
  return [
    cpu.makeTensorInfo([], "float32", Float32Array.of(total)),
    cpu.makeTensorInfo([rows, columns], "float32", grad),
  ];
};

/**
 * `reconstructionLossFromLogits` with the fused kernel (its gradient is the kernel's, times dy / rows);
 * undefined where the active backend has no such kernel.
 */
export function reconstructionLossFused(x: tf.Tensor2D, logits: tf.Tensor2D): tf.Scalar | undefined {
  if (!tf.getKernel(BCE_LOGITS_KERNEL, tf.getBackend())) return undefined;
  const rows = x.shape[0];
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [l, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [sum, grad] = tf.engine().runKernel(BCE_LOGITS_KERNEL, { logits: l, x }, {}) as unknown as [
      tf.Scalar,
      tf.Tensor,
    ];
    save([grad]);
    const value = tf.div(sum, rows) as tf.Scalar;
    sum.dispose();
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(saved[0], tf.div(dy, rows)) };
  });
  return loss(logits) as tf.Scalar;
}

/**
 * Registers the fused kernel for "wasm" and "cpu" unless already registered, and puts it behind the
 * loss's hook there (importing this module does it).
 */
export function registerBceLogitsKernels(): void {
  const kernels: Record<string, tf.KernelFunc> = { wasm: wasmKernel, cpu: cpuKernel };
  for (const backendName of BCE_LOGITS_FUSED_BACKENDS) {
    if (!tf.getKernel(BCE_LOGITS_KERNEL, backendName))
      tf.registerKernel({ kernelName: BCE_LOGITS_KERNEL, backendName, kernelFunc: kernels[backendName] });
    registerFastPath(backendName, { reconstructionLossFromLogits: reconstructionLossFused });
  }
}
registerBceLogitsKernels();
