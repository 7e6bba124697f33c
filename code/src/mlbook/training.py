"""Small pieces shared by every chapter that trains a Keras model."""

from __future__ import annotations

import time
from collections.abc import Mapping

import keras

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
