"""The classifier two-sample test: can a small classifier tell two sets of images apart?

Train a classifier on half of the pooled images to say which set each came from, and measure its accuracy on the
other half. If both sets come from the same distribution, no classifier beats chance (50 % on a balanced test
set); the further the accuracy is above 50 %, the easier the sets are to tell apart. A permutation test turns the
accuracy into a p-value: under the null hypothesis the held-out labels are exchangeable, so shuffling them gives
accuracies that the classifier reaches by luck alone.

References:
    Lopez-Paz, D. & Oquab, M. (2017). Revisiting classifier two-sample tests. ICLR.
    Good, P. (2005). *Permutation, Parametric and Bootstrap Tests of Hypotheses*, 3rd ed. Springer.
"""

from __future__ import annotations

import dataclasses
import hashlib

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from mlbook.cache import load_or_compute_arrays

#: Label of the first sample (e.g. real images) and of the second (e.g. generated ones) for the classifier.
FIRST_SAMPLE_LABEL = 0
SECOND_SAMPLE_LABEL = 1


@dataclasses.dataclass(frozen=True)
class TwoSampleResult:
    """Outcome of :func:`classifier_two_sample_test`.

    Attributes:
        accuracy: the classifier's accuracy on the held-out half (0.5 = indistinguishable).
        p_value: permutation p-value of that accuracy under "both samples have the same distribution".
        num_test: held-out images the accuracy is measured on.
        null_accuracies: the accuracies of the permuted labellings (the null distribution).
    """

    accuracy: float
    p_value: float
    num_test: int
    null_accuracies: np.ndarray


def build_classifier(image_shape: tuple[int, ...], filters: int = 16, seed: int = 0) -> keras.Model:
    """A small CNN that outputs one logit: two strided 3×3 convolutions with ReLU, then one dense unit.

    Flattening (rather than averaging over positions) keeps *where* features are, which matters for images
    whose layout is fixed, like centred digits or aligned faces.
    """
    init = keras.initializers.GlorotUniform
    return keras.Sequential([
        keras.Input(tuple(image_shape)),
        layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_initializer=init(seed)),
        layers.Conv2D(2 * filters, 3, strides=2, padding="same", activation="relu",
                      kernel_initializer=init(seed + 1)),
        layers.Flatten(),
        layers.Dense(1, kernel_initializer=init(seed + 2)),
    ], name="two_sample_classifier")


def permutation_p_value(predictions: np.ndarray, labels: np.ndarray, num_permutations: int = 1_000,
                        seed: int = 0) -> tuple[float, float, np.ndarray]:
    """Accuracy of fixed ``predictions`` and its permutation p-value against shuffled ``labels``.

    ``p = (1 + #{permutations with accuracy ≥ observed}) / (1 + num_permutations)``, which counts the observed
    labelling as one of the permutations, so p is never 0 and the test is exact (Good, 2005).

    Implements: eq-gan-permutation-p

    Returns:
        ``(accuracy, p_value, null_accuracies)``.

    Raises:
        ValueError: if the arrays differ in length, are empty, or ``num_permutations < 1``.
    """
    predictions, labels = np.asarray(predictions).ravel(), np.asarray(labels).ravel()
    if predictions.shape != labels.shape or len(labels) == 0:
        raise ValueError(f"expected as many predictions as labels (at least one), got {predictions.shape} and "
                         f"{labels.shape}")
    if num_permutations < 1:
        raise ValueError(f"expected num_permutations >= 1, got {num_permutations}")
    rng = np.random.default_rng(seed)
    accuracy = float(np.mean(predictions == labels))
    shuffled = np.stack([rng.permutation(labels) for _ in range(num_permutations)])
    null_accuracies = np.mean(shuffled == predictions[None, :], axis=1)
    p_value = (1 + int(np.sum(null_accuracies >= accuracy))) / (1 + num_permutations)
    return accuracy, p_value, null_accuracies


def _check_samples(first: np.ndarray, second: np.ndarray) -> None:
    for name, sample in (("first", first), ("second", second)):
        if sample.ndim != 4:
            raise ValueError(f"expected the {name} sample as images (n, height, width, channels), got "
                             f"{sample.shape}")
        if len(sample) < 4:
            raise ValueError(f"expected at least 4 images in the {name} sample, got {len(sample)}")
    if first.shape[1:] != second.shape[1:]:
        raise ValueError(f"expected both samples to have the same image shape, got {first.shape[1:]} and "
                         f"{second.shape[1:]}")


def split_pooled(first: np.ndarray, second: np.ndarray, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pool the samples with labels 0/1, shuffle, and split each sample half-and-half into train and test.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; each half holds about half of each sample.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for sample, label in ((first, FIRST_SAMPLE_LABEL), (second, SECOND_SAMPLE_LABEL)):
        order = rng.permutation(len(sample))
        half = len(sample) // 2
        parts.append((sample[order[:half]], sample[order[half:]], label, half, len(sample) - half))
    x_train = np.concatenate([p[0] for p in parts]).astype(np.float32)
    y_train = np.concatenate([np.full(p[3], p[2]) for p in parts]).astype(np.float32)
    x_test = np.concatenate([p[1] for p in parts]).astype(np.float32)
    y_test = np.concatenate([np.full(p[4], p[2]) for p in parts]).astype(np.float32)
    train_order, test_order = rng.permutation(len(x_train)), rng.permutation(len(x_test))
    return x_train[train_order], y_train[train_order], x_test[test_order], y_test[test_order]


def classifier_two_sample_test(first: np.ndarray, second: np.ndarray, *, num_epochs: int = 20,
                               batch_size: int = 32, learning_rate: float = 1e-3, num_permutations: int = 1_000,
                               seed: int = 0) -> TwoSampleResult:
    """Train :func:`build_classifier` to tell ``first`` from ``second`` on half of each; test on the other halves.

    Args:
        first, second: image batches ``(n, height, width, channels)`` of the same image shape.
        num_epochs, batch_size, learning_rate: the classifier's training (Adam, binary cross-entropy).
        num_permutations: permutations for the p-value.
        seed: seeds the split, the classifier's weights, the shuffling and the permutations.

    Raises:
        ValueError: if the samples are not image batches of one shape with at least 4 images each.
    """
    first, second = np.asarray(first), np.asarray(second)
    _check_samples(first, second)
    x_train, y_train, x_test, y_test = split_pooled(first, second, seed)
    classifier = build_classifier(x_train.shape[1:], seed=seed)
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate),
                       loss=keras.losses.BinaryCrossentropy(from_logits=True))
    batches = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
               .shuffle(len(x_train), seed=seed).batch(batch_size))
    classifier.fit(batches, epochs=num_epochs, verbose=0, shuffle=False)  # the pipeline shuffles
    logits = keras.ops.convert_to_numpy(classifier(x_test, training=False))[:, 0]
    predictions = (logits > 0).astype(np.float32)  # logit > 0 ⇔ probability of the second sample > 0.5
    accuracy, p_value, null = permutation_p_value(predictions, y_test, num_permutations, seed)
    return TwoSampleResult(accuracy, p_value, len(y_test), null)


def cached_two_sample_test(name: str, first: np.ndarray, second: np.ndarray, **settings: float
                           ) -> TwoSampleResult:
    """:func:`classifier_two_sample_test` through the results cache, keyed on both samples' bytes and
    ``settings`` (the keyword arguments of the test), so a rebuild does not train the classifier again."""
    fingerprints = {label: hashlib.sha256(np.ascontiguousarray(sample, dtype=np.float32).tobytes()).hexdigest()
                    for label, sample in (("first", first), ("second", second))}

    def compute() -> dict[str, np.ndarray]:
        result = classifier_two_sample_test(first, second, **settings)
        return {"accuracy": np.array(result.accuracy), "p_value": np.array(result.p_value),
                "num_test": np.array(result.num_test), "null_accuracies": result.null_accuracies}

    arrays, _ = load_or_compute_arrays(name, {**fingerprints, **settings}, compute)
    return TwoSampleResult(float(arrays["accuracy"]), float(arrays["p_value"]), int(arrays["num_test"]),
                           arrays["null_accuracies"])
