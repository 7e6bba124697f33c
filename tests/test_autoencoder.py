"""Tests for mlbook.autoencoder: shapes, the two APIs, the reconstruction loss, and the fixes to the original post."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from images import blob_images
from mlbook import autoencoder as ae
from mlbook.training import predict_in_batches

# --- shapes -------------------------------------------------------------------------------------------------------


def test_dense_autoencoder_shapes_and_parameter_count():
    model = ae.dense_autoencoder_sequential()
    images = blob_images(3)
    assert model.get_layer("encoder")(images).shape == (3, 64)
    assert model(images).shape == (3, 28, 28, 1)
    # 784·128+128, 128·64+64, 64·64+64 | 64·64+64, 64·128+128, 128·784+784 (weights + biases), by hand
    expected = ((784 * 128 + 128) + (128 * 64 + 64) + (64 * 64 + 64)
                + (64 * 64 + 64) + (64 * 128 + 128) + (128 * 784 + 784))
    assert model.count_params() == expected == 226_512


def test_conv_autoencoder_shapes_and_the_valid_convolution():
    encoder, decoder = ae.conv_encoder(), ae.conv_decoder()
    assert encoder.output_shape == (None, *ae.CONV_CODE_SHAPE) == (None, 4, 4, 8)
    sides = [layer.output.shape[1] for layer in decoder.layers[1:]]
    # conv 4, up 8, conv 8, up 16, valid conv 14, up 28, conv 28: the "valid" 3×3 convolution removes a 1-pixel border
    assert sides == [4, 8, 8, 16, 14, 28, 28]
    assert ae.conv_autoencoder()(blob_images(2)).shape == (2, 28, 28, 1)


# --- Sequential and functional: the same model ---------------------------------------------------------------------


def test_sequential_and_functional_autoencoders_agree_on_the_same_weights():
    keras.utils.set_random_seed(0)
    sequential, functional = ae.dense_autoencoder_sequential(), ae.dense_autoencoder_functional()
    assert [w.shape for w in sequential.get_weights()] == [w.shape for w in functional.get_weights()]
    functional.set_weights(sequential.get_weights())
    images = blob_images(8)
    expected = predict_in_batches(sequential, images)
    # the same float32 operations in the same order: equal up to rounding in fused kernels (≈1e-7 relative)
    np.testing.assert_allclose(predict_in_batches(functional, images, batch_size=3), expected, rtol=0, atol=1e-6)
    # different random initial weights would give visibly different outputs, so the check above can fail
    assert np.abs(predict_in_batches(ae.dense_autoencoder_functional(), images) - expected).max() > 1e-3


def test_a_model_used_as_a_layer_shares_its_weights():
    model = ae.dense_autoencoder_sequential()
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    images = blob_images(4)
    # the composite model holds the very encoder and decoder objects: composing them by hand gives its output
    np.testing.assert_allclose(model(images), decoder(encoder(images)), rtol=0, atol=1e-6)  # same ops, float32
    assert len(model.trainable_weights) == len(encoder.trainable_weights) + len(decoder.trainable_weights)


# --- the reconstruction loss ---------------------------------------------------------------------------------------


@pytest.mark.equation("eq-ae-bce")
def test_reconstruction_loss_is_the_binary_cross_entropy_summed_over_pixels():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(3, 28, 28, 1))
    outputs = rng.uniform(0.05, 0.95, size=(3, 28, 28, 1))
    by_hand = -(images * np.log(outputs) + (1 - images) * np.log(1 - outputs)).sum(axis=(1, 2, 3))
    loss = keras.ops.convert_to_numpy(ae.reconstruction_loss(images, outputs))
    assert loss.shape == (3,)
    np.testing.assert_allclose(loss, by_hand, rtol=1e-9)  # float64 in, float64 out: round-off only


@pytest.mark.equation("eq-ae-entropy-floor")
def test_reconstruction_loss_is_smallest_at_the_target_where_it_equals_the_entropy():
    images = blob_images(4)
    floor = ae.bernoulli_entropy(images)
    at_target = keras.ops.convert_to_numpy(ae.reconstruction_loss(images, images))
    # Keras clips outputs to [1e-7, 1 - 1e-7]: at most ≈1e-7·784 nats, plus float32 round-off on sums of ≈100
    np.testing.assert_allclose(at_target, floor, atol=1e-3)
    nudged = np.clip(images + 0.05, 0, 1)
    assert np.all(keras.ops.convert_to_numpy(ae.reconstruction_loss(images, nudged)) > floor + 1.0)


@pytest.mark.equation("eq-ae-entropy-floor")
def test_entropy_floor_is_zero_for_black_and_white_images_and_positive_for_grey():
    binary = (blob_images(3) > 0.5).astype(np.float32)
    np.testing.assert_array_equal(ae.bernoulli_entropy(binary), 0.0)
    grey = np.full((1, 28, 28, 1), 0.5, dtype=np.float32)
    np.testing.assert_allclose(ae.bernoulli_entropy(grey), [784 * np.log(2)], rtol=1e-12)  # log 2 nats per pixel


# --- the original's mistakes, one regression test each -------------------------------------------------------------


@pytest.mark.parametrize("build", [ae.dense_autoencoder_sequential, ae.dense_autoencoder_functional,
                                   ae.conv_autoencoder])
def test_outputs_are_independent_sigmoid_pixels_not_a_softmax(build):
    outputs = keras.ops.convert_to_numpy(build()(blob_images(4)))
    assert outputs.min() > 0.0 and outputs.max() < 1.0
    # a softmax over 784 pixels forces every image to sum to exactly 1; independent sigmoids start near 0.5 each
    assert np.all(outputs.sum(axis=(1, 2, 3)) > 100.0)


def test_unscaled_images_are_rejected_with_a_clear_error():
    raw = (blob_images(2) * 255).astype(np.uint8)
    with pytest.raises(ValueError, match="scaled to"):
        ae.train_autoencoder(ae.dense_autoencoder_sequential(), raw, raw, num_epochs=1, batch_size=2,
                             learning_rate=1e-3)


def test_training_reports_the_reconstruction_loss_and_no_accuracy(capsys):
    images = blob_images(8)
    history = ae.train_autoencoder(ae.dense_autoencoder_sequential(), images, images, num_epochs=1, batch_size=4,
                                   learning_rate=1e-3)
    assert set(history.history) == {"loss", "val_loss"}
    assert "epoch 1/1" in capsys.readouterr().out


def test_adam_trains_where_adadelta_with_its_keras_3_default_barely_moves():
    # The post used Adadelta(), whose default learning rate was 1.0 in Keras 1–2 and is 0.001 in Keras 3.
    assert float(keras.optimizers.Adadelta().learning_rate) == pytest.approx(1e-3)
    images = blob_images(32)
    drops = {}
    for name, optimizer in [("adadelta", keras.optimizers.Adadelta()), ("adam", keras.optimizers.Adam(3e-3))]:
        keras.utils.set_random_seed(0)
        model = ae.dense_autoencoder_sequential()
        model.compile(optimizer=optimizer, loss=ae.reconstruction_loss)
        before = ae.reconstruction_error(model, images)
        repeated = np.tile(images, (30, 1, 1, 1))  # 30 steps on the same batch, in one epoch
        model.fit(repeated, repeated, epochs=1, batch_size=32, shuffle=False, verbose=0)
        drops[name] = before - ae.reconstruction_error(model, images)
    # 30 steps from the same weights: Adam removes hundreds of nats; default Adadelta's steps are ~1e-3 of the
    # weights' scale, so it removes a tiny fraction of that
    assert drops["adam"] > 100.0
    assert drops["adadelta"] < 0.05 * drops["adam"]


# --- helpers: the random-code sampler, nearest distances, the plotting helper ------------------------------------


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(4)
    queries, references = rng.normal(size=(9, 2, 3)), rng.normal(size=(20, 6))
    brute = np.sqrt(((queries.reshape(9, 1, 6) - references[None]) ** 2).sum(axis=-1)).min(axis=1)
    # float64 with |q|² + |r|² − 2q·r: cancellation error ≈ 1e-15 on squared distances of order 10
    np.testing.assert_allclose(ae.nearest_distances(queries, references, chunk_size=4), brute, atol=1e-7)
    np.testing.assert_allclose(ae.nearest_distances(references[:3], references), 0.0, atol=1e-6)  # √(round-off)
    with pytest.raises(ValueError, match="same width"):
        ae.nearest_distances(queries, references[:, :5])


def test_random_codes_match_the_codes_mean_and_spread_per_coordinate():
    rng = np.random.default_rng(2)
    codes = rng.normal([3.0, -1.0, 0.0], [0.5, 2.0, 1.0], size=(400, 3))
    samples = ae.random_codes_like(codes, 20_000, seed=3)
    assert samples.shape == (20_000, 3) and samples.dtype == np.float32
    # standard errors with 20,000 draws: ≤ 2/√20000 ≈ 0.014 for the means, ≈ σ/√(2n) ≤ 0.01 for the spreads
    np.testing.assert_allclose(samples.mean(axis=0), codes.mean(axis=0), atol=0.07)
    np.testing.assert_allclose(samples.std(axis=0), codes.std(axis=0), atol=0.05)
    conv_codes = rng.uniform(size=(10, 4, 4, 8))
    assert ae.random_codes_like(conv_codes, 5, seed=0).shape == (5, 4, 4, 8)
    with pytest.raises(ValueError, match="at least two codes"):
        ae.random_codes_like(codes[:1], 5, seed=0)


def test_plot_image_rows_draws_one_row_per_entry_and_checks_lengths():
    import matplotlib.pyplot as plt

    images = blob_images(5)
    fig = ae.plot_image_rows({"inputs": images, "outputs": images})
    assert len(fig.axes) == 10 and fig.axes[0].get_ylabel() == "inputs"
    plt.close(fig)
    with pytest.raises(ValueError, match="same number of images"):
        ae.plot_image_rows({"inputs": images, "outputs": images[:3]})
