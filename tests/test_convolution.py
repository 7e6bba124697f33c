"""Tests of mlbook.convolution: the NumPy layers against Keras and SciPy, the size and receptive-field formulas
against brute force, and one regression test per "Notes on the original" item of the CNN basics chapter."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal

from mlbook import convolution
from mlbook.convolution import SOBEL_X, SOBEL_Y, Window

# float32 sums of up to a few hundred products of N(0, 1) values: round-off is ~1e-6 relative; 1e-4 leaves margin
FLOAT32_TOL = 1e-4


# --- convolution ----------------------------------------------------------------------------------------------

CONV_CASES = [  # (height, width, in_channels, kernel, stride, padding, filters)
    (9, 11, 3, 3, 1, "valid", 4),
    (9, 11, 3, 3, 1, "same", 2),
    (9, 11, 2, 3, 2, "same", 5),  # odd total padding at stride 2: TensorFlow puts the extra zero after
    (10, 7, 2, 4, 3, "same", 2),  # even kernel
    (8, 8, 1, 2, 2, "valid", 3),
    (6, 6, 3, 5, 1, "same", 1),
]


@pytest.mark.parametrize("height, width, channels, kernel, stride, padding, filters", CONV_CASES)
@pytest.mark.equation("eq-cnn-conv-layer")
def test_conv2d_equals_keras_conv2d(height, width, channels, kernel, stride, padding, filters):
    import keras

    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, height, width, channels)).astype("float32")
    kernels = rng.normal(size=(kernel, kernel, channels, filters)).astype("float32")
    bias = rng.normal(size=filters).astype("float32")
    layer = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding)
    layer.build(images.shape)
    layer.set_weights([kernels, bias])
    expected = np.asarray(layer(images))
    actual = convolution.conv2d(images, kernels, stride, padding, bias)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=FLOAT32_TOL)


def test_conv2d_keeps_an_unbatched_image_unbatched():
    rng = np.random.default_rng(1)
    image, kernels = rng.normal(size=(7, 7, 2)), rng.normal(size=(3, 3, 2, 4))
    assert convolution.conv2d(image, kernels, padding="same").shape == (7, 7, 4)
    np.testing.assert_array_equal(convolution.conv2d(image, kernels), convolution.conv2d(image[None], kernels)[0])


@pytest.mark.equation("eq-cnn-correlation")
def test_conv2d_by_hand_on_a_tiny_example():
    image = np.arange(16.0).reshape(4, 4)
    kernel = np.array([[1.0, 0.0], [0.0, -1.0]])  # top-left minus bottom-right: always 0 - 5 = -5 here
    np.testing.assert_array_equal(convolution.correlate2d(image, kernel), np.full((3, 3), -5.0))
    # stride 2 keeps the windows at rows and columns 0 and 2
    assert convolution.correlate2d(image, kernel, stride=2).shape == (2, 2)


@pytest.mark.parametrize("mode, padding", [("valid", "valid"), ("same", "same")])
@pytest.mark.equation("eq-cnn-correlation")
def test_correlate2d_matches_scipy(mode, padding):
    rng = np.random.default_rng(2)
    image, kernel = rng.normal(size=(9, 12)), rng.normal(size=(3, 3))
    # float64 throughout: only summation order differs
    np.testing.assert_allclose(convolution.correlate2d(image, kernel, padding=padding),
                               scipy.signal.correlate2d(image, kernel, mode=mode), atol=1e-12)


def test_convolve2d_is_correlate2d_with_the_kernel_flipped():
    """Notes on the original: deep-learning "convolution" is a cross-correlation; true convolution flips."""
    rng = np.random.default_rng(3)
    image = rng.normal(size=(8, 10))
    np.testing.assert_allclose(convolution.convolve2d(image, SOBEL_X, padding="same"),
                               scipy.signal.convolve2d(image, SOBEL_X, mode="same"), atol=1e-12)
    # Sobel's x kernel is antisymmetric left-right, so flipping it flips the sign of the output
    np.testing.assert_allclose(convolution.convolve2d(image, SOBEL_X), -convolution.correlate2d(image, SOBEL_X),
                               atol=1e-12)


def test_conv2d_rejects_mismatched_shapes_with_clear_messages():
    with pytest.raises(ValueError, match=r"expected kernels of shape \(kh, kw, 3, c_out\).*got \(3, 3, 1, 8\)"):
        convolution.conv2d(np.zeros((8, 8, 3)), np.zeros((3, 3, 1, 8)))
    with pytest.raises(ValueError, match=r"expected images of shape .* got \(8, 8\)"):
        convolution.conv2d(np.zeros((8, 8)), np.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"expected a bias of shape \(8,\), got \(3,\)"):
        convolution.conv2d(np.zeros((8, 8, 1)), np.zeros((3, 3, 1, 8)), bias=np.zeros(3))
    with pytest.raises(ValueError, match="does not fit"):
        convolution.conv2d(np.zeros((2, 2, 1)), np.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        convolution.conv2d(np.zeros((8, 8, 1)), np.zeros((3, 3, 1, 1)), stride=0)


def test_kernel_depth_follows_the_channels_not_the_image_size():
    """Notes on the original: a kernel's depth equals the input's channels; its width and height are free."""
    rng = np.random.default_rng(4)
    rgb = rng.random((56, 56, 3))
    for side in (1, 3, 5, 7):
        assert convolution.conv2d(rgb, rng.normal(size=(side, side, 3, 32)), padding="same").shape == (56, 56, 32)
    with pytest.raises(ValueError, match="3 channel"):
        convolution.conv2d(rgb, rng.normal(size=(56, 56, 1, 32)))  # image-sized but depth 1: wrong


# --- sizes ----------------------------------------------------------------------------------------------------


@pytest.mark.equation("eq-cnn-output-size")
def test_output_size_formula_against_brute_force():
    """Equation eq-cnn-output-size against counting the stamp's positions and against conv2d's actual output."""
    for size, kernel, stride, pad in itertools.product(range(1, 13), range(1, 6), range(1, 4), range(3)):
        if kernel > size + 2 * pad:
            with pytest.raises(ValueError, match="does not fit"):
                convolution.output_size(size, kernel, stride, pad)
            continue
        positions = len(range(0, size + 2 * pad - kernel + 1, stride))  # every top-left corner the stamp can take
        produced = convolution.correlate2d(np.ones((size, size)), np.ones((kernel, kernel)), stride, pad).shape
        assert convolution.output_size(size, kernel, stride, pad) == positions, (size, kernel, stride, pad)
        assert produced == (positions, positions)


def test_same_padding_gives_ceil_n_over_s_and_matches_keras():
    import keras

    for size, kernel, stride in itertools.product([5, 6, 7, 28], [1, 2, 3, 4, 5], [1, 2, 3]):
        expected = -(-size // stride)
        assert convolution.output_size(size, kernel, stride, "same") == expected
    layer = keras.layers.Conv2D(1, 4, strides=3, padding="same")
    assert layer(np.zeros((1, 10, 10, 1), "float32")).shape[1] == convolution.output_size(10, 4, 3, "same") == 4


def test_padding_amounts_puts_the_odd_zero_after():
    assert convolution.padding_amounts(28, 5, 2, "same") == (1, 2)  # total (14 - 1) * 2 + 5 - 28 = 3
    assert convolution.padding_amounts(7, 3, 1, "same") == (1, 1)
    assert convolution.padding_amounts(7, 3, 1, 2) == (2, 2)
    with pytest.raises(ValueError, match="padding must be"):
        convolution.padding_amounts(7, 3, 1, "full")
    with pytest.raises(ValueError, match="padding must be"):
        convolution.padding_amounts(7, 3, 1, -1)


# --- Sobel ----------------------------------------------------------------------------------------------------


@pytest.mark.equation("eq-cnn-sobel")
def test_sobel_kernels_find_the_edges_they_are_named_for():
    """Notes on the original: the kernels, printed, respond to the edges they are named for and to nothing else."""
    assert SOBEL_X.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    np.testing.assert_array_equal(SOBEL_Y, SOBEL_X.T)
    vertical_edge = np.zeros((8, 8))
    vertical_edge[:, 4:] = 1.0  # dark left half, bright right half
    horizontal_edge = vertical_edge.T
    x_response = convolution.correlate2d(vertical_edge, SOBEL_X)
    assert x_response.max() == 4.0  # 1 + 2 + 1 across the step, by hand
    np.testing.assert_array_equal(convolution.correlate2d(vertical_edge, SOBEL_Y), 0.0)
    np.testing.assert_array_equal(convolution.correlate2d(horizontal_edge, SOBEL_X), 0.0)
    assert convolution.correlate2d(horizontal_edge, SOBEL_Y).max() == 4.0


def test_sobel_magnitude_sees_a_diagonal_edge_that_the_sum_misses():
    """Notes on the original: adding the two signed responses can cancel; the magnitude does not."""
    rows, cols = np.indices((9, 9))
    anti_diagonal_edge = (rows + cols >= 9).astype(float)  # bright bottom-right: gx and gy equal, same sign
    diagonal_edge = (cols > rows).astype(float)  # bright top-right: gx and gy equal and opposite
    edges = convolution.sobel_edges(diagonal_edge)
    inside = (slice(2, -2), slice(2, -2))  # away from the zero padding
    assert np.abs(edges["x"] + edges["y"])[inside].max() == 0.0
    assert edges["magnitude"][inside].max() > 4.0  # by hand: 3 and -3 at the edge, hypot ≈ 4.24
    assert convolution.sobel_edges(anti_diagonal_edge)["magnitude"][inside].max() > 4.0


# --- pooling, ReLU, dropout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pool, stride, padding", [(2, None, "valid"), (3, 3, "valid"), (3, 2, "same"),
                                                   (2, 1, "valid"), (3, 2, "valid")])
def test_max_pool2d_equals_keras(pool, stride, padding):
    import keras

    images = np.random.default_rng(5).normal(size=(2, 9, 8, 3)).astype("float32")
    expected = np.asarray(keras.layers.MaxPooling2D(pool, strides=stride, padding=padding)(images))
    np.testing.assert_array_equal(convolution.max_pool2d(images, pool, stride, padding), expected)


def test_max_pool2d_by_hand_and_padding_never_wins():
    feature_map = np.array([[1, 3, 2, 0], [4, 6, 1, 1], [0, 2, 9, 5], [3, 1, 4, 8]], dtype=float)[:, :, None]
    np.testing.assert_array_equal(convolution.max_pool2d(feature_map)[:, :, 0], [[6, 2], [3, 9]])
    negative = -np.ones((3, 3, 1))
    assert convolution.max_pool2d(negative, 2, 2, "same").max() == -1.0  # not the 0 of a zero padding


def test_relu():
    np.testing.assert_array_equal(convolution.relu(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])


@pytest.mark.equation("eq-cnn-dropout")
def test_dropout_rate_is_the_probability_of_dropping():
    """Notes on the original: the rate is the drop probability (keep probability = 1 - rate), as in Keras."""
    import keras

    units, rate = 200_000, 0.2
    ones = np.ones(units, dtype="float32")
    ours = convolution.dropout(ones, rate, np.random.default_rng(6))
    theirs = np.asarray(keras.layers.Dropout(rate, seed=6)(ones, training=True))
    # the dropped fraction is binomial: sd = sqrt(0.2 * 0.8 / 200k) ≈ 0.0009; 0.005 is over 5 sd
    for dropped in (ours, theirs):
        assert abs(np.mean(dropped == 0) - rate) < 0.005
        np.testing.assert_allclose(dropped[dropped > 0], 1 / (1 - rate), rtol=1e-6)  # float32 scaling
        assert abs(dropped.mean() - 1.0) < 0.01  # mean preserved: sd of the mean ≈ 0.0011


def test_dropout_checks_its_rate():
    with pytest.raises(ValueError, match=r"probability of dropping.*\[0, 1\), got 1.0"):
        convolution.dropout(np.ones(3), 1.0, np.random.default_rng(0))
    np.testing.assert_array_equal(convolution.dropout(np.ones(3), 0.0, np.random.default_rng(0)), np.ones(3))


# --- receptive fields -----------------------------------------------------------------------------------------


def _mask_side(mask: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert (np.diff(rows) == 1).all() and (np.diff(cols) == 1).all(), "a receptive field is one solid block"
    return len(rows), len(cols)


def test_receptive_field_of_the_originals_example_is_8_not_4():
    """Notes on the original: conv 3×3 (stride 1) → pool 3×3 (stride 3) → conv 2×2 sees 8×8 pixels, not 4×4."""
    layers = [Window(3, 1, "same"), Window(3, 3, "valid"), Window(2, 1, "valid")]
    assert convolution.receptive_fields(layers) == [3, 5, 8]
    assert _mask_side(convolution.receptive_field_mask(layers, 12, (1, 1))) == (8, 8)


@pytest.mark.equation("eq-cnn-receptive-field")
def test_receptive_field_formula_against_brute_force_on_random_stacks():
    rng = np.random.default_rng(7)
    for _ in range(12):
        layers = [Window(int(rng.integers(1, 5)), int(rng.integers(1, 3)), "valid") for _ in range(rng.integers(1, 4))]
        input_size = 24
        sizes = [input_size]
        for layer in layers:
            sizes.append(convolution.output_size(sizes[-1], layer.kernel_size, layer.stride, layer.padding))
        centre = sizes[-1] // 2  # valid padding: every output's field lies wholly inside the input
        mask = convolution.receptive_field_mask(layers, input_size, (centre, centre))
        field = convolution.receptive_fields(layers)[-1]
        assert _mask_side(mask) == (field, field), layers


def test_receptive_field_mask_rejects_a_unit_outside_the_output():
    with pytest.raises(ValueError, match="outside the 4×4 output"):
        convolution.receptive_field_mask([Window(3, 3)], 12, (4, 0))


# --- images ---------------------------------------------------------------------------------------------------


def test_sample_photo_and_grey():
    photo = convolution.sample_photo("flower.jpg")
    assert photo.shape == (427, 640, 3) and photo.dtype == np.float32
    assert 0.0 <= photo.min() and photo.max() <= 1.0
    grey = convolution.to_grey(photo)
    assert grey.shape == (427, 640)
    # the luma weights sum to 1, so a grey pixel (r = g = b) keeps its value
    np.testing.assert_allclose(convolution.to_grey(np.full((2, 2, 3), 0.5)), 0.5)
    with pytest.raises(ValueError, match="unknown sample image"):
        convolution.sample_photo("lena.png")
    with pytest.raises(ValueError, match=r"expected an RGB image of shape \(height, width, 3\), got \(4, 4\)"):
        convolution.to_grey(np.zeros((4, 4)))


def test_glyph_draws_something_in_range():
    letter = convolution.glyph("A", 24)
    assert letter.shape == (24, 24) and 0.0 <= letter.min() and letter.max() <= 1.0
    assert 0.05 < (letter > 0.5).mean() < 0.5  # some ink, mostly background
    with pytest.raises(ValueError, match="single character"):
        convolution.glyph("AB")
