"""The Keras workflow on real problems: model builders, baselines, K-fold validation and the bottleneck experiment.

The chapter :ref:`ch-keras-workflow` trains a binary text classifier, an 8-class news-like classifier, a 46-topic
classifier with and without an information bottleneck, and a small regression network judged by K-fold
validation. Every model here is a plain stack of ``Dense`` layers; what changes from problem to problem is the
last layer and the loss (:data:`LAST_LAYER_AND_LOSS`), which is the point of the chapter.

References:
    Chollet, F. (2017). *Deep Learning with Python*, chapters 3 and 4. Manning. (The workflow, the IMDB,
    Reuters and Boston-housing experiments and the bottleneck experiment.)
    Tieleman, T. & Hinton, G. (2012). Lecture 6.5 — RMSprop. *Neural Networks for Machine Learning* (Coursera).
    Kingma, D. P. & Ba, J. (2015). Adam: a method for stochastic optimization. *ICLR*.
    Efron, B., Hastie, T., Johnstone, I. & Tibshirani, R. (2004). Least angle regression. *Annals of Statistics*
    32(2), 407–499. (The diabetes data set.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import layers

from mlbook.cache import TrainedModel, cached
from mlbook.seeding import seeded
from mlbook.training import EpochLine

if TYPE_CHECKING:
    import tensorflow as tf

#: The last layer and the loss for each kind of problem (step 5 of the universal workflow).
LAST_LAYER_AND_LOSS: dict[str, tuple[str | None, str]] = {
    "binary classification": ("sigmoid", "binary_crossentropy"),
    "multi-class, one-hot labels": ("softmax", "categorical_crossentropy"),
    "multi-class, integer labels": ("softmax", "sparse_categorical_crossentropy"),
    "scalar regression": (None, "mse"),
}

#: The universal workflow of machine learning (Chollet 2017, section 4.5), as a checklist.
WORKFLOW_STEPS: tuple[str, ...] = (
    "Define the problem and assemble a data set",
    "Choose a measure of success",
    "Decide on an evaluation protocol",
    "Prepare the data",
    "Develop a model that does better than a baseline",
    "Scale up: develop a model that overfits",
    "Regularise and tune",
)


@dataclasses.dataclass(frozen=True)
class WorkflowSettings:
    """Sizes of the chapter's runs (one instance per profile)."""

    num_words: int = 10_000
    first_num_epochs: int = 5
    binary_hidden: tuple[int, ...] = (16, 16)
    binary_num_epochs: int = 20
    binary_batch_size: int = 128
    binary_validation_fraction: float = 0.25
    news_hidden: int = 512
    news_num_epochs: int = 5
    news_batch_size: int = 128
    news_validation_fraction: float = 0.1
    reuters_hidden: int = 64
    bottleneck_width: int = 4
    reuters_num_epochs: int = 20
    reuters_batch_size: int = 128
    reuters_validation_fraction: float = 0.2
    regression_hidden: int = 64
    regression_num_folds: int = 4
    regression_num_epochs: int = 40
    regression_batch_size: int = 16
    regression_test_fraction: float = 0.2


SETTINGS: dict[str, WorkflowSettings] = {
    "quick": WorkflowSettings(),
    "full": WorkflowSettings(first_num_epochs=10, binary_batch_size=512, regression_num_epochs=200),
}


# --- model builders --------------------------------------------------------------------------------------------


def first_network_sequential(input_dim: int = 784, hidden_units: int = 32, num_classes: int = 10) -> keras.Model:
    """The chapter's first network as a linear stack: Dense(32, relu) → Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(input_dim,), name="pixels"),
            layers.Dense(hidden_units, activation="relu", name="hidden"),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="first_sequential",
    )


def first_network_functional(input_dim: int = 784, hidden_units: int = 32, num_classes: int = 10) -> keras.Model:
    """The same network with the functional API: layers called on symbolic tensors like functions."""
    inputs = keras.Input(shape=(input_dim,), name="pixels")
    hidden = layers.Dense(hidden_units, activation="relu", name="hidden")(inputs)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(hidden)
    return keras.Model(inputs=inputs, outputs=outputs, name="first_functional")


def dense_classifier(
    input_dim: int, hidden_units: Sequence[int], num_classes: int, name: str = "classifier"
) -> keras.Model:
    """A stack of ReLU ``Dense`` layers with the last layer that suits the number of classes.

    Two classes end in ``Dense(1, sigmoid)`` (the probability of class 1); more end in ``Dense(num_classes,
    softmax)`` (a probability per class).

    Raises:
        ValueError: if a size is not positive or there are fewer than two classes.
    """
    if input_dim < 1 or any(units < 1 for units in hidden_units):
        raise ValueError(f"expected positive layer sizes, got input_dim={input_dim}, hidden_units={hidden_units}")
    if num_classes < 2:
        raise ValueError(f"expected at least 2 classes, got {num_classes}")
    stack: list[Any] = [keras.Input(shape=(input_dim,), name="features")]
    stack += [layers.Dense(units, activation="relu", name=f"hidden_{i + 1}") for i, units in enumerate(hidden_units)]
    if num_classes == 2:
        stack.append(layers.Dense(1, activation="sigmoid", name="probability"))
    else:
        stack.append(layers.Dense(num_classes, activation="softmax", name="probabilities"))
    return keras.Sequential(stack, name=name)


def regression_network(num_features: int, hidden_units: int = 64, initial_output: float = 0.0) -> keras.Model:
    """Two ReLU layers and one linear output unit: a small network for a small regression data set.

    Args:
        initial_output: the output unit's initial bias. The training targets' mean makes the untrained network
            start near the mean-prediction baseline instead of near 0.
    """
    return keras.Sequential(
        [
            keras.Input(shape=(num_features,), name="features"),
            layers.Dense(hidden_units, activation="relu", name="hidden_1"),
            layers.Dense(hidden_units, activation="relu", name="hidden_2"),
            # no activation: the output can be any real number
            layers.Dense(1, bias_initializer=keras.initializers.Constant(initial_output), name="prediction"),
        ],
        name="regression",
    )


def compiled_regression_network(
    num_features: int, initial_output: float = 0.0, hidden_units: int = 64, learning_rate: float = 1e-3
) -> keras.Model:
    """:func:`regression_network` compiled for regression: rmsprop, mean squared error, mean absolute error."""
    model = regression_network(num_features, hidden_units, initial_output)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate), loss="mse", metrics=["mae"])
    return model


def dense_parameter_count(input_dim: int, units: Sequence[int]) -> int:
    """Weights plus biases of a stack of Dense layers: ``Σ (n_in · n_out + n_out)``."""
    sizes = [input_dim, *units]
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


# --- training, baselines and validation ------------------------------------------------------------------------


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy on ``y_test`` of always answering the most common class of ``y_train``."""
    y_train, y_test = np.asarray(y_train).ravel(), np.asarray(y_test).ravel()
    if y_train.size == 0 or y_test.size == 0:
        raise ValueError(f"expected non-empty labels, got {y_train.size} training and {y_test.size} test labels")
    values, counts = np.unique(y_train, return_counts=True)
    return float(np.mean(y_test == values[np.argmax(counts)]))


def best_epoch(values: Sequence[float], mode: str = "min") -> int:
    """The 1-based epoch with the lowest (``mode="min"``) or highest (``"max"``) value; the first on a tie."""
    if mode not in ("min", "max"):
        raise ValueError(f"expected mode 'min' or 'max', got {mode!r}")
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("expected at least one epoch's value, got none")
    return int(np.argmin(values) if mode == "min" else np.argmax(values)) + 1


def holdout_split(num_samples: int, validation_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices for a training part and a validation part that together cover ``range(num_samples)``."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"expected 0 < validation_fraction < 1, got {validation_fraction}")
    order = np.random.default_rng(seed).permutation(num_samples)
    num_validation = max(1, round(validation_fraction * num_samples))
    return np.sort(order[num_validation:]), np.sort(order[:num_validation])


def kfold_indices(num_samples: int, num_folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold validation: ``num_folds`` (training, validation) index pairs; the validation parts partition the data.

    The samples are shuffled once with ``seed``, then cut into ``num_folds`` parts of sizes that differ by at
    most one. Fold ``k`` validates on part ``k`` and trains on the others.

    Raises:
        ValueError: unless ``2 <= num_folds <= num_samples``.
    """
    if not 2 <= num_folds <= num_samples:
        raise ValueError(f"expected 2 <= num_folds <= num_samples, got num_folds={num_folds}, "
                         f"num_samples={num_samples}")
    parts = np.array_split(np.random.default_rng(seed).permutation(num_samples), num_folds)
    return [
        (np.sort(np.concatenate(parts[:k] + parts[k + 1 :])), np.sort(parts[k])) for k in range(num_folds)
    ]


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Subtract the training mean and divide by the training standard deviation, per feature, in every array.

    The statistics come from ``train`` only: the validation and test data must not leak into them.

    Implements: eq-workflow-standardise

    Raises:
        ValueError: if ``train`` is not 2-D or a feature is constant (its standard deviation is 0).
    """
    train = np.asarray(train, dtype=np.float64)
    if train.ndim != 2:
        raise ValueError(f"expected training features of shape (n, features), got {train.shape}")
    mean, std = train.mean(axis=0), train.std(axis=0)
    if np.any(std == 0):
        raise ValueError(f"features {np.flatnonzero(std == 0).tolist()} are constant in the training data")
    return tuple(((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32) for x in (train, *others))


def batched_dataset(
    features: np.ndarray, targets: np.ndarray, batch_size: int, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of (features, targets) batches, reshuffled every epoch when ``shuffle_seed`` is set.

    Built once and cached, it costs ``fit`` far less per epoch than NumPy arrays, which are wrapped anew.
    """
    import tensorflow as tf

    if len(features) != len(targets):
        raise ValueError(f"expected one target per example, got {len(features)} examples and {len(targets)} targets")
    dataset = tf.data.Dataset.from_tensor_slices((features, targets)).cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(features), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(2)


def kfold_regression(
    features: np.ndarray,
    targets: np.ndarray,
    build_model: Callable[[int, float], keras.Model],
    num_folds: int,
    num_epochs: int,
    batch_size: int,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Train one fresh model per fold and record its mean absolute error on the held-out fold after each epoch.

    Args:
        build_model: returns a new compiled model (loss ``mse``, metric ``mae``) for a number of features and an
            initial output (the training folds' mean target).

    Returns:
        ``val_mae`` and ``train_mae`` of shape ``(num_folds, num_epochs)``, and ``baseline_mae`` of shape
        ``(num_folds,)``: the error of predicting the training folds' mean target.
    """
    val_mae, train_mae, baseline_mae = [], [], []
    for fold, (train_idx, val_idx) in enumerate(kfold_indices(len(features), num_folds, seed)):
        x_train, x_val = standardize(features[train_idx], features[val_idx])
        y_train, y_val = targets[train_idx].astype(np.float32), targets[val_idx].astype(np.float32)
        with seeded(seed + fold):
            model = build_model(features.shape[1], float(y_train.mean()))
            history = model.fit(batched_dataset(x_train, y_train, batch_size, shuffle_seed=seed + fold),
                                validation_data=batched_dataset(x_val, y_val, len(x_val)), epochs=num_epochs,
                                shuffle=False, verbose=0)  # the pipeline shuffles; fit would warn
        val_mae.append(history.history["val_mae"])
        train_mae.append(history.history["mae"])
        baseline_mae.append(np.mean(np.abs(y_val - y_train.mean())))
        print(f"fold {fold + 1}/{num_folds}: validation MAE {val_mae[-1][-1]:.1f} "
              f"(predicting the mean: {baseline_mae[-1]:.1f})")
    return {"val_mae": np.array(val_mae), "train_mae": np.array(train_mae), "baseline_mae": np.array(baseline_mae)}


def bottleneck_experiment(
    x_train: np.ndarray,
    y_train: np.ndarray,
    validation_data: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    hidden_units: int,
    bottleneck_width: int,
    num_epochs: int,
    batch_size: int,
    config: Mapping[str, Any],
    seed: int = 0,
) -> dict[str, TrainedModel]:
    """Train the same topic classifier twice: with a second hidden layer as wide as the first, and as a bottleneck.

    Both are ``Dense(hidden_units) → Dense(width) → Dense(num_classes, softmax)``, trained with rmsprop and
    integer labels; only ``width`` differs. Both runs are cached.

    Returns:
        ``{"baseline": ..., "bottleneck": ...}``, each with the history of its validation accuracy.
    """
    runs = {}
    for label, width in (("baseline", hidden_units), ("bottleneck", bottleneck_width)):
        print(f"{label}: {hidden_units} → {width} → {num_classes}")
        with seeded(seed):
            model = dense_classifier(x_train.shape[1], (hidden_units, width), num_classes, name=f"topics_{label}")
            model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            runs[label] = cached(model, f"topics-{label}", **config, seed=seed).fit(
                x_train, y_train, validation_data=validation_data, epochs=num_epochs, batch_size=batch_size,
                verbose=0, callbacks=[EpochLine(every=max(1, num_epochs // 10))])
    return runs


def count_dead_units(model: keras.Model, layer_name: str, inputs: np.ndarray, batch_size: int = 512) -> int:
    """The units of a ReLU layer that output 0 for every one of ``inputs``.

    Such a unit passes no gradient back, so training cannot revive it: a 4-unit layer with two dead units is a
    2-unit layer.
    """
    probe = keras.Model(model.inputs, model.get_layer(layer_name).output)
    activations = probe.predict(inputs, batch_size=batch_size, verbose=0)
    return int(np.sum(activations.max(axis=0) <= 0))


# --- reading predictions ---------------------------------------------------------------------------------------


def confidence_by_correctness(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean highest predicted probability over the correct predictions, and over the wrong ones (NaN if none)."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels).ravel()
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"expected probabilities of shape ({len(labels)}, classes), got {probabilities.shape}")
    correct = probabilities.argmax(axis=1) == labels
    top = probabilities.max(axis=1)
    return (float(top[correct].mean()) if correct.any() else float("nan"),
            float(top[~correct].mean()) if (~correct).any() else float("nan"))


def plot_class_probabilities(
    probabilities: np.ndarray, class_names: Sequence[str], true_label: int, ax: Any, title: str = ""
) -> Any:
    """Horizontal bars of one prediction's class probabilities; the true class in orange, the others in blue."""
    from mlbook.plot import PALETTE

    probabilities = np.asarray(probabilities, dtype=float).ravel()
    if len(probabilities) != len(class_names):
        raise ValueError(f"expected {len(class_names)} probabilities (one per class), got {len(probabilities)}")
    colours = [PALETTE[1] if i == true_label else PALETTE[0] for i in range(len(class_names))]
    positions = np.arange(len(class_names))
    ax.barh(positions, probabilities, color=colours)
    ax.set_yticks(positions, class_names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.grid(axis="y", visible=False)  # grid lines would cut through the bars
    ax.set_xlabel("predicted probability")
    ax.set_title(title, fontsize=9, loc="left")
    return ax
