"""One call that makes a chapter's random numbers repeatable."""

from __future__ import annotations

import os
import random

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
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if tensorflow:
        import keras

        keras.utils.set_random_seed(seed)  # seeds Python, NumPy and TensorFlow's global generators
    return seed
