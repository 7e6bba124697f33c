"""Inception modules (GoogLeNet): the operation count behind 1×1 "reduce" convolutions, a Keras ``inception_block``,
the blog post's two-module MNIST network and a global-average-pooling variant of it.

Conventions: images are ``channels_last``; every convolution in a module has stride 1 and ``same`` padding, so a
module keeps the height and width of its input and only changes the number of channels.

References:
    Szegedy, C. et al. (2015). Going deeper with convolutions. *CVPR*. arXiv:1409.4842.
    Lin, M., Chen, Q. & Yan, S. (2014). Network in network. *ICLR*. arXiv:1312.4400.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np

from mlbook.cache import evaluation_only, weights_config
from mlbook.data import MNIST_IMAGE_SHAPE
from mlbook.seeding import seeded

if TYPE_CHECKING:
    import keras
    from matplotlib.axes import Axes

    from mlbook.cache import TrainedModel
    from mlbook.data import ImageDataset

Head = Literal["flatten", "gap"]
HEADS: tuple[str, ...] = ("flatten", "gap")
NUM_CLASSES = 10
#: The gap head max-pools 4×4 between the modules: module 2 runs at 7×7 and its 5×5 kernels see 24×24 pixels.
GAP_POOL = 4


# --------------------------------------------------------------------------------------------------------------
# Counting multiplications
# --------------------------------------------------------------------------------------------------------------


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"expected {name} to be a positive integer, got {value!r}")


def conv_multiplications(kernel_size: int, height: int, width: int, in_channels: int, out_channels: int) -> int:
    """Multiplications of a ``kernel_size``² convolution with stride 1 and ``same`` padding (biases not counted).

    Each of the ``height · width · out_channels`` outputs is a dot product of ``kernel_size² · in_channels`` terms:
    ``k² · H · W · C_in · C_out``. (Near the border ``same`` padding multiplies by zeros; they are counted, as a
    GPU computes them too.)

    Implements: eq-inception-multiplications

    Raises:
        ValueError: if any size is not a positive integer.
    """
    _check_positive(kernel_size=kernel_size, height=height, width=width, in_channels=in_channels,
                    out_channels=out_channels)
    return int(kernel_size) ** 2 * int(height) * int(width) * int(in_channels) * int(out_channels)


@dataclasses.dataclass(frozen=True)
class InceptionBranches:
    """The widths of an inception module, named as in GoogLeNet's table 1.

    Attributes:
        f1: output channels of the 1×1 branch ("#1×1").
        r3, f3: the 1×1 reduction before the 3×3 convolution ("#3×3 reduce") and the 3×3's output ("#3×3").
        r5, f5: the same for the 5×5 branch.
        fp: the 1×1 projection after the 3×3 max-pooling ("pool proj").
    """

    f1: int
    r3: int
    f3: int
    r5: int
    f5: int
    fp: int

    def __post_init__(self) -> None:
        _check_positive(**dataclasses.asdict(self))

    @property
    def out_channels(self) -> int:
        """Channels of the concatenated output: ``f1 + f3 + f5 + fp``."""
        return self.f1 + self.f3 + self.f5 + self.fp


#: GoogLeNet's first module, "inception (3a)": 28×28×192 in, 256 channels out (Szegedy et al., 2015, table 1).
INCEPTION_3A = InceptionBranches(f1=64, r3=96, f3=128, r5=16, f5=32, fp=32)
INCEPTION_3A_INPUT = (28, 28, 192)


def inception_multiplications(
    input_shape: tuple[int, int, int], branches: InceptionBranches, reduced: bool = True
) -> dict[str, int]:
    """Multiplications of each branch of an inception module on an ``(height, width, channels)`` input.

    ``reduced=False`` is the paper's *naive* module: the 3×3 and 5×5 convolutions read all input channels, and
    the pooling branch has no projection (max-pooling multiplies nothing). ``reduced=True`` adds the 1×1
    reductions and the pool projection.

    Returns:
        ``{"1x1": ..., "3x3": ..., "5x5": ..., "pool": ...}``; each branch's count includes its 1×1 reduction.
    """
    if len(input_shape) != 3:
        raise ValueError(f"expected input_shape (height, width, channels), got {input_shape}")
    height, width, channels = input_shape
    conv = lambda k, c_in, c_out: conv_multiplications(k, height, width, c_in, c_out)  # noqa: E731
    if not reduced:
        return {"1x1": conv(1, channels, branches.f1), "3x3": conv(3, channels, branches.f3),
                "5x5": conv(5, channels, branches.f5), "pool": 0}
    return {
        "1x1": conv(1, channels, branches.f1),
        "3x3": conv(1, channels, branches.r3) + conv(3, branches.r3, branches.f3),
        "5x5": conv(1, channels, branches.r5) + conv(5, branches.r5, branches.f5),
        "pool": conv(1, channels, branches.fp),
    }


# --------------------------------------------------------------------------------------------------------------
# The module in Keras, and its parameter count
# --------------------------------------------------------------------------------------------------------------


def inception_block(x: keras.KerasTensor, branches: InceptionBranches, name: str = "inception") -> keras.KerasTensor:
    """An inception module with dimension reductions (Szegedy et al., 2015, figure 2b), Keras functional API.

    Four branches read ``x`` in parallel — 1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 max-pool (stride 1) → 1×1 — and their
    outputs are concatenated along the channels. Every convolution is followed by a ReLU, as in the paper.

    Returns:
        A tensor with the height and width of ``x`` and ``branches.out_channels`` channels.
    """
    from keras import layers

    def conv(inputs: keras.KerasTensor, filters: int, size: int, suffix: str) -> keras.KerasTensor:
        return layers.Conv2D(filters, size, padding="same", activation="relu", name=f"{name}_{suffix}")(inputs)

    branch_1 = conv(x, branches.f1, 1, "1x1")
    branch_3 = conv(conv(x, branches.r3, 1, "3x3_reduce"), branches.f3, 3, "3x3")
    branch_5 = conv(conv(x, branches.r5, 1, "5x5_reduce"), branches.f5, 5, "5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv(pooled, branches.fp, 1, "pool_proj")
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([branch_1, branch_3, branch_5, branch_pool])


def conv_params(kernel_size: int, in_channels: int, out_channels: int) -> int:
    """Weights and biases of a convolution: ``k² · C_in · C_out + C_out``."""
    _check_positive(kernel_size=kernel_size, in_channels=in_channels, out_channels=out_channels)
    return kernel_size**2 * in_channels * out_channels + out_channels


def inception_block_params(in_channels: int, branches: InceptionBranches) -> int:
    """Trainable parameters of :func:`inception_block` on an input with ``in_channels`` channels."""
    b = branches
    return (conv_params(1, in_channels, b.f1)
            + conv_params(1, in_channels, b.r3) + conv_params(3, b.r3, b.f3)
            + conv_params(1, in_channels, b.r5) + conv_params(5, b.r5, b.f5)
            + conv_params(1, in_channels, b.fp))


# --------------------------------------------------------------------------------------------------------------
# The blog post's MNIST network and a global-average-pooling variant
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InceptionNetSizes:
    """Widths of the two-module network: every branch of module 1 outputs ``map1`` channels, of module 2 ``map2``;
    each 1×1 reduction outputs ``reduce1x1``; ``num_fc1`` hidden units in the flatten head."""

    map1: int
    map2: int
    reduce1x1: int
    num_fc1: int

    def __post_init__(self) -> None:
        _check_positive(**dataclasses.asdict(self))

    def module(self, which: int) -> InceptionBranches:
        """The branches of module 1 or 2 (each branch outputs ``map1`` or ``map2`` channels)."""
        if which not in (1, 2):
            raise ValueError(f"the network has modules 1 and 2, got {which!r}")
        width = self.map1 if which == 1 else self.map2
        return InceptionBranches(width, self.reduce1x1, width, self.reduce1x1, width, width)


#: The blog post's sizes: ``map1 = 32``, ``map2 = 64``, ``reduce1x1 = 16``, ``num_fc1 = 700``.
ORIGINAL_SIZES = InceptionNetSizes(map1=32, map2=64, reduce1x1=16, num_fc1=700)


def build_inception_net(
    sizes: InceptionNetSizes, head: Head = "flatten", dropout_rate: float = 0.5,
    image_shape: tuple[int, int, int] = MNIST_IMAGE_SHAPE,
) -> keras.Model:
    """The post's network (``head="flatten"``) or its global-average-pooling variant (``head="gap"``).

    ``flatten``: module 1 → module 2 → flatten → dense ``num_fc1`` (ReLU) → dropout → dense 10 logits, all at the
    input's full resolution, as in the post.
    ``gap``: module 1 → 4×4 max-pool → module 2 → global average pooling → dropout → dense 10 logits. GoogLeNet
    pools between its stages too; here the pooling lets module 2's 5×5 kernels see 24×24 input pixels, nearly a
    whole digit, so the features that get averaged describe the digit rather than a stroke, and it cuts module 2's
    work sixteenfold.

    Args:
        dropout_rate: the fraction of units *dropped* while training (Keras's ``rate``, not TF1's keep_prob).

    Raises:
        ValueError: for an unknown head or a dropout rate outside [0, 1).
    """
    import keras
    from keras import layers

    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {HEADS}")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"expected a dropout rate in [0, 1), got {dropout_rate}")
    inputs = keras.Input(image_shape, name="images")
    x = inception_block(inputs, sizes.module(1), name="inception1")
    if head == "gap":
        x = layers.MaxPooling2D(GAP_POOL, name="pool")(x)
    x = inception_block(x, sizes.module(2), name="inception2")
    if head == "flatten":
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(sizes.num_fc1, activation="relu", name="fc1")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="global_average")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    logits = layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, logits, name=f"inception_{head}")


def inception_net_params(
    sizes: InceptionNetSizes, head: Head = "flatten", image_shape: tuple[int, int, int] = MNIST_IMAGE_SHAPE
) -> dict[str, int]:
    """Parameters of :func:`build_inception_net`, by part, counted without building it (the post's own sizes
    would allocate 140 M weights).

    Returns:
        ``{"inception1": ..., "inception2": ..., "fc1": ..., "logits": ...}`` (``fc1`` is 0 for the gap head).
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {HEADS}")
    height, width, channels = image_shape
    first, second = sizes.module(1), sizes.module(2)
    counts = {"inception1": inception_block_params(channels, first),
              "inception2": inception_block_params(first.out_channels, second)}
    if head == "flatten":
        features = height * width * second.out_channels
        counts["fc1"] = features * sizes.num_fc1 + sizes.num_fc1
        counts["logits"] = sizes.num_fc1 * NUM_CLASSES + NUM_CLASSES
    else:
        counts["fc1"] = 0
        counts["logits"] = second.out_channels * NUM_CLASSES + NUM_CLASSES
    return counts


# --------------------------------------------------------------------------------------------------------------
# Training, evaluation and timing
# --------------------------------------------------------------------------------------------------------------


def train_inception_net(data: ImageDataset, cfg: InceptionSettings, head: Head, seed: int) -> TrainedModel:
    """Build the ``head`` network for ``data`` and train it, or load its weights from the cache.

    The test images are evaluated after every epoch, to draw the curves; nothing is chosen by them.

    Returns:
        :class:`mlbook.cache.TrainedModel`: the model, its per-epoch history (from the cache entry on a hit).
    """
    from mlbook.cache import load_or_train
    from mlbook.training import fit_classifier

    training = cfg.training(head)
    config = {**cfg.model_config(head), "seed": seed, "data": data.source}
    with seeded(seed):
        model = build_inception_net(cfg.sizes, head, training.dropout_rate, image_shape=data.image_shape)
        return load_or_train(
            model, f"inception-{head}", config,
            lambda m: fit_classifier(m, (data.x_train, data.y_train), (data.x_test, data.y_test),
                                     training.num_epochs, training.learning_rate, cfg.batch_size),
        )


def time_branch(layers_: list[keras.layers.Layer], inputs: np.ndarray, repeats: int) -> float:
    """Best-of-``repeats`` seconds for one forward pass of ``inputs`` through a chain of layers (built first)."""
    import time

    import tensorflow as tf

    @tf.function
    def forward(x: tf.Tensor) -> tf.Tensor:
        for layer in layers_:
            x = layer(x)
        return x

    x = inputs
    for layer in layers_:  # build the layers' variables eagerly, outside the traced function
        x = layer(x)
    forward(inputs)  # trace outside the timing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        forward(inputs).numpy()
        best = min(best, time.perf_counter() - start)
    return best


# --------------------------------------------------------------------------------------------------------------
# A diagram of the module
# --------------------------------------------------------------------------------------------------------------


def draw_inception_module(ax: Axes, reduced: bool, branches: InceptionBranches = INCEPTION_3A) -> None:
    """Draw the naive (``reduced=False``) or reduced inception module as boxes and arrows on ``ax``."""
    reduce_colour, conv_colour, pool_colour, io_colour = "#F0E442", "#56B4E9", "#E69F00", "#dddddd"
    columns = {"1x1": 0.0, "3x3": 1.0, "5x5": 2.0, "pool": 3.0}
    stacks = {
        "1x1": [(f"1×1 conv, {branches.f1}", conv_colour)],
        "3x3": ([(f"1×1 conv, {branches.r3}", reduce_colour)] if reduced else [])
        + [(f"3×3 conv, {branches.f3}", conv_colour)],
        "5x5": ([(f"1×1 conv, {branches.r5}", reduce_colour)] if reduced else [])
        + [(f"5×5 conv, {branches.f5}", conv_colour)],
        "pool": [("3×3 max-pool", pool_colour)] + ([(f"1×1 conv, {branches.fp}", reduce_colour)] if reduced else []),
    }
    box = {"boxstyle": "round,pad=0.3", "edgecolor": "#333333"}
    arrow = {"arrowstyle": "->", "color": "#333333", "lw": 1.0}
    ax.text(1.5, 3.0, "previous layer", ha="center", va="center", fontsize=8, bbox={**box, "facecolor": io_colour})
    ax.text(1.5, 0.0, "concatenate", ha="center", va="center", fontsize=8, bbox={**box, "facecolor": io_colour})
    for key, x in columns.items():
        levels = [2.0, 1.0] if len(stacks[key]) == 2 else [1.5]
        previous = (1.5, 3.0)
        for (label, colour), y in zip(stacks[key], levels):
            ax.annotate("", xy=(x, y + 0.18), xytext=(previous[0], previous[1] - 0.18), arrowprops=arrow)
            ax.text(x, y, label, ha="center", va="center", fontsize=7.5, bbox={**box, "facecolor": colour})
            previous = (x, y)
        ax.annotate("", xy=(1.5, 0.18), xytext=(previous[0], previous[1] - 0.18), arrowprops=arrow)
    ax.set_xlim(-0.6, 3.6)
    ax.set_ylim(-0.4, 3.4)
    ax.set_axis_off()
    ax.set_title("with 1×1 reductions" if reduced else "naive", fontsize=10)


# --------------------------------------------------------------------------------------------------------------
# The chapter's settings
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HeadTraining:
    """How one head's network is trained: epochs, Adam's learning rate and the dropout rate before the logits."""

    num_epochs: int
    learning_rate: float
    dropout_rate: float


@dataclasses.dataclass(frozen=True)
class InceptionSettings:
    """Sizes for the chapter :ref:`ch-inception`: the trained networks' widths and their training."""

    sizes: InceptionNetSizes
    flatten: HeadTraining
    gap: HeadTraining
    batch_size: int
    timing_batch_size: int = evaluation_only()
    timing_repeats: int = evaluation_only()

    def training(self, head: Head) -> HeadTraining:
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; expected one of {HEADS}")
        return self.flatten if head == "flatten" else self.gap

    def model_config(self, head: Head) -> Mapping[str, object]:
        """Everything that changes a trained model's weights: the cache key of :func:`mlbook.cache.load_or_train`."""
        return weights_config(self.training(head), head=head, sizes=self.sizes, batch_size=self.batch_size)


SETTINGS = {
    # quick: the post's architecture at a quarter of its widths, a few epochs on scikit-learn's digits. The gap
    # head has ~400 times fewer weights to move and needs more, larger steps.
    "quick": InceptionSettings(
        sizes=InceptionNetSizes(map1=8, map2=16, reduce1x1=8, num_fc1=64),
        flatten=HeadTraining(num_epochs=2, learning_rate=1e-3, dropout_rate=0.5),
        gap=HeadTraining(num_epochs=8, learning_rate=3e-3, dropout_rate=0.0),
        batch_size=32, timing_batch_size=4, timing_repeats=3),
    # full: the post's own widths (140 M weights in fc1) on MNIST, batch 50 as in the post (12,000 steps).
    "full": InceptionSettings(
        sizes=ORIGINAL_SIZES,
        flatten=HeadTraining(num_epochs=10, learning_rate=1e-3, dropout_rate=0.5),
        gap=HeadTraining(num_epochs=15, learning_rate=3e-3, dropout_rate=0.0),
        batch_size=50, timing_batch_size=32, timing_repeats=5),
}
