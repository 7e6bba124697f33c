"""Neural style transfer: content and style as statistics of a convolutional network's feature maps, and an image
optimised, pixel by pixel, to match both.

The notation follows the chapter :ref:`ch-style-transfer`. A layer ``l`` of the feature extractor has ``N_l`` feature
maps of ``M_l`` positions each; written as a matrix ``F^l`` of shape ``(N_l, M_l)``, its Gram matrix is
``G^l = F^l (F^l)^T``. The content loss compares feature maps with those of the content image ``p``; the style loss
compares Gram matrices with those of the style image ``a``; the image ``x`` is optimised with L-BFGS or Adam.

This module holds the images, the losses and their optimisation. The feature extractors (VGG19 and the learned
filter pyramid) are in :mod:`mlbook.extractors`; :func:`load_extractor` picks the profile's.

References:
    Gatys, L. A., Ecker, A. S. & Bethge, M. (2015). A neural algorithm of artistic style. arXiv:1508.06576.
    Gatys, L. A., Ecker, A. S. & Bethge, M. (2015). Texture synthesis using convolutional neural networks. NeurIPS.
    Gatys, L. A., Ecker, A. S. & Bethge, M. (2016). Image style transfer using convolutional neural networks. CVPR.
    Mahendran, A. & Vedaldi, A. (2015). Understanding deep image representations by inverting them. CVPR.
    Liu, D. C. & Nocedal, J. (1989). On the limited memory BFGS method for large scale optimization. *Mathematical
    Programming* 45, 503–528.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mlbook.cache import array_fingerprint, load_or_compute_arrays
from mlbook.data import DownloadError, announce_fallback
from mlbook.extractors import FeatureExtractor, learned_pyramid_extractor, vgg19_extractor

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

Array = np.ndarray
#: One call of an objective: ``{"total": ..., "content": ..., "style": ..., "tv": ...}`` (scalar tensors).
Terms = dict[str, tf.Tensor]
Objective = Callable[[tf.Tensor], Terms]


# --------------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StyleSettings:
    """Sizes of the style-transfer chapter for one profile.

    Attributes:
        image_size: side of the square content and style images, in pixels.
        extractor: ``"vgg19"`` (ImageNet weights, downloaded) or ``"learned-pyramid"`` (learned by the build).
        num_filters: filters the build learns (k-means centroids), if it uses the learned pyramid.
        filter_size: side of each learned filter, in pixels.
        num_scales: levels of the learned pyramid (its "layers").
        num_patches: training patches for k-means.
        pixel_steps, pixel_learning_rate: gradient descent on the pixel loss, the chapter's first example.
        content_iterations: L-BFGS iterations of each content reconstruction.
        texture_iterations: L-BFGS iterations of each style (texture) reconstruction.
        transfer_iterations: L-BFGS iterations of the stylised image.
        adam_steps, adam_learning_rate: the same image optimised with Adam, for comparison (pixels in [0, 1]).
        smoothing: the starting images of textures and transfers are smooth, made at ``image_size / smoothing``
            pixels and enlarged.
        large_size: side of the final stylised image, which starts from the ``image_size`` one enlarged
            (coarse to fine).
        large_iterations: L-BFGS iterations at ``large_size``.
        large_content_factor, large_tv_factor: α and γ at ``large_size``, as multiples of the extractor's own.
    """

    image_size: int
    extractor: str
    num_filters: int
    filter_size: int
    num_scales: int
    num_patches: int
    pixel_steps: int
    pixel_learning_rate: float
    content_iterations: int
    texture_iterations: int
    transfer_iterations: int
    adam_steps: int
    adam_learning_rate: float
    smoothing: int
    large_size: int
    large_iterations: int
    large_content_factor: float
    large_tv_factor: float


SETTINGS = {
    "quick": StyleSettings(
        image_size=128, extractor="learned-pyramid", num_filters=64, filter_size=7, num_scales=4,
        num_patches=10_000, pixel_steps=30, pixel_learning_rate=0.1, content_iterations=50,
        texture_iterations=100, transfer_iterations=130, adam_steps=100, adam_learning_rate=0.02, smoothing=8,
        large_size=256, large_iterations=100, large_content_factor=0.01, large_tv_factor=2.0,
    ),
    "full": StyleSettings(
        image_size=384, extractor="vgg19", num_filters=64, filter_size=7, num_scales=5,
        num_patches=40_000, pixel_steps=30, pixel_learning_rate=0.1, content_iterations=200,
        texture_iterations=500, transfer_iterations=500, adam_steps=500, adam_learning_rate=0.02, smoothing=8,
        large_size=768, large_iterations=200, large_content_factor=0.01, large_tv_factor=2.0,
    ),
}


# --------------------------------------------------------------------------------------------------------------
# Images: float32 arrays of shape (height, width, 3) in [0, 1]
# --------------------------------------------------------------------------------------------------------------


def _check_image(image: Array, name: str = "image") -> Array:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected {name} of shape (height, width, 3), got {image.shape}")
    return image


def square_image(image: Array, size: int, left: float = 0.5) -> Array:
    """Crop the largest square from an RGB image and resize it to ``size``×``size``, as float32 in [0, 1].

    Args:
        image: ``(height, width, 3)``, uint8 (0–255) or float (0–1).
        size: the side of the result, in pixels.
        left: where the square sits along the longer side, from 0 (start) to 1 (end); 0.5 centres it.

    Raises:
        ValueError: for a wrong shape, a non-positive size or ``left`` outside [0, 1].
    """
    from PIL import Image

    image = _check_image(image)
    if size < 1:
        raise ValueError(f"expected a positive size, got {size}")
    if not 0.0 <= left <= 1.0:
        raise ValueError(f"expected left in [0, 1], got {left}")
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    height, width = image.shape[:2]
    side = min(height, width)
    top, start = int(round(left * (height - side))), int(round(left * (width - side)))
    square = image[top : top + side, start : start + side]
    resized = Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float32) / 255.0


def load_content_image(size: int) -> Array:
    """The content photograph: the pagoda of scikit-learn's bundled ``china.jpg``, as a square of ``size`` pixels."""
    from sklearn.datasets import load_sample_image

    return square_image(load_sample_image("china.jpg"), size, left=0.05)


def brush_strokes(size: int, seed: int = 0, stroke_length: float = 0.07, stroke_width: float = 0.025) -> Array:
    """A generated "painting": short brush strokes in a night-sky palette, following swirling currents.

    Each stroke is a thick line whose direction follows the sum of a drift and four vortices, a nod to
    van Gogh's *The Starry Night*, the paper's style image; the picture is drawn at four times the size and
    downsampled, which anti-aliases the strokes' edges.

    Args:
        size: side of the square image, in pixels.
        seed: the random seed (positions, colours and vortex centres).
        stroke_length, stroke_width: a stroke's mean length and its width, as fractions of the side.
    """
    from PIL import Image, ImageDraw

    if size < 8:
        raise ValueError(f"expected a size of at least 8 pixels, got {size}")
    rng = np.random.default_rng(seed)
    side = 4 * size
    palette = np.array([(23, 50, 110), (40, 80, 160), (80, 130, 200), (150, 190, 230), (240, 210, 90),
                        (250, 240, 170), (20, 30, 60), (60, 110, 120)])
    canvas = Image.new("RGB", (side, side), (20, 40, 90))
    draw = ImageDraw.Draw(canvas)
    vortices = rng.uniform(0, side, size=(4, 2))
    num_strokes = int(size * size / 6)
    for x, y in rng.uniform(0, side, size=(num_strokes, 2)):
        offsets = np.array([x, y]) - vortices
        swirl = np.stack([-offsets[:, 1], offsets[:, 0]], axis=1) / ((offsets**2).sum(1) + (0.1 * side) ** 2)[:, None]
        direction = np.array([0.3, 0.05]) + 0.3 * side * swirl.sum(0)
        half = 0.5 * stroke_length * side * rng.uniform(0.6, 1.4) * direction / np.linalg.norm(direction)
        colour = np.clip(palette[rng.integers(len(palette))] + rng.integers(-15, 16, 3), 0, 255)
        draw.line([tuple(np.array([x, y]) - half), tuple(np.array([x, y]) + half)],
                  fill=tuple(int(c) for c in colour), width=max(1, int(round(stroke_width * side))))
    return np.asarray(canvas.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def white_noise(size: int, seed: int = 0, std: float = 0.2) -> Array:
    """The starting image of a reconstruction: Gaussian noise around mid-grey (0.5), clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.5, std, size=(size, size, 3)), 0.0, 1.0).astype(np.float32)


def _as_pil(image: Array) -> PillowImage:
    """An image in [0, 1] as an 8-bit Pillow image, for resizing."""
    from PIL import Image

    return Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8))


def smoothed(image: Array, factor: int) -> Array:
    """``image`` shrunk ``factor`` times (averaging blocks) and enlarged back (bicubic): its coarse layout only."""
    from PIL import Image

    image = _check_image(image)
    height, width = image.shape[:2]
    if factor < 1 or factor > min(height, width):
        raise ValueError(f"expected a factor between 1 and {min(height, width)}, got {factor}")
    pixels = _as_pil(image)
    small = pixels.resize((max(1, width // factor), max(1, height // factor)), Image.Resampling.BOX)
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def resized(image: Array, size: int) -> Array:
    """``image`` resized (bicubic) to ``size``×``size``: the start of a finer stage from a coarser stage's result."""
    from PIL import Image

    image = _check_image(image)
    if size < 1:
        raise ValueError(f"expected a positive size, got {size}")
    return np.asarray(_as_pil(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def smooth_noise(size: int, factor: int, seed: int = 0) -> Array:
    """White noise made at ``size / factor`` pixels and enlarged (bicubic) to ``size``: random blobs, no fine detail."""
    from PIL import Image

    if factor < 1 or factor > size:
        raise ValueError(f"expected a factor between 1 and {size}, got {factor}")
    small = _as_pil(white_noise(size // factor, seed))
    return np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


# --------------------------------------------------------------------------------------------------------------
# Losses: pure functions of tensors
# --------------------------------------------------------------------------------------------------------------


def pixel_loss(y: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """The squared distance between two images, ``L(y, z) = Σ_ijk (y_ijk − z_ijk)²``.

    Implements: eq-style-pixel

    Raises:
        ValueError: if the shapes differ.
    """
    if tuple(y.shape) != tuple(z.shape):
        raise ValueError(f"expected two images of the same shape, got {tuple(y.shape)} and {tuple(z.shape)}")
    return ops.sum(ops.square(y - z))


def feature_matrix(features: tf.Tensor) -> tf.Tensor:
    """A layer's feature maps as the matrix ``F^l`` of shape ``(N_l, M_l)``: one row per map, one column per position.

    Args:
        features: ``(1, height, width, N_l)`` or ``(height, width, N_l)`` activations (channels last).

    Raises:
        ValueError: for any other shape (in particular a batch of more than one image).
    """
    shape = tuple(features.shape)
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 3:
        raise ValueError(f"expected feature maps of shape (1, height, width, maps) or (height, width, maps), "
                         f"got {tuple(features.shape)}")
    return ops.transpose(ops.reshape(features, (-1, shape[-1])))


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """The Gram matrix ``G^l_ij = F^l_i · F^l_j`` of a layer, shape ``(N_l, N_l)``.

    Implements: eq-style-gram
    """
    matrix = feature_matrix(features)
    return ops.matmul(matrix, ops.transpose(matrix))


def content_loss(features: tf.Tensor, target_features: tf.Tensor) -> tf.Tensor:
    """``L_content = ½ Σ_ij (F^l_ij − P^l_ij)²``, with ``P^l`` the content image's feature maps.

    Implements: eq-style-content
    """
    if tuple(features.shape) != tuple(target_features.shape):
        raise ValueError(f"expected target features of shape {tuple(features.shape)}, "
                         f"got {tuple(target_features.shape)}")
    return 0.5 * ops.sum(ops.square(features - target_features))


def style_layer_loss(features: tf.Tensor, target_gram: tf.Tensor) -> tf.Tensor:
    """``E_l = Σ_ij (G^l_ij − A^l_ij)² / (4 N_l² M_l²)``, with ``A^l`` the style image's Gram matrix.

    Implements: eq-style-style
    """
    matrix = feature_matrix(features)
    num_maps, num_positions = matrix.shape
    if tuple(target_gram.shape) != (num_maps, num_maps):
        raise ValueError(f"expected a target Gram matrix of shape ({num_maps}, {num_maps}), "
                         f"got {tuple(target_gram.shape)}")
    gram = ops.matmul(matrix, ops.transpose(matrix))
    return ops.sum(ops.square(gram - target_gram)) / (4.0 * num_maps**2 * num_positions**2)


def total_variation_loss(image: tf.Tensor) -> tf.Tensor:
    """The squared differences between neighbouring pixels, summed: a penalty on high-frequency noise.

    Implements: eq-style-total
    """
    if len(image.shape) != 4:
        raise ValueError(f"expected an image batch of shape (1, height, width, 3), got {tuple(image.shape)}")
    down = image[:, 1:, :, :] - image[:, :-1, :, :]
    across = image[:, :, 1:, :] - image[:, :, :-1, :]
    return ops.sum(ops.square(down)) + ops.sum(ops.square(across))


# --------------------------------------------------------------------------------------------------------------
# The profile's feature extractor (the extractors themselves: mlbook.extractors)
# --------------------------------------------------------------------------------------------------------------


def load_extractor(cfg: StyleSettings) -> FeatureExtractor:
    """The profile's extractor; ``vgg19`` falls back, with one printed line, on the learned pyramid.

    Both come from :mod:`mlbook.extractors`; the learned pyramid's filters are cached.
    """
    if cfg.extractor == "vgg19":
        try:
            return vgg19_extractor()
        except DownloadError as error:
            fallback = learned_pyramid_extractor(cfg)
            announce_fallback("VGG19's ImageNet weights", str(error), f"a learned pyramid ({fallback.description})")
            return fallback
    if cfg.extractor == "learned-pyramid":
        return learned_pyramid_extractor(cfg)
    raise ValueError(f"unknown extractor {cfg.extractor!r}; expected 'vgg19' or 'learned-pyramid'")


# --------------------------------------------------------------------------------------------------------------
# The objective and its optimisation
# --------------------------------------------------------------------------------------------------------------


def _as_batch(image: Array | tf.Tensor) -> tf.Tensor:
    image = tf.convert_to_tensor(image, dtype=tf.float32)
    if len(image.shape) == 3:
        image = image[None]
    if len(image.shape) != 4 or image.shape[0] != 1 or image.shape[-1] != 3:
        raise ValueError(f"expected an image of shape (height, width, 3) or (1, height, width, 3), "
                         f"got {tuple(image.shape)}")
    return image


class StyleObjective:
    """The total loss ``α L_content(p, x, l_c) + β L_style(a, x, λ) + γ L_tv(x)`` of an image ``x``.

    The targets (the content image's feature maps ``P^{l_c}`` and the style image's Gram matrices ``A^l``) are
    computed once, here. Either part can be left out: no content image gives a texture synthesis, no style image
    a content reconstruction. Calling the objective returns every term, so that the optimisers can record them.

    Implements: eq-style-style, eq-style-total

    Args:
        extractor: the feature extractor.
        content_image, style_image: ``(height, width, 3)`` images in [0, 1], or ``None``.
        content_layer: ``l_c`` (default: the extractor's).
        style_layers: ``λ`` (default: the extractor's).
        content_weight, style_weight, tv_weight: α, β and γ (default: the extractor's α and γ, and β = 1).
        layer_weights: ``w_l`` for each style layer (default: ``1/|λ|`` each).

    Raises:
        ValueError: if neither image is given, a layer is unknown, or the weights do not match the layers.
    """

    def __init__(self, extractor: FeatureExtractor, *, content_image: Array | None = None,
                 style_image: Array | None = None, content_layer: str | None = None,
                 style_layers: Sequence[str] | None = None, content_weight: float | None = None,
                 style_weight: float = 1.0, tv_weight: float | None = None,
                 layer_weights: Sequence[float] | None = None) -> None:
        if content_image is None and style_image is None:
            raise ValueError("expected a content image, a style image or both, got neither")
        self.extractor = extractor
        self.content_layer = content_layer or extractor.content_layer
        self.style_layers = tuple(style_layers or extractor.style_layers)
        for layer in (self.content_layer, *self.style_layers):
            if layer not in extractor.layers:
                raise ValueError(f"unknown layer {layer!r}; {extractor.name} has {list(extractor.layers)}")
        if layer_weights is None:
            layer_weights = [1.0 / len(self.style_layers)] * len(self.style_layers)
        if len(layer_weights) != len(self.style_layers):
            raise ValueError(f"expected {len(self.style_layers)} layer weights (one per style layer), "
                             f"got {len(layer_weights)}")
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.content_weight = extractor.content_weight if content_weight is None else float(content_weight)
        self.tv_weight = extractor.tv_weight if tv_weight is None else float(tv_weight)
        self.style_weight = float(style_weight)
        self.content_target = None
        self.style_targets: dict[str, tf.Tensor] = {}
        if content_image is not None:
            self.content_target = extractor(_as_batch(_check_image(content_image, "content_image")))[self.content_layer]
        if style_image is not None:
            style_features = extractor(_as_batch(_check_image(style_image, "style_image")))
            self.style_targets = {layer: gram_matrix(style_features[layer]) for layer in self.style_layers}

    def __call__(self, image: tf.Tensor) -> Terms:
        features = self.extractor(image)
        zero = tf.zeros((), dtype=image.dtype)
        content = zero if self.content_target is None else content_loss(features[self.content_layer],
                                                                        self.content_target)
        style = zero
        for layer, weight in zip(self.style_layers, self.layer_weights):
            if layer in self.style_targets:
                style = style + weight * style_layer_loss(features[layer], self.style_targets[layer])
        tv = total_variation_loss(image)
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return {"total": total, "content": content, "style": style, "tv": tv}


@dataclasses.dataclass(frozen=True)
class Synthesis:
    """An optimised image ``(height, width, 3)`` in [0, 1] and its loss terms after each iteration.

    ``history["evaluations"]`` counts the evaluations of the loss and its gradient made up to each entry: one per
    Adam step, one or more per L-BFGS iteration (its line search may try several step lengths).
    """

    image: Array
    history: dict[str, Array]
    from_cache: bool = False


def _value_and_gradient(objective: Objective) -> Callable[[tf.Tensor], tuple[Terms, tf.Tensor]]:
    @tf.function
    def value_and_gradient(image: tf.Tensor) -> tuple[Terms, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = objective(image)
        return terms, tape.gradient(terms["total"], image)

    return value_and_gradient


def _history_arrays(history: list[Terms]) -> dict[str, Array]:
    return {key: np.array([float(terms[key]) for terms in history]) for key in history[0]}


def optimise_lbfgs(objective: Objective, initial: Array, num_iterations: int) -> Synthesis:
    """Minimise ``objective`` over the pixels with L-BFGS-B (SciPy), keeping every pixel in [0, 1].

    The paper's optimiser. L-BFGS builds a picture of the curvature from its last few gradients, and its line
    search picks the step length, so there is no learning rate to tune. Its stopping tests use absolute
    tolerances, so the objective is divided by its value at the start (which changes no minimiser).

    Args:
        objective: maps a ``(1, height, width, 3)`` image to loss terms, ``"total"`` among them.
        initial: the starting image, ``(height, width, 3)`` in [0, 1].
        num_iterations: L-BFGS iterations (each evaluates the objective and its gradient at least once).

    Returns:
        A :class:`Synthesis`; its history holds the terms at the start and after each iteration, and the number of
        evaluations made so far.
    """
    import scipy.optimize
    import threadpoolctl

    initial = _as_batch(_check_image(initial, "initial"))
    if num_iterations < 1:
        raise ValueError(f"expected at least one iteration, got {num_iterations}")
    value_and_gradient = _value_and_gradient(objective)
    shape = tuple(initial.shape)
    history = [{**objective(initial), "evaluations": 0}]
    scale = 1.0 / max(float(history[0]["total"]), 1e-30)
    latest: list[Terms] = []

    def loss_and_gradient(pixels: Array) -> tuple[float, Array]:
        terms, gradient = value_and_gradient(tf.constant(pixels.reshape(shape), dtype=tf.float32))
        latest[:] = [{**terms, "evaluations": int(latest[0]["evaluations"]) + 1 if latest else 1}]
        return float(terms["total"]) * scale, gradient.numpy().astype(np.float64).ravel() * scale

    # SciPy's L-BFGS-B does its vector algebra with BLAS; more than one BLAS thread only adds spinning overhead.
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        result = scipy.optimize.minimize(
            loss_and_gradient, initial.numpy().astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * int(np.prod(shape)), callback=lambda _: history.append(latest[0]),
            options={"maxiter": num_iterations, "maxcor": 20, "ftol": 0.0, "gtol": 0.0})
    image = np.clip(result.x.reshape(shape)[0], 0.0, 1.0).astype(np.float32)
    return Synthesis(image, _history_arrays(history))


def optimise_adam(objective: Objective, initial: Array, num_steps: int, learning_rate: float) -> Synthesis:
    """Minimise ``objective`` over the pixels with Adam, clipping the pixels to [0, 1] after every step.

    Adam divides each pixel's gradient by a running estimate of its size, so that ``learning_rate`` is roughly
    how far a pixel moves per step. The objective is divided by its value at the start, as in
    :func:`optimise_lbfgs`, so that the gradients are not lost under Adam's ``epsilon``.
    """
    initial = _as_batch(_check_image(initial, "initial"))
    if num_steps < 1:
        raise ValueError(f"expected at least one step, got {num_steps}")
    if learning_rate <= 0:
        raise ValueError(f"expected a positive learning rate, got {learning_rate}")
    image = tf.Variable(initial)
    scale = 1.0 / max(float(objective(initial)["total"]), 1e-30)
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    optimizer.build([image])

    @tf.function
    def train_step() -> Terms:
        with tf.GradientTape() as tape:
            terms = objective(image)
            scaled = terms["total"] * scale
        optimizer.apply_gradients([(tape.gradient(scaled, image), image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        return terms  # the terms before this step's update

    history = [{**train_step(), "evaluations": step} for step in range(num_steps)]
    history.append({**objective(image), "evaluations": num_steps})
    return Synthesis(image.numpy()[0], _history_arrays(history))


def synthesise(name: str, extractor: FeatureExtractor, initial: Array, num_iterations: int, *,
               optimiser: str = "lbfgs", learning_rate: float | None = None, content_image: Array | None = None,
               style_image: Array | None = None, content_layer: str | None = None,
               style_layers: Sequence[str] | None = None, content_weight: float | None = None,
               style_weight: float = 1.0, tv_weight: float | None = None) -> Synthesis:
    """Build a :class:`StyleObjective`, optimise an image for it, and cache the result.

    The cache key holds everything the result depends on: the extractor's weights, fingerprints of the images,
    the layers, the weights, the optimiser and its iterations. A rebuild therefore optimises nothing, and a
    change to any input optimises again. The arguments not listed are those of :class:`StyleObjective`.

    Args:
        name: the cache entry's name (letters, digits, ``-`` and ``_``).
        initial: the starting image.
        num_iterations: L-BFGS iterations or Adam steps.
        optimiser: ``"lbfgs"`` or ``"adam"`` (which needs ``learning_rate``).
    """
    if optimiser not in ("lbfgs", "adam"):
        raise ValueError(f"unknown optimiser {optimiser!r}; expected 'lbfgs' or 'adam'")
    if optimiser == "adam" and learning_rate is None:
        raise ValueError("optimiser='adam' needs a learning_rate")
    # built before the cache lookup: it validates the layers and images, and its targets cost one forward pass
    objective = StyleObjective(extractor, content_image=content_image, style_image=style_image,
                               content_layer=content_layer, style_layers=style_layers,
                               content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight)
    config = {
        "extractor": extractor.fingerprint, "initial": array_fingerprint(initial), "iterations": num_iterations,
        "optimiser": optimiser, "learning_rate": learning_rate,
        "content": None if content_image is None else array_fingerprint(content_image),
        "style": None if style_image is None else array_fingerprint(style_image),
        "content_layer": objective.content_layer if content_image is not None else None,
        "style_layers": list(objective.style_layers) if style_image is not None else None,
        "weights": [objective.content_weight, objective.style_weight, objective.tv_weight],
    }

    def compute() -> dict[str, Array]:
        if optimiser == "lbfgs":
            result = optimise_lbfgs(objective, initial, num_iterations)
        else:
            result = optimise_adam(objective, initial, num_iterations, float(learning_rate))
        return {"image": result.image, **{f"history_{key}": values for key, values in result.history.items()}}

    arrays, from_cache = load_or_compute_arrays(name, config, compute)
    history = {key.removeprefix("history_"): values for key, values in arrays.items() if key.startswith("history_")}
    return Synthesis(arrays["image"], history, from_cache)
