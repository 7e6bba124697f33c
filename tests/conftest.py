"""Shared fixtures. Every test runs with a fresh weights cache and data folder, offline, in the quick profile,
so a machine's leftover cache or downloads can never hide a broken model or loader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter only


def build_environment(**overrides: str) -> dict[str, str]:
    """The environment for a book build started from a test: this process's, with ``overrides``, and without
    ``PYTEST_CURRENT_TEST``. ipykernel stops capturing a kernel's native (fd-level) stderr when that variable is
    set, so a build that inherited it would run its kernels unlike ``make book`` does."""
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}
    return {**env, **overrides}


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLBOOK_CACHE", str(tmp_path_factory.mktemp("mlbook-cache")))
    monkeypatch.setenv("MLBOOK_DATA", str(tmp_path_factory.mktemp("mlbook-data")))
    monkeypatch.setenv("MLBOOK_OFFLINE", "1")
    monkeypatch.delenv("MLBOOK_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """Close every matplotlib figure a test leaves open (only if the test imported pyplot)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole book built once per test session in the quick profile, offline, with a fresh weights cache,
    into a temporary folder; returns its HTML folder. A failed build fails every test that uses it.

    While working on a test, ``MLBOOK_BOOK_HTML=<an already built _build/html>`` skips the build."""
    if os.environ.get("MLBOOK_BOOK_HTML"):
        return Path(os.environ["MLBOOK_BOOK_HTML"])
    output = tmp_path_factory.mktemp("book")
    env = build_environment(MLBOOK_PROFILE="quick", MLBOOK_CACHE=str(output / "weights-cache"), MLBOOK_OFFLINE="1")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(REPO_ROOT), "--path-output", str(output), "-W", "--keep-going"],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    return output / "_build" / "html"


#: Headless Chromium without sandbox (root) and without the background traffic a closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_executable() -> str | None:
    """Debian's ``chromium`` (this machine and CI), else a preinstalled Chrome (GitHub's ubuntu runners)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium driven by Playwright (never `playwright install`: it downloads browsers)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install playwright (requirements/test.txt)")
    executable = chromium_executable()
    if executable is None:
        pytest.fail("Chromium not found: apt-get install -y --no-install-recommends chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
