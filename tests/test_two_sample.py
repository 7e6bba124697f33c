"""Tests of mlbook.two_sample: the permutation p-value against its exact distribution, and the classifier test
on samples that are identical in distribution (≈ 50 %) or clearly different (≈ 100 %)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlbook import two_sample


def noise_images(n: int, seed: int, brightness: float = 0.0) -> np.ndarray:
    """8×8 Gaussian noise images; ``brightness`` adds a bright 4×4 square in the centre."""
    images = np.random.default_rng(seed).normal(0.5, 0.2, size=(n, 8, 8, 1)).astype(np.float32)
    images[:, 2:6, 2:6] += brightness
    return images


@pytest.mark.equation("eq-gan-permutation-p")
def test_permutation_p_value_matches_the_exact_hypergeometric_tail():
    """With fixed predictions (k ones) and m positive labels among n, the number X of predicted ones that land on
    positive labels is hypergeometric, and the accuracy is (2X + n − k − m)/n: an exact null to compare with."""
    rng = np.random.default_rng(0)
    n, m = 40, 20
    labels = np.array([1] * m + [0] * (n - m))
    predictions = labels.copy()
    predictions[rng.choice(n, 12, replace=False)] ^= 1  # 12 mistakes: accuracy 0.7
    k = int(predictions.sum())
    num_permutations = 20_000
    accuracy, p_value, null = two_sample.permutation_p_value(predictions, labels, num_permutations, seed=1)
    assert accuracy == pytest.approx(0.7)
    x_needed = int(np.ceil((accuracy * n - n + k + m) / 2 - 1e-9))
    exact = stats.hypergeom(n, m, k).sf(x_needed - 1)  # P(X >= x_needed)
    monte_carlo_se = np.sqrt(exact * (1 - exact) / num_permutations)
    assert p_value == pytest.approx(exact, abs=4 * monte_carlo_se + 1 / num_permutations)  # 4 SE: ~1 in 15 000
    assert null.shape == (num_permutations,) and null.mean() == pytest.approx(
        (2 * m * k / n + n - k - m) / n, abs=0.005)  # E[X] = mk/n; 20 000 draws: SE of the mean ≈ 0.0005


def test_perfect_predictions_get_the_smallest_possible_p_value():
    labels = np.array([0, 1] * 30)
    accuracy, p_value, _ = two_sample.permutation_p_value(labels, labels, num_permutations=999, seed=0)
    # a shuffle of 60 labels matching all of them has probability 1/C(60, 30) ≈ 8e-18: never drawn
    assert accuracy == 1.0 and p_value == pytest.approx(1 / 1000)


def test_permutation_p_value_checks_its_input():
    with pytest.raises(ValueError, match=r"as many predictions as labels .* got \(3,\) and \(4,\)"):
        two_sample.permutation_p_value(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="num_permutations >= 1, got 0"):
        two_sample.permutation_p_value(np.zeros(3), np.zeros(3), num_permutations=0)


def test_split_pooled_keeps_every_image_and_balances_the_halves():
    first, second = noise_images(11, 0), noise_images(8, 1) + 10.0  # second sample recognisable by value
    x_train, y_train, x_test, y_test = two_sample.split_pooled(first, second, seed=0)
    assert len(x_train) + len(x_test) == 19
    assert (y_train == 0).sum() == 5 and (y_test == 0).sum() == 6  # 11 → 5 + 6
    assert (y_train == 1).sum() == 4 and (y_test == 1).sum() == 4
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        np.testing.assert_array_equal(images.mean(axis=(1, 2, 3)) > 5, labels == 1)  # labels follow images


def test_identical_distributions_give_chance_accuracy():
    result = two_sample.classifier_two_sample_test(noise_images(150, 0), noise_images(150, 1), num_epochs=20,
                                                   num_permutations=500, seed=0)
    assert result.num_test == 150
    # 150 held-out images: the accuracy's standard error at 0.5 is 0.041, so ±0.13 is more than 3 SE
    assert abs(result.accuracy - 0.5) < 0.13
    assert result.p_value > 0.01


def test_clearly_different_distributions_give_near_perfect_accuracy():
    result = two_sample.classifier_two_sample_test(noise_images(150, 0), noise_images(150, 1, brightness=0.5),
                                                   num_epochs=20, num_permutations=500, seed=0)
    assert result.accuracy > 0.95  # the bright square is 2.5 noise SDs: any working classifier finds it
    assert result.p_value == pytest.approx(1 / 501)


def test_two_sample_test_checks_its_samples():
    with pytest.raises(ValueError, match=r"same image shape, got \(8, 8, 1\) and \(4, 4, 1\)"):
        two_sample.classifier_two_sample_test(noise_images(10, 0), np.zeros((10, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"images \(n, height, width, channels\), got \(10, 64\)"):
        two_sample.classifier_two_sample_test(noise_images(10, 0), np.zeros((10, 64)))
    with pytest.raises(ValueError, match="at least 4 images in the second sample, got 3"):
        two_sample.classifier_two_sample_test(noise_images(10, 0), noise_images(3, 1))


def test_cached_two_sample_test_reuses_its_result(monkeypatch):
    first, second = noise_images(40, 0), noise_images(40, 1, brightness=0.5)
    settings = {"num_epochs": 3, "num_permutations": 100, "seed": 0}
    computed = two_sample.cached_two_sample_test("test-c2st", first, second, **settings)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cached result should have been used")

    monkeypatch.setattr(two_sample, "classifier_two_sample_test", must_not_run)
    cached = two_sample.cached_two_sample_test("test-c2st", first, second, **settings)
    assert (cached.accuracy, cached.p_value, cached.num_test) == (computed.accuracy, computed.p_value,
                                                                  computed.num_test)
    np.testing.assert_array_equal(cached.null_accuracies, computed.null_accuracies)
    with pytest.raises(AssertionError, match="cached result"):  # other data: a new key, so it would recompute
        two_sample.cached_two_sample_test("test-c2st", first, second[::-1], **settings)
