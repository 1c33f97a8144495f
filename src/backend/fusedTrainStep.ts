/**
 * The wasm engine's whole training step, plugged in behind `trainStep`'s hook
 * (`registerFastPath` in `src/vae/fastPath.ts`): the kernels' names, the weights' order, the switch that
 * turns them off, and the calls. The kernels themselves are in `fusedGradients.ts`. A reader of `src/vae`
 * never needs this file; `test/backend/fusedGradients.test.ts` holds the two paths equal.
 */
import * as tf from "@tensorflow/tfjs";
import { option, OPTIONS, type Environment } from "../system/options";
import type { LossTerms } from "../vae/loss";
import type { Vae } from "../vae/model";
import { isKerasAdam, type KerasAdam } from "../vae/optimizer";
import { registerFastPath } from "../vae/fastPath";

/**
 * The kernel that computes one batch's loss terms and the gradients of the ten weight arrays in one call.
 * Inputs: x, epsilon and the weights by `VAE_WEIGHT_NAMES`; attribute klCoefficient; outputs:
 * [reconstruction, kl, total], then the gradients in the weights' order.
 */
export const VAE_GRADIENTS_KERNEL = "VaeGradients";

/**
 * The kernel that makes a whole training step with Keras's Adam in one call: `VAE_GRADIENTS_KERNEL`'s
 * inputs, plus each weight's moments as `${name}/m` and `${name}/v` (as the optimizer names them), and
 * Adam's step attributes (alpha, beta1, beta2, epsilon); outputs: the terms, then the ten new weights,
 * first moments and second moments.
 */
export const VAE_TRAIN_STEP_KERNEL = "VaeTrainStep";

/** The ten weight arrays as Keras names them (layer/kernel, layer/bias), in the kernels' order. */
export const VAE_WEIGHT_NAMES = [
  "encoder_hidden/kernel",
  "encoder_hidden/bias",
  "z_mean/kernel",
  "z_mean/bias",
  "z_log_var/kernel",
  "z_log_var/bias",
  "decoder_hidden/kernel",
  "decoder_hidden/bias",
  "decoder_output/kernel",
  "decoder_output/bias",
] as const;
export type VaeWeightName = (typeof VAE_WEIGHT_NAMES)[number];

/** `VAE_FUSED_GRADIENTS=0` makes `trainStep` differentiate with tfjs even where the fused kernel exists. */
export const FUSED_GRADIENTS_ENV = OPTIONS.fusedGradients.name;
/** Set by `setFusedGradients`; until then, the option. */
let fusedGradients: boolean | undefined;

/** Whether the environment allows the fused step (unset or 1: yes; 0: no; anything else: an error). */
export function fusedGradientsWanted(env?: Environment): boolean {
  return option("fusedGradients", env);
}

/** Switches the fused step on or off (for comparisons and tests); returns the previous setting. */
export function setFusedGradients(enabled: boolean): boolean {
  const previous = fusedGradients ?? fusedGradientsWanted();
  fusedGradients = enabled;
  return previous;
}

/**
 * Whether `trainStep` takes the fused kernel on `backendName` (the active backend by default): where it
 * is registered and not switched off. Batches of fewer than 64 rows or of rows not a multiple of 8 (an
 * epoch's last batch, at most) are differentiated by tfjs all the same.
 */
export function hasFusedGradients(backendName: string = tf.getBackend()): boolean {
  return (fusedGradients ?? fusedGradientsWanted()) && tf.getKernel(VAE_GRADIENTS_KERNEL, backendName) != null;
}

/** The model's ten weight variables in the kernels' order (each layer's kernel, then its bias). */
function layerVariables(model: Vae): tf.Variable[] {
  const { encoderHidden, zMean, zLogVar, decoderHidden, decoderOutput } = model.layers;
  return [encoderHidden, zMean, zLogVar, decoderHidden, decoderOutput].flatMap((layer) =>
    layer.trainableWeights.map((weight) => weight.read() as tf.Variable),
  );
}

/**
 * One batch's loss terms and gradients from the fused kernel, as a map from variable name to gradient
 * (what `optimizer.applyGradients` takes). The caller disposes the tensors.
 */
export function fusedLossGradients(
  model: Vae,
  x: tf.Tensor2D,
  epsilon: tf.Tensor2D,
  klCoefficient: number,
): { terms: tf.Tensor1D; gradients: tf.NamedTensorMap } {
  const variables = layerVariables(model);
  const inputs: tf.NamedTensorMap = { x, epsilon };
  VAE_WEIGHT_NAMES.forEach((name, i) => (inputs[name] = variables[i]));
  const [terms, ...grads] = tf
    .engine()
    .runKernel(VAE_GRADIENTS_KERNEL, inputs, { klCoefficient }) as unknown as tf.Tensor[];
  const gradients: tf.NamedTensorMap = {};
  variables.forEach((variable, i) => (gradients[variable.name] = grads[i]));
  return { terms: terms as tf.Tensor1D, gradients };
}

/**
 * `trainStep` in one kernel call (`VAE_TRAIN_STEP_KERNEL`): the same loss, gradients and Keras Adam update
 * as `fusedLossGradients` then `optimizer.applyGradients`, to the bit, with each weight updated as soon
 * as its gradient is ready.
 */
export function fusedTrainStep(
  model: Vae,
  optimizer: KerasAdam,
  x: tf.Tensor2D,
  epsilon: tf.Tensor2D,
  klCoefficient: number,
): LossTerms {
  const variables = layerVariables(model);
  const { attrs, moments } = optimizer.beginStep(variables);
  const inputs: tf.NamedTensorMap = { x, epsilon };
  VAE_WEIGHT_NAMES.forEach((name, i) => {
    inputs[name] = variables[i];
    inputs[`${name}/m`] = moments[i].m;
    inputs[`${name}/v`] = moments[i].v;
  });
  const outputs = tf.engine().runKernel(VAE_TRAIN_STEP_KERNEL, inputs, { klCoefficient, ...attrs });
  const [terms, ...updates] = outputs as unknown as tf.Tensor[];
  try {
    const n = variables.length;
    variables.forEach((variable, i) => {
      variable.assign(updates[i]);
      moments[i].m.assign(updates[n + i]);
      moments[i].v.assign(updates[2 * n + i]);
    });
    optimizer.endStep();
    const [reconstruction, kl, total] = terms.dataSync();
    return { reconstruction, kl, total };
  } finally {
    tf.dispose([terms, ...updates]);
  }
}

/**
 * The hook: the whole step in one kernel call with Keras's Adam, or the fused gradients then any other
 * optimizer's update; undefined (the plain step runs) when switched off, for a small or ragged batch, or
 * when training only some of the weights.
 */
function wasmTrainStep(
  model: Vae,
  optimizer: tf.Optimizer,
  x: tf.Tensor2D,
  epsilon: tf.Tensor2D,
  klCoefficient: number,
  variables: readonly tf.Variable[],
): LossTerms | undefined {
  const rows = x.shape[0];
  if (!hasFusedGradients() || rows % 8 !== 0 || rows < 64 || !sameVariables(variables, layerVariables(model))) {
    return undefined;
  }
  if (isKerasAdam(optimizer) && tf.getKernel(VAE_TRAIN_STEP_KERNEL, tf.getBackend())) {
    return fusedTrainStep(model, optimizer, x, epsilon, klCoefficient);
  }
  const { terms, gradients } = fusedLossGradients(model, x, epsilon, klCoefficient);
  try {
    optimizer.applyGradients(gradients);
    const [reconstruction, kl, total] = terms.dataSync();
    return { reconstruction, kl, total };
  } finally {
    tf.dispose([terms, ...Object.values(gradients)]);
  }
}

/** Whether two lists hold the same variables, in any order. */
function sameVariables(a: readonly tf.Variable[], b: readonly tf.Variable[]): boolean {
  return a.length === b.length && b.every((variable) => a.includes(variable));
}

/** Puts the wasm step behind `trainStep`'s hook (`select.ts` does it when it loads the wasm backend). */
export function registerWasmTrainStep(): void {
  registerFastPath("wasm", { trainStep: wasmTrainStep });
}
