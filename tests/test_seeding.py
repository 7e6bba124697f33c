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


def test_seeded_block_repeats_its_draws_and_leaves_the_callers_streams_alone():
    import keras
    import tensorflow as tf

    from mlbook.seeding import seeded

    def block_draws() -> tuple[float, np.ndarray, np.ndarray]:
        return random.random(), np.random.rand(2), keras.random.normal((3,)).numpy()

    seed_everything(11)
    expected_after = (draw(), keras.random.normal((3,)).numpy())
    seed_everything(11)
    with seeded(5) as seed:
        first = block_draws()
    assert seed == 5
    after = (draw(), keras.random.normal((3,)).numpy())
    assert after[0][0] == expected_after[0][0]
    np.testing.assert_array_equal(after[0][1], expected_after[0][1])
    np.testing.assert_array_equal(after[1], expected_after[1])
    with seeded(5):
        second = block_draws()
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[2], second[2])
    with seeded(6):
        assert random.random() != first[0]
    from tensorflow.python.eager import context

    assert context.global_seed() == 11
    assert tf.random.uniform(()).shape == ()


def test_seeded_gives_the_streams_back_when_the_block_raises():
    from mlbook.seeding import seeded

    seed_everything(2, tensorflow=False)
    expected = draw()
    seed_everything(2, tensorflow=False)
    with pytest.raises(RuntimeError), seeded(9):
        random.random()
        raise RuntimeError("inside")
    assert draw()[0] == expected[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seeded_rejects_a_bad_seed(bad):
    from mlbook.seeding import seeded

    with pytest.raises(ValueError, match="non-negative integer"), seeded(bad):
        pass


def test_a_library_model_builder_does_not_move_the_callers_streams():
    from mlbook import tensors

    seed_everything(4)
    expected = draw()
    seed_everything(4)
    first = tensors.dense_stack(3, (5,), "relu", seed=1).get_weights()
    assert draw()[0] == expected[0]
    second = tensors.dense_stack(3, (5,), "relu", seed=1).get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
