"""Training speed of mlbook's training paths against a plain reference loop, in the same run.

For the dense autoencoder, the DCGAN and the YOLO detector, both sides train the *same* architecture, on the same
data, with the same batch size and optimiser, for the same number of steps after a warm-up (so graph tracing is
not timed). Each side is timed three times, alternating between the two, and keeps its best. mlbook's side is
what the chapters run (``fit`` on the model or its custom ``train_step``, compiled with
``mlbook.training.STEPS_PER_EXECUTION`` steps per call); the reference is the loop keras.io teaches in "Writing a
training loop from scratch": a ``tf.function`` step over a ``tf.data`` pipeline. A ratio ≥ 1.0 means mlbook's
path is at least as fast. On a shared 2-core machine a ratio moves by about ±10 % between runs: run it twice.

Usage (from the repository root, by hand; not part of the tests):

    .venv/bin/python bench/training_speed.py [steps]
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mlbook import autoencoder, gan, yolo  # noqa: E402
from mlbook.seeding import seed_everything  # noqa: E402
from mlbook.training import STEPS_PER_EXECUTION  # noqa: E402

#: Steps per timed run. One ``fit`` call costs about a second of set-up, which the chapters pay once per training
#: run of hundreds of steps; fewer steps here would charge it to mlbook's side.
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
WARMUP = 5
REPEATS = 3


def compare(ours: Callable[[int], None], reference: Callable[[int], None], batch_size: int) -> tuple[float, float]:
    """Images per second of ``ours`` and ``reference``: each warmed up, then timed ``REPEATS`` times for ``STEPS``
    steps, alternating between the two so that a slow spell of the machine hits both, keeping each side's best
    (the machine's noise only slows)."""
    ours(WARMUP)
    reference(WARMUP)
    best = {"ours": math.inf, "reference": math.inf}
    for _ in range(REPEATS):
        for side, run in (("ours", ours), ("reference", reference)):
            start = time.perf_counter()
            run(STEPS)
            best[side] = min(best[side], time.perf_counter() - start)
    return STEPS * batch_size / best["ours"], STEPS * batch_size / best["reference"]


def batches(arrays: tuple[np.ndarray, ...], batch_size: int) -> tf.data.Dataset:
    data = tf.data.Dataset.from_tensor_slices(arrays if len(arrays) > 1 else arrays[0])
    return data.shuffle(len(arrays[0]), seed=0).repeat().batch(batch_size, drop_remainder=True).prefetch(
        tf.data.AUTOTUNE)


def reference_loop(model: keras.Model, loss_fn: Callable, data: tf.data.Dataset,
                   optimizer: keras.optimizers.Optimizer, pairs: bool) -> Callable[[int], None]:
    """keras.io's custom loop: one ``tf.function`` step of GradientTape + optimizer.apply_gradients."""

    @tf.function
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, model(inputs, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss

    iterator = iter(data)

    def run(num_steps: int) -> None:
        for _ in range(num_steps):
            batch = next(iterator)
            step(*(batch if pairs else (batch, batch)))

    return run


def fit_steps(model: keras.Model, data: tf.data.Dataset) -> Callable[[int], None]:
    iterator_data = data

    def run(num_steps: int) -> None:
        model.fit(iterator_data, steps_per_epoch=num_steps, epochs=1, verbose=0, shuffle=False)

    return run


def bench_autoencoder(images: np.ndarray, batch_size: int = 32) -> tuple[float, float]:
    ours = autoencoder.compile_autoencoder(autoencoder.dense_autoencoder_functional(), 1e-3)
    theirs = autoencoder.dense_autoencoder_functional()
    run = reference_loop(theirs, lambda y, p: keras.ops.mean(autoencoder.reconstruction_loss(y, p)),
                         batches((images,), batch_size), keras.optimizers.Adam(1e-3), pairs=False)
    return compare(fit_steps(ours, batches((images, images), batch_size)), run, batch_size)


def bench_dcgan(images: np.ndarray) -> tuple[float, float]:
    cfg = gan.SETTINGS["quick"]
    shape = images.shape[1:]
    ours = gan.make_dcgan(shape, cfg)

    generator = gan.build_generator(cfg.latent_dim, shape, cfg.base_filters)
    discriminator = gan.build_discriminator(shape, cfg.base_filters)
    d_opt, g_opt = (keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1) for _ in range(2))

    @tf.function
    def step(real):  # the TensorFlow DCGAN tutorial's step, with the chapter's two updates in order
        noise = tf.random.normal((tf.shape(real)[0], cfg.latent_dim))
        with tf.GradientTape() as tape:
            fake = generator(noise, training=True)
            d_loss = gan.discriminator_loss(discriminator(real, training=True), discriminator(fake, training=True))
        d_opt.apply_gradients(zip(tape.gradient(d_loss, discriminator.trainable_weights),
                                  discriminator.trainable_weights))
        noise = tf.random.normal((tf.shape(real)[0], cfg.latent_dim))
        with tf.GradientTape() as tape:
            g_loss = gan.generator_loss(discriminator(generator(noise, training=True), training=True))
        g_opt.apply_gradients(zip(tape.gradient(g_loss, generator.trainable_weights), generator.trainable_weights))

    iterator = iter(batches((gan.to_tanh_range(images),), cfg.batch_size))

    def run(num_steps: int) -> None:
        for _ in range(num_steps):
            step(next(iterator))

    return compare(fit_steps(ours, gan.image_batches(images, cfg.batch_size, 0).repeat()), run, cfg.batch_size)


def bench_yolo(batch_size: int = 32) -> tuple[float, float]:
    spec = yolo.GridSpec()
    data = yolo.generate_word_images(1_000, spec, seed=0)
    targets = yolo.encode_dataset(data.labels, spec).astype("float32")
    ours = yolo.YoloDetector(spec)
    ours.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=STEPS_PER_EXECUTION)  # as train_detector
    network = yolo.build_yolo_network(spec)
    run = reference_loop(network, lambda y, p: yolo.yolo_loss(y, p, spec), batches((data.images, targets), batch_size),
                         keras.optimizers.Adam(1e-3), pairs=True)
    return compare(fit_steps(ours, batches((data.images, targets), batch_size)), run, batch_size)


def main() -> None:
    seed_everything(0)
    digits = gan.load_gan_images(gan.SETTINGS["quick"], "quick").x_train
    print(f"{'model':12s} {'mlbook img/s':>13s} {'reference img/s':>16s} {'ratio':>7s}   ({STEPS} steps, "
          f"{os.cpu_count()} CPUs)")
    for name, (ours, reference) in (("autoencoder", bench_autoencoder(digits)), ("dcgan", bench_dcgan(digits)),
                                    ("yolo", bench_yolo())):
        print(f"{name:12s} {ours:13.0f} {reference:16.0f} {ours / reference:7.2f}")


if __name__ == "__main__":
    main()
