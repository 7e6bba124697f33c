"""Tests of mlbook.tensors: rotations, derivatives, the original post's four Keras-tensor examples (with the values
corrected), the gradient-descent loop, and why stacked affine layers collapse (one regression test per item of the
chapter's "Notes on the original")."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mlbook import tensors
from mlbook.profiles import PROFILES, select

# float32 keeps ~7 significant digits; values of order 1–10 after a few products and sums are good to ~1e-5.
FLOAT32_ATOL = 1e-5


# ---- tensors as geometry ------------------------------------------------------------------------------------


@pytest.mark.parametrize("theta", [0.0, 0.3, np.pi / 2, 2.0, -1.1])
@pytest.mark.equation("eq-tensors-rotation")
def test_rotation_matrix_columns_are_u_and_v_and_it_is_a_rotation(theta):
    rotation = tensors.rotation_matrix(theta)
    np.testing.assert_allclose(rotation[:, 0], [np.cos(theta), np.sin(theta)], atol=1e-15)  # u
    np.testing.assert_allclose(rotation[:, 1], [-np.sin(theta), np.cos(theta)], atol=1e-15)  # v
    # Orthogonal with determinant +1 (a rotation, not a reflection); float64 round-off is ~1e-16 per entry.
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(2), atol=1e-14)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-14)


def test_rotations_compose_by_adding_angles_and_keep_lengths():
    np.testing.assert_allclose(
        tensors.rotation_matrix(0.4) @ tensors.rotation_matrix(1.1), tensors.rotation_matrix(1.5), atol=1e-14
    )
    points = np.random.default_rng(0).normal(size=(50, 2))
    rotated = tensors.rotate(points, 0.7)
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=1), np.linalg.norm(points, axis=1), rtol=1e-13)
    np.testing.assert_allclose(tensors.rotate(np.array([[1.0, 0.0]]), np.pi / 2), [[0.0, 1.0]], atol=1e-15)


def test_rotate_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"expected points of shape \(n, 2\), got \(3,\)"):
        tensors.rotate(np.zeros(3), 0.1)


# ---- derivatives --------------------------------------------------------------------------------------------


def test_central_difference_error_shrinks_like_h_squared():
    x = np.linspace(-2, 2, 9)
    errors = [np.abs(tensors.central_difference(np.sin, x, h) - np.cos(x)).max() for h in (1e-1, 1e-2)]
    # The truncation error is h² |f'''| / 6: ten times smaller h gives ~100 times smaller error (allow 80–120).
    assert 80 < errors[0] / errors[1] < 120


@pytest.mark.equation("eq-tensors-linear")
def test_linearisation_error_of_x_squared_is_epsilon_squared():
    # f(x) = x²: f(x + ε) − f(x) − 2x ε = ε² exactly (up to float64 round-off at these magnitudes, ~1e-15).
    epsilons = np.array([1e-3, 1e-2, 0.1, 0.5])
    errors = tensors.linearisation_error(np.square, lambda x: 2 * x, 1.5, epsilons)
    np.testing.assert_allclose(errors, epsilons**2, rtol=1e-9)


def test_central_difference_rejects_a_non_positive_step():
    with pytest.raises(ValueError, match="positive step, got 0"):
        tensors.central_difference(np.sin, 0.0, step=0.0)


# ---- the four Keras-tensor examples -------------------------------------------------------------------------


def test_example_identity_returns_ones_for_ones():
    np.testing.assert_array_equal(tensors.example_identity(np.ones(4)), [1.0, 1.0, 1.0, 1.0])


def test_example_square_of_twos_is_fours():
    np.testing.assert_array_equal(tensors.example_square(np.full(4, 2.0)), [4.0, 4.0, 4.0, 4.0])


def test_example_statistics_of_twos_is_2_4_2_4():
    x, square, mean, mean_of_square = tensors.example_statistics(np.full(4, 2.0))
    np.testing.assert_array_equal(x, [2.0] * 4)
    np.testing.assert_array_equal(square, [4.0] * 4)
    assert float(mean) == 2.0 and float(mean_of_square) == 4.0  # exact: powers of two are exact in float32


def test_example_statistics_of_ones_is_all_ones_not_the_posts_2_4_2_4():
    # Notes on the original: the post fed np.ones((4,)) but printed the outputs for twos.
    outputs = tensors.example_statistics(np.ones(4))
    assert [float(np.mean(value)) for value in outputs] == [1.0, 1.0, 1.0, 1.0]


def test_example_gradient_at_three_is_six():
    x, square, gradient = tensors.example_gradient(np.full(4, 3.0))
    np.testing.assert_array_equal(x, [3.0] * 4)
    np.testing.assert_array_equal(square, [9.0] * 4)
    np.testing.assert_array_equal(gradient, [6.0] * 4)  # d(x²)/dx = 2x, exact in float32


def test_example_gradient_matches_central_differences_away_from_three():
    values = np.array([-1.5, 0.25, 2.0, 7.0])
    _, _, gradient = tensors.example_gradient(values)
    # float64 central differences of x² are exact up to round-off (the third derivative is 0).
    np.testing.assert_allclose(gradient, tensors.central_difference(np.square, values), atol=1e-6)


def test_example_gradient_runs_the_same_as_a_traced_graph():
    graph_function = tf.function(tensors.example_gradient)
    eager = tensors.example_gradient(np.full(4, 3.0))
    traced = graph_function(tf.constant(np.full(4, 3.0), dtype=tf.float32))
    for expected, actual in zip(eager, traced):
        np.testing.assert_array_equal(actual, expected)


def test_statistics_model_is_symbolic_until_called():
    model = tensors.statistics_model()
    assert all(isinstance(output, keras.KerasTensor) for output in model.outputs)  # no values, only shapes
    assert model.outputs[0].shape == (None, 4) and model.outputs[2].shape == (None,)
    x, square, mean, mean_of_square = model(np.full((1, 4), 2.0, dtype="float32"))
    np.testing.assert_array_equal(square, [[4.0] * 4])
    assert float(mean[0]) == 2.0 and float(mean_of_square[0]) == 4.0


# ---- the training loop --------------------------------------------------------------------------------------


def line_data(num_points: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, num_points)
    return x, 1.5 * x - 0.5 + rng.normal(scale=0.3, size=num_points)


@pytest.mark.equation("eq-tensors-line-loss")
def test_line_loss_gradient_matches_the_tape_and_finite_differences():
    x, y = line_data()
    w, b = 0.3, -0.2
    exact = np.array(tensors.line_loss_gradient(x, y, w, b))
    w_var, b_var = tf.Variable(w, dtype=tf.float64), tf.Variable(b, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = tensors.mean_squared_error(w_var * x + b_var, tf.constant(y))
    np.testing.assert_allclose([g.numpy() for g in tape.gradient(loss, [w_var, b_var])], exact, rtol=1e-12)
    h = 1e-6  # float64 central differences of a quadratic: exact up to round-off ~ eps·|loss|/h ≈ 1e-10
    surface = lambda wv, bv: tensors.line_loss_surface(x, y, np.array(wv), np.array(bv))  # noqa: E731
    numerical = [(surface(w + h, b) - surface(w - h, b)) / (2 * h), (surface(w, b + h) - surface(w, b - h)) / (2 * h)]
    np.testing.assert_allclose(numerical, exact, atol=1e-8)


def test_fit_line_converges_to_least_squares_and_the_loss_falls_every_step():
    x, y = line_data()
    run = tensors.fit_line(x, y, learning_rate=0.1, num_steps=300)
    slope, intercept = np.polyfit(x, y, 1)
    # The loss is a convex quadratic and 0.1 is below 2 / (largest curvature), so every step lowers it until it
    # reaches its minimum to float32 precision (after ~40 steps here); from then on it may only wobble by
    # round-off (~1e-7 relative). After 300 steps the parameters' error has contracted by far more than 1e-4.
    losses = run["loss"]
    assert np.all(np.diff(losses[:30]) < 0)
    assert np.all(np.diff(losses) <= 1e-6 * losses[-1])
    assert run["w"][-1] == pytest.approx(slope, abs=1e-4) and run["b"][-1] == pytest.approx(intercept, abs=1e-4)
    assert run["w"].shape == run["b"].shape == (301,) and run["w"][0] == 0.0


@pytest.mark.equation("eq-tensors-descent")
def test_gradient_descent_moves_every_weight_against_its_gradient():
    """W ← W − η ∇L for L = Σ (W − c)², whose gradient 2 (W − c) is known: three steps by hand, in float64."""
    target = np.array([3.0, -1.0])
    weights = tf.Variable(np.array([0.0, 4.0]))
    run = tensors.gradient_descent(lambda: tf.reduce_sum((weights - target) ** 2), [weights], 0.1, 3, track=True)
    expected = [np.array([0.0, 4.0])]
    for _ in range(3):
        expected.append(expected[-1] - 0.1 * 2 * (expected[-1] - target))
    np.testing.assert_allclose(run["values_0"], expected, rtol=1e-12)  # exact arithmetic up to round-off
    np.testing.assert_allclose(run["loss"], [np.sum((w - target) ** 2) for w in expected[:3]], rtol=1e-12)


def test_gradient_descent_checks_its_arguments():
    variable = tf.Variable(1.0)
    with pytest.raises(ValueError, match="learning_rate > 0"):
        tensors.gradient_descent(lambda: variable**2, [variable], learning_rate=0.0, num_steps=5)


# ---- why activations are needed -----------------------------------------------------------------------------


@pytest.mark.equation("eq-tensors-collapse")
def test_stacked_linear_dense_layers_equal_one_affine_map():
    model = tensors.dense_stack(3, (8, 5), activation=None, seed=0)
    kernel, bias = tensors.collapse_affine([(layer.kernel.numpy(), layer.bias.numpy()) for layer in model.layers])
    assert kernel.shape == (3, 1) and bias.shape == (1,)
    points = np.random.default_rng(1).normal(size=(20, 3)).astype("float32")
    np.testing.assert_allclose(model(points).numpy(), points @ kernel + bias, atol=FLOAT32_ATOL)


def test_relu_stack_is_not_affine():
    model = tensors.dense_stack(1, (16, 16), activation="relu", seed=0)
    x = np.linspace(-3, 3, 61, dtype="float32")[:, None]
    outputs = model(x).numpy().ravel()
    # An affine function has zero second differences; a relu network bends at its kinks (far above float32 noise).
    assert np.abs(np.diff(outputs, 2)).max() > 1e-3


def test_collapse_affine_names_the_mismatched_layer():
    with pytest.raises(ValueError, match="layer 1 expects 4 inputs, got 3"):
        tensors.collapse_affine([(np.ones((2, 3)), np.zeros(3)), (np.ones((4, 1)), np.zeros(1))])


def test_a_linear_stack_cannot_beat_the_best_straight_line_but_a_relu_stack_can():
    x = np.linspace(-3, 3, 80)
    y = np.abs(x)
    best_line_loss = np.mean((np.polyval(np.polyfit(x, y, 1), x) - y) ** 2)  # least squares: 0.75 here
    linear = tensors.dense_stack(1, (16, 16), activation=None, seed=0)
    relu = tensors.dense_stack(1, (16, 16), activation="relu", seed=0)
    linear_loss = tensors.fit_curve(linear, x, y, learning_rate=0.01, num_steps=300)[-1]
    relu_loss = tensors.fit_curve(relu, x, y, learning_rate=0.01, num_steps=300)[-1]
    assert linear_loss >= best_line_loss * (1 - 1e-4)  # an affine map; 1e-4 allows float32 round-off
    assert relu_loss < 0.5 * best_line_loss


@pytest.mark.parametrize("profile", PROFILES)
def test_settings_exist_for_every_profile(profile):
    cfg = select(tensors.SETTINGS, profile)
    assert cfg.descent_steps > 0 and 0 < cfg.descent_learning_rate < 1
