"""The build extensions on small books: the execution cache follows the package (tools/mlbook_build.py), and
uncached chapters run several at a time before Sphinx reads them (tools/mlbook_execute.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import mlbook_build  # noqa: E402
import mlbook_execute  # noqa: E402
from sphinx.errors import ConfigError  # noqa: E402

NOTEBOOK_HEADER = """\
---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

PAGE = NOTEBOOK_HEADER + """\
# Page

```{code-cell} ipython3
import os, pathlib
with pathlib.Path(os.environ["RUN_LOG"]).open("a") as log:
    log.write(os.environ.get("MLBOOK_PROFILE", "quick") + "\\n")
print("executed")
```
"""


def make_book(root: Path) -> Path:
    (root / "code/src/mlbook").mkdir(parents=True)
    (root / "code/src/mlbook/model.py").write_text("LAYERS = 2\n")
    (root / "requirements").mkdir()
    (root / "requirements/book.txt").write_text("sphinx==7.4.7\n")
    shutil.copytree(REPO_ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "_config.yml").write_text(textwrap.dedent("""\
        title: mini
        only_build_toc_files: true
        exclude_patterns: [_build, code, tools, requirements]
        execute: {execute_notebooks: cache, raise_on_error: true}
        sphinx: {local_extensions: {mlbook_build: ./tools}}
        """))
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n")
    (root / "intro.md").write_text("# Mini\n\nProfile {{ mlbook_profile }}.\n")
    (root / "page.md").write_text(PAGE)
    return root


def build(root: Path, profile: str = "quick") -> subprocess.CompletedProcess:
    env = {**os.environ, "RUN_LOG": str(root / "runs.log"), "MLBOOK_PROFILE": profile}
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run([str(jupyter_book), "build", str(root), "-W"], env=env, capture_output=True, text=True)


def runs(root: Path) -> list[str]:
    log = root / "runs.log"
    return log.read_text().split() if log.exists() else []


def test_fingerprint_follows_package_and_requirements(tmp_path):
    root = make_book(tmp_path)
    first = mlbook_build.fingerprint(root)
    (root / "code/src/mlbook/__pycache__").mkdir()
    (root / "code/src/mlbook/__pycache__/model.cpython-311.pyc").write_bytes(b"bytecode")
    assert mlbook_build.fingerprint(root) == first  # bytecode is not source
    (root / "code/src/mlbook/model.py").write_text("LAYERS = 3\n")
    second = mlbook_build.fingerprint(root)
    (root / "requirements/book.txt").write_text("sphinx==7.4.8\n")
    assert len({first, second, mlbook_build.fingerprint(root)}) == 3


@pytest.mark.slow
def test_package_change_re_executes_and_no_change_does_not(tmp_path):
    root = make_book(tmp_path)
    for step, (edit, profile, expected_runs) in enumerate([
        (None, "quick", ["quick"]),                      # cold build executes
        (None, "quick", ["quick"]),                      # no change: nothing executes
        ("LAYERS = 3\n", "quick", ["quick"] * 2),        # package source changed: executes again
        (None, "full", ["quick"] * 2 + ["full"]),        # another profile has its own cache
        (None, "quick", ["quick"] * 2 + ["full"]),       # back to quick: its cache is still valid
    ]):
        if edit:
            (root / "code/src/mlbook/model.py").write_text(edit)
        result = build(root, profile)
        assert result.returncode == 0, f"step {step}: build failed\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert runs(root) == expected_runs, f"step {step}"
    caches = sorted(p.name.split("-")[0] for p in (root / "_build/.jupyter_cache").iterdir())
    assert caches == ["full", "quick"]  # the stale quick cache was pruned
    assert "Profile quick" in (root / "_build/html/intro.html").read_text()


@pytest.mark.slow
def test_unknown_profile_fails_the_build_with_a_clear_message(tmp_path):
    root = make_book(tmp_path)
    result = build(root, "turbo")
    assert result.returncode != 0
    assert "unknown profile 'turbo'" in result.stdout + result.stderr
    assert runs(root) == []


TIMED_PAGE = NOTEBOOK_HEADER + """\
# {name}

```{{code-cell}} ipython3
import os, pathlib, time
started = time.time()
time.sleep(3)
{extra}
with pathlib.Path(os.environ["RUN_LOG"]).open("a") as log:
    log.write(f"{name}:{{started}}:{{time.time()}}\\n")
print("{name} ran")
```
"""


def make_parallel_book(root: Path, extra_b: str = "") -> Path:
    """Two timed pages, built with the parallel pre-execution extension."""
    make_book(root)
    config = (root / "_config.yml").read_text().replace("{mlbook_build: ./tools}",
                                                        "{mlbook_build: ./tools, mlbook_execute: ./tools}")
    (root / "_config.yml").write_text(config)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: a\n  - file: b\n")
    (root / "a.md").write_text(TIMED_PAGE.format(name="a", extra=""))
    (root / "b.md").write_text(TIMED_PAGE.format(name="b", extra=extra_b))
    return root


def timed_runs(root: Path) -> dict[str, tuple[float, float]]:
    """page name -> (start, end) of each execution recorded by the timed pages."""
    lines = (root / "runs.log").read_text().split() if (root / "runs.log").exists() else []
    return {name: (float(start), float(end)) for name, start, end in (line.split(":") for line in lines)}


def test_execution_workers_reads_the_variable_and_rejects_bad_values(monkeypatch):
    monkeypatch.delenv(mlbook_execute.WORKERS_VARIABLE, raising=False)
    assert mlbook_execute.execution_workers() == mlbook_execute.DEFAULT_WORKERS
    monkeypatch.setenv(mlbook_execute.WORKERS_VARIABLE, "3")
    assert mlbook_execute.execution_workers() == 3
    for bad in ("0", "two", "-1", ""):
        monkeypatch.setenv(mlbook_execute.WORKERS_VARIABLE, bad)
        with pytest.raises(ConfigError, match=mlbook_execute.WORKERS_VARIABLE):
            mlbook_execute.execution_workers()


@pytest.mark.slow
def test_uncached_pages_execute_at_the_same_time_and_are_then_served_from_the_cache(tmp_path):
    root = make_parallel_book(tmp_path)
    result = build(root)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    first = timed_runs(root)
    assert sorted(first) == ["a", "b"]  # each page executed once: myst-nb found both in the cache
    (a_start, a_end), (b_start, b_end) = first["a"], first["b"]
    assert a_start < b_end and b_start < a_end, f"the pages ran one after the other: {first}"
    assert "b ran" in (root / "_build/html/b.html").read_text()
    assert build(root).returncode == 0
    assert timed_runs(root) == first  # no change: nothing executes


@pytest.mark.slow
def test_a_failing_page_still_fails_the_build_with_its_error(tmp_path):
    root = make_parallel_book(tmp_path, extra_b='raise RuntimeError("page b is broken")')
    result = build(root)
    assert result.returncode != 0
    assert "page b is broken" in result.stdout + result.stderr
    assert "a" in timed_runs(root)


@pytest.mark.slow
def test_a_page_whose_kernel_dies_fails_the_build_without_stopping_the_other_page(tmp_path):
    root = make_parallel_book(tmp_path, extra_b="os._exit(1)  # the kernel process dies")
    result = build(root)
    assert result.returncode != 0
    assert "[mlbook] b could not be executed here (DeadKernelError)" in result.stdout
    assert "a" in timed_runs(root)
