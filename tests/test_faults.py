"""Faults and bad input: an interrupted build, an unwritable or full cache folder, figures in dark mode.

Other faults are tested beside the code they concern: corrupt weights (test_cache), unknown profiles
(test_profiles, test_build_extension), failed and hanging downloads (test_data)."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
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


def test_a_cache_folder_that_cannot_be_created_is_named_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MLBOOK_CACHE", str(blocker / "cache"))
    with pytest.raises(cache.CacheWriteError, match=r"cannot write to the cache folder .*not-a-folder.*MLBOOK_CACHE"):
        cache.load_or_train(tiny_model(), "tiny", {}, lambda m: pytest.fail("trained before checking the folder"))


def test_a_read_only_cache_folder_is_named_before_training(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cache.tempfile, "TemporaryFile", refuse)  # root ignores chmod, so refuse like a RO mount
    with pytest.raises(cache.CacheWriteError, match="Permission denied"):
        cache.load_or_train(tiny_model(), "tiny", {}, lambda m: pytest.fail("trained before checking the folder"))


def test_a_full_disk_while_writing_weights_is_a_clear_error_and_leaves_no_entry(monkeypatch):
    def disk_full(model, path):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "_save_weights_to", disk_full)
    with pytest.raises(cache.CacheWriteError, match="No space left on device"):
        cache.load_or_train(tiny_model(), "tiny", {}, lambda m: None)
    assert not any(cache.cache_dir().iterdir()), sorted(p.name for p in cache.cache_dir().iterdir())
    monkeypatch.undo()


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
