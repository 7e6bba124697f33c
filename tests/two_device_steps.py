"""One training step of each custom training path, on one device and then mirrored over two logical CPUs.

Run by ``tests/test_distribute.py`` in a fresh interpreter (the logical devices must be set before TensorFlow
starts). For each path it prints one JSON line: the largest difference between the two runs' weights after the
step, and the largest change the step made, so the test can tell "equal" from "nothing happened".
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import mlbook  # noqa: E402
from mlbook import charrnn, detection, gan, vae, yolo  # noqa: E402

BATCH = 8
rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 1, size=(BATCH, 28, 28, 1)).astype("float32")
SPEC = yolo.GridSpec(image_size=32, grid_size=2)
DETECTOR_IMAGES = rng.uniform(0, 1, size=(BATCH, 32, 32, 1)).astype("float32")
DETECTOR_TARGETS = yolo.encode_dataset(
    [detection.Boxes(np.array([[2.0 + k, 3.0, 20.0, 17.0 + k]]), np.array([k % 2])) for k in range(BATCH)], SPEC)
IDS = rng.integers(0, 27, size=(BATCH, 6)).astype("int32")
TARGETS = rng.integers(0, 27, size=(BATCH, 6)).astype("int32")


def weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(w.value)) for w in model.weights]


def largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


Step = Callable[[], tuple[list[np.ndarray], keras.Model]]


def vae_step() -> tuple[list[np.ndarray], keras.Model]:
    keras.utils.set_random_seed(1)
    model = vae.build_vae(vae.VaeSettings(latent_dim=2, intermediate_dim=16, num_epochs=1, batch_size=BATCH,
                                          learning_rate=0.1), seed=1)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = weights(model)
    model.fit(IMAGES, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return before, model


def dcgan_step() -> tuple[list[np.ndarray], keras.Model]:
    keras.utils.set_random_seed(1)
    cfg = gan.GanSettings(num_epochs=1, batch_size=BATCH, latent_dim=4, base_filters=4)
    model = gan.make_dcgan((28, 28, 1), cfg, seed=1)
    model.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    before = weights(model)
    model.fit(IMAGES * 2 - 1, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return before, model


def yolo_step() -> tuple[list[np.ndarray], keras.Model]:
    keras.utils.set_random_seed(1)
    model = yolo.YoloDetector(SPEC)
    model(DETECTOR_IMAGES[:1])
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    before = weights(model)
    model.fit(DETECTOR_IMAGES, DETECTOR_TARGETS, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return before, model


def char_rnn_step(clipnorm: float) -> Step:
    def step() -> tuple[list[np.ndarray], keras.Model]:
        keras.utils.set_random_seed(1)
        model = charrnn.build_model(charrnn.HiddenFeedbackRNN(8))
        train_step = charrnn.make_train_step(model, keras.optimizers.SGD(0.5), clipnorm)
        before = weights(model)
        train_step(IDS, TARGETS, tf.zeros((BATCH, model.state_size)))
        return before, model
    return step


PATHS: dict[str, Step] = {
    "vae": vae_step, "dcgan": dcgan_step, "yolo": yolo_step,
    "char-rnn": char_rnn_step(clipnorm=1e6), "char-rnn, clipped": char_rnn_step(clipnorm=0.05),
}


one_device = {}
for name, step in PATHS.items():
    before, model = step()
    one_device[name] = before, weights(model)

# What a chapter does: setup_chapter reads MLBOOK_DISTRIBUTE=mirrored and installs the strategy.
mlbook.setup_chapter({"quick": None, "full": None})
strategy = tf.distribute.get_strategy()
print(json.dumps({"strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
                  "footer": mlbook.runtime.device_description()}))
for name, step in PATHS.items():
    before, model = step()
    (single_before, single_after), mirrored = one_device[name], weights(model)
    print(json.dumps({
        "path": name,
        "same start": largest_difference(single_before, before) == 0.0,
        "step": largest_difference(single_before, single_after),
        "difference": largest_difference(single_after, mirrored),
        "distributed": all(isinstance(w.value, tf.distribute.DistributedValues) for w in model.trainable_weights),
    }))
