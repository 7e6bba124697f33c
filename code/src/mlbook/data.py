"""Datasets: one interface per dataset, whatever the source.

The ``full`` profile loads the real dataset (downloaded once, checked against its SHA-256, kept in the Keras
datasets folder). The ``quick`` profile — and ``full`` when a download fails — uses data that packages ship, and
says so in one line. No call here can hang: a download has a timeout per read, an overall deadline and a size cap
(:data:`DOWNLOAD_TIMEOUT_S`, :data:`DOWNLOAD_DEADLINE_S`, :data:`DOWNLOAD_MAX_BYTES`), a data folder that cannot be
written fails it before any network access, and ``MLBOOK_OFFLINE=1`` skips downloads. Models of MNIST-shaped digits
check their inputs with :func:`check_mnist_images`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from mlbook.profiles import resolve_profile

OFFLINE_ENV_VAR = "MLBOOK_OFFLINE"
DATA_DIR_ENV_VAR = "MLBOOK_DATA"
DOWNLOAD_TIMEOUT_S = 15.0
#: The most a whole download may take: a server that trickles bytes never trips the per-read timeout.
DOWNLOAD_DEADLINE_S = 300.0
#: The largest file a download accepts (the largest dataset here, text8.zip, is about 31 MB).
DOWNLOAD_MAX_BYTES = 256 * 2**20

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_SIDE = 28
#: MNIST-shaped images as the models take them: 28×28 pixels, one grey channel, values in [0, 1].
MNIST_IMAGE_SHAPE: tuple[int, int, int] = (MNIST_SIDE, MNIST_SIDE, 1)
MNIST_NUM_PIXELS = MNIST_SIDE * MNIST_SIDE
#: MNIST's digits fit a 20×20 box centred on the 28×28 canvas; the offline digits are laid out the same way.
DIGIT_BOX = 20


class DownloadError(RuntimeError):
    """A dataset could not be downloaded (offline, unwritable data folder, timeout, past the deadline or the
    size cap, HTTP error or wrong checksum)."""


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """Images in [0, 1] as ``(n, height, width, channels)`` float32, integer labels, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    description: str

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def check_mnist_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Return ``images`` as float32 after checking that they are ``(n, 28, 28, 1)`` and scaled to [0, 1].

    Raises:
        ValueError: on another shape, or on values outside [0, 1] (e.g. 8-bit images not divided by 255).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != MNIST_IMAGE_SHAPE:
        raise ValueError(f"expected {name} of shape (n, 28, 28, 1), got {images.shape}")
    low, high = float(images.min(initial=0.0)), float(images.max(initial=0.0))
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"expected {name} scaled to [0, 1], got values in [{low:g}, {high:g}] (divide 8-bit images by 255)"
        )
    return images.astype(np.float32, copy=False)


def data_dir() -> Path:
    """Where downloaded files live: ``$MLBOOK_DATA``, else Keras's own datasets folder (so files are shared)."""
    if os.environ.get(DATA_DIR_ENV_VAR):
        return Path(os.environ[DATA_DIR_ENV_VAR])
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "datasets"


def is_offline() -> bool:
    """True when ``MLBOOK_OFFLINE`` is set to a true value (1, true, yes)."""
    return os.environ.get(OFFLINE_ENV_VAR, "").strip().lower() in {"1", "true", "yes"}


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``algorithm`` as :func:`hashlib.new` names it), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, filename: str, checksum: str, timeout: float = DOWNLOAD_TIMEOUT_S,
             deadline: float = DOWNLOAD_DEADLINE_S, max_bytes: int = DOWNLOAD_MAX_BYTES,
             algorithm: str = "sha256") -> Path:
    """Return the local copy of ``url`` (downloading it once), verified against ``checksum``.

    The file is written to a temporary name and renamed when complete, so an interrupted download never
    leaves a half file behind.

    Args:
        checksum: the file's expected hex digest.
        timeout: seconds each connect or read may wait.
        deadline: seconds the whole download may take.
        max_bytes: the largest file accepted.
        algorithm: the digest ``checksum`` is, SHA-256 unless a publisher gives only another (VGG19's MD5).

    Raises:
        DownloadError: offline (``MLBOOK_OFFLINE``), a data folder that cannot be written, network error, timeout,
            past the deadline, larger than ``max_bytes`` or checksum mismatch.
    """
    target = data_dir() / filename
    if target.is_file() and file_digest(target, algorithm) == checksum:
        return target
    if is_offline():
        raise DownloadError(f"{OFFLINE_ENV_VAR} is set")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{filename}.", suffix=".part")
    except OSError as error:
        reason = "a file, not a folder" if target.parent.is_file() else error.strerror or str(error)
        raise DownloadError(f"cannot write to the data folder {target.parent} ({reason}); set {DATA_DIR_ENV_VAR} to "
                            f"a writable folder") from error
    try:
        with os.fdopen(handle, "wb") as out:
            _fetch(url, out, timeout, deadline, max_bytes)
        actual = file_digest(Path(temp_name), algorithm)
        if actual != checksum:
            raise DownloadError(f"{url}: checksum mismatch (expected {checksum[:12]}…, got {actual[:12]}…)")
        os.replace(temp_name, target)
    except DownloadError:
        raise
    except Exception as error:  # urllib raises many types (URLError, timeout, ConnectionError, ...)
        raise DownloadError(f"{url}: {type(error).__name__}: {error}") from error
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
    return target


def _fetch(url: str, out: io.BufferedWriter, timeout: float, deadline: float, max_bytes: int) -> None:
    """Copy ``url`` into ``out``; a DownloadError once past ``deadline`` seconds or ``max_bytes`` bytes. Each read
    returns what has arrived (``read1``), so the deadline is checked at least every ``timeout`` seconds."""
    give_up_at = time.monotonic() + deadline
    too_large = DownloadError(f"{url}: larger than {max_bytes:,} bytes (the download size cap)")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        if int(response.headers.get("Content-Length") or 0) > max_bytes:
            raise too_large
        received = 0
        while block := response.read1(1 << 16):
            received += len(block)
            if received > max_bytes:
                raise too_large
            if time.monotonic() > give_up_at:
                raise DownloadError(f"{url}: not complete after {deadline:g} s (the download deadline)")
            out.write(block)


def announce_fallback(wanted: str, reason: str, used: str) -> None:
    """Print the one line that says which substitute dataset a chapter uses and why."""
    print(f"[mlbook.data] {wanted} unavailable ({reason}); using {used} instead.")


# --- MNIST and its offline stand-in ---------------------------------------------------------------------------


def read_mnist_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read an ``mnist.npz`` in Keras's format: uint8 ``x_*`` of shape (n, 28, 28) and integer ``y_*``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a readable npz with the four arrays of the right shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MNIST file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, AttributeError) as error:
        # np.load treats a file that is not a zip as a pickle and refuses it with ValueError
        raise ValueError(f"{path} is not a readable .npz file ({error})") from error
    missing = [key for key in MNIST_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path} is missing arrays {missing}; expected {list(MNIST_KEYS)}")
    x_train, y_train, x_test, y_test = (arrays[key] for key in MNIST_KEYS)
    for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if images.ndim != 3 or images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
            raise ValueError(f"{path}: expected x_{split} of shape (n, 28, 28), got {images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(f"{path}: expected y_{split} of shape ({len(images)},), got {labels.shape}")
    return x_train, y_train, x_test, y_test


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    resized = Image.fromarray(image.astype(np.float32), mode="F").resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def digits_as_mnist(images: np.ndarray, box: int = DIGIT_BOX, side: int = MNIST_SIDE) -> np.ndarray:
    """Lay small digit images out like MNIST: scale to [0, 1], resize to ``box``×``box``, centre on ``side``×``side``.

    Args:
        images: ``(n, h, w)`` grey images with values in [0, 16] (scikit-learn's digits).

    Returns:
        ``(n, side, side)`` float32 in [0, 1].
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"expected digit images of shape (n, h, w), got {images.shape}")
    if not 0 < box <= side:
        raise ValueError(f"expected 0 < box <= side, got box={box}, side={side}")
    canvas = np.zeros((len(images), side, side), dtype=np.float32)
    offset = (side - box) // 2
    for i, image in enumerate(images / 16.0):
        canvas[i, offset : offset + box, offset : offset + box] = _resize(image, box)
    return np.clip(canvas, 0.0, 1.0)


def load_digits_as_mnist(test_fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """scikit-learn's bundled 8×8 digits (1,797 images), laid out like MNIST and split, stratified, in two."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits_as_mnist(digits.images)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return ImageDataset(
        x_train, y_train, x_test, y_test,
        source="sklearn-digits",
        description=f"scikit-learn's digits ({len(images):,} images, 8×8 → 20×20 centred on 28×28)",
    )


def load_mnist_files() -> ImageDataset:
    """Real MNIST (60,000 + 10,000 images), downloaded once. Raises :class:`DownloadError` if unavailable."""
    x_train, y_train, x_test, y_test = read_mnist_npz(download(MNIST_URL, "mnist.npz", MNIST_SHA256))

    def scale(images: np.ndarray) -> np.ndarray:
        return (images.astype(np.float32) / 255.0)[..., None]

    return ImageDataset(
        scale(x_train), y_train.astype(np.int64), scale(x_test), y_test.astype(np.int64),
        source="mnist", description=f"MNIST ({len(x_train):,} training and {len(x_test):,} test images)",
    )


def load_mnist_like(profile: str | None = None) -> ImageDataset:
    """MNIST-like digits for the profile: real MNIST in ``full`` (falling back on failure), digits in ``quick``.

    Returns:
        An :class:`ImageDataset` of ``(n, 28, 28, 1)`` images in [0, 1] with labels 0–9; ``source`` is
        ``"mnist"`` or ``"sklearn-digits"``.
    """
    profile = resolve_profile(profile)
    if profile == "full":
        try:
            return load_mnist_files()
        except (DownloadError, ValueError) as error:
            fallback = load_digits_as_mnist()
            announce_fallback("MNIST", str(error), fallback.description)
            return fallback
    return load_digits_as_mnist()
