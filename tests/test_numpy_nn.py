"""Tests of mlbook.numpy_nn: the chapter's equations, gradients against finite differences, and the fixes of the
original blog series (one regression test per item of the chapter's "Notes on the original")."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mlbook import numpy_nn as nn
from mlbook.profiles import PROFILES, select

# Central differences in float64 with step H: truncation error ~ H² f''' / 6 ≈ 1e-12 and round-off ~ eps · |f| / H
# ≈ 2e-10 for the O(1) values tested here, so 1e-7 leaves a wide margin while still catching any wrong factor.
H = 1e-6
FD_ATOL = 1e-7

# Points away from every kink (relu and step at 0, the registry's ramp at ±1): the nearest is 0.014 from a kink,
# four orders of magnitude beyond H, so no difference quotient straddles one.
SMOOTH_POINTS = np.linspace(-3.9, 3.9, 23) + 0.05


def central_difference(function, x: np.ndarray) -> np.ndarray:
    return (function(x + H) - function(x - H)) / (2 * H)


# ---- transfer functions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(nn.TRANSFER_FUNCTIONS))
def test_transfer_function_derivative_matches_finite_differences(name):
    transfer = nn.get_transfer_function(name)
    np.testing.assert_allclose(
        transfer.derivative(SMOOTH_POINTS), central_difference(transfer.function, SMOOTH_POINTS), rtol=0, atol=FD_ATOL
    )


def test_step_derivative_is_zero_away_from_the_threshold_and_the_step_jumps_at_it():
    np.testing.assert_array_equal(nn.STEP.derivative(SMOOTH_POINTS), 0.0)  # exactly 0: no gradient ever flows
    # At the threshold the difference quotient is 1 / (2H) and grows without bound as H shrinks: a Dirac delta.
    assert central_difference(nn.STEP.function, np.array([0.0]))[0] == pytest.approx(1 / (2 * H))


def test_ramp_derivative_is_one_over_the_width_not_one():
    """Regression: the original ramp returned a derivative of 1 inside [T1, T2]; the slope is 1 / (T2 − T1)."""
    ramp = nn.ramp(-2.0, 3.0)  # the thresholds of the original's figure
    inside = np.array([-1.5, 0.0, 2.5])
    np.testing.assert_allclose(ramp.derivative(inside), 0.2, rtol=1e-15)  # 1 / 5, up to one rounding
    np.testing.assert_allclose(ramp.derivative(inside), central_difference(ramp.function, inside), atol=FD_ATOL)
    np.testing.assert_array_equal(ramp.derivative(np.array([-3.0, 4.0])), 0.0)
    np.testing.assert_array_equal(ramp.function(np.array([-5.0, -2.0, 0.5, 3.0, 9.0])), [0.0, 0.0, 0.5, 1.0, 1.0])


def test_ramp_needs_increasing_thresholds():
    """The original's ``T2=np.max(x)`` default referred to ``x`` before it existed; ours takes numbers, checked."""
    with pytest.raises(ValueError, match="t1 < t2"):
        nn.ramp(1.0, 1.0)


def test_sigmoid_is_stable_for_large_inputs_and_matches_the_formula():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    values = nn.sigmoid(x)  # pytest turns an overflow RuntimeWarning into an error
    assert values[0] == 0.0 and values[-1] == 1.0 and values[2] == 0.5
    moderate = np.linspace(-20, 20, 41)
    # Both forms are accurate to a few ulps in this range.
    np.testing.assert_allclose(nn.sigmoid(moderate), 1 / (1 + np.exp(-moderate)), rtol=1e-14)


def test_unknown_transfer_function_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown transfer function 'softmax'.*sigmoid") as excinfo:
        nn.get_transfer_function("softmax")
    assert all(name in str(excinfo.value) for name in nn.TRANSFER_FUNCTIONS)


# ---- error and gradients ---------------------------------------------------------------------------------------


@pytest.mark.equation("eq-nn-error")
def test_error_has_the_half_eq_nn_error():
    """Regression: the original code summed (O − t)² without the ½ of its own equation for E."""
    network = nn.NeuralNetwork((1, 1), ["linear"])
    network.weights = [np.array([[2.0, 1.0]])]  # O = 2x + 1
    inputs, targets = np.array([[3.0], [0.0]]), np.array([[4.0], [0.0]])  # O = 7, 1; residuals 3, 1
    assert network.error(inputs, targets) == 0.5 * (3.0**2 + 1.0**2)  # small integers: exact in float64


def test_error_on_the_plateau_is_one_half():
    """With zero weights a sigmoid net outputs 0.5 everywhere: E = ½ · 4 · 0.25 on XOR (the chapter's plateau)."""
    network = nn.NeuralNetwork((2, 2, 1))
    network.weights = [np.zeros_like(w) for w in network.weights]
    assert network.error(*nn.xor_dataset()) == 0.5  # 0.5² and the sums are exact in binary


@pytest.mark.equation("eq-nn-forward", "eq-nn-vector-forward")
def test_predict_is_the_forward_pass_node_by_node():
    """x_j = Σ_i W_ij O_i + θ_j and O_j = f(x_j), one node at a time, against the vectorised forward pass."""
    network = nn.NeuralNetwork((2, 3, 1), ["tanh", "sigmoid"], weight_scale=0.8, seed=8)
    inputs = np.array([[0.3, -0.7], [1.2, 0.4]])
    for sample, predicted in zip(inputs, network.predict(inputs)):
        outputs = list(sample)
        for weights, transfer in zip(network.weights, (np.tanh, nn.sigmoid)):  # θ_j is the last column
            outputs = [transfer(sum(weights[j, i] * o_i for i, o_i in enumerate(outputs)) + weights[j, -1])
                       for j in range(len(weights))]
        np.testing.assert_allclose(predicted, outputs, rtol=1e-12)  # the same sums in another order: a few ulps


def numerical_gradients(network: nn.NeuralNetwork, inputs, targets) -> list[np.ndarray]:
    return nn.numerical_gradients(network, inputs, targets, step=H)


def test_numerical_gradients_of_a_quadratic_are_exact_up_to_round_off():
    # One linear layer, zero targets: E = ½ Σ (W [x; 1])², whose gradient is (W [x; 1]) [x; 1]^T exactly; a
    # central difference is exact for quadratics, so only round-off (~1e-10 here) separates the two.
    network = nn.NeuralNetwork((3, 2), ["linear"], weight_scale=1.0, seed=5)
    inputs, targets = np.random.default_rng(1).normal(size=(4, 3)), np.zeros((4, 2))
    augmented = np.vstack([inputs.T, np.ones((1, 4))])
    exact = (network.weights[0] @ augmented) @ augmented.T
    np.testing.assert_allclose(numerical_gradients(network, inputs, targets)[0], exact, atol=FD_ATOL)
    with pytest.raises(ValueError, match="step must be positive"):
        nn.numerical_gradients(network, inputs, targets, step=0.0)


ARCHITECTURES = [
    ((2, 3, 1), ["sigmoid", "sigmoid"]),
    ((2, 3, 1), ["sigmoid", "linear"]),
    ((3, 4, 2), ["tanh", "linear"]),
    ((2, 4, 3, 2), ["sigmoid", "tanh", "linear"]),
    ((2, 3, 1), ["gaussian", "sigmoid"]),
    ((2, 5, 1), ["relu", "linear"]),
    ((2, 3, 2), ["ramp", "tanh"]),
    ((4, 2), ["sigmoid"]),
]


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 4)), rng.uniform(size=(5, 3))


def _data_for(layer_sizes, batch):
    inputs, targets = batch
    return inputs[:, : layer_sizes[0]], targets[:, : layer_sizes[-1]]


@pytest.mark.parametrize(("layer_sizes", "transfer_functions"), ARCHITECTURES)
@pytest.mark.parametrize("method", ["gradients", "gradients_loop"])
@pytest.mark.equation("eq-nn-delta-output", "eq-nn-delta-hidden", "eq-nn-vector-deltas", "eq-nn-vector-gradient")
def test_backprop_matches_finite_differences(layer_sizes, transfer_functions, method, batch):
    # weight_scale=0.7 puts pre-activations where the transfer functions bend, so the hidden deltas matter.
    network = nn.NeuralNetwork(layer_sizes, transfer_functions, weight_scale=0.7, seed=3)
    inputs, targets = _data_for(layer_sizes, batch)
    analytic = getattr(network, method)(inputs, targets)
    for got, expected in zip(analytic, numerical_gradients(network, inputs, targets)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=FD_ATOL)


@pytest.mark.parametrize(("layer_sizes", "transfer_functions"), ARCHITECTURES)
def test_loop_and_vectorised_gradients_agree(layer_sizes, transfer_functions, batch):
    network = nn.NeuralNetwork(layer_sizes, transfer_functions, weight_scale=0.7, seed=4)
    inputs, targets = _data_for(layer_sizes, batch)
    # Same sums in a different order: they may differ by a few ulps, hence 1e-12 relative (atol for exact zeros).
    for loop, vectorised in zip(network.gradients_loop(inputs, targets), network.gradients(inputs, targets)):
        np.testing.assert_allclose(loop, vectorised, rtol=1e-12, atol=1e-15)


@pytest.mark.equation("eq-nn-delta-output", "eq-nn-delta-hidden", "eq-nn-vector-deltas", "eq-nn-vector-gradient")
def test_hidden_delta_has_o_j_not_o_i_eq_nn_delta_hidden():
    """Regression: the series wrote δ_j = O_i (1 − O_j) Σ δ_k W_jk; the sigmoid form has O_j (1 − O_j)."""
    network = nn.NeuralNetwork((2, 3, 1), seed=5, weight_scale=0.8)
    inputs, targets = np.array([[0.3, -0.7]]), np.array([[1.0]])
    (w_ij, w_jk), o_i = network.weights, inputs[0]
    o_j = nn.sigmoid(w_ij @ np.append(o_i, 1.0))
    o_k = nn.sigmoid(w_jk @ np.append(o_j, 1.0))
    delta_k = o_k * (1 - o_k) * (o_k - targets[0])
    delta_j = o_j * (1 - o_j) * (w_jk[:, :-1].T @ delta_k)  # the bias column has no node to pull back to
    expected = [np.outer(delta_j, np.append(o_i, 1.0)), np.outer(delta_k, np.append(o_j, 1.0))]  # ΔW ∝ δ Oᵀ
    for got, want in zip(network.gradients(inputs, targets), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)  # same formula, different operation order: a few ulps


# ---- training --------------------------------------------------------------------------------------------------


@pytest.mark.equation("eq-nn-update")
def test_momentum_zero_is_plain_gradient_descent():
    inputs, targets = nn.xor_dataset()
    network = nn.NeuralNetwork((2, 3, 1), seed=6)
    by_hand = copy.deepcopy(network)
    for _ in range(3):
        gradients = by_hand.gradients(inputs, targets)
        by_hand.weights = [w - 0.3 * g for w, g in zip(by_hand.weights, gradients)]
        network.train_step(inputs, targets, learning_rate=0.3, momentum=0.0)
        for got, want in zip(network.weights, by_hand.weights):
            # W + (−η g + 0) and W − η g round identically; allow one ulp of slack anyway.
            np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-17)


@pytest.mark.equation("eq-nn-momentum")
def test_momentum_follows_the_recurrence_eq_nn_momentum():
    inputs, targets = nn.xor_dataset()
    learning_rate, momentum = 0.3, 0.8
    network = nn.NeuralNetwork((2, 3, 1), seed=7)
    plain = copy.deepcopy(network)
    by_hand = copy.deepcopy(network)
    previous = [np.zeros_like(w) for w in by_hand.weights]  # ΔW(0) = 0
    for step in range(3):
        deltas = [-learning_rate * g + momentum * p for g, p in zip(by_hand.gradients(inputs, targets), previous)]
        by_hand.weights = [w + d for w, d in zip(by_hand.weights, deltas)]
        previous = deltas
        network.train_step(inputs, targets, learning_rate, momentum)
        plain.train_step(inputs, targets, learning_rate, momentum=0.0)
        differs = any(not np.allclose(a, b, rtol=1e-6, atol=0) for a, b in zip(network.weights, plain.weights))
        # Step 1 starts from ΔW(0) = 0, so momentum changes nothing yet; from step 2 on it must.
        assert differs == (step > 0)
        for got, want in zip(network.weights, by_hand.weights):
            np.testing.assert_allclose(got, want, rtol=1e-14)  # identical arithmetic, a few ulps at most


def test_train_records_the_error_before_each_step_and_stops_at_min_error():
    inputs, targets = nn.xor_dataset()
    network = nn.NeuralNetwork((2, 2, 1), seed=8)
    start = network.error(inputs, targets)
    errors = network.train(inputs, targets, num_iterations=5, learning_rate=0.2)
    assert len(errors) == 5 and errors[0] == start  # error of the untouched weights: the same computation
    assert len(network.train(inputs, targets, num_iterations=50, learning_rate=0.2, min_error=1.0)) == 1


def test_learns_xor_from_a_fixed_seed():
    """The chapter's sigmoid + linear-output run: it leaves the E = ½ plateau and reaches min_error quickly."""
    inputs, targets = nn.xor_dataset()
    network = nn.NeuralNetwork((2, 2, 1), ["sigmoid", "linear"], seed=1234)
    errors = network.train(inputs, targets, 5_000, learning_rate=0.2, momentum=0.5, min_error=1e-5)
    # E < 1e-3 means every |O − t| < sqrt(2e-3) ≈ 0.045, far from the 0.5 where rounding would flip an answer.
    assert errors[-1] < 1e-3
    np.testing.assert_array_equal(np.round(network.predict(inputs)), targets)


def test_two_networks_do_not_share_weights():
    """Regression: the original kept ``weights = []`` on the class, so every new network appended to one list."""
    first = nn.NeuralNetwork((2, 2, 1), seed=0)
    second = nn.NeuralNetwork((3, 4, 2), seed=0)
    assert not hasattr(nn.NeuralNetwork, "weights")
    assert [w.shape for w in first.weights] == [(2, 3), (1, 3)]
    assert [w.shape for w in second.weights] == [(4, 4), (2, 5)]
    before = second.weights[0].copy()
    first.train_step(*nn.xor_dataset(), learning_rate=0.5)
    np.testing.assert_array_equal(second.weights[0], before)


def test_beats_chance_on_two_moons():
    inputs, labels = nn.two_moons(200, noise=0.2, seed=0)
    test_inputs, test_labels = nn.two_moons(500, noise=0.2, seed=1)
    network = nn.NeuralNetwork((2, 8, 1), ["tanh", "sigmoid"], seed=0)
    network.train(inputs, labels, 300, learning_rate=2.0 / len(inputs), momentum=0.9)
    # Chance is 0.5; a straight line already scores ~0.85 here, so 0.8 on held-out points is a safe floor.
    assert nn.accuracy(network.predict(test_inputs), test_labels) > 0.8


# ---- input checks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "targets", "message"),
    [
        (np.zeros((4, 3)), np.zeros((4, 1)), r"expected inputs of shape \(n_samples, 2\), got \(4, 3\)"),
        (np.zeros(2), np.zeros((1, 1)), r"expected inputs of shape \(n_samples, 2\), got \(2,\)"),
        (np.zeros((4, 2)), np.zeros(4), r"expected targets of shape \(4, 1\).*got \(4,\)"),
        (np.zeros((4, 2)), np.zeros((3, 1)), r"expected targets of shape \(4, 1\).*got \(3, 1\)"),
    ],
)
@pytest.mark.parametrize("method", ["error", "gradients", "gradients_loop"])
def test_bad_shapes_name_expected_and_actual(inputs, targets, message, method):
    network = nn.NeuralNetwork((2, 2, 1))
    with pytest.raises(ValueError, match=message):
        getattr(network, method)(inputs, targets)
    with pytest.raises(ValueError, match=message):
        network.train_step(inputs, targets, learning_rate=0.1)


def test_predict_checks_inputs_and_returns_samples_by_outputs():
    network = nn.NeuralNetwork((2, 3, 4))
    assert network.predict(np.zeros((5, 2))).shape == (5, 4)
    with pytest.raises(ValueError, match=r"got \(5, 3\)"):
        network.predict(np.zeros((5, 3)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_sizes": (2,)}, "at least two positive layer sizes"),
        ({"layer_sizes": (2, 0, 1)}, "at least two positive layer sizes"),
        ({"layer_sizes": (2, 2, 1), "transfer_functions": ["sigmoid"]}, "expected 2 transfer functions"),
        ({"layer_sizes": (2, 1), "transfer_functions": ["sigmoidd"]}, "unknown transfer function 'sigmoidd'"),
    ],
)
def test_bad_network_definitions_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.NeuralNetwork(**kwargs)


@pytest.mark.parametrize(
    ("learning_rate", "momentum", "message"), [(0.0, 0.0, "learning_rate"), (0.1, 1.0, "momentum")]
)
def test_train_step_checks_its_rates(learning_rate, momentum, message):
    """The original's loop passed ``learningRate=`` to a method taking ``trainingRate`` (a TypeError)."""
    with pytest.raises(ValueError, match=message):
        nn.NeuralNetwork((2, 1)).train_step(*nn.xor_dataset(), learning_rate=learning_rate, momentum=momentum)


# ---- helpers and settings --------------------------------------------------------------------------------------


def test_datasets_have_the_network_shapes():
    inputs, targets = nn.xor_dataset()
    assert inputs.shape == (4, 2) and targets.shape == (4, 1)
    np.testing.assert_array_equal(targets[:, 0], np.logical_xor(inputs[:, 0], inputs[:, 1]))
    points, labels = nn.two_moons(50, noise=0.1, seed=0)
    assert points.shape == (50, 2) and labels.shape == (50, 1) and set(np.unique(labels)) == {0.0, 1.0}


def test_accuracy_counts_thresholded_matches():
    assert nn.accuracy(np.array([[0.9], [0.2], [0.6]]), np.array([[1.0], [1.0], [0.0]])) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same shape"):
        nn.accuracy(np.zeros((3, 1)), np.zeros(3))


def test_time_gradients_reports_both_timings():
    network = nn.NeuralNetwork((2, 3, 1), seed=0)
    timings = nn.time_gradients(network, *nn.xor_dataset(), repeats=1)
    assert timings["loop_s"] > 0 and timings["vectorised_s"] > 0
    assert timings["speedup"] == pytest.approx(timings["loop_s"] / timings["vectorised_s"])
    with pytest.raises(ValueError, match="repeats"):
        nn.time_gradients(network, *nn.xor_dataset(), repeats=0)


def test_settings_cover_every_profile_and_quick_is_smaller():
    assert set(nn.SETTINGS) == set(PROFILES)
    quick, full = select(nn.SETTINGS, "quick"), select(nn.SETTINGS, "full")
    assert quick.xor_iterations <= full.xor_iterations and quick.moons_samples <= full.moons_samples
    assert full.xor_iterations == 100_000  # the original series' run
