import random

import numpy as np
import pytest

from mlbook import seed_everything


def draw() -> tuple[float, np.ndarray]:
    return random.random(), np.random.rand(3)


def test_same_seed_same_numbers():
    seed_everything(7, tensorflow=False)
    first = draw()
    seed_everything(7, tensorflow=False)
    second = draw()
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    seed_everything(8, tensorflow=False)
    assert draw()[0] != first[0]


def test_tensorflow_is_seeded_too():
    import tensorflow as tf

    seed_everything(3)
    first = tf.random.uniform((4,)).numpy()
    seed_everything(3)
    np.testing.assert_array_equal(first, tf.random.uniform((4,)).numpy())


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(bad, tensorflow=False)
