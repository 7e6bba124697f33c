"""A variational autoencoder (VAE) in Keras 3: a ``Sampling`` layer, dense encoder and decoder, and a
``keras.Model`` subclass with its own training step, plus the tools the chapter :ref:`ch-vae` uses to judge it
(a latent grid, and a small digit classifier that scores how digit-like decoded random vectors are).

References:
    Kingma, D. P. & Welling, M. (2014). Auto-encoding variational Bayes. *ICLR*. arXiv:1312.6114.
    Rezende, D. J., Mohamed, S. & Wierstra, D. (2014). Stochastic backpropagation and approximate inference in
    deep generative models. *ICML*. arXiv:1401.4082.
    Doersch, C. (2016). Tutorial on variational autoencoders. arXiv:1606.05908.
    Salimans, T. et al. (2016). Improved techniques for training GANs. *NeurIPS* (a classifier's confidence on
    generated images as a measure of their quality).
"""

from __future__ import annotations

import dataclasses
from statistics import NormalDist

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from keras import ops
from matplotlib.axes import Axes

from mlbook.autoencoder import random_codes_like, reconstruction_loss
from mlbook.cache import TrainedModel, evaluation_only, load_or_train, weights_config
from mlbook.data import MNIST_IMAGE_SHAPE, MNIST_NUM_PIXELS, ImageDataset, check_mnist_images
from mlbook.distribute import replicas_in_sync, scale_for_replicas, this_replicas_rows
from mlbook.plot import tile_images
from mlbook.seeding import seeded
from mlbook.training import EpochLine, predict_in_batches


@dataclasses.dataclass(frozen=True)
class VaeSettings:
    """Sizes for the chapter, per profile.

    Attributes:
        latent_dim: size of the latent code (2, so that the latent space can be drawn).
        intermediate_dim: units of the hidden layer of the encoder and of the decoder.
        num_epochs, batch_size, learning_rate: the VAE's training (Adam).
        grid_size: the latent grid has ``grid_size × grid_size`` points.
        grid_quantile: the grid spans the prior's quantiles from this to ``1 - grid_quantile`` on each axis.
        explorer_size: the latent explorer decodes ``explorer_size × explorer_size`` points of the same square.
        num_random_samples: random latent vectors decoded for the VAE-versus-autoencoder comparison.
        classifier_epochs: training of the digit classifier used to score samples.
    """

    latent_dim: int
    intermediate_dim: int
    num_epochs: int
    batch_size: int
    learning_rate: float
    grid_size: int = evaluation_only(15)
    grid_quantile: float = evaluation_only(0.05)
    explorer_size: int = evaluation_only(41)
    num_random_samples: int = evaluation_only(1000)
    classifier_epochs: int = evaluation_only(10)  # keys the classifier's weights, not the VAE's


SETTINGS: dict[str, VaeSettings] = {
    "quick": VaeSettings(latent_dim=2, intermediate_dim=512, num_epochs=50, batch_size=64, learning_rate=3e-3),
    "full": VaeSettings(latent_dim=2, intermediate_dim=512, num_epochs=50, batch_size=128, learning_rate=1e-3),
}

#: A decoded sample counts as a confidently recognised digit when the classifier gives it at least this probability.
CONFIDENT = 0.9


# --- the two loss terms, as pure functions ------------------------------------------------------------------------


def kl_divergence(z_mean, z_log_var):
    """KL divergence of ``N(z_mean, diag(exp(z_log_var)))`` from ``N(0, I)``, per example, in closed form.

    ``D_KL = -1/2 Σ_i (1 + log σ_i² - μ_i² - σ_i²)``; zero when every μ_i = 0 and σ_i = 1, positive otherwise.

    Implements: eq-vae-kl-closed-form

    Args:
        z_mean, z_log_var: ``(n, latent_dim)`` tensors (the encoder's μ and log σ²).

    Returns:
        A tensor of shape ``(n,)`` (nats).
    """
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


class Sampling(keras.layers.Layer):
    """The reparameterisation trick: ``z = μ + σ ⊙ ε`` with ``σ = exp(½ log σ²)`` and ``ε ~ N(0, I)``.

    The randomness sits in ``ε``, so ``z`` is a differentiable function of μ and log σ².

    Implements: eq-vae-reparameterisation
    """

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape) -> None:
        mean_shape, log_var_shape = input_shape
        if tuple(mean_shape) != tuple(log_var_shape):
            raise ValueError(f"expected z_mean and z_log_var of the same shape, got {mean_shape} and {log_var_shape}")
        super().build(input_shape)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        # noise for the whole batch, of which each replica takes its own rows (all of it on one device)
        rows, dims = ops.shape(z_mean)[0], ops.shape(z_mean)[1:]
        epsilon = this_replicas_rows(keras.random.normal((rows * replicas_in_sync(), *dims),
                                                         seed=self.seed_generator))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


# --- encoder, decoder and the model -------------------------------------------------------------------------------


def build_encoder(latent_dim: int, intermediate_dim: int, seed: int | None = None) -> keras.Model:
    """Images → hidden layer → (μ, log σ², z), the last drawn by :class:`Sampling`."""
    images = keras.Input(MNIST_IMAGE_SHAPE)
    x = keras.layers.Flatten()(images)
    x = keras.layers.Dense(intermediate_dim, activation="relu")(x)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)  # log σ²: any real number is valid
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model(images, [z_mean, z_log_var, z], name="encoder")


def build_decoder(latent_dim: int, intermediate_dim: int) -> keras.Model:
    """Latent vectors → hidden layer → 784 pixel probabilities (sigmoid: each pixel on its own) → 28×28×1."""
    z = keras.Input((latent_dim,))
    x = keras.layers.Dense(intermediate_dim, activation="relu")(z)
    x = keras.layers.Dense(MNIST_NUM_PIXELS, activation="sigmoid")(x)
    return keras.Model(z, keras.layers.Reshape(MNIST_IMAGE_SHAPE)(x), name="decoder")


def _images_of(data):
    """``fit`` and ``evaluate`` pass ``x``, ``(x,)`` or ``(x, y)``; the VAE only needs ``x``."""
    return data[0] if isinstance(data, (tuple, list)) else data


class VAE(keras.Model):
    """A variational autoencoder: an encoder that outputs (μ, log σ², z) and a decoder from z to pixels.

    Trained on the negative ELBO, the sum of the two terms returned by :meth:`loss_terms`, averaged over a batch.
    ``fit`` and ``evaluate`` report ``loss``, ``reconstruction_loss`` and ``kl_loss`` (nats per image).
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, images, training: bool = False):
        """Reconstructions of ``images`` from one sampled code each."""
        _, _, z = self.encoder(images, training=training)
        return self.decoder(z, training=training)

    def loss_terms(self, images, training: bool = False):
        """Per-image reconstruction loss and KL divergence, each of shape ``(n,)``: the two terms of the loss.

        The reconstruction term's expectation over the code is estimated from one code drawn per image.

        Implements: eq-vae-loss
        """
        z_mean, z_log_var, z = self.encoder(images, training=training)
        reconstructions = self.decoder(z, training=training)
        return reconstruction_loss(images, reconstructions), kl_divergence(z_mean, z_log_var)

    def _record(self, reconstruction, kl) -> dict:
        self.total_loss_tracker.update_state(reconstruction + kl)
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        return {tracker.name: tracker.result() for tracker in self.metrics}

    def train_step(self, data):
        images = _images_of(data)
        with tf.GradientTape() as tape:
            reconstruction, kl = self.loss_terms(images, training=True)
            scaled_loss = scale_for_replicas(ops.mean(reconstruction + kl))
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return self._record(reconstruction, kl)

    def test_step(self, data):
        reconstruction, kl = self.loss_terms(_images_of(data), training=False)
        return self._record(reconstruction, kl)


def build_vae(cfg: VaeSettings, seed: int | None = None) -> VAE:
    """A built (weights created) VAE for ``cfg``, ready for :func:`mlbook.cache.load_or_train`."""
    encoder = build_encoder(cfg.latent_dim, cfg.intermediate_dim, seed)
    vae = VAE(encoder, build_decoder(cfg.latent_dim, cfg.intermediate_dim))
    vae(np.zeros((1, *MNIST_IMAGE_SHAPE), dtype=np.float32))
    return vae


def image_dataset(images: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0):
    """A ``tf.data`` pipeline of image batches (shuffled every epoch if ``shuffle``)."""
    dataset = tf.data.Dataset.from_tensor_slices(check_mnist_images(images))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_vae(vae: VAE, train_images: np.ndarray, val_images: np.ndarray, cfg: VaeSettings, seed: int = 0,
              print_every: int = 10) -> keras.callbacks.History:
    """Fit ``vae`` with Adam; the history holds the three losses on the training and the held-out images."""
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate))
    return vae.fit(
        image_dataset(train_images, cfg.batch_size, shuffle=True, seed=seed), epochs=cfg.num_epochs,
        validation_data=image_dataset(val_images, cfg.batch_size), shuffle=False,  # the dataset shuffles
        verbose=0, callbacks=[EpochLine(every=print_every)],
    )


def train_or_load_vae(data: ImageDataset, cfg: VaeSettings, seed: int) -> TrainedModel:
    """The VAE trained on ``data`` with ``cfg``: from the weights cache if it is there, else trained now and cached
    with its history (the three losses, training and held-out, per epoch)."""
    with seeded(seed):
        return load_or_train(build_vae(cfg, seed), "vae", weights_config(cfg, data=data.source, seed=seed),
                             lambda model: train_vae(model, data.x_train, data.x_test, cfg, seed))


def evaluate_vae(vae: VAE, images: np.ndarray, seed: int = 0, batch_size: int = 500) -> dict[str, float]:
    """Mean reconstruction term, KL term and their sum (the negative ELBO) over ``images``, in nats per image.

    Each image gets one code drawn as in training, ``z = μ + σ ⊙ ε``, but with ``ε`` from a NumPy generator seeded
    with ``seed``, so that the (unbiased) estimate is the same on every run. Works on a model loaded from the cache,
    which has never been compiled (Keras's ``evaluate`` needs ``compile``).
    """
    images = check_mnist_images(images)
    rng = np.random.default_rng(seed)
    reconstruction, kl = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        z_mean, z_log_var, _ = vae.encoder(batch, training=False)
        epsilon = rng.standard_normal(tuple(z_mean.shape)).astype(np.float32)
        reconstructions = vae.decoder(z_mean + ops.exp(0.5 * z_log_var) * epsilon, training=False)
        reconstruction.append(ops.convert_to_numpy(reconstruction_loss(batch, reconstructions)))
        kl.append(ops.convert_to_numpy(kl_divergence(z_mean, z_log_var)))
    reconstruction, kl = np.concatenate(reconstruction), np.concatenate(kl)
    return {"loss": float(np.mean(reconstruction + kl)), "reconstruction_loss": float(np.mean(reconstruction)),
            "kl_loss": float(np.mean(kl))}


# --- looking at the latent space ----------------------------------------------------------------------------------


def latent_grid(grid_size: int, quantile: float = 0.05) -> np.ndarray:
    """A ``grid_size × grid_size`` grid of 2-D latent points at evenly spaced quantiles of N(0, 1) on each axis.

    Rows run from high to low ``z_2`` (top to bottom, as on a plot), columns from low to high ``z_1``. The grid
    is symmetric about the origin, and each axis covers the central ``1 - 2 * quantile`` of the prior.

    Returns:
        ``(grid_size**2, 2)`` float32 points, row by row.
    """
    if grid_size < 2 or not 0.0 < quantile < 0.5:
        raise ValueError(f"expected grid_size >= 2 and 0 < quantile < 0.5, got {grid_size} and {quantile}")
    values = np.array([NormalDist().inv_cdf(q) for q in np.linspace(quantile, 1 - quantile, grid_size)])
    z1, z2 = np.meshgrid(values, values[::-1])
    return np.column_stack([z1.ravel(), z2.ravel()]).astype(np.float32)


def latent_extent(quantile: float = 0.05) -> tuple[float, float]:
    """The range of each axis of :func:`latent_grid`: from the ``quantile`` to the ``1 - quantile`` quantile of
    N(0, 1), ``(-e, e)``."""
    if not 0.0 < quantile < 0.5:
        raise ValueError(f"expected 0 < quantile < 0.5, got {quantile}")
    high = NormalDist().inv_cdf(1 - quantile)
    return -high, high


def decode_latent_grid(decoder: keras.Model, grid_size: int, extent: tuple[float, float]) -> np.ndarray:
    """The decoder's images on a ``grid_size × grid_size`` grid of 2-D latent points evenly spaced over ``extent``
    on both axes (the pad of :func:`mlbook.explorables.latent_explorer_html`).

    Unlike :func:`latent_grid`, whose points lie at evenly spaced quantiles, these are evenly spaced in ``z``, so a
    step of the pad is the same distance everywhere. As there, rows run from high to low ``z_2`` and columns from
    low to high ``z_1``.

    Returns:
        ``(grid_size, grid_size, h, w, c)`` images: ``[i, j]`` decodes ``z_1 = linspace(*extent)[j]``,
        ``z_2 = linspace(*extent)[grid_size - 1 - i]``.

    Raises:
        ValueError: if the latent space is not 2-D, ``grid_size < 2`` or the extent is empty.
    """
    if decoder.input_shape[-1] != 2:
        raise ValueError(f"a latent grid needs a 2-D latent space, got latent_dim={decoder.input_shape[-1]}")
    low, high = extent
    if grid_size < 2 or not low < high:
        raise ValueError(f"expected grid_size >= 2 and extent (low, high) with low < high, got {grid_size} and "
                         f"{extent}")
    values = np.linspace(low, high, grid_size)
    z1, z2 = np.meshgrid(values, values[::-1])
    points = np.column_stack([z1.ravel(), z2.ravel()]).astype(np.float32)
    images = predict_in_batches(decoder, points)
    return images.reshape(grid_size, grid_size, *images.shape[1:])


def plot_latent_grid(decoder: keras.Model, grid_size: int, quantile: float = 0.05, ax: Axes | None = None) -> Axes:
    """Decode :func:`latent_grid` and show the images as one picture, with the latent coordinates on the axes."""
    if decoder.input_shape[-1] != 2:
        raise ValueError(f"a latent grid needs a 2-D latent space, got latent_dim={decoder.input_shape[-1]}")
    points = latent_grid(grid_size, quantile)
    picture = tile_images(predict_in_batches(decoder, points), grid_size, padding=0, fill=0.0)[..., 0]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 7))
    values = points[:grid_size, 0]
    cell = picture.shape[0] / grid_size
    ax.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0)
    ticks = np.arange(0, grid_size, 2)
    ax.set_xticks(cell * (ticks + 0.5), [f"{values[i]:.1f}" for i in ticks])
    ax.set_yticks(cell * (ticks + 0.5), [f"{values[::-1][i]:.1f}" for i in ticks])
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    ax.grid(False)
    return ax


def plot_latent_means(z_mean: np.ndarray, labels: np.ndarray, ax: Axes | None = None) -> Axes:
    """Scatter 2-D latent means coloured by digit, with each digit's label at the centre of its points."""
    z_mean, labels = np.asarray(z_mean), np.asarray(labels)
    if z_mean.ndim != 2 or z_mean.shape[1] != 2 or len(labels) != len(z_mean):
        raise ValueError(f"expected (n, 2) means and n labels, got {z_mean.shape} and {labels.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    colours = plt.get_cmap("tab10").colors
    for digit in np.unique(labels):
        points = z_mean[labels == digit]
        ax.scatter(points[:, 0], points[:, 1], s=8, color=colours[int(digit) % len(colours)], alpha=0.7)
        centre = np.median(points, axis=0)
        ax.text(*centre, str(digit), fontsize=13, weight="bold", ha="center", va="center",
                bbox={"boxstyle": "circle,pad=0.15", "facecolor": "white", "alpha": 0.8, "linewidth": 0})
    ax.set(xlabel=r"$\mu_1$", ylabel=r"$\mu_2$", aspect="equal")
    return ax


# --- scoring decoded samples with a digit classifier ---------------------------------------------------------------


def build_digit_classifier(num_classes: int = 10) -> keras.Model:
    """A small convolutional digit classifier (softmax over ``num_classes``), built and ready to compile."""
    return keras.Sequential(
        [
            keras.Input(MNIST_IMAGE_SHAPE),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="digit_classifier",
    )


def train_digit_classifier(model: keras.Model, images: np.ndarray, labels: np.ndarray, num_epochs: int,
                           batch_size: int = 64) -> keras.callbacks.History:
    """Fit the classifier with Adam on sparse categorical cross-entropy (reporting accuracy)."""
    images = check_mnist_images(images)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model.fit(images, labels, epochs=num_epochs, batch_size=batch_size, shuffle=True, verbose=0)


def train_or_load_classifier(data: ImageDataset, num_epochs: int, seed: int) -> TrainedModel:
    """The digit classifier trained on ``data``'s training images, from the weights cache when possible."""
    config = {"data": data.source, "num_epochs": num_epochs, "seed": seed}
    with seeded(seed):
        return load_or_train(build_digit_classifier(data.num_classes), "digit-classifier", config,
                             lambda m: train_digit_classifier(m, data.x_train, data.y_train, num_epochs))


def digit_confidence(classifier: keras.Model, images: np.ndarray) -> np.ndarray:
    """The classifier's probability for its top class, per image: high for a clear digit, low for a blur."""
    return predict_in_batches(classifier, check_mnist_images(images)).max(axis=1)


def decode_random_vectors(vae_decoder: keras.Model, autoencoder: keras.Model, train_images: np.ndarray,
                          num_samples: int, seed: int) -> dict[str, np.ndarray]:
    """Decode random latent vectors with the VAE (drawn from its prior N(0, I)) and with a plain autoencoder
    (drawn by :func:`mlbook.autoencoder.random_codes_like` from its training codes' per-coordinate spread).

    Args:
        autoencoder: a model with sub-models named ``"encoder"`` and ``"decoder"``.

    Returns:
        ``{"VAE": images, "autoencoder": images}``, each ``(num_samples, 28, 28, 1)``.
    """
    rng = np.random.default_rng(seed)
    prior_draws = rng.standard_normal((num_samples, vae_decoder.input_shape[-1])).astype(np.float32)
    codes = predict_in_batches(autoencoder.get_layer("encoder"), check_mnist_images(train_images))
    random_codes = random_codes_like(codes, num_samples, seed=int(rng.integers(2**31)))
    return {
        "VAE": predict_in_batches(vae_decoder, prior_draws),
        "autoencoder": predict_in_batches(autoencoder.get_layer("decoder"), random_codes),
    }
