"""Tests of mlbook.style: the chapter's equations, the choice of extractor, the optimisers and the fixes to the
original. The extractors themselves are tested in test_extractors.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mlbook import extractors, style
from test_extractors import SIDE, random_filter_pyramid


@pytest.fixture(scope="module")
def pyramid() -> extractors.FeatureExtractor:
    return random_filter_pyramid()


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return {"content": style.load_content_image(SIDE), "style": style.brush_strokes(SIDE, seed=1),
            "noise": style.white_noise(SIDE, seed=2)}


# --- images ------------------------------------------------------------------------------------------------------


def test_square_image_crops_and_resizes_to_unit_range():
    image = np.zeros((40, 100, 3), dtype=np.uint8)
    image[:, 60:] = 255  # the right 40 columns are white
    left, right = style.square_image(image, 20, left=0.0), style.square_image(image, 20, left=1.0)
    assert left.shape == right.shape == (20, 20, 3) and left.dtype == np.float32
    assert left.max() == 0.0 and right.min() == 1.0  # the crop sits at either end of the long side


def test_square_image_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        style.square_image(np.zeros((10, 10)), 5)
    with pytest.raises(ValueError, match="left"):
        style.square_image(np.zeros((10, 10, 3)), 5, left=1.5)


def test_generated_images_are_repeatable_rgb_in_unit_range():
    strokes = style.brush_strokes(SIDE, seed=3)
    assert strokes.shape == (SIDE, SIDE, 3) and 0.0 <= strokes.min() and strokes.max() <= 1.0
    np.testing.assert_array_equal(strokes, style.brush_strokes(SIDE, seed=3))
    assert not np.array_equal(strokes, style.brush_strokes(SIDE, seed=4))
    noise = style.white_noise(SIDE, seed=0)
    assert noise.shape == (SIDE, SIDE, 3) and 0.0 <= noise.min() and noise.max() <= 1.0
    # mean 0.5 by symmetry of the clipped normal; 3,072 values with sd ≤ 0.2 give a standard error < 0.004
    assert abs(noise.mean() - 0.5) < 0.02


def test_resized_enlarges_to_the_requested_size_and_keeps_flat_colours():
    flat = np.full((8, 8, 3), [0.2, 0.5, 0.8], dtype=np.float32)
    large = style.resized(flat, 16)
    assert large.shape == (16, 16, 3) and large.dtype == np.float32
    np.testing.assert_allclose(large, np.broadcast_to(flat[0, 0], large.shape), atol=1 / 255)  # 8-bit rounding
    ramp = np.repeat(np.linspace(0, 1, 8, dtype=np.float32)[None, :, None], 8, axis=0).repeat(3, axis=2)
    assert np.all(np.diff(style.resized(ramp, 16)[4, :, 0]) >= 0)  # a ramp stays a ramp
    with pytest.raises(ValueError, match="positive size"):
        style.resized(flat, 0)
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        style.resized(flat[..., 0], 16)


def test_the_large_stage_is_larger_and_optimised_for_every_profile():
    for cfg in style.SETTINGS.values():
        assert cfg.large_size >= 2 * cfg.image_size and cfg.large_iterations >= 1
        assert 0 < cfg.large_content_factor <= 1 and cfg.large_tv_factor > 0


# --- losses: the chapter's equations ------------------------------------------------------------------------------


@pytest.mark.equation("eq-style-pixel")
def test_pixel_loss_is_the_squared_distance_eq_style_pixel():
    """The original named the arguments (a, b) but summed over y and z; here they are y and z."""
    y = tf.constant([[[[0.0, 1.0, 2.0]]]])
    z = tf.constant([[[[1.0, 1.0, 0.0]]]])
    assert float(style.pixel_loss(y=y, z=z)) == pytest.approx(1.0 + 0.0 + 4.0)
    assert float(style.pixel_loss(y, y)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        style.pixel_loss(y, tf.zeros((1, 1, 2, 3)))


def test_feature_matrix_rows_are_maps_and_columns_positions():
    features = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)  # 6 positions, 4 maps
    matrix = style.feature_matrix(tf.constant(features)).numpy()
    assert matrix.shape == (4, 6)
    np.testing.assert_array_equal(matrix[1], features[0, :, :, 1].ravel())


@pytest.mark.equation("eq-style-gram")
def test_gram_matrix_matches_einsum():
    features = np.random.default_rng(0).normal(size=(1, 5, 7, 6)).astype(np.float32)
    expected = np.einsum("hwi,hwj->ij", features[0], features[0])
    # float32 sums of 35 products of O(1) numbers: relative round-off well under 1e-5
    np.testing.assert_allclose(style.gram_matrix(tf.constant(features)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_gram_matrix_is_symmetric_positive_semidefinite():
    features = tf.constant(np.random.default_rng(1).normal(size=(4, 4, 9)).astype(np.float32))
    gram = style.gram_matrix(features).numpy().astype(np.float64)
    np.testing.assert_allclose(gram, gram.T, rtol=1e-6)  # F Fᵀ is symmetric up to float32 summation order
    # 9 maps but only 16 positions: rank ≤ 9; the smallest eigenvalue is 0 up to float32 round-off of O(10)
    assert np.linalg.eigvalsh(gram).min() > -1e-4


def test_gram_matrix_rejects_a_batch():
    with pytest.raises(ValueError, match=r"\(1, height, width, maps\)"):
        style.gram_matrix(tf.zeros((2, 4, 4, 3)))


@pytest.mark.equation("eq-style-gram", "eq-style-style")
def test_style_layer_loss_matches_hand_computation_eq_style_layer():
    """E_l = Σ (G − A)² / (4 N² M²): here N = 2 maps, M = 2 positions."""
    features = tf.constant([[[[1.0, 0.0], [2.0, 1.0]]]])  # (1, 1, 2, 2): positions (1, 0) and (2, 1)
    gram = np.array([[1 + 4, 0 + 2], [2, 0 + 1]], dtype=np.float32)
    target = tf.constant(np.zeros((2, 2), dtype=np.float32))
    expected = (25 + 4 + 4 + 1) / (4 * 2**2 * 2**2)
    np.testing.assert_array_equal(style.gram_matrix(features).numpy(), gram)
    assert float(style.style_layer_loss(features, target)) == pytest.approx(expected)
    assert float(style.style_layer_loss(features, tf.constant(gram))) == 0.0
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        style.style_layer_loss(features, tf.zeros((3, 3)))


@pytest.mark.equation("eq-style-content")
def test_content_loss_is_half_the_squared_distance_of_the_feature_maps():
    features = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = tf.constant([[[[1.0, 0.0], [0.0, 2.0]]]])
    assert float(style.content_loss(features, target)) == 0.5 * (0 + 4 + 9 + 4)  # small integers: exact
    with pytest.raises(ValueError, match="target features"):
        style.content_loss(features, tf.zeros((1, 1, 1, 2)))


@pytest.mark.equation("eq-style-content", "eq-style-style")
def test_loss_gradients_match_the_papers_closed_forms():
    """∂L_content/∂F = F − P and ∂E_l/∂F = (F (G − A)) / (N² M²) in the (maps, positions) layout, in float64."""
    rng = np.random.default_rng(2)
    features = tf.constant(rng.normal(size=(1, 3, 4, 5)))
    content_target = tf.constant(rng.normal(size=(1, 3, 4, 5)))
    gram_target = style.gram_matrix(tf.constant(rng.normal(size=(1, 3, 4, 5))))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        content, style_loss = (style.content_loss(features, content_target),
                               style.style_layer_loss(features, gram_target))
    np.testing.assert_allclose(tape.gradient(content, features), features - content_target, rtol=1e-12)
    matrix = style.feature_matrix(features).numpy()
    num_maps, num_positions = matrix.shape
    closed_form = (style.gram_matrix(features).numpy() - gram_target.numpy()) @ matrix / (num_maps * num_positions) ** 2
    gradient = style.feature_matrix(tape.gradient(style_loss, features)).numpy()
    np.testing.assert_allclose(gradient, closed_form, rtol=1e-10)  # both exact in float64 up to summation order


def test_style_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(1, 2, 3, 4))
    target = style.gram_matrix(tf.constant(rng.normal(size=(1, 2, 3, 4))))

    def loss(values: np.ndarray) -> float:
        return float(style.style_layer_loss(tf.constant(values), target))

    with tf.GradientTape() as tape:
        tensor = tf.constant(features)
        tape.watch(tensor)
        value = style.style_layer_loss(tensor, target)
    analytic = tape.gradient(value, tensor).numpy()
    step = 1e-6
    numerical = np.zeros_like(features)
    for index in np.ndindex(features.shape):
        plus, minus = features.copy(), features.copy()
        plus[index] += step
        minus[index] -= step
        numerical[index] = (loss(plus) - loss(minus)) / (2 * step)
    # central differences in float64: truncation O(step²) and round-off O(1e-16/step) both ≪ 1e-7
    np.testing.assert_allclose(analytic, numerical, rtol=1e-6, atol=1e-9)


@pytest.mark.equation("eq-style-total")
def test_total_variation_loss_hand_computed():
    image = np.zeros((1, 2, 3, 3), dtype=np.float32)
    image[0, 0, 0] = 1.0  # one bright corner pixel: two neighbours differ by 1 in each of 3 channels
    assert float(style.total_variation_loss(tf.constant(image))) == pytest.approx(2 * 3)
    assert float(style.total_variation_loss(tf.ones((1, 4, 4, 3)))) == 0.0


# --- the objective ----------------------------------------------------------------------------------------------


def test_style_loss_is_zero_for_identical_images_and_positive_otherwise(pyramid, images):
    objective = style.StyleObjective(pyramid, style_image=images["style"])
    same = objective(tf.constant(images["style"][None]))
    assert float(same["style"]) == 0.0
    for other in ("content", "noise"):
        assert float(objective(tf.constant(images[other][None]))["style"]) > 0.0


def test_content_term_uses_the_content_image(pyramid, images):
    """The original's total loss had α L_content(a, x): the *style* image's content. It must be p's."""
    objective = style.StyleObjective(pyramid, content_image=images["content"], style_image=images["style"])
    at_content = objective(tf.constant(images["content"][None]))
    at_style = objective(tf.constant(images["style"][None]))
    assert float(at_content["content"]) == 0.0 and float(at_style["content"]) > 0.0
    assert float(at_style["style"]) == 0.0


@pytest.mark.equation("eq-style-total")
def test_objective_weights_combine_the_terms(pyramid, images):
    objective = style.StyleObjective(pyramid, content_image=images["content"], style_image=images["style"],
                                     content_weight=2.0, style_weight=3.0, tv_weight=5.0)
    terms = {k: float(v) for k, v in objective(tf.constant(images["noise"][None])).items()}
    expected = 2.0 * terms["content"] + 3.0 * terms["style"] + 5.0 * terms["tv"]
    assert terms["total"] == pytest.approx(expected, rel=1e-6)  # float32 sum of three terms


@pytest.mark.equation("eq-style-style")
def test_objective_style_term_is_the_weighted_sum_of_the_layer_losses(pyramid, images):
    """L_style = Σ_l w_l E_l, with E_l computed layer by layer from the extractor's feature maps."""
    weights = [0.5, 0.3, 0.2][: len(pyramid.style_layers)]
    objective = style.StyleObjective(pyramid, style_image=images["style"], layer_weights=weights)
    noise = tf.constant(images["noise"][None])
    features, style_features = pyramid(noise), pyramid(tf.constant(images["style"][None]))
    expected = sum(w * float(style.style_layer_loss(features[layer], style.gram_matrix(style_features[layer])))
                   for w, layer in zip(weights, pyramid.style_layers))
    assert float(objective(noise)["style"]) == pytest.approx(expected, rel=1e-6)  # float32 sum of a few terms


def test_objective_rejects_bad_arguments(pyramid, images):
    with pytest.raises(ValueError, match="neither"):
        style.StyleObjective(pyramid)
    with pytest.raises(ValueError, match="unknown layer 'conv4_2'"):
        style.StyleObjective(pyramid, content_image=images["content"], content_layer="conv4_2")
    with pytest.raises(ValueError, match="3 layer weights"):
        style.StyleObjective(pyramid, style_image=images["style"], layer_weights=[1.0])
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        style.StyleObjective(pyramid, style_image=np.zeros((8, 8)))


# --- optimisation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimiser", ["lbfgs", "adam"])
def test_a_few_steps_lower_the_total_loss(pyramid, images, optimiser):
    objective = style.StyleObjective(pyramid, content_image=images["content"], style_image=images["style"],
                                     content_weight=1e-3, tv_weight=1e-3)
    if optimiser == "lbfgs":
        result = style.optimise_lbfgs(objective, images["noise"], num_iterations=10)
    else:
        result = style.optimise_adam(objective, images["noise"], num_steps=10, learning_rate=0.02)
    total = result.history["total"]
    assert len(total) == 11  # the start, then one entry per iteration
    assert total[-1] < 0.9 * total[0]  # ten steps from noise remove at least a tenth of the loss
    assert result.image.shape == (SIDE, SIDE, 3) and 0.0 <= result.image.min() and result.image.max() <= 1.0
    evaluations = result.history["evaluations"]
    if optimiser == "adam":  # one evaluation of the loss and gradient per step
        np.testing.assert_array_equal(evaluations, np.arange(11))
    else:  # at least one per iteration, more when the line search rejects a step
        assert evaluations[0] == 0 and np.all(np.diff(evaluations) >= 1)


def test_lbfgs_counts_every_evaluation_it_makes(pyramid, images, monkeypatch):
    objective = style.StyleObjective(pyramid, style_image=images["style"])
    calls = []
    compiled = style._value_and_gradient

    def counting(objective):
        value_and_gradient = compiled(objective)
        return lambda image: (calls.append(1), value_and_gradient(image))[1]

    monkeypatch.setattr(style, "_value_and_gradient", counting)
    result = style.optimise_lbfgs(objective, images["noise"], num_iterations=5)
    # the last iteration's count includes every evaluation up to it; SciPy may evaluate again after it
    assert 5 <= result.history["evaluations"][-1] <= len(calls)
    assert len(calls) - result.history["evaluations"][-1] <= 1


def test_optimisers_reject_bad_arguments(pyramid, images):
    objective = style.StyleObjective(pyramid, style_image=images["style"])
    with pytest.raises(ValueError, match="at least one iteration"):
        style.optimise_lbfgs(objective, images["noise"], 0)
    with pytest.raises(ValueError, match="positive learning rate"):
        style.optimise_adam(objective, images["noise"], 1, learning_rate=0.0)
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        style.optimise_lbfgs(objective, images["noise"][..., :2], 1)


def test_synthesise_caches_its_result(pyramid, images):
    kwargs = dict(style_image=images["style"], num_iterations=3)
    first = style.synthesise("test-texture", pyramid, images["noise"], **kwargs)
    second = style.synthesise("test-texture", pyramid, images["noise"], **kwargs)
    assert not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.history["style"], second.history["style"])
    with pytest.raises(ValueError, match="learning_rate"):
        style.synthesise("test-texture", pyramid, images["noise"], optimiser="adam", **kwargs)


# --- the profile's extractor --------------------------------------------------------------------------------------


def test_vgg19_profile_falls_back_to_the_learned_pyramid_offline(capsys):
    cfg = dataclasses.replace(style.SETTINGS["full"], num_filters=4, num_patches=200, num_scales=2)
    extractor = style.load_extractor(cfg)
    assert extractor.name == "learned-pyramid"
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "VGG19" in lines[0] and "MLBOOK_OFFLINE" in lines[0]


def test_unknown_extractor_is_an_error():
    with pytest.raises(ValueError, match="unknown extractor 'alexnet'"):
        style.load_extractor(dataclasses.replace(style.SETTINGS["quick"], extractor="alexnet"))
