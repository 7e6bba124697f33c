"""A disk cache of trained weights, so that rebuilding the book does not retrain its models.

An entry's key is a SHA-256 of the model's name and config, the profile, the source of the ``mlbook`` package
itself and the runtime (:func:`runtime_signature`: TensorFlow's and Keras's versions, CPU or CUDA, the number of
replicas): weights trained by older code, by another TensorFlow or on other devices are never loaded. The data a
model is trained on is part of its config (``cached(...).fit`` hashes its arrays; callers of :func:`load_or_train`
put the dataset's ``source`` in the config), so weights trained on substitute data are never loaded for the real
data. Writes are atomic (temporary file, then rename), and every entry carries the checksum of its weights, so a
corrupt or mismatched entry is detected, deleted and retrained — never loaded silently.

The cache never costs a result. When an entry cannot be saved (a full disk, a read-only folder, a file where the
folder should be), the result is returned uncached and one line names the folder and the reason. The folder stays
bounded: after each save, whole entries are deleted, least recently used first (loading an entry uses it), until
the folder holds at most :data:`MAX_CACHE_BYTES`; the entry just saved is always kept. Temporary files that a
writer killed mid-write left behind are deleted when a process first uses the folder, once they are
:data:`STALE_TEMPORARY_S` old (a younger one may belong to a writer still at work).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mlbook.profiles import resolve_profile

if TYPE_CHECKING:
    import keras

CACHE_ENV_VAR = "MLBOOK_CACHE"
FORMAT_VERSION = 1
#: The most the cache folder holds; past it, the least recently used entries are deleted.
MAX_CACHE_BYTES = 2 * 2**30
#: How old a temporary file must be before it counts as left behind by a killed writer.
STALE_TEMPORARY_S = 600.0

_ENTRY_FILE = re.compile(r"(?P<stem>[A-Za-z0-9_-]+-[0-9a-f]{24})\.(?:json|npz|weights\.npz)")
_TEMPORARY_FILE = re.compile(r"\.[A-Za-z0-9_-]+-[0-9a-f]{24}\..+")
_swept_folders: set[Path] = set()

T = TypeVar("T")


class CacheEntryError(RuntimeError):
    """A cache entry exists but cannot be trusted (corrupt, truncated, or made for another key or model)."""


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """The outcome of :func:`load_or_train`: the model, its training history and where it came from."""

    model: Any
    history: dict[str, list[float]]
    from_cache: bool
    weights_path: Path


def cache_dir() -> Path:
    """``$MLBOOK_CACHE`` if set, else the user cache folder (e.g. ``~/.cache/mlbook``)."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    import platformdirs

    return platformdirs.user_cache_path("mlbook")


@functools.lru_cache(maxsize=1)
def package_source_hash() -> str:
    """SHA-256 of every ``.py`` file of the installed ``mlbook`` package (paths and contents)."""
    package_root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package_root.rglob("*.py")):
        digest.update(path.relative_to(package_root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def runtime_signature() -> dict[str, str | int]:
    """The runtime a result is computed with, as every cache key records it: TensorFlow's and Keras's versions, the
    device kind TensorFlow computes on (``"cuda"`` when it sees a GPU, else ``"cpu"``) and the number of replicas of
    the current ``tf.distribute`` strategy (``MLBOOK_DISTRIBUTE``). Listing the devices does not initialise them,
    so it may run before :func:`mlbook.distribute.configure_accelerators`."""
    import keras
    import tensorflow as tf

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "device": "cuda" if tf.config.list_physical_devices("GPU") else "cpu",
        "replicas": int(tf.distribute.get_strategy().num_replicas_in_sync),
    }


def cache_key(name: str, config: Mapping[str, Any], profile: str | None = None) -> str:
    """The hex key of a model: its name, its config (JSON-serialisable), the profile, the package source and the
    runtime (:func:`runtime_signature`)."""
    profile = resolve_profile(profile)
    try:
        config_json = json.dumps(dict(config), sort_keys=True)
    except TypeError as error:
        raise ValueError(f"model config for {name!r} must be JSON-serialisable: {error}") from error
    payload = json.dumps(
        {"format": FORMAT_VERSION, "name": name, "config": config_json, "profile": profile,
         "source": package_source_hash(), "runtime": runtime_signature()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(target: Path, write: Callable[[Path], None], suffix: str) -> None:
    """Write ``target`` through ``write(temporary_path)`` and an atomic rename (same folder, same filesystem)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(handle)
    try:
        write(Path(temp_name))
        os.replace(temp_name, target)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def _entry_paths(name: str, key: str, suffix: str) -> tuple[Path, Path]:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"cache entry names may use letters, digits, '-' and '_' only, got {name!r}")
    stem = cache_dir() / f"{name}-{key[:24]}"
    return stem.with_name(stem.name + suffix), stem.with_name(stem.name + ".json")


def _read_metadata(meta_path: Path, key: str, data_path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise CacheEntryError(f"unreadable metadata {meta_path.name} ({error})") from error
    if metadata.get("key") != key:
        raise CacheEntryError(f"{meta_path.name} was written for another key")
    if not data_path.is_file():
        raise CacheEntryError(f"{data_path.name} is missing")
    if metadata.get("sha256") != _sha256_file(data_path):
        raise CacheEntryError(f"{data_path.name} does not match its checksum (corrupt or truncated)")
    return metadata


def _sweep_stale_temporaries(folder: Path) -> None:
    """Once per process and folder, delete the temporary files older than :data:`STALE_TEMPORARY_S`."""
    if folder in _swept_folders:
        return
    _swept_folders.add(folder)
    try:
        paths = list(folder.iterdir())
    except OSError:  # no folder yet, or not a folder: nothing to sweep
        return
    cutoff = time.time() - STALE_TEMPORARY_S
    for path in paths:
        with contextlib.suppress(OSError):  # removed meanwhile, or a read-only folder
            if _TEMPORARY_FILE.fullmatch(path.name) and path.stat().st_mtime < cutoff:
                path.unlink()


def _evict_least_recently_used(folder: Path, keep: str) -> None:
    """Delete whole entries, least recently used first, until ``folder`` holds at most :data:`MAX_CACHE_BYTES`;
    never the entry whose stem is ``keep``."""
    entries: dict[str, list[tuple[Path, os.stat_result]]] = {}
    for path in folder.iterdir():
        if match := _ENTRY_FILE.fullmatch(path.name):
            with contextlib.suppress(FileNotFoundError):  # another process evicted it meanwhile
                entries.setdefault(match["stem"], []).append((path, path.stat()))
    total = sum(stat.st_size for files in entries.values() for _, stat in files)
    for stem in sorted(entries, key=lambda stem: max(stat.st_mtime for _, stat in entries[stem])):
        if total <= MAX_CACHE_BYTES:
            return
        if stem != keep:
            for path, stat in entries[stem]:
                path.unlink(missing_ok=True)
                total -= stat.st_size


def _try_load(data_path: Path, meta_path: Path, key: str, load: Callable[[Path], T]) -> tuple[dict[str, Any], T] | None:
    """The metadata and ``load(data_path)`` of a sound entry, which now counts as just used; ``None`` if there is
    no entry or it cannot be trusted (it is then discarded, with one line)."""
    _sweep_stale_temporaries(data_path.parent)
    if not (data_path.exists() or meta_path.exists()):
        return None
    try:
        metadata = _read_metadata(meta_path, key, data_path)
        loaded = load(data_path)
    except Exception as error:  # CacheEntryError, or NumPy refusing the file
        _discard((data_path, meta_path), str(error).splitlines()[0] if str(error) else type(error).__name__)
        return None
    with contextlib.suppress(OSError):  # a read-only cache still loads; its entries just keep their age
        os.utime(meta_path)
    return metadata, loaded


def _save_entry(name: str, key: str, data_path: Path, meta_path: Path, write: Callable[[Path], None],
                extra: dict[str, Any]) -> None:
    """Save an entry (the data, then its metadata with the data's checksum) and keep the folder under its cap. If
    the folder cannot take it, print one line and leave no half entry: the caller uses its result uncached."""
    try:
        _atomic_write(data_path, write, suffix=data_path.name[data_path.name.index(".") :])
        metadata = {"key": key, "sha256": _sha256_file(data_path), "name": name, **extra}
        _atomic_write(meta_path, lambda p: p.write_text(json.dumps(metadata, indent=1)), suffix=".json")
    except OSError as error:
        with contextlib.suppress(OSError):  # never leave data without its checksum, where it can be deleted
            data_path.unlink(missing_ok=True)
        print(f"[mlbook.cache] could not save {name} in {data_path.parent} ({error.strerror or error}); using the "
              f"result without caching (free some space or set {CACHE_ENV_VAR} to a writable folder).")
        return
    _evict_least_recently_used(data_path.parent, keep=data_path.name.split(".")[0])


def _discard(paths: tuple[Path, ...], reason: str) -> None:
    print(f"[mlbook.cache] discarding cached {paths[0].name}: {reason}; recomputing.")
    for path in paths:
        with contextlib.suppress(OSError):  # a read-only cache: the result is recomputed all the same
            path.unlink(missing_ok=True)


def load_or_train(
    model: keras.Model,
    name: str,
    config: Mapping[str, Any],
    train: Callable[[keras.Model], Mapping[str, Any] | None],
    profile: str | None = None,
) -> TrainedModel:
    """Load ``model``'s weights from the cache, or train it with ``train(model)`` and cache the result.

    Args:
        model: a *built* Keras model (its variables exist), whose weights are set in place.
        name: a short file-name-safe name for the model, e.g. ``"vae-dense"``.
        config: everything that changes the trained weights (sizes, epochs, learning rate, seed...), the data
            included: an ``ImageDataset``'s ``source``, so that weights trained on substitute data are never
            loaded for the real data.
        train: trains the model in place; may return a Keras ``History`` or a mapping of per-epoch values.
        profile: the profile that the key includes (default: the current one).

    Returns:
        A :class:`TrainedModel`; ``history`` is the training history, stored beside the weights.

    A model loaded from the cache has its weights but not its optimizer state: compile it before training it
    further, as after building it. A trained model that cannot be saved (full disk, read-only folder) is returned
    all the same, uncached, with one line that names the folder and the reason.

    Raises:
        ValueError: if the model is not built or the config is not JSON-serialisable.
    """
    if not getattr(model, "built", False):
        raise ValueError(f"model {name!r} must be built (call it on a batch or build() it) before caching")
    key = cache_key(name, config, profile)
    weights_path, meta_path = _entry_paths(name, key, ".weights.npz")
    hit = _try_load(weights_path, meta_path, key, lambda path: _set_weights_from(model, path))
    if hit is not None:
        return TrainedModel(model, hit[0].get("history", {}), True, weights_path)
    result = train(model)
    history = _history_as_lists(getattr(result, "history", result) or {})
    _save_entry(name, key, weights_path, meta_path, lambda path: _save_weights_to(model, path), {"history": history})
    return TrainedModel(model, history, False, weights_path)


#: The metadata key of a settings field that :func:`evaluation_only` marks.
EVALUATION_ONLY = "mlbook.evaluation_only"


def evaluation_only(default: Any = dataclasses.MISSING) -> Any:
    """A settings dataclass field that does not change what training produces (the weights and the recorded
    history): what a chapter plots, samples or scores afterwards. :func:`weights_config` leaves it out of keys,
    so changing it loads the cached weights instead of training again."""
    return dataclasses.field(default=default, metadata={EVALUATION_ONLY: True})


def weights_config(settings: Any, **extra: Any) -> dict[str, Any]:
    """The config that keys a model's weights: every field of the settings dataclass ``settings`` except those
    marked :func:`evaluation_only` (nested settings likewise), plus ``extra`` (the seed, the data's source...).

    Every value is described by :func:`describe_for_key`, so arrays enter by their contents.
    """
    if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
        raise TypeError(f"expected a settings dataclass instance, got {type(settings).__name__}")
    fields = {field.name: describe_for_key(getattr(settings, field.name))
              for field in dataclasses.fields(settings) if not field.metadata.get(EVALUATION_ONLY)}
    return {**fields, **{name: describe_for_key(value) for name, value in extra.items()}}


def describe_for_key(value: Any) -> Any:
    """A JSON-serialisable stand-in for ``value`` that changes whenever ``value`` would change a training run.

    Numbers, strings, booleans and ``None`` stand for themselves; arrays for their shape, dtype and the SHA-256 of
    their bytes; settings dataclasses for their :func:`weights_config`; sequences and mappings item by item; any
    other object (an optimizer, a loss, a callback) for its
    class name and its public attributes that can be described this way.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return weights_config(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) or type(value).__name__ in ("EagerTensor", "Variable", "ResourceVariable"):
        array = np.ascontiguousarray(np.asarray(value))
        return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": hashlib.sha256(array.data).hexdigest()}
    if isinstance(value, Mapping):
        return {str(key): describe_for_key(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe_for_key(item) for item in value]
    attributes = {name: describe_for_key(item) for name, item in sorted(vars(value).items())
                  if not name.startswith("_") and (item is None or isinstance(item, (bool, int, float, str)))}
    return {"class": type(value).__name__, **attributes}


@dataclasses.dataclass(frozen=True)
class CachedModel:
    """A compiled model whose :meth:`fit` trains it once and, on every later call with the same arguments, loads
    the weights that run saved. Made by :func:`cached`."""

    model: Any
    name: str
    config: Mapping[str, Any]

    def fit(self, *args: Any, **kwargs: Any) -> TrainedModel:
        """``model.fit(*args, **kwargs)``, or the weights and history of an earlier identical call.

        The cache key holds the model's name and config, the weight shapes, the optimizer's and the loss's
        settings, every argument of the call (arrays by their contents, callbacks by their settings) and, as in
        every key of :func:`load_or_train`, the profile, the package source and the runtime. Inputs that are not
        arrays (a ``tf.data`` pipeline, a ``PyDataset``) are keyed by their class only, so describe their data in
        ``config``.
        """
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError(f"compile model {self.name!r} before fitting it")
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        key_config = {
            **self.config,
            "weight_shapes": [list(weight.shape) for weight in model.weights],
            # the optimizer's name is numbered per session ("sgd_1"), so its class stands in for it
            "optimizer": [type(model.optimizer).__name__,
                          describe_for_key({k: v for k, v in model.optimizer.get_config().items() if k != "name"})],
            "loss": describe_for_key(model.loss),
            "fit": describe_for_key({"args": args, **kwargs}),
        }
        return load_or_train(model, self.name, key_config, lambda compiled: compiled.fit(*args, **kwargs))


def cached(model: keras.Model, name: str, **config: Any) -> CachedModel:
    """Wrap a compiled model so that ``cached(model, name, seed=0).fit(x, y, epochs=5)`` trains it only once.

    Args:
        model: a compiled, built Keras model.
        name: a short file-name-safe name for the cache entry, e.g. ``"news"``.
        config: whatever else changes the trained weights and is not an argument of ``fit`` (e.g. the seed that
            drew the initial weights, or the source of a data pipeline).
    """
    return CachedModel(model, name, config)


def _save_weights_to(model: keras.Model, path: Path) -> None:
    """The model's weights only, in ``model.weights`` order. Keras's own ``save_weights`` also stores the optimizer's
    state, which a freshly compiled model cannot receive (its optimizer has no variables until it trains)."""
    with open(path, "wb") as stream:
        np.savez(stream, *[np.asarray(w) for w in model.get_weights()])


def _set_weights_from(model: keras.Model, path: Path) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = [archive[f"arr_{i}"] for i in range(len(archive.files))]
    expected = [tuple(w.shape) for w in model.weights]
    found = [a.shape for a in arrays]
    if found != expected:
        raise CacheEntryError(f"weights have shapes {found[:4]}… for a model that expects {expected[:4]}…")
    model.set_weights(arrays)


def array_fingerprint(array: np.ndarray) -> str:
    """A short SHA-256 of an array's shape and bytes, to key cached results on the images and filters they used."""
    array = np.ascontiguousarray(array)
    return hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()[:16]


def load_or_compute_arrays(
    name: str,
    config: Mapping[str, Any],
    compute: Callable[[], Mapping[str, np.ndarray]],
    profile: str | None = None,
) -> tuple[dict[str, np.ndarray], bool]:
    """Like :func:`load_or_train` for results that are NumPy arrays (e.g. an optimised image).

    Returns:
        ``(arrays, from_cache)``.
    """
    key = cache_key(name, config, profile)
    data_path, meta_path = _entry_paths(name, key, ".npz")
    hit = _try_load(data_path, meta_path, key, _read_arrays)
    if hit is not None:
        return hit[1], True
    arrays = {k: np.asarray(v) for k, v in compute().items()}

    def write(path: Path) -> None:
        with open(path, "wb") as stream:
            np.savez(stream, **arrays)

    _save_entry(name, key, data_path, meta_path, write, {})
    return arrays, False


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _history_as_lists(history: Mapping[str, Any]) -> dict[str, list[float]]:
    return {str(k): [float(v) for v in np.ravel(np.asarray(values, dtype=float))] for k, values in history.items()}
