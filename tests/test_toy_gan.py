"""Tests of mlbook.toy_gan: the densities and D* of Goodfellow et al.'s Proposition 1 in closed form, the two
networks' steps, a discriminator trained alone against a fixed generator (it must approach D*), and a full run
of the chapter's figure (p_g must approach p_data, D must approach 1/2)."""

from __future__ import annotations

import dataclasses

import keras
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.integrate import trapezoid  # noqa: E402

from mlbook import toy_gan  # noqa: E402

SETTINGS = toy_gan.ToySettings()


def weights_of(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]


def affine_generator(slope: float, offset: float) -> keras.Model:
    """G(z) = slope · z + offset: p_g is uniform on [offset − slope, offset + slope] for z ~ U(-1, 1)."""
    generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    generator.set_weights([np.array([[slope]], np.float32), np.array([offset], np.float32)])
    return generator


@pytest.fixture(scope="module")
def run() -> toy_gan.ToyRun:
    return toy_gan.run_toy_gan(SETTINGS, seed=0)


# ---- densities, D* and the divergence ------------------------------------------------------------------------


def test_gaussian_density_integrates_to_one_and_peaks_at_one_over_sigma_root_two_pi():
    x = np.linspace(-9.0, 11.0, 20_001)
    density = toy_gan.gaussian_density(x, 1.0, 0.5)
    # smooth integrand, fine grid: quadrature exact (SciPy's trapezoid: NumPy's is new in 2.0, the package allows 1.26)
    assert trapezoid(density, x) == pytest.approx(1.0, abs=1e-9)
    assert toy_gan.gaussian_density(np.array([1.0]), 1.0, 0.5)[0] == pytest.approx(1 / (0.5 * np.sqrt(2 * np.pi)))
    # one standard deviation away the exponent is −½ (here at x = μ − σ)
    assert toy_gan.gaussian_density(np.array([0.5]), 1.0, 0.5)[0] == pytest.approx(
        np.exp(-0.5) / (0.5 * np.sqrt(2 * np.pi)), rel=1e-12)
    with pytest.raises(ValueError, match="positive standard deviation"):
        toy_gan.gaussian_density(x, 0.0, 0.0)


def test_noise_grid_is_the_midpoints_of_equal_cells_of_minus_one_to_one():
    grid = toy_gan.noise_grid(4)
    np.testing.assert_allclose(grid[:, 0], [-0.75, -0.25, 0.25, 0.75])
    assert grid.shape == (4, 1) and grid.dtype == np.float32


def test_generator_density_of_an_affine_generator_is_uniform():
    """G(z) = 0.5 z + 1 sends U(-1, 1) to U(0.5, 1.5), whose density is 1 there and 0 elsewhere."""
    edges = np.linspace(-1.0, 3.0, 41)  # bins of 0.1: the support's ends fall on bin edges
    density = toy_gan.generator_density(affine_generator(0.5, 1.0), edges, num_z=10_000)
    centres = (edges[:-1] + edges[1:]) / 2
    inside = (centres > 0.5) & (centres < 1.5)
    np.testing.assert_allclose(density[inside], 1.0, atol=1e-2)  # one z-cell of 2e-4 may fall in a neighbouring bin
    np.testing.assert_array_equal(density[~inside], 0.0)
    assert np.sum(density * 0.1) == pytest.approx(1.0)


@pytest.mark.equation("eq-gan-optimal-d")
def test_optimal_discriminator_is_the_density_ratio_of_proposition_1():
    data = np.array([1.0, 0.0, 2.0, 0.0])
    model = np.array([1.0, 3.0, 0.0, 0.0])
    optimal = toy_gan.optimal_discriminator(data, model)
    np.testing.assert_array_equal(optimal[:3], [0.5, 0.0, 1.0])  # equal densities; data only; model only
    assert np.isnan(optimal[3])  # both zero: undefined
    with pytest.raises(ValueError, match="same shape"):
        toy_gan.optimal_discriminator(data, model[:2])


def test_optimal_discriminator_maximises_the_value_function_pointwise():
    """For each x, a log y + b log(1 − y) (a = p_data, b = p_g) is largest at y = D* (exercise 1's proof)."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.01, 2.0, 50), rng.uniform(0.01, 2.0, 50)
    best = toy_gan.optimal_discriminator(a, b)
    value = lambda y: a * np.log(y) + b * np.log(1 - y)  # noqa: E731
    for shift in (-1e-3, 1e-3, -0.1, 0.1):
        other = np.clip(best + shift, 1e-6, 1 - 1e-6)
        assert np.all(value(best) >= value(other))


@pytest.mark.equation("eq-gan-optimal-d")
def test_value_function_at_the_optimal_discriminator_is_minus_log_four_plus_twice_the_jsd():
    """V(D*, G) = Σ p_data log D* + Σ p_g log(1 − D*) over the bins, summed by hand, is −log 4 + 2 JSD (Theorem 1)."""
    data = np.array([0.1, 0.4, 0.3, 0.2])
    model = np.array([0.3, 0.1, 0.2, 0.4])
    optimal = toy_gan.optimal_discriminator(data, model)
    value = np.sum(data * np.log(optimal)) + np.sum(model * np.log(1 - optimal))
    assert value == pytest.approx(-np.log(4) + 2 * toy_gan.jensen_shannon(data, model, 1.0), abs=1e-12)


def test_jensen_shannon_is_zero_for_equal_and_log_two_for_disjoint_densities():
    p = np.array([0.0, 1.0, 1.0, 0.0])
    assert toy_gan.jensen_shannon(p, p, 0.5) == pytest.approx(0.0, abs=1e-12)
    disjoint = np.array([1.0, 0.0, 0.0, 1.0])
    assert toy_gan.jensen_shannon(p, disjoint, 0.5) == pytest.approx(np.log(2))
    q = np.array([0.2, 0.5, 1.0, 0.3])
    assert toy_gan.jensen_shannon(p, q, 0.5) == pytest.approx(toy_gan.jensen_shannon(q, p, 0.5))  # symmetric


# ---- the networks and their steps -----------------------------------------------------------------------------


def test_networks_map_points_to_points_and_logits():
    model = toy_gan.make_toy_gan(SETTINGS, seed=0)
    assert tuple(model.generator(toy_gan.noise_grid(5)).shape) == (5, 1)
    assert tuple(model.discriminator(np.zeros((3, 1), np.float32)).shape) == (3, 1)


def test_each_step_changes_only_its_own_network():
    model = toy_gan.make_toy_gan(SETTINGS, seed=0)
    real = np.full((8, 1), 1.0, np.float32)
    generator_before, discriminator_before = weights_of(model.generator), weights_of(model.discriminator)
    model.discriminator_step(real)
    assert all(np.array_equal(b, a) for b, a in zip(generator_before, weights_of(model.generator)))
    assert not all(np.array_equal(b, a) for b, a in zip(discriminator_before, weights_of(model.discriminator)))
    discriminator_before = weights_of(model.discriminator)
    model.generator_step(8)
    assert all(np.array_equal(b, a) for b, a in zip(discriminator_before, weights_of(model.discriminator)))
    assert not all(np.array_equal(b, a) for b, a in zip(generator_before, weights_of(model.generator)))


def test_on_one_cpu_steps_outside_a_default_strategy_and_restores_it():
    """The toy's plain loop cannot run under the MirroredStrategy that MLBOOK_DISTRIBUTE=mirrored installs."""
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    tf.distribute.experimental_set_strategy(strategy)
    try:
        with toy_gan.on_one_cpu():
            assert not tf.distribute.has_strategy()
            assert "CPU" in tf.constant(1.0).device
        assert tf.distribute.get_strategy() is strategy
    finally:
        tf.distribute.experimental_set_strategy(None)


def test_warm_start_places_the_generator_near_the_requested_gaussian():
    generator = toy_gan.build_toy_generator(SETTINGS.hidden_units, seed=0)
    toy_gan.fit_generator_to_gaussian(generator, -0.6, 0.7, SETTINGS.warm_start_steps)
    outputs = keras.ops.convert_to_numpy(generator(toy_gan.noise_grid(10_000)))[:, 0]
    # The grid's quantiles stop at ±2.66σ, so even a perfect fit has a spread about 3% below 0.7.
    assert outputs.mean() == pytest.approx(-0.6, abs=0.05)
    assert outputs.std() == pytest.approx(0.68, abs=0.05)


def test_discriminator_trained_alone_against_a_fixed_generator_approaches_d_star():
    """Proposition 1: with G fixed, training D alone drives it towards p_data / (p_data + p_g)."""
    settings = dataclasses.replace(SETTINGS, steps_a=0)
    model = toy_gan.make_toy_gan(settings, seed=1)
    toy_gan.fit_generator_to_gaussian(model.generator, settings.start_mean, settings.start_std, 300)
    generator_before = weights_of(model.generator)
    untrained = toy_gan.snapshot(model, settings, "untrained")
    rng = np.random.default_rng(1)
    model.train_discriminator(rng.normal(settings.data_mean, settings.data_std,
                                         (settings.steps_b, settings.batch_size, 1)).astype(np.float32))
    trained = toy_gan.snapshot(model, settings, "trained")
    assert all(np.array_equal(b, a) for b, a in zip(generator_before, weights_of(model.generator)))
    assert untrained.max_gap_to_optimal() > 0.3  # a fresh D is nowhere near D*
    # Seeds 0-7 end 0.058-0.077 from D* (a 32-unit D, 500 noisy batches, and a D* with steps where p_g ends);
    # 0.12 leaves room for another machine's round-off, and is still far below the fresh D's gap.
    assert trained.max_gap_to_optimal() < 0.12


# ---- the figure's run ----------------------------------------------------------------------------------------


def test_run_follows_the_four_stages_of_figure_1(run):
    a, b, c, d = (run.snapshots[name] for name in toy_gan.PANELS)
    assert b.max_gap_to_optimal() < a.max_gap_to_optimal() / 2  # (b): the inner loop brings D close to D*
    np.testing.assert_array_equal(a.model_density, b.model_density)  # (a) → (b): G frozen
    np.testing.assert_array_equal(b.discriminator, c.discriminator)  # (b) → (c): D frozen
    assert c.jensen_shannon() < b.jensen_shannon()  # (c): G's update moved p_g towards p_data
    assert d.jensen_shannon() < a.jensen_shannon() / 10  # (d): much closer still


def test_run_ends_with_p_g_near_p_data_and_d_near_one_half(run):
    d = run.snapshots["d"]
    mean, std = d.model_moments()
    # Seeds 0-7 end with means 0.99-1.03 and spreads 0.485-0.502 (data: 1.0 and 0.5); GAN training keeps
    # oscillating around the equilibrium, so the tolerance is a fifth of the data's spread.
    assert mean == pytest.approx(SETTINGS.data_mean, abs=0.1)
    assert std == pytest.approx(SETTINGS.data_std, abs=0.1)
    core = np.abs(d.x - SETTINGS.data_mean) < SETTINGS.data_std
    assert np.max(np.abs(d.discriminator[core] - 0.5)) < 0.1  # seeds 0-7: 0.008-0.034


def test_figure_draws_four_panels_with_the_papers_curves_and_d_star_on_panel_b(run):
    fig = toy_gan.plot_goodfellow_figure(run)
    assert len(fig.axes) == 4
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels == [r"$p_{\rm data}$", "$p_g$", "$D$", "$D^*$"]
    assert [ax.get_title()[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)", "(d)"]
    plt.close(fig)
