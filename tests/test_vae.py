"""Tests for mlbook.vae: the KL closed form, the sampling layer, the model's training step, the latent grid, and
the measure that shows a VAE decodes random latent vectors into more digit-like images than a plain autoencoder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from images import blob_images
from mlbook import autoencoder as ae
from mlbook import vae
from mlbook.training import predict_in_batches

TINY = dataclasses.replace(vae.SETTINGS["quick"], intermediate_dim=32, num_epochs=2, batch_size=16)



def as_numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


# --- the KL divergence (eq-vae-kl-closed-form) ---------------------------------------------------------------------


def test_kl_closed_form_is_zero_at_the_prior():
    zeros = np.zeros((3, 5))
    np.testing.assert_array_equal(as_numpy(vae.kl_divergence(zeros, zeros)), 0.0)  # μ = 0, log σ² = 0: exactly 0


@pytest.mark.equation("eq-vae-kl-closed-form")
def test_kl_closed_form_by_hand_and_positive_away_from_the_prior():
    # one dimension, μ = 1, σ² = 2: ½(σ² + μ² − ln σ² − 1) = ½(2 − ln 2)
    value = as_numpy(vae.kl_divergence(np.array([[1.0]]), np.log(np.array([[2.0]]))))
    np.testing.assert_allclose(value, [0.5 * (2.0 - np.log(2.0))], rtol=1e-12)  # float64: round-off only
    rng = np.random.default_rng(0)
    z_mean, z_log_var = rng.normal(size=(1000, 4)), rng.normal(size=(1000, 4))
    assert np.all(as_numpy(vae.kl_divergence(z_mean, z_log_var)) > 0.0)


@pytest.mark.equation("eq-vae-kl-closed-form")
def test_kl_closed_form_matches_a_monte_carlo_estimate():
    # D_KL(q || p) = E_q[log q(z) − log p(z)], estimated from draws of q = N(μ, diag σ²), p = N(0, I)
    rng = np.random.default_rng(1)
    z_mean, z_log_var = np.array([0.7, -1.2, 0.1]), np.array([0.4, -0.9, 1.1])
    sigma = np.exp(0.5 * z_log_var)
    z = z_mean + sigma * rng.standard_normal((400_000, 3))
    log_q = -0.5 * (((z - z_mean) / sigma) ** 2 + z_log_var + np.log(2 * np.pi)).sum(axis=1)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(axis=1)
    samples = log_q - log_p
    closed_form = float(as_numpy(vae.kl_divergence(z_mean[None], z_log_var[None]))[0])
    standard_error = samples.std() / np.sqrt(len(samples))
    assert abs(samples.mean() - closed_form) < 5 * standard_error  # 5 standard errors: fails by chance < 1e-6


def test_kl_gradient_matches_central_differences():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    z_mean, z_log_var = tf.Variable(rng.normal(size=(2, 3))), tf.Variable(rng.normal(size=(2, 3)))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(vae.kl_divergence(z_mean, z_log_var))
    grad_mean, grad_log_var = (g.numpy() for g in tape.gradient(total, [z_mean, z_log_var]))
    step = 1e-6
    for variable, analytic in [(z_mean, grad_mean), (z_log_var, grad_log_var)]:
        numeric = np.zeros_like(analytic)
        for index in np.ndindex(analytic.shape):
            original = variable.numpy()
            for sign in (1, -1):
                shifted = original.copy()
                shifted[index] += sign * step
                variable.assign(shifted)
                numeric[index] += sign * float(tf.reduce_sum(vae.kl_divergence(z_mean, z_log_var))) / (2 * step)
            variable.assign(original)
        # float64 central differences: truncation O(h²) ≈ 1e-12, cancellation ≈ 1e-16/1e-6 = 1e-10
        np.testing.assert_allclose(analytic, numeric, atol=1e-7)
    np.testing.assert_allclose(grad_mean, z_mean.numpy(), rtol=1e-12)  # ∂D/∂μ = μ, by hand


# --- the sampling layer (eq-vae-reparameterisation) ----------------------------------------------------------------


@pytest.mark.equation("eq-vae-reparameterisation")
def test_sampling_layer_draws_with_the_requested_mean_and_variance():
    n = 200_000
    z_mean = np.tile(np.array([[1.0, -2.0, 0.0]], dtype=np.float32), (n, 1))
    z_log_var = np.tile(np.log(np.array([[1.0, 4.0, 0.25]], dtype=np.float32)), (n, 1))
    z = as_numpy(vae.Sampling(seed=3)([z_mean, z_log_var]))
    assert z.shape == (n, 3)
    # standard errors: σ/√n ≤ 0.0045 for the means, σ²·√(2/n) ≤ 0.013 for the variances; allow 5 of them
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0, 0.0], atol=5 * 2.0 / np.sqrt(n))
    np.testing.assert_allclose(z.var(axis=0), [1.0, 4.0, 0.25], atol=5 * 4.0 * np.sqrt(2.0 / n))


def test_sampling_rejects_mismatched_mean_and_log_variance():
    with pytest.raises(ValueError, match=r"same shape, got \(4, 2\) and \(4, 3\)"):
        vae.Sampling()([np.zeros((4, 2), dtype=np.float32), np.zeros((4, 3), dtype=np.float32)])


@pytest.mark.equation("eq-vae-reparameterisation")
def test_sampling_is_differentiable_in_the_mean_and_the_log_variance():
    import tensorflow as tf

    z_mean, z_log_var = tf.Variable(tf.zeros((4, 2))), tf.Variable(tf.zeros((4, 2)))
    with tf.GradientTape(persistent=True) as tape:
        z = vae.Sampling(seed=4)([z_mean, z_log_var])
        total = tf.reduce_sum(z)
    np.testing.assert_array_equal(tape.gradient(total, z_mean).numpy(), 1.0)  # ∂z/∂μ = 1 exactly
    epsilon = z.numpy()  # with μ = 0 and σ = 1, z is ε itself
    # ∂z/∂(log σ²) = ½ σ ε = ½ ε here; float32 round-off only
    np.testing.assert_allclose(tape.gradient(total, z_log_var).numpy(), 0.5 * epsilon, rtol=1e-6)


# --- the model -----------------------------------------------------------------------------------------------------


def test_encoder_and_decoder_shapes():
    encoder, decoder = vae.build_encoder(2, 32, seed=0), vae.build_decoder(2, 32)
    images = np.random.default_rng(5).uniform(size=(6, 28, 28, 1)).astype(np.float32)
    z_mean, z_log_var, z = encoder(images)
    assert z_mean.shape == z_log_var.shape == z.shape == (6, 2)
    assert decoder(z).shape == (6, 28, 28, 1)
    assert vae.build_vae(TINY, seed=0)(images).shape == (6, 28, 28, 1)


def test_decoder_outputs_independent_pixels_not_a_softmax():
    outputs = as_numpy(vae.build_decoder(2, 32)(np.zeros((3, 2), dtype=np.float32)))
    assert outputs.min() > 0.0 and outputs.max() < 1.0
    assert np.all(outputs.sum(axis=(1, 2, 3)) > 100.0)  # a softmax over 784 pixels would sum to exactly 1


@pytest.mark.equation("eq-vae-loss")
def test_loss_terms_are_the_cross_entropy_of_the_decoded_code_and_the_kl_term():
    """With log σ² = −60 the drawn code is the mean (σ ≈ 1e-13 is below float32's resolution there), so the loss
    of each image can be computed by hand: the binary cross-entropy of the decoded mean, and ½ Σ (σ² + μ² − log σ²
    − 1)."""
    model = vae.build_vae(TINY, seed=0)
    log_var_layer = model.encoder.get_layer("z_log_var")
    kernel, bias = log_var_layer.get_weights()
    log_var_layer.set_weights([np.zeros_like(kernel), np.full_like(bias, -60.0)])
    images = blob_images(4)
    z_mean, z_log_var, z = (as_numpy(t) for t in model.encoder(images))
    np.testing.assert_array_equal(z, z_mean)
    decoded = as_numpy(model.decoder(z_mean)).astype(np.float64)
    x = images.astype(np.float64)
    cross_entropy = -(x * np.log(decoded) + (1 - x) * np.log(1 - decoded)).sum(axis=(1, 2, 3))
    kl = 0.5 * (np.exp(-60.0) + z_mean.astype(np.float64) ** 2 + 60.0 - 1.0).sum(axis=1)
    reconstruction, kl_term = (as_numpy(t) for t in model.loss_terms(images))
    np.testing.assert_allclose(reconstruction, cross_entropy, rtol=1e-5)  # float32 sums of 784 terms
    np.testing.assert_allclose(kl_term, kl, rtol=1e-6)


def test_a_training_step_lowers_the_loss_on_a_fixed_batch(capsys):
    images = blob_images(64)
    keras.utils.set_random_seed(0)
    model = vae.build_vae(TINY, seed=0)

    def mean_loss() -> float:
        reconstruction, kl = model.loss_terms(images)
        return float(np.mean(as_numpy(reconstruction + kl)))

    before = mean_loss()
    cfg = dataclasses.replace(TINY, num_epochs=25, batch_size=64, learning_rate=1e-2)  # one step per epoch
    history = vae.train_vae(model, images, images[:16], cfg, print_every=5).history
    # an untrained decoder outputs ≈0.5 everywhere (≈ 784·ln 2 ≈ 543 nats); 25 steps learn at least the mean
    # image, worth well over 100 nats, far beyond the few-nat noise of one sampled z per image
    assert mean_loss() < before - 100.0
    expected = {"loss", "reconstruction_loss", "kl_loss"}
    assert set(history) == expected | {f"val_{name}" for name in expected}
    # the total is the sum of the two tracked terms (float32 means of values ≈ 300: round-off ≈ 1e-4)
    assert history["val_loss"][-1] == pytest.approx(history["val_reconstruction_loss"][-1]
                                                    + history["val_kl_loss"][-1], abs=1e-2)
    assert min(history["kl_loss"]) > 0.0
    assert len(capsys.readouterr().out.strip().splitlines()) == 5  # one line every 5th epoch


def test_a_trained_vae_comes_back_from_the_weights_cache(capsys):
    from mlbook.data import ImageDataset

    images = blob_images(24)
    labels = np.arange(24) % 10
    data = ImageDataset(images[:16], labels[:16], images[16:], labels[16:], source="blobs", description="blobs")
    cfg = dataclasses.replace(TINY, num_epochs=1)
    first = vae.train_or_load_vae(data, cfg, seed=0)
    second = vae.train_or_load_vae(data, cfg, seed=0)
    assert not first.from_cache and second.from_cache
    assert second.history == first.history  # the curves can still be drawn on a cache hit
    for trained, loaded in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(loaded, trained)
    # the decoder of the loaded model is the trained one: same images for the same latent vectors
    z = np.random.default_rng(7).standard_normal((5, 2)).astype(np.float32)
    decoded = predict_in_batches(second.model.decoder, z)
    np.testing.assert_array_equal(decoded, predict_in_batches(first.model.decoder, z))
    # a model loaded from the cache was never compiled: the chapter's evaluation must not need compile()
    losses = vae.evaluate_vae(second.model, images, batch_size=7)
    assert vae.evaluate_vae(first.model, images, batch_size=7) == losses  # seeded: the same estimate every run
    assert losses["loss"] == pytest.approx(losses["reconstruction_loss"] + losses["kl_loss"], rel=1e-6)  # float32
    assert losses["kl_loss"] > 0.0 and losses["reconstruction_loss"] > ae.bernoulli_entropy(images).mean()


# --- the latent grid -----------------------------------------------------------------------------------------------


def test_latent_grid_is_symmetric_and_spans_the_requested_quantiles():
    points = vae.latent_grid(15, quantile=0.05)
    assert points.shape == (225, 2)
    # the original's grid ran from −1.0 to 0.8: here the grid is its own mirror image through the origin
    np.testing.assert_allclose(points, -points[::-1], atol=1e-6)  # float32 storage of ±ppf values
    np.testing.assert_allclose(points[0], [-1.6448536, 1.6448536], rtol=1e-6)  # top left: (q_0.05, q_0.95)
    np.testing.assert_allclose(points[7 * 15 + 7], [0.0, 0.0], atol=1e-6)  # the centre is the origin
    with pytest.raises(ValueError, match="0 < quantile < 0.5"):
        vae.latent_grid(15, quantile=0.5)


def test_latent_extent_is_the_range_of_the_latent_grid():
    low, high = vae.latent_extent(0.05)
    points = vae.latent_grid(15, quantile=0.05)
    np.testing.assert_allclose([low, high], [points[:, 0].min(), points[:, 0].max()], rtol=1e-6)
    assert low == -high
    with pytest.raises(ValueError, match="0 < quantile < 0.5"):
        vae.latent_extent(0.0)


def coordinate_decoder() -> keras.Model:
    """A linear "decoder" whose 2×2 image holds the latent point it decodes: pixels (z1, z2, z1 + z2, 0)."""
    z = keras.Input((2,))
    dense = keras.layers.Dense(4, use_bias=False)
    decoder = keras.Model(z, keras.layers.Reshape((2, 2, 1))(dense(z)))
    dense.set_weights([np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])])
    return decoder


def test_decode_latent_grid_spaces_points_evenly_with_rows_from_high_to_low_z2():
    frames = vae.decode_latent_grid(coordinate_decoder(), 5, (-2.0, 2.0))
    assert frames.shape == (5, 5, 2, 2, 1)
    values = np.linspace(-2.0, 2.0, 5)
    np.testing.assert_allclose(frames[:, :, 0, 0, 0], np.tile(values, (5, 1)), atol=1e-6)  # z1 along a row
    np.testing.assert_allclose(frames[:, :, 0, 1, 0], np.tile(values[::-1, None], (1, 5)), atol=1e-6)  # z2 falls
    np.testing.assert_allclose(frames[0, 4, 1, 0, 0], 4.0, atol=1e-6)  # top right: (2, 2)
    with pytest.raises(ValueError, match="latent_dim=3"):
        vae.decode_latent_grid(vae.build_decoder(3, 8), 5, (-1.0, 1.0))
    with pytest.raises(ValueError, match="low < high"):
        vae.decode_latent_grid(coordinate_decoder(), 5, (1.0, -1.0))


def test_tile_images_lays_images_out_row_by_row():
    from mlbook.plot import tile_images

    images = np.arange(5, dtype=float).reshape(5, 1, 1, 1) * np.ones((5, 2, 3, 1))
    tiled = tile_images(images, ncols=2, padding=0, fill=0.0)[..., 0]
    assert tiled.shape == (6, 6)
    np.testing.assert_array_equal(tiled[::2, ::3], [[0, 1], [2, 3], [4, 0]])  # last cell left blank


def test_plot_latent_grid_needs_a_two_dimensional_latent_space():
    with pytest.raises(ValueError, match="latent_dim=3"):
        vae.plot_latent_grid(vae.build_decoder(3, 8), grid_size=5)


# --- the measure: decoded random vectors, scored by a digit classifier ---------------------------------------------


@pytest.mark.slow
def test_vae_decodes_random_vectors_into_more_digit_like_images_than_the_autoencoder():
    from mlbook.data import load_digits_as_mnist

    data = load_digits_as_mnist()
    keras.utils.set_random_seed(0)
    classifier = vae.build_digit_classifier()
    vae.train_digit_classifier(classifier, data.x_train, data.y_train, num_epochs=4)
    accuracy = np.mean(predict_in_batches(classifier, data.x_test).argmax(axis=1) == data.y_test)
    assert accuracy > 0.8  # a classifier that cannot read digits could not judge samples

    # both models far less trained than in the chapter (there: 50 and 15 epochs)
    cfg = dataclasses.replace(vae.SETTINGS["quick"], num_epochs=8)
    model = vae.build_vae(cfg, seed=0)
    vae.train_vae(model, data.x_train, data.x_test, cfg)
    autoencoder = ae.dense_autoencoder_sequential()
    ae.train_autoencoder(autoencoder, data.x_train, data.x_test, num_epochs=8, batch_size=64, learning_rate=3e-3)

    samples = vae.decode_random_vectors(model.decoder, autoencoder, data.x_train, num_samples=500, seed=1)
    scores = {name: vae.digit_confidence(classifier, images) for name, images in samples.items()}
    # 500 samples: the standard error of a mean confidence is ≈ 0.25/√500 ≈ 0.011; demand a gap of 3 of them
    means = {name: round(float(values.mean()), 3) for name, values in scores.items()}
    assert means["VAE"] > means["autoencoder"] + 0.035, f"mean top-class probabilities: {means}"
