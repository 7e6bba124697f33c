"""tf.distribute: MLBOOK_DISTRIBUTE=mirrored replicates every model a chapter builds, and every custom training
path takes the step one device would take on the whole batch; tested on a CPU split into two logical devices."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
    assert distribute.describe_strategy() == "default strategy, 1 replica"
    assert distribute.replicas_in_sync() == 1
    loss = tf.constant(2.5)
    assert distribute.scale_for_replicas(loss) is loss
    rows = tf.reshape(tf.range(6.0), (3, 2))
    assert distribute.this_replicas_rows(rows) is rows


@pytest.mark.equation("eq-rnn-clip-decay")
def test_clip_by_global_norm_on_one_device_is_keras_global_clipnorm():
    import tensorflow as tf

    gradients = [tf.constant([30.0, 0.0]), tf.constant([[0.0], [40.0]])]  # global norm 50
    clipped = distribute.clip_by_global_norm(gradients, 1.0)
    assert clipped[0].numpy().tolist() == pytest.approx([0.6, 0.0])
    assert clipped[1].numpy().ravel().tolist() == pytest.approx([0.0, 0.8])
    unclipped = distribute.clip_by_global_norm(gradients, 100.0)
    assert [g.numpy().tolist() for g in unclipped] == [[30.0, 0.0], [[0.0], [40.0]]]


def test_rows_that_do_not_split_evenly_are_refused_by_name():
    import tensorflow as tf

    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(ValueError, match=r"\[3\] rows cannot be split evenly among 2 replicas"):
        distribute.split_rows_across_replicas(TwoReplicas(), tf.zeros((3, 4)))


@pytest.fixture(scope="module")
def two_device_steps() -> dict[str, dict]:
    """tests/two_device_steps.py's report: one training step of each custom path on one device and mirrored
    over two logical CPUs, after ``setup_chapter`` installed the strategy from ``MLBOOK_DISTRIBUTE``."""
    env = {**os.environ, "MLBOOK_DISTRIBUTE": "mirrored", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("two_device_steps.py"))], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line.get("path", "setup"): line for line in lines}


def test_setup_chapter_installs_the_mirrored_strategy_and_the_footer_names_it(two_device_steps):
    setup = two_device_steps["setup"]
    assert (setup["strategy"], setup["replicas"]) == ("MirroredStrategy", 2)
    assert setup["footer"] == "CPU · MirroredStrategy, 2 replicas"


@pytest.mark.parametrize("path", ["vae", "dcgan", "yolo", "char-rnn", "char-rnn, clipped"])
def test_a_mirrored_step_over_two_devices_equals_one_device_on_the_whole_batch(two_device_steps, path):
    """Unscaled losses (a step twice too far), the same noise on both replicas, per-replica batch statistics or
    per-replica clipping each make the difference 1e-3 or more here; float round-off is below 1e-6."""
    report = two_device_steps[path]
    assert report["same start"] and report["distributed"], report
    assert report["step"] > 1e-3, f"{path}: the step hardly moved the weights, so the comparison shows nothing"
    assert report["difference"] < 1e-4, f"{path}: the mirrored step differs from one device's: {report}"
