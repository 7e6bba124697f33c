"""Tensors, derivatives and gradients: the small pieces behind the chapter :ref:`ch-tensors-gradients`.

- Geometry: a rotation is a 2×2 matrix acting on points (:func:`rotation_matrix`).
- Derivatives: the slope of the local linear approximation, estimated by central differences.
- The four "Keras tensor" examples of the original post, rewritten for eager TensorFlow, ``keras.ops`` and
  ``tf.GradientTape`` (the ``K.placeholder`` / ``K.function`` / ``K.gradients`` API they used is gone).
- The training loop written out: ``W -= learning_rate * gradient`` (:func:`gradient_descent`).
- Why activations are needed: a stack of affine maps is one affine map (:func:`collapse_affine`).

References:
    Chollet, F. (2017). *Deep Learning with Python*, chapter 2. Manning.
    Baydin, A. G., Pearlmutter, B. A., Radul, A. A. & Siskind, J. M. (2018). Automatic differentiation in
    machine learning: a survey. *Journal of Machine Learning Research* 18(153), 1–43.
    Abadi, M. et al. (2016). TensorFlow: a system for large-scale machine learning. *OSDI*.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from mlbook.seeding import seeded

Array = np.ndarray

#: The original post's inputs: ones for the first and third example, twos for the second, threes for the gradient.
EXAMPLE_LENGTH = 4


@dataclasses.dataclass(frozen=True)
class TensorsSettings:
    """Sizes of the chapter's runs (one instance per profile)."""

    regression_points: int = 40
    descent_steps: int = 60
    descent_learning_rate: float = 0.1
    curve_points: int = 200
    curve_hidden: int = 32
    curve_steps: int = 1000
    curve_learning_rate: float = 0.05


SETTINGS: dict[str, TensorsSettings] = {
    "quick": TensorsSettings(),
    "full": TensorsSettings(curve_steps=4000),
}


# --- tensors as geometry ---------------------------------------------------------------------------------------


def rotation_matrix(theta: float) -> Array:
    """The 2×2 matrix ``R = [u, v]`` that rotates the plane by ``theta`` radians, anticlockwise.

    Its columns are the images of the two axes: ``u = (cos θ, sin θ)`` and ``v = (−sin θ, cos θ)``.

    Implements: eq-tensors-rotation
    """
    cos, sin = np.cos(theta), np.sin(theta)
    return np.array([[cos, -sin], [sin, cos]])


def rotate(points: Array, theta: float) -> Array:
    """Rotate ``(n, 2)`` points by ``theta``: each point ``p`` becomes ``R p`` (all at once: ``points @ Rᵀ``).

    Raises:
        ValueError: if ``points`` is not of shape ``(n, 2)``.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"expected points of shape (n, 2), got {points.shape}")
    return points @ rotation_matrix(theta).T


# --- derivatives -----------------------------------------------------------------------------------------------


def central_difference(function: Callable[[Array], Array], x: Array, step: float = 1e-5) -> Array:
    """Estimate ``f'(x)`` by ``(f(x + h) − f(x − h)) / 2h``, whose error shrinks like ``h²``."""
    if step <= 0:
        raise ValueError(f"expected a positive step, got {step}")
    x = np.asarray(x, dtype=float)
    return (function(x + step) - function(x - step)) / (2.0 * step)


def linearisation_error(
    function: Callable[[Array], Array], derivative: Callable[[Array], Array], x: float, epsilons: Array
) -> Array:
    """``|f(x + ε) − (f(x) + f'(x) ε)|`` for each ε: how far ``f`` strays from its tangent line at ``x``.

    Implements: eq-tensors-linear
    """
    epsilons = np.asarray(epsilons, dtype=float)
    return np.abs(function(x + epsilons) - (function(np.asarray(x)) + derivative(np.asarray(x)) * epsilons))


# --- the original post's four Keras-tensor examples, in eager TensorFlow ---------------------------------------


def example_identity(values: Array) -> tf.Tensor:
    """Example 1: a tensor that returns its input. ``[1, 1, 1, 1]`` gives ``[1, 1, 1, 1]``."""
    return keras.ops.convert_to_tensor(values, dtype="float32")


def example_square(values: Array) -> tf.Tensor:
    """Example 2: the element-wise square. ``[2, 2, 2, 2]`` gives ``[4, 4, 4, 4]``."""
    return keras.ops.square(example_identity(values))


def example_statistics(values: Array) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Example 3: the input, its square, its mean and the mean of its square, from one input.

    ``[2, 2, 2, 2]`` gives ``[2, 2, 2, 2]``, ``[4, 4, 4, 4]``, ``2.0`` and ``4.0``.
    """
    x = example_identity(values)
    square = keras.ops.square(x)
    return x, square, keras.ops.mean(x), keras.ops.mean(square)


def example_gradient(values: Array) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Example 4: the input, its square and the gradient of the square, recorded by ``tf.GradientTape``.

    For a non-scalar target the tape differentiates the *sum* of its elements, as ``K.gradients`` did, so each
    entry is ``d(x²)/dx = 2x``: ``[3, 3, 3, 3]`` gives ``[3, …]``, ``[9, …]`` and ``[6, …]``.
    """
    x = example_identity(values)
    with tf.GradientTape() as tape:
        tape.watch(x)  # x is a constant, not a Variable: ask the tape to record operations on it
        square = keras.ops.square(x)
    return x, square, tape.gradient(square, x)


def statistics_model(length: int = EXAMPLE_LENGTH) -> keras.Model:
    """Example 3 as a symbolic graph: a functional model from a ``keras.Input`` to the four outputs.

    Building it computes nothing; calling it on a batch of shape ``(batch, length)`` runs the graph (this is what
    ``K.function`` did). The means are taken per example, over the last axis.
    """
    inputs = keras.Input(shape=(length,), name="input")
    square = keras.ops.square(inputs)
    mean = keras.ops.mean(inputs, axis=-1)
    mean_of_square = keras.ops.mean(square, axis=-1)
    return keras.Model(inputs, [inputs, square, mean, mean_of_square], name="statistics")


# --- the training loop ------------------------------------------------------------------------------------------


def mean_squared_error(predictions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """``mean((predictions − targets)²)``, as a scalar tensor."""
    return keras.ops.mean(keras.ops.square(predictions - targets))


def gradient_descent(
    loss_fn: Callable[[], tf.Tensor],
    variables: Sequence[tf.Variable],
    learning_rate: float,
    num_steps: int,
    track: bool = False,
) -> dict[str, Array]:
    """Plain gradient descent: repeat ``v -= learning_rate * d loss / d v`` for every variable ``v``.

    Each step runs as a ``tf.function`` (one traced graph, reused). Nothing else is hidden: no optimizer object,
    no momentum.

    Implements: eq-tensors-descent

    Args:
        loss_fn: computes the scalar loss from the current values of ``variables``.
        track: also return every variable's value before each step and after the last one.

    Returns:
        ``{"loss": (num_steps,)}``, the loss *before* each step, plus ``"values_<i>"`` of shape
        ``(num_steps + 1, *shape)`` when ``track``.

    Raises:
        ValueError: if the learning rate or the number of steps is not positive.
    """
    if learning_rate <= 0 or num_steps < 1:
        raise ValueError(f"expected learning_rate > 0 and num_steps >= 1, got {learning_rate} and {num_steps}")

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn()
        gradients = tape.gradient(loss, variables)
        for variable, gradient in zip(variables, gradients):
            variable.assign_sub(learning_rate * gradient)
        return loss

    losses = []
    history: list[list[Array]] = [[] for _ in variables]
    for _ in range(num_steps):
        if track:
            for values, variable in zip(history, variables):
                values.append(np.array(variable.numpy()))
        losses.append(float(step()))
    result = {"loss": np.array(losses)}
    if track:
        for i, (values, variable) in enumerate(zip(history, variables)):
            result[f"values_{i}"] = np.array([*values, variable.numpy()])
    return result


def fit_line(
    x: Array, y: Array, learning_rate: float, num_steps: int, start: tuple[float, float] = (0.0, 0.0)
) -> dict[str, Array]:
    """Fit ``y ≈ w x + b`` to 1-D data by :func:`gradient_descent` on the mean squared error.

    Returns:
        ``loss`` per step, and ``w`` and ``b`` of shape ``(num_steps + 1,)``: the path from ``start``.
    """
    x = tf.constant(np.asarray(x, dtype=np.float32))
    y = tf.constant(np.asarray(y, dtype=np.float32))
    w = tf.Variable(start[0], dtype=tf.float32)
    b = tf.Variable(start[1], dtype=tf.float32)
    run = gradient_descent(lambda: mean_squared_error(w * x + b, y), [w, b], learning_rate, num_steps, track=True)
    return {"loss": run["loss"], "w": run["values_0"], "b": run["values_1"]}


def line_loss_surface(x: Array, y: Array, w_grid: Array, b_grid: Array) -> Array:
    """The mean squared error of the line ``w x + b`` for every ``(w, b)`` on a grid (NumPy, for contours).

    Implements: eq-tensors-line-loss
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    residuals = w_grid[..., None] * x + b_grid[..., None] - y
    return np.mean(residuals**2, axis=-1)


def line_loss_gradient(x: Array, y: Array, w: float, b: float) -> tuple[float, float]:
    """The exact gradient of the line's mean squared error.

    It is ``((2/n) Σ r x, (2/n) Σ r)`` with the residuals ``r = w x + b − y``.

    Implements: eq-tensors-line-loss
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    residuals = w * x + b - y
    return float(2 * np.mean(residuals * x)), float(2 * np.mean(residuals))


# --- why activations are needed ---------------------------------------------------------------------------------


def collapse_affine(layers: Sequence[tuple[Array, Array]]) -> tuple[Array, Array]:
    """The single affine map equal to a stack of them, in Keras's convention ``x ↦ x W + b``.

    ``(x W₁ + b₁) W₂ + b₂ = x (W₁ W₂) + (b₁ W₂ + b₂)``, and so on down the stack.

    Implements: eq-tensors-collapse

    Raises:
        ValueError: if the stack is empty or two neighbouring shapes do not chain.
    """
    if not layers:
        raise ValueError("expected at least one (kernel, bias) pair, got none")
    kernel, bias = (np.asarray(a, dtype=np.float64) for a in layers[0])
    for index, (next_kernel, next_bias) in enumerate(layers[1:], start=1):
        next_kernel = np.asarray(next_kernel, dtype=np.float64)
        if next_kernel.shape[0] != kernel.shape[1]:
            raise ValueError(f"layer {index} expects {next_kernel.shape[0]} inputs, got {kernel.shape[1]}")
        kernel, bias = kernel @ next_kernel, bias @ next_kernel + np.asarray(next_bias, dtype=np.float64)
    return kernel, bias


def dense_stack(input_dim: int, hidden_units: Sequence[int], activation: str | None, seed: int = 0) -> keras.Model:
    """Dense layers of the given widths with ``activation`` between them, and one linear output unit."""
    with seeded(seed):
        stack = [keras.Input(shape=(input_dim,))]
        stack += [keras.layers.Dense(units, activation=activation) for units in hidden_units]
        stack.append(keras.layers.Dense(1))
        return keras.Sequential(stack, name=f"stack_{activation or 'linear'}")


def fit_curve(model: keras.Model, x: Array, y: Array, learning_rate: float, num_steps: int) -> Array:
    """Fit ``model`` to ``(x, y)`` by full-batch :func:`gradient_descent` on the mean squared error; the losses."""
    x = tf.constant(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    y = tf.constant(np.asarray(y, dtype=np.float32).reshape(len(y), 1))
    return gradient_descent(lambda: mean_squared_error(model(x), y), model.trainable_variables, learning_rate,
                            num_steps)["loss"]
