"""A fully connected neural network written from scratch in NumPy, trained by backpropagation.

The notation follows the chapter :ref:`ch-numpy-nn`: a layer ``J`` receives the outputs ``O_I`` of the layer ``I``
before it, appends a constant 1 (the bias input) and computes ``O_J = f(x_J)`` with ``x_J = W_IJ [O_I; 1]``. Every
weight matrix therefore has shape ``(n_out, n_in + 1)``, its last column holding the biases. Internally examples are
stacked as *columns*; the public API takes the usual ``(n_samples, n_features)`` arrays.

References:
    Rumelhart, D. E., Hinton, G. E. & Williams, R. J. (1986). Learning representations by back-propagating
    errors. *Nature* 323, 533–536.
    Polyak, B. T. (1964). Some methods of speeding up the convergence of iteration methods. *USSR Computational
    Mathematics and Mathematical Physics* 4(5), 1–17.
    Qian, N. (1999). On the momentum term in gradient descent learning algorithms. *Neural Networks* 12(1), 145–151.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

Array = np.ndarray

#: The constant fed to every layer's extra weight column (the bias input).
BIAS_INPUT = 1.0


# --------------------------------------------------------------------------------------------------------------
# Transfer functions: each a function of the pre-activation x, with its derivative df/dx.
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TransferFunction:
    """A transfer (activation) function ``f`` and its derivative ``f'``, both functions of the pre-activation."""

    name: str
    function: Callable[[Array], Array]
    derivative: Callable[[Array], Array]

    def __call__(self, x: Array) -> Array:
        return self.function(x)


def sigmoid(x: Array) -> Array:
    """The logistic function ``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""
    x = np.asarray(x, dtype=float)
    z = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def sigmoid_derivative(x: Array) -> Array:
    """``σ'(x) = σ(x) (1 − σ(x))``."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh_derivative(x: Array) -> Array:
    """``tanh'(x) = 1 − tanh(x)²``."""
    return 1.0 - np.tanh(x) ** 2


def relu(x: Array) -> Array:
    """The rectified linear unit ``max(0, x)``."""
    return np.maximum(0.0, np.asarray(x, dtype=float))


def relu_derivative(x: Array) -> Array:
    """1 for ``x > 0``, else 0 (the kink at 0 is given the value 0)."""
    return (np.asarray(x) > 0).astype(float)


def linear(x: Array) -> Array:
    """The identity ``f(x) = x``."""
    return np.asarray(x, dtype=float)


def linear_derivative(x: Array) -> Array:
    """1 everywhere."""
    return np.ones_like(np.asarray(x, dtype=float))


def gaussian(x: Array) -> Array:
    """``exp(−x²)``."""
    return np.exp(-np.square(np.asarray(x, dtype=float)))


def gaussian_derivative(x: Array) -> Array:
    """``−2x exp(−x²)``."""
    x = np.asarray(x, dtype=float)
    return -2.0 * x * np.exp(-np.square(x))


def step(x: Array) -> Array:
    """The Heaviside step with threshold 0: 0 for ``x ≤ 0``, 1 for ``x > 0``."""
    return (np.asarray(x) > 0).astype(float)


def step_derivative(x: Array) -> Array:
    """0 everywhere we can evaluate it.

    The true derivative is a Dirac delta at the threshold, so no gradient ever reaches the weights: a step
    network cannot be trained by backpropagation. It is here for comparison (the perceptron's unit).
    """
    return np.zeros_like(np.asarray(x, dtype=float))


def ramp(t1: float = -1.0, t2: float = 1.0) -> TransferFunction:
    """The ramp: 0 below ``t1``, rising linearly to 1 at ``t2``, then 1.

    Args:
        t1: where the ramp leaves 0.
        t2: where it reaches 1; must exceed ``t1``.

    Returns:
        A :class:`TransferFunction` whose derivative is ``1 / (t2 − t1)`` inside ``(t1, t2)`` and 0 outside.

    Raises:
        ValueError: if ``t2 <= t1``.
    """
    if not t2 > t1:
        raise ValueError(f"ramp needs t1 < t2, got t1={t1}, t2={t2}")
    slope = 1.0 / (t2 - t1)

    def function(x: Array) -> Array:
        return np.clip((np.asarray(x, dtype=float) - t1) * slope, 0.0, 1.0)

    def derivative(x: Array) -> Array:
        x = np.asarray(x, dtype=float)
        return np.where((x > t1) & (x < t2), slope, 0.0)

    return TransferFunction(f"ramp({t1:g}, {t2:g})", function, derivative)


SIGMOID = TransferFunction("sigmoid", sigmoid, sigmoid_derivative)
TANH = TransferFunction("tanh", np.tanh, tanh_derivative)
RELU = TransferFunction("relu", relu, relu_derivative)
LINEAR = TransferFunction("linear", linear, linear_derivative)
GAUSSIAN = TransferFunction("gaussian", gaussian, gaussian_derivative)
STEP = TransferFunction("step", step, step_derivative)

#: Every transfer function by name; ``"ramp"`` is the ramp from −1 to 1.
TRANSFER_FUNCTIONS: dict[str, TransferFunction] = {
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "linear": LINEAR,
    "gaussian": GAUSSIAN,
    "step": STEP,
    "ramp": ramp(-1.0, 1.0),
}


def get_transfer_function(name: str | TransferFunction) -> TransferFunction:
    """Look a transfer function up by name (a :class:`TransferFunction` is returned unchanged).

    Raises:
        ValueError: if the name is unknown; the message lists the valid names.
    """
    if isinstance(name, TransferFunction):
        return name
    if name not in TRANSFER_FUNCTIONS:
        raise ValueError(
            f"unknown transfer function {name!r}; valid names are: {', '.join(sorted(TRANSFER_FUNCTIONS))}"
        )
    return TRANSFER_FUNCTIONS[name]


# --------------------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------------------


def _with_bias_row(outputs: Array) -> Array:
    """Append the constant bias input as a last row: ``(n, m) -> (n + 1, m)``."""
    return np.vstack([outputs, np.full((1, outputs.shape[1]), BIAS_INPUT)])


class NeuralNetwork:
    """A fully connected feed-forward network trained by full-batch gradient descent with momentum.

    Args:
        layer_sizes: nodes per layer, input first, e.g. ``(2, 2, 1)``.
        transfer_functions: one name or :class:`TransferFunction` per layer after the input (default: sigmoid).
        weight_scale: standard deviation of the normal distribution the initial weights are drawn from.
        seed: seed of the network's own ``numpy.random.Generator``.

    Raises:
        ValueError: for fewer than two layers, a non-positive size, the wrong number of transfer functions or an
            unknown transfer-function name.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        transfer_functions: Sequence[str | TransferFunction] | None = None,
        weight_scale: float = 0.1,
        seed: int | None = None,
    ) -> None:
        layer_sizes = tuple(int(n) for n in layer_sizes)
        if len(layer_sizes) < 2 or min(layer_sizes) < 1:
            raise ValueError(f"expected at least two positive layer sizes (input, ..., output), got {layer_sizes}")
        num_layers = len(layer_sizes) - 1
        if transfer_functions is None:
            transfer_functions = ["sigmoid"] * num_layers
        if len(transfer_functions) != num_layers:
            raise ValueError(
                f"expected {num_layers} transfer functions (one per layer after the input), "
                f"got {len(transfer_functions)}"
            )
        self.layer_sizes = layer_sizes
        self.transfer_functions = [get_transfer_function(f) for f in transfer_functions]
        rng = np.random.default_rng(seed)
        # Instance attributes: every network owns its weights (the original shared one class-level list).
        self.weights: list[Array] = [
            rng.normal(scale=weight_scale, size=(n_out, n_in + 1))
            for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])
        ]
        self.previous_weight_deltas: list[Array] = [np.zeros_like(w) for w in self.weights]

    def __repr__(self) -> str:
        names = ", ".join(f.name for f in self.transfer_functions)
        return f"NeuralNetwork(layer_sizes={self.layer_sizes}, transfer_functions=[{names}])"

    # ---- input checks -------------------------------------------------------------------------------------

    def _check_inputs(self, inputs: Array) -> Array:
        inputs = np.asarray(inputs, dtype=float)
        if inputs.ndim != 2 or inputs.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"expected inputs of shape (n_samples, {self.layer_sizes[0]}), got {inputs.shape}")
        return inputs

    def _check_targets(self, targets: Array, num_samples: int) -> Array:
        targets = np.asarray(targets, dtype=float)
        expected = (num_samples, self.layer_sizes[-1])
        if targets.shape != expected:
            raise ValueError(f"expected targets of shape {expected} (n_samples, n_outputs), got {targets.shape}")
        return targets

    # ---- forward pass and error ---------------------------------------------------------------------------

    def _forward(self, inputs: Array) -> tuple[list[Array], list[Array]]:
        """Run the columns of ``inputs.T`` through the network.

        Returns:
            ``(pre_activations, outputs)``: ``x_l`` for every layer after the input, and ``O_l`` for every layer
            including the input, each of shape ``(nodes, n_samples)``.
        """
        outputs = [inputs.T]
        pre_activations = []
        for weights, transfer in zip(self.weights, self.transfer_functions):
            x = weights @ _with_bias_row(outputs[-1])
            pre_activations.append(x)
            outputs.append(transfer.function(x))
        return pre_activations, outputs

    def predict(self, inputs: Array) -> Array:
        """The network's outputs, shape ``(n_samples, n_outputs)``, for inputs of shape ``(n_samples, n_inputs)``.

        Implements: eq-nn-forward, eq-nn-vector-forward

        Raises:
            ValueError: if ``inputs`` has the wrong shape.
        """
        _, outputs = self._forward(self._check_inputs(inputs))
        return outputs[-1].T

    def error(self, inputs: Array, targets: Array) -> float:
        """The squared error ``E = ½ Σ (O − t)²``, summed over samples and outputs.

        Implements: eq-nn-error

        Raises:
            ValueError: if ``inputs`` or ``targets`` has the wrong shape.
        """
        inputs = self._check_inputs(inputs)
        targets = self._check_targets(targets, len(inputs))
        return 0.5 * float(np.sum((self.predict(inputs) - targets) ** 2))

    # ---- backpropagation ----------------------------------------------------------------------------------

    def error_and_gradients(self, inputs: Array, targets: Array) -> tuple[float, list[Array]]:
        """The error ``E`` and its gradient with respect to every weight matrix, by vectorised backpropagation.

        With examples as columns, ``δ_K = f'(x_K) * (O_K − t)``, ``δ_J = f'(x_J) * (W_JKᵀ δ_K)[:-1]`` (the bias
        row dropped) and ``∂E/∂W_JK = δ_K [O_J; 1]ᵀ``, the matrix product summing over examples
        (Rumelhart, Hinton & Williams, 1986).

        Implements: eq-nn-vector-deltas, eq-nn-vector-gradient

        Returns:
            ``(E, gradients)``: one gradient array per weight matrix, of the same shape.

        Raises:
            ValueError: if ``inputs`` or ``targets`` has the wrong shape.
        """
        inputs = self._check_inputs(inputs)
        targets = self._check_targets(targets, len(inputs))
        pre_activations, outputs = self._forward(inputs)
        residual = outputs[-1] - targets.T  # O_K − t, shape (n_outputs, n_samples)
        delta = self.transfer_functions[-1].derivative(pre_activations[-1]) * residual
        gradients: list[Array] = [np.empty(0)] * len(self.weights)
        for layer in reversed(range(len(self.weights))):
            gradients[layer] = delta @ _with_bias_row(outputs[layer]).T  # Σ over samples of δ [O; 1]ᵀ
            if layer > 0:
                pulled_back = (self.weights[layer].T @ delta)[:-1]  # drop the bias row: no node feeds the bias
                delta = self.transfer_functions[layer - 1].derivative(pre_activations[layer - 1]) * pulled_back
        return 0.5 * float(np.sum(residual**2)), gradients

    def gradients(self, inputs: Array, targets: Array) -> list[Array]:
        """The gradient of :meth:`error` with respect to every weight matrix (see :meth:`error_and_gradients`).

        Returns:
            One array per weight matrix, of the same shape.

        Raises:
            ValueError: if ``inputs`` or ``targets`` has the wrong shape.
        """
        return self.error_and_gradients(inputs, targets)[1]

    def gradients_loop(self, inputs: Array, targets: Array) -> list[Array]:
        """The same gradient as :meth:`gradients`, one example, node and weight at a time in Python loops.

        This is the algorithm as first written down, before vectorisation; it is slow and kept for comparison.

        Implements: eq-nn-delta-output, eq-nn-delta-hidden

        Raises:
            ValueError: if ``inputs`` or ``targets`` has the wrong shape.
        """
        inputs = self._check_inputs(inputs)
        targets = self._check_targets(targets, len(inputs))
        gradients = [np.zeros_like(w) for w in self.weights]
        for sample, target in zip(inputs, targets):
            xs, outs = self._forward_one_loop(sample)
            derivative = self.transfer_functions[-1].derivative
            deltas = [float(derivative(x_k)) * (o_k - t_k) for x_k, o_k, t_k in zip(xs[-1], outs[-1], target)]
            for layer in reversed(range(len(self.weights))):
                layer_inputs = outs[layer] + [BIAS_INPUT]
                for k, delta_k in enumerate(deltas):  # ∂E/∂W_jk = δ_k O_j, one weight at a time
                    for j, output_j in enumerate(layer_inputs):
                        gradients[layer][k, j] += delta_k * output_j
                if layer > 0:
                    deltas = self._hidden_deltas_loop(layer, deltas, xs[layer - 1])
        return gradients

    def _hidden_deltas_loop(self, layer: int, deltas: list[float], xs: list[float]) -> list[float]:
        """``δ_j = f'(x_j) Σ_k δ_k W_jk`` for the nodes ``j`` feeding ``layer`` (the bias input has no delta)."""
        derivative = self.transfer_functions[layer - 1].derivative
        weights = self.weights[layer]
        hidden_deltas = []
        for j, x_j in enumerate(xs):
            pulled_back = 0.0
            for k, delta_k in enumerate(deltas):
                pulled_back += delta_k * weights[k, j]
            hidden_deltas.append(float(derivative(x_j)) * pulled_back)
        return hidden_deltas

    def _forward_one_loop(self, sample: Array) -> tuple[list[list[float]], list[list[float]]]:
        """Forward pass of one example with explicit loops: ``x_j = Σ_i w_ji O_i + w_j,bias``."""
        outs: list[list[float]] = [[float(v) for v in sample]]
        xs: list[list[float]] = []
        for weights, transfer in zip(self.weights, self.transfer_functions):
            layer_x = []
            for j in range(weights.shape[0]):
                x_j = weights[j, -1] * BIAS_INPUT
                for i, output_i in enumerate(outs[-1]):
                    x_j += weights[j, i] * output_i
                layer_x.append(float(x_j))
            xs.append(layer_x)
            outs.append([float(transfer.function(x)) for x in layer_x])
        return xs, outs

    # ---- training -----------------------------------------------------------------------------------------

    def train_step(self, inputs: Array, targets: Array, learning_rate: float, momentum: float = 0.0) -> float:
        """One full-batch gradient-descent step with momentum.

        ``ΔW(t) = −η ∇E + m ΔW(t−1)`` and ``W ← W + ΔW(t)``.

        ``ΔW(0)`` is zero, so ``momentum=0`` is plain gradient descent (Polyak, 1964; Qian, 1999).

        Implements: eq-nn-update, eq-nn-momentum

        Args:
            inputs: ``(n_samples, n_inputs)``; targets: ``(n_samples, n_outputs)``.
            learning_rate: η > 0. Because ``E`` sums over examples, a larger batch needs a smaller η.
            momentum: m in [0, 1).

        Returns:
            The error ``E`` of the weights *before* the step.

        Raises:
            ValueError: for bad shapes, η ≤ 0 or m outside [0, 1).
        """
        if learning_rate <= 0:
            raise ValueError(f"expected a positive learning_rate, got {learning_rate}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"expected momentum in [0, 1), got {momentum}")
        error, gradients = self.error_and_gradients(inputs, targets)
        for layer, gradient in enumerate(gradients):
            weight_delta = -learning_rate * gradient + momentum * self.previous_weight_deltas[layer]
            self.weights[layer] += weight_delta
            self.previous_weight_deltas[layer] = weight_delta
        return error

    def train(
        self,
        inputs: Array,
        targets: Array,
        num_iterations: int,
        learning_rate: float,
        momentum: float = 0.0,
        min_error: float = 0.0,
    ) -> Array:
        """Run :meth:`train_step` up to ``num_iterations`` times, stopping once the error falls below ``min_error``.

        Returns:
            The error before each step taken, so ``len(errors)`` is the number of iterations run.
        """
        errors = []
        for _ in range(num_iterations):
            errors.append(self.train_step(inputs, targets, learning_rate, momentum))
            if errors[-1] < min_error:
                break
        return np.asarray(errors)


# --------------------------------------------------------------------------------------------------------------
# Timing, data and metrics
# --------------------------------------------------------------------------------------------------------------


def numerical_gradients(network: NeuralNetwork, inputs: Array, targets: Array, step: float = 1e-6) -> list[Array]:
    """Central-difference estimate of every weight's gradient, ``(E(w + h) - E(w - h)) / 2h``.

    Independent of backpropagation, so it checks it: the estimate's error is of order ``step**2`` (truncation)
    plus ``eps * |E| / step`` (round-off). Costs two forward passes per weight; for small networks only.
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    estimates = []
    for weights in network.weights:
        estimate = np.zeros_like(weights)
        for index in np.ndindex(weights.shape):
            original = weights[index]
            weights[index] = original + step
            error_plus = network.error(inputs, targets)
            weights[index] = original - step
            error_minus = network.error(inputs, targets)
            weights[index] = original
            estimate[index] = (error_plus - error_minus) / (2 * step)
        estimates.append(estimate)
    return estimates


def _best_time(function: Callable[[], object], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return float(best)


def time_gradients(network: NeuralNetwork, inputs: Array, targets: Array, repeats: int = 3) -> dict[str, float]:
    """Time :meth:`NeuralNetwork.gradients_loop` against :meth:`NeuralNetwork.gradients` (best of ``repeats``).

    Returns:
        ``{"loop_s": ..., "vectorised_s": ..., "speedup": loop_s / vectorised_s}``.

    Raises:
        ValueError: if ``repeats < 1``.
    """
    if repeats < 1:
        raise ValueError(f"expected repeats >= 1, got {repeats}")
    loop_s = _best_time(lambda: network.gradients_loop(inputs, targets), repeats)
    vectorised_s = _best_time(lambda: network.gradients(inputs, targets), repeats)
    return {"loop_s": loop_s, "vectorised_s": vectorised_s, "speedup": loop_s / vectorised_s}


def xor_dataset() -> tuple[Array, Array]:
    """The XOR truth table in the series' order: inputs ``(4, 2)`` and targets ``(4, 1)``."""
    inputs = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float)
    targets = np.array([[0], [0], [1], [1]], dtype=float)
    return inputs, targets


def two_moons(n_samples: int, noise: float, seed: int) -> tuple[Array, Array]:
    """Two interleaved half-moons (``sklearn.datasets.make_moons``): points ``(n, 2)`` and labels ``(n, 1)``."""
    from sklearn.datasets import make_moons

    inputs, labels = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return inputs.astype(float), labels.astype(float)[:, None]


def accuracy(predictions: Array, labels: Array, threshold: float = 0.5) -> float:
    """Fraction of samples whose prediction, thresholded at ``threshold``, equals the 0/1 label.

    Raises:
        ValueError: if the two arrays have different shapes.
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(
            f"expected predictions and labels of the same shape, got {predictions.shape} and {labels.shape}"
        )
    return float(np.mean((predictions > threshold) == (labels > 0.5)))


# --------------------------------------------------------------------------------------------------------------
# Settings of the chapter, per profile
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NumpyNNSettings:
    """Sizes of the chapter's runs (one instance per profile).

    The moons learning rate is per example: the chapter divides it by the number of training samples, because
    the error (and so its gradient) is a sum over the samples.
    """

    xor_iterations: int
    xor_learning_rate: float = 0.2
    xor_momentum: float = 0.5
    xor_min_error: float = 1e-5
    moons_samples: int = 200
    moons_test_samples: int = 1_000
    moons_noise: float = 0.2
    moons_hidden: int = 8
    moons_iterations: int = 2_000
    moons_learning_rate: float = 2.0
    moons_momentum: float = 0.9
    timing_sample_sizes: tuple[int, ...] = (4, 16, 64, 256, 1_024)
    timing_hidden: int = 16
    timing_repeats: int = 3


SETTINGS: dict[str, NumpyNNSettings] = {
    "quick": NumpyNNSettings(xor_iterations=20_000),
    "full": NumpyNNSettings(
        xor_iterations=100_000,
        moons_samples=1_000,
        moons_test_samples=5_000,
        moons_hidden=16,
        moons_iterations=10_000,
        timing_sample_sizes=(4, 16, 64, 256, 1_024, 4_096),
        timing_repeats=5,
    ),
}
