"""Shared fixtures. Every test runs with a fresh weights cache and data folder, offline, in the quick profile,
so a machine's leftover cache or downloads can never hide a broken model or loader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter only


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLBOOK_CACHE", str(tmp_path_factory.mktemp("mlbook-cache")))
    monkeypatch.setenv("MLBOOK_DATA", str(tmp_path_factory.mktemp("mlbook-data")))
    monkeypatch.setenv("MLBOOK_OFFLINE", "1")
    monkeypatch.delenv("MLBOOK_PROFILE", raising=False)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
