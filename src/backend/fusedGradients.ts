/**
 * The VAE's loss terms and the gradients of its ten weight arrays for one batch, as one kernel call
 * on the wasm backend (`VAE_GRADIENTS_KERNEL`, used by `trainStep` in `src/vae/train.ts`), instead of
 * about 160 tfjs ops recorded on a tape and replayed backwards. Each op costs the engine about 10 us
 * of bookkeeping besides its own work, and the element-wise ones are separate passes over the data;
 * here the forward and backward passes are written out once, by hand, and run on the same loops the
 * ops use (the generated matrix products of `wasmGemm.ts` through the registered `_FusedMatMul`
 * kernel, the fused loss of `fusedLoss.ts`), with the small element-wise parts as WebAssembly SIMD or
 * JavaScript loops over the heap.
 *
 * The forward pass (B rows, weights as the Keras layers name them):
 *   h1 = relu(x W1 + b1);  [zMean | zLogVar] = h1 [Wm | Wl] + [bm | bl]
 *   z = zMean + exp(zLogVar / 2) epsilon;  h2 = relu(z W3 + b3);  logits = h2 W4 + b4
 *   reconstruction = sum of the clipped binary cross-entropy / B;  KL = -sum(1 + zLogVar - zMean^2 - exp(zLogVar)) / (2 B)
 * and backwards, with c the KL coefficient:
 *   dLogits = (sigmoid(logits) - x) / B inside the clip;  dW4 = h2^T dLogits;  db4 = column sums
 *   dH2 = (dLogits W4^T) where h2 > 0;  dW3 = z^T dH2;  db3 = column sums;  dz = dH2 W3^T
 *   dzMean = dz + c zMean / B;  dzLogVar = dz epsilon exp(zLogVar / 2) / 2 + c (exp(zLogVar) - 1) / (2 B)
 *   [dWm | dWl] = h1^T [dzMean | dzLogVar];  dH1 = ([dzMean | dzLogVar] [Wm | Wl]^T) where h1 > 0
 *   dW1 = x^T dH1;  db1 = column sums
 * The test checks every gradient against tfjs's automatic differentiation of `forwardLoss`.
 *
 * `VAE_TRAIN_STEP_KERNEL` makes the whole step: the same, with Keras's Adam applied to each weight array
 * as soon as its gradient is ready (the loop of `fusedAdam.ts`, so the update is the optimizer's to the
 * bit). The two threads: the decoder's weight gradient, as large a product as dH2, runs whole on the
 * helper (`wasmGemmAsync`) while the main thread computes dH2 and the rest of the backward pass; the
 * encoder's weight gradient is then split across both, and the two large Adam updates run side by side.
 *
 * Registered for "wasm" only: on tfjs-node and elsewhere `trainStep` differentiates with tfjs.
 */
import * as tf from "@tensorflow/tfjs";
import type { KerasAdamAttrs } from "../vae/optimizer";
import { VAE_GRADIENTS_KERNEL, VAE_TRAIN_STEP_KERNEL } from "../vae/train";
import { kerasAdamWasm } from "./fusedAdam";
import { bceLogitsWasm } from "./fusedLoss";
import { wasmGemmAsync } from "./wasmGemm";
import { I32, V128, type WasmBackendLike, heapBuffer, instantiate, isShared, memoryModule, memoryOf, op } from "./wasmCode";

const f32x4Gt = [0xfd, 0x44];
const v128And = [0xfd, 0x4e];

/**
 * `run(d, h, sums, rows, vectors)`: for a rows x (4 vectors) float32 matrix d, sets d to 0 where h <= 0
 * (when `masked`: the ReLU's gradient) and adds each column of d into sums (the bias's gradient).
 */
function maskSumModule(masked: boolean, shared: boolean): Uint8Array {
  const [d, h, sums, rows, vectors] = [0, 1, 2, 3, 4];
  const [sp, sEnd, row] = [5, 6, 7];
  const dv = 8; // v128
  const { get, set } = op;
  const body = [
    ...op.i32Const(0), ...set(row),
    ...get(sums), ...get(vectors), ...op.i32Const(16), ...op.i32Mul, ...op.i32Add, ...set(sEnd),
    ...op.block,
    ...get(rows), ...op.i32Eqz, ...op.brIf(0),
    ...op.loop,
    ...get(sums), ...set(sp),
    ...op.loop,
    ...get(d), ...op.v128Load(0),
    ...(masked ? [...get(h), ...op.v128Load(0), ...op.v128Zero, ...f32x4Gt, ...v128And] : []),
    ...set(dv),
    ...(masked ? [...get(d), ...get(dv), ...op.v128Store(0)] : []),
    ...get(sp), ...get(sp), ...op.v128Load(0), ...get(dv), ...op.f32x4Add, ...op.v128Store(0),
    ...get(d), ...op.i32Const(16), ...op.i32Add, ...set(d),
    ...get(h), ...op.i32Const(16), ...op.i32Add, ...set(h),
    ...get(sp), ...op.i32Const(16), ...op.i32Add, ...op.tee(sp), ...get(sEnd), ...op.i32Ne, ...op.brIf(0),
    ...op.end,
    ...get(row), ...op.i32Const(1), ...op.i32Add, ...op.tee(row), ...get(rows), ...op.i32Ne, ...op.brIf(0),
    ...op.end,
    ...op.end,
  ];
  return memoryModule({ name: "run", params: [I32, I32, I32, I32, I32], locals: [[3, I32], [1, V128]], body }, shared);
}

type MaskSum = (d: number, h: number, sums: number, rows: number, vectors: number) => void;
const maskSumLoops = new WeakMap<object, { masked: MaskSum | null; plain: MaskSum | null }>();

function maskSumFor(wasm: WasmBackendLike): { masked: MaskSum | null; plain: MaskSum | null } {
  const memory = memoryOf(wasm.wasm);
  if (!memory) return { masked: null, plain: null };
  let loops = maskSumLoops.get(memory);
  if (!loops) {
    loops = {
      masked: instantiate<MaskSum>(maskSumModule(true, isShared(memory)), memory, "run"),
      plain: instantiate<MaskSum>(maskSumModule(false, isShared(memory)), memory, "run"),
    };
    maskSumLoops.set(memory, loops);
  }
  return loops;
}

/** The weights' input names, in the order of `trainableVariables(model)` and of the kernel's outputs after the terms. */
export const VAE_GRADIENT_WEIGHTS = ["w1", "b1", "wm", "bm", "wl", "bl", "w3", "b3", "w4", "b4"] as const;

type WeightName = (typeof VAE_GRADIENT_WEIGHTS)[number];

/** Keras's Adam for the training step: its step attributes and each weight's moments. */
interface AdamInputs {
  attrs: KerasAdamAttrs;
  m: Record<WeightName, tf.TensorInfo>;
  v: Record<WeightName, tf.TensorInfo>;
}

const gradientsKernel: tf.KernelFunc = ({ inputs, backend, attrs }) =>
  lossAndUpdates(backend as unknown as WasmBackendLike, inputs, (attrs as unknown as { klCoefficient: number }).klCoefficient);

const trainStepKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { klCoefficient, ...adamAttrs } = attrs as unknown as { klCoefficient: number } & KerasAdamAttrs;
  const named = inputs as unknown as Record<string, tf.TensorInfo>;
  const moments = (suffix: string) => Object.fromEntries(VAE_GRADIENT_WEIGHTS.map((name) => [name, named[`${name}${suffix}`]])) as Record<WeightName, tf.TensorInfo>;
  return lossAndUpdates(backend as unknown as WasmBackendLike, inputs, klCoefficient, { attrs: adamAttrs, m: moments("M"), v: moments("V") });
};

/**
 * The kernels' work: the terms, then per weight array either its gradient or, with `adam`, its new
 * value, first and second moment after Keras's Adam (`kerasAdamWasm`, the same loop as the optimizer's
 * kernel), each update made as soon as its gradient is ready.
 */
function lossAndUpdates(
  wasm: WasmBackendLike,
  inputs: tf.NamedTensorInfoMap,
  c: number,
  adam?: AdamInputs,
): tf.TensorInfo[] {
  const backend = wasm as unknown as tf.KernelBackend;
  const named = inputs as unknown as Record<"x" | "epsilon" | WeightName, tf.TensorInfo>;
  const { x, epsilon, w1, b1, wm, bm, wl, bl, w3, b3, w4, b4 } = named;
  for (const [name, info] of Object.entries(inputs)) {
    if (!info || info.dtype !== "float32") throw new Error(`${VAE_GRADIENTS_KERNEL}: input ${name} must be a float32 tensor.`);
    wasm.dataIdMap.get(info.dataId); // moves an input that lives on another backend onto the heap
  }
  const [rows, pixels] = x.shape;
  const hidden = b1.shape[0];
  const latent = bm.shape[0];
  const offset = (info: tf.TensorInfo) => wasm.dataIdMap.get(info.dataId).memoryOffset;
  const view = (info: tf.TensorInfo) => new Float32Array(heapBuffer(wasm.wasm), offset(info), tf.util.sizeFromShape(info.shape));
  const scratch: tf.TensorInfo[] = [];
  const temp = (shape: number[]) => {
    const info = wasm.makeOutput(shape, "float32");
    scratch.push(info);
    return info;
  };
  const matMul = tf.getKernel("_FusedMatMul", "wasm");
  if (!matMul) throw new Error(`${VAE_GRADIENTS_KERNEL}: the wasm backend has no _FusedMatMul kernel.`);
  // Rank 3, as tfjs's fused matMul op passes them: the kernel falls back to XNNPACK's for shapes the
  // generated loops do not cover (small layers), and that kernel reads a batch dimension.
  const batched = (info: tf.TensorInfo): tf.TensorInfo => ({ ...info, shape: [1, ...info.shape] });
  const product = (a: tf.TensorInfo, b: tf.TensorInfo, options: { transposeA?: boolean; transposeB?: boolean; bias?: tf.TensorInfo; relu?: boolean } = {}) => {
    const out = matMul.kernelFunc({
      inputs: { a: batched(a), b: batched(b), ...(options.bias ? { bias: options.bias } : {}) },
      backend,
      attrs: { transposeA: options.transposeA ?? false, transposeB: options.transposeB ?? false, activation: options.relu ? "relu" : "linear", leakyreluAlpha: 0 },
    }) as tf.TensorInfo;
    const matrix = { ...out, shape: out.shape.slice(-2) };
    scratch.push(matrix);
    return matrix;
  };
  // Products started on a helper thread, waited for before anything is freed (even on an error).
  const waiters: (() => void)[] = [];
  /** A product computed on a helper thread while the main thread goes on (see `wasmGemmAsync`). */
  const productOnHelper = (a: tf.TensorInfo, b: tf.TensorInfo, options: { transposeA?: boolean; transposeB?: boolean }) => {
    const started = wasmGemmAsync(wasm, { a, b, transposeA: options.transposeA ?? false, transposeB: options.transposeB ?? false, relu: false });
    if (!started) return { out: product(a, b, options), wait: () => {} };
    scratch.push(started.out);
    let waited = false;
    const wait = () => {
      if (!waited) {
        waited = true;
        started.wait();
      }
    };
    waiters.push(wait);
    return { out: started.out, wait };
  };
  // The kernel's outputs made so far (freed if something fails), and per weight its [gradient] or [w, m, v].
  const results: tf.TensorInfo[] = [];
  const outputs = {} as Record<WeightName, tf.TensorInfo[]>;
  let failed = false;
  /** A weight's gradient is ready: it is an output, or (with Adam) it updates the weight and is freed. */
  const ready = (name: WeightName, gradient: tf.TensorInfo, where: "here" | "split" | "helper") => {
    const index = scratch.indexOf(gradient);
    if (!adam) {
      if (index >= 0) scratch.splice(index, 1);
      results.push(gradient);
      outputs[name] = [gradient];
      return;
    }
    if (index < 0) scratch.push(gradient);
    const update = kerasAdamWasm(wasm, { w: named[name], m: adam.m[name], v: adam.v[name], g: gradient }, adam.attrs, where);
    waiters.push(update.wait);
    results.push(...update.outputs);
    outputs[name] = update.outputs;
  };
  const loops = maskSumFor(wasm);
  /** d := d where h > 0 (if h), in place; returns d's column sums as a new [columns] tensor. */
  const maskAndSum = (d: tf.TensorInfo, h: tf.TensorInfo | undefined): tf.TensorInfo => {
    const [r, columns] = d.shape;
    const sums = wasm.makeOutput([columns], "float32");
    const loop = h ? loops.masked : loops.plain;
    view(sums).fill(0);
    if (loop && columns % 4 === 0) {
      loop(offset(d), h ? offset(h) : 0, offset(sums), r, columns / 4);
    } else {
      const dv = view(d);
      const hv = h ? view(h) : undefined;
      const sv = view(sums);
      for (let i = 0; i < r * columns; i++) {
        if (hv && !(hv[i] > 0)) dv[i] = 0;
        sv[i % columns] += dv[i];
      }
    }
    return sums;
  };

  try {
    // Forward.
    const h1 = product(x, w1, { bias: b1, relu: true });
    // The two latent layers side by side: [Wm | Wl] (hidden x 2 latent), [bm | bl].
    const wCat = temp([hidden, 2 * latent]);
    const bCat = temp([2 * latent]);
    {
      const [wmv, wlv, wc] = [view(wm), view(wl), view(wCat)];
      for (let k = 0; k < hidden; k++) {
        for (let j = 0; j < latent; j++) {
          wc[k * 2 * latent + j] = wmv[k * latent + j];
          wc[k * 2 * latent + latent + j] = wlv[k * latent + j];
        }
      }
      const bc = view(bCat);
      bc.set(view(bm), 0);
      bc.set(view(bl), latent);
    }
    const zCat = product(h1, wCat, { bias: bCat });
    const z = temp([rows, latent]);
    const zv = view(z);
    const zc = view(zCat);
    const ev = view(epsilon);
    const std = new Float32Array(rows * latent);
    let klSum = 0;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < latent; j++) {
        const mean = zc[i * 2 * latent + j];
        const logVar = zc[i * 2 * latent + latent + j];
        const s = Math.fround(Math.exp(0.5 * logVar));
        std[i * latent + j] = s;
        zv[i * latent + j] = mean + s * ev[i * latent + j];
        klSum += 1 + logVar - mean * mean - Math.exp(logVar);
      }
    }
    const kl = (-0.5 * klSum) / rows;
    const h2 = product(z, w3, { bias: b3, relu: true });
    const logits = product(h2, w4, { bias: b4 });
    const dLogits = temp([rows, pixels]);
    const reconstruction = bceLogitsWasm(wasm, logits, x, dLogits, 1 / rows) / rows;

    // Backward. The decoder's weight gradient, as large a product as the rest of the backward pass on
    // the main thread, goes to a helper thread meanwhile: two whole products side by side, instead of
    // each split in two and waiting for the other half.
    const dW4 = productOnHelper(h2, dLogits, { transposeA: true });
    const gb4 = maskAndSum(dLogits, undefined);
    ready("b4", gb4, "here");
    const dH2 = product(dLogits, w4, { transposeB: true });
    const gb3 = maskAndSum(dH2, h2);
    ready("b3", gb3, "here");
    ready("w3", product(z, dH2, { transposeA: true }), "here");
    const dz = product(dH2, w3, { transposeB: true });
    const dzCat = temp([rows, 2 * latent]);
    const gbCat = new Float64Array(2 * latent);
    {
      const [dzv, dc, zcv, ev2] = [view(dz), view(dzCat), view(zCat), view(epsilon)];
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < latent; j++) {
          const mean = zcv[i * 2 * latent + j];
          const logVar = zcv[i * 2 * latent + latent + j];
          const g = dzv[i * latent + j];
          const dMean = g + (c * mean) / rows;
          const dLogVar = 0.5 * g * ev2[i * latent + j] * std[i * latent + j] + (0.5 * c * (Math.exp(logVar) - 1)) / rows;
          dc[i * 2 * latent + j] = dMean;
          dc[i * 2 * latent + latent + j] = dLogVar;
          gbCat[j] += Math.fround(dMean);
          gbCat[latent + j] += Math.fround(dLogVar);
        }
      }
    }
    const gwCat = product(h1, dzCat, { transposeA: true });
    {
      const gwm = wasm.makeOutput([hidden, latent], "float32");
      const gwl = wasm.makeOutput([hidden, latent], "float32");
      const gbm = wasm.makeOutput([latent], "float32");
      const gbl = wasm.makeOutput([latent], "float32");
      const [gc, gm, gl] = [view(gwCat), view(gwm), view(gwl)];
      for (let k = 0; k < hidden; k++) {
        for (let j = 0; j < latent; j++) {
          gm[k * latent + j] = gc[k * 2 * latent + j];
          gl[k * latent + j] = gc[k * 2 * latent + latent + j];
        }
      }
      view(gbm).set(gbCat.subarray(0, latent));
      view(gbl).set(gbCat.subarray(latent));
      for (const [name, g] of [["wm", gwm], ["bm", gbm], ["wl", gwl], ["bl", gbl]] as const) ready(name, g, "here");
    }
    const dH1 = product(dzCat, wCat, { transposeB: true });
    const gb1 = maskAndSum(dH1, h1);
    ready("b1", gb1, "here");
    // The encoder's weight gradient across both threads (the helper is done with the decoder's by
    // now), then the two large updates side by side: the decoder's on the helper, the encoder's here.
    dW4.wait();
    const gw1 = product(x, dH1, { transposeA: true });
    ready("w4", dW4.out, "helper");
    ready("w1", gw1, "here");

    const terms = wasm.makeOutput([3], "float32");
    results.push(terms);
    view(terms).set([reconstruction, kl, reconstruction + c * kl]);
    const ordered = VAE_GRADIENT_WEIGHTS.map((name) => outputs[name]);
    return adam ? [terms, ...ordered.map((o) => o[0]), ...ordered.map((o) => o[1]), ...ordered.map((o) => o[2])] : [terms, ...ordered.map((o) => o[0])];
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    try {
      for (const wait of waiters) wait();
    } finally {
      for (const info of scratch) wasm.disposeData(info.dataId);
      if (failed) for (const info of results) wasm.disposeData(info.dataId);
    }
  }
}

/** Registers both kernels for "wasm" unless already registered (importing this module does it). */
export function registerVaeGradientsKernel(): void {
  if (!tf.getKernel(VAE_GRADIENTS_KERNEL, "wasm")) tf.registerKernel({ kernelName: VAE_GRADIENTS_KERNEL, backendName: "wasm", kernelFunc: gradientsKernel });
  if (!tf.getKernel(VAE_TRAIN_STEP_KERNEL, "wasm")) tf.registerKernel({ kernelName: VAE_TRAIN_STEP_KERNEL, backendName: "wasm", kernelFunc: trainStepKernel });
}
registerVaeGradientsKernel();
