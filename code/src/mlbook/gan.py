"""A deep convolutional GAN (DCGAN) in Keras 3: generator, discriminator, losses, training and its data.

The conventions are fixed once, here: the discriminator outputs a *logit*, and ``D(x) = sigmoid(logit)`` is the
probability that ``x`` is real, so real images carry the label :data:`REAL_LABEL` (1) and generated images
:data:`FAKE_LABEL` (0). Images enter the networks in [-1, 1], the range of the generator's ``tanh`` output.

References:
    Goodfellow, I. et al. (2014). Generative adversarial nets. NeurIPS.
    Radford, A., Metz, L. & Chintala, S. (2016). Unsupervised representation learning with deep convolutional
    generative adversarial networks (DCGAN). ICLR.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from mlbook.cache import evaluation_only, load_or_compute_arrays, load_or_train, weights_config
from mlbook.data import ImageDataset, announce_fallback, load_mnist_like
from mlbook.distribute import replicas_in_sync, scale_for_replicas, this_replicas_rows
from mlbook.plot import tile_images
from mlbook.profiles import resolve_profile
from mlbook.training import STEPS_PER_EXECUTION, predict_in_batches

#: Label of real images: the discriminator is trained towards D(x) = 1 on them.
REAL_LABEL = 1.0
#: Label of generated images: the discriminator is trained towards D(G(z)) = 0 on them.
FAKE_LABEL = 0.0
#: The DCGAN paper's initialisation: weights drawn from N(0, 0.02²).
WEIGHT_STDDEV = 0.02
#: Slope of LeakyReLU for negative inputs (DCGAN paper and the original series).
LEAKY_SLOPE = 0.2
#: Batch normalisation as in the original (TF1 ``decay=0.9``, ``epsilon=1e-5``), with its batch statistics
#: taken over the whole batch when a strategy splits it across devices.
BATCH_NORM = {"momentum": 0.9, "epsilon": 1e-5, "synchronized": True}
#: The generator stops up-sampling from this side (4×4 for 64×64 images, 7×7 for 28×28 ones).
SMALLEST_SIDE = 4
#: Folder of aligned CelebA images (``.../img_align_celeba``) for the ``full`` profile.
CELEBA_ENV_VAR = "MLBOOK_CELEBA_DIR"


@dataclasses.dataclass(frozen=True)
class GanSettings:
    """Sizes of the GAN chapter for one profile.

    Attributes:
        num_epochs: passes over the training images.
        batch_size: images per step (the last, incomplete batch of an epoch is dropped: batch norm needs a batch).
        latent_dim: size of the noise vector ``z``.
        base_filters: filters of the discriminator's first layer and the generator's last hidden layer; each
            step towards the small end doubles them.
        learning_rate, beta_1: Adam's settings for both networks (DCGAN paper: 2e-4 and 0.5).
        num_fixed_samples: latent vectors kept fixed through training to show progress (8×8 in the original).
        max_images: at most this many training images are loaded (real faces are large).
        face_side: side of the CelebA images in ``full``.
        quiz_size: images in the real-or-fake quiz.
        interpolation_frames: frames of the interpolation explorer's walk between two latent vectors.
        test_epochs, num_permutations: the classifier two-sample test's training and its permutation count.
    """

    num_epochs: int
    batch_size: int
    latent_dim: int
    base_filters: int
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    num_fixed_samples: int = 64
    max_images: int = 60_000
    face_side: int = 64
    quiz_size: int = evaluation_only(16)
    interpolation_frames: int = evaluation_only(32)
    test_epochs: int = evaluation_only(20)
    num_permutations: int = evaluation_only(1_000)


SETTINGS = {
    "quick": GanSettings(num_epochs=28, batch_size=32, latent_dim=64, base_filters=32),
    "full": GanSettings(num_epochs=25, batch_size=64, latent_dim=100, base_filters=64, max_images=50_000),
}


# --- data -------------------------------------------------------------------------------------------------------


def to_tanh_range(images: np.ndarray) -> np.ndarray:
    """Map images from [0, 1] to [-1, 1], the generator's output range."""
    return np.asarray(images, dtype=np.float32) * 2.0 - 1.0


def from_tanh_range(images: Any) -> np.ndarray:
    """Map images from [-1, 1] back to [0, 1] (clipped), for display and saving."""
    return np.clip((np.asarray(images, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)


def center_crop_and_resize(image: np.ndarray, crop_side: int, side: int) -> np.ndarray:
    """Crop the central ``crop_side``×``crop_side`` square of an RGB uint8 image and resize it to ``side``."""
    from PIL import Image

    height, width = image.shape[:2]
    if crop_side > min(height, width):
        raise ValueError(f"expected an image of at least {crop_side}×{crop_side}, got {height}×{width}")
    top, left = (height - crop_side) // 2, (width - crop_side) // 2
    crop = Image.fromarray(image[top : top + crop_side, left : left + crop_side])
    return np.asarray(crop.resize((side, side), Image.Resampling.BILINEAR))


def load_celeba_folder(folder: str | os.PathLike, side: int = 64, max_images: int = 60_000,
                       test_fraction: float = 0.05, crop_side: int = 108) -> ImageDataset:
    """Aligned CelebA faces from the standard ``img_align_celeba/`` folder of 178×218 JPEGs.

    Each face is centre-cropped to ``crop_side`` (as in DCGAN-tensorflow) and resized to ``side``×``side``.

    Raises:
        FileNotFoundError: if the folder does not exist or holds no ``.jpg`` files.
    """
    from PIL import Image

    files = sorted(Path(folder).glob("*.jpg"))[:max_images]
    if not files:
        raise FileNotFoundError(f"no .jpg images in {folder} (expected CelebA's img_align_celeba/ folder)")
    images = np.stack([center_crop_and_resize(np.asarray(Image.open(f).convert("RGB")), crop_side, side)
                       for f in files]).astype(np.float32) / 255.0
    num_test = max(1, int(len(images) * test_fraction))
    labels = np.zeros(len(images), dtype=np.int64)  # unlabelled: a GAN needs none
    return ImageDataset(images[num_test:], labels[num_test:], images[:num_test], labels[:num_test],
                        source="celeba", description=f"CelebA aligned faces ({len(images):,} images, {side}×{side})")


def load_celeba_tfds(side: int = 64, max_images: int = 60_000, crop_side: int = 108) -> ImageDataset:
    """CelebA through ``tensorflow-datasets``, only if it is already prepared (``download=False``: never fetches).

    Raises:
        ImportError: if ``tensorflow-datasets`` is not installed.
        Exception: whatever ``tfds.load`` raises when the dataset is not prepared.
    """
    import tensorflow_datasets as tfds

    images = []
    for split in ("train", "test"):
        dataset = tfds.load("celeb_a", split=split, download=False)
        limit = max_images if split == "train" else max(1, max_images // 20)
        images.append(np.stack([center_crop_and_resize(example["image"], crop_side, side)
                                for example in tfds.as_numpy(dataset.take(limit))]).astype(np.float32) / 255.0)
    zeros = [np.zeros(len(part), dtype=np.int64) for part in images]
    return ImageDataset(images[0], zeros[0], images[1], zeros[1], source="celeba",
                        description=f"CelebA aligned faces via tensorflow-datasets ({sum(map(len, images)):,} "
                                    f"images, {side}×{side})")


def load_gan_images(cfg: GanSettings, profile: str | None = None) -> ImageDataset:
    """The GAN's images for the profile: offline digits in ``quick``; faces in ``full`` if available, else MNIST.

    ``full`` looks for CelebA in the folder named by ``MLBOOK_CELEBA_DIR``, then in an already-prepared
    ``tensorflow-datasets`` copy; it never starts a CelebA download (those retry for minutes). Failing both, it
    prints one line and uses :func:`mlbook.data.load_mnist_like`.
    """
    profile = resolve_profile(profile)
    if profile == "quick":
        return load_mnist_like(profile)
    reasons = []
    folder = os.environ.get(CELEBA_ENV_VAR)
    if folder:
        try:
            return load_celeba_folder(folder, cfg.face_side, cfg.max_images)
        except (FileNotFoundError, OSError, ValueError) as error:
            reasons.append(f"{CELEBA_ENV_VAR}: {error}")
    else:
        reasons.append(f"{CELEBA_ENV_VAR} is not set")
    try:
        return load_celeba_tfds(cfg.face_side, cfg.max_images)
    except ImportError:
        reasons.append("tensorflow-datasets is not installed")
    except Exception as error:  # tfds raises several types when the data is not prepared
        reasons.append(f"tensorflow-datasets: {type(error).__name__}")
    fallback = load_mnist_like(profile)
    announce_fallback("CelebA", "; ".join(reasons), fallback.description)
    return fallback


# --- the two networks -------------------------------------------------------------------------------------------


def num_upsampling_blocks(side: int) -> int:
    """How many stride-2 steps take ``side`` down to an odd side or to :data:`SMALLEST_SIDE` (28 → 2, 64 → 4).

    Raises:
        ValueError: if ``side`` cannot be halved even once.
    """
    blocks = 0
    while side % 2 == 0 and side // 2 >= SMALLEST_SIDE:
        side //= 2
        blocks += 1
    if blocks == 0:
        raise ValueError(f"expected an image side divisible by 2 and at least {2 * SMALLEST_SIDE}, got {side}")
    return blocks


def _check_image_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(image_shape) != 3 or image_shape[0] != image_shape[1] or image_shape[2] not in (1, 3):
        raise ValueError(f"expected a square image shape (side, side, 1 or 3), got {tuple(image_shape)}")
    return image_shape[0], image_shape[2]


def _normal_init(seed: int, layer: int) -> keras.initializers.Initializer:
    """DCGAN's N(0, 0.02²) initialiser, seeded per layer (an int-seeded Keras initialiser repeats its values)."""
    return keras.initializers.RandomNormal(stddev=WEIGHT_STDDEV, seed=seed * 1000 + layer)


def build_generator(latent_dim: int, image_shape: tuple[int, int, int], base_filters: int,
                    seed: int = 0) -> keras.Model:
    """DCGAN generator: ``z`` → dense → (s, s, 2ᵏ⁻¹·f) → k transposed convolutions (×2 each) → ``tanh`` image.

    Every hidden layer is batch-normalised and ReLU-activated; the output layer is neither (DCGAN paper).
    For 64×64×3 and ``base_filters=64`` this is DCGAN-tensorflow's 4×4×512 → 8×8×256 → 16×16×128 → 32×32×64 →
    64×64×3. The series kept 512 channels through its first transposed convolution (4×4×512 → 8×8×512 →
    16×16×256 → 32×32×128 → 64×64×3), and the DCGAN paper's figure starts twice as wide (4×4×1024).
    """
    side, channels = _check_image_shape(image_shape)
    num_blocks = num_upsampling_blocks(side)
    start = side // 2**num_blocks
    model = keras.Sequential(name="generator")
    model.add(keras.Input((latent_dim,)))
    model.add(layers.Dense(start * start * base_filters * 2 ** (num_blocks - 1), use_bias=False,
                           kernel_initializer=_normal_init(seed, 0)))
    model.add(layers.Reshape((start, start, base_filters * 2 ** (num_blocks - 1))))
    model.add(layers.BatchNormalization(**BATCH_NORM))
    model.add(layers.ReLU())
    for block in range(num_blocks - 1):
        model.add(layers.Conv2DTranspose(base_filters * 2 ** (num_blocks - 2 - block), 5, strides=2,
                                         padding="same", use_bias=False,
                                         kernel_initializer=_normal_init(seed, block + 1)))
        model.add(layers.BatchNormalization(**BATCH_NORM))
        model.add(layers.ReLU())
    model.add(layers.Conv2DTranspose(channels, 5, strides=2, padding="same", activation="tanh",
                                     kernel_initializer=_normal_init(seed, num_blocks)))
    return model


def build_discriminator(image_shape: tuple[int, int, int], base_filters: int, seed: int = 0) -> keras.Model:
    """DCGAN discriminator: k strided 5×5 convolutions with LeakyReLU (batch norm after the first) → one logit.

    The output is a logit, not a probability: ``D(x) = sigmoid(logit)`` is the probability that ``x`` is real.
    """
    side, _ = _check_image_shape(image_shape)
    num_blocks = num_upsampling_blocks(side)
    model = keras.Sequential(name="discriminator")
    model.add(keras.Input(tuple(image_shape)))
    for block in range(num_blocks):
        model.add(layers.Conv2D(base_filters * 2**block, 5, strides=2, padding="same",
                                kernel_initializer=_normal_init(seed, 100 + block)))
        if block > 0:
            model.add(layers.BatchNormalization(**BATCH_NORM))
        model.add(layers.LeakyReLU(negative_slope=LEAKY_SLOPE))
    model.add(layers.Flatten())
    model.add(layers.Dense(1, kernel_initializer=_normal_init(seed, 100 + num_blocks)))
    return model


# --- losses -----------------------------------------------------------------------------------------------------


def _bce_with_logits(label: float, logits: Any) -> Any:
    """Mean binary cross-entropy of ``logits`` against a constant ``label``, computed stably from logits."""
    labels = ops.full_like(logits, label)
    return ops.mean(ops.binary_crossentropy(labels, logits, from_logits=True))


def discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """−E[log D(x)] − E[log(1 − D(G(z)))]: the negative of V(D, G), which D maximises.

    Implements: eq-gan-d-loss, eq-gan-minimax
    """
    return _bce_with_logits(REAL_LABEL, real_logits) + _bce_with_logits(FAKE_LABEL, fake_logits)


def generator_loss(fake_logits: Any) -> Any:
    """Non-saturating generator loss −E[log D(G(z))]: G is trained as if its images were real.

    Implements: eq-gan-g-loss
    """
    return _bce_with_logits(REAL_LABEL, fake_logits)


def minimax_generator_loss(fake_logits: Any) -> Any:
    """The minimax game's generator loss E[log(1 − D(G(z)))], which saturates when D rejects G's images.

    Implements: eq-gan-minimax
    """
    return -_bce_with_logits(FAKE_LABEL, fake_logits)


# --- the model that trains them ---------------------------------------------------------------------------------


class DCGAN(keras.Model):
    """A generator and a discriminator trained against each other by ``fit`` (one D step, then one G step).

    Args:
        generator: maps ``(n, latent_dim)`` noise to images in [-1, 1].
        discriminator: maps images to ``(n, 1)`` logits.
        latent_dim: size of ``z``.
        seed: seed of the model's own noise generator.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int, seed: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_score_tracker = keras.metrics.Mean(name="d_real")  # mean D(x) on real images
        self.fake_score_tracker = keras.metrics.Mean(name="d_fake")  # mean D(G(z)) before the G step

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_score_tracker, self.fake_score_tracker]

    def compile(self, d_optimizer: keras.optimizers.Optimizer, g_optimizer: keras.optimizers.Optimizer,
                **kwargs: Any) -> None:
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    def call(self, latent_vectors: Any, training: bool = False) -> Any:
        """Generate images from latent vectors."""
        return self.generator(latent_vectors, training=training)

    def sample_latents(self, batch_size: Any) -> Any:
        """``batch_size`` latent vectors; under a strategy, this replica's rows of the whole batch's noise."""
        global_rows = keras.random.normal((batch_size * replicas_in_sync(), self.latent_dim),
                                          seed=self.seed_generator)
        return this_replicas_rows(global_rows)

    def train_step(self, real_images: Any) -> dict[str, Any]:
        batch_size = ops.shape(real_images)[0]
        # 1. the discriminator: real images towards REAL_LABEL, generated ones towards FAKE_LABEL
        fake_images = self.generator(self.sample_latents(batch_size), training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            d_loss = discriminator_loss(real_logits, fake_logits)
            scaled_loss = scale_for_replicas(d_loss)
        gradients = tape.gradient(scaled_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply(gradients, self.discriminator.trainable_weights)
        # 2. the generator, on fresh noise, through the discriminator it has to fool
        with tf.GradientTape() as tape:
            g_logits = self.discriminator(self.generator(self.sample_latents(batch_size), training=True),
                                          training=True)
            g_loss = generator_loss(g_logits)
            scaled_loss = scale_for_replicas(g_loss)
        gradients = tape.gradient(scaled_loss, self.generator.trainable_weights)
        self.g_optimizer.apply(gradients, self.generator.trainable_weights)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.real_score_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.fake_score_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        return {metric.name: metric.result() for metric in self.metrics}


def make_dcgan(image_shape: tuple[int, int, int], cfg: GanSettings, seed: int = 0) -> DCGAN:
    """A compiled, built :class:`DCGAN` for ``image_shape`` with ``cfg``'s sizes and Adam settings.

    ``seed`` fixes the initial weights and the model's noise, so the trained weights depend on the config only.
    """
    model = DCGAN(build_generator(cfg.latent_dim, image_shape, cfg.base_filters, seed=seed),
                  build_discriminator(image_shape, cfg.base_filters, seed=seed), cfg.latent_dim, seed=seed)
    model.compile(d_optimizer=keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1),
                  g_optimizer=keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1),
                  steps_per_execution=STEPS_PER_EXECUTION)
    model.build((None, cfg.latent_dim))
    # the optimisers' state is part of the model's saved weights: create it now, so that cached weights load
    model.d_optimizer.build(model.discriminator.trainable_variables)
    model.g_optimizer.build(model.generator.trainable_variables)
    return model


class EpochSamples(keras.callbacks.Callback):
    """Keep the generator's images for fixed latent vectors before training and after every epoch."""

    def __init__(self, fixed_latents: np.ndarray) -> None:
        super().__init__()
        self.fixed_latents = np.asarray(fixed_latents, dtype=np.float32)
        self.samples: list[np.ndarray] = []

    def _record(self) -> None:
        self.samples.append(generate(self.model.generator, self.fixed_latents))

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._record()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._record()


def image_batches(images: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """A shuffled ``tf.data`` pipeline of full batches of images mapped to [-1, 1]."""
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, height, width, channels), got {images.shape}")
    if len(images) < batch_size:
        raise ValueError(f"expected at least batch_size={batch_size} images, got {len(images)}")
    dataset = tf.data.Dataset.from_tensor_slices(to_tanh_range(images))
    return dataset.shuffle(len(images), seed=seed).batch(batch_size, drop_remainder=True).prefetch(2)


@dataclasses.dataclass(frozen=True)
class TrainedGan:
    """A trained :class:`DCGAN`, its per-epoch history and the fixed latents' samples (epoch 0 = untrained)."""

    gan: DCGAN
    history: dict[str, list[float]]
    epoch_samples: np.ndarray
    fixed_latents: np.ndarray
    from_cache: bool


def training_config(cfg: GanSettings, images: np.ndarray, seed: int) -> dict[str, Any]:
    """Everything that changes the trained networks or their recorded samples: the cache key's config.

    The images enter through a SHA-256 of their bytes, so other data (CelebA, MNIST, digits) never loads the
    wrong weights; settings that only the chapter's evaluation uses (quiz, two-sample test) are left out.
    """
    return weights_config(cfg, seed=seed, images=np.asarray(images, dtype=np.float32))


class _SamplesLost(RuntimeError):
    """The weights are cached but the per-epoch samples are not: train again."""


def train_dcgan(images: np.ndarray, cfg: GanSettings, seed: int = 0, name: str = "dcgan",
                callbacks: list[keras.callbacks.Callback] | None = None) -> TrainedGan:
    """Train a DCGAN on ``images`` (in [0, 1]) through the weights cache, recording samples of fixed latents.

    Both networks' weights and the history are one :func:`mlbook.cache.load_or_train` entry; the per-epoch
    samples are a :func:`mlbook.cache.load_or_compute_arrays` entry with the same config. A rebuild loads
    both and trains nothing.
    """
    image_shape = tuple(images.shape[1:])
    model = make_dcgan(image_shape, cfg, seed=seed)
    fixed_latents = np.random.default_rng(seed).standard_normal((cfg.num_fixed_samples, cfg.latent_dim))
    fixed_latents = fixed_latents.astype(np.float32)
    config = training_config(cfg, images, seed)
    recorder = EpochSamples(fixed_latents)

    def train(model: DCGAN) -> keras.callbacks.History:
        return model.fit(image_batches(images, cfg.batch_size, seed), epochs=cfg.num_epochs, verbose=0,
                         shuffle=False, callbacks=[recorder, *(callbacks or [])])  # the pipeline shuffles

    def samples_of_this_run() -> dict[str, np.ndarray]:
        if not recorder.samples:
            raise _SamplesLost
        return {"epoch_samples": np.stack(recorder.samples)}

    trained = load_or_train(model, name, config, train)
    try:
        arrays, _ = load_or_compute_arrays(f"{name}-samples", config, samples_of_this_run)
    except _SamplesLost:  # a cache entry lost its companion: retrain so that both match
        trained.weights_path.unlink(missing_ok=True)
        trained = load_or_train(make_dcgan(image_shape, cfg, seed=seed), name, config, train)
        arrays, _ = load_or_compute_arrays(f"{name}-samples", config, samples_of_this_run)
    return TrainedGan(trained.model, trained.history, arrays["epoch_samples"], fixed_latents, trained.from_cache)


# --- using the generator ----------------------------------------------------------------------------------------


def generate(generator: keras.Model, latent_vectors: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Images in [0, 1] for ``latent_vectors`` (inference mode: batch norm uses its moving statistics); the
    vectors are cast to float32 first (:func:`slerp`'s paths are float64)."""
    return from_tanh_range(predict_in_batches(generator, np.asarray(latent_vectors, dtype=np.float32), batch_size))


def slerp(z_start: np.ndarray, z_end: np.ndarray, num_steps: int) -> np.ndarray:
    """Spherical interpolation from ``z_start`` to ``z_end`` (both ends included), ``(num_steps, latent_dim)``.

    Points on a straight line between two Gaussian vectors are shorter than typical samples (the midpoint's
    norm is about 1/√2 of theirs); the great-circle path keeps them at typical norms (White, 2016).

    Raises:
        ValueError: if the vectors' shapes differ or ``num_steps < 2``.
    """
    z_start, z_end = np.asarray(z_start, dtype=np.float64), np.asarray(z_end, dtype=np.float64)
    if z_start.shape != z_end.shape or z_start.ndim != 1:
        raise ValueError(f"expected two latent vectors of the same shape (d,), got {z_start.shape} and "
                         f"{z_end.shape}")
    if num_steps < 2:
        raise ValueError(f"expected num_steps >= 2 (both ends), got {num_steps}")
    cos_angle = np.dot(z_start, z_end) / (np.linalg.norm(z_start) * np.linalg.norm(z_end))
    angle = np.arccos(np.clip(cos_angle, -1.0, 1.0))
    fractions = np.linspace(0.0, 1.0, num_steps)[:, None]
    if angle < 1e-6:  # (nearly) parallel: the straight line is the arc
        return (1 - fractions) * z_start + fractions * z_end
    return (np.sin((1 - fractions) * angle) * z_start + np.sin(fractions * angle) * z_end) / np.sin(angle)


def discriminator_scores(discriminator: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """D(x) = sigmoid(logit) for images in [0, 1], in inference mode: the probability that each is real."""
    logits = predict_in_batches(discriminator, to_tanh_range(images), batch_size)
    return 1.0 / (1.0 + np.exp(-logits[:, 0]))


def class_shares(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The fraction of ``labels`` in each class ``0 … num_classes − 1``; the shares sum to 1.

    Raises:
        ValueError: if ``labels`` is empty, not one-dimensional, or holds a label outside the classes.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected a non-empty 1-D array of integer labels, got shape {labels.shape}, "
                         f"dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"expected labels in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]")
    return np.bincount(labels, minlength=num_classes) / len(labels)


def underrepresented_classes(shares: np.ndarray, reference_shares: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """The classes whose share is below ``fraction`` of their share in ``reference_shares``: the classes that a
    collapsing generator drops, or draws too poorly to be recognised.

    Raises:
        ValueError: if the two share vectors differ in length.
    """
    shares, reference_shares = np.asarray(shares, float), np.asarray(reference_shares, float)
    if shares.shape != reference_shares.shape:
        raise ValueError(f"expected share vectors of the same length, got {shares.shape} and "
                         f"{reference_shares.shape}")
    return np.flatnonzero(shares < fraction * reference_shares)


def model_summary_rows(model: keras.Model) -> list[tuple[str, str, int]]:
    """``(layer name, output shape, parameters)`` for every layer of a Sequential model, for a table."""
    return [(layer.name, str(tuple(layer.output.shape)), layer.count_params()) for layer in model.layers]


def epochs_gif(epoch_samples: np.ndarray, ncols: int = 8, scale: int = 2, frame_ms: int = 400,
               levels: int = 16) -> bytes:
    """An animated GIF of the fixed latents' samples, one frame per epoch (frame 0: before training), each frame
    titled with its epoch; the last frame is held three times as long.

    Pixel values are rounded to ``levels`` steps per channel: noisy early frames otherwise compress badly (a
    64-image, 29-frame animation shrinks from about 1.1 MB to 0.3 MB at 16 levels).
    """
    from PIL import Image, ImageDraw, ImageFont

    if levels < 2:
        raise ValueError(f"expected at least 2 levels per channel, got {levels}")
    font = ImageFont.load_default(size=14)
    frames = []
    for epoch, samples in enumerate(np.asarray(epoch_samples)):
        steps = np.round(tile_images(samples, ncols) * (levels - 1)) / (levels - 1)
        grid = np.round(steps * 255).astype(np.uint8)
        tile = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).convert("RGB")
        tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
        frame = Image.new("RGB", (tile.width, tile.height + 22), "white")
        frame.paste(tile, (0, 22))
        ImageDraw.Draw(frame).text((4, 3), f"epoch {epoch}", fill="black", font=font)
        frames.append(frame)
    buffer = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [3 * frame_ms]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buffer.getvalue()
