"""Tests of mlbook.extractors: the learned filter pyramid, its k-means filters, and VGG19 (architecture only)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mlbook import extractors, style
from mlbook.data import DownloadError

SIDE = 32  # images here and in test_style.py: small, so that every optimisation takes well under a second


def random_filter_pyramid() -> extractors.FeatureExtractor:
    """A three-level pyramid of fixed random 5×5 filters: the learned extractor's code, without the k-means."""
    kernel = np.random.default_rng(0).normal(size=(5, 5, 3, 8)).astype(np.float32)
    model = extractors.FilterPyramid(kernel / np.sqrt((kernel**2).sum(axis=(0, 1, 2))), num_scales=3)
    return extractors.FeatureExtractor(
        name="test-pyramid", model=model, layers=model.level_names, style_layers=model.level_names,
        content_layer="level2", content_weight=1e-3, tv_weight=0.0, description="random filters",
        fingerprint="test-pyramid-0")


@pytest.fixture(scope="module")
def pyramid() -> extractors.FeatureExtractor:
    return random_filter_pyramid()


def test_filter_pyramid_levels_halve_and_carry_rectified_responses_and_colours(pyramid):
    features = pyramid(tf.constant(style.white_noise(SIDE)[None]))
    assert list(features) == ["level1", "level2", "level3"]
    for level, side in zip(features.values(), (SIDE, SIDE // 2, SIDE // 4)):
        assert tuple(level.shape) == (1, side, side, 8 + 2 * 3)  # relu(responses), relu(±colours)
        assert float(tf.reduce_min(level)) >= 0.0


def test_filter_pyramid_rejects_a_bad_kernel():
    with pytest.raises(ValueError, match=r"\(k, k, 3, num_filters\)"):
        extractors.FilterPyramid(np.zeros((5, 5, 1, 4)), num_scales=2)


def test_first_layer_filters_are_the_kernels_one_per_row_stretched_to_unit_range(pyramid):
    filters = extractors.first_layer_filters(pyramid)
    assert filters.shape == (8, 5, 5, 3)  # (num_filters, k, k, RGB)
    np.testing.assert_allclose(filters.min(axis=(1, 2, 3)), 0.0)
    np.testing.assert_allclose(filters.max(axis=(1, 2, 3)), 1.0)


def test_learned_filters_are_zero_sum_unit_length_and_oriented():
    """k-means on whitened patches of stripes at one angle must find filters that respond to that angle."""
    rng = np.random.default_rng(0)
    size = 7
    rows, cols = np.mgrid[0:size, 0:size]
    patches = []
    for _ in range(600):
        phase = rng.uniform(0, 2 * np.pi)
        stripes = np.sin(2 * np.pi * cols / 4 + phase)  # vertical stripes, period 4 pixels
        patches.append(np.repeat(stripes[..., None], 3, axis=-1).ravel() * 0.3 + 0.5)
    filters = extractors.learn_filters(np.array(patches), 4, size)
    assert filters.shape == (size, size, 3, 4)
    flat = filters.reshape(-1, 4)
    np.testing.assert_allclose(flat.sum(axis=0), 0.0, atol=1e-5)  # float32 sums of 147 entries
    np.testing.assert_allclose(np.linalg.norm(flat, axis=0), 1.0, rtol=1e-5)
    # the patches span only the stripes' two directions (sine and cosine), so the filters must lie there too: they
    # vary across the columns and not down the rows (up to float32 round-off through the whitening)
    grey = filters.sum(axis=2)
    across = np.abs(np.diff(grey, axis=1)).mean()
    down = np.abs(np.diff(grey, axis=0)).mean()
    assert across > 0.05 and down < 1e-3 * across
    with pytest.raises(ValueError, match="at least 8 patches"):
        extractors.learn_filters(np.zeros((4, size * size * 3)), 8, size)


def test_vgg19_feature_model_has_the_papers_layers_and_average_pooling():
    model = extractors.vgg19_feature_model(weights=None)  # the architecture only: no download
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    features = model(tf.zeros((1, 32, 32, 3)))
    assert set(extractors.VGG19_STYLE_LAYERS) | {extractors.VGG19_CONTENT_LAYER} <= set(features)
    assert len(features) == 16  # VGG19: 16 convolutional layers
    assert tuple(features["conv1_1"].shape) == (1, 32, 32, 64)
    assert tuple(features["conv4_2"].shape) == (1, 4, 4, 512)
    assert tuple(features["conv5_1"].shape) == (1, 2, 2, 512)


def test_vgg19_weights_offline_raise_download_error():
    with pytest.raises(DownloadError, match="MLBOOK_OFFLINE"):
        extractors.download_vgg19_weights()


def test_vgg19_weights_come_through_the_checked_download(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.delenv("MLBOOK_OFFLINE", raising=False)
    monkeypatch.setenv("MLBOOK_DATA", str(tmp_path / "data"))
    remote = tmp_path / "remote.h5"
    remote.write_bytes(b"not really weights" * 64)
    monkeypatch.setattr(extractors, "VGG19_WEIGHTS_URL", remote.as_uri())
    monkeypatch.setattr(extractors, "VGG19_WEIGHTS_MD5", "0" * 32)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        extractors.download_vgg19_weights()
    monkeypatch.setattr(extractors, "VGG19_WEIGHTS_MD5", hashlib.md5(remote.read_bytes()).hexdigest())
    path = extractors.download_vgg19_weights()
    assert Path(path).read_bytes() == remote.read_bytes()
    remote.unlink()
    assert extractors.download_vgg19_weights() == path  # the checked copy on disk, no network
