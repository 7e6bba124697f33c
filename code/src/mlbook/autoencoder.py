"""Autoencoders for 28×28 digits: a dense one (written twice, with the Sequential and the functional API) and a
convolutional one, trained to reproduce their input through a small latent code.

The chapter :ref:`ch-autoencoders` shows this code. The variational autoencoder (:mod:`mlbook.vae`) builds on it
and reuses the reconstruction loss and the random-code sampler defined here.

References:
    Hinton, G. E. & Salakhutdinov, R. R. (2006). Reducing the dimensionality of data with neural networks.
    *Science* 313(5786), 504–507.
    Goodfellow, I., Bengio, Y. & Courville, A. (2016). *Deep Learning*, chapter 14 "Autoencoders". MIT Press.
    Chollet, F. (2016). Building autoencoders in Keras. *The Keras Blog*.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mlbook.cache import TrainedModel, evaluation_only, load_or_train, weights_config
from mlbook.data import MNIST_IMAGE_SHAPE, MNIST_NUM_PIXELS, ImageDataset, check_mnist_images
from mlbook.seeding import seeded
from mlbook.training import STEPS_PER_EXECUTION, EpochLine, predict_in_batches

#: The dense autoencoder of the chapter: 784 → 128 → 64 → 64 (the code) | 64 → 64 → 128 → 784.
DENSE_ENCODER_UNITS: tuple[int, ...] = (128, 64, 64)
DENSE_DECODER_UNITS: tuple[int, ...] = (64, 128)
#: The convolutional autoencoder's channels per block; three 2×2 poolings take 28×28 to a 4×4×8 code.
CONV_ENCODER_FILTERS: tuple[int, ...] = (16, 8, 8)
CONV_CODE_SHAPE: tuple[int, int, int] = (4, 4, 8)


@dataclasses.dataclass(frozen=True)
class AutoencoderSettings:
    """Sizes for the chapter, per profile.

    Attributes:
        dense_num_epochs, conv_num_epochs: passes over the training images for each model.
        batch_size: images per gradient step.
        learning_rate: Adam's step size.
        num_shown: test images shown with their reconstructions.
        num_random_samples: random codes decoded to show why a plain autoencoder is no generator.
    """

    dense_num_epochs: int
    conv_num_epochs: int
    batch_size: int
    learning_rate: float
    num_shown: int = evaluation_only(10)
    num_random_samples: int = evaluation_only(10)


SETTINGS: dict[str, AutoencoderSettings] = {
    "quick": AutoencoderSettings(dense_num_epochs=15, conv_num_epochs=15, batch_size=32, learning_rate=3e-3),
    "full": AutoencoderSettings(dense_num_epochs=30, conv_num_epochs=30, batch_size=128, learning_rate=1e-3),
}


# --- the reconstruction loss -----------------------------------------------------------------------------------


def reconstruction_loss(images, reconstructions):
    """Binary cross-entropy between targets and outputs, summed over the pixels: one value (nats) per image.

    Implements: eq-ae-bce

    Args:
        images: targets in [0, 1], shape ``(n, 28, 28, 1)``.
        reconstructions: the decoder's pixel probabilities in (0, 1), same shape.

    Returns:
        A tensor of shape ``(n,)``.
    """
    per_pixel = keras.ops.binary_crossentropy(images, reconstructions)
    return keras.ops.sum(keras.ops.reshape(per_pixel, (keras.ops.shape(per_pixel)[0], -1)), axis=1)


def bernoulli_entropy(images: np.ndarray) -> np.ndarray:
    """The smallest reconstruction loss any decoder can reach on ``images``: their entropy, per image (nats).

    Binary cross-entropy is minimal when the output equals the target, where it equals
    ``-[x log x + (1 - x) log(1 - x)]`` summed over pixels: zero for black-and-white images, positive for grey ones.

    Implements: eq-ae-entropy-floor
    """
    x = check_mnist_images(images).astype(np.float64).reshape(len(images), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(x > 0, x * np.log(x), 0.0) + np.where(x < 1, (1 - x) * np.log1p(-x), 0.0)
    return -terms.sum(axis=1)


# --- the dense autoencoder, twice --------------------------------------------------------------------------------


def dense_autoencoder_sequential(latent_dim: int = DENSE_ENCODER_UNITS[-1]) -> keras.Sequential:
    """The dense autoencoder with the Sequential API: an encoder model and a decoder model stacked as layers."""
    *hidden, _ = DENSE_ENCODER_UNITS
    encoder = keras.Sequential(
        [keras.Input(MNIST_IMAGE_SHAPE), keras.layers.Flatten()]
        + [keras.layers.Dense(units, activation="relu") for units in (*hidden, latent_dim)],
        name="encoder",
    )
    decoder = keras.Sequential(
        [keras.Input((latent_dim,))]
        + [keras.layers.Dense(units, activation="relu") for units in DENSE_DECODER_UNITS]
        + [keras.layers.Dense(MNIST_NUM_PIXELS, activation="sigmoid"),
           keras.layers.Reshape(MNIST_IMAGE_SHAPE)],
        name="decoder",
    )
    return keras.Sequential([encoder, decoder], name="dense_autoencoder")  # models used as layers


def dense_autoencoder_functional(latent_dim: int = DENSE_ENCODER_UNITS[-1]) -> keras.Model:
    """The same dense autoencoder with the functional API: each model maps symbolic inputs to outputs."""
    *hidden, _ = DENSE_ENCODER_UNITS
    images = keras.Input(MNIST_IMAGE_SHAPE)
    x = keras.layers.Flatten()(images)
    for units in (*hidden, latent_dim):
        x = keras.layers.Dense(units, activation="relu")(x)
    encoder = keras.Model(images, x, name="encoder")

    codes = keras.Input((latent_dim,))
    x = codes
    for units in DENSE_DECODER_UNITS:
        x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dense(MNIST_NUM_PIXELS, activation="sigmoid")(x)
    decoder = keras.Model(codes, keras.layers.Reshape(MNIST_IMAGE_SHAPE)(x), name="decoder")

    inputs = keras.Input(MNIST_IMAGE_SHAPE)
    return keras.Model(inputs, decoder(encoder(inputs)), name="dense_autoencoder")  # models called like layers


# --- the convolutional autoencoder --------------------------------------------------------------------------------


def conv_encoder() -> keras.Model:
    """Three blocks of 3×3 convolution and 2×2 max pooling: 28 → 14 → 7 → 4 pixels, 16/8/8 channels."""
    images = keras.Input(MNIST_IMAGE_SHAPE)
    x = images
    for filters in CONV_ENCODER_FILTERS:
        x = keras.layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = keras.layers.MaxPooling2D(2, padding="same")(x)  # "same": 7 → 4, not 3
    return keras.Model(images, x, name="encoder")


def conv_decoder() -> keras.Model:
    """The mirror image: 4 → 8 → 16 → 14 (a "valid" convolution) → 28 pixels, then one sigmoid channel."""
    codes = keras.Input(CONV_CODE_SHAPE)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(codes)
    x = keras.layers.UpSampling2D(2)(x)  # 4 → 8
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = keras.layers.UpSampling2D(2)(x)  # 8 → 16
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="valid")(x)  # 16 → 14: no padding, loses a border
    x = keras.layers.UpSampling2D(2)(x)  # 14 → 28
    outputs = keras.layers.Conv2D(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(codes, outputs, name="decoder")


def conv_autoencoder() -> keras.Model:
    """The convolutional encoder and decoder, composed with the functional API."""
    encoder, decoder = conv_encoder(), conv_decoder()
    inputs = keras.Input(MNIST_IMAGE_SHAPE)
    return keras.Model(inputs, decoder(encoder(inputs)), name="conv_autoencoder")


# --- training and evaluation -------------------------------------------------------------------------------------


def compile_autoencoder(model: keras.Model, learning_rate: float) -> keras.Model:
    """Adam on the per-image reconstruction loss. No "accuracy": a reconstruction is not a class."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=reconstruction_loss,
                  steps_per_execution=STEPS_PER_EXECUTION)
    return model


def train_autoencoder(
    model: keras.Model,
    train_images: np.ndarray,
    val_images: np.ndarray,
    num_epochs: int,
    batch_size: int,
    learning_rate: float,
    print_every: int = 5,
) -> keras.callbacks.History:
    """Compile ``model`` and fit it to reproduce its input (the images are both input and target).

    Raises:
        ValueError: if the images are not ``(n, 28, 28, 1)`` in [0, 1], or a size is not positive.
    """
    train_images = check_mnist_images(train_images, "train_images")
    val_images = check_mnist_images(val_images, "val_images")
    if num_epochs < 1 or batch_size < 1:
        raise ValueError(f"expected positive num_epochs and batch_size, got {num_epochs} and {batch_size}")
    compile_autoencoder(model, learning_rate)
    return model.fit(
        train_images, train_images, validation_data=(val_images, val_images), epochs=num_epochs,
        batch_size=batch_size, shuffle=True, verbose=0, callbacks=[EpochLine(every=print_every)],
    )


def train_or_load(kind: str, data: ImageDataset, cfg: AutoencoderSettings, seed: int) -> TrainedModel:
    """The ``"dense"`` or ``"conv"`` autoencoder trained on ``data`` with ``cfg`` — from the weights cache if it is
    there, else trained now (same seed, same initial weights) and cached with its history.

    Raises:
        ValueError: if ``kind`` is not ``"dense"`` or ``"conv"``.
    """
    builders = {"dense": (dense_autoencoder_sequential, cfg.dense_num_epochs),
                "conv": (conv_autoencoder, cfg.conv_num_epochs)}
    if kind not in builders:
        raise ValueError(f"expected an autoencoder kind in {sorted(builders)}, got {kind!r}")
    build, num_epochs = builders[kind]
    with seeded(seed):
        return load_or_train(
            build(), f"{kind}-autoencoder", weights_config(cfg, data=data.source, seed=seed),
            lambda model: train_autoencoder(
                model, data.x_train, data.x_test, num_epochs, cfg.batch_size, cfg.learning_rate
            ),
        )


def reconstruction_error(model: keras.Model, images: np.ndarray) -> float:
    """The mean per-image reconstruction loss (nats) of ``model`` on ``images``."""
    images = check_mnist_images(images)
    return float(np.mean(keras.ops.convert_to_numpy(reconstruction_loss(images, predict_in_batches(model, images)))))


def random_codes_like(codes: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    """Random latent vectors drawn from a Gaussian with the same per-coordinate mean and spread as ``codes``.

    This is the most obvious way to "sample" a plain autoencoder: each coordinate stays in the range the
    training codes use. It ignores how the coordinates depend on each other.

    Args:
        codes: ``(n, ...)`` latent codes of training images (flattened internally, shape restored on return).
        num_samples: how many vectors to draw.
        seed: the NumPy generator's seed.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim < 2 or len(codes) < 2:
        raise ValueError(f"expected at least two codes of shape (n, ...), got {codes.shape}")
    flat = codes.reshape(len(codes), -1)
    rng = np.random.default_rng(seed)
    samples = rng.normal(flat.mean(axis=0), flat.std(axis=0), size=(num_samples, flat.shape[1]))
    return samples.reshape((num_samples, *codes.shape[1:])).astype(np.float32)


def nearest_distances(queries: np.ndarray, references: np.ndarray, chunk_size: int = 512) -> np.ndarray:
    """Euclidean distance from each query to its nearest reference (both ``(n, ...)``, flattened per row).

    Computed in chunks of queries with ``|q - r|² = |q|² + |r|² - 2 q·r``, so that memory stays at
    ``chunk_size × len(references)`` numbers.
    """
    queries = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
    references = np.asarray(references, dtype=np.float64).reshape(len(references), -1)
    if queries.shape[1] != references.shape[1] or len(references) == 0:
        raise ValueError(
            f"expected queries and references of the same width, got {queries.shape} and {references.shape}"
        )
    reference_norms = (references**2).sum(axis=1)
    nearest = np.empty(len(queries))
    for start in range(0, len(queries), chunk_size):
        chunk = queries[start : start + chunk_size]
        squared = (chunk**2).sum(axis=1)[:, None] + reference_norms[None, :] - 2.0 * chunk @ references.T
        nearest[start : start + chunk_size] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))  # round-off can dip below 0
    return nearest


def plot_image_rows(rows: Mapping[str, np.ndarray], cell_size: float = 0.9) -> Figure:
    """One row of images per entry, labelled on the left (e.g. inputs, then each model's reconstructions).

    Raises:
        ValueError: if ``rows`` is empty or the rows hold different numbers of images.
    """
    if not rows:
        raise ValueError("plot_image_rows needs at least one row")
    counts = {label: len(images) for label, images in rows.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"expected the same number of images in every row, got {counts}")
    ncols = next(iter(counts.values()))
    fig, axes = plt.subplots(len(rows), ncols, figsize=(cell_size * ncols + 1.8, cell_size * len(rows)),
                             squeeze=False)
    for (label, images), row in zip(rows.items(), axes):
        for image, ax in zip(np.asarray(images)[..., 0], row):
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
        row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(left=1.7 / fig.get_figwidth(), right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    return fig
