"""A one-dimensional GAN small enough to draw: Goodfellow et al.'s (2014) Figure 1 from a real run.

The data are a Gaussian on the real line, the noise ``z`` is uniform on [-1, 1] (as in the paper's figure and the
blog series), the generator and the discriminator are tiny multilayer perceptrons, and the losses are the DCGAN
chapter's own (:func:`mlbook.gan.discriminator_loss`, :func:`mlbook.gan.generator_loss`). Because ``x`` is one
number, the generator's density ``p_g`` can be computed almost exactly (a histogram of ``G`` on a fine, regular
grid of ``z``), and with it the optimal discriminator ``D*(x) = p_data / (p_data + p_g)``, which a run can then be
checked against.

:func:`run_toy_gan` trains the pair in four stages and keeps a :class:`ToySnapshot` after each, one per panel of
the paper's figure; :func:`plot_goodfellow_figure` draws them. The whole run takes a few seconds on two CPU cores.

References:
    Goodfellow, I. et al. (2014). Generative adversarial nets. NeurIPS. Figure 1, Proposition 1 and Theorem 1.
    Heusel, M. et al. (2017). GANs trained by a two time-scale update rule converge to a local Nash equilibrium.
    NeurIPS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mlbook.gan import discriminator_loss, generator_loss

#: The noise ``z`` is uniform on [-NOISE_LIMIT, NOISE_LIMIT].
NOISE_LIMIT = 1.0
#: Where the mixture (p_data + p_g) / 2 is below this fraction of its peak, D* is left out of comparisons: there
#: (almost) no samples reach the discriminator, so nothing trains it towards D*.
SUPPORT_FRACTION = 0.05
#: The panels' names, in the paper's order.
PANELS = ("a", "b", "c", "d")
#: Spread of the first layer's slopes and offsets in G and in D. With Glorot's default, a layer with one input has
#: slopes of at most about 0.4, and on [-1, 1] its tanh units are nearly linear; spread out, they bend at
#: different places, so that G can take the curved shape of a Gaussian's quantile function and D can make steps.
GENERATOR_INPUT_SCALE = 1.5
DISCRIMINATOR_INPUT_SCALE = 2.0


@dataclasses.dataclass(frozen=True)
class ToySettings:
    """The toy GAN's data, networks and the length of each stage of :func:`run_toy_gan`.

    Attributes:
        data_mean, data_std: the data distribution ``p_data = N(data_mean, data_std²)``.
        start_mean, start_std: the Gaussian whose quantiles the generator is fitted to before the game starts
            (panel a's "pair near convergence", a premise of the figure rather than a stage of training).
        hidden_units: width of the hidden layers of both networks.
        batch_size: samples of each kind per step.
        discriminator_learning_rate, generator_learning_rate: Adam's learning rates (``beta_1`` is the DCGAN
            paper's 0.5). The discriminator learns ten times faster, so that it stays near D* while G moves (two
            time-scale updates, Heusel et al. 2017); in trials with equal rates, p_g ended farther from p_data.
        warm_start_steps: regression steps that place the generator at ``N(start_mean, start_std²)``.
        steps_a: discriminator steps before panel (a): a partially trained D.
        steps_b: further discriminator steps with G frozen before panel (b): D close to D*.
        steps_c: generator steps with D frozen before panel (c).
        steps_d: alternating steps (k = 1) before panel (d).
        x_range: the plotted interval of x, and the one on which densities are computed.
        num_bins: bins of that interval for ``p_g`` (and points where D and D* are evaluated).
    """

    data_mean: float = 1.0
    data_std: float = 0.5
    start_mean: float = -0.6
    start_std: float = 0.7
    hidden_units: int = 32
    batch_size: int = 512
    discriminator_learning_rate: float = 2e-3
    generator_learning_rate: float = 2e-4
    warm_start_steps: int = 300
    steps_a: int = 5
    steps_b: int = 500
    steps_c: int = 100
    steps_d: int = 1500
    x_range: tuple[float, float] = (-3.0, 3.0)
    num_bins: int = 120


# --- densities and the optimal discriminator ----------------------------------------------------------------------


def gaussian_density(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The density of N(mean, std²) at ``x``.

    Raises:
        ValueError: if ``std`` is not positive.
    """
    if std <= 0:
        raise ValueError(f"expected a positive standard deviation, got {std}")
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))


def noise_grid(num_points: int) -> np.ndarray:
    """``num_points`` equally spaced noise values, the midpoints of equal cells of [-1, 1], as ``(n, 1)`` float32.

    Each point stands for the same probability 1/n of the uniform ``p_z``, so the generator's outputs on the grid
    are a deterministic stand-in for a sample of ``p_g``.
    """
    if num_points < 1:
        raise ValueError(f"expected at least one point, got {num_points}")
    cells = (np.arange(num_points) + 0.5) / num_points
    return (NOISE_LIMIT * (2 * cells - 1)).astype(np.float32)[:, None]


def generator_density(generator: keras.Model, bin_edges: np.ndarray, num_z: int = 100_000) -> np.ndarray:
    """The generator's density ``p_g``, averaged over each bin: a histogram of G on a fine regular grid of ``z``.

    Mass that G sends outside the bins is dropped (it is not renormalised away), so the histogram integrates to
    the fraction of ``p_g`` inside them.
    """
    outputs = ops.convert_to_numpy(generator(noise_grid(num_z), training=False))[:, 0]
    counts, _ = np.histogram(outputs, bins=bin_edges)
    return counts / (num_z * np.diff(bin_edges))


def optimal_discriminator(data_density: np.ndarray, model_density: np.ndarray) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)), the best discriminator for a fixed G (Proposition 1).

    Where both densities are zero D* is undefined and the result is NaN.

    Implements: eq-gan-optimal-d
    """
    data_density, model_density = np.asarray(data_density, float), np.asarray(model_density, float)
    if data_density.shape != model_density.shape:
        raise ValueError(f"expected densities of the same shape, got {data_density.shape} and {model_density.shape}")
    total = data_density + model_density
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, data_density / np.where(total > 0, total, 1.0), np.nan)


def support_mask(data_density: np.ndarray, model_density: np.ndarray,
                 fraction: float = SUPPORT_FRACTION) -> np.ndarray:
    """Where the mixture (p_data + p_g) / 2 is at least ``fraction`` of its peak: where D gets trained."""
    mixture = (np.asarray(data_density) + np.asarray(model_density)) / 2
    return mixture >= fraction * mixture.max()


def jensen_shannon(data_density: np.ndarray, model_density: np.ndarray, bin_width: float) -> float:
    """JSD(p_data ‖ p_g) in nats from densities on bins of width ``bin_width``: the divergence that the generator
    minimises against the optimal discriminator, V(D*, G) = −log 4 + 2 JSD (Theorem 1). It lies in [0, log 2].

    Implements: eq-gan-optimal-d
    """
    p, q = np.asarray(data_density, float) * bin_width, np.asarray(model_density, float) * bin_width
    p, q = p / p.sum(), q / q.sum()
    mixture = (p + q) / 2

    def kl_to_mixture(a: np.ndarray) -> float:
        inside = a > 0
        return float(np.sum(a[inside] * np.log(a[inside] / mixture[inside])))

    return (kl_to_mixture(p) + kl_to_mixture(q)) / 2


# --- the two networks and the game -------------------------------------------------------------------------------


def _mlp(name: str, hidden_units: int, input_scale: float, seed: int) -> keras.Model:
    """One input → two tanh layers of ``hidden_units`` → one output; the first layer's slopes are drawn from
    N(0, input_scale²) and its offsets from U(-input_scale, input_scale), the rest from Glorot's uniform."""
    return keras.Sequential([
        keras.Input((1,)),
        layers.Dense(hidden_units, activation="tanh",
                     kernel_initializer=keras.initializers.RandomNormal(stddev=input_scale, seed=seed),
                     bias_initializer=keras.initializers.RandomUniform(-input_scale, input_scale, seed=seed + 1)),
        layers.Dense(hidden_units, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed + 2)),
        layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed + 3)),
    ], name=name)


def build_toy_generator(hidden_units: int = 32, seed: int = 0) -> keras.Model:
    """G: a noise value ``(n, 1)`` → two tanh layers of ``hidden_units`` → a point ``x`` ``(n, 1)``."""
    return _mlp("toy_generator", hidden_units, GENERATOR_INPUT_SCALE, seed * 1000)


def build_toy_discriminator(hidden_units: int = 32, seed: int = 0) -> keras.Model:
    """D: a point ``(n, 1)`` → two tanh layers of ``hidden_units`` → one logit ``(n, 1)``; D(x) = sigmoid(logit)."""
    return _mlp("toy_discriminator", hidden_units, DISCRIMINATOR_INPUT_SCALE, seed * 1000 + 10)


class ToyGAN(keras.Model):
    """A 1-D generator and discriminator with one optimiser each and a step for each network.

    Each step is compiled once with ``tf.function``; :meth:`train_step` is one round of the paper's Algorithm 1
    with k = 1 (a discriminator step, then a generator step on fresh noise).

    Args:
        generator, discriminator: ``(n, 1)`` → ``(n, 1)`` models (a point; a logit).
        discriminator_learning_rate, generator_learning_rate: Adam's learning rates, with ``beta_1 = 0.5``.
        seed: seed of the model's own noise.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, discriminator_learning_rate: float = 2e-3,
                 generator_learning_rate: float = 2e-4, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.d_optimizer = keras.optimizers.Adam(discriminator_learning_rate, beta_1=0.5)
        self.g_optimizer = keras.optimizers.Adam(generator_learning_rate, beta_1=0.5)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, noise: Any, training: bool = False) -> Any:
        """Map noise ``(n, 1)`` to points ``(n, 1)``."""
        return self.generator(noise, training=training)

    def sample_noise(self, batch_size: int) -> Any:
        """``batch_size`` draws of z ~ U(-1, 1), shape ``(batch_size, 1)``."""
        return keras.random.uniform((batch_size, 1), -NOISE_LIMIT, NOISE_LIMIT, seed=self.seed_generator)

    def discriminator_step(self, real_points: Any) -> Any:
        """One Adam step of D on real points (label 1) and as many generated ones (label 0); G is not changed."""
        fake_points = self.generator(self.sample_noise(ops.shape(real_points)[0]), training=False)
        with tf.GradientTape() as tape:
            d_loss = discriminator_loss(self.discriminator(real_points, training=True),
                                        self.discriminator(fake_points, training=True))
        gradients = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply(gradients, self.discriminator.trainable_weights)
        self.d_loss_tracker.update_state(d_loss)
        return d_loss

    def generator_step(self, batch_size: Any) -> Any:
        """One Adam step of G on the non-saturating loss −E[log D(G(z))]; D is not changed."""
        with tf.GradientTape() as tape:
            g_loss = generator_loss(self.discriminator(self.generator(self.sample_noise(batch_size),
                                                                      training=True), training=False))
        gradients = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply(gradients, self.generator.trainable_weights)
        self.g_loss_tracker.update_state(g_loss)
        return g_loss

    def train_step(self, real_points: Any) -> dict[str, Any]:
        """One round of Algorithm 1 with k = 1: a D step, then a G step; returns the running mean losses."""
        self.discriminator_step(real_points)
        self.generator_step(ops.shape(real_points)[0])
        return {metric.name: metric.result() for metric in self.metrics}

    @tf.function
    def train_discriminator(self, real_batches: Any) -> None:
        """:meth:`discriminator_step` on each of ``real_batches`` ``(steps, batch, 1)``, G frozen (one graph)."""
        for index in tf.range(tf.shape(real_batches)[0]):
            self.discriminator_step(real_batches[index])

    @tf.function
    def train_generator(self, num_steps: Any, batch_size: Any) -> None:
        """``num_steps`` of :meth:`generator_step`, D frozen (one graph)."""
        for _ in tf.range(num_steps):
            self.generator_step(batch_size)

    @tf.function
    def train_alternating(self, real_batches: Any) -> None:
        """:meth:`train_step` on each of ``real_batches`` ``(steps, batch, 1)``: k = 1 alternation (one graph)."""
        for index in tf.range(tf.shape(real_batches)[0]):
            self.train_step(real_batches[index])


def make_toy_gan(settings: ToySettings = ToySettings(), seed: int = 0) -> ToyGAN:
    """A :class:`ToyGAN` with ``settings``' widths and learning rates, its weights drawn from ``seed``."""
    return ToyGAN(build_toy_generator(settings.hidden_units, seed), build_toy_discriminator(settings.hidden_units,
                  seed), settings.discriminator_learning_rate, settings.generator_learning_rate, seed=seed)


def fit_generator_to_gaussian(generator: keras.Model, mean: float, std: float, num_steps: int,
                              num_points: int = 256, learning_rate: float = 3e-2) -> float:
    """Regress G onto the quantile function of N(mean, std²), so that ``p_g`` starts close to that Gaussian.

    Returns:
        The final mean squared error.
    """
    noise = noise_grid(num_points)
    normal = statistics.NormalDist(mean, std)
    targets = np.array([[normal.inv_cdf((float(z) + NOISE_LIMIT) / (2 * NOISE_LIMIT))] for z in noise[:, 0]],
                       dtype=np.float32)
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step() -> Any:
        with tf.GradientTape() as tape:
            loss = ops.mean((generator(noise, training=True) - targets) ** 2)
        optimizer.apply(tape.gradient(loss, generator.trainable_weights), generator.trainable_weights)
        return loss

    loss = np.inf
    for _ in range(num_steps):
        loss = step()
    return float(loss)


# --- the run that makes the figure --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ToySnapshot:
    """The state of the toy GAN drawn in one panel.

    Attributes:
        x: centres of the bins of the plotted interval.
        data_density: p_data at ``x``.
        model_density: p_g averaged over each bin.
        discriminator: D(x) at ``x``.
        optimal: D*(x) for this generator (NaN where both densities vanish).
        noise_marks, point_marks: a few noise values and their images G(z), for the mapping arrows.
        steps: the stage's description (how many steps of which network led here).
    """

    x: np.ndarray
    data_density: np.ndarray
    model_density: np.ndarray
    discriminator: np.ndarray
    optimal: np.ndarray
    noise_marks: np.ndarray
    point_marks: np.ndarray
    steps: str

    @property
    def mask(self) -> np.ndarray:
        """Where the discriminator is trained: see :func:`support_mask`."""
        return support_mask(self.data_density, self.model_density)

    def max_gap_to_optimal(self) -> float:
        """``max |D − D*|`` over the points where the mixture of the two densities is not negligible."""
        return float(np.max(np.abs(self.discriminator - self.optimal)[self.mask]))

    def jensen_shannon(self) -> float:
        """JSD(p_data ‖ p_g) of this snapshot, in nats: see :func:`jensen_shannon`."""
        return jensen_shannon(self.data_density, self.model_density, float(self.x[1] - self.x[0]))

    def model_moments(self) -> tuple[float, float]:
        """Mean and standard deviation of ``p_g`` (from the binned density)."""
        weights = self.model_density / self.model_density.sum()
        mean = float(np.sum(weights * self.x))
        return mean, float(np.sqrt(np.sum(weights * (self.x - mean) ** 2)))


@dataclasses.dataclass(frozen=True)
class ToyRun:
    """The four snapshots of :func:`run_toy_gan` (keys ``"a"`` to ``"d"``) and the settings that made them."""

    snapshots: dict[str, ToySnapshot]
    settings: ToySettings
    seed: int


def snapshot(model: ToyGAN, settings: ToySettings, steps: str, num_marks: int = 15) -> ToySnapshot:
    """The densities, D, D* and the mapping of a few noise values for the current state of ``model``."""
    edges = np.linspace(*settings.x_range, settings.num_bins + 1)
    x = (edges[:-1] + edges[1:]) / 2
    data_density = gaussian_density(x, settings.data_mean, settings.data_std)
    model_density = generator_density(model.generator, edges)
    logits = ops.convert_to_numpy(model.discriminator(x[:, None].astype(np.float32), training=False))[:, 0]
    noise_marks = noise_grid(num_marks)
    point_marks = ops.convert_to_numpy(model.generator(noise_marks, training=False))[:, 0]
    return ToySnapshot(x, data_density, model_density, 1 / (1 + np.exp(-logits.astype(np.float64))),
                       optimal_discriminator(data_density, model_density), noise_marks[:, 0], point_marks, steps)


@contextlib.contextmanager
def on_one_cpu() -> Iterator[None]:
    """Run the enclosed code on the CPU, outside any default ``tf.distribute`` strategy, then restore it.

    Networks this small train faster on a CPU than on a GPU, and the toy's plain training loop cannot run under
    the ``MirroredStrategy`` that ``MLBOOK_DISTRIBUTE=mirrored`` installs as the default one.
    """
    previous = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    if previous is not None:
        tf.distribute.experimental_set_strategy(None)
    try:
        with tf.device("/CPU:0"):
            yield
    finally:
        if previous is not None:
            tf.distribute.experimental_set_strategy(previous)


def run_toy_gan(settings: ToySettings = ToySettings(), seed: int = 0) -> ToyRun:
    """Train the toy GAN in the four stages of Goodfellow et al.'s Figure 1, keeping a snapshot after each.

    (a) G fitted to a Gaussian near the data, then a few D steps: a pair "near convergence" with a partly
    trained D. (b) Many more D steps with G frozen (the inner loop run to convergence): D approaches D*.
    (c) G steps with D frozen: G follows D's gradient towards the data. (d) Alternating steps (k = 1) from there.

    Everything runs on one CPU device (:func:`on_one_cpu`), and every random number has an explicit seed, so a
    run is repeatable.
    """
    with on_one_cpu():
        model = make_toy_gan(settings, seed)  # every random number below has an explicit seed
        fit_generator_to_gaussian(model.generator, settings.start_mean, settings.start_std, settings.warm_start_steps)
        rng = np.random.default_rng(seed)

        def real_batches(num_steps: int) -> np.ndarray:
            shape = (num_steps, settings.batch_size, 1)
            return rng.normal(settings.data_mean, settings.data_std, shape).astype(np.float32)

        snapshots = {}
        model.train_discriminator(real_batches(settings.steps_a))
        snapshots["a"] = snapshot(model, settings, f"{settings.steps_a} D steps")
        model.train_discriminator(real_batches(settings.steps_b))
        snapshots["b"] = snapshot(model, settings, f"+{settings.steps_b} D steps, G frozen")
        model.train_generator(settings.steps_c, settings.batch_size)
        snapshots["c"] = snapshot(model, settings, f"+{settings.steps_c} G steps, D frozen")
        model.train_alternating(real_batches(settings.steps_d))
        snapshots["d"] = snapshot(model, settings, f"+{settings.steps_d} alternating steps")
    return ToyRun(snapshots, settings, seed)


def plot_goodfellow_figure(run: ToyRun, panels: Sequence[str] = PANELS, show_optimal: Sequence[str] = ("b",),
                           ncols: int = 2, axes: Sequence[Axes] | None = None) -> Figure:
    """Draw the snapshots as in Goodfellow et al.'s Figure 1: p_data (black dotted), p_g (green solid), D (blue
    dashed), and arrows from a uniform grid of z (lower line) to x = G(z) (upper line). D* (purple dash-dot) is
    added to the panels named in ``show_optimal``. D is drawn faint, and D* not at all, where the mixture of the
    two densities is negligible (:func:`support_mask`): no sample trains D there.

    Args:
        run: the snapshots to draw.
        panels: which snapshots, in order.
        show_optimal: the panels that also show D*.
        ncols: panels per row of a new figure (the paper has all four in one row).
        axes: draw into these axes instead of a new figure (one per panel).
    """
    import matplotlib.pyplot as plt

    panels = list(panels)
    if axes is None:
        nrows = -(-len(panels) // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.1 * nrows + 0.4), squeeze=False)
        axes = grid.ravel()
        for spare in axes[len(panels):]:
            spare.set_visible(False)
    axes = np.atleast_1d(axes)
    fig = axes[0].figure
    low, high = run.settings.x_range
    z_line, x_line = -0.5, -0.06
    top = max(1.05, *(1.05 * run.snapshots[name].model_density.max() for name in panels))
    for ax, name in zip(axes, panels):
        shot = run.snapshots[name]
        ax.plot(shot.x, shot.data_density, color="black", linestyle=":", linewidth=2, label=r"$p_{\rm data}$")
        ax.plot(shot.x, shot.model_density, color="#009E73", linewidth=1.8, label=r"$p_g$")
        trained = shot.mask  # D is drawn faint where too few samples reach it to train it
        ax.plot(shot.x, np.where(trained, shot.discriminator, np.nan), color="#0072B2", linestyle="--",
                linewidth=1.8, label="$D$")
        ax.plot(shot.x, shot.discriminator, color="#0072B2", linestyle="--", linewidth=1.0, alpha=0.35)
        if name in show_optimal:
            ax.plot(shot.x, np.where(trained, shot.optimal, np.nan), color="#CC79A7", linestyle="-.",
                    linewidth=1.3, label="$D^*$")
        for line in (z_line, x_line):
            ax.plot([low, high], [line, line], color="#333333", linewidth=1)
        noise_positions = low + (shot.noise_marks + NOISE_LIMIT) / (2 * NOISE_LIMIT) * (high - low)
        for start, end in zip(noise_positions, shot.point_marks):
            ax.annotate("", xy=(np.clip(end, low, high), x_line), xytext=(start, z_line),
                        arrowprops={"arrowstyle": "-|>", "color": "#555555", "linewidth": 0.7,
                                    "shrinkA": 0, "shrinkB": 0, "mutation_scale": 7})
        ax.text(low - 0.02 * (high - low), x_line, "x", ha="right", va="center", style="italic")
        ax.text(low - 0.02 * (high - low), z_line, "z", ha="right", va="center", style="italic")
        ax.axhline(0.5, color="#bbbbbb", linewidth=0.6, linestyle=":")
        ax.set_title(f"({name}) {shot.steps}", fontsize=10)
        ax.set(xlim=(low - 0.08 * (high - low), high), ylim=(z_line - 0.08, top), xticks=[], yticks=[0, 0.5, 1])
        ax.grid(False)
        ax.spines["bottom"].set_visible(False)
        ax.spines["left"].set_bounds(0, 1)
    handles, labels = axes[panels.index(show_optimal[0]) if show_optimal else 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))
    return fig
