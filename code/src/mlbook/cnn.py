"""A small CNN for MNIST-like digits in Keras 3, and the experiment that improves it step by step.

The model is the one of the *Machine Learning Notebook* post "Convolutional Neural Networks — TensorFlow
(Basics)": two blocks of a 3×3 convolution with 16 filters and 2×2 max-pooling, a dense layer of 1,024 units
and 10 logits. The post built it with ``tf.contrib.learn`` and ``tf.layers``, both removed from TensorFlow; here
it is a ``keras.Model`` subclass trained with ``fit``.

The *improvement ladder* retrains it four times, each rung changing one thing: plain SGD, then batch
normalisation and dropout, then Adam, then more steps. Every rung goes through the weights cache.

References:
    LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based learning applied to document
    recognition. *Proc. IEEE* 86(11), 2278–2324.
    Ioffe, S. & Szegedy, C. (2015). Batch normalization: accelerating deep network training by reducing internal
    covariate shift. *ICML*.
    Srivastava, N. et al. (2014). Dropout: a simple way to prevent neural networks from overfitting. *JMLR* 15.
    Kingma, D. P. & Ba, J. (2015). Adam: a method for stochastic optimization. *ICLR*.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras import layers

from mlbook.cache import load_or_train, weights_config
from mlbook.data import ImageDataset
from mlbook.seeding import seeded
from mlbook.training import format_metrics

NUM_CLASSES = 10
#: The post's numbers, as it printed them: (test loss, test accuracy) after each rung, on real MNIST.
ORIGINAL_RESULTS: dict[str, tuple[float, float]] = {
    "plain SGD": (1.9025836, 0.64929998),
    "+ batch norm and dropout": (0.29391664, 0.91680002),
    "+ Adam": (0.040745325, 0.98500001),
    "+ longer training": (0.046967514, 0.99129999),
}
#: The post's steps per rung: 1,000, and 20,000 for the longer run, with batches of 100 images.
ORIGINAL_STEPS: dict[str, int] = {"plain SGD": 1_000, "+ batch norm and dropout": 1_000, "+ Adam": 1_000,
                                  "+ longer training": 20_000}
#: ``tf.contrib.learn``'s MNIST kept 5,000 of the 60,000 training images for validation.
ORIGINAL_TRAIN_SIZE = 55_000


# --------------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------------


class OriginalCNN(keras.Model):
    """conv 3×3×16 → pool 2×2 → conv 3×3×16 → pool 2×2 → dense 1,024 → 10 logits (the post's network).

    With ``batch_norm=True`` the dense layer's pre-activations are normalised *before* the ReLU (the dense layer
    then needs no bias: batch norm's β replaces it). ``dropout_rate`` is the probability of *dropping* a dense
    unit during training; 0 leaves dropout out.

    Args:
        num_filters: filters in each convolution (the post: 16).
        kernel_size: side of the convolution kernels (the post: 3).
        dense_units: units in the fully connected layer (the post: 1,024).
        num_classes: logits out.
        batch_norm: add ``BatchNormalization`` after the dense layer.
        dropout_rate: ``Dropout`` rate after the dense layer's ReLU, in [0, 1).
        batch_norm_momentum: the moving averages' momentum (the post's ``decay=0.99``).
    """

    def __init__(self, num_filters: int = 16, kernel_size: int = 3, dense_units: int = 1024,
                 num_classes: int = NUM_CLASSES, batch_norm: bool = False, dropout_rate: float = 0.0,
                 batch_norm_momentum: float = 0.99, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate is the probability of dropping a unit, in [0, 1); got {dropout_rate}")
        self.settings = {"num_filters": num_filters, "kernel_size": kernel_size, "dense_units": dense_units,
                         "num_classes": num_classes, "batch_norm": batch_norm, "dropout_rate": dropout_rate,
                         "batch_norm_momentum": batch_norm_momentum}
        self.conv1 = layers.Conv2D(num_filters, kernel_size, padding="same", activation="relu", name="conv1")
        self.pool1 = layers.MaxPooling2D(pool_size=2, strides=2, name="pool1")
        self.conv2 = layers.Conv2D(num_filters, kernel_size, padding="same", activation="relu", name="conv2")
        self.pool2 = layers.MaxPooling2D(pool_size=2, strides=2, name="pool2")
        self.flatten = layers.Flatten(name="flatten")
        self.dense = layers.Dense(dense_units, use_bias=not batch_norm, name="dense")  # ReLU applied in call
        self.batch_norm = (layers.BatchNormalization(momentum=batch_norm_momentum, name="batch_norm")
                           if batch_norm else None)
        self.dropout = layers.Dropout(dropout_rate, name="dropout") if dropout_rate > 0 else None
        self.logits = layers.Dense(num_classes, name="logits")

    def call(self, images: Any, training: bool = False) -> Any:
        if len(images.shape) != 4:
            raise ValueError(f"expected images of shape (n, height, width, channels), got {tuple(images.shape)}")
        features = self.pool2(self.conv2(self.pool1(self.conv1(images))))
        hidden = self.dense(self.flatten(features))
        if self.batch_norm is not None:
            hidden = self.batch_norm(hidden, training=training)
        hidden = keras.ops.relu(hidden)
        if self.dropout is not None:
            hidden = self.dropout(hidden, training=training)
        return self.logits(hidden)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.settings}


def build_model(image_shape: tuple[int, ...], seed: int, **settings: Any) -> OriginalCNN:
    """An :class:`OriginalCNN` with its weights created from ``seed`` (so every rung starts alike)."""
    with seeded(seed):
        model = OriginalCNN(**settings)
        model(np.zeros((1, *image_shape), dtype="float32"))  # creates the weights
        return model


def layer_shapes(model: OriginalCNN, images: np.ndarray) -> list[tuple[str, tuple[int, ...], int]]:
    """``(layer name, output shape, parameters)`` for each layer on the way through ``model`` (inference mode).

    The dense layer's ReLU (applied after batch norm, if any) is folded into the last of the two rows.
    """
    steps = [model.conv1, model.pool1, model.conv2, model.pool2, model.flatten, model.dense]
    steps += [model.batch_norm] if model.batch_norm is not None else []
    rows, x = [], keras.ops.convert_to_tensor(images)
    for layer in steps:
        x = layer(x)
        rows.append((layer.name, tuple(x.shape), layer.count_params()))
    x = model.logits(keras.ops.relu(x))
    rows.append((model.logits.name, tuple(x.shape), model.logits.count_params()))
    return rows


# --------------------------------------------------------------------------------------------------------------
# The loss, written out
# --------------------------------------------------------------------------------------------------------------


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example ``-log softmax(logits)[label] = logsumexp(logits) - logits[label]``.

    The same as the post's ``tf.losses.softmax_cross_entropy(tf.one_hot(labels, 10), logits)`` and as
    ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)`` (which averages it over the batch).

    Implements: eq-cnn-cross-entropy, eq-cnn-mnist-cross-entropy

    Args:
        logits: ``(n, num_classes)`` scores; labels: ``(n,)`` integers in ``[0, num_classes)``.
    """
    logits, labels = np.asarray(logits, dtype=float), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"expected logits (n, classes) and labels (n,), got {logits.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got values from {labels.min()} to {labels.max()}")
    top = logits.max(axis=1, keepdims=True)  # subtracted for stability; it cancels
    log_sum = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return log_sum - logits[np.arange(len(labels)), labels]


# --------------------------------------------------------------------------------------------------------------
# The improvement ladder
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rung:
    """One rung of the ladder: what the model and its training use."""

    name: str
    optimizer: str
    batch_norm: bool
    dropout_rate: float
    num_steps: int


@dataclasses.dataclass(frozen=True)
class RungResult:
    """A trained rung: its model, per-checkpoint history (``step``, ``loss``, ``val_accuracy``...) and test scores."""

    rung: Rung
    model: OriginalCNN
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    from_cache: bool


def improvement_ladder(cfg: CnnMnistSettings) -> list[Rung]:
    """The post's four runs: plain SGD; + batch norm and dropout; + Adam; + longer training."""
    return [
        Rung("plain SGD", "sgd", False, 0.0, cfg.num_steps),
        Rung("+ batch norm and dropout", "sgd", True, cfg.dropout_rate, cfg.num_steps),
        Rung("+ Adam", "adam", True, cfg.dropout_rate, cfg.num_steps),
        Rung("+ longer training", "adam", True, cfg.dropout_rate, cfg.long_num_steps),
    ]


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """``"sgd"`` (plain stochastic gradient descent, no momentum) or ``"adam"``."""
    optimizers = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(optimizers)}")
    return optimizers[name](learning_rate=learning_rate)


def training_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int) -> Any:
    """An endless ``tf.data`` stream of shuffled ``(images, labels)`` batches (reshuffled every pass)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


class StepLine(keras.callbacks.Callback):
    """Print ``step 500/1000  loss … · val_accuracy …`` every ``every`` checkpoints (and at the last)."""

    def __init__(self, steps_per_checkpoint: int, num_steps: int, every: int = 1) -> None:
        super().__init__()
        self.steps_per_checkpoint, self.num_steps, self.every = steps_per_checkpoint, num_steps, every

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        step = (epoch + 1) * self.steps_per_checkpoint
        if (epoch + 1) % self.every == 0 or step == self.num_steps:
            print(f"step {step}/{self.num_steps}  {format_metrics(logs or {})}", flush=True)


def train_by_steps(model: keras.Model, data: ImageDataset, num_steps: int, batch_size: int, log_every: int,
                   seed: int, lines: int = 4) -> dict[str, list[float]]:
    """Train ``model`` (compiled) for ``num_steps`` batches, measuring on the test set every ``log_every`` steps.

    The test set is only *watched* (the curves of the chapter); nothing is tuned on it.

    Returns:
        The history: ``step`` and Keras's ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per checkpoint.

    Raises:
        ValueError: if ``num_steps`` is not a positive multiple of ``log_every``.
    """
    if log_every < 1 or num_steps < log_every or num_steps % log_every:
        raise ValueError(f"num_steps must be a positive multiple of log_every, got {num_steps} and {log_every}")
    checkpoints = num_steps // log_every
    history = model.fit(
        training_batches(data.x_train, data.y_train, batch_size, seed),
        steps_per_epoch=log_every, epochs=checkpoints, shuffle=False, verbose=0,
        validation_data=(data.x_test, data.y_test),
        callbacks=[StepLine(log_every, num_steps, every=max(1, checkpoints // lines))],
    )
    return {"step": [log_every * (i + 1) for i in range(checkpoints)], **history.history}


def compile_model(model: keras.Model, optimizer: str, learning_rate: float) -> None:
    """Softmax cross-entropy on the logits, with accuracy as the metric."""
    model.compile(optimizer=make_optimizer(optimizer, learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])


def run_rung(rung: Rung, data: ImageDataset, cfg: CnnMnistSettings, seed: int) -> RungResult:
    """Build, train (or load from the weights cache) and evaluate one rung of the ladder."""
    model = build_model(data.image_shape, seed, num_filters=cfg.num_filters, dense_units=cfg.dense_units,
                        num_classes=data.num_classes, batch_norm=rung.batch_norm, dropout_rate=rung.dropout_rate,
                        batch_norm_momentum=cfg.batch_norm_momentum)

    def train(model: keras.Model) -> dict[str, list[float]]:
        compile_model(model, rung.optimizer, cfg.learning_rate)
        with seeded(seed):
            return train_by_steps(model, data, rung.num_steps, cfg.batch_size, cfg.log_every, seed)

    config = weights_config(cfg, rung=rung, seed=seed, data=data.source, num_train=len(data.x_train))
    # the model is compiled only after loading: Keras warns when a cached optimizer state meets a fresh optimizer
    trained = load_or_train(model, "cnn-mnist-" + rung.name.replace("+ ", "").replace(" ", "-"), config, train)
    if trained.from_cache:
        compile_model(model, rung.optimizer, cfg.learning_rate)
    scores = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    return RungResult(rung, model, trained.history, float(scores["loss"]), float(scores["accuracy"]),
                      trained.from_cache)


def relative_change(new: float, old: float) -> float:
    """``(new - old) / old``: 0.41 means "41 % more", 1.0 means "twice as much"."""
    if old == 0:
        raise ValueError("the relative change from 0 is undefined")
    return (new - old) / old


def epochs_for_steps(num_steps: int, batch_size: int, num_examples: int) -> float:
    """How many passes over ``num_examples`` training examples ``num_steps`` batches of ``batch_size`` make."""
    if min(num_steps, batch_size, num_examples) < 1:
        raise ValueError(f"expected positive counts, got {num_steps=}, {batch_size=}, {num_examples=}")
    return num_steps * batch_size / num_examples


# --------------------------------------------------------------------------------------------------------------
# Looking at the results
# --------------------------------------------------------------------------------------------------------------


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """``matrix[t, p]``: how many examples of true class ``t`` were predicted as ``p``.

    Raises:
        ValueError: if the arrays differ in shape or hold classes outside ``[0, num_classes)``.
    """
    labels, predictions = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"expected as many predictions as labels, got {predictions.shape} and {labels.shape}")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}), got values from {values.min()} to {values.max()}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return matrix


def most_confused_pairs(matrix: np.ndarray, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as ``(true class, predicted class, count)``, largest first.

    Cells with a count of zero are left out, so the list can be shorter than ``k``.
    """
    off_diagonal = np.asarray(matrix).copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(off_diagonal, axis=None, kind="stable")[::-1][:k]
    pairs = [(int(t), int(p), int(off_diagonal[t, p])) for t, p in zip(*np.unravel_index(order, off_diagonal.shape))]
    return [pair for pair in pairs if pair[2] > 0]


def confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, k: int = 12) -> np.ndarray:
    """Indices of the misclassified examples whose wrong answer had the highest probability, most sure first."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if probabilities.ndim != 2 or labels.shape != (len(probabilities),):
        raise ValueError(f"expected probabilities (n, classes) and labels (n,), got {probabilities.shape} "
                         f"and {labels.shape}")
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:k]


def first_layer_filters(model: OriginalCNN) -> np.ndarray:
    """The first convolution's kernels as ``(num_filters, kh, kw)`` (first input channel)."""
    kernels = np.asarray(model.conv1.kernel)  # (kh, kw, in_channels, filters)
    return np.moveaxis(kernels[:, :, 0, :], -1, 0)


def first_layer_feature_maps(model: OriginalCNN, images: np.ndarray) -> np.ndarray:
    """What the first convolution (with its ReLU) outputs for ``images``: ``(n, h, w, num_filters)``."""
    return np.asarray(model.conv1(keras.ops.convert_to_tensor(images)))


# --------------------------------------------------------------------------------------------------------------
# Settings of the chapter, per profile
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CnnMnistSettings:
    """Sizes of the chapter's runs (one instance per profile).

    ``num_steps`` is for the first three rungs and ``long_num_steps`` for the last; the test set is measured
    every ``log_every`` steps. The learning rate is the post's 0.001 for both optimizers, and 0.4 is the dropout
    rate of TensorFlow's own layers tutorial, on which the post was based (the post never gave its value).
    """

    num_steps: int
    long_num_steps: int
    log_every: int
    batch_size: int = 100
    learning_rate: float = 0.001
    dropout_rate: float = 0.4
    batch_norm_momentum: float = 0.99
    num_filters: int = 16
    dense_units: int = 1024


SETTINGS: dict[str, CnnMnistSettings] = {
    "quick": CnnMnistSettings(num_steps=100, long_num_steps=500, log_every=25),
    "full": CnnMnistSettings(num_steps=1_000, long_num_steps=20_000, log_every=250),
}
