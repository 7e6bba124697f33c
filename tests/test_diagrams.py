"""Tests of mlbook.diagrams: each diagram is drawn and its artists are read back, so that what a reader counts or
reads off a figure (nodes, weights, numbers, a window's size, time steps) is what the code computes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests

import numpy as np
import pytest
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

from mlbook import augment, convolution, diagrams


def _patches(fig, kind, gid):
    return [p for ax in fig.axes for p in ax.patches if isinstance(p, kind) and p.get_gid() == gid]


def _numbers(fig, gid):
    return np.array([diagrams.parse_number(t.get_text()) for ax in fig.axes for t in ax.texts if t.get_gid() == gid])


# --- network --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [(2, 3, 2), (2, 2, 1), (3, 5, 4, 2), (1, 1)])
def test_network_has_a_circle_per_node_and_an_arrow_per_weight(sizes):
    names = "IJKL"[: len(sizes)]
    fig = diagrams.draw_network(sizes, names)
    assert len(_patches(fig, Circle, diagrams.NODE_GID)) == sum(sizes)
    assert len(_patches(fig, Circle, diagrams.BIAS_GID)) == len(sizes) - 1
    # one weight per (input + bias node, output node) pair: the rows and columns of the chapter's W matrices
    expected_weights = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    assert len(_patches(fig, FancyArrowPatch, diagrams.EDGE_GID)) == expected_weights


def test_network_without_bias_has_no_bias_nodes_or_weights():
    fig = diagrams.draw_network((2, 3, 2), bias=False)
    assert not _patches(fig, Circle, diagrams.BIAS_GID)
    assert len(_patches(fig, FancyArrowPatch, diagrams.EDGE_GID)) == 2 * 3 + 3 * 2


def test_network_labels_its_weights_in_the_chapters_notation():
    fig = diagrams.draw_network((2, 3, 2), ("I", "J", "K"))
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert {"$W_{ij}$", "$W_{jk}$", "$W_{bj}$", "$W_{bk}$", "$i$", "$j$", "$k$"} <= labels


def test_network_rejects_a_missing_layer_name():
    with pytest.raises(ValueError, match="3 layer names"):
        diagrams.draw_network((2, 3, 2), ("I", "J"))


# --- convolution and pooling ----------------------------------------------------------------------------------

STAMP_IMAGE = np.array([[1, 2, 6, 8, 9], [0, 1, 7, 9, 8], [1, 2, 6, 9, 9], [0, 2, 7, 8, 9], [1, 1, 6, 9, 8]])


@pytest.mark.parametrize("position", [(0, 0), (1, 0), (2, 2)])
def test_convolution_step_shows_what_correlate2d_computes(position):
    fig = diagrams.draw_convolution_step(STAMP_IMAGE, convolution.SOBEL_X, position)
    # integer inputs and kernels: every product and sum is exact, so the shown numbers must be equal
    np.testing.assert_array_equal(_numbers(fig, diagrams.INPUT_GID), STAMP_IMAGE.ravel())
    np.testing.assert_array_equal(_numbers(fig, diagrams.KERNEL_GID), convolution.SOBEL_X.ravel())
    shown = _numbers(fig, diagrams.OUTPUT_GID).reshape(3, 3)
    np.testing.assert_array_equal(shown, convolution.correlate2d(STAMP_IMAGE, convolution.SOBEL_X))
    r, c = position
    by_hand = (STAMP_IMAGE[r : r + 3, c : c + 3] * convolution.SOBEL_X).sum()
    assert shown[r, c] == by_hand
    sum_line = next(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "sum")
    assert diagrams.parse_number(sum_line.rsplit("=", 1)[1]) == by_hand


def test_convolution_step_outlines_the_window_and_the_cell_it_produces():
    fig = diagrams.draw_convolution_step(STAMP_IMAGE, convolution.SOBEL_X, (1, 2))
    (window,) = _patches(fig, Rectangle, diagrams.WINDOW_GID)
    (cell,) = _patches(fig, Rectangle, diagrams.PRODUCED_GID)
    assert (window.get_width(), window.get_height()) == (3, 3)  # the kernel's size
    assert (cell.get_width(), cell.get_height()) == (1, 1)
    assert window.get_x() == 2 and window.get_y() == -1 - 3  # column 2; rows 1..3 in a grid drawn downwards


def test_convolution_step_rejects_a_position_off_the_output():
    with pytest.raises(ValueError, match="inside the"):
        diagrams.draw_convolution_step(STAMP_IMAGE, convolution.SOBEL_X, (3, 0))


@pytest.mark.parametrize("shape, pool_size", [((4, 4), 2), ((6, 6), 3), ((5, 4), 2)])
def test_max_pooling_shows_what_max_pool2d_computes(shape, pool_size):
    feature_map = np.random.default_rng(0).integers(0, 10, size=shape).astype(float)
    fig = diagrams.draw_max_pooling(feature_map, pool_size)
    np.testing.assert_array_equal(_numbers(fig, diagrams.INPUT_GID), feature_map.ravel())
    expected = convolution.max_pool2d(feature_map[:, :, None], pool_size)[:, :, 0]
    np.testing.assert_array_equal(_numbers(fig, diagrams.OUTPUT_GID), expected.ravel())


# --- recurrent networks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_steps", [1, 4, 7])
def test_unrolled_rnn_has_one_copy_per_time_step(num_steps):
    fig = diagrams.draw_unrolled_rnn(num_steps)
    for gid in (diagrams.INPUT_BOX_GID, diagrams.HIDDEN_BOX_GID, diagrams.OUTPUT_BOX_GID):
        assert len(_patches(fig, FancyBboxPatch, gid)) == num_steps
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("$W$") == num_steps  # W into every copy (from h_0 for the first): one shared matrix
    assert texts.count("$U$") == texts.count("$V$") == num_steps
    assert f"$x_{num_steps}$" in texts


@pytest.mark.parametrize("feedback, carried", [("hidden", "h_{t-1}"), ("output", "\\hat y_{t-1}")])
def test_rnn_cell_feeds_back_what_its_architecture_carries(feedback, carried):
    fig = diagrams.draw_rnn_cell(feedback, hidden_size=200, vocabulary_size=27)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert carried in texts and "(200)" in texts and "(27)" in texts
    assert len(_patches(fig, FancyBboxPatch, diagrams.HIDDEN_BOX_GID)) == 1


def test_rnn_cell_rejects_an_unknown_feedback():
    with pytest.raises(ValueError, match="feedback"):
        diagrams.draw_rnn_cell("state")


# --- crops ----------------------------------------------------------------------------------------------------


def test_crop_window_has_the_crops_size_and_position():
    image = np.random.default_rng(1).random((30, 50, 3))
    crop, _ = augment.crop_square(image, rng=np.random.default_rng(5))
    row, col = diagrams.locate_crop(image, crop)
    np.testing.assert_array_equal(image[row : row + 30, col : col + 30], crop)
    fig = diagrams.draw_crop(image, crop)
    (window,) = _patches(fig, Rectangle, diagrams.CROP_GID)
    assert (window.get_height(), window.get_width()) == crop.shape[:2] == (30, 30)
    assert (window.get_x(), window.get_y()) == (col - 0.5, row - 0.5)  # imshow puts pixel centres on integers


def test_locate_crop_rejects_a_crop_that_is_not_a_piece_of_the_image():
    image = np.arange(20.0).reshape(4, 5)
    with pytest.raises(ValueError, match="not a piece"):
        diagrams.locate_crop(image, np.ones((2, 2)))
