"""Tests of mlbook.inception: the operation counts of the chapter's equation, the module's shapes and parameter
count, the two networks, and the fixes of the original post (one test per item of "Notes on the original")."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlbook import inception as inc
from mlbook.profiles import PROFILES, select
from mlbook.training import classification_accuracy

TINY = inc.InceptionNetSizes(map1=2, map2=3, reduce1x1=2, num_fc1=5)


def brute_force_multiplications(kernel_size: int, height: int, width: int, c_in: int, c_out: int) -> int:
    """Count the multiplications of a stride-1 'same' convolution by walking over every output and kernel tap."""
    count = 0
    for _ in range(height * width * c_out):  # every output value ...
        for _ in range(kernel_size * kernel_size):  # ... is a sum over the kernel window ...
            count += c_in  # ... of one product per input channel
    return count


# ---- counting multiplications, eq-inception-multiplications ---------------------------------------------------


@pytest.mark.parametrize("args", [(1, 4, 5, 3, 2), (3, 6, 6, 2, 4), (5, 7, 3, 1, 1)])
@pytest.mark.equation("eq-inception-multiplications")
def test_conv_multiplications_eq_inception_multiplications_against_brute_force(args):
    assert inc.conv_multiplications(*args) == brute_force_multiplications(*args)


def test_naive_and_reduced_5x5_counts_are_the_posts():
    """The post's two numbers for GoogLeNet's module 3a (the catalogue checked them by hand)."""
    height, width, channels = inc.INCEPTION_3A_INPUT
    assert inc.conv_multiplications(5, height, width, channels, 32) == 120_422_400
    reduced = inc.inception_multiplications(inc.INCEPTION_3A_INPUT, inc.INCEPTION_3A)["5x5"]
    assert reduced == 2_408_448 + 10_035_200 == 12_443_648


def test_conv_multiplications_rejects_non_positive_sizes():
    with pytest.raises(ValueError, match="expected in_channels to be a positive integer, got 0"):
        inc.conv_multiplications(3, 28, 28, 0, 8)


def test_multiplications_equal_kernel_size_times_positions_for_keras_conv():
    """A Conv2D's kernel holds k² C_in C_out weights; each is used once per output position (stride 1, same)."""
    import keras

    layer = keras.layers.Conv2D(7, 3, padding="same")
    layer.build((None, 9, 11, 4))
    assert int(np.prod(layer.kernel.shape)) * 9 * 11 == inc.conv_multiplications(3, 9, 11, 4, 7)


# ---- the module ---------------------------------------------------------------------------------------------


def test_inception_block_output_channels_and_parameter_count():
    import keras

    branches = inc.InceptionBranches(f1=3, r3=2, f3=4, r5=1, f5=2, fp=5)
    inputs = keras.Input((10, 12, 6))
    model = keras.Model(inputs, inc.inception_block(inputs, branches))
    assert model.output.shape == (None, 10, 12, 3 + 4 + 2 + 5)  # same padding keeps height and width
    assert model.count_params() == inc.inception_block_params(6, branches)
    assert inc.inception_block_params(*inc.INCEPTION_3A_INPUT[2:], inc.INCEPTION_3A) == 163_696  # by hand


def test_block_concatenates_the_branches_in_order():
    """Regression: the post's ``tf.concat(3, [...])`` used the pre-1.0 argument order; the block concatenates the
    1×1, 3×3, 5×5 and pool branches along the last axis, in that order."""
    import keras

    branches = inc.InceptionBranches(f1=2, r3=1, f3=3, r5=1, f5=1, fp=2)
    inputs = keras.Input((5, 5, 2))
    block = keras.Model(inputs, inc.inception_block(inputs, branches, name="b"))
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2)).astype("float32")
    out = keras.ops.convert_to_numpy(block(x))
    parts = ["b_1x1", "b_3x3", "b_5x5", "b_pool_proj"]
    outputs = [keras.Model(inputs, block.get_layer(name).output)(x) for name in parts]
    np.testing.assert_allclose(out, np.concatenate([keras.ops.convert_to_numpy(o) for o in outputs], axis=-1),
                               rtol=0, atol=0)  # the same float32 numbers, only rearranged


# ---- the networks -------------------------------------------------------------------------------------------


def test_original_fc1_has_140_million_weights():
    """Regression: the post's dense layer has 28·28·256·700 = 140,492,800 weights (+ 700 biases)."""
    counts = inc.inception_net_params(inc.ORIGINAL_SIZES, "flatten")
    assert counts["fc1"] - inc.ORIGINAL_SIZES.num_fc1 == 28 * 28 * 256 * 700 == 140_492_800
    assert counts["fc1"] / sum(counts.values()) > 0.999
    gap = inc.inception_net_params(inc.ORIGINAL_SIZES, "gap")
    assert gap["fc1"] == 0 and sum(gap.values()) < 100_000


@pytest.mark.parametrize("head", inc.HEADS)
def test_network_shapes_and_parameter_formula(head):
    model = inc.build_inception_net(TINY, head)
    assert model.output.shape == (None, inc.NUM_CLASSES)
    assert model.count_params() == sum(inc.inception_net_params(TINY, head).values())


def test_every_bias_starts_at_zero():
    """Regression: the post created most biases with its random weight initialiser."""
    model = inc.build_inception_net(TINY, "flatten")
    biases = [w for w in model.weights if w.name == "bias"]
    assert len(biases) == 2 * 6 + 2  # six convolutions per module, fc1 and the logits
    assert all(np.all(np.asarray(b) == 0) for b in biases)


def test_dropout_drops_the_given_fraction():
    """Regression: TF1's ``tf.nn.dropout(x, 0.5)`` took a keep probability; Keras's rate is the dropped fraction."""
    import keras

    model = inc.build_inception_net(TINY, "flatten", dropout_rate=0.8)
    dropout = model.get_layer("dropout")
    kept = keras.ops.convert_to_numpy(dropout(np.ones((1, 20_000), "float32"), training=True)) != 0
    # 20,000 Bernoulli(0.2) draws: standard deviation 0.0028, so ±0.015 is more than five of them.
    assert kept.mean() == pytest.approx(0.2, abs=0.015)


def test_unknown_head_and_bad_dropout_are_refused():
    with pytest.raises(ValueError, match="unknown head 'dense'"):
        inc.build_inception_net(TINY, "dense")
    with pytest.raises(ValueError, match=r"dropout rate in \[0, 1\), got 1.0"):
        inc.build_inception_net(TINY, "gap", dropout_rate=1.0)
    with pytest.raises(ValueError, match="modules 1 and 2, got 3"):
        TINY.module(3)


def test_accuracy_counts_a_partial_last_batch():
    """Regression: the post's ``range(len(testX)/test_batch_size)`` fails in Python 3 and, with ``//``, would skip
    a last partial batch. A model that always says class 0 scores the fraction of zeros, over every image."""
    import keras

    inputs = keras.Input((28, 28, 1))
    always_zero = keras.Model(inputs, keras.layers.Dense(10, kernel_initializer="zeros",
                                                         bias_initializer=keras.initializers.Constant(
                                                             [1.0] + [0.0] * 9))(keras.layers.Flatten()(inputs)))
    labels = np.array([0] * 7 + [3] * 4)  # 11 images, batches of 4: the last batch holds 3
    assert classification_accuracy(always_zero, np.zeros((11, 28, 28, 1), "float32"), labels, batch_size=4) == 7 / 11


def test_training_beats_chance_and_reuses_the_cache(capsys):
    """A few epochs on 300 digits take the tiny gap network well above chance (10 %); a second call loads it."""
    from mlbook.data import ImageDataset, load_mnist_like

    full = load_mnist_like("quick")
    data = ImageDataset(full.x_train[:300], full.y_train[:300], full.x_test[:200], full.y_test[:200], "test", "")
    cfg = dataclasses.replace(
        inc.SETTINGS["quick"], sizes=inc.InceptionNetSizes(4, 8, 4, 16),
        flatten=inc.HeadTraining(num_epochs=4, learning_rate=3e-3, dropout_rate=0.0))
    first = inc.train_inception_net(data, cfg, "flatten", seed=0)
    # 200 test digits: chance is 0.10 ± 0.02; 0.5 needs a model that learnt something, with a wide margin.
    assert classification_accuracy(first.model, data.x_test, data.y_test) > 0.5
    again = inc.train_inception_net(data, cfg, "flatten", seed=0)
    assert again.from_cache and again.history == first.history


def test_settings_cover_every_profile():
    for profile in PROFILES:
        cfg = select(inc.SETTINGS, profile)
        assert cfg.training("gap").num_epochs >= 1 and cfg.model_config("flatten")["head"] == "flatten"
    assert inc.SETTINGS["full"].sizes == inc.ORIGINAL_SIZES
