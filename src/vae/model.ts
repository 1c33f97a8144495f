/**
 * The Keras MLP VAE of the tutorial (`build_model`): 784 -> Dense(512, relu) -> zMean, zLogVar (2 each)
 * -> sampling -> z; decoder 2 -> Dense(512, relu) -> Dense(784, sigmoid).
 * Introduced in `notebooks/02-model.ipynb`.
 */
import * as tf from "@tensorflow/tfjs";
import type { VaeConfig } from "./config";
import { Random } from "./random";

/**
 * The reparameterization trick: instead of sampling z from q(z|x) = N(zMean, exp(zLogVar)), sample
 * epsilon from N(0, I) and compute z = zMean + exp(0.5 * zLogVar) * epsilon, which is differentiable in
 * zMean and zLogVar (exp(0.5 * log var) is the standard deviation).
 */
export function reparameterize(zMean: tf.Tensor2D, zLogVar: tf.Tensor2D, epsilon: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.add(zMean, tf.mul(tf.exp(tf.mul(0.5, zLogVar)), epsilon)));
}

/** The tutorial's `Lambda(sampling)`: draws epsilon ~ N(0, I) itself, as Keras's `K.random_normal`. */
export class Sampling extends tf.layers.Layer {
  static className = "Sampling";
  private draws = 0;

  constructor(
    private readonly seed: number,
    config?: { name?: string },
  ) {
    super(config ?? {});
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (inputShape as tf.Shape[])[0];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [zMean, zLogVar] = inputs as tf.Tensor2D[];
    // A fresh, seeded stream per call keeps predictions repeatable and independent of the backend.
    const epsilon = new Random(this.seed + this.draws++).fillNormal(new Float32Array(zMean.size));
    return tf.tidy(() => reparameterize(zMean, zLogVar, tf.tensor2d(epsilon, zMean.shape)));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), seed: this.seed };
  }
}
tf.serialization.registerClass(Sampling);

/** The five dense layers, named as in Keras, reused by the training step. */
export interface VaeLayers {
  readonly encoderHidden: tf.layers.Layer;
  readonly zMean: tf.layers.Layer;
  readonly zLogVar: tf.layers.Layer;
  readonly decoderHidden: tf.layers.Layer;
  readonly decoderOutput: tf.layers.Layer;
}

export interface Vae {
  /** x -> [zMean, zLogVar, z], as the tutorial's `encoder`. */
  readonly encoder: tf.LayersModel;
  /** z -> xDecoded (pixel probabilities), as the tutorial's `decoder`. */
  readonly decoder: tf.LayersModel;
  /** x -> decoder(encoder(x)[2]), as the tutorial's `vae`. */
  readonly vae: tf.LayersModel;
  readonly layers: VaeLayers;
}

/** Shape and values of one weight array, in the order of `vae.getWeights()`. */
export interface WeightArray {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** The tutorial's `build_model`, options destructured from the config. Weights are Glorot-uniform. */
export function buildModel(config: Pick<VaeConfig, "originalDim" | "intermediateDim" | "latentDim" | "seed">): Vae {
  const { originalDim, intermediateDim, latentDim, seed } = config;
  const layers: VaeLayers = {
    encoderHidden: tf.layers.dense({ units: intermediateDim, activation: "relu", name: "encoder_hidden" }),
    zMean: tf.layers.dense({ units: latentDim, name: "z_mean" }),
    zLogVar: tf.layers.dense({ units: latentDim, name: "z_log_var" }),
    decoderHidden: tf.layers.dense({ units: intermediateDim, activation: "relu", name: "decoder_hidden" }),
    decoderOutput: tf.layers.dense({ units: originalDim, activation: "sigmoid", name: "decoder_output" }),
  };

  const inputs = tf.input({ shape: [originalDim], name: "encoder_input" });
  const hidden = layers.encoderHidden.apply(inputs) as tf.SymbolicTensor;
  const zMean = layers.zMean.apply(hidden) as tf.SymbolicTensor;
  const zLogVar = layers.zLogVar.apply(hidden) as tf.SymbolicTensor;
  const z = new Sampling(seed, { name: "z" }).apply([zMean, zLogVar]) as tf.SymbolicTensor;
  const encoder = tf.model({ inputs, outputs: [zMean, zLogVar, z], name: "encoder" });

  const latentInputs = tf.input({ shape: [latentDim], name: "z_sampling" });
  const decoded = layers.decoderOutput.apply(layers.decoderHidden.apply(latentInputs)) as tf.SymbolicTensor;
  const decoder = tf.model({ inputs: latentInputs, outputs: decoded, name: "decoder" });

  const encoded = encoder.apply(inputs) as tf.SymbolicTensor[];
  const vae = tf.model({ inputs, outputs: decoder.apply(encoded[2]) as tf.SymbolicTensor, name: "vae_mlp" });

  const model: Vae = { encoder, decoder, vae, layers };
  setWeights(model, initialWeights(model, seed));
  return model;
}

/**
 * Seeded Glorot-uniform kernels and zero biases (Keras's defaults for Dense), drawn in JavaScript so
 * that every backend starts from the same numbers: U(-limit, limit), limit = sqrt(6 / (fanIn + fanOut)).
 */
export function initialWeights(model: Vae, seed: number): WeightArray[] {
  const random = new Random(seed);
  return model.vae.weights.map((weight) => {
    const shape = weight.shape as number[];
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 2) {
      const limit = Math.sqrt(6 / (shape[0] + shape[1]));
      random.fillUniform(values, -limit, limit);
    }
    return { name: weight.originalName, shape, values };
  });
}

/** Copies the model's weights out: the tutorial's `vae.save_weights('vae_init.h5')`. */
export function snapshotWeights(model: Vae): WeightArray[] {
  return model.vae.weights.map((weight) => {
    const tensor = weight.read();
    return {
      name: weight.originalName,
      shape: tensor.shape,
      values: Float32Array.from(tensor.dataSync() as Float32Array),
    };
  });
}

/** Restores a snapshot exactly: the tutorial's `vae.load_weights('vae_init.h5')`. */
export function setWeights(model: Vae, weights: readonly WeightArray[]): void {
  const current = model.vae.weights;
  if (weights.length !== current.length) {
    throw new Error(
      `Weight snapshot has ${weights.length} arrays but the model has ${current.length}; ` +
        "it was saved from another architecture.",
    );
  }
  const tensors = weights.map((weight, i) => {
    const expected = current[i].shape.join("x");
    if (weight.shape.join("x") !== expected) {
      throw new Error(`Weight ${weight.name} has shape ${weight.shape.join("x")} but the model expects ${expected}.`);
    }
    return tf.tensor(weight.values, weight.shape as number[]);
  });
  model.vae.setWeights(tensors);
  tf.dispose(tensors);
}

/** The trainable variables, in `vae.getWeights()` order, for the optimizer. */
export function trainableVariables(model: Vae): tf.Variable[] {
  return model.vae.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/** q(z|x)'s parameters for a batch: the encoder without the sampling layer. */
export function encode(model: Vae, x: tf.Tensor2D): { zMean: tf.Tensor2D; zLogVar: tf.Tensor2D } {
  const hidden = model.layers.encoderHidden.apply(x) as tf.Tensor2D;
  const zMean = model.layers.zMean.apply(hidden) as tf.Tensor2D;
  const zLogVar = model.layers.zLogVar.apply(hidden) as tf.Tensor2D;
  // `hidden` is left to the caller's tidy: a gradient tape may still need it.
  return { zMean, zLogVar };
}

/** p(x|z)'s pixel probabilities for a batch of latent points. */
export function decode(model: Vae, z: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => model.layers.decoderOutput.apply(model.layers.decoderHidden.apply(z)) as tf.Tensor2D);
}

/**
 * The decoder up to its last sigmoid: the logits log(p / (1 - p)) of the pixel probabilities, which
 * the training loss takes (`vaeLossFromLogits`). The same product and bias as the `decoder_output`
 * layer, whose weights it reads.
 */
export function decodeLogits(model: Vae, z: tf.Tensor2D): tf.Tensor2D {
  const hidden = model.layers.decoderHidden.apply(z) as tf.Tensor2D;
  const [kernel, bias] = model.layers.decoderOutput.trainableWeights.map((weight) => weight.read());
  // `hidden` is left to the caller's tidy, as in `encode`: a gradient tape may still need it.
  return tf.fused.matMul({ a: hidden, b: kernel as tf.Tensor2D, bias }) as tf.Tensor2D;
}
