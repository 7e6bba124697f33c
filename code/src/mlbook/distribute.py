"""Accelerators and ``tf.distribute``: one option takes every chapter from one device to several.

``MLBOOK_DISTRIBUTE=mirrored`` makes :func:`configure_accelerators` (called by :func:`mlbook.setup_chapter`)
install a ``tf.distribute.MirroredStrategy`` over all visible GPUs (or, with none, all logical CPUs) as the
*default* strategy, so every model a chapter builds afterwards is replicated and ``fit`` splits each batch
across the devices. Unset (or ``default``), TensorFlow's default single-device strategy is used.

``compile()``'s losses are divided by the number of replicas, because Keras's optimiser *sums* the replicas'
gradients. A training step that computes its own loss has to do the same, or it steps N times too far on N
devices: :func:`scale_for_replicas` does it, :func:`this_replicas_rows` gives each replica its own share of noise
drawn for the whole batch, and :func:`clip_by_global_norm` clips the summed gradient, as one device would, where
Keras's ``global_clipnorm`` would clip each replica's share.
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
    """A strategy by name: ``default`` (the current one) or ``mirrored`` (over ``devices``; by default every
    GPU, or every logical CPU on a machine without one)."""
    import tensorflow as tf

    name = strategy_name() if name is None else name
    if name == "mirrored":
        if devices is None:
            devices = [device.name for device in tf.config.list_logical_devices("GPU")
                       or tf.config.list_logical_devices("CPU")]
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


def describe_strategy() -> str:
    """The strategy in use and its replica count, e.g. ``"MirroredStrategy, 2 replicas"`` (for the footer)."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    name = "default strategy" if not tf.distribute.has_strategy() else type(strategy).__name__
    replicas = strategy.num_replicas_in_sync
    return f"{name}, {replicas} replica{'s' if replicas != 1 else ''}"


# --- training steps that compute their own loss ---------------------------------------------------------------


def replicas_in_sync() -> int:
    """How many replicas compute the current step together: 1 outside ``strategy.run`` or on one device."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def scale_for_replicas(mean_loss):
    """A replica's mean loss divided by the number of replicas, to differentiate in a custom training step.

    The optimiser sums the replicas' gradients, so the sum of these scaled gradients is the gradient of the mean
    loss over the global batch, and N devices take the step that one device takes on the whole batch.
    """
    replicas = replicas_in_sync()
    return mean_loss if replicas == 1 else mean_loss / replicas


def this_replicas_rows(global_rows):
    """This replica's consecutive share of ``global_rows`` (rows for the whole batch, e.g. noise drawn from one
    seed); the whole tensor on one device. Without it every replica would draw the *same* noise."""
    import tensorflow as tf

    replicas = replicas_in_sync()
    if replicas == 1:
        return global_rows
    rows = tf.shape(global_rows)[0] // replicas
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return global_rows[replica * rows:(replica + 1) * rows]


def clip_by_global_norm(gradients: list, clipnorm: float) -> list:
    """Gradients rescaled so that the global norm of their sum over the replicas is at most ``clipnorm``.

    On one device this is Keras's ``global_clipnorm``. Under a strategy, Keras clips each replica's gradients
    *before* summing them; here the norm is that of the summed gradient, so N devices clip as one does.

    Implements: eq-rnn-clip-decay
    """
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    total = gradients if replicas_in_sync() == 1 else context.all_reduce("SUM", gradients)
    norm = tf.linalg.global_norm(total)
    scale = clipnorm / tf.maximum(norm, clipnorm)
    return [gradient * scale for gradient in gradients]


def split_rows_across_replicas(strategy: tf.distribute.Strategy, *tensors) -> tuple:
    """``tensors`` as per-replica values for ``strategy.run``, each replica getting consecutive rows of each.

    Raises:
        ValueError: if a tensor's rows do not divide evenly among the replicas.
    """

    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return tensors
    rows = [int(tensor.shape[0]) for tensor in tensors]
    if any(n % replicas for n in rows):
        raise ValueError(f"{rows} rows cannot be split evenly among {replicas} replicas; use a multiple of {replicas}")

    def share(context: tf.distribute.experimental.ValueContext) -> tuple:
        k = context.replica_id_in_sync_group
        return tuple(tensor[k * (n // replicas):(k + 1) * (n // replicas)] for tensor, n in zip(tensors, rows))

    return strategy.experimental_distribute_values_from_function(share)
