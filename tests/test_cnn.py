"""Tests of mlbook.cnn: the model's shapes and parameter count, the loss against its equation, the ladder runner
and its cache, the confusion helpers, and one regression test per "Notes on the original" item of the chapter."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from mlbook import cnn
from mlbook.data import ImageDataset, load_mnist_like


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_mnist_like("quick")  # scikit-learn's digits, laid out like MNIST: offline, 1,437 + 360 images


def tiny_data(num_train: int = 64, num_test: int = 32) -> ImageDataset:
    rng = np.random.default_rng(0)
    images = rng.random((num_train + num_test, 28, 28, 1)).astype("float32")
    labels = rng.integers(0, 10, num_train + num_test)
    labels[:10] = np.arange(10)  # every class present, so num_classes is 10
    return ImageDataset(images[:num_train], labels[:num_train], images[num_train:], labels[num_train:],
                        source="random", description="random test images")


# --- the model ------------------------------------------------------------------------------------------------


def test_original_cnn_shapes_and_parameter_count():
    model = cnn.build_model((28, 28, 1), seed=0)
    assert model(np.zeros((3, 28, 28, 1), "float32")).shape == (3, 10)
    # by hand: conv 3·3·1·16 + 16, conv 3·3·16·16 + 16, dense 7·7·16·1024 + 1024, logits 1024·10 + 10
    expected = (9 * 16 + 16) + (9 * 16 * 16 + 16) + (784 * 1024 + 1024) + (1024 * 10 + 10)
    assert model.count_params() == expected == 816_570
    shapes = cnn.layer_shapes(model, np.zeros((2, 28, 28, 1), "float32"))
    assert [shape for _, shape, _ in shapes] == [(2, 28, 28, 16), (2, 14, 14, 16), (2, 14, 14, 16), (2, 7, 7, 16),
                                                 (2, 784), (2, 1024), (2, 10)]
    assert sum(params for _, _, params in shapes) == expected


def test_same_seed_same_weights():
    first, second = cnn.build_model((28, 28, 1), seed=3), cnn.build_model((28, 28, 1), seed=3)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_flat_vectors_are_refused_with_a_clear_error():
    """Notes on the original: the post reshaped flat vectors in the graph; here they are refused, by name."""
    model = cnn.build_model((28, 28, 1), seed=0)
    with pytest.raises(ValueError, match=r"expected images of shape \(n, height, width, channels\), got \(2, 784\)"):
        model(np.zeros((2, 784), "float32"))


def test_batch_norm_comes_before_the_relu():
    """Notes on the original: the post normalised after the dense layer's ReLU; here the pre-activation is."""
    model = cnn.build_model((28, 28, 1), seed=0, batch_norm=True, dropout_rate=0.4)
    assert model.dense.activation is keras.activations.linear and not model.dense.use_bias  # β replaces the bias
    assert model.batch_norm.momentum == 0.99  # the post's decay=0.99
    dense_out = model.dense(model.flatten(model.pool2(model.conv2(model.pool1(model.conv1(
        np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")))))))
    normalised = np.asarray(model.batch_norm(dense_out, training=True))
    assert normalised.min() < 0  # what the batch norm sees and gives is not yet rectified
    # in training mode each unit is normalised over the batch: mean 0 (γ = 1, β = 0 at the start)
    assert np.abs(normalised.mean(axis=0)).max() < 1e-4  # float32 mean of 8 values


def test_dropout_rate_is_the_fraction_of_units_dropped():
    """Notes on the original: the post's `rate=keepProb`; the rate is the probability of dropping a unit."""
    model = cnn.OriginalCNN(dropout_rate=0.4)
    assert model.dropout.rate == 0.4
    hidden = np.ones((50, 1024), "float32")
    dropped = np.mean(np.asarray(model.dropout(hidden, training=True)) == 0)
    assert abs(dropped - 0.4) < 0.02  # 51,200 binomial draws: sd ≈ 0.002, so 0.02 is 9 sd
    with pytest.raises(ValueError, match="probability of dropping"):
        cnn.OriginalCNN(dropout_rate=1.0)


def test_get_config_round_trips_the_settings():
    model = cnn.OriginalCNN(num_filters=8, dense_units=32, batch_norm=True, dropout_rate=0.25)
    config = model.get_config()
    assert {k: config[k] for k in ("num_filters", "dense_units", "batch_norm", "dropout_rate")} == {
        "num_filters": 8, "dense_units": 32, "batch_norm": True, "dropout_rate": 0.25}


# --- the loss -------------------------------------------------------------------------------------------------


@pytest.mark.equation("eq-cnn-cross-entropy", "eq-cnn-mnist-cross-entropy")
def test_softmax_cross_entropy_by_hand_and_against_keras():
    """Equation eq-cnn-mnist-cross-entropy: log-sum-exp of the logits minus the true class's logit."""
    logits = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 0.1]])
    labels = np.array([1, 0])
    expected = [np.log(3.0), np.log(np.exp(2.0) + np.exp(1.0) + np.exp(0.1)) - 2.0]
    np.testing.assert_allclose(cnn.softmax_cross_entropy(logits, labels), expected, rtol=1e-12)  # float64
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(64, 10)) * 3, rng.integers(0, 10, 64)
    keras_loss = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits))
    assert cnn.softmax_cross_entropy(logits, labels).mean() == pytest.approx(keras_loss, rel=1e-5)  # float32 Keras
    big = np.array([[1000.0, 0.0]])  # stable: no overflow in exp
    assert cnn.softmax_cross_entropy(big, np.array([1]))[0] == pytest.approx(1000.0)


@pytest.mark.equation("eq-cnn-cross-entropy", "eq-cnn-mnist-cross-entropy")
def test_softmax_cross_entropy_gradient_is_softmax_minus_one_hot():
    """Finite differences (float64, central) against the closed form d loss / d logits = softmax - one-hot."""
    rng = np.random.default_rng(2)
    logits, label, step = rng.normal(size=(1, 5)), np.array([3]), 1e-6
    numerical = np.zeros(5)
    for c in range(5):
        shift = np.zeros((1, 5))
        shift[0, c] = step
        numerical[c] = (cnn.softmax_cross_entropy(logits + shift, label)[0]
                        - cnn.softmax_cross_entropy(logits - shift, label)[0]) / (2 * step)
    softmax = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(numerical, softmax - np.eye(5)[3], atol=1e-8)  # O(step²) error plus round-off


def test_softmax_cross_entropy_checks_its_inputs():
    with pytest.raises(ValueError, match=r"expected logits \(n, classes\) and labels \(n,\)"):
        cnn.softmax_cross_entropy(np.zeros((3, 10)), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        cnn.softmax_cross_entropy(np.zeros((1, 10)), np.array([10]))


# --- the ladder -----------------------------------------------------------------------------------------------


def test_the_originals_increase_is_41_percent_not_140():
    """Notes on the original: 0.6493 → 0.9168 is a 41 % increase (×1.41), not "140 %"."""
    before = cnn.ORIGINAL_RESULTS["plain SGD"][1]
    after = cnn.ORIGINAL_RESULTS["+ batch norm and dropout"][1]
    assert cnn.relative_change(after, before) == pytest.approx(0.412, abs=5e-4)  # the post's printed digits
    assert cnn.relative_change(2.0, 1.0) == 1.0  # doubling is +100 %
    with pytest.raises(ValueError, match="undefined"):
        cnn.relative_change(1.0, 0.0)


def test_a_thousand_steps_of_100_images_are_under_two_epochs():
    """Notes on the original: "1000 epochs" were 1,000 steps of 100 images over 55,000 images."""
    assert cnn.epochs_for_steps(1_000, 100, cnn.ORIGINAL_TRAIN_SIZE) == pytest.approx(1.818, abs=1e-3)
    assert cnn.epochs_for_steps(20_000, 100, cnn.ORIGINAL_TRAIN_SIZE) == pytest.approx(36.36, abs=1e-2)
    with pytest.raises(ValueError, match="positive counts"):
        cnn.epochs_for_steps(10, 0, 100)


def test_the_ladder_changes_one_thing_per_rung():
    cfg = cnn.SETTINGS["full"]
    rungs = cnn.improvement_ladder(cfg)
    assert [r.name for r in rungs] == list(cnn.ORIGINAL_RESULTS)
    assert [r.num_steps for r in rungs] == list(cnn.ORIGINAL_STEPS.values())  # full uses the post's steps
    changed = [{f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)} - {"name"}
               for a, b in zip(rungs, rungs[1:])]
    assert changed == [{"batch_norm", "dropout_rate"}, {"optimizer"}, {"num_steps"}]


def test_make_optimizer():
    assert isinstance(cnn.make_optimizer("adam", 0.01), keras.optimizers.Adam)
    sgd = cnn.make_optimizer("sgd", 0.001)
    assert isinstance(sgd, keras.optimizers.SGD) and float(sgd.learning_rate) == pytest.approx(0.001)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        cnn.make_optimizer("rmsprop", 0.01)


def test_each_rung_has_its_own_cache_entry(capsys):
    """Notes on the original: a changed model never loads another's weights (the post deleted its checkpoint)."""
    data = tiny_data()
    cfg = cnn.CnnMnistSettings(num_steps=4, long_num_steps=8, log_every=2, batch_size=16, num_filters=4,
                               dense_units=16)
    plain, normalised = cnn.improvement_ladder(cfg)[:2]
    first = cnn.run_rung(plain, data, cfg, seed=0)
    assert first.history["step"] == [2, 4]  # a checkpoint every log_every steps
    assert all(len(first.history[key]) == 2 for key in ("loss", "accuracy", "val_loss", "val_accuracy"))
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("step 4/4")
    other = cnn.run_rung(normalised, data, cfg, seed=0)  # a different model: trained, not loaded
    again = cnn.run_rung(plain, data, cfg, seed=0)
    assert (first.from_cache, other.from_cache, again.from_cache) == (False, False, True)
    assert again.history == first.history  # the curves come back from the cache entry
    assert again.test_accuracy == first.test_accuracy and again.test_loss == pytest.approx(first.test_loss)
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_train_by_steps_needs_whole_checkpoints():
    model = cnn.build_model((28, 28, 1), seed=0, num_filters=4, dense_units=16)
    cnn.compile_model(model, "adam", 0.01)
    with pytest.raises(ValueError, match="positive multiple of log_every, got 5 and 2"):
        cnn.train_by_steps(model, tiny_data(), num_steps=5, batch_size=16, log_every=2, seed=0)


@pytest.mark.slow
def test_the_cnn_beats_chance_by_a_wide_margin_on_the_quick_data(digits):
    """The post's network with batch norm, dropout and Adam, 60 steps of 100 images from a fixed seed."""
    cfg = dataclasses.replace(cnn.SETTINGS["quick"], num_steps=60, log_every=60)
    result = cnn.run_rung(cnn.improvement_ladder(cfg)[2], digits, cfg, seed=1234)
    # chance is 0.1; 60 steps reach about 0.8 here, so 0.5 fails only if training is broken
    assert result.test_accuracy > 0.5
    assert result.history["loss"][-1] < np.log(10)  # below the loss of a uniform guess


# --- looking at the results -----------------------------------------------------------------------------------


def test_confusion_matrix_by_hand_and_against_scikit_learn():
    from sklearn.metrics import confusion_matrix as sklearn_confusion

    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(cnn.confusion_matrix(labels, predictions, 3), expected)
    rng = np.random.default_rng(3)
    labels, predictions = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    np.testing.assert_array_equal(cnn.confusion_matrix(labels, predictions),
                                  sklearn_confusion(labels, predictions, labels=range(10)))
    with pytest.raises(ValueError, match="as many predictions as labels"):
        cnn.confusion_matrix(labels, predictions[:-1])
    with pytest.raises(ValueError, match=r"predictions must lie in \[0, 3\)"):
        cnn.confusion_matrix(np.array([0]), np.array([3]), 3)


def test_most_confused_pairs():
    matrix = np.array([[9, 4, 0], [1, 8, 0], [0, 2, 7]])
    assert cnn.most_confused_pairs(matrix, k=2) == [(0, 1, 4), (2, 1, 2)]
    assert cnn.most_confused_pairs(matrix, k=10) == [(0, 1, 4), (2, 1, 2), (1, 0, 1)]  # zero cells left out
    assert cnn.most_confused_pairs(np.eye(3, dtype=int) * 5) == []


def test_confident_mistakes_lists_only_mistakes_surest_first():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([0, 0, 1, 1])  # examples 1 (p=0.8) and 2 (p=0.6) are wrong
    np.testing.assert_array_equal(cnn.confident_mistakes(probabilities, labels), [1, 2])
    np.testing.assert_array_equal(cnn.confident_mistakes(probabilities, labels, k=1), [1])
    with pytest.raises(ValueError, match="expected probabilities"):
        cnn.confident_mistakes(probabilities, labels[:2])


def test_first_layer_filters_and_feature_maps():
    model = cnn.build_model((28, 28, 1), seed=0)
    filters = cnn.first_layer_filters(model)
    assert filters.shape == (16, 3, 3)
    np.testing.assert_array_equal(filters[5], np.asarray(model.conv1.kernel)[:, :, 0, 5])
    images = np.random.default_rng(4).random((2, 28, 28, 1)).astype("float32")
    maps = cnn.first_layer_feature_maps(model, images)
    assert maps.shape == (2, 28, 28, 16) and maps.min() >= 0.0  # after the ReLU
    # the first layer is a plain 'same' convolution plus bias and ReLU: compare with the NumPy layer
    from mlbook import convolution

    expected = convolution.relu(convolution.conv2d(images, np.asarray(model.conv1.kernel), padding="same",
                                                   bias=np.asarray(model.conv1.bias)))
    np.testing.assert_allclose(maps, expected, atol=1e-5)  # float32 sums of 9 products
