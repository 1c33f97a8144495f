/**
 * The VAE's loss terms and the gradients of its ten weight arrays for one batch, as one kernel call on
 * the wasm backend (`VAE_GRADIENTS_KERNEL`, behind `trainStep`'s hook through `fusedTrainStep.ts`),
 * instead of about 160 tfjs ops on a tape: the forward and backward passes written out once, on the
 * loops the ops use. `VAE_TRAIN_STEP_KERNEL` adds Keras's Adam, each weight updated as soon as its
 * gradient is ready, the decoder's weight gradient on a helper thread meanwhile. The test checks every
 * gradient against tfjs's automatic differentiation of `forwardLoss`, and the step against the plain
 * one. The passes written out, and the threads' schedule: docs/wasm-engine.md.
 */
import * as tf from "@tensorflow/tfjs";
import type { KerasAdamAttrs } from "../vae/optimizer";
import {
  registerWasmTrainStep,
  VAE_GRADIENTS_KERNEL,
  VAE_TRAIN_STEP_KERNEL,
  VAE_WEIGHT_NAMES,
  type VaeWeightName,
} from "./fusedTrainStep";
import { kerasAdamWasm } from "./fusedAdam";
import { bceLogitsWasm } from "./fusedLoss";
import { wasmGemmAsync } from "./wasmGemm";
import {
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
    ...op.i32Const(0),
    ...set(row),
    ...get(sums),
    ...get(vectors),
    ...op.i32Const(16),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(sEnd),
    ...op.block,
    ...get(rows),
    ...op.i32Eqz,
    ...op.brIf(0),
    ...op.loop,
    ...get(sums),
    ...set(sp),
    ...op.loop,
    ...get(d),
    ...op.v128Load(0),
    ...(masked ? [...get(h), ...op.v128Load(0), ...op.v128Zero, ...op.f32x4Gt, ...op.v128And] : []),
    ...set(dv),
    ...(masked ? [...get(d), ...get(dv), ...op.v128Store(0)] : []),
    ...get(sp),
    ...get(sp),
    ...op.v128Load(0),
    ...get(dv),
    ...op.f32x4Add,
    ...op.v128Store(0),
    ...get(d),
    ...op.i32Const(16),
    ...op.i32Add,
    ...set(d),
    ...get(h),
    ...op.i32Const(16),
    ...op.i32Add,
    ...set(h),
    ...get(sp),
    ...op.i32Const(16),
    ...op.i32Add,
    ...op.tee(sp),
    ...get(sEnd),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
    ...get(row),
    ...op.i32Const(1),
    ...op.i32Add,
    ...op.tee(row),
    ...get(rows),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
    ...op.end,
  ];
  return memoryModule(
    {
      name: "run",
      params: [I32, I32, I32, I32, I32],
      locals: [
        [3, I32],
        [1, V128],
      ],
      body,
    },
    shared,
  );
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

/** Keras's Adam for the training step: its step attributes and each weight's moments. */
interface AdamInputs {
  attrs: KerasAdamAttrs;
  m: Record<VaeWeightName, tf.TensorInfo>;
  v: Record<VaeWeightName, tf.TensorInfo>;
}

const gradientsKernel: tf.KernelFunc = ({ inputs, backend, attrs }) =>
  lossAndUpdates(
    backend as unknown as WasmBackendLike,
    inputs,
    (attrs as unknown as { klCoefficient: number }).klCoefficient,
  );

const trainStepKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { klCoefficient, ...adamAttrs } = attrs as unknown as { klCoefficient: number } & KerasAdamAttrs;
  const named = inputs as unknown as Record<string, tf.TensorInfo>;
  const moments = (suffix: string) =>
    Object.fromEntries(VAE_WEIGHT_NAMES.map((name) => [name, named[`${name}/${suffix}`]])) as Record<
      VaeWeightName,
      tf.TensorInfo
    >;
  return lossAndUpdates(backend as unknown as WasmBackendLike, inputs, klCoefficient, {
    attrs: adamAttrs,
    m: moments("m"),
    v: moments("v"),
  });
};

/**
 * One call's buffers and helpers. A class, not closures made at every call: V8 compiled closures made
 * afresh at every step for the one instance it had seen, and threw the code away at the next step
 * ("wrong call target"), compiling the step's function again and again, 70-150 ms each time.
 */
class Step {
  /** Temporary heap buffers, freed at the end. */
  readonly scratch: tf.TensorInfo[] = [];
  /** Work started on a helper thread, waited for before anything is freed (even on an error). */
  readonly waiters: (() => void)[] = [];
  /** The kernel's outputs made so far (freed if something fails). */
  readonly results: tf.TensorInfo[] = [];
  /** Per weight its [gradient], or with Adam its [w, m, v]. */
  readonly outputs = {} as Record<VaeWeightName, tf.TensorInfo[]>;
  private readonly matMul: tf.KernelConfig;
  private readonly loops: { masked: MaskSum | null; plain: MaskSum | null };
  /** The decoder's weight gradient computed on a helper thread, and how to wait for it. */
  private helperProduct: { out: tf.TensorInfo; wait: () => void } | undefined;

  constructor(
    readonly wasm: WasmBackendLike,
    readonly named: Record<"x" | "epsilon" | VaeWeightName, tf.TensorInfo>,
    readonly adam: AdamInputs | undefined,
  ) {
    const matMul = tf.getKernel("_FusedMatMul", "wasm");
    if (!matMul) throw new Error(`${VAE_GRADIENTS_KERNEL}: the wasm backend has no _FusedMatMul kernel.`);
    this.matMul = matMul;
    this.loops = maskSumFor(wasm);
  }

  offset(info: tf.TensorInfo): number {
    return this.wasm.dataIdMap.get(info.dataId).memoryOffset;
  }

  view(info: tf.TensorInfo): Float32Array {
    return new Float32Array(heapBuffer(this.wasm.wasm), this.offset(info), tf.util.sizeFromShape(info.shape));
  }

  temp(shape: number[]): tf.TensorInfo {
    const info = this.wasm.makeOutput(shape, "float32");
    this.scratch.push(info);
    return info;
  }

  /**
   * a b (transposed as asked) [+ bias] [then ReLU] through the registered `_FusedMatMul` kernel: the
   * generated loops, or XNNPACK's for shapes they do not cover (small layers), which reads a batch
   * dimension; so the operands go in as rank 3, as tfjs's fused matMul op passes them.
   */
  product(
    a: tf.TensorInfo,
    b: tf.TensorInfo,
    transposeA: boolean,
    transposeB: boolean,
    bias?: tf.TensorInfo,
    relu = false,
  ): tf.TensorInfo {
    const inputs: tf.NamedTensorInfoMap = { a: batched(a), b: batched(b) };
    if (bias) inputs.bias = bias;
    const attrs = { transposeA, transposeB, activation: relu ? "relu" : "linear", leakyreluAlpha: 0 };
    const out = this.matMul.kernelFunc({
      inputs,
      backend: this.wasm as unknown as tf.KernelBackend,
      attrs,
    }) as tf.TensorInfo;
    const matrix: tf.TensorInfo = { dataId: out.dataId, shape: out.shape.slice(-2), dtype: out.dtype };
    this.scratch.push(matrix);
    return matrix;
  }

  /** a^T b started on a helper thread while the main thread goes on (`wasmGemmAsync`); `helperDone` waits. */
  productOnHelper(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    const started = wasmGemmAsync(this.wasm, { a, b, transposeA: true, transposeB: false, relu: false });
    if (!started) return this.product(a, b, true, false);
    this.scratch.push(started.out);
    this.helperProduct = started;
    this.waiters.push(() => this.helperDone());
    return started.out;
  }

  /** Waits for the product started on a helper thread (once; later calls return at once). */
  helperDone(): void {
    const started = this.helperProduct;
    this.helperProduct = undefined;
    started?.wait();
  }

  /** A weight's gradient is ready: it is an output, or (with Adam) it updates the weight and is freed. */
  ready(name: VaeWeightName, gradient: tf.TensorInfo, where: "here" | "split" | "helper"): void {
    const index = this.scratch.indexOf(gradient);
    if (!this.adam) {
      if (index >= 0) this.scratch.splice(index, 1);
      this.results.push(gradient);
      this.outputs[name] = [gradient];
      return;
    }
    if (index < 0) this.scratch.push(gradient);
    const { m, v, attrs } = this.adam;
    const update = kerasAdamWasm(this.wasm, { w: this.named[name], m: m[name], v: v[name], g: gradient }, attrs, where);
    this.waiters.push(update.wait);
    for (const info of update.outputs) this.results.push(info);
    this.outputs[name] = update.outputs;
  }

  /** d := d where h > 0 (if h), in place; returns d's column sums as a new [columns] tensor. */
  maskAndSum(d: tf.TensorInfo, h: tf.TensorInfo | undefined): tf.TensorInfo {
    const [rows, columns] = d.shape;
    const sums = this.wasm.makeOutput([columns], "float32");
    const loop = h ? this.loops.masked : this.loops.plain;
    this.view(sums).fill(0);
    if (loop && columns % 4 === 0) {
      loop(this.offset(d), h ? this.offset(h) : 0, this.offset(sums), rows, columns / 4);
    } else {
      const dv = this.view(d);
      const hv = h ? this.view(h) : undefined;
      const sv = this.view(sums);
      for (let i = 0; i < rows * columns; i++) {
        if (hv && !(hv[i] > 0)) dv[i] = 0;
        sv[i % columns] += dv[i];
      }
    }
    return sums;
  }

  /** The outputs in the kernel's order: the terms, then per weight its gradient, or all w, then m, then v. */
  ordered(terms: tf.TensorInfo): tf.TensorInfo[] {
    const list = [terms];
    const parts = this.adam ? 3 : 1;
    for (let part = 0; part < parts; part++) {
      for (const name of VAE_WEIGHT_NAMES) list.push(this.outputs[name][part]);
    }
    return list;
  }

  /** Waits for the helpers' work, then frees the temporary buffers (and the outputs, if it failed). */
  finish(failed: boolean): void {
    try {
      for (const wait of this.waiters) wait();
    } finally {
      for (const info of this.scratch) this.wasm.disposeData(info.dataId);
      if (failed) for (const info of this.results) this.wasm.disposeData(info.dataId);
    }
  }
}

/** A rank-3 view of a matrix (objects of one shape: see `Step`). */
function batched(info: tf.TensorInfo): tf.TensorInfo {
  return { dataId: info.dataId, shape: [1, ...info.shape], dtype: info.dtype };
}

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
  const named = inputs as unknown as Record<"x" | "epsilon" | VaeWeightName, tf.TensorInfo>;
  for (const [name, info] of Object.entries(inputs)) {
    if (!info || info.dtype !== "float32")
      throw new Error(`${VAE_GRADIENTS_KERNEL}: input ${name} must be a float32 tensor.`);
    wasm.dataIdMap.get(info.dataId); // moves an input that lives on another backend onto the heap
  }
  const step = new Step(wasm, named, adam);
  let failed = false;
  try {
    return forwardAndBackward(step, c);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    step.finish(failed);
  }
}

function forwardAndBackward(step: Step, c: number): tf.TensorInfo[] {
  const { x, epsilon } = step.named;
  const weight = (name: VaeWeightName) => step.named[name];
  const [encoderKernel, encoderBias] = [weight("encoder_hidden/kernel"), weight("encoder_hidden/bias")];
  const [meanKernel, meanBias] = [weight("z_mean/kernel"), weight("z_mean/bias")];
  const [logVarKernel, logVarBias] = [weight("z_log_var/kernel"), weight("z_log_var/bias")];
  const [decoderKernel, decoderBias] = [weight("decoder_hidden/kernel"), weight("decoder_hidden/bias")];
  const [outputKernel, outputBias] = [weight("decoder_output/kernel"), weight("decoder_output/bias")];
  const { wasm } = step;
  const [rows, pixels] = x.shape;
  const hidden = encoderBias.shape[0];
  const latent = meanBias.shape[0];

  // Forward.
  const h1 = step.product(x, encoderKernel, false, false, encoderBias, true);
  // The two latent layers side by side: [W_mean | W_logVar] (hidden x 2 latent), [b_mean | b_logVar].
  const wCat = step.temp([hidden, 2 * latent]);
  const bCat = step.temp([2 * latent]);
  {
    const [wmv, wlv, wc] = [step.view(meanKernel), step.view(logVarKernel), step.view(wCat)];
    for (let k = 0; k < hidden; k++) {
      for (let j = 0; j < latent; j++) {
        wc[k * 2 * latent + j] = wmv[k * latent + j];
        wc[k * 2 * latent + latent + j] = wlv[k * latent + j];
      }
    }
    const bc = step.view(bCat);
    bc.set(step.view(meanBias), 0);
    bc.set(step.view(logVarBias), latent);
  }
  const zCat = step.product(h1, wCat, false, false, bCat);
  const z = step.temp([rows, latent]);
  const std = new Float32Array(rows * latent);
  let klSum = 0;
  {
    const [zv, zc, ev] = [step.view(z), step.view(zCat), step.view(epsilon)];
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
  }
  const kl = (-0.5 * klSum) / rows;
  const h2 = step.product(z, decoderKernel, false, false, decoderBias, true);
  const logits = step.product(h2, outputKernel, false, false, outputBias);
  const dLogits = step.temp([rows, pixels]);
  const reconstruction = bceLogitsWasm(wasm, logits, x, dLogits, 1 / rows) / rows;

  // Backward. The decoder's weight gradient, as large a product as the rest of the backward pass on
  // the main thread, goes to a helper thread meanwhile: two whole products side by side, instead of
  // each split in two and waiting for the other half.
  const gOutputKernel = step.productOnHelper(h2, dLogits);
  step.ready("decoder_output/bias", step.maskAndSum(dLogits, undefined), "here");
  const dH2 = step.product(dLogits, outputKernel, false, true);
  step.ready("decoder_hidden/bias", step.maskAndSum(dH2, h2), "here");
  step.ready("decoder_hidden/kernel", step.product(z, dH2, true, false), "here");
  const dz = step.product(dH2, decoderKernel, false, true);
  const dzCat = step.temp([rows, 2 * latent]);
  const gbCat = new Float64Array(2 * latent);
  {
    const [dzv, dc, zcv, ev] = [step.view(dz), step.view(dzCat), step.view(zCat), step.view(epsilon)];
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < latent; j++) {
        const mean = zcv[i * 2 * latent + j];
        const logVar = zcv[i * 2 * latent + latent + j];
        const g = dzv[i * latent + j];
        const dMean = g + (c * mean) / rows;
        const dLogVar = 0.5 * g * ev[i * latent + j] * std[i * latent + j] + (0.5 * c * (Math.exp(logVar) - 1)) / rows;
        dc[i * 2 * latent + j] = dMean;
        dc[i * 2 * latent + latent + j] = dLogVar;
        gbCat[j] += Math.fround(dMean);
        gbCat[latent + j] += Math.fround(dLogVar);
      }
    }
  }
  const gwCat = step.product(h1, dzCat, true, false);
  {
    const gMeanKernel = wasm.makeOutput([hidden, latent], "float32");
    const gLogVarKernel = wasm.makeOutput([hidden, latent], "float32");
    const gMeanBias = wasm.makeOutput([latent], "float32");
    const gLogVarBias = wasm.makeOutput([latent], "float32");
    const [gc, gm, gl] = [step.view(gwCat), step.view(gMeanKernel), step.view(gLogVarKernel)];
    for (let k = 0; k < hidden; k++) {
      for (let j = 0; j < latent; j++) {
        gm[k * latent + j] = gc[k * 2 * latent + j];
        gl[k * latent + j] = gc[k * 2 * latent + latent + j];
      }
    }
    step.view(gMeanBias).set(gbCat.subarray(0, latent));
    step.view(gLogVarBias).set(gbCat.subarray(latent));
    step.ready("z_mean/kernel", gMeanKernel, "here");
    step.ready("z_mean/bias", gMeanBias, "here");
    step.ready("z_log_var/kernel", gLogVarKernel, "here");
    step.ready("z_log_var/bias", gLogVarBias, "here");
  }
  const dH1 = step.product(dzCat, wCat, false, true);
  step.ready("encoder_hidden/bias", step.maskAndSum(dH1, h1), "here");
  // The encoder's weight gradient across both threads (the helper is done with the decoder's by
  // now), then the two large updates side by side: the decoder's on the helper, the encoder's here.
  step.helperDone();
  const gEncoderKernel = step.product(x, dH1, true, false);
  step.ready("decoder_output/kernel", gOutputKernel, "helper");
  step.ready("encoder_hidden/kernel", gEncoderKernel, "here");

  const terms = wasm.makeOutput([3], "float32");
  step.results.push(terms);
  step.view(terms).set([reconstruction, kl, reconstruction + c * kl]);
  return step.ordered(terms);
}

/**
 * Registers both kernels for "wasm" unless already registered, and the step that calls them (importing this
 * module does it).
 */
export function registerVaeGradientsKernel(): void {
  if (!tf.getKernel(VAE_GRADIENTS_KERNEL, "wasm"))
    tf.registerKernel({ kernelName: VAE_GRADIENTS_KERNEL, backendName: "wasm", kernelFunc: gradientsKernel });
  if (!tf.getKernel(VAE_TRAIN_STEP_KERNEL, "wasm"))
    tf.registerKernel({ kernelName: VAE_TRAIN_STEP_KERNEL, backendName: "wasm", kernelFunc: trainStepKernel });
  registerWasmTrainStep();
}
registerVaeGradientsKernel();
