"""Tests of mlbook.plot's helpers (figures are built and inspected, never shown)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection

from mlbook.plot import plot_decision_boundary, plot_function_derivative_grid, plot_history


def test_function_derivative_grid_has_one_row_per_function_and_plots_the_values():
    x = np.linspace(-2.0, 2.0, 11)
    functions = [("square", np.square, lambda v: 2 * v), ("constant", lambda v: np.ones_like(v), np.zeros_like)]
    fig = plot_function_derivative_grid(functions, x)
    assert len(fig.axes) == 2 * len(functions)
    # The plotted data are the functions' own values: exact equality, nothing is computed in between.
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), x**2)
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), 2 * x)
    np.testing.assert_array_equal(fig.axes[3].lines[0].get_ydata(), np.zeros_like(x))
    assert fig.axes[2].get_ylabel() == "constant"


def test_function_derivative_grid_broadcasts_scalar_outputs():
    x = np.linspace(0.0, 1.0, 5)
    fig = plot_function_derivative_grid([("linear", lambda v: v, lambda v: 1.0)], x)
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), np.ones_like(x))


@pytest.mark.parametrize(
    ("functions", "x", "message"),
    [([], np.linspace(0, 1, 3), "at least one"), ([("f", np.sin, np.cos)], np.zeros((2, 2)), "1-D grid")],
)
def test_function_derivative_grid_rejects_bad_arguments(functions, x, message):
    with pytest.raises(ValueError, match=message):
        plot_function_derivative_grid(functions, x)


def test_decision_boundary_draws_the_points_and_checks_shapes():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    labels = np.array([0, 1, 1])
    ax = plot_decision_boundary(lambda grid: (grid.sum(axis=1) > 0.5).astype(float), points, labels, resolution=20)
    scattered = [c for c in ax.collections if isinstance(c, PathCollection)]  # the scatter layers, one per class
    assert sum(len(c.get_offsets()) for c in scattered) == len(points)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot_decision_boundary(lambda grid: grid[:, 0], np.zeros((3, 3)), labels)


def test_image_grid_lays_out_rows_and_checks_shapes():

    from mlbook.plot import image_grid

    fig = image_grid(np.zeros((10, 28, 28, 1)), ncols=4, titles=[str(i) for i in range(10)])
    assert len(fig.axes) == 12 and sum(bool(ax.images) for ax in fig.axes) == 10  # 3 rows of 4, 2 left empty
    assert fig.axes[9].get_title() == "9"
    plt.close(fig)
    rgb = image_grid(np.ones((3, 8, 8, 3)))
    assert len(rgb.axes) == 3 and rgb.axes[0].images[0].get_array().shape == (8, 8, 3)
    plt.close(rgb)
    with pytest.raises(ValueError, match=r"got \(28, 28\)"):
        image_grid(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="expected 2 titles"):
        image_grid(np.zeros((2, 4, 4)), titles=["one"])
    with pytest.raises(ValueError, match="empty batch"):
        image_grid(np.zeros((0, 4, 4)))


def test_plot_curves_draws_each_named_curve_from_epoch_one():

    from mlbook.plot import plot_curves

    ax = plot_curves({"training": [3.0, 2.0, 1.0], "validation": [3.5, 2.5, 2.0]}, logy=True)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["training", "validation"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines[1].get_ydata(), [3.5, 2.5, 2.0])
    assert ax.get_yscale() == "log"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="at least one"):
        plot_curves({})


def test_plot_history_pairs_each_metric_with_its_validation_curve():
    terms = ["xy_loss", "wh_loss", "object_loss", "no_object_loss", "class_loss"]
    history = {name: [1.0, 0.5, 0.25] for name in ["loss", *terms]}
    history["val_loss"] = [1.2, 0.6, 0.3]
    fig = plot_history(history, ["loss", *terms], ncols=3, logy=True)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "xy loss", "wh loss", "object loss", "no object loss", "class loss"]
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1  # validation drawn only where recorded
    assert fig.axes[0].lines[1].get_linestyle() == "--" and fig.axes[0].get_yscale() == "log"
    assert [ax.get_xlabel() for ax in fig.axes] == [""] * 3 + ["epoch"] * 3  # the bottom row names the axis
    legend = fig.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["training", "validation"]
    assert legend.legend_handles[1].get_linestyle() == "--"  # the legend shows the dashes
    assert all(ax.get_legend() is None for ax in fig.axes[1:])
    with pytest.raises(ValueError, match="missing.*class_loss"):
        plot_history({"loss": [1.0]}, ["loss", "class_loss"])


def test_plot_history_titles_from_a_mapping_and_fits_the_axes_from_a_later_epoch():
    history = {"loss": [50.0, 3.0, 2.0], "val_loss": [60.0, 3.5, 2.5], "kl_loss": [1.0, 2.0, 3.0],
               "val_kl_loss": [1.0, 2.0, 4.0]}
    fig = plot_history(history, {"loss": "total", "kl_loss": "KL"}, ylabel="nats", validation_label="test",
                       ylim_from_epoch=2)
    assert [ax.get_title() for ax in fig.axes] == ["total", "KL"]
    assert fig.axes[0].get_ylabel() == "nats"
    assert fig.axes[0].get_ylim() == pytest.approx((2.0 - 0.075, 3.5 + 0.075))  # epoch 1's 50 and 60 cut off
    assert fig.axes[1].get_ylim() == pytest.approx((2.0 - 0.1, 4.0 + 0.1))
    assert fig.axes[0].lines[1].get_label() == "test"
    with pytest.raises(ValueError, match="ylim_from_epoch"):
        plot_history(history, ["loss"], ylim_from_epoch=0)
