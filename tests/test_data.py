import contextlib
import functools
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from mlbook import data


def write_tiny_mnist(path, n_train=12, n_test=5, seed=0):
    """A small file in the real on-disk format of Keras's mnist.npz (uint8 images, uint8 labels)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    np.savez_compressed(path, **arrays)
    return arrays


def test_read_mnist_npz_reads_the_keras_format(tmp_path):
    arrays = write_tiny_mnist(tmp_path / "mnist.npz")
    x_train, y_train, x_test, y_test = data.read_mnist_npz(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_read_mnist_npz_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        data.read_mnist_npz(tmp_path / "nowhere.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        data.read_mnist_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="missing arrays"):
        data.read_mnist_npz(tmp_path / "partial.npz")
    np.savez(tmp_path / "shape.npz", x_train=np.zeros((2, 8, 8)), y_train=np.zeros(2),
             x_test=np.zeros((1, 28, 28)), y_test=np.zeros(1))
    with pytest.raises(ValueError, match=r"x_train of shape \(n, 28, 28\), got \(2, 8, 8\)"):
        data.read_mnist_npz(tmp_path / "shape.npz")


def test_full_profile_loads_real_mnist_file(tmp_path, monkeypatch):
    arrays = write_tiny_mnist(tmp_path / "mnist.npz")
    monkeypatch.setattr(data, "download", lambda url, filename, sha256, timeout=0: tmp_path / filename)
    dataset = data.load_mnist_like("full")
    assert dataset.source == "mnist"
    assert dataset.x_train.shape == (12, 28, 28, 1) and dataset.x_train.dtype == np.float32
    np.testing.assert_allclose(dataset.x_train[..., 0], arrays["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(dataset.y_test, arrays["y_test"])


def test_full_profile_falls_back_with_one_line(capsys):
    dataset = data.load_mnist_like("full")  # MLBOOK_OFFLINE=1 in the tests
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "MNIST unavailable" in lines[0] and "digits" in lines[0]
    assert dataset.source == "sklearn-digits"


def test_quick_digits_are_laid_out_like_mnist():
    dataset = data.load_mnist_like()
    assert dataset.source == "sklearn-digits"
    assert dataset.x_train.shape[1:] == (28, 28, 1) and len(dataset.x_train) + len(dataset.x_test) == 1797
    assert dataset.num_classes == 10 and set(np.unique(dataset.y_test)) == set(range(10))
    images = np.concatenate([dataset.x_train, dataset.x_test])[..., 0]
    assert images.min() >= 0.0 and images.max() <= 1.0
    border = np.ones((28, 28), bool)
    border[4:24, 4:24] = False
    assert images[:, border].max() == 0.0  # nothing outside the centred 20×20 box, as in MNIST
    assert images[:, 4:24, 4:24].max() > 0.9


def test_digits_as_mnist_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        data.digits_as_mnist(np.zeros((8, 8)))


def test_check_mnist_images_rejects_unscaled_or_misshapen_images():
    images = np.ones((2, 28, 28, 1))
    checked = data.check_mnist_images(images)
    assert checked.dtype == np.float32 and checked.shape[1:] == data.MNIST_IMAGE_SHAPE
    with pytest.raises(ValueError, match=r"scaled to \[0, 1\], got values in \[0, 2\d\d\]"):
        data.check_mnist_images((images * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"shape \(n, 28, 28, 1\), got \(2, 784\)"):
        data.check_mnist_images(np.zeros((2, 784)))


def test_download_verifies_checksum_and_writes_atomically(tmp_path, monkeypatch):
    monkeypatch.delenv("MLBOOK_OFFLINE")
    source = tmp_path / "remote.bin"
    source.write_bytes(b"payload" * 100)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(data.DownloadError, match="checksum mismatch"):
        data.download(source.as_uri(), "copy.bin", "0" * 64)
    assert list(data.data_dir().glob("*")) == []  # no half or wrong file left behind
    path = data.download(source.as_uri(), "copy.bin", good)
    assert path.read_bytes() == source.read_bytes()
    source.unlink()
    assert data.download(source.as_uri(), "copy.bin", good) == path  # served from disk, no network


def test_offline_download_fails_at_once():
    start = time.perf_counter()
    with pytest.raises(data.DownloadError, match="MLBOOK_OFFLINE"):
        data.download("http://example.invalid/mnist.npz", "mnist.npz", "0" * 64)
    assert time.perf_counter() - start < 1.0


def test_silent_server_times_out_instead_of_hanging(monkeypatch):
    """A server that accepts and never answers must cost the timeout, not hang the build."""
    monkeypatch.delenv("MLBOOK_OFFLINE")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)
    done = threading.Event()

    def accept_and_stay_silent() -> None:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            done.wait(10)

    silent = threading.Thread(target=accept_and_stay_silent, daemon=True)
    silent.start()
    start = time.perf_counter()
    try:
        with pytest.raises(data.DownloadError, match="timed out|timeout"):
            data.download(f"http://127.0.0.1:{server.getsockname()[1]}/mnist.npz", "mnist.npz", "0" * 64, timeout=1.0)
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        silent.join()
        server.close()
    # generous bound: the timeout is 1 s per blocking read; a hang would be minutes
    assert elapsed < 10.0


@contextlib.contextmanager
def local_server(send: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1, in a thread, that answers every GET with ``send(handler)``; yields a URL."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with contextlib.suppress(OSError):  # the client gave up: the point of these tests
                send(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data.bin"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """A byte every 0.2 s: each read is quick, so a per-read timeout never fires."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.2)


def flood(handler: BaseHTTPRequestHandler, size: int = 4096, announce: bool = False) -> None:
    handler.send_response(200)
    if announce:
        handler.send_header("Content-Length", str(size))
    handler.end_headers()
    handler.wfile.write(b"x" * size)


def test_a_trickling_download_stops_at_its_deadline(monkeypatch):
    monkeypatch.delenv("MLBOOK_OFFLINE")
    start = time.perf_counter()
    with local_server(trickle) as url, pytest.raises(data.DownloadError, match="deadline"):
        data.download(url, "trickle.bin", "0" * 64, timeout=5.0, deadline=1.0)
    assert time.perf_counter() - start < 4.0  # the whole body would take 20 s
    assert list(data.data_dir().iterdir()) == []


@pytest.mark.parametrize("announce", [False, True], ids=["streamed", "content-length"])
def test_a_download_larger_than_the_cap_is_refused(announce, monkeypatch):
    monkeypatch.delenv("MLBOOK_OFFLINE")
    with (local_server(functools.partial(flood, announce=announce)) as url,
          pytest.raises(data.DownloadError, match="larger than 1,024 bytes")):
        data.download(url, "flood.bin", "0" * 64, max_bytes=1024)
    assert list(data.data_dir().iterdir()) == []


@pytest.mark.parametrize("blocked", ["MLBOOK_DATA is a file", "the datasets folder is a file"])
def test_an_unusable_data_folder_falls_back_in_one_line_without_the_network(blocked, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "datasets"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("MLBOOK_PROFILE", "full")
    monkeypatch.delenv("MLBOOK_OFFLINE")
    if blocked == "MLBOOK_DATA is a file":
        monkeypatch.setenv("MLBOOK_DATA", str(blocker))
    else:
        monkeypatch.delenv("MLBOOK_DATA")
        monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *args, **kwargs: pytest.fail("reached the network"))
    dataset = data.load_mnist_like()
    lines = capsys.readouterr().out.strip().splitlines()
    assert dataset.source == "sklearn-digits"
    assert len(lines) == 1 and "MNIST unavailable" in lines[0] and str(blocker) in lines[0], lines
