/**
 * The VAE loss of the tutorial, term by term: loss = reconstruction + c * KL.
 * Introduced in `notebooks/02-model.ipynb`. Every function is pure and returns batch means.
 */
import * as tf from "@tensorflow/tfjs";

/** Keras's `K.epsilon()`: predictions are clipped to [eps, 1 - eps] before the logarithms. */
export const BCE_EPSILON = 1e-7;

/**
 * Reconstruction loss: `original_dim * binary_crossentropy(x, xDecoded)`, averaged over the batch.
 * Keras's binary cross-entropy is a mean over the 784 pixels, so multiplying by 784 turns it into the
 * sum over pixels, i.e. the negative Bernoulli log-likelihood -log p(x|z) in nats:
 *   -sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)].
 */
export function reconstructionLoss(x: tf.Tensor2D, xDecoded: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const originalDim = x.shape[1];
    const p = tf.clipByValue(xDecoded, BCE_EPSILON, 1 - BCE_EPSILON);
    const logLikelihood = tf.add(tf.mul(x, tf.log(p)), tf.mul(tf.sub(1, x), tf.log1p(tf.neg(p))));
    const binaryCrossentropy = tf.neg(tf.mean(logLikelihood, -1));
    return tf.mean(tf.mul(binaryCrossentropy, originalDim)) as tf.Scalar;
  });
}

/**
 * KL divergence of the encoder's Gaussian q(z|x) = N(zMean, exp(zLogVar)) from the prior N(0, I),
 * averaged over the batch. Closed form for diagonal Gaussians (Kingma & Welling 2014, appendix B):
 *   KL = -0.5 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
 */
export function klLoss(zMean: tf.Tensor2D, zLogVar: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const terms = tf.sub(tf.sub(tf.add(1, zLogVar), tf.square(zMean)), tf.exp(zLogVar));
    return tf.mean(tf.mul(-0.5, tf.sum(terms, -1))) as tf.Scalar;
  });
}

export interface LossTensors {
  readonly reconstruction: tf.Scalar;
  readonly kl: tf.Scalar;
  readonly total: tf.Scalar;
}

/** The three terms as numbers: what the history and the results record. */
export interface LossTerms {
  readonly reconstruction: number;
  readonly kl: number;
  readonly total: number;
}

/** The tutorial's `vae_loss = reconstruction_loss + kl_coefficient * kl_loss`, with the terms kept apart. */
export function vaeLoss(
  x: tf.Tensor2D,
  xDecoded: tf.Tensor2D,
  zMean: tf.Tensor2D,
  zLogVar: tf.Tensor2D,
  klCoefficient: number,
): LossTensors {
  const reconstruction = reconstructionLoss(x, xDecoded);
  const kl = klLoss(zMean, zLogVar);
  const total = tf.tidy(() => tf.add(reconstruction, tf.mul(klCoefficient, kl)) as tf.Scalar);
  return { reconstruction, kl, total };
}
