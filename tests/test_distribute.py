"""tf.distribute: MLBOOK_DISTRIBUTE=mirrored replicates every model a chapter builds, tested on CPU devices."""

import os
import subprocess
import sys
import textwrap

import pytest

from mlbook import distribute


def test_strategy_name_from_environment(monkeypatch):
    assert distribute.strategy_name() == "default"
    monkeypatch.setenv("MLBOOK_DISTRIBUTE", " Mirrored ")
    assert distribute.strategy_name() == "mirrored"
    monkeypatch.setenv("MLBOOK_DISTRIBUTE", "tpu")
    with pytest.raises(ValueError, match="valid strategies are: default, mirrored"):
        distribute.strategy_name()


def test_default_strategy_changes_nothing():
    import tensorflow as tf

    assert distribute.configure_accelerators("default") is tf.distribute.get_strategy()
    assert "replica(s)" in distribute.describe_devices()


SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, mlbook
    ctx = mlbook.setup_chapter({"quick": None, "full": None})   # reads MLBOOK_DISTRIBUTE=mirrored
    strategy = tf.distribute.get_strategy()
    # no GPU here: MirroredStrategy falls back to the CPU; pin it to the two logical CPUs for the test
    tf.distribute.experimental_set_strategy(None)
    strategy = mlbook.distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    tf.distribute.experimental_set_strategy(strategy)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])   # built with no scope in sight
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    print("replicas", tf.distribute.get_strategy().num_replicas_in_sync)
    print("distributed", isinstance(model.layers[0].kernel.value, tf.distribute.DistributedValues)
          or "Mirrored" in type(model.layers[0].kernel.value).__name__)
    print("loss", history.history["loss"][0], history.history["loss"][-1])
""")


def test_mirrored_strategy_replicates_models_built_after_setup(tmp_path):
    env = {**os.environ, "MLBOOK_DISTRIBUTE": "mirrored", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["replicas"] == "2" and lines["distributed"] == "True"
    first, last = map(float, lines["loss"].split())
    assert last < first / 2  # a linear target: plain SGD must at least halve the loss in 5 epochs
