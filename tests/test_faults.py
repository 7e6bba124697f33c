"""Faults and bad input: an interrupted build, an unwritable, read-only or full cache folder, figures in
dark mode.

Other faults are tested beside the code they concern: corrupt weights (test_cache), unknown profiles
(test_profiles, test_build_extension), failed and hanging downloads (test_data)."""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import build_environment
from mlbook import cache
from test_build_extension import PAGE, make_book

TRAINING_PAGE = PAGE[: PAGE.index("```{code-cell}")] + """\
```{code-cell} ipython3
import os, pathlib, time
import keras
from mlbook.cache import load_or_train

def train(model):
    pathlib.Path(os.environ["TRAINING_STARTED"]).touch()
    time.sleep(float(os.environ.get("TRAIN_SECONDS", "0")))
    model.set_weights([w + 1.0 for w in model.get_weights()])

model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
trained = load_or_train(model, "tiny", {"units": 1}, train)
print("RESULT:", "from cache" if trained.from_cache else "trained now")
```
"""


def tiny_model() -> keras.Model:
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def start_build(root: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``jupyter-book build`` in its own process group (so the kernel it starts can be killed with it)."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    with log.open("w") as stream:
        return subprocess.Popen([str(jupyter_book), "build", str(root), "-W"], env=env, stdout=stream,
                                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_a_build_killed_during_execution_is_rebuilt_and_serves_nothing_half_written(tmp_path, monkeypatch):
    root = make_book(tmp_path / "book")
    (root / "page.md").write_text(TRAINING_PAGE)
    weights = tmp_path / "weights"
    env = build_environment(MLBOOK_CACHE=str(weights), TRAINING_STARTED=str(tmp_path / "started"),
                            RUN_LOG=str(tmp_path / "runs.log"))

    log = tmp_path / "killed-build.log"
    build = start_build(root, {**env, "TRAIN_SECONDS": "120"}, log)
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists():
        assert build.poll() is None, f"the build ended before training:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.2)
    os.killpg(build.pid, signal.SIGKILL)  # the build and its kernel, mid-training
    build.wait(timeout=30)
    assert not list(weights.glob("*.json")), "a killed run left a cache entry"

    rebuild = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "-W"],
                             env=env, capture_output=True, text=True)
    assert rebuild.returncode == 0, rebuild.stdout[-3000:] + rebuild.stderr[-2000:]
    page = (root / "_build/html/page.html").read_text()
    assert "RESULT: trained now" in page, "the rebuild must execute and train, not reuse anything from the kill"
    assert len(list(weights.glob("tiny-*.weights.npz"))) == 1 and not list(weights.glob(".*")), (
        sorted(p.name for p in weights.iterdir()))

    monkeypatch.setenv("MLBOOK_CACHE", str(weights))
    trained = cache.load_or_train(tiny_model(), "tiny", {"units": 1}, lambda m: pytest.fail("retrained"))
    assert trained.from_cache  # the entry the rebuild wrote is complete and loads


#: The one line the cache prints when it cannot save a result (the result is used anyway).
UNSAVED_LINE = r"^\[mlbook\.cache\] could not save tiny in {folder} \({reason}\); using the result without caching"

ENTRY_POINTS = ["load_or_train", "cached_fit", "load_or_compute_arrays"]


def compute_through(entry_point: str, calls: list[str]) -> tuple[bool, np.ndarray]:
    """Compute a tiny result named ``tiny`` through one of the cache's entry points, appending to ``calls`` each
    time it is computed rather than loaded; returns ``(from_cache, result)``."""
    if entry_point == "load_or_compute_arrays":
        arrays, from_cache = cache.load_or_compute_arrays("tiny", {}, lambda: calls.append("computed") or
                                                          {"result": np.arange(3.0)})
        return from_cache, arrays["result"]
    model = tiny_model()
    if entry_point == "load_or_train":
        def train(trained: keras.Model) -> None:
            calls.append("trained")
            trained.set_weights([w + 1.0 for w in trained.get_weights()])

        outcome = cache.load_or_train(model, "tiny", {}, train)
    else:
        model.compile(optimizer="sgd", loss="mse")
        counting = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: calls.append("fitted"))
        outcome = cache.cached(model, "tiny").fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0,
                                                  callbacks=[counting])
    return outcome.from_cache, outcome.model.get_weights()[0]


@pytest.fixture
def make_read_only(monkeypatch: pytest.MonkeyPatch):
    """Make a folder read-only: with chmod where it binds; as root (which chmod does not bind) by refusing every
    creation, removal, rename and time stamp of a file in it, as a read-only mount does."""
    chmodded: list[Path] = []

    def make(folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            chmodded.append(folder)
            return

        def inside(path: object) -> bool:
            return Path(os.fspath(path)).parent.resolve() == folder.resolve()

        def refuse_inside(original):
            def call(path, *args, **kwargs):
                if inside(path):
                    raise PermissionError(errno.EROFS, "Read-only file system", os.fspath(path))
                return original(path, *args, **kwargs)
            return call

        original_mkstemp = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == folder.resolve():
                raise PermissionError(errno.EROFS, "Read-only file system", os.fspath(dir))
            return original_mkstemp(*args, dir=dir, **kwargs)

        for name in ("unlink", "remove", "replace", "rename", "utime"):
            monkeypatch.setattr(os, name, refuse_inside(getattr(os, name)))
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    yield make
    for folder in chmodded:
        folder.chmod(0o755)


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_full_disk_while_saving_keeps_the_result_and_says_so_in_one_line(entry_point, monkeypatch, capsys):
    """The disk fills up after training: the trained result is returned, uncached, with one line that names the
    folder and the reason, and no half entry is left behind."""
    def disk_full(stream, *args, **kwargs):
        stream.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.np, "savez", disk_full)
    calls: list[str] = []
    from_cache, result = compute_through(entry_point, calls)
    assert not from_cache and len(calls) == 1 and result is not None
    lines = capsys.readouterr().out.strip().splitlines()
    folder = re.escape(str(cache.cache_dir()))
    assert len(lines) == 1 and re.match(UNSAVED_LINE.format(folder=folder, reason="No space left on device"),
                                        lines[0]), lines
    assert not any(cache.cache_dir().iterdir()), sorted(p.name for p in cache.cache_dir().iterdir())


def test_a_cache_folder_that_cannot_be_created_keeps_the_result_and_says_so_in_one_line(tmp_path, monkeypatch,
                                                                                         capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MLBOOK_CACHE", str(blocker / "cache"))
    calls: list[str] = []
    from_cache, _ = compute_through("load_or_train", calls)
    assert not from_cache and calls == ["trained"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "could not save tiny in" in lines[0] and "not-a-folder" in lines[0], lines


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_read_only_cache_holding_a_corrupt_entry_recomputes_and_says_it_cannot_save(entry_point, make_read_only,
                                                                                        capsys):
    calls: list[str] = []
    compute_through(entry_point, calls)
    for path in cache.cache_dir().glob("tiny-*.npz"):
        path.write_bytes(b"corrupt")
    make_read_only(cache.cache_dir())
    capsys.readouterr()
    from_cache, result = compute_through(entry_point, calls)
    assert not from_cache and len(calls) == 2 and result is not None
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "discarding cached tiny-" in lines[0], lines
    reason = "Permission denied" if os.geteuid() != 0 else "Read-only file system"
    assert re.match(UNSAVED_LINE.format(folder=re.escape(str(cache.cache_dir())), reason=reason), lines[1]), lines


@pytest.mark.slow
def test_figures_have_light_backgrounds_in_the_themes_dark_mode(built_book, browser):
    from PIL import Image

    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 1200})
    page = context.new_page()
    page.goto((built_book / "book/cnn/cnn-mnist.html").as_uri())
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    figures = page.locator(".cell_output img")
    assert figures.count() >= 3
    dark_backgrounds = []
    for index in range(figures.count()):
        figure = figures.nth(index)
        figure.scroll_into_view_if_needed()
        shot = np.asarray(Image.open(io.BytesIO(figure.screenshot())).convert("L"), dtype=float)
        border = np.concatenate([shot[:3].ravel(), shot[-3:].ravel(), shot[:, :3].ravel(), shot[:, -3:].ravel()])
        # the theme dims images in dark mode (brightness 0.8): a white figure reads ~180, a transparent one ~20
        if np.median(border) < 128:
            dark_backgrounds.append((index, float(np.median(border))))
    page_background = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("L"), dtype=float)[5:40, 5:40]
    context.close()
    assert np.median(page_background) < 80, "the page itself should be dark in dark mode"
    assert not dark_backgrounds, f"figures drawn on a dark (transparent) background in dark mode: {dark_backgrounds}"
