"""Repeatable random numbers: one call that seeds a chapter, and a block that seeds one computation.

A chapter seeds its generators once (:func:`seed_everything`, called by ``setup_chapter``). Library functions that
build and train a model do it inside :func:`seeded`, so that the trained weights depend only on the seed they are
given (which the weights cache keys on), and the caller's own random numbers carry on as if the call had not drawn
any.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np

DEFAULT_SEED = 1234


def seed_everything(seed: int = DEFAULT_SEED, *, tensorflow: bool = True) -> int:
    """Seed Python's ``random``, NumPy's global generator and (unless ``tensorflow=False``) TensorFlow/Keras.

    The same profile and seed then give the same NumPy numbers. TensorFlow ops on a GPU may still differ in the
    last bits (cuDNN kernels are not all deterministic).

    Args:
        seed: a non-negative integer.
        tensorflow: also seed TensorFlow and Keras (imports TensorFlow, ~2.5 s the first time).

    Returns:
        The seed, so that a chapter can print or record it.

    Raises:
        ValueError: if ``seed`` is not a non-negative integer.
    """
    seed = _checked_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if tensorflow:
        import keras

        keras.utils.set_random_seed(seed)  # seeds Python, NumPy and TensorFlow's global generators
    return seed


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[int]:
    """Run a block with Python's, NumPy's, TensorFlow's and Keras's generators seeded from ``seed``; afterwards
    give the caller's generators back.

    Python's and NumPy's states and Keras's global seed generator are restored exactly. TensorFlow's global seed is
    set back to the caller's, but its count of seeded operations starts again (TensorFlow offers no way to read it).

    Raises:
        ValueError: if ``seed`` is not a non-negative integer.
    """
    import keras
    import tensorflow as tf

    seed = _checked_seed(seed)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras_state, tensorflow_seed = _keras_global_generator(), _tensorflow_global_seed()
    keras.utils.set_random_seed(seed)
    try:
        yield seed
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        _set_keras_global_generator(keras_state)
        tf.random.set_seed(tensorflow_seed)


def _checked_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


# Keras and TensorFlow keep these globals in private modules; seeded() is their only reader, here.
_KERAS_GLOBALS = ("global_seed_generator", "global_random_seed")


def _keras_global_generator() -> tuple[object, ...]:
    from keras.src.backend.common import global_state

    return tuple(global_state.get_global_attribute(name) for name in _KERAS_GLOBALS)


def _set_keras_global_generator(values: tuple[object, ...]) -> None:
    from keras.src.backend.common import global_state

    for name, value in zip(_KERAS_GLOBALS, values):
        global_state.set_global_attribute(name, value)


def _tensorflow_global_seed() -> int | None:
    from tensorflow.python.eager import context

    return context.global_seed()
