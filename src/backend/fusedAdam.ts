/**
 * Keras's Adam (`src/vae/optimizer.ts`) as one fused kernel call per weight array on the wasm and cpu
 * backends, instead of a dozen element-wise ops: a WebAssembly SIMD loop on wasm (a JavaScript loop
 * where SIMD is missing, and on cpu), float32 arithmetic element for element as the composed ops. New
 * moments below the smallest normal float32 are set to 0, as flush-to-zero hardware does: denormal
 * moments of dead units made every later step slower. Other backends compose the same formula from tf
 * ops. How and what it gains: docs/wasm-engine.md.
 */
import * as tf from "@tensorflow/tfjs";
import { registerFastPath } from "../vae/fastPath";
import type { KerasAdamAttrs } from "../vae/optimizer";
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
import { runOnHelperLoop, runSplitLoop, wasmGemmThreadCount } from "./wasmThreadPool";

/** The name of the fused update kernel: inputs w, m, v, g; attributes `KerasAdamAttrs`; outputs new w, m, v. */
export const KERAS_ADAM_KERNEL = "VaeKerasAdamUpdate";

/** The backends the fused kernel is registered for. */
export const KERAS_ADAM_FUSED_BACKENDS: readonly string[] = ["wasm", "cpu"];

/** The smallest normal float32: new moments smaller in magnitude are flushed to 0 by the fused kernel. */
const MIN_NORMAL = 1.1754943508222875e-38;

/**
 * The JavaScript loop (the cpu kernel, and the wasm kernel without WebAssembly SIMD): reads w, m, v, g
 * and writes the new values to w2, m2, v2 (all of length n), in float64 arithmetic. Inputs may alias
 * one another (each index is read completely before anything is written); the outputs are fresh.
 */
function fusedLoop(
  n: number,
  w: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  w2: Float32Array,
  m2: Float32Array,
  v2: Float32Array,
  alpha: number,
  beta1: number,
  beta2: number,
  epsilon: number,
): void {
  const a1 = 1 - beta1;
  const a2 = 1 - beta2;
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi0 = m[i];
    const vi0 = v[i];
    let mi = mi0 + (gi - mi0) * a1;
    let vi = vi0 + (gi * gi - vi0) * a2;
    // Flush what would be a denormal float32 (NaN fails the test and is kept). Math.abs keeps the
    // branch predictable: `mi < MIN && mi > -MIN` is decided by the sign, a coin toss, and the
    // mispredictions made the loop four times slower.
    if (Math.abs(mi) < MIN_NORMAL) mi = 0;
    if (Math.abs(vi) < MIN_NORMAL) vi = 0;
    w2[i] = w[i] - (mi * alpha) / (Math.sqrt(vi) + epsilon);
    m2[i] = mi;
    v2[i] = vi;
  }
}

interface KernelInputs {
  w: tf.TensorInfo;
  m: tf.TensorInfo;
  v: tf.TensorInfo;
  g: tf.TensorInfo;
}

function checkedInputs(inputs: tf.NamedTensorInfoMap): { infos: KernelInputs; size: number } {
  const infos = inputs as unknown as Partial<KernelInputs>;
  const keys = ["w", "m", "v", "g"] as const;
  for (const key of keys) if (infos[key] == null) throw new Error(`${KERAS_ADAM_KERNEL}: input "${key}" is missing.`);
  const checked = infos as KernelInputs;
  const size = tf.util.sizeFromShape(checked.w.shape);
  for (const key of keys) {
    const info = checked[key];
    if (info.dtype !== "float32")
      throw new Error(`${KERAS_ADAM_KERNEL}: input "${key}" is ${info.dtype}, not float32.`);
    // The wasm loop reads raw heap memory: a size mismatch must not read past an array.
    if (tf.util.sizeFromShape(info.shape) !== size) {
      throw new Error(`${KERAS_ADAM_KERNEL}: input "${key}" has shape [${info.shape}], w has [${checked.w.shape}].`);
    }
  }
  return { infos: checked, size };
}

function attrsOf(attrs: tf.NamedAttrMap | undefined): KerasAdamAttrs {
  const { alpha, beta1, beta2, epsilon } = (attrs ?? {}) as unknown as KerasAdamAttrs;
  return { alpha, beta1, beta2, epsilon };
}

// ---------------------------------------------------------------------------------------------------
// The wasm backend's kernel: a SIMD loop, assembled here as WebAssembly bytecode (about 500 bytes).

/**
 * A module importing the backend's memory (`env.memory`, shared for the threaded build) and exporting
 * `adam(n, w, m, v, g, w2, m2, v2, alpha, a1, a2, epsilon)`: byte offsets of the n-element float32
 * arrays, a1 = 1 - beta1, a2 = 1 - beta2. Float32 arithmetic, four elements at a time, then one at a
 * time for the rest:
 *   m2 = m + (g - m) * a1;  v2 = v + (g * g - v) * a2   (each set to 0 where |x| < 2^-126; NaN kept)
 *   w2 = w - (m2 * alpha) / (sqrt(v2) + epsilon)
 */
function adamModule(shared: boolean, task = false): Uint8Array {
  // Parameters 0-11 (locals 5-16 of the task, after its own 5 parameters), then locals.
  const base = task ? 5 : 0;
  const [n, w, m, v, g, w2, m2, v2, alpha, a1, a2, eps] = Array.from({ length: 12 }, (_, k) => base + k);
  const [i, end4] = [base + 12, base + 13]; // i32: byte offset, end of the four-at-a-time part
  const [alphaV, a1V, a2V, epsV, minV, gV, mV, vV] = Array.from({ length: 8 }, (_, k) => base + 14 + k); // v128
  const [gS, mS, vS] = [base + 22, base + 23, base + 24]; // f32
  const { get, set } = op;
  const at = (base: number) => [...get(base), ...get(i), ...op.i32Add]; // base + i

  const vectorLoop = [
    ...op.block,
    ...op.loop,
    ...get(i),
    ...get(end4),
    ...op.i32GeU,
    ...op.brIf(1),
    ...at(g),
    ...op.v128Load(),
    ...set(gV),
    // m2 = m + (g - m) * a1, flushed
    ...at(m),
    ...op.v128Load(),
    ...set(mV),
    ...get(mV),
    ...get(gV),
    ...get(mV),
    ...op.f32x4Sub,
    ...get(a1V),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...set(mV),
    ...get(mV),
    ...get(mV),
    ...op.f32x4Abs,
    ...get(minV),
    ...op.f32x4Lt,
    ...op.v128AndNot,
    ...set(mV),
    // v2 = v + (g * g - v) * a2, flushed
    ...at(v),
    ...op.v128Load(),
    ...set(vV),
    ...get(vV),
    ...get(gV),
    ...get(gV),
    ...op.f32x4Mul,
    ...get(vV),
    ...op.f32x4Sub,
    ...get(a2V),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...set(vV),
    ...get(vV),
    ...get(vV),
    ...op.f32x4Abs,
    ...get(minV),
    ...op.f32x4Lt,
    ...op.v128AndNot,
    ...set(vV),
    ...at(m2),
    ...get(mV),
    ...op.v128Store(),
    ...at(v2),
    ...get(vV),
    ...op.v128Store(),
    // w2 = w - (m2 * alpha) / (sqrt(v2) + epsilon)
    ...at(w2),
    ...at(w),
    ...op.v128Load(),
    ...get(mV),
    ...get(alphaV),
    ...op.f32x4Mul,
    ...get(vV),
    ...op.f32x4Sqrt,
    ...get(epsV),
    ...op.f32x4Add,
    ...op.f32x4Div,
    ...op.f32x4Sub,
    ...op.v128Store(),
    ...get(i),
    ...op.i32Const(16),
    ...op.i32Add,
    ...set(i),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
  const flushScalar = (x: number) => [
    ...op.f32Const(0),
    ...get(x),
    ...get(x),
    ...op.f32Abs,
    ...op.f32Const(MIN_NORMAL),
    ...op.f32Lt,
    ...op.select,
    ...set(x),
  ];
  const scalarLoop = [
    ...op.block,
    ...op.loop,
    ...get(i),
    ...get(n),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.i32GeU,
    ...op.brIf(1),
    ...at(g),
    ...op.f32Load(),
    ...set(gS),
    ...at(m),
    ...op.f32Load(),
    ...set(mS),
    ...get(mS),
    ...get(gS),
    ...get(mS),
    ...op.f32Sub,
    ...get(a1),
    ...op.f32Mul,
    ...op.f32Add,
    ...set(mS),
    ...flushScalar(mS),
    ...at(v),
    ...op.f32Load(),
    ...set(vS),
    ...get(vS),
    ...get(gS),
    ...get(gS),
    ...op.f32Mul,
    ...get(vS),
    ...op.f32Sub,
    ...get(a2),
    ...op.f32Mul,
    ...op.f32Add,
    ...set(vS),
    ...flushScalar(vS),
    ...at(m2),
    ...get(mS),
    ...op.f32Store(),
    ...at(v2),
    ...get(vS),
    ...op.f32Store(),
    ...at(w2),
    ...at(w),
    ...op.f32Load(),
    ...get(mS),
    ...get(alpha),
    ...op.f32Mul,
    ...get(vS),
    ...op.f32Sqrt,
    ...get(eps),
    ...op.f32Add,
    ...op.f32Div,
    ...op.f32Sub,
    ...op.f32Store(),
    ...get(i),
    ...op.i32Const(4),
    ...op.i32Add,
    ...set(i),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
  // The task's parameters (block, -, offset, -, count): n = count; each array's address from the block
  // (7 i32, then alpha, a1, a2, epsilon as f32) plus offset, the byte offset of this part's first element.
  const [block, offset, count] = [0, 2, 4];
  const prologue = task
    ? [
        ...get(count),
        ...set(n),
        ...[w, m, v, g, w2, m2, v2].flatMap((local, k) => [
          ...get(block),
          ...op.i32Load(4 * k),
          ...get(offset),
          ...op.i32Add,
          ...set(local),
        ]),
        ...[alpha, a1, a2, eps].flatMap((local, k) => [...get(block), ...op.f32Load(28 + 4 * k), ...set(local)]),
      ]
    : [];
  const body = [
    ...prologue,
    ...get(alpha),
    ...op.f32x4Splat,
    ...set(alphaV),
    ...get(a1),
    ...op.f32x4Splat,
    ...set(a1V),
    ...get(a2),
    ...op.f32x4Splat,
    ...set(a2V),
    ...get(eps),
    ...op.f32x4Splat,
    ...set(epsV),
    ...op.f32Const(MIN_NORMAL),
    ...op.f32x4Splat,
    ...set(minV),
    // end4 = (n & ~3) * 4 bytes
    ...get(n),
    ...op.i32Const(-4),
    ...op.i32And,
    ...op.i32Const(2),
    ...op.i32Shl,
    ...set(end4),
    ...vectorLoop,
    ...scalarLoop,
  ];
  if (task)
    return memoryModule(
      {
        name: "gemm",
        params: [I32, I32, I32, I32, I32],
        locals: [
          [8, I32],
          [4, F32],
          [2, I32],
          [8, V128],
          [3, F32],
        ],
        body,
      },
      shared,
    );
  const params = [I32, I32, I32, I32, I32, I32, I32, I32, F32, F32, F32, F32];
  return memoryModule(
    {
      name: "adam",
      params,
      locals: [
        [2, I32],
        [8, V128],
        [3, F32],
      ],
      body,
    },
    shared,
  );
}

/** Arrays of at least this many elements are updated by the matrix products' threads together. */
export const THREADED_ADAM_ELEMENTS = 1 << 16;

type SimdAdam = (
  n: number,
  w: number,
  m: number,
  v: number,
  g: number,
  w2: number,
  m2: number,
  v2: number,
  alpha: number,
  a1: number,
  a2: number,
  epsilon: number,
) => void;

/** The SIMD loop per backend memory (null where it could not be instantiated). */
const simdLoops = new WeakMap<object, SimdAdam | null>();
let simdEnabled = true;

function simdLoopFor(module: EmscriptenModuleLike): SimdAdam | null {
  const memory = memoryOf(module);
  if (!memory) return null;
  let loop = simdLoops.get(memory);
  if (loop === undefined) {
    // Null where there is no WebAssembly SIMD: the JavaScript loop does the work.
    loop = instantiate<SimdAdam>(adamModule(isShared(memory)), memory, "adam");
    simdLoops.set(memory, loop);
  }
  return loop;
}

/**
 * Chooses the wasm kernel's loop: WebAssembly SIMD (the default, float32 arithmetic like Keras's) or
 * JavaScript (float64 arithmetic, rounded once on store; about 10x slower). Returns the previous
 * setting. For benchmarks and tests.
 */
export function setKerasAdamWasmSimd(enabled: boolean): boolean {
  const previous = simdEnabled;
  simdEnabled = enabled;
  return previous;
}

/** Which loop the wasm kernel runs on the active wasm backend; undefined when wasm is not active. */
export function kerasAdamWasmLoop(): "simd" | "javascript" | undefined {
  if (tf.getBackend() !== "wasm") return undefined;
  const module = (tf.engine().backend as unknown as WasmBackendLike).wasm;
  return simdEnabled && simdLoopFor(module) ? "simd" : "javascript";
}

/**
 * The update of one array on the wasm heap: returns the new [w, m, v] and a function to call before
 * they are read (it has nothing to do unless `where` is "helper"). `where`: "split" runs the loop
 * across the products' threads for arrays of `THREADED_ADAM_ELEMENTS` or more; "helper" starts it on
 * one free helper thread and returns at once (the main thread goes on with other work); "here" runs it
 * on this thread. Each element is computed the same way by whichever thread, so the bits do not change.
 */
export function kerasAdamWasm(
  wasm: WasmBackendLike,
  inputs: { w: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo; g: tf.TensorInfo },
  attrs: KerasAdamAttrs,
  where: "split" | "helper" | "here" = "split",
): { outputs: tf.TensorInfo[]; wait: () => void } {
  const { alpha, beta1, beta2, epsilon } = attrs;
  const size = tf.util.sizeFromShape(inputs.w.shape);
  // Looking the inputs up first moves any that live on another backend onto the heap (which may
  // allocate); heap offsets stay valid when the memory grows.
  const [w, m, v, g] = [inputs.w, inputs.m, inputs.v, inputs.g].map(
    (info) => wasm.dataIdMap.get(info.dataId).memoryOffset,
  );
  const outputs = [0, 1, 2].map(() => wasm.makeOutput(inputs.w.shape.slice(), "float32"));
  const [w2, m2, v2] = outputs.map((info) => wasm.dataIdMap.get(info.dataId).memoryOffset);
  const simd = simdEnabled ? simdLoopFor(wasm.wasm) : null;
  if (simd) {
    const threaded = where === "helper" || (where === "split" && size >= THREADED_ADAM_ELEMENTS);
    if (threaded && wasmGemmThreadCount() > 1) {
      // The task's parameters in a block on the heap, kept until the helper is done with them.
      const block = wasm.makeOutput([11], "float32");
      let started: (() => void) | undefined;
      try {
        const address = wasm.dataIdMap.get(block.dataId).memoryOffset;
        const buffer = heapBuffer(wasm.wasm);
        new Int32Array(buffer, address, 7).set([w, m, v, g, w2, m2, v2]);
        new Float32Array(buffer, address + 28, 4).set([alpha, 1 - beta1, 1 - beta2, epsilon]);
        const build = (shared: boolean) => adamModule(shared, true);
        if (where === "helper") {
          started = runOnHelperLoop(wasm, "keras-adam", build, address, size);
          if (started) {
            const wait = started;
            return {
              outputs,
              wait: () => {
                try {
                  wait();
                } finally {
                  wasm.disposeData(block.dataId);
                }
              },
            };
          }
        } else if (runSplitLoop(wasm, "keras-adam", build, address, size)) {
          return { outputs, wait: () => {} };
        }
      } finally {
        if (!started) wasm.disposeData(block.dataId);
      }
    }
    simd(size, w, m, v, g, w2, m2, v2, alpha, 1 - beta1, 1 - beta2, epsilon);
    return { outputs, wait: () => {} };
  }
  // Views only now: allocating may have grown the memory and replaced its buffer.
  const buffer = heapBuffer(wasm.wasm);
  const view = (offset: number) => new Float32Array(buffer, offset, size);
  fusedLoop(size, view(w), view(m), view(v), view(g), view(w2), view(m2), view(v2), alpha, beta1, beta2, epsilon);
  return { outputs, wait: () => {} };
}

const wasmKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { infos } = checkedInputs(inputs);
  return kerasAdamWasm(backend as unknown as WasmBackendLike, infos, attrsOf(attrs)).outputs;
};

/** What the kernel uses of the cpu backend (`MathBackendCPU` in tfjs-backend-cpu). */
interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

const cpuKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as unknown as CpuBackendLike;
  const { infos, size } = checkedInputs(inputs);
  const { alpha, beta1, beta2, epsilon } = attrsOf(attrs);
  const values = (info: tf.TensorInfo): Float32Array => {
    const stored = cpu.data.get(info.dataId).values;
    return stored instanceof Float32Array ? stored : Float32Array.from(stored as ArrayLike<number>);
  };
  const [w2, m2, v2] = [0, 1, 2].map(() => new Float32Array(size));
  fusedLoop(
    size,
    values(infos.w),
    values(infos.m),
    values(infos.v),
    values(infos.g),
    w2,
    m2,
    v2,
    alpha,
    beta1,
    beta2,
    epsilon,
  );
  return [w2, m2, v2].map((out) => cpu.makeTensorInfo(infos.w.shape.slice(), "float32", out));
};

/** Whether the fused kernel is registered for `backendName` (the active backend by default). */
export function hasFusedKerasAdam(backendName: string = tf.getBackend()): boolean {
  return tf.getKernel(KERAS_ADAM_KERNEL, backendName) != null;
}

/**
 * One update of one weight array with the fused kernel: returns new [w, m, v] (the inputs are left as
 * they are). Throws when the active backend has no such kernel; all four tensors must be float32 and
 * hold the same number of elements.
 */
export function kerasAdamUpdateFused(
  w: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  attrs: KerasAdamAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const { alpha, beta1, beta2, epsilon } = attrs;
  const out = tf
    .engine()
    .runKernel(KERAS_ADAM_KERNEL, { w, m, v, g }, { alpha, beta1, beta2, epsilon }) as unknown as tf.Tensor[];
  return [out[0], out[1], out[2]];
}

/** The optimizer's hook: the fused update where the kernel is registered and the tensors are float32. */
function kerasAdamUpdateFast(
  w: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  attrs: KerasAdamAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] | undefined {
  const fused = hasFusedKerasAdam() && [w, m, v, g].every((x) => x.dtype === "float32");
  return fused ? kerasAdamUpdateFused(w, m, v, g, attrs) : undefined;
}

/**
 * Registers the fused kernel for "wasm" and "cpu" unless already registered, and puts it behind the
 * optimizer's hook there (importing this module does it; call again after `tf.unregisterKernel`).
 */
export function registerKerasAdamKernels(): void {
  const kernels: Record<string, tf.KernelFunc> = { wasm: wasmKernel, cpu: cpuKernel };
  for (const backendName of KERAS_ADAM_FUSED_BACKENDS) {
    if (!tf.getKernel(KERAS_ADAM_KERNEL, backendName)) {
      tf.registerKernel({ kernelName: KERAS_ADAM_KERNEL, backendName, kernelFunc: kernels[backendName] });
    }
    registerFastPath(backendName, { kerasAdamUpdate: kerasAdamUpdateFast });
  }
}
registerKerasAdamKernels();
