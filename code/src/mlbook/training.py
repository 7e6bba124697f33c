"""Small pieces shared by every chapter that trains a Keras model."""

from __future__ import annotations

import time
from collections.abc import Mapping

import keras
import numpy as np

#: Training steps Keras runs per call of its compiled train function (``compile(steps_per_execution=...)``). The
#: book's small models take a few milliseconds a step on a CPU, and Keras's Python work between calls is a large
#: part of that; eight steps a call removes most of it. The batches, their order and the updates are the same, so
#: the trained weights are too (tested).
STEPS_PER_EXECUTION = 8


def format_metrics(logs: Mapping[str, float]) -> str:
    """``loss 0.1234 · val_loss 0.2345`` for a Keras ``logs`` dict, in a stable (sorted) order."""
    return " · ".join(f"{name} {float(value):.4g}" for name, value in sorted(logs.items()))


class EpochLine(keras.callbacks.Callback):
    """Print one line per epoch (to stdout): ``epoch 3/10  loss 0.1234 · val_loss 0.2345  (1.2 s)``.

    Keras's progress bar writes a line per batch, which floods a book page; use ``fit(..., verbose=0,
    callbacks=[EpochLine()])`` instead. ``every`` prints only every n-th epoch (and always the last).
    """

    def __init__(self, every: int = 1) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be a positive integer, got {every}")
        self.every = every
        self._num_epochs = 0
        self._started = 0.0

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._num_epochs = int(self.params.get("epochs", 0)) if self.params else 0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        number = epoch + 1
        if number % self.every == 0 or number == self._num_epochs:
            seconds = time.perf_counter() - self._started
            print(f"epoch {number}/{self._num_epochs}  {format_metrics(logs or {})}  ({seconds:.1f} s)", flush=True)


def fit_classifier(
    model: keras.Model,
    train_data: object,
    validation_data: tuple[np.ndarray, np.ndarray],
    num_epochs: int,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    batch_size: int | None = None,
) -> keras.callbacks.History:
    """Compile ``model`` (logits out) with Adam and sparse categorical cross-entropy, and train it.

    Args:
        learning_rate: Adam's step size, a number or a Keras schedule.
        train_data: ``(images, labels)`` arrays (batched by ``batch_size``) or a ``keras.utils.PyDataset``.
        validation_data: ``(images, labels)`` evaluated after every epoch.

    Returns:
        Keras's ``History`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per epoch); one line per
        epoch is printed.
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    if isinstance(train_data, tuple):
        images, labels = train_data
        return model.fit(images, labels, batch_size=batch_size, epochs=num_epochs, shuffle=True,
                         validation_data=validation_data, verbose=0, callbacks=[EpochLine()])
    return model.fit(train_data, epochs=num_epochs, validation_data=validation_data, verbose=0,
                     callbacks=[EpochLine()])


def predict_in_batches(model: keras.Model, inputs: np.ndarray,
                       batch_size: int = 500) -> np.ndarray | list[np.ndarray]:
    """``model(inputs, training=False)`` batch by batch, eagerly, as NumPy (a list of arrays for several outputs).

    Keras's ``predict`` compiles a graph for every new input shape and warns when it does so repeatedly, which
    happens when a chapter calls many models on arrays of different lengths; eager calls are quiet and, for the
    book's small models, as fast. ``training=False`` puts dropout and batch normalisation in inference mode.

    Raises:
        ValueError: if ``batch_size`` is not positive or ``inputs`` is empty.
    """
    inputs = np.asarray(inputs)
    if batch_size < 1 or len(inputs) == 0:
        raise ValueError(f"expected a positive batch_size and some inputs, got {batch_size} and {inputs.shape}")
    batches = [model(inputs[start : start + batch_size], training=False) for start in range(0, len(inputs), batch_size)]
    if isinstance(batches[0], (list, tuple)):
        return [np.concatenate([keras.ops.convert_to_numpy(b[i]) for b in batches]) for i in range(len(batches[0]))]
    return np.concatenate([keras.ops.convert_to_numpy(b) for b in batches])


def classification_accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                            batch_size: int = 512) -> float:
    """Fraction of ``images`` whose largest logit is the label (the model is called eagerly, in inference mode)."""
    logits = predict_in_batches(model, images, batch_size)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))
