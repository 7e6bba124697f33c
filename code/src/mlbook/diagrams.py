"""Diagrams drawn by code: the book's schematic figures, computed rather than pasted.

A network's nodes and weights, one step of a convolution's stamp, max-pooling, a recurrent cell and its
unrolling in time, and a crop window on a photograph. Each function draws on a new figure, or on an ``ax`` it is
given, and returns the figure. The numbers a diagram shows come from the package's own functions (for example
:func:`mlbook.convolution.correlate2d`), so the picture agrees with the code.

The artists that a reader counts carry a ``gid`` (see the ``*_GID`` constants): the tests read them back to check,
say, that a network has one circle per node or that an output cell shows what the convolution computes. Nothing
here changes matplotlib's global state.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.text import Text

from mlbook.convolution import correlate2d, max_pool2d
from mlbook.plot import PALETTE

Array = np.ndarray

#: ``gid`` of a network's node circles, of its bias nodes and of every weight (arrow) between two nodes.
NODE_GID, BIAS_GID, EDGE_GID = "node", "bias", "edge"
#: ``gid`` of the number texts in the grids of :func:`draw_convolution_step` and :func:`draw_max_pooling`.
INPUT_GID, KERNEL_GID, OUTPUT_GID = "input", "kernel", "output"
#: ``gid`` of the highlighted window (input) and cell (output) of a convolution step, and of a crop's window.
WINDOW_GID, PRODUCED_GID, CROP_GID = "window", "produced", "crop-window"
#: ``gid`` of the boxes of a recurrent network's input, hidden state and output.
INPUT_BOX_GID, HIDDEN_BOX_GID, OUTPUT_BOX_GID = "x-box", "h-box", "p-box"

INK = "#333333"
FAINT = "#b0b0b0"
HIGHLIGHT = PALETTE[1]  # vermilion
#: Light tints for the windows of a pooling diagram (one per window, cycled).
TINTS: tuple[str, ...] = ("#cfe3f3", "#f7d9c4", "#cdebdf", "#eed5e5", "#f6e6c2", "#d9eef9")

# --------------------------------------------------------------------------------------------------------------
# Shared drawing helpers
# --------------------------------------------------------------------------------------------------------------


def _canvas(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A new figure and axes of ``figsize`` inches (or ``ax`` and its figure), with no frame and equal units."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    ax.set_axis_off()
    ax.set_aspect("equal")
    return fig, ax


def _number(value: float) -> str:
    """A value as a short label: integers without a decimal point, others to two decimals; a real minus sign."""
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
    return text.replace("-", "\u2212")


def parse_number(text: str) -> float:
    """The value of a label written by a diagram (the inverse of its formatting, real minus sign included)."""
    return float(text.replace("\u2212", "-"))


def _node(ax: Axes, centre: tuple[float, float], text: str = "", *, radius: float = 0.3, gid: str = NODE_GID,
          facecolor: str = "white", edgecolor: str = INK, linestyle: str = "-") -> Circle:
    """A circle with ``text`` in its centre."""
    circle = Circle(centre, radius, facecolor=facecolor, edgecolor=edgecolor, linewidth=1.4, linestyle=linestyle,
                    zorder=3, gid=gid)
    ax.add_patch(circle)
    if text:
        ax.text(*centre, text, ha="center", va="center", fontsize=12, zorder=4)
    return circle


def _box(ax: Axes, centre: tuple[float, float], text: str, *, width: float = 1.1, height: float = 0.6,
         gid: str | None = None, facecolor: str = "white", fontsize: float = 12) -> FancyBboxPatch:
    """A rounded box with ``text`` in its centre."""
    x, y = centre
    box = FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02,rounding_size=0.12",
                         facecolor=facecolor, edgecolor=INK, linewidth=1.4, zorder=3, gid=gid)
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=4)
    return box


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], *, label: str = "",
           label_at: float = 0.5, label_offset: tuple[float, float] = (0.0, 0.0), source: Patch | None = None,
           target: Patch | None = None, color: str = INK, linewidth: float = 1.3, linestyle: str = "-",
           connection: str = "arc3", gid: str | None = EDGE_GID, fontsize: float = 11) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end``, clipped at the ``source`` and ``target`` patches, with an optional label.

    The label sits at the fraction ``label_at`` of the straight line from start to end, moved by ``label_offset``,
    on a white background so that lines crossing it do not hide it.
    """
    arrow = FancyArrowPatch(start, end, patchA=source, patchB=target, arrowstyle="-|>", mutation_scale=11,
                            color=color, linewidth=linewidth, linestyle=linestyle, connectionstyle=connection,
                            shrinkA=1, shrinkB=1, zorder=2, gid=gid)
    ax.add_patch(arrow)
    if label:
        (x0, y0), (x1, y1) = start, end
        ax.text(x0 + label_at * (x1 - x0) + label_offset[0], y0 + label_at * (y1 - y0) + label_offset[1], label,
                ha="center", va="center", fontsize=fontsize, color=color, zorder=5,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    return arrow


def _grid(ax: Axes, values: Array, origin: tuple[float, float], *, gid: str, title: str = "",
          tints: Array | None = None, bold: Array | None = None, fontsize: float = 11) -> list[Text]:
    """A table of numbers, one unit square per value, with its top-left corner at ``origin`` (y points up).

    Args:
        values: 2-D array; row 0 is drawn at the top.
        tints: an array of colours (or ``None`` entries) of the same shape, for the cells' backgrounds.
        bold: a boolean array of the same shape: which numbers to set in bold.

    Returns:
        The number texts in row-major order; each carries ``gid``.
    """
    x0, y0 = origin
    texts = []
    for (r, c), value in np.ndenumerate(values):
        tint = None if tints is None else tints[r, c]
        ax.add_patch(Rectangle((x0 + c, y0 - r - 1), 1, 1, facecolor=tint or "white", edgecolor=FAINT, linewidth=0.8))
        weight = "bold" if bold is not None and bold[r, c] else "normal"
        texts.append(ax.text(x0 + c + 0.5, y0 - r - 0.5, _number(value), ha="center", va="center", fontsize=fontsize,
                             fontweight=weight, gid=gid))
    if title:
        ax.text(x0 + values.shape[1] / 2, y0 + 0.35, title, ha="center", va="bottom", fontsize=fontsize)
    return texts


def _outline(ax: Axes, top_left: tuple[float, float], height: float, width: float, gid: str) -> Rectangle:
    """A thick highlighted frame around ``height`` × ``width`` cells below and right of ``top_left``."""
    x, y = top_left
    frame = Rectangle((x, y - height), width, height, fill=False, edgecolor=HIGHLIGHT, linewidth=2.8, zorder=4,
                      gid=gid)
    ax.add_patch(frame)
    return frame


def _as_matrix(values: Array, name: str) -> Array:
    """``values`` as a 2-D float array, or a ValueError that names ``name`` and the shape that came."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D {name} of shape (rows, columns), got {values.shape}")
    return values


# --------------------------------------------------------------------------------------------------------------
# A fully connected network
# --------------------------------------------------------------------------------------------------------------


def draw_network(layer_sizes: Sequence[int] = (2, 3, 2), layer_names: Sequence[str] = ("I", "J", "K"),
                 bias: bool = True, ax: Axes | None = None) -> Figure:
    """A fully connected network: one circle per node, one arrow per weight, and a bias node under each layer.

    The first node of each layer is named after its layer in lower case (``i``, ``j``, ``k``), and the weights
    along that path are labelled ``W_ij``, ``W_jk``; the bias node ``b`` outputs 1, so its weights ``W_bj`` play
    the part of the biases :math:`\\theta_j`.

    Args:
        layer_sizes: nodes per layer, input first (bias nodes not counted).
        layer_names: one capital letter per layer.
        bias: whether to draw a bias node (and its weights) under every layer but the last.
        ax: axes to draw on; a new figure when ``None``.

    Returns:
        The figure. It holds ``sum(layer_sizes)`` circles with ``gid`` :data:`NODE_GID`, one per bias node with
        :data:`BIAS_GID`, and ``sum((n_in + bias) * n_out)`` arrows with :data:`EDGE_GID`.

    Raises:
        ValueError: for fewer than two layers, a size below 1, or a name per layer missing.
    """
    sizes = [int(n) for n in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"expected at least two positive layer sizes, got {tuple(layer_sizes)}")
    if len(layer_names) != len(sizes):
        raise ValueError(f"expected {len(sizes)} layer names (one per layer), got {len(layer_names)}")
    top, bottom = (max(sizes) - 1) / 2, -(max(sizes) - 1) / 2 - bias  # the bias nodes share the lowest row
    fig, ax = _canvas(ax, (2.3 * len(sizes) + 0.6, 0.8 * (top - bottom) + 2.0))
    roles = ["input"] + ["hidden"] * (len(sizes) - 2) + ["output"]
    spacing = 2.6
    layers: list[list[Circle]] = []
    biases: list[Circle | None] = []
    for index, (size, name, role) in enumerate(zip(sizes, layer_names, roles)):
        x = spacing * index
        ys = (size - 1) / 2 - np.arange(size)
        letter = name.lower()
        layers.append([_node(ax, (x, y), f"${letter}$" if n == 0 else "", facecolor="white" if n else "#e8f1f8")
                       for n, y in enumerate(ys)])
        has_bias = bias and index < len(sizes) - 1
        biases.append(_node(ax, (x, bottom), "1", gid=BIAS_GID, facecolor="#f2f2f2", linestyle="--")
                      if has_bias else None)
        if has_bias:
            ax.text(x - 0.42, bottom, "$b$", ha="right", va="center", fontsize=12)
        ax.text(x, top + 0.5, f"${name}$ ({role})", ha="center", va="bottom", fontsize=11)
    for index in range(len(sizes) - 1):
        here, there = layer_names[index].lower(), layer_names[index + 1].lower()
        sources = layers[index] + ([biases[index]] if biases[index] is not None else [])
        for s, source in enumerate(sources):
            for t, target in enumerate(layers[index + 1]):
                is_bias = biases[index] is not None and s == len(sources) - 1
                named = t == 0 and (s == 0 or is_bias)
                label = f"$W_{{{'b' if is_bias else here}{there}}}$" if named else ""
                _arrow(ax, source.center, target.center, source=source, target=target, label=label,
                       label_at=0.35 if is_bias else 0.5, label_offset=(0.0, 0.0 if is_bias else 0.22),
                       color=INK if named else FAINT, linewidth=1.5 if named else 0.9)
    ax.set_xlim(-0.9, spacing * (len(sizes) - 1) + 0.9)
    ax.set_ylim(bottom - 0.45, top + 1.0)
    return fig


# --------------------------------------------------------------------------------------------------------------
# Convolution and pooling
# --------------------------------------------------------------------------------------------------------------


def draw_convolution_step(image: Array, kernel: Array, position: tuple[int, int] = (0, 0),
                          ax: Axes | None = None) -> Figure:
    """One step of the stamp: the window of ``image`` under ``kernel`` at ``position``, and the cell it produces.

    Draws the input with the window outlined, the kernel, and the whole output map
    ``correlate2d(image, kernel)`` (no padding, stride 1) with the produced cell outlined, each as a table of
    numbers, and below them the multiply-and-add that gives the cell.

    Args:
        image: 2-D input.
        kernel: 2-D kernel, no larger than the image.
        position: ``(row, column)`` of the output cell, i.e. of the window's top-left pixel.
        ax: axes to draw on; a new figure when ``None``.

    Returns:
        The figure. Number texts carry the ``gid`` :data:`INPUT_GID`, :data:`KERNEL_GID` or :data:`OUTPUT_GID`
        (row-major); the window and the produced cell are outlined by rectangles with :data:`WINDOW_GID` and
        :data:`PRODUCED_GID`.

    Raises:
        ValueError: for inputs that are not 2-D, a kernel larger than the image, or a position off the output.
    """
    image, kernel = _as_matrix(image, "image"), _as_matrix(kernel, "kernel")
    if kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
        raise ValueError(f"expected a kernel no larger than the image {image.shape}, got {kernel.shape}")
    output = correlate2d(image, kernel)
    row, col = position
    if not (0 <= row < output.shape[0] and 0 <= col < output.shape[1]):
        raise ValueError(f"expected a position inside the {output.shape} output, got {position}")
    kh, kw = kernel.shape
    gap = 1.6
    kernel_x = image.shape[1] + gap
    output_x = kernel_x + kw + gap
    width = output_x + output.shape[1]
    fig, ax = _canvas(ax, (0.5 * (width + 0.4), 0.5 * (image.shape[0] + 2.6)))
    in_window = np.full(image.shape, None, dtype=object)
    in_window[row : row + kh, col : col + kw] = "#fbe3d3"
    produced = np.full(output.shape, None, dtype=object)
    produced[row, col] = "#fbe3d3"
    _grid(ax, image, (0, 0), gid=INPUT_GID, title="input $I$", tints=in_window)
    _grid(ax, kernel, (kernel_x, 0), gid=KERNEL_GID, title="kernel $K$", tints=np.full(kernel.shape, "#fbe3d3"))
    _grid(ax, output, (output_x, 0), gid=OUTPUT_GID, title="output $I \\star K$", tints=produced)
    _outline(ax, (col, -row), kh, kw, WINDOW_GID)
    _outline(ax, (kernel_x, 0), kh, kw, "kernel-frame")
    _outline(ax, (output_x + col, -row), 1, 1, PRODUCED_GID)
    ax.text(image.shape[1] + gap / 2, -kh / 2, "$\\star$", ha="center", va="center", fontsize=26)
    ax.text(kernel_x + kw + gap / 2, -kh / 2, "=", ha="center", va="center", fontsize=18)
    window = image[row : row + kh, col : col + kw]
    terms = " + ".join(f"{_number(a)}·{_number(b) if b >= 0 else f'({_number(b)})'}"
                       for a, b in zip(window.ravel(), kernel.ravel()))
    ax.text(width / 2, -image.shape[0] - 0.7, f"{terms} = {_number(output[row, col])}", ha="center", va="top",
            fontsize=10, gid="sum")
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-image.shape[0] - 1.4, 1.2)
    return fig


def draw_max_pooling(feature_map: Array, pool_size: int = 2, ax: Axes | None = None) -> Figure:
    """Max-pooling with ``pool_size`` × ``pool_size`` windows side by side (stride = pool size).

    Each window of the input is tinted in its own colour, with its largest value in bold; the pooled map,
    computed by :func:`mlbook.convolution.max_pool2d`, repeats the colours.

    Returns:
        The figure; the number texts carry :data:`INPUT_GID` (input) and :data:`OUTPUT_GID` (pooled), row-major.

    Raises:
        ValueError: if ``feature_map`` is not 2-D or is smaller than one window.
    """
    feature_map = _as_matrix(feature_map, "feature map")
    if min(feature_map.shape) < pool_size:
        raise ValueError(f"expected a feature map at least {pool_size}×{pool_size}, got {feature_map.shape}")
    pooled = max_pool2d(feature_map[:, :, None], pool_size)[:, :, 0]
    tints = np.full(feature_map.shape, None, dtype=object)
    bold = np.zeros(feature_map.shape, dtype=bool)
    pooled_tints = np.empty(pooled.shape, dtype=object)
    for (r, c), _ in np.ndenumerate(pooled):
        tint = TINTS[(r * pooled.shape[1] + c) % len(TINTS)]
        block = (slice(r * pool_size, (r + 1) * pool_size), slice(c * pool_size, (c + 1) * pool_size))
        tints[block] = tint
        pooled_tints[r, c] = tint
        bold[block] = feature_map[block] == feature_map[block].max()
    gap = 3.2
    output_x = feature_map.shape[1] + gap
    fig, ax = _canvas(ax, (0.55 * (output_x + pooled.shape[1]) + 0.4, 0.55 * feature_map.shape[0] + 0.9))
    _grid(ax, feature_map, (0, 0), gid=INPUT_GID, title="feature map", tints=tints, bold=bold)
    top = -(feature_map.shape[0] - pooled.shape[0]) / 2
    _grid(ax, pooled, (output_x, top), gid=OUTPUT_GID, title="max-pooled", tints=pooled_tints, bold=np.ones_like(bold))
    middle = -feature_map.shape[0] / 2
    _arrow(ax, (feature_map.shape[1] + 0.3, middle), (output_x - 0.3, middle), gid=None,
           label=f"max of each\n{pool_size}×{pool_size} window", label_offset=(0.0, 0.55), fontsize=9)
    ax.set_xlim(-0.2, output_x + pooled.shape[1] + 0.2)
    ax.set_ylim(-feature_map.shape[0] - 0.3, 1.1)
    return fig


# --------------------------------------------------------------------------------------------------------------
# Recurrent networks
# --------------------------------------------------------------------------------------------------------------


def _sized(symbol: str, size: int | None) -> str:
    """A box label: the symbol, with its number of entries in brackets on a second line when known."""
    return symbol if size is None else f"{symbol}\n({size})"


def draw_rnn_cell(feedback: str = "hidden", hidden_size: int | None = None, vocabulary_size: int | None = None,
                  ax: Axes | None = None) -> Figure:
    """A recurrent network at one time step: ``x_t → h_t → p_t``, with the loop that carries the past.

    With ``feedback="hidden"`` (the chapter's Arch 1) the loop takes ``h_{t-1}`` back into ``h_t`` through
    ``W``; with ``feedback="output"`` (Arch 2) it takes the previous output ``ŷ_{t-1}`` back instead. ``U``
    maps the input and ``V`` the hidden state to the output.

    Args:
        feedback: ``"hidden"`` or ``"output"``.
        hidden_size, vocabulary_size: entries of ``h_t`` and of ``x_t``/``p_t``, printed under the symbols;
            ``None`` leaves them out.
        ax: axes to draw on; a new figure when ``None``.

    Returns:
        The figure, with one box each of ``gid`` :data:`INPUT_BOX_GID`, :data:`HIDDEN_BOX_GID` and
        :data:`OUTPUT_BOX_GID`.

    Raises:
        ValueError: for a ``feedback`` other than ``"hidden"`` or ``"output"``.
    """
    if feedback not in ("hidden", "output"):
        raise ValueError(f"expected feedback 'hidden' or 'output', got {feedback!r}")
    fig, ax = _canvas(ax, (3.4, 4.0))
    height = 0.75 if hidden_size is not None else 0.55
    x_box = _box(ax, (0, 0), _sized("$x_t$", vocabulary_size), height=height, gid=INPUT_BOX_GID)
    h_box = _box(ax, (0, 1.8), _sized("$h_t$", hidden_size), height=height, gid=HIDDEN_BOX_GID, facecolor="#e8f1f8")
    p_box = _box(ax, (0, 3.6), _sized("$p_t$", vocabulary_size), height=height, gid=OUTPUT_BOX_GID)
    _arrow(ax, (0, 0), (0, 1.8), source=x_box, target=h_box, label="$U$", label_offset=(-0.3, 0))
    _arrow(ax, (0, 1.8), (0, 3.6), source=h_box, target=p_box, label="$V$", label_offset=(-0.3, 0))
    loop_from, carried = ((0.55, 1.95), "$h_{t-1}$") if feedback == "hidden" else ((0.55, 3.6), "$\\hat y_{t-1}$")
    _arrow(ax, loop_from, (0.55, 1.65), connection="arc,angleA=0,armA=38,angleB=0,armB=38,rad=8",
           color=HIGHLIGHT, linewidth=1.6)
    loop_middle = (loop_from[1] + 1.65) / 2
    ax.text(1.42, loop_middle, f"$W$\n{carried}", ha="left", va="center", fontsize=11, color=HIGHLIGHT)
    ax.text(0.0, 4.25, "predicts $y_t = x_{t+1}$", ha="center", va="bottom", fontsize=10)
    ax.set_xlim(-1.1, 2.4)
    ax.set_ylim(-0.6, 4.6)
    return fig


def draw_unrolled_rnn(num_steps: int = 4, hidden_size: int | None = None, ax: Axes | None = None) -> Figure:
    """A hidden-state RNN unrolled over ``num_steps`` steps: a chain of copies that share ``U``, ``W`` and ``V``.

    Step ``t`` reads ``x_t``, computes ``h_t`` from ``x_t`` (through ``U``) and ``h_{t-1}`` (through ``W``), and
    outputs ``p_t`` (through ``V``). The state ``h_0`` comes in from the left (the end of the previous window)
    and ``h_T`` leaves on the right (the start of the next one), dashed: truncated back-propagation lets no
    gradient through those two arrows.

    Args:
        num_steps: copies drawn, ``T``.
        hidden_size: entries of ``h_t``, printed in the first copy; ``None`` leaves it out.
        ax: axes to draw on; a new figure when ``None``.

    Returns:
        The figure, with ``num_steps`` boxes of each ``gid`` :data:`INPUT_BOX_GID`, :data:`HIDDEN_BOX_GID` and
        :data:`OUTPUT_BOX_GID`.

    Raises:
        ValueError: if ``num_steps < 1``.
    """
    if num_steps < 1:
        raise ValueError(f"expected at least one time step, got {num_steps}")
    step = 2.2
    fig, ax = _canvas(ax, (1.3 * num_steps + 2.0, 3.0))
    previous: tuple[float, float] = (-2.1, 1.8)
    ax.text(-2.2, 1.8, "$h_0$", ha="right", va="center", fontsize=12)
    previous_box: Patch | None = None
    for t in range(1, num_steps + 1):
        x = step * (t - 1)
        size = hidden_size if t == 1 else None
        x_box = _box(ax, (x, 0), f"$x_{t}$", gid=INPUT_BOX_GID)
        h_box = _box(ax, (x, 1.8), _sized(f"$h_{t}$", size), width=1.35 if size else 1.1, height=0.95 if size else 0.6,
                     gid=HIDDEN_BOX_GID, facecolor="#e8f1f8", fontsize=11 if size else 12)
        p_box = _box(ax, (x, 3.6), f"$p_{t}$", gid=OUTPUT_BOX_GID)
        _arrow(ax, (x, 0), (x, 1.8), source=x_box, target=h_box, label="$U$", label_offset=(-0.3, 0))
        _arrow(ax, (x, 1.8), (x, 3.6), source=h_box, target=p_box, label="$V$", label_offset=(-0.3, 0))
        dashed = previous_box is None
        _arrow(ax, previous if dashed else (x - step, 1.8), (x, 1.8), source=previous_box, target=h_box,
               label="$W$", label_offset=(0, 0.25), color=HIGHLIGHT, linestyle="--" if dashed else "-")
        previous_box = h_box
    last = step * (num_steps - 1)
    _arrow(ax, (last, 1.8), (last + 1.7, 1.8), source=previous_box, color=HIGHLIGHT, linestyle="--")
    ax.text(last + 1.8, 1.8, f"$h_{{{num_steps}}}$\nto the\nnext window", ha="left", va="center", fontsize=10)
    ax.set_xlim(-2.8, last + 3.3)
    ax.set_ylim(-0.55, 4.1)
    return fig


# --------------------------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------------------------


def locate_crop(image: Array, crop: Array) -> tuple[int, int]:
    """Where ``crop`` was cut from ``image``: the ``(row, column)`` of its top-left pixel.

    Raises:
        ValueError: if the crop is larger than the image, or is not an exact piece of it.
    """
    image, crop = np.asarray(image), np.asarray(crop)
    height, width = crop.shape[:2]
    if image.shape[2:] != crop.shape[2:] or height > image.shape[0] or width > image.shape[1]:
        raise ValueError(f"expected a crop no larger than the image {image.shape}, got {crop.shape}")
    for row in range(image.shape[0] - height + 1):
        for col in range(image.shape[1] - width + 1):
            if np.array_equal(image[row : row + height, col : col + width], crop):
                return row, col
    raise ValueError("the crop is not a piece of the image")


def draw_crop(image: Array, crop: Array, axes: Sequence[Axes] | None = None) -> Figure:
    """An image with the window that ``crop`` was cut from drawn on it (left), and the crop itself (right).

    The window's position is found from the pixels (:func:`locate_crop`), so it shows where the crop really
    came from.

    Args:
        image: ``(h, w)`` or ``(h, w, 3)`` in [0, 1].
        crop: a piece of ``image``.
        axes: two axes to draw on; a new figure when ``None``.

    Returns:
        The figure; the window is a rectangle with ``gid`` :data:`CROP_GID`, in pixel units.
    """
    image, crop = np.asarray(image), np.asarray(crop)
    row, col = locate_crop(image, crop)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4), gridspec_kw={"width_ratios": [image.shape[1],
                                                                                         crop.shape[1]]})
    else:
        fig = axes[0].figure
    grey = {"cmap": "gray", "vmin": 0, "vmax": 1} if image.ndim == 2 else {}
    axes[0].imshow(np.clip(image, 0, 1), **grey)
    axes[0].add_patch(Rectangle((col - 0.5, row - 0.5), crop.shape[1], crop.shape[0], fill=False,
                                edgecolor=HIGHLIGHT, linewidth=2.5, gid=CROP_GID))
    axes[0].set_title(f"image {image.shape[0]}×{image.shape[1]}, window at row {row}, column {col}", fontsize=11)
    axes[1].imshow(np.clip(crop, 0, 1), **grey)
    axes[1].set_title(f"crop {crop.shape[0]}×{crop.shape[1]}", fontsize=11)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    return fig
