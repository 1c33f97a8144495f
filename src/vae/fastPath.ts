/**
 * The one hook through which a backend may compute parts of training faster, each with the plain
 * path's numbers (tests hold the two equal). Nothing in `src/vae` knows an engine: the wasm engine in
 * `src/backend` registers itself here when it loads. With nothing registered, every part runs the plain
 * tfjs ops written out in `train.ts`, `loss.ts` and `optimizer.ts`.
 */
import * as tf from "@tensorflow/tfjs";
import type { Vae } from "./model";

/** A batch's loss terms (`LossTerms` in `loss.ts`, which imports this file). */
type Terms = { readonly reconstruction: number; readonly kl: number; readonly total: number };
/** The scalars of one Adam update (`KerasAdamAttrs` in `optimizer.ts`, which imports this file). */
type AdamStep = { readonly alpha: number; readonly beta1: number; readonly beta2: number; readonly epsilon: number };

/** What a backend may supply. Each part may decline (return undefined); the plain path then runs. */
export interface FastPath {
  /** A whole training step: the plain step's loss, gradients and update (`trainStep`). */
  readonly trainStep?: (
    model: Vae,
    optimizer: tf.Optimizer,
    x: tf.Tensor2D,
    epsilon: tf.Tensor2D,
    klCoefficient: number,
    variables: readonly tf.Variable[],
  ) => Terms | undefined;
  /** The reconstruction term from logits, value and gradient (`reconstructionLossFromLogits`). */
  readonly reconstructionLossFromLogits?: (x: tf.Tensor2D, logits: tf.Tensor2D) => tf.Scalar | undefined;
  /** Adam's update of one weight array: new [w, m, v] (`kerasAdamUpdate`). */
  readonly kerasAdamUpdate?: (
    w: tf.Tensor,
    m: tf.Tensor,
    v: tf.Tensor,
    g: tf.Tensor,
    attrs: AdamStep,
  ) => [tf.Tensor, tf.Tensor, tf.Tensor] | undefined;
}

const fastPaths = new Map<string, FastPath>();

/** Adds `parts` to backend `backendName`'s fast path (a part registered again replaces the old one). */
export function registerFastPath(backendName: string, parts: FastPath): void {
  fastPaths.set(backendName, { ...fastPaths.get(backendName), ...parts });
}

/** The active backend's fast path; empty when none is registered. */
export function fastPath(): FastPath {
  return fastPaths.get(tf.getBackend()) ?? {};
}
