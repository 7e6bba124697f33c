"""The layers of a convolutional network, written in NumPy: convolution, pooling, dropout, receptive fields.

Everything here follows Keras's conventions, so that the results can be compared with ``keras.layers`` one to
one: images are channels-last, ``(height, width, channels)`` or a batch ``(n, height, width, channels)``;
kernels are ``(kernel_height, kernel_width, in_channels, out_channels)``; ``padding`` is ``"valid"`` (none),
``"same"`` (TensorFlow's rule, which pads the extra pixel after when the total is odd) or an explicit number of
zeros on every side.

Like every deep-learning library, :func:`conv2d` computes a *cross-correlation*: the kernel is not flipped.
:func:`convolve2d` flips it, which is the convolution of signal processing.

References:
    Dumoulin, V. & Visin, F. (2016). A guide to convolution arithmetic for deep learning. arXiv:1603.07285.
    Goodfellow, I., Bengio, Y. & Courville, A. (2016). *Deep Learning*, chapter 9. MIT Press.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Array = np.ndarray
Padding = str | int

#: The Sobel kernel for changes along x (left to right): large where a *vertical* edge is (Sobel & Feldman 1968).
SOBEL_X: Array = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
#: The Sobel kernel for changes along y (top to bottom): large where a *horizontal* edge is.
SOBEL_Y: Array = SOBEL_X.T.copy()

#: Luma weights of ITU-R BT.601 (red, green, blue), the usual RGB-to-grey conversion.
LUMA_WEIGHTS: Array = np.array([0.299, 0.587, 0.114])

# --------------------------------------------------------------------------------------------------------------
# Output sizes and padding
# --------------------------------------------------------------------------------------------------------------


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def padding_amounts(size: int, kernel_size: int, stride: int = 1, padding: Padding = "valid") -> tuple[int, int]:
    """Zeros added before and after one axis of length ``size``.

    ``"same"`` pads just enough for ``ceil(size / stride)`` outputs, as TensorFlow does: the total is
    ``max((ceil(size / stride) - 1) * stride + kernel_size - size, 0)``, and an odd total puts the extra zero
    after.

    Raises:
        ValueError: for an unknown padding or a non-positive size, kernel size or stride.
    """
    size, kernel_size, stride = (_check_positive(n, v) for n, v in
                                 (("size", size), ("kernel_size", kernel_size), ("stride", stride)))
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = max((math.ceil(size / stride) - 1) * stride + kernel_size - size, 0)
        return total // 2, total - total // 2
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return int(padding), int(padding)
    raise ValueError(f"padding must be 'valid', 'same' or a non-negative integer, got {padding!r}")


def output_size(size: int, kernel_size: int, stride: int = 1, padding: Padding = 0) -> int:
    """Length of a convolution's (or pooling's) output along one axis: ``floor((n + 2p - k) / s) + 1``.

    Implements: eq-cnn-output-size

    Args:
        size: the input length ``n``.
        kernel_size: the window length ``k``.
        stride: the step ``s`` between windows.
        padding: zeros ``p`` on each side, or ``"valid"`` (``p = 0``) or ``"same"`` (see :func:`padding_amounts`).

    Raises:
        ValueError: if the window does not fit in the padded input even once.
    """
    before, after = padding_amounts(size, kernel_size, stride, padding)
    padded = size + before + after
    if kernel_size > padded:
        raise ValueError(f"a window of {kernel_size} does not fit in an input of {size} padded to {padded}")
    return (padded - kernel_size) // stride + 1


# --------------------------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------------------------


def _as_batch(images: Array, name: str = "images") -> tuple[Array, bool]:
    """``(h, w, c)`` or ``(n, h, w, c)`` → ``(n, h, w, c)``, and whether a batch axis was added."""
    images = np.asarray(images)
    if images.ndim == 3:
        return images[None], True
    if images.ndim == 4:
        return images, False
    raise ValueError(f"expected {name} of shape (height, width, channels) or (n, height, width, channels), "
                     f"got {images.shape}")


def _pad(images: Array, kernel_hw: tuple[int, int], stride: int, padding: Padding, value: float = 0.0) -> Array:
    """Pad the two spatial axes of a ``(n, h, w, c)`` batch for windows of ``kernel_hw``."""
    rows = padding_amounts(images.shape[1], kernel_hw[0], stride, padding)
    cols = padding_amounts(images.shape[2], kernel_hw[1], stride, padding)
    return np.pad(images, ((0, 0), rows, cols, (0, 0)), constant_values=value)


def _windows(padded: Array, kernel_hw: tuple[int, int], stride: int) -> Array:
    """Every ``kernel_hw`` window of a padded batch, ``stride`` apart: ``(n, out_h, out_w, c, kh, kw)``, a view."""
    if kernel_hw[0] > padded.shape[1] or kernel_hw[1] > padded.shape[2]:
        raise ValueError(f"a {kernel_hw[0]}×{kernel_hw[1]} window does not fit in the padded input "
                         f"{padded.shape[1]}×{padded.shape[2]}")
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel_hw, axis=(1, 2))
    return windows[:, ::stride, ::stride]


def conv2d(images: Array, kernels: Array, stride: int = 1, padding: Padding = "valid",
           bias: Array | None = None) -> Array:
    """A convolutional layer's linear part: every kernel stamped over every position of the images.

    ``out[n, i, j, o] = sum over (a, b, c) of padded[n, i*s + a, j*s + b, c] * kernels[a, b, c, o] + bias[o]``,
    a cross-correlation, as in ``keras.layers.Conv2D``.

    Implements: eq-cnn-conv-layer

    Args:
        images: ``(h, w, c_in)`` or ``(n, h, w, c_in)``.
        kernels: ``(kh, kw, c_in, c_out)``; each kernel spans *all* input channels.
        stride: the step between neighbouring windows (both axes).
        padding: ``"valid"``, ``"same"`` or zeros per side.
        bias: ``(c_out,)`` or ``None``.

    Returns:
        ``(out_h, out_w, c_out)`` (or with the batch axis, if the input had one); sizes from :func:`output_size`.

    Raises:
        ValueError: if the shapes do not fit together; the message names the expected and the actual shapes.
    """
    batch, added_axis = _as_batch(images)
    kernels = np.asarray(kernels)
    if kernels.ndim != 4 or kernels.shape[2] != batch.shape[3]:
        raise ValueError(f"expected kernels of shape (kh, kw, {batch.shape[3]}, c_out) for images with "
                         f"{batch.shape[3]} channel(s), got {kernels.shape}")
    if bias is not None and np.shape(bias) != (kernels.shape[3],):
        raise ValueError(f"expected a bias of shape ({kernels.shape[3]},), got {np.shape(bias)}")
    stride = _check_positive("stride", stride)
    windows = _windows(_pad(batch, kernels.shape[:2], stride, padding), kernels.shape[:2], stride)
    # windows[n, i, j] is the (c, kh, kw) patch under the stamp at output (i, j): multiply and sum
    out = np.tensordot(windows, kernels, axes=([3, 4, 5], [2, 0, 1]))
    if bias is not None:
        out = out + np.asarray(bias)
    return out[0] if added_axis else out


def correlate2d(image: Array, kernel: Array, stride: int = 1, padding: Padding = "valid") -> Array:
    """One 2-D kernel over one grey ``(h, w)`` image (:func:`conv2d` with one channel in and out).

    Implements: eq-cnn-correlation
    """
    image, kernel = np.asarray(image), np.asarray(kernel)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"expected a 2-D image and a 2-D kernel, got shapes {image.shape} and {kernel.shape}")
    return conv2d(image[:, :, None], kernel[:, :, None, None], stride, padding)[:, :, 0]


def convolve2d(image: Array, kernel: Array, stride: int = 1, padding: Padding = "valid") -> Array:
    """The convolution of signal processing: :func:`correlate2d` with the kernel flipped in both axes."""
    return correlate2d(image, np.asarray(kernel)[::-1, ::-1], stride, padding)


def sobel_edges(image: Array) -> dict[str, Array]:
    """Sobel responses of a grey ``(h, w)`` image, same size (zero padding).

    Implements: eq-cnn-sobel

    Returns:
        ``{"x": ..., "y": ..., "magnitude": ...}``: the responses to :data:`SOBEL_X` (vertical edges) and
        :data:`SOBEL_Y` (horizontal edges), and the gradient magnitude ``sqrt(x**2 + y**2)``.
    """
    gx = correlate2d(image, SOBEL_X, padding="same")
    gy = correlate2d(image, SOBEL_Y, padding="same")
    return {"x": gx, "y": gy, "magnitude": np.hypot(gx, gy)}


# --------------------------------------------------------------------------------------------------------------
# The other layers: non-linearity, pooling, dropout
# --------------------------------------------------------------------------------------------------------------


def relu(x: Array) -> Array:
    """The rectified linear unit, ``max(0, x)``, element by element."""
    return np.maximum(np.asarray(x), 0)


def max_pool2d(images: Array, pool_size: int = 2, stride: int | None = None, padding: Padding = "valid") -> Array:
    """The largest value in each ``pool_size``×``pool_size`` window, channel by channel (``MaxPooling2D``).

    Args:
        images: ``(h, w, c)`` or ``(n, h, w, c)``.
        pool_size: the window side.
        stride: the step between windows; ``None`` means ``pool_size`` (windows side by side, no overlap).
        padding: as in :func:`conv2d`; padded cells never win (they hold −∞).
    """
    batch, added_axis = _as_batch(images)
    pool_size = _check_positive("pool_size", pool_size)
    stride = pool_size if stride is None else _check_positive("stride", stride)
    padded = _pad(batch.astype(np.result_type(batch, np.float32)), (pool_size, pool_size), stride, padding, -np.inf)
    out = _windows(padded, (pool_size, pool_size), stride).max(axis=(4, 5))
    return out[0] if added_axis else out


def dropout(x: Array, rate: float, rng: np.random.Generator) -> Array:
    """Inverted dropout at training time: zero each value with probability ``rate``, scale survivors by 1/(1-rate).

    ``rate`` is the *drop* probability, as in ``keras.layers.Dropout(rate)``; the keep probability is
    ``1 - rate``. The scaling keeps every unit's expected value unchanged, so nothing changes at test time.

    Implements: eq-cnn-dropout

    Raises:
        ValueError: if ``rate`` is not in [0, 1).

    References:
        Srivastava, N., Hinton, G., Krizhevsky, A., Sutskever, I. & Salakhutdinov, R. (2014). Dropout: a simple
        way to prevent neural networks from overfitting. *JMLR* 15, 1929–1958.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate is the probability of dropping a unit and must be in [0, 1), got {rate}")
    x = np.asarray(x, dtype=float)
    keep = rng.random(x.shape) >= rate  # each unit survives with probability 1 - rate
    return np.where(keep, x / (1.0 - rate), 0.0)


# --------------------------------------------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Window:
    """A layer that slides a window (a convolution or a pooling), as far as geometry goes."""

    kernel_size: int
    stride: int = 1
    padding: Padding = "valid"
    name: str = ""


def receptive_fields(layers: Sequence[Window]) -> list[int]:
    """Side of the input region seen by one unit after each layer, by the recursion

    ``r_l = r_{l-1} + (k_l - 1) * j_{l-1}``, ``j_l = j_{l-1} * s_l``, starting from ``r_0 = j_0 = 1``,

    where ``j`` is the distance, in input pixels, between neighbouring units of a layer (the *jump*).
    Padding shifts a region but does not change its size.

    Implements: eq-cnn-receptive-field
    """
    field, jump, fields = 1, 1, []
    for layer in layers:
        field += (_check_positive("kernel_size", layer.kernel_size) - 1) * jump
        jump *= _check_positive("stride", layer.stride)
        fields.append(field)
    return fields


def receptive_field_mask(layers: Sequence[Window], input_size: int, output_index: tuple[int, int]) -> Array:
    """The input pixels that can change one output unit, found by brute force rather than by formula.

    Each layer is replaced by a sum over its window (:func:`conv2d` with a kernel of ones, same stride and
    padding), so every input pixel in the receptive field contributes a positive amount and every other pixel
    contributes nothing. One impulse per input pixel is pushed through the stack at once, as a batch.

    Returns:
        A boolean ``(input_size, input_size)`` mask, True where an impulse reaches ``output_index``.

    Raises:
        ValueError: if ``output_index`` is outside the last layer's output.
    """
    num_pixels = input_size * input_size
    activity = np.eye(num_pixels).reshape(num_pixels, input_size, input_size, 1)
    for layer in layers:
        ones = np.ones((layer.kernel_size, layer.kernel_size, 1, 1))
        activity = conv2d(activity, ones, layer.stride, layer.padding)
    row, col = output_index
    if not (0 <= row < activity.shape[1] and 0 <= col < activity.shape[2]):
        raise ValueError(f"output_index {output_index} is outside the {activity.shape[1]}×{activity.shape[2]} output")
    return (activity[:, row, col, 0] > 0).reshape(input_size, input_size)


# --------------------------------------------------------------------------------------------------------------
# Images to work on, and a picture of padding and stride
# --------------------------------------------------------------------------------------------------------------


def sample_photo(name: str = "china.jpg") -> Array:
    """One of scikit-learn's bundled photographs (``china.jpg`` or ``flower.jpg``, 427×640), RGB in [0, 1].

    Raises:
        ValueError: if ``name`` is not one of the bundled images.
    """
    from sklearn.datasets import load_sample_images

    bundle = load_sample_images()
    names = [path.rsplit("/", 1)[-1] for path in bundle.filenames]
    if name not in names:
        raise ValueError(f"unknown sample image {name!r}; scikit-learn ships {names}")
    return bundle.images[names.index(name)].astype(np.float32) / 255.0


def to_grey(rgb: Array) -> Array:
    """``(h, w, 3)`` RGB → ``(h, w)`` grey with the :data:`LUMA_WEIGHTS`."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image of shape (height, width, 3), got {rgb.shape}")
    return rgb @ LUMA_WEIGHTS.astype(rgb.dtype)


def glyph(letter: str = "A", side: int = 16) -> Array:
    """A letter drawn white on black in a ``side``×``side`` grey image in [0, 1] (PIL's bundled font)."""
    from PIL import Image, ImageDraw, ImageFont

    if len(letter) != 1:
        raise ValueError(f"expected a single character, got {letter!r}")
    canvas = Image.new("L", (side, side), 0)
    font = ImageFont.load_default(size=round(side * 0.9))
    ImageDraw.Draw(canvas).text((side / 2, side / 2), letter, fill=255, font=font, anchor="mm")
    return np.asarray(canvas, dtype=np.float32) / 255.0


def draw_windows(ax: Axes, size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Draw an input grid with its zero padding (grey), the first window (outline) and every window's centre.

    Each dot is one output unit, so the dots form the output grid; its side is :func:`output_size`.

    Returns:
        The output side.
    """
    from matplotlib.patches import Rectangle

    out = output_size(size, kernel_size, stride, padding)
    full = size + 2 * padding
    for r in range(full):
        for c in range(full):
            inside = padding <= r < padding + size and padding <= c < padding + size
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor="white" if inside else "#d9d9d9",
                                   edgecolor="#888888", linewidth=0.6))
    ax.add_patch(Rectangle((0, 0), kernel_size, kernel_size, fill=False, edgecolor="#D55E00", linewidth=2.2))
    centres = np.arange(out) * stride + kernel_size / 2
    grid_x, grid_y = np.meshgrid(centres, centres)
    ax.scatter(grid_x.ravel(), grid_y.ravel(), s=18, color="#0072B2", zorder=3)
    ax.set_xlim(-0.2, full + 0.2)
    ax.set_ylim(full + 0.2, -0.2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return out


# --------------------------------------------------------------------------------------------------------------
# Settings of the chapter, per profile
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CnnBasicsSettings:
    """What the "CNN basics" chapter works on. It trains nothing, so both profiles run the same."""

    photo: str = "china.jpg"
    glyph_side: int = 24
    dropout_rate: float = 0.25
    dropout_units: int = 100_000


SETTINGS: dict[str, CnnBasicsSettings] = {"quick": CnnBasicsSettings(), "full": CnnBasicsSettings()}
