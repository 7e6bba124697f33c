"""Plotting helpers shared by the chapters, in one style.

Nothing changes matplotlib's global state at import time; a chapter calls :func:`use_book_style` once (through
:func:`mlbook.setup_chapter`). Figures have an opaque white background so that they stay readable when a reader
switches the book's theme to dark mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Colour cycle (Okabe–Ito, readable by colour-blind readers).
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

BOOK_STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.frameon": False,
    "font.size": 10,
    "image.cmap": "gray",
    "image.interpolation": "nearest",
}


def use_book_style() -> None:
    """Apply the book's matplotlib style (white background, Okabe–Ito colours, light grid)."""
    mpl.rcParams.update(BOOK_STYLE)


def _as_image_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (3, 4)):
        raise ValueError(
            "expected images of shape (n, height, width), (n, height, width, 1) or (n, height, width, 3|4), "
            f"got {images.shape}"
        )
    return images


def image_grid(
    images: np.ndarray,
    ncols: int = 8,
    titles: Sequence[str] | None = None,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    cell_size: float = 1.1,
) -> Figure:
    """Show a batch of images on a grid, ``ncols`` per row, with optional titles.

    Args:
        images: ``(n, h, w)``, ``(n, h, w, 1)`` or ``(n, h, w, 3)`` array.
        ncols: images per row (fewer if there are fewer images).
        titles: one short title per image, or ``None``.
        cmap, vmin, vmax: passed to ``imshow`` for single-channel images.
        cell_size: inches per image.

    Raises:
        ValueError: if the images have the wrong shape or ``titles`` has the wrong length.
    """
    images = _as_image_batch(images)
    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image, got an empty batch")
    if titles is not None and len(titles) != n:
        raise ValueError(f"expected {n} titles (one per image), got {len(titles)}")
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    row_height = cell_size + 0.25 * (titles is not None)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_size * ncols, nrows * row_height))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    xlabel: str = "epoch",
    ylabel: str = "loss",
    logy: bool = False,
    ax: Axes | None = None,
    legend: bool = True,
) -> Axes:
    """Plot named training curves (e.g. ``{"training": [...], "validation": [...]}``) on one axes.

    A legend is drawn when there are several curves, unless ``legend`` is false.
    """
    if not curves:
        raise ValueError("plot_curves needs at least one named curve")
    if ax is None:
        _, ax = plt.subplots()
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1) if xlabel == "epoch" else np.arange(len(values)), values, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend and len(curves) > 1:
        ax.legend()
    return ax


def plot_history(
    history: Mapping[str, Sequence[float]],
    panels: Sequence[str] | Mapping[str, str],
    ncols: int | None = None,
    ylabel: str = "",
    validation_label: str = "validation",
    logy: bool = False,
    ylim_from_epoch: int = 1,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A Keras training history, one panel per metric: the training curve (solid) and, where the history has
    one, its ``val_`` twin (dashed), against the epoch.

    Args:
        history: ``History.history``-like lists per metric, e.g. ``{"loss": [...], "val_loss": [...]}``.
        panels: the metrics to show, in order; a mapping gives each panel a title (a bare name is titled with its
            underscores as spaces).
        ncols: panels per row (default: all in one row).
        ylabel: the vertical axes' label.
        validation_label: the legend's name for the ``val_`` curves (e.g. ``"test"``).
        logy: logarithmic vertical axes.
        ylim_from_epoch: fit the vertical axes to the values from this epoch on, so that a first epoch far above
            the rest does not flatten the curves (the earlier values are cut off).
        figsize: the figure's size in inches (default: 3.6 × 3.2 per panel).

    Returns:
        The figure, with one legend (on the first panel that has a validation curve).

    Raises:
        ValueError: if ``panels`` is empty or names a metric the history lacks, or ``ylim_from_epoch < 1``.
    """
    titles = dict(panels) if isinstance(panels, Mapping) else {name: name.replace("_", " ") for name in panels}
    missing = [name for name in titles if name not in history]
    if not titles or missing:
        raise ValueError(f"expected a history with {list(titles)} (at least one), missing {missing}")
    if ylim_from_epoch < 1:
        raise ValueError(f"expected ylim_from_epoch >= 1, got {ylim_from_epoch}")
    ncols = ncols or len(titles)
    nrows = -(-len(titles) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (3.6 * ncols, 3.2 * nrows), sharex=True,
                             squeeze=False)
    used = axes.ravel()[: len(titles)]
    for index, (ax, (name, title)) in enumerate(zip(used, titles.items())):
        curves = {"training": history[name]}
        if f"val_{name}" in history:
            curves[validation_label] = history[f"val_{name}"]
        plot_curves(curves, ylabel=ylabel, logy=logy, ax=ax, legend=False)
        for line in ax.lines[1:]:
            line.set_linestyle("--")
        if ylim_from_epoch > 1:
            shown = np.concatenate([np.asarray(values, dtype=float)[ylim_from_epoch - 1 :]
                                    for values in curves.values()])
            margin = 0.05 * (shown.max() - shown.min())
            ax.set_ylim(shown.min() - margin, shown.max() + margin)
        ax.set_title(title)
        if index + ncols < len(titles):  # the panel below names the shared axis
            ax.set_xlabel("")
    for ax in axes.ravel()[len(titles) :]:
        ax.set_visible(False)
    with_validation = [ax for ax in used if len(ax.lines) > 1]
    if with_validation:  # the legend is made after the dashes are set, so that it shows them
        with_validation[0].legend()
    fig.tight_layout()
    return fig


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    inputs: np.ndarray,
    labels: np.ndarray,
    ax: Axes | None = None,
    resolution: int = 200,
    margin: float = 0.5,
) -> Axes:
    """Shade where a two-class model predicts class 1 and scatter the labelled 2-D points on top.

    Args:
        predict: maps an ``(m, 2)`` array to ``m`` scores in [0, 1] (any trailing shape of size m is accepted).
        inputs: ``(n, 2)`` points; labels: ``n`` zeros and ones.
    """
    inputs = np.asarray(inputs, dtype=float)
    labels = np.asarray(labels).ravel()
    if inputs.ndim != 2 or inputs.shape[1] != 2:
        raise ValueError(f"expected 2-D points of shape (n, 2), got {inputs.shape}")
    if len(labels) != len(inputs):
        raise ValueError(f"expected {len(inputs)} labels (one per point), got {len(labels)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    (x0, y0), (x1, y1) = inputs.min(axis=0) - margin, inputs.max(axis=0) + margin
    grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    scores = np.asarray(predict(np.column_stack([grid_x.ravel(), grid_y.ravel()]))).reshape(grid_x.shape)
    ax.contourf(grid_x, grid_y, scores, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
    ax.contour(grid_x, grid_y, scores, levels=[0.5], colors="#333333", linewidths=1.2)
    for cls, colour in ((0, PALETTE[0]), (1, PALETTE[1])):
        chosen = labels == cls
        ax.scatter(inputs[chosen, 0], inputs[chosen, 1], s=12, color=colour, label=f"class {cls}",
                   edgecolor="white", linewidth=0.3)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="best")
    ax.grid(False)
    return ax


def plot_function_derivative_grid(
    functions: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]],
    x: np.ndarray,
    row_height: float = 1.5,
    width: float = 7.0,
) -> Figure:
    """Plot functions (left column) next to their derivatives (right column), one row per function.

    Args:
        functions: ``(name, f, df)`` triples; ``f`` and ``df`` map an array of ``x`` values to an array.
        x: the 1-D grid to evaluate on.
        row_height, width: figure size in inches (height per row, total width).

    Returns:
        The figure; ``fig.axes[2 * row]`` shows ``f`` and ``fig.axes[2 * row + 1]`` shows ``df``.

    Raises:
        ValueError: if ``functions`` is empty or ``x`` is not 1-D.
    """
    x = np.asarray(x, dtype=float)
    if not functions:
        raise ValueError("plot_function_derivative_grid needs at least one (name, f, df) triple")
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D grid x of shape (m,), got {x.shape}")
    fig, axes = plt.subplots(
        len(functions), 2, figsize=(width, row_height * len(functions)), sharex=True, squeeze=False
    )
    for (name, function, derivative), (ax_f, ax_df) in zip(functions, axes):
        ax_f.plot(x, np.broadcast_to(function(x), x.shape), color=PALETTE[0])
        ax_df.plot(x, np.broadcast_to(derivative(x), x.shape), color=PALETTE[1])
        ax_f.set_ylabel(name)
    axes[0, 0].set_title("$f(x)$")
    axes[0, 1].set_title("$f'(x)$")
    axes[-1, 0].set_xlabel("$x$")
    axes[-1, 1].set_xlabel("$x$")
    fig.tight_layout()
    return fig


def tile_images(images: np.ndarray, ncols: int, padding: int = 1, fill: float = 0.5) -> np.ndarray:
    """Tile ``(n, h, w, c)`` images into one ``(rows·(h+p)+p, ncols·(w+p)+p, c)`` image, row by row, with
    ``padding``-pixel gutters and empty cells of value ``fill``."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, height, width, channels), got {images.shape}")
    n, height, width, channels = images.shape
    nrows = -(-n // ncols)
    canvas = np.full((nrows * (height + padding) + padding, ncols * (width + padding) + padding, channels), fill,
                     dtype=np.float32)
    for i, image in enumerate(images):
        top, left = padding + (i // ncols) * (height + padding), padding + (i % ncols) * (width + padding)
        canvas[top : top + height, left : left + width] = image
    return canvas
