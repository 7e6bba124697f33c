import dataclasses
import importlib
import json
import os
import time

import numpy as np
import pytest

from mlbook import cache
from mlbook.data import ImageDataset


def tiny_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def fit_a_little(model):
    rng = np.random.default_rng(0)
    return model.fit(rng.normal(size=(16, 3)), rng.normal(size=(16, 2)), epochs=2, verbose=0)


class CountingTrainer:
    def __init__(self):
        self.calls = 0

    def __call__(self, model):
        self.calls += 1
        return fit_a_little(model)


CONFIG = {"units": 2, "epochs": 2}


def test_second_call_loads_instead_of_training():
    trainer = CountingTrainer()
    first = cache.load_or_train(tiny_model(0), "tiny", CONFIG, trainer)
    second = cache.load_or_train(tiny_model(1), "tiny", CONFIG, trainer)  # other initial weights
    assert trainer.calls == 1 and not first.from_cache and second.from_cache
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert second.history == first.history and len(first.history["loss"]) == 2


def test_key_depends_on_config_profile_and_package_source(monkeypatch):
    base = cache.cache_key("m", CONFIG, "quick")
    assert cache.cache_key("m", {**CONFIG, "epochs": 3}, "quick") != base
    assert cache.cache_key("m", CONFIG, "full") != base
    assert cache.cache_key("m", dict(reversed(list(CONFIG.items()))), "quick") == base  # order-free
    monkeypatch.setattr(cache, "package_source_hash", lambda: "edited-source")
    assert cache.cache_key("m", CONFIG, "quick") != base


#: A runtime that differs from this process's in one field, per field of :func:`mlbook.cache.runtime_signature`.
OTHER_RUNTIME = {"tensorflow": "2.99.0", "keras": "3.99.0", "device": "cuda", "replicas": 2}


def test_runtime_signature_describes_this_process():
    import keras
    import tensorflow as tf

    runtime = cache.runtime_signature()
    assert runtime.keys() == OTHER_RUNTIME.keys()
    assert runtime["tensorflow"] == tf.__version__ and runtime["keras"] == keras.__version__
    assert runtime["device"] == ("cuda" if tf.config.list_physical_devices("GPU") else "cpu")
    assert runtime["replicas"] == 1  # the default strategy, outside any scope


@pytest.mark.parametrize("field", sorted(OTHER_RUNTIME))
def test_key_depends_on_the_runtime(field, monkeypatch):
    runtime = cache.runtime_signature()
    base = cache.cache_key("m", CONFIG, "quick")
    monkeypatch.setattr(cache, "runtime_signature", lambda: {**runtime, field: OTHER_RUNTIME[field]})
    assert cache.cache_key("m", CONFIG, "quick") != base


def test_cached_fit_keeps_each_runtimes_weights_apart(monkeypatch):
    x, y = data_for_fit()
    runtime = cache.runtime_signature()
    fit = {"epochs": 1, "batch_size": 4, "verbose": 0}
    here = cache.cached(tiny_model(), "wrapped", seed=0).fit(x, y, **fit)
    monkeypatch.setattr(cache, "runtime_signature", lambda: {**runtime, "device": "cuda", "replicas": 2})
    elsewhere = cache.cached(tiny_model(), "wrapped", seed=0).fit(x, y, **fit)
    assert not elsewhere.from_cache and elsewhere.weights_path != here.weights_path
    monkeypatch.setattr(cache, "runtime_signature", lambda: runtime)
    back = cache.cached(tiny_model(), "wrapped", seed=0).fit(x, y, **fit)
    assert back.from_cache and back.weights_path == here.weights_path


def test_code_change_retrains(monkeypatch):
    trainer = CountingTrainer()
    cache.load_or_train(tiny_model(), "tiny", CONFIG, trainer)
    monkeypatch.setattr(cache, "package_source_hash", lambda: "edited-source")
    assert not cache.load_or_train(tiny_model(), "tiny", CONFIG, trainer).from_cache
    assert trainer.calls == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop-metadata", "garbage-metadata"])
def test_corrupt_entry_is_removed_and_retrained(damage, capsys):
    trainer = CountingTrainer()
    entry = cache.load_or_train(tiny_model(), "tiny", CONFIG, trainer)
    weights = entry.weights_path
    meta = weights.with_name(weights.name.replace(".weights.npz", ".json"))
    raw = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        weights.write_bytes(raw[:-10] + bytes(b ^ 0xFF for b in raw[-10:]))
    elif damage == "drop-metadata":
        meta.unlink()
    else:
        meta.write_text("{not json")
    again = cache.load_or_train(tiny_model(), "tiny", CONFIG, trainer)
    assert not again.from_cache and trainer.calls == 2
    assert "discarding cached" in capsys.readouterr().out
    assert cache.load_or_train(tiny_model(), "tiny", CONFIG, trainer).from_cache  # healthy again


def test_weights_of_another_architecture_are_not_loaded(capsys):
    import keras

    trainer = CountingTrainer()
    entry = cache.load_or_train(tiny_model(), "tiny", CONFIG, trainer)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    other.compile(optimizer="sgd", loss="mse")
    meta_path = entry.weights_path.with_name(entry.weights_path.name.replace(".weights.npz", ".json"))
    assert json.loads(meta_path.read_text())["name"] == "tiny"

    def train_other(model):
        rng = np.random.default_rng(0)
        return model.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 5)), epochs=1, verbose=0)

    result = cache.load_or_train(other, "tiny", CONFIG, train_other)  # same key, wrong shapes
    assert not result.from_cache and "discarding cached" in capsys.readouterr().out


def test_no_temporary_files_are_left_behind():
    cache.load_or_train(tiny_model(), "tiny", CONFIG, CountingTrainer())
    names = sorted(p.name for p in cache.cache_dir().iterdir())
    assert len(names) == 2 and not any(name.startswith(".") for name in names)


def test_stale_temporaries_are_removed_when_the_cache_is_first_used():
    """A process killed while writing leaves its temporary file; the next process to use the cache removes it, but
    not a recent one, which a concurrent writer may still be filling."""
    folder = cache.cache_dir()
    stem = "tiny-0123456789abcdef01234567"
    stale, fresh = folder / f".{stem}.weights.npz.k2j4h1.weights.npz", folder / f".{stem}.json.a1b2c3.json"
    for path in (stale, fresh):
        path.write_bytes(b"half written")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    cache.load_or_compute_arrays("image", {}, lambda: {"image": np.zeros(2)})
    assert not stale.exists() and fresh.exists()


def test_the_cache_stays_under_its_size_cap_by_dropping_the_least_recently_used_entries(monkeypatch):
    mebibyte = {"x": np.zeros(1 << 17)}  # 1 MiB of float64
    monkeypatch.setattr(cache, "MAX_CACHE_BYTES", int(2.5 * (1 << 20)))

    def entry_files(step: int) -> tuple:
        return cache._entry_paths("entry", cache.cache_key("entry", {"step": step}), ".npz")

    for step, age in ((0, 300), (1, 200)):
        cache.load_or_compute_arrays("entry", {"step": step}, lambda: mebibyte)
        for path in entry_files(step):
            os.utime(path, (time.time() - age, time.time() - age))
    assert cache.load_or_compute_arrays("entry", {"step": 0}, lambda: pytest.fail("recomputed"))[1]  # used: recent
    cache.load_or_compute_arrays("entry", {"step": 2}, lambda: mebibyte)  # 3 MiB: over the cap
    assert [all(path.exists() for path in entry_files(step)) for step in range(3)] == [True, False, True]
    assert not any(path.exists() for path in entry_files(1))  # the whole entry goes, never half of it


def test_an_entry_larger_than_the_cap_is_still_kept(monkeypatch):
    monkeypatch.setattr(cache, "MAX_CACHE_BYTES", 10)
    cache.load_or_compute_arrays("big", {}, lambda: {"x": np.zeros(100)})
    assert cache.load_or_compute_arrays("big", {}, lambda: pytest.fail("recomputed"))[1]


def test_bad_input_is_named():
    import keras

    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="must be built"):
        cache.load_or_train(unbuilt, "x", CONFIG, fit_a_little)
    with pytest.raises(ValueError, match="letters, digits"):
        cache.load_or_compute_arrays("bad/name", CONFIG, lambda: {})
    with pytest.raises(ValueError, match="JSON-serialisable"):
        cache.cache_key("m", {"array": np.zeros(2)})


def test_arrays_are_cached_and_checked():
    calls = []

    def compute():
        calls.append(1)
        return {"image": np.arange(6.0).reshape(2, 3)}

    first, hit1 = cache.load_or_compute_arrays("image", {"steps": 3}, compute)
    second, hit2 = cache.load_or_compute_arrays("image", {"steps": 3}, compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    np.testing.assert_array_equal(first["image"], second["image"])
    npz = next(cache.cache_dir().glob("image-*.npz"))
    npz.write_bytes(b"broken")
    third, hit3 = cache.load_or_compute_arrays("image", {"steps": 3}, compute)
    assert not hit3 and len(calls) == 2
    np.testing.assert_array_equal(third["image"], first["image"])


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MLBOOK_CACHE", str(tmp_path / "here"))
    assert cache.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("MLBOOK_CACHE")
    assert cache.cache_dir().name == "mlbook"


def test_loading_into_a_freshly_compiled_model_hits_the_cache_silently(capsys):
    """Regression: Keras's save_weights also stored Adam's state, which a freshly compiled model (optimizer not yet
    built) could not receive — the entry was discarded and the model retrained on every rebuild. Only the model's
    weights are cached now; the load must neither fail nor warn (filterwarnings = error; a warning on stderr
    fails the book build)."""
    def adam_model():
        model = tiny_model()
        model.compile(optimizer="adam", loss="mse")
        return model

    trainer = CountingTrainer()
    first = cache.load_or_train(adam_model(), "adam", CONFIG, trainer)
    second = cache.load_or_train(adam_model(), "adam", CONFIG, trainer)
    assert second.from_cache and trainer.calls == 1, capsys.readouterr().out
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def data_for_fit(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")


def test_cached_fit_trains_once_and_returns_the_same_weights_and_history():
    x, y = data_for_fit()
    first = cache.cached(tiny_model(0), "wrapped", seed=0).fit(x, y, epochs=2, batch_size=4, verbose=0)
    again = cache.cached(tiny_model(1), "wrapped", seed=0).fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert not first.from_cache and again.from_cache
    assert again.history == first.history and len(first.history["loss"]) == 2
    for loaded, trained in zip(again.model.get_weights(), first.model.get_weights()):
        np.testing.assert_array_equal(loaded, trained)


@pytest.mark.parametrize("change", ["epochs", "batch_size", "data", "labels", "learning_rate", "callback", "config"])
def test_cached_fit_trains_afresh_when_anything_that_shapes_the_weights_changes(change):
    import keras

    x, y = data_for_fit()
    cache.cached(tiny_model(), "wrapped", seed=0).fit(x, y, epochs=2, batch_size=4, verbose=0)
    model, config = tiny_model(), {"seed": 0}
    kwargs = {"epochs": 2, "batch_size": 4, "verbose": 0}
    if change == "epochs":
        kwargs["epochs"] = 3
    elif change == "batch_size":
        kwargs["batch_size"] = 8
    elif change == "data":
        x = x.copy()
        x[0, 0] += 1e-3  # same shape and dtype, one value differs
    elif change == "labels":
        y = y[::-1].copy()
    elif change == "learning_rate":
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    elif change == "callback":
        kwargs["callbacks"] = [keras.callbacks.EarlyStopping("loss", patience=1, restore_best_weights=True)]
    else:
        config = {"seed": 1}
    assert not cache.cached(model, "wrapped", **config).fit(x, y, **kwargs).from_cache


def test_cached_fit_needs_a_compiled_model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="compile model 'raw' before fitting it"):
        cache.cached(model, "raw").fit(*data_for_fit(), epochs=1)


def test_describe_for_key_reads_array_contents_and_object_settings():
    import keras

    a = np.arange(6.0).reshape(2, 3)
    assert cache.describe_for_key(a) == cache.describe_for_key(a.copy())
    assert cache.describe_for_key(a) != cache.describe_for_key(a.reshape(3, 2))
    stop = cache.describe_for_key(keras.callbacks.EarlyStopping("val_loss", patience=4))
    assert stop["class"] == "EarlyStopping" and stop["patience"] == 4 and stop["monitor"] == "val_loss"


# --- the data a model was trained on is part of its key ---------------------------------------------------------


def digit_like(source: str, per_class: int = 10) -> ImageDataset:
    """The same 28×28 images under another ``source``: only the data's name differs."""
    labels = np.repeat(np.arange(10), per_class)
    images = np.random.default_rng(0).random((len(labels), 28, 28, 1), dtype=np.float32)
    return ImageDataset(images, labels, images[:20], labels[:20], source=source, description=source)


class KeyCaptured(Exception):
    """Raised in place of training, carrying the key :func:`mlbook.cache.load_or_train` was asked for."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


#: Every chapter function that trains through :func:`mlbook.cache.load_or_train` on an ``ImageDataset``.
TRAINERS = {
    "cnn-rung": ("cnn", lambda m, data: m.run_rung(m.Rung("plain SGD", "sgd", False, 0.0, 10), data,
                                                   m.SETTINGS["quick"], 0)),
    "vae": ("vae", lambda m, data: m.train_or_load_vae(data, m.SETTINGS["quick"], 0)),
    "vae-classifier": ("vae", lambda m, data: m.train_or_load_classifier(data, 1, 0)),
    "dense-autoencoder": ("autoencoder", lambda m, data: m.train_or_load("dense", data, m.SETTINGS["quick"], 0)),
    "conv-autoencoder": ("autoencoder", lambda m, data: m.train_or_load("conv", data, m.SETTINGS["quick"], 0)),
    "inception": ("inception", lambda m, data: m.train_inception_net(data, m.SETTINGS["quick"], "gap", 0)),
    "few-labels": ("augment", lambda m, data: m.run_few_labels(data, m.SETTINGS["quick"], 0)),
}


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_weights_trained_on_substitute_data_are_not_loaded_for_the_real_data(trainer, monkeypatch):
    """A ``full`` build that fell back on scikit-learn's digits caches weights that the real MNIST must not load:
    each trainer's key names the dataset's source (and, with everything else equal, only the source differs)."""
    module_name, train = TRAINERS[trainer]
    module = importlib.import_module(f"mlbook.{module_name}")

    def capture(model, name, config, train, profile=None):
        raise KeyCaptured(cache.cache_key(name, config, profile))

    monkeypatch.setattr(cache, "load_or_train", capture)
    if hasattr(module, "load_or_train"):  # imported at module level
        monkeypatch.setattr(module, "load_or_train", capture)
    keys = []
    for source in ("mnist", "sklearn-digits", "mnist"):
        with pytest.raises(KeyCaptured) as captured:
            train(module, digit_like(source))
        keys.append(captured.value.key)
    assert keys[0] == keys[2] and keys[0] != keys[1]


def test_gan_weights_are_keyed_on_the_images_themselves():
    from mlbook import gan

    cfg = gan.SETTINGS["quick"]
    real = digit_like("mnist").x_train
    assert gan.training_config(cfg, real, 0) == gan.training_config(cfg, real.copy(), 0)
    assert gan.training_config(cfg, real, 0) != gan.training_config(cfg, real * 0.5, 0)  # same shape, other images


@dataclasses.dataclass(frozen=True)
class ToySettings:
    epochs: int
    learning_rate: float = 0.1
    samples_shown: int = cache.evaluation_only(8)


def test_changing_an_evaluation_only_setting_loads_and_changing_a_training_setting_retrains():
    trainer, settings = CountingTrainer(), ToySettings(epochs=2)
    cache.load_or_train(tiny_model(), "toy", cache.weights_config(settings, seed=0), trainer)
    shown = cache.load_or_train(tiny_model(), "toy", cache.weights_config(
        dataclasses.replace(settings, samples_shown=64), seed=0), trainer)
    assert shown.from_cache and trainer.calls == 1
    for change in ({"epochs": 3}, {"learning_rate": 0.2}):
        retrained = cache.load_or_train(tiny_model(), "toy", cache.weights_config(
            dataclasses.replace(settings, **change), seed=0), trainer)
        assert not retrained.from_cache
    assert trainer.calls == 3


def _chapter_settings() -> dict[str, object]:
    from mlbook import augment, autoencoder, charrnn, cnn, gan, inception, vae, yolo

    return {module.__name__: module.SETTINGS["quick"]
            for module in (augment, autoencoder, charrnn, cnn, gan, inception, vae, yolo)}


@pytest.mark.parametrize("module", sorted(_chapter_settings()))
def test_each_chapters_key_ignores_exactly_its_evaluation_only_fields(module):
    """Every field of a chapter's settings either keys the weights or is marked evaluation-only; changing a marked
    field leaves the key alone, changing a number that trains changes it (nested settings included)."""
    settings = _chapter_settings()[module]
    key = cache.weights_config(settings)
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        changed = cache.weights_config(dataclasses.replace(settings, **{field.name: value + 1}))
        if field.metadata.get(cache.EVALUATION_ONLY):
            assert changed == key, f"{module}.{field.name} is evaluation-only but changes the key"
        else:
            assert changed != key, f"{module}.{field.name} trains but does not change the key"


def test_weights_config_refuses_what_is_not_a_settings_instance():
    with pytest.raises(TypeError, match="expected a settings dataclass instance, got dict"):
        cache.weights_config({"epochs": 2})
