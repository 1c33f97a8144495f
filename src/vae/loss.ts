/**
 * The VAE loss of the tutorial, term by term: loss = reconstruction + c * KL.
 * Introduced in `notebooks/02-model.ipynb`. Every function is pure and returns batch means.
 */
import * as tf from "@tensorflow/tfjs";
import { fastPath } from "./fastPath";

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
 * The logit at which Keras's clipping bites: sigmoid(+-LOGIT_LIMIT) = 1 - eps and eps, so clipping the
 * probability to [eps, 1 - eps] is clipping the logit to [-LOGIT_LIMIT, LOGIT_LIMIT] (about 16.118).
 */
export const LOGIT_LIMIT = Math.log((1 - BCE_EPSILON) / BCE_EPSILON);

/**
 * `reconstructionLoss(x, sigmoid(logits))` from the decoder's logits, as training uses it: the same loss
 * (Keras 2 also clips, then goes back to logits), exact for large logits. With l clipped to
 * [-LOGIT_LIMIT, LOGIT_LIMIT], per pixel
 *   -[x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))] = max(l, 0) - x l - log sigmoid(|l|),
 * and its gradient in l, written by hand, is (sigmoid(l) - x) / rows where the clip lets it through,
 * else 0: what automatic differentiation of the probability form gives. The ops are the ones the wasm
 * backend runs fast (docs/performance.md).
 */
export function reconstructionLossFromLogits(x: tf.Tensor2D, logits: tf.Tensor2D): tf.Scalar {
  const fast = fastPath().reconstructionLossFromLogits?.(x, logits);
  if (fast) {
    return fast;
  } else {
    const rows = x.shape[0];
    const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [l, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([l]);
      const value = tf.tidy(() => {
        const clipped = tf.clipByValue(l, -LOGIT_LIMIT, LOGIT_LIMIT);
        const perPixel = tf.sub(tf.sub(tf.relu(clipped), tf.mul(x, clipped)), tf.log(tf.sigmoid(tf.abs(clipped))));
        return tf.div(tf.sum(perPixel), rows) as tf.Scalar;
      });
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          // 1 where |l| < LOGIT_LIMIT, else 0 (step(t) is 1 for t > 0).
          const inside = tf.step(tf.sub(LOGIT_LIMIT, tf.abs(saved[0])));
          return tf.mul(tf.mul(tf.sub(tf.sigmoid(saved[0]), x), inside), tf.div(dy, rows));
        });
      return { value, gradFunc };
    });
    return loss(logits) as tf.Scalar;
  }
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
  return combine(reconstructionLoss(x, xDecoded), klLoss(zMean, zLogVar), klCoefficient);
}

/** `vaeLoss` from the decoder's logits (`decodeLogits`): the same numbers, the form training uses. */
export function vaeLossFromLogits(
  x: tf.Tensor2D,
  logits: tf.Tensor2D,
  zMean: tf.Tensor2D,
  zLogVar: tf.Tensor2D,
  klCoefficient: number,
): LossTensors {
  return combine(reconstructionLossFromLogits(x, logits), klLoss(zMean, zLogVar), klCoefficient);
}

function combine(reconstruction: tf.Scalar, kl: tf.Scalar, klCoefficient: number): LossTensors {
  const total = tf.tidy(() => tf.add(reconstruction, tf.mul(klCoefficient, kl)) as tf.Scalar);
  return { reconstruction, kl, total };
}
