"""Data augmentation for n-dimensional images with ``scipy.ndimage``: translate, scale, rotate, flip, change the
intensity, crop and resample 2-D images (with or without colour channels), image + segmentation pairs and 3-D
volumes; a generated 3-D "cardiac" phantom with its label volume; and the few-labels experiment.

Conventions: the *leading* axes of an array are spatial (rows, columns[, slices]); anything after the axes a
transform touches (an RGB channel, the slices of a volume rotated in-plane) is carried along unchanged. A
segmentation (a *label map*) is transformed with nearest-neighbour interpolation (order 0), so it keeps integer
classes; an image with cubic B-splines (order 3). Gaps at the edges are filled with the nearest pixel.

References:
    Simard, P. Y., Steinkraus, D. & Platt, J. C. (2003). Best practices for convolutional neural networks applied
    to visual document analysis. *ICDAR*.
    Ronneberger, O., Fischer, P. & Brox, T. (2015). U-Net: convolutional networks for biomedical image
    segmentation. *MICCAI*. arXiv:1505.04597.
    Unser, M. (1999). Splines: a perfect fit for signal and image processing. *IEEE Signal Processing Magazine*
    16(6), 22–38.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from mlbook.cache import evaluation_only, weights_config
from mlbook.seeding import seeded

if TYPE_CHECKING:
    import keras

    from mlbook.data import ImageDataset

Array = np.ndarray

#: Spline order for images (cubic B-spline) and for label maps (nearest neighbour: classes stay integers).
IMAGE_ORDER = 3
LABEL_ORDER = 0
#: How pixels moved in from outside the array are filled: the nearest edge pixel is repeated.
EDGE_MODE = "nearest"


def _order(is_label: bool) -> int:
    return LABEL_ORDER if is_label else IMAGE_ORDER


def _as_array(image: Array, min_ndim: int = 2, name: str = "image") -> Array:
    image = np.asarray(image)
    if image.ndim < min_ndim:
        raise ValueError(f"expected {name} with at least {min_ndim} axes (rows, columns, ...), got shape {image.shape}")
    return image


def _per_axis(values: float | Sequence[float], image: Array, default_axes: int, fill: float, name: str) -> tuple:
    """Expand a scalar (applied to the first ``default_axes`` axes) or a per-axis sequence to one value per axis."""
    values = [float(values)] * default_axes if np.isscalar(values) else [float(v) for v in values]
    if not 1 <= len(values) <= image.ndim:
        raise ValueError(f"expected 1 to {image.ndim} {name} values for an image of shape {image.shape}, "
                         f"got {len(values)}")
    return tuple(values) + (fill,) * (image.ndim - len(values))


def _on_leading_axes(image: Array, num_axes: int, transform: Any) -> Array:
    """Apply ``transform`` (a function of a ``num_axes``-D array) to every channel/slice behind those axes.

    Interpolating only over the axes that move is exact (nothing moves along the others) and much faster than
    letting ``scipy.ndimage`` prefilter and interpolate along a channel axis too.
    """
    if image.ndim == num_axes:
        return transform(image)
    stacked = image.reshape(image.shape[:num_axes] + (-1,))
    planes = [transform(stacked[..., i]) for i in range(stacked.shape[-1])]
    return np.stack(planes, axis=-1).reshape(image.shape)


# --------------------------------------------------------------------------------------------------------------
# The transforms
# --------------------------------------------------------------------------------------------------------------


def translate(image: Array, offset: Sequence[float], is_label: bool = False) -> Array:
    """Shift the leading ``len(offset)`` axes by ``offset`` pixels (rows down, columns right, ...).

    Args:
        image: an array whose leading axes are spatial; trailing axes (channels, slices) are not moved.
        offset: one shift per leading axis, e.g. ``(dy, dx)``; fractions interpolate between pixels.
        is_label: a label map (nearest neighbour) rather than an image (cubic spline).

    Returns:
        An array of the same shape and dtype.
    """
    image = _as_array(image)
    if np.isscalar(offset):
        raise ValueError(f"expected one offset per shifted axis, e.g. (dy, dx), got the scalar {offset!r}")
    shift = _per_axis(offset, image, 2, 0.0, "offset")[: len(offset)]
    return _on_leading_axes(image, len(shift), lambda plane: ndimage.shift(
        plane, shift, order=_order(is_label), mode=EDGE_MODE))


def scale(image: Array, factor: float | Sequence[float], is_label: bool = False) -> Array:
    """Zoom in (``factor > 1``) or out (``factor < 1``) about the centre of the array, keeping its shape.

    Output pixel ``o`` takes its value from input position ``c + (o - c) / factor``, with ``c`` the centre
    ``(n - 1) / 2`` of each axis, so the centre stays where it is. A scalar ``factor`` scales the first two axes
    (rows and columns); a sequence gives one factor per leading axis, e.g. three for a volume.

    Raises:
        ValueError: if a factor is not positive.
    """
    image = _as_array(image)
    num_axes = 2 if np.isscalar(factor) else len(factor)
    factors = _per_axis(factor, image, 2, 1.0, "scale factor")[:num_axes]
    if min(factors) <= 0:
        raise ValueError(f"expected positive scale factors, got {factors}")
    centre = (np.asarray(image.shape[:num_axes], dtype=float) - 1.0) / 2.0
    inverse = 1.0 / np.asarray(factors)
    return _on_leading_axes(image, num_axes, lambda plane: _diagonal_affine_transform(
        plane, inverse, offset=centre - inverse * centre, order=_order(is_label), mode=EDGE_MODE))


def _diagonal_affine_transform(image: Array, diagonal: Array, **options: Any) -> Array:
    """``ndimage.affine_transform`` with a diagonal matrix given as the 1-D array of its diagonal (its documented
    form, and SciPy's faster zoom-and-shift path). Older SciPy releases (1.11, the lowest the package allows, among
    them) warn on every such call that the meaning of a 1-D matrix changed in SciPy 0.18; that notice, and only it, is
    silenced here. A 2-D ``np.diag`` would avoid it but take the general path, which rounds differently."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The behavior of affine_transform with a 1-D array",
                                category=UserWarning)
        return ndimage.affine_transform(image, diagonal, **options)


def rotate(image: Array, angle: float, is_label: bool = False) -> Array:
    """Rotate the first two axes by ``angle`` degrees about the centre; positive is counter-clockwise as displayed
    (row 0 at the top). Every slice or channel after them is rotated by the same angle. The shape is kept."""
    image = _as_array(image)
    return ndimage.rotate(image, float(angle), axes=(1, 0), reshape=False, order=_order(is_label), mode=EDGE_MODE)


def flip(image: Array, axes: Sequence[int] = (1,)) -> Array:
    """Mirror the image along ``axes``: ``(1,)`` left–right, ``(0,)`` up–down, ``()`` not at all."""
    image = _as_array(image)
    axes = tuple(int(a) for a in axes)
    if any(not 0 <= a < image.ndim for a in axes):
        raise ValueError(f"expected flip axes in 0..{image.ndim - 1} for an image of shape {image.shape}, got {axes}")
    return np.flip(image, axis=axes) if axes else image


def adjust_intensity(image: Array, factor: float) -> Array:
    """Brighten (``factor > 1``) or dim (``factor < 1``) an image by multiplying every value. Never for labels.

    Raises:
        ValueError: if ``factor`` is not positive (zero would blank the image).
    """
    if not factor > 0:
        raise ValueError(f"expected a positive intensity factor, got {factor}")
    return _as_array(image) * np.asarray(factor, dtype=np.result_type(image, np.float32))


def normalise_intensity(image: Array) -> Array:
    """Rescale an image linearly to span [0, 1] (float32).

    Raises:
        ValueError: for a constant image, which has no range to stretch.
    """
    image = _as_array(image).astype(np.float32)
    low, high = float(image.min()), float(image.max())
    if high <= low:
        raise ValueError(f"cannot normalise a constant image (every value is {low})")
    return (image - low) / (high - low)


def resample(image: Array, shape: Sequence[int], is_label: bool = False) -> Array:
    """Interpolate the leading ``len(shape)`` axes to ``shape`` (e.g. a network's input size); intensities are not
    rescaled, so an earlier intensity change survives. Pixels are treated as squares (``grid_mode``), so the
    image's edges stay at the edges.

    Raises:
        ValueError: if ``shape`` has a non-positive size or more axes than the image.
    """
    image = _as_array(image)
    shape = tuple(int(s) for s in shape)
    if not 1 <= len(shape) <= image.ndim or min(shape) < 1:
        raise ValueError(f"expected 1 to {image.ndim} positive sizes for an image of shape {image.shape}, got {shape}")
    zoom = tuple(new / old for new, old in zip(shape, image.shape)) + (1.0,) * (image.ndim - len(shape))
    return ndimage.zoom(image, zoom, order=_order(is_label), mode=EDGE_MODE, grid_mode=True)


def crop_square(
    image: Array, labels: Array | None = None, margin: int = 5, rng: np.random.Generator | None = None
) -> tuple[Array, Array | None]:
    """Crop the longer of the first two axes to make the image square, keeping every labelled pixel in view.

    The window's side is the shorter axis. Without ``rng`` it is the window nearest the centre that contains the
    labels' extent plus ``margin`` pixels on both sides (less margin where the image ends); with ``rng`` it is a
    random one among those windows: a random crop.

    Returns:
        ``(image, labels)`` cropped alike (``labels`` is ``None`` if none was given).

    Raises:
        ValueError: if the labels do not fit in the square, or their shape does not match the image's.
    """
    image = _as_array(image)
    if labels is not None and np.shape(labels)[:2] != image.shape[:2]:
        raise ValueError(f"expected labels with rows and columns {image.shape[:2]}, got shape {np.shape(labels)}")
    if margin < 0:
        raise ValueError(f"expected a non-negative margin, got {margin}")
    height, width = image.shape[:2]
    long_axis, side = (0, width) if height > width else (1, height)
    first_start, last_start = 0, image.shape[long_axis] - side  # every window start that fits in the image
    if labels is not None and np.any(labels):
        other_axes = tuple(a for a in range(np.ndim(labels)) if a != long_axis)
        hits = np.flatnonzero(np.any(np.asarray(labels) != 0, axis=other_axes))  # coordinates, not argmin indices
        low, high = int(hits.min()), int(hits.max())
        if high - low + 1 > side:
            raise ValueError(f"the labels span {high - low + 1} pixels along axis {long_axis}, more than the "
                             f"square's side {side}")
        first_start, last_start = max(first_start, high + 1 - side), min(last_start, low)
        with_margin = max(first_start, high + 1 + margin - side), min(last_start, low - margin)
        if with_margin[0] <= with_margin[1]:
            first_start, last_start = with_margin
    if rng is not None:
        start = int(rng.integers(first_start, last_start, endpoint=True))
    else:
        start = int(np.clip((image.shape[long_axis] - side) // 2, first_start, last_start))
    window = [slice(None)] * image.ndim
    window[long_axis] = slice(start, start + side)
    cropped = image[tuple(window)]
    return cropped, (None if labels is None else np.asarray(labels)[tuple(window[: np.ndim(labels)])])


# --------------------------------------------------------------------------------------------------------------
# A random augmentation pipeline
# --------------------------------------------------------------------------------------------------------------

TRANSFORMS: tuple[str, ...] = ("rotate", "scale", "intensity", "flip", "translate")


@dataclasses.dataclass(frozen=True)
class AugmentRanges:
    """How far each random transform may go (the post's values by default).

    Attributes:
        max_angle: rotations are drawn from [−max_angle, max_angle] degrees.
        scale_range, intensity_range: factors drawn uniformly from these intervals.
        max_offset: translations are whole pixels in [−max_offset, max_offset], both ends included.
        flip_axes: the axes that may be mirrored; ``()`` for data that a mirror changes (digits, text).
        max_transforms: each call applies between 1 and this many different transforms.
    """

    max_angle: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    intensity_range: tuple[float, float] = (0.8, 1.2)
    max_offset: int = 5
    flip_axes: tuple[int, ...] = (1,)
    max_transforms: int = 5

    def allowed(self) -> tuple[str, ...]:
        return tuple(name for name in TRANSFORMS if name != "flip" or self.flip_axes)


def random_augment(
    image: Array, labels: Array | None, rng: np.random.Generator, ranges: AugmentRanges = AugmentRanges()
) -> tuple[Array, Array | None, dict[str, Any]]:
    """Apply between 1 and ``ranges.max_transforms`` different random transforms to an image (and its labels).

    The transforms are chosen without repetition and applied in the order of :data:`TRANSFORMS`; the labels get
    the same geometric transforms with nearest-neighbour interpolation and never an intensity change.

    Returns:
        ``(image, labels, applied)``; ``applied`` maps each transform's name to its drawn parameter.
    """
    allowed = ranges.allowed()
    count = int(rng.integers(1, min(ranges.max_transforms, len(allowed)), endpoint=True))
    chosen = set(rng.choice(allowed, size=count, replace=False).tolist())
    applied: dict[str, Any] = {}
    for name in TRANSFORMS:
        if name not in chosen:
            continue
        if name == "rotate":
            applied[name] = angle = float(rng.uniform(-ranges.max_angle, ranges.max_angle))
            image, labels = rotate(image, angle), None if labels is None else rotate(labels, angle, is_label=True)
        elif name == "scale":
            applied[name] = factor = float(rng.uniform(*ranges.scale_range))
            image, labels = scale(image, factor), None if labels is None else scale(labels, factor, is_label=True)
        elif name == "intensity":
            applied[name] = factor = float(rng.uniform(*ranges.intensity_range))
            image = adjust_intensity(image, factor)
        elif name == "flip":
            applied[name] = axes = (int(rng.choice(ranges.flip_axes)),)
            image, labels = flip(image, axes), None if labels is None else flip(labels, axes)
        else:
            applied[name] = offset = tuple(int(v) for v in rng.integers(-ranges.max_offset, ranges.max_offset,
                                                                         size=2, endpoint=True))
            image = translate(image, offset)
            labels = None if labels is None else translate(labels, offset, is_label=True)
    return image, labels, applied


# --------------------------------------------------------------------------------------------------------------
# A generated 3-D "cardiac" phantom
# --------------------------------------------------------------------------------------------------------------

#: The classes of :func:`cardiac_phantom`'s label volume.
PHANTOM_CLASSES: Mapping[int, str] = {0: "background", 1: "left-ventricle cavity", 2: "myocardium",
                                      3: "right-ventricle cavity"}


def cardiac_phantom(shape: tuple[int, int, int] = (96, 112, 16), noise: float = 0.04,
                    seed: int = 0) -> tuple[Array, Array]:
    """A generated short-axis "cardiac MRI" stack and its segmentation — not a scan of anybody.

    Axes are (rows, columns, slices), as in a short-axis stack. A body ellipse holds a left ventricle (a bright
    blood pool in a darker muscle ring) and a crescent-shaped right ventricle; both shrink towards the apex
    (the last slice). A smooth coil-sensitivity-like shading and Gaussian noise are added.

    Returns:
        ``(volume, labels)``: float32 intensities in [0, 1] and uint8 classes of :data:`PHANTOM_CLASSES`.
    """
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"expected a volume shape (rows, columns, slices), each at least 8, got {shape}")
    rng = np.random.default_rng(seed)
    rows, cols, slices = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    height, width, depth = shape
    y = (rows - height / 2) / (height / 2)  # −1..1 across the field of view
    x = (cols - width / 2) / (width / 2)
    taper = np.sqrt(np.clip(1.0 - (slices / depth) ** 2, 0.05, None))  # 1 at the base, small at the apex
    body = (x / 0.9) ** 2 + (y / 0.75) ** 2 <= 1.0
    lv_x, lv_y = x - 0.12, y - 0.05
    lv_radius = np.hypot(lv_x / 1.0, lv_y / 1.1)
    cavity = lv_radius <= 0.22 * taper
    myocardium = (lv_radius <= 0.34 * taper) & ~cavity
    rv_radius = np.hypot((x + 0.3) / 1.2, (y - 0.02) / 1.0)
    right = (rv_radius <= 0.36 * taper) & (lv_radius > 0.36 * taper)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[cavity], labels[myocardium], labels[right] = 1, 2, 3
    intensity = np.where(body, 0.35, 0.02) + 0.55 * cavity + 0.1 * myocardium + 0.45 * right
    shading = 1.0 - 0.25 * ((x + 0.4) ** 2 + y**2) / 2.0
    volume = intensity * shading + rng.normal(0.0, noise, size=shape)
    return np.clip(volume, 0.0, 1.0).astype(np.float32), labels


# --------------------------------------------------------------------------------------------------------------
# The few-labels experiment
# --------------------------------------------------------------------------------------------------------------


def few_labels_subset(labels: Array, per_class: int, seed: int) -> Array:
    """Indices of ``per_class`` randomly chosen examples of every class (sorted).

    Raises:
        ValueError: if a class has fewer than ``per_class`` examples.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < per_class:
            raise ValueError(f"class {cls} has {len(members)} examples, fewer than per_class={per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def augment_batch(images: Array, rng: np.random.Generator, ranges: AugmentRanges) -> Array:
    """Augment every image of an ``(n, height, width, channels)`` batch independently (float32)."""
    images = _as_array(images, min_ndim=4, name="images")
    return np.stack([random_augment(image, None, rng, ranges)[0] for image in images]).astype(np.float32)


def _augmented_batches_class() -> type:
    import keras

    class AugmentedBatches(keras.utils.PyDataset):
        """Shuffled batches of ``(images, labels)``; with ``ranges``, every image is freshly augmented each time.

        An epoch passes ``repeats`` times over the images (fewer, longer epochs cost less bookkeeping). The random
        numbers of batch ``b`` in epoch ``e`` come from ``default_rng([seed, e, b])``, so a run is repeatable and
        the batches with and without augmentation hold the same images in the same order.
        """

        def __init__(self, images: Array, labels: Array, batch_size: int, ranges: AugmentRanges | None,
                     seed: int, repeats: int = 1) -> None:
            super().__init__()
            if batch_size < 1 or repeats < 1:
                raise ValueError(f"expected positive batch_size and repeats, got {batch_size} and {repeats}")
            self.images, self.labels = np.asarray(images, dtype=np.float32), np.asarray(labels)
            self.batch_size, self.ranges, self.seed, self.repeats = batch_size, ranges, seed, repeats
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> Array:
            rng = np.random.default_rng([self.seed, self.epoch])
            return np.concatenate([rng.permutation(len(self.images)) for _ in range(self.repeats)])

        def __len__(self) -> int:
            return math.ceil(len(self.order) / self.batch_size)

        def __getitem__(self, index: int) -> tuple[Array, Array]:
            chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            images = self.images[chosen]
            if self.ranges is not None:
                images = augment_batch(images, np.random.default_rng([self.seed, self.epoch, index]), self.ranges)
            return images, self.labels[chosen]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return AugmentedBatches


def augmented_batches(images: Array, labels: Array, batch_size: int, ranges: AugmentRanges | None, seed: int,
                      repeats: int = 1) -> keras.utils.PyDataset:
    """A ``keras.utils.PyDataset`` of shuffled batches, augmented on the fly when ``ranges`` is given; an epoch
    passes ``repeats`` times over the images."""
    return _augmented_batches_class()(images, labels, batch_size, ranges, seed, repeats)


def small_cnn(image_shape: tuple[int, int, int] = (28, 28, 1), num_classes: int = 10) -> keras.Model:
    """A small classifier: two 3×3 convolutions (16 and 32 filters), each followed by 2×2 max-pooling, then
    dropout and a dense layer of logits."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(image_shape),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(num_classes),
    ], name="small_cnn")


@dataclasses.dataclass(frozen=True)
class FewLabelsResult:
    """One run of the experiment: the test accuracy and the per-epoch history, with and without augmentation."""

    seed: int
    accuracy: dict[str, float]
    history: dict[str, dict[str, list[float]]]


def run_few_labels(data: ImageDataset, cfg: AugmentSettings, seed: int) -> FewLabelsResult:
    """Train :func:`small_cnn` on ``cfg.per_class`` images per class twice, from the same initial weights and on
    the same batches, once as they are and once augmented on the fly; evaluate both on every test image. Adam's
    step size decays from ``cfg.learning_rate`` to zero along a cosine.

    Trained weights go through the cache (:func:`mlbook.cache.load_or_train`).
    """
    import keras

    from mlbook.cache import load_or_train
    from mlbook.training import classification_accuracy, fit_classifier

    chosen = few_labels_subset(data.y_train, cfg.per_class, seed)
    images, labels = data.x_train[chosen], data.y_train[chosen]
    result = FewLabelsResult(seed, {}, {})
    for name, ranges in (("plain", None), ("augmented", cfg.ranges)):
        with seeded(seed):
            model = small_cnn(data.image_shape, data.num_classes)
            batches = augmented_batches(images, labels, cfg.batch_size, ranges, seed, cfg.repeats)
            # The step size decays to zero along a cosine, so the last epoch's accuracy is not a lucky or unlucky
            # step.
            schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate,
                                                              decay_steps=cfg.num_epochs * len(batches))
            config = weights_config(cfg, run=name, seed=seed, data=data.source, schedule="cosine", ranges=ranges)
            trained = load_or_train(model, f"few-labels-{name}", config, lambda m, b=batches, s=schedule:
                                    fit_classifier(m, b, (data.x_test, data.y_test), cfg.num_epochs, s))
        result.accuracy[name] = classification_accuracy(trained.model, data.x_test, data.y_test)
        result.history[name] = trained.history
    return result


# --------------------------------------------------------------------------------------------------------------
# The chapter's settings
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AugmentSettings:
    """Sizes for the chapter :ref:`ch-augmentation`: the phantom and the few-labels experiment."""

    phantom_shape: tuple[int, int, int] = evaluation_only()
    per_class: int
    num_seeds: int = evaluation_only()
    num_epochs: int
    repeats: int
    batch_size: int
    learning_rate: float
    ranges: AugmentRanges


#: Digits are not mirror-symmetric (a mirrored 2 is no 2), so the experiment never flips; 28-pixel images move by
#: at most 2 pixels rather than the post's 5 (which were meant for 512-pixel photographs).
DIGIT_RANGES = AugmentRanges(max_angle=12.0, scale_range=(0.9, 1.1), intensity_range=(0.8, 1.2), max_offset=2,
                             flip_axes=())

SETTINGS = {
    "quick": AugmentSettings(phantom_shape=(96, 112, 16), per_class=10, num_seeds=3, num_epochs=8, repeats=5,
                             batch_size=20, learning_rate=3e-3, ranges=DIGIT_RANGES),
    "full": AugmentSettings(phantom_shape=(128, 160, 24), per_class=10, num_seeds=10, num_epochs=12, repeats=5,
                            batch_size=20, learning_rate=3e-3, ranges=DIGIT_RANGES),
}
