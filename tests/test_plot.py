"""Tests of mlbook.plot's helpers (figures are built and inspected, never shown)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection

from mlbook.plot import plot_decision_boundary, plot_function_derivative_grid


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


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
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt

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
