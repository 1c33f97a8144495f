/**
 * The custom training loop (Keras's `add_loss` + `fit` has no tfjs twin): seeded shuffling, batches
 * built in JavaScript, Keras's Adam (`src/vae/optimizer.ts`), a per-epoch history of the train and test
 * loss terms, and callbacks.
 * Introduced in `notebooks/02-model.ipynb`; `trainStep`, `trainEpoch` and `evaluate` are its parts.
 */
import * as tf from "@tensorflow/tfjs";
import { checkTrainingInputs, type VaeConfig } from "./config";
import { gatherRows } from "./data";
import { fastPath } from "./fastPath";
import { vaeLossFromLogits, type LossTerms } from "./loss";
import { decodeLogits, encode, reparameterize, trainableVariables, type Vae } from "./model";
import { kerasAdam } from "./optimizer";
import { batchEpsilon, deriveSeed, permutation, RANDOM_STREAMS } from "./random";

export interface EpochRecord {
  /** 1-based, as Keras prints it. */
  readonly epoch: number;
  /** Means over the epoch's batches, weighted by batch size (what Keras reports as `loss`). */
  readonly train: LossTerms;
  /** The terms on the whole test set after the epoch (Keras's `val_loss`). */
  readonly test: LossTerms;
  readonly seconds: number;
}

export interface EpochEndEvent {
  readonly klCoefficient: number;
  readonly record: EpochRecord;
  readonly epochs: number;
  readonly elapsedSeconds: number;
  /** Estimated seconds left for this coefficient, from the mean epoch time so far. */
  readonly etaSeconds: number;
}

export interface BatchEndEvent {
  readonly klCoefficient: number;
  readonly epoch: number;
  readonly batch: number;
  readonly batches: number;
  readonly terms: LossTerms;
}

export interface TrainOptions {
  readonly config: Pick<VaeConfig, "batchSize" | "epochs" | "learningRate" | "seed" | "originalDim" | "latentDim">;
  readonly klCoefficient: number;
  readonly xTrain: Float32Array;
  readonly xTest: Float32Array;
  readonly onEpochEnd?: (event: EpochEndEvent) => void;
  readonly onBatchEnd?: (event: BatchEndEvent) => void;
}

/** A NaN or infinite loss: training stops and says where. */
export class TrainingDivergedError extends Error {
  override name = "TrainingDivergedError";
  constructor(
    readonly klCoefficient: number,
    readonly epoch: number,
    readonly batch: number,
    readonly terms: LossTerms,
  ) {
    super(
      `Training diverged for KL coefficient ${klCoefficient} at epoch ${epoch}, batch ${batch}: ` +
        `reconstruction ${terms.reconstruction}, KL ${terms.kl}, total ${terms.total}. ` +
        `Lower the learning rate or the coefficient; finished coefficients are kept.`,
    );
  }
}

/** The forward pass and the loss terms for one batch with given noise (the loss from the decoder's logits). */
export function forwardLoss(model: Vae, x: tf.Tensor2D, epsilon: tf.Tensor2D, klCoefficient: number) {
  const { zMean, zLogVar } = encode(model, x);
  const z = reparameterize(zMean, zLogVar, epsilon);
  return vaeLossFromLogits(x, decodeLogits(model, z), zMean, zLogVar, klCoefficient);
}

/** One Adam step on one batch; returns the batch's terms before the update. */
export function trainStep(
  model: Vae,
  optimizer: tf.Optimizer,
  x: tf.Tensor2D,
  epsilon: tf.Tensor2D,
  klCoefficient: number,
  variables: tf.Variable[] = trainableVariables(model),
): LossTerms {
  // A backend's whole step where it supplies one (the wasm engine does; `fastPath.ts`), else the plain one.
  const fast = fastPath().trainStep?.(model, optimizer, x, epsilon, klCoefficient, variables);
  if (fast) {
    return fast;
  } else {
    // The plain step: the loss recorded on a gradient tape, differentiated by tfjs, then the update.
    let terms: [tf.Scalar, tf.Scalar] | undefined;
    const total = optimizer.minimize(
      () => {
        const loss = forwardLoss(model, x, epsilon, klCoefficient);
        terms = [tf.keep(loss.reconstruction), tf.keep(loss.kl)];
        return loss.total;
      },
      true,
      variables,
    ) as tf.Scalar;
    const [reconstruction, kl] = terms as [tf.Scalar, tf.Scalar];
    const values = { reconstruction: reconstruction.dataSync()[0], kl: kl.dataSync()[0], total: total.dataSync()[0] };
    tf.dispose([reconstruction, kl, total]);
    return values;
  }
}

/** The loss terms over a whole set, in batches, with seeded noise (the same for every evaluation). */
export function evaluate(
  model: Vae,
  x: Float32Array,
  options: { klCoefficient: number; originalDim: number; latentDim: number; seed: number; batchRows?: number },
): LossTerms {
  const { klCoefficient, originalDim, latentDim, seed } = options;
  const batchRows = options.batchRows ?? 1000;
  const rows = x.length / originalDim;
  let reconstruction = 0;
  let kl = 0;
  for (let start = 0, batch = 0; start < rows; start += batchRows, batch++) {
    const end = Math.min(rows, start + batchRows);
    const [r, k] = tf.tidy(() => {
      const xBatch = tf.tensor2d(x.subarray(start * originalDim, end * originalDim), [end - start, originalDim]);
      const epsilon = tf.tensor2d(batchEpsilon(seed, 0, batch, end - start, latentDim), [end - start, latentDim]);
      const loss = forwardLoss(model, xBatch, epsilon, klCoefficient);
      return [loss.reconstruction.dataSync()[0], loss.kl.dataSync()[0]];
    });
    reconstruction += r * (end - start);
    kl += k * (end - start);
  }
  reconstruction /= rows;
  kl /= rows;
  return { reconstruction, kl, total: reconstruction + klCoefficient * kl };
}

/** One pass over the training set in a seeded order; returns the batch-size-weighted mean terms. */
export function trainEpoch(
  model: Vae,
  optimizer: tf.Optimizer,
  options: TrainOptions,
  epoch: number,
  variables: tf.Variable[] = trainableVariables(model),
): LossTerms {
  const { config, klCoefficient, xTrain, onBatchEnd } = options;
  const { batchSize, originalDim, latentDim, seed } = config;
  const rows = xTrain.length / originalDim;
  const order = permutation(rows, deriveSeed(seed, RANDOM_STREAMS.epochShuffle, epoch));
  const batches = Math.ceil(rows / batchSize);
  let reconstruction = 0;
  let kl = 0;
  let total = 0;
  // The wasm backend copies a new tensor's values onto its heap at once, so one batch buffer serves
  // every batch there (saving a 400 KB allocation a step); other backends may keep the array they get.
  const batchBuffer = tf.getBackend() === "wasm" ? new Float32Array(batchSize * originalDim) : undefined;
  for (let batch = 0; batch < batches; batch++) {
    const start = batch * batchSize;
    const end = Math.min(rows, start + batchSize);
    const x = tf.tensor2d(gatherRows(xTrain, order, start, end, originalDim, batchBuffer), [end - start, originalDim]);
    const epsilon = tf.tensor2d(batchEpsilon(seed, epoch, batch, end - start, latentDim), [end - start, latentDim]);
    const terms = trainStep(model, optimizer, x, epsilon, klCoefficient, variables);
    tf.dispose([x, epsilon]);
    if (!Number.isFinite(terms.total) || !Number.isFinite(terms.reconstruction) || !Number.isFinite(terms.kl)) {
      throw new TrainingDivergedError(klCoefficient, epoch, batch + 1, terms);
    }
    reconstruction += terms.reconstruction * (end - start);
    kl += terms.kl * (end - start);
    total += terms.total * (end - start);
    onBatchEnd?.({ klCoefficient, epoch, batch: batch + 1, batches, terms });
  }
  return { reconstruction: reconstruction / rows, kl: kl / rows, total: total / rows };
}

/** Lets pending I/O run (a notebook's live display, a progress bar, a signal) between epochs. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Trains `model` in place for `config.epochs` epochs with a fresh Adam (as Keras recompiles per
 * coefficient) and returns the history. The caller restores the initial weights beforehand.
 * Asynchronous only to let progress reach the screen after each epoch; the work is the same.
 */
export async function train(model: Vae, options: TrainOptions): Promise<EpochRecord[]> {
  const { config, klCoefficient, xTest, onEpochEnd } = options;
  checkTrainingInputs(config, klCoefficient, { xTrain: options.xTrain, xTest });
  const optimizer = kerasAdam(config.learningRate);
  const variables = trainableVariables(model);
  const history: EpochRecord[] = [];
  const started = performance.now();
  try {
    for (let epoch = 1; epoch <= config.epochs; epoch++) {
      const epochStarted = performance.now();
      const trainTerms = trainEpoch(model, optimizer, options, epoch, variables);
      const testTerms = evaluate(model, xTest, { ...config, klCoefficient });
      const record: EpochRecord = {
        epoch,
        train: trainTerms,
        test: testTerms,
        seconds: (performance.now() - epochStarted) / 1000,
      };
      history.push(record);
      const elapsedSeconds = (performance.now() - started) / 1000;
      onEpochEnd?.({
        klCoefficient,
        record,
        epochs: config.epochs,
        elapsedSeconds,
        etaSeconds: (elapsedSeconds / epoch) * (config.epochs - epoch),
      });
      await yieldToEventLoop();
    }
  } finally {
    optimizer.dispose();
  }
  return history;
}
