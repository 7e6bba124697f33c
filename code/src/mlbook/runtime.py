"""The one call a chapter's hidden setup cell makes: profile, seeds, plot style, a record of the conditions
(profile, seed, device) for the book's Results page, and every setting recorded for the text (:func:`settings_glue`):
the prose cites the glue name ``cfg_grid_size`` (myst-nb's ``glue:text`` role) where it states ``cfg.grid_size``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from mlbook.notebook import record
from mlbook.plot import use_book_style
from mlbook.profiles import current_profile, select
from mlbook.seeding import DEFAULT_SEED, seed_everything

T = TypeVar("T")
#: The key under which :func:`setup_chapter` records the run's conditions (profile, seed, device); the book's build
#: reads it for the Results page and each chapter's provenance footer.
CONDITIONS_KEY = "mlbook_conditions"
#: The prefix of the glue names of the settings: :func:`setup_chapter` records ``cfg.grid_size`` as ``cfg_grid_size``.
SETTINGS_GLUE_PREFIX = "cfg_"
#: Characters per line of :meth:`ChapterContext.describe`: what a code-output box shows unscrolled on the page.
DESCRIBE_WIDTH = 76


@dataclasses.dataclass(frozen=True)
class ChapterContext(Generic[T]):
    """What a chapter runs with: the profile, the seed and the profile's settings (``cfg``)."""

    profile: str
    seed: int
    cfg: T

    def describe(self, width: int = DESCRIBE_WIDTH) -> str:
        """For the reader: profile and seed on the first line, then every setting of ``cfg``, as many to a line
        as fit in ``width`` characters (a setting longer than that gets a line of its own)."""
        if dataclasses.is_dataclass(self.cfg):
            items = [f"{f.name}={getattr(self.cfg, f.name)!r}" for f in dataclasses.fields(self.cfg)]
        else:
            items = [repr(self.cfg)]
        lines = [f"profile={self.profile} seed={self.seed}"]
        current = ""
        for item in items:
            if current and len(current) + len(", ") + len(item) > width:
                lines.append(current + ",")
                current = item
            else:
                current = f"{current}, {item}" if current else item
        return "\n".join([*lines, current] if current else lines)


def setup_chapter(
    settings: Mapping[str, T], *, seed: int = DEFAULT_SEED, tensorflow: bool = True
) -> ChapterContext[T]:
    """Choose the profile's settings, seed every generator and apply the book's plot style.

    Args:
        settings: the chapter's ``{"quick": ..., "full": ...}`` settings.
        seed: the seed for Python, NumPy and (if ``tensorflow``) TensorFlow.
        tensorflow: whether the chapter uses TensorFlow (a NumPy-only chapter skips importing it); if so, GPU
            memory growth is enabled and ``MLBOOK_DISTRIBUTE`` chooses the default ``tf.distribute`` strategy.

    Raises:
        ValueError: if ``MLBOOK_PROFILE`` (or ``MLBOOK_DISTRIBUTE``) names an unknown value.
    """
    profile = current_profile()
    cfg = select(settings, profile)
    seed_everything(seed, tensorflow=tensorflow)
    if tensorflow:
        from mlbook.distribute import configure_accelerators

        configure_accelerators()  # GPU memory growth; MLBOOK_DISTRIBUTE=mirrored replicates across GPUs
    use_book_style()
    record(CONDITIONS_KEY, {"profile": profile, "seed": seed, "device": device_description(tensorflow)})
    for name, value in settings_glue(cfg).items():
        record(name, value)
    return ChapterContext(profile=profile, seed=seed, cfg=cfg)


def settings_glue(cfg: object) -> dict[str, Any]:
    """Every setting of a chapter's settings dataclass under the glue name the text uses for it.

    The name is :data:`SETTINGS_GLUE_PREFIX` and the setting's path with ``_`` for each dot: ``cfg.grid_size`` is
    ``cfg_grid_size``; a field that is itself a settings dataclass gives its own fields (``cfg.hidden.num_steps``
    is ``cfg_hidden_num_steps``) and no name of its own. Every other value is recorded as it is, so the text
    formats it as it would the setting (``cfg_learning_rate`` with the format ``g``): a tuple is one value, shown as
    ``(9, 20)``; a string, a boolean or ``None`` as Python writes it. Settings that are not a dataclass
    (``None`` for a chapter without settings) give nothing.

    Raises:
        ValueError: if two settings would get the same name (``cfg.hidden_size`` and ``cfg.hidden.size``).
    """
    names: dict[str, Any] = {}

    def add(settings: object, prefix: str) -> None:
        for field in dataclasses.fields(settings):
            value, name = getattr(settings, field.name), f"{prefix}{field.name}"
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                add(value, f"{name}_")
            elif name in names:
                raise ValueError(f"two settings would both be glued as {name!r}; rename one")
            else:
                names[name] = value

    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        add(cfg, SETTINGS_GLUE_PREFIX)
    return names


def device_description(tensorflow: bool = True) -> str:
    """The device and, for TensorFlow, the strategy: ``"CPU · default strategy, 1 replica"`` or
    ``"2 GPU (NVIDIA H100 80GB HBM3) · MirroredStrategy, 2 replicas"``; NumPy chapters run on the CPU."""
    if not tensorflow:
        return "CPU (NumPy)"
    import tensorflow as tf

    from mlbook.distribute import describe_strategy

    gpus = tf.config.list_physical_devices("GPU")
    names = sorted({tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus})
    device = f"{len(gpus)} GPU ({', '.join(names)})" if gpus else "CPU"
    return f"{device} · {describe_strategy()}"
