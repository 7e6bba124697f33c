"""Accelerators and ``tf.distribute``: one option takes every chapter from one device to several.

``MLBOOK_DISTRIBUTE=mirrored`` makes :func:`configure_accelerators` (called by :func:`mlbook.setup_chapter`)
install a ``tf.distribute.MirroredStrategy`` over all visible GPUs as the *default* strategy, so every model a
chapter builds afterwards is replicated and ``fit`` splits each batch across the devices — no chapter code
changes. Unset (or ``default``), TensorFlow's default single-device strategy is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

DISTRIBUTE_ENV_VAR = "MLBOOK_DISTRIBUTE"
STRATEGIES: tuple[str, ...] = ("default", "mirrored")


def strategy_name() -> str:
    """The strategy chosen by ``MLBOOK_DISTRIBUTE`` (``default`` when unset); an unknown name is an error."""
    name = (os.environ.get(DISTRIBUTE_ENV_VAR) or "default").strip().lower()
    if name not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {name!r} (from {DISTRIBUTE_ENV_VAR}); valid strategies are: {', '.join(STRATEGIES)}"
        )
    return name


def enable_memory_growth() -> list[str]:
    """Let TensorFlow grow GPU memory as needed instead of taking it all, so chapters can share a card.

    Must run before TensorFlow touches a GPU; GPUs already initialised are left as they are.

    Returns:
        The names of the visible GPUs.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process: the setting can no longer change
            pass
    return [gpu.name for gpu in gpus]


def make_strategy(name: str | None = None, devices: list[str] | None = None) -> tf.distribute.Strategy:
    """A strategy by name: ``default`` (the current one) or ``mirrored`` (all GPUs, or ``devices``)."""
    import tensorflow as tf

    name = strategy_name() if name is None else name
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}; valid strategies are: {', '.join(STRATEGIES)}")


def configure_accelerators(name: str | None = None) -> tf.distribute.Strategy:
    """Enable GPU memory growth and, for ``mirrored``, install that strategy as the default one; return it."""
    import tensorflow as tf

    enable_memory_growth()
    name = strategy_name() if name is None else name
    current = tf.distribute.get_strategy()
    if name == "default" or isinstance(current, tf.distribute.MirroredStrategy):
        return current  # nothing to change (or already mirrored by an earlier call)
    strategy = make_strategy(name)
    tf.distribute.experimental_set_strategy(strategy)
    return strategy


def describe_devices() -> str:
    """One line: TensorFlow's version, the GPUs it sees and the strategy in use (for a chapter's footer)."""
    import tensorflow as tf

    gpus = [gpu.name.split(":", 1)[-1] for gpu in tf.config.list_physical_devices("GPU")]
    strategy = tf.distribute.get_strategy()
    return (
        f"TensorFlow {tf.__version__} · {('GPU ' + ', '.join(gpus)) if gpus else 'CPU only'} · "
        f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)"
    )
