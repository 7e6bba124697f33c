"""Tests of mlbook.gan: network shapes, the losses against the chapter's equations, the training step, the cache,
the data loaders, and one regression test per fix listed in the chapter's "Notes on the original"."""

from __future__ import annotations

import dataclasses
import io
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mlbook import cache, gan
from mlbook.profiles import PROFILES, select

# A network small enough to train a few steps in well under a second.
TINY = dataclasses.replace(gan.SETTINGS["quick"], num_epochs=2, batch_size=8, latent_dim=8, base_filters=4,
                           num_fixed_samples=4)
# float32 losses of O(1) values: relative round-off ~ 1e-7 per operation, so 1e-5 leaves room for a few dozen.
LOSS_RTOL = 1e-5


def tiny_images(n: int = 24, seed: int = 0) -> np.ndarray:
    """Random 28×28 'images' in [0, 1] with a bright centre, like digits."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.2, size=(n, 28, 28, 1)).astype(np.float32)
    images[:, 8:20, 8:20] += 0.7
    return np.clip(images, 0.0, 1.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def weights_of(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]


def changed(before: list[np.ndarray], after: list[np.ndarray]) -> list[bool]:
    return [not np.array_equal(b, a) for b, a in zip(before, after)]


# ---- settings and data -----------------------------------------------------------------------------------------


def test_settings_exist_for_every_profile_and_keep_dcgan_adam_settings():
    for profile in PROFILES:
        cfg = select(gan.SETTINGS, profile)
        assert cfg.learning_rate == 2e-4 and cfg.beta_1 == 0.5  # DCGAN paper and the original
        assert cfg.num_epochs > 0 and cfg.batch_size > 0 and cfg.quiz_size >= 8


def test_tanh_range_round_trip():
    """Notes on the original: the range docstrings were backwards; [0, 1] → [-1, 1] → [0, 1] here."""
    images = np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(gan.to_tanh_range(images), [-1.0, -0.5, 0.0, 1.0])  # exact in binary
    np.testing.assert_array_equal(gan.from_tanh_range(gan.to_tanh_range(images)), images)
    np.testing.assert_array_equal(gan.from_tanh_range(np.array([-3.0, 3.0])), [0.0, 1.0])  # clipped


def test_quick_profile_uses_the_offline_digits():
    data = gan.load_gan_images(gan.SETTINGS["quick"], "quick")
    assert data.source == "sklearn-digits" and data.image_shape == (28, 28, 1)


def test_full_profile_without_faces_falls_back_with_one_line(monkeypatch, capsys):
    monkeypatch.delenv(gan.CELEBA_ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if it were not installed
    data = gan.load_gan_images(gan.SETTINGS["full"], "full")
    assert data.source in {"mnist", "sklearn-digits"}
    lines = [line for line in capsys.readouterr().out.splitlines() if "CelebA unavailable" in line]
    assert len(lines) == 1 and gan.CELEBA_ENV_VAR in lines[0] and "tensorflow-datasets" in lines[0]


def test_celeba_folder_is_cropped_resized_and_split(tmp_path, monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(5):  # aligned CelebA images are 178 wide and 218 high
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(tmp_path / f"{i:06d}.jpg")
    monkeypatch.setenv(gan.CELEBA_ENV_VAR, str(tmp_path))
    cfg = dataclasses.replace(gan.SETTINGS["full"], face_side=32)
    data = gan.load_gan_images(cfg, "full")
    assert data.source == "celeba"
    assert data.x_train.shape == (4, 32, 32, 3) and data.x_test.shape == (1, 32, 32, 3)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0


def test_center_crop_checks_the_image_size():
    with pytest.raises(ValueError, match=r"at least 108×108, got 100×100"):
        gan.center_crop_and_resize(np.zeros((100, 100, 3), dtype=np.uint8), 108, 64)
    square = np.zeros((218, 178, 3), dtype=np.uint8)
    square[55:163, 35:143] = 255  # exactly the central 108×108 crop is white
    np.testing.assert_array_equal(gan.center_crop_and_resize(square, 108, 64), 255)


def test_image_batches_are_full_shuffled_and_in_tanh_range():
    images = tiny_images(20)
    batches = list(gan.image_batches(images, 8, seed=0))
    assert [tuple(b.shape) for b in batches] == [(8, 28, 28, 1)] * 2  # the last 4 images are dropped
    values = np.concatenate([b.numpy() for b in batches])
    # each batch image is one of the inputs mapped to [-1, 1], not an input as it was in [0, 1]
    expected = gan.to_tanh_range(images).reshape(len(images), -1)
    for image in values.reshape(len(values), -1):
        assert np.abs(expected - image).max(axis=1).min() < 1e-6
    assert values.min() < -0.9 and values.max() <= 1.0
    with pytest.raises(ValueError, match="at least batch_size=32 images, got 20"):
        gan.image_batches(images, 32, seed=0)


# ---- the networks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "blocks"), [(28, 2), (64, 4), (32, 3), (8, 1)])
def test_num_upsampling_blocks(side, blocks):
    assert gan.num_upsampling_blocks(side) == blocks


def test_num_upsampling_blocks_rejects_odd_sides():
    with pytest.raises(ValueError, match="divisible by 2"):
        gan.num_upsampling_blocks(7)


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (64, 64, 3)])
def test_generator_and_discriminator_output_shapes(image_shape):
    generator = gan.build_generator(16, image_shape, base_filters=4)
    discriminator = gan.build_discriminator(image_shape, base_filters=4)
    images = generator(np.zeros((3, 16), dtype=np.float32))
    assert tuple(images.shape) == (3, *image_shape)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0  # tanh output
    assert tuple(discriminator(images).shape) == (3, 1)  # one logit per image


def test_generator_follows_dcgan_tensorflows_64_pixel_layout():
    """For 64×64×3 and 64 base filters: DCGAN-tensorflow's 4×4×512 → 8×8×256 → 16×16×128 → 32×32×64 → 64×64×3
    (halving at every step; the series itself kept 512 channels at 8×8, see the chapter's notes)."""
    generator = gan.build_generator(100, (64, 64, 3), base_filters=64)
    shapes = [tuple(layer.output.shape[1:]) for layer in generator.layers
              if isinstance(layer, (keras.layers.Reshape, keras.layers.Conv2DTranspose))]
    assert shapes == [(4, 4, 512), (8, 8, 256), (16, 16, 128), (32, 32, 64), (64, 64, 3)]


def test_bad_image_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"square image shape \(side, side, 1 or 3\), got \(28, 32, 1\)"):
        gan.build_discriminator((28, 32, 1), base_filters=4)


def test_kernel_shape_is_height_width_in_channels_out_channels():
    """Notes on the original: the third kernel dimension is the input channels, not 'the number of images'."""
    discriminator = gan.build_discriminator((28, 28, 3), base_filters=4)
    convolutions = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [tuple(c.kernel.shape) for c in convolutions] == [(5, 5, 3, 4), (5, 5, 4, 8)]


def test_weights_start_from_the_dcgan_normal():
    generator = gan.build_generator(100, (64, 64, 3), base_filters=64)
    kernel = generator.layers[0].kernel.numpy()  # 100 × 8192 values: the std estimate is within ~0.1 %
    assert abs(kernel.mean()) < 1e-3 and kernel.std() == pytest.approx(gan.WEIGHT_STDDEV, rel=0.02)


# ---- the losses ------------------------------------------------------------------------------------------------

REAL_LOGITS = np.array([2.0, -0.5, 1.3], dtype=np.float32)
FAKE_LOGITS = np.array([-1.5, 0.7, -4.0], dtype=np.float32)


@pytest.mark.equation("eq-gan-d-loss", "eq-gan-minimax")
def test_discriminator_loss_uses_real_label_one_eq_gan_d_loss():
    """L_D = −mean log D(x) − mean log(1 − D(G(z))), with D = sigmoid(logit): real images are labelled 1."""
    expected = -np.mean(np.log(sigmoid(REAL_LOGITS.astype(float)))) - np.mean(
        np.log(1 - sigmoid(FAKE_LOGITS.astype(float))))
    assert float(gan.discriminator_loss(REAL_LOGITS, FAKE_LOGITS)) == pytest.approx(expected, rel=LOSS_RTOL)
    # these logits mostly say "real" on real images: with the labels swapped (the original's prose) the same
    # verdicts would cost far more
    swapped = -np.mean(np.log(1 - sigmoid(REAL_LOGITS.astype(float)))) - np.mean(
        np.log(sigmoid(FAKE_LOGITS.astype(float))))
    assert swapped > expected + 2


@pytest.mark.equation("eq-gan-g-loss")
def test_generator_loss_uses_real_label_eq_gan_g_loss():
    expected = -np.mean(np.log(sigmoid(FAKE_LOGITS.astype(float))))
    assert float(gan.generator_loss(FAKE_LOGITS)) == pytest.approx(expected, rel=LOSS_RTOL)


@pytest.mark.equation("eq-gan-minimax")
def test_minimax_generator_loss_is_the_value_functions_second_term():
    expected = np.mean(np.log(1 - sigmoid(FAKE_LOGITS.astype(float))))
    assert float(gan.minimax_generator_loss(FAKE_LOGITS)) == pytest.approx(expected, rel=LOSS_RTOL)


def test_equilibrium_discriminator_loss_is_two_log_two():
    """A discriminator that answers ½ everywhere (logit 0) has L_D = 2 log 2, the chapter's reference line."""
    zeros = np.zeros(4, dtype=np.float32)
    assert float(gan.discriminator_loss(zeros, zeros)) == pytest.approx(2 * np.log(2), rel=LOSS_RTOL)


@pytest.mark.parametrize("loss", [gan.generator_loss, gan.minimax_generator_loss])
def test_generator_loss_gradients_match_finite_differences(loss):
    logits = tf.Variable(np.array([-3.0, -0.2, 1.1, 2.5]))  # float64 for the difference quotients
    with tf.GradientTape() as tape:
        value = loss(logits)
    analytic = tape.gradient(value, logits).numpy()
    step = 1e-6  # float64 central differences: error ~ 1e-12 truncation + 1e-10 round-off
    numerical = [(float(loss(logits + step * e)) - float(loss(logits - step * e))) / (2 * step)
                 for e in np.eye(4)]
    np.testing.assert_allclose(analytic, numerical, rtol=0, atol=1e-8)


@pytest.mark.equation("eq-gan-g-loss")
def test_non_saturating_loss_has_strong_gradient_where_minimax_saturates():
    """Eq. eq-gan-g-loss: at a confidently rejected image (logit −8), d/dlogit is −(1 − σ) ≈ −1 for the
    non-saturating loss and −σ ≈ −3e-4 for the minimax one."""
    logit = tf.Variable(np.array([-8.0]))
    gradients = {}
    for loss in (gan.generator_loss, gan.minimax_generator_loss):
        with tf.GradientTape() as tape:
            value = loss(logit)
        gradients[loss.__name__] = float(tape.gradient(value, logit)[0])
    assert gradients["generator_loss"] == pytest.approx(-(1 - sigmoid(-8.0)), rel=1e-9)
    assert gradients["minimax_generator_loss"] == pytest.approx(-sigmoid(-8.0), rel=1e-9)
    assert abs(gradients["generator_loss"]) > 1000 * abs(gradients["minimax_generator_loss"])


# ---- training --------------------------------------------------------------------------------------------------


@pytest.fixture
def eager_dcgan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the training step eagerly: for a few steps of a tiny model, tracing the graph costs far more CPU than
    the steps (the book's build exercises the traced step)."""
    make_dcgan = gan.make_dcgan

    def make_eager(*args, **kwargs):
        model = make_dcgan(*args, **kwargs)
        model.run_eagerly = True
        return model

    monkeypatch.setattr(gan, "make_dcgan", make_eager)


def one_batch(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(gan.to_tanh_range(images[:batch_size])).batch(batch_size)


def test_one_training_step_changes_both_networks(eager_dcgan):
    model = gan.make_dcgan((28, 28, 1), TINY, seed=0)
    generator_before, discriminator_before = weights_of(model.generator), weights_of(model.discriminator)
    history = model.fit(one_batch(tiny_images(), 8), epochs=1, verbose=0, shuffle=False)
    assert all(changed(generator_before, weights_of(model.generator)))
    assert all(changed(discriminator_before, weights_of(model.discriminator)))
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_train_step_takes_one_step_per_network(eager_dcgan):
    """Notes on the original: one D step and one G step per batch (k = 1), not two G steps."""
    model = gan.make_dcgan((28, 28, 1), TINY, seed=0)
    model.fit(gan.image_batches(tiny_images(16), 8, seed=0), epochs=1, verbose=0, shuffle=False)
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 2


def test_discriminator_step_leaves_the_generator_alone(eager_dcgan):
    """Notes on the original: each optimiser updates its own network's weights (not a name-prefix selection).
    With the generator's learning rate at 0, its trainable weights must not move at all."""
    model = gan.make_dcgan((28, 28, 1), TINY, seed=0)
    model.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(0.0, beta_1=0.5), run_eagerly=True)
    generator_before, discriminator_before = weights_of(model.generator), weights_of(model.discriminator)
    model.fit(one_batch(tiny_images(), 8), epochs=2, verbose=0, shuffle=False)
    assert not any(changed(generator_before, weights_of(model.generator)))
    assert all(changed(discriminator_before, weights_of(model.discriminator)))


def test_discriminator_step_raises_its_verdict_on_real_images(eager_dcgan):
    """Notes on the original: D is trained towards 1 on real images and 0 on generated ones. With the generator
    frozen, a few D steps on the same real batch raise the mean D(x) and lower the mean D(G(z))."""
    model = gan.make_dcgan((28, 28, 1), dataclasses.replace(TINY, learning_rate=2e-3), seed=0)
    model.g_optimizer = keras.optimizers.Adam(0.0)
    history = model.fit(one_batch(tiny_images(), 8).repeat(), steps_per_epoch=1, epochs=8, verbose=0,
                        shuffle=False).history
    assert history["d_real"][-1] > history["d_real"][0] + 0.1  # from about 0.5 towards 1
    assert history["d_fake"][-1] < history["d_fake"][0] - 0.1  # from about 0.5 towards 0


def test_history_records_both_losses(eager_dcgan):
    """Notes on the original: its progress line never printed g_loss; here both losses are in the history."""
    trained = gan.train_dcgan(tiny_images(16), TINY, seed=0, name="test-dcgan")
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert len(trained.history[name]) == TINY.num_epochs and np.all(np.isfinite(trained.history[name]))
    # samples of the fixed latents before training and after each epoch, in [0, 1]
    assert trained.epoch_samples.shape == (TINY.num_epochs + 1, TINY.num_fixed_samples, 28, 28, 1)
    assert trained.epoch_samples.min() >= 0.0 and trained.epoch_samples.max() <= 1.0
    assert not np.array_equal(trained.epoch_samples[0], trained.epoch_samples[-1])


def test_train_dcgan_reuses_the_cache_and_recovers_a_lost_samples_entry(eager_dcgan):
    images = tiny_images(16)
    first = gan.train_dcgan(images, TINY, seed=0, name="test-dcgan-cache")
    again = gan.train_dcgan(images, TINY, seed=0, name="test-dcgan-cache")
    assert not first.from_cache and again.from_cache
    assert again.history == first.history
    np.testing.assert_array_equal(again.epoch_samples, first.epoch_samples)
    for a, b in zip(weights_of(first.gan), weights_of(again.gan)):
        np.testing.assert_array_equal(a, b)
    for path in cache.cache_dir().glob("test-dcgan-cache-samples-*"):
        path.unlink()  # the weights stay: the samples can only come back by training again
    recovered = gan.train_dcgan(images, TINY, seed=0, name="test-dcgan-cache")
    assert not recovered.from_cache and recovered.epoch_samples.shape == first.epoch_samples.shape


def test_training_config_depends_on_the_images_but_not_on_the_quiz():
    images = tiny_images(24)
    base = gan.training_config(TINY, images, seed=0)
    assert gan.training_config(dataclasses.replace(TINY, quiz_size=20), images, seed=0) == base
    assert gan.training_config(TINY, tiny_images(24, seed=1), seed=0) != base
    assert gan.training_config(dataclasses.replace(TINY, num_epochs=3), images, seed=0) != base


# ---- using the generator ---------------------------------------------------------------------------------------


def test_generate_and_discriminator_scores_have_the_right_ranges():
    model = gan.make_dcgan((28, 28, 1), TINY, seed=0)
    images = gan.generate(model.generator, np.random.default_rng(0).standard_normal((5, TINY.latent_dim)),
                          batch_size=2)  # batches of 2, 2 and 1
    assert images.shape == (5, 28, 28, 1) and images.min() >= 0.0 and images.max() <= 1.0
    scores = gan.discriminator_scores(model.discriminator, images)
    assert scores.shape == (5,) and np.all((scores > 0) & (scores < 1))


def test_class_shares_match_a_hand_count_and_sum_to_one():
    np.testing.assert_array_equal(gan.class_shares(np.array([0, 0, 1, 3]), 4), [0.5, 0.25, 0.0, 0.25])
    labels = np.random.default_rng(0).integers(0, 10, 997)
    shares = gan.class_shares(labels, 10)
    assert shares.shape == (10,) and shares.sum() == pytest.approx(1.0)
    assert shares[3] == pytest.approx(np.sum(labels == 3) / 997)


@pytest.mark.parametrize("labels", [np.array([], dtype=int), np.array([0, 10]), np.array([-1, 2]),
                                    np.array([[0, 1]]), np.array([0.0, 1.0])])
def test_class_shares_reject_labels_outside_the_classes(labels):
    with pytest.raises(ValueError, match="expected"):
        gan.class_shares(labels, 10)


def test_underrepresented_classes_are_those_below_half_their_reference_share():
    reference = np.array([0.25, 0.25, 0.25, 0.25])
    shares = np.array([0.5, 0.125, 0.12, 0.255])  # class 1 sits exactly at half: not below it
    np.testing.assert_array_equal(gan.underrepresented_classes(shares, reference), [2])
    np.testing.assert_array_equal(gan.underrepresented_classes(shares, reference, fraction=0.6), [1, 2])
    with pytest.raises(ValueError, match="same length"):
        gan.underrepresented_classes(shares[:3], reference)


def test_slerp_keeps_endpoints_and_norms():
    rng = np.random.default_rng(0)
    start, end = rng.standard_normal(16), rng.standard_normal(16)
    end *= np.linalg.norm(start) / np.linalg.norm(end)  # equal norms: the arc stays on their sphere
    path = gan.slerp(start, end, 7)
    assert path.shape == (7, 16)
    np.testing.assert_allclose(path[0], start, atol=1e-12)  # float64 arithmetic on O(1) values
    np.testing.assert_allclose(path[-1], end, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(start), rtol=1e-12)
    # a straight line's midpoint would be shorter
    assert np.linalg.norm((start + end) / 2) < 0.95 * np.linalg.norm(start)


def test_slerp_of_parallel_vectors_is_the_straight_line_and_bad_input_is_an_error():
    start = np.ones(4)
    np.testing.assert_allclose(gan.slerp(start, 3 * start, 3), [start, 2 * start, 3 * start], atol=1e-12)
    with pytest.raises(ValueError, match=r"same shape \(d,\), got \(4,\) and \(5,\)"):
        gan.slerp(start, np.ones(5), 3)
    with pytest.raises(ValueError, match="num_steps >= 2"):
        gan.slerp(start, start, 1)


def test_tile_images_and_the_epochs_animation():
    from PIL import Image

    samples = np.stack([np.full((6, 4, 4, 1), value, dtype=np.float32) for value in (0.0, 0.5, 1.0)])
    tiled = gan.tile_images(samples[2], ncols=4, padding=1)
    assert tiled.shape == (2 * 5 + 1, 4 * 5 + 1, 1)  # 2 rows, 4 columns, 1-pixel gutters
    assert tiled[1:5, 1:5].min() == 1.0 and tiled[0, 0, 0] == 0.5
    gif = Image.open(io.BytesIO(gan.epochs_gif(samples, ncols=3, scale=1)))
    assert gif.format == "GIF" and gif.n_frames == 3  # one frame per recorded epoch
    assert gif.size == (3 * 5 + 1, 2 * 5 + 1 + 22)  # the tiled grid under a 22-pixel title band
    with pytest.raises(ValueError, match="at least 2 levels"):
        gan.epochs_gif(samples, levels=1)
