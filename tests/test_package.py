"""The package on its own: `pip install ./code` into a fresh virtual environment, then import every module."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = sorted(p.stem for p in (REPO_ROOT / "code/src/mlbook").glob("*.py") if not p.stem.startswith("_"))
BOOK_TOOLING = ("jupyter_book", "sphinx", "myst_nb", "pytest", "jupytext")


@pytest.mark.slow
def test_fresh_virtual_environment_imports_every_module_without_book_tooling(tmp_path):
    venv.create(tmp_path / "env", with_pip=True)
    python = tmp_path / "env/bin/python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # The runtime pins (tensorflow-cpu: the generic `tensorflow` that pyproject.toml names is a 600 MB CUDA-capable
    # download; the CPU build is the same API), then the package itself from this checkout, with no book tooling.
    subprocess.run(pip + ["-r", str(REPO_ROOT / "requirements/runtime-cpu.txt"),
                          "-c", str(REPO_ROOT / "requirements/constraints.txt")], check=True)
    subprocess.run(pip + ["--no-deps", str(REPO_ROOT / "code")], check=True)
    imports = "; ".join(f"import mlbook.{name}" for name in PUBLIC_MODULES)
    check = (
        f"import importlib.util, mlbook; {imports}; "
        f"print(mlbook.compare.published_results('quick')['profile']); "  # the book's numbers are package data
        f"print(mlbook.__file__); "
        f"print([m for m in {BOOK_TOOLING!r} if importlib.util.find_spec(m)])"
    )
    result = subprocess.run([str(python), "-c", check], capture_output=True, text=True, cwd=tmp_path,
                            env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    shipped, location, tooling = result.stdout.strip().splitlines()[-3:]
    assert shipped == "quick", "the wheel lacks mlbook/published/results-quick.json"
    assert location.startswith(str(tmp_path / "env")), f"imported from {location}, not the fresh install"
    assert tooling == "[]", f"book tooling present in a runtime-only install: {tooling}"


def test_package_metadata_declares_the_runtime_dependencies():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "code/pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0].split(";")[0].strip() for dep in project["dependencies"]}
    assert {"numpy", "tensorflow", "matplotlib", "scikit-learn", "pillow"} <= names
    assert not names & {"jupyter-book", "sphinx", "myst-nb", "pytest"}, "book/test tooling is not a runtime dependency"
    pinned = {line.split("==")[0] for line in (REPO_ROOT / "requirements/runtime-cpu.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    assert names - {"tensorflow"} <= pinned and "tensorflow-cpu" in pinned  # the book's CPU environment pins them all


def test_the_build_backend_is_pinned_exactly():
    """``pip install ./code`` builds in isolation, fetching the build requirements: a range would fetch whatever
    is newest on the day."""
    import tomllib

    requires = tomllib.loads((REPO_ROOT / "code/pyproject.toml").read_text())["build-system"]["requires"]
    assert requires and all("==" in requirement for requirement in requires), requires
