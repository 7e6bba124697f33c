"""The build extensions on small books: the execution cache follows the package (tools/mlbook_build.py),
uncached chapters run several at a time before Sphinx reads them (tools/mlbook_execute.py), and an edited results
registry is applied without executing anything (tools/mlbook_results.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import nbformat  # noqa: E402
from bs4 import BeautifulSoup  # noqa: E402
from sphinx.errors import ConfigError  # noqa: E402

import mlbook_build  # noqa: E402
import mlbook_execute  # noqa: E402
from conftest import build_environment  # noqa: E402
from mlbook.data import announce_fallback  # noqa: E402
from mlbook.distribute import DISTRIBUTE_ENV_VAR  # noqa: E402
from mlbook.notebook import echo_output  # noqa: E402

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
        execute: {execute_notebooks: cache, raise_on_error: true, timeout: 600}  # a loaded machine imports TF slowly
        sphinx: {local_extensions: {mlbook_build: ./tools}}
        """))
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n")
    (root / "intro.md").write_text("# Mini\n\nProfile {{ mlbook_profile }}.\n")
    (root / "page.md").write_text(PAGE)
    return root


def build(root: Path, profile: str = "quick", **variables: str) -> subprocess.CompletedProcess:
    env = build_environment(RUN_LOG=str(root / "runs.log"), MLBOOK_PROFILE=profile, **variables)
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


def test_runtime_description_reads_this_environment(monkeypatch):
    monkeypatch.delenv(DISTRIBUTE_ENV_VAR, raising=False)
    runtime = mlbook_build.runtime_description()
    assert runtime["keras"] == metadata.version("keras") and runtime["strategy"] == "default"
    assert any(f"{name} {version}" in runtime["tensorflow"] for name in mlbook_build.TENSORFLOW_DISTRIBUTIONS
               if (version := mlbook_build._installed_version(name)))
    assert mlbook_build.format_runtime(runtime).startswith(f"tensorflow: {runtime['tensorflow']}; keras: ")
    monkeypatch.setenv(DISTRIBUTE_ENV_VAR, "turbo")
    with pytest.raises(ConfigError, match="unknown strategy 'turbo'"):
        mlbook_build.runtime_description()


def test_cuda_libraries_are_the_installed_wheels_of_tensorflows_cuda_extra(monkeypatch):
    requires = ["numpy>=1.26", 'nvidia-cudnn-cu12<10,>=9.3; extra == "and-cuda"',
                'nvidia-nccl-cu12; extra == "and-cuda"', 'portpicker; extra == "testing"',
                'tensorboard; python_version >= "3.9"']
    installed = {"nvidia-cudnn-cu12": "9.3.0.75", "numpy": "2.4.6", "portpicker": "1.6", "tensorboard": "2.21"}
    monkeypatch.setattr(mlbook_build.metadata, "requires", lambda name: requires)
    monkeypatch.setattr(mlbook_build, "_installed_version", installed.get)
    assert mlbook_build.cuda_libraries("tensorflow") == {"nvidia-cudnn-cu12": "9.3.0.75"}  # nccl: not installed


@pytest.mark.parametrize("change", ["tensorflow", "keras", "cuda", "strategy"])
def test_fingerprint_and_cache_folder_follow_the_runtime(change, tmp_path, monkeypatch):
    root, outdir = make_book(tmp_path), tmp_path / "_build/html"
    monkeypatch.delenv(DISTRIBUTE_ENV_VAR, raising=False)
    before = mlbook_build.runtime_description()
    assert mlbook_build.fingerprint(root) == mlbook_build.fingerprint(root, runtime=before)
    fingerprint = mlbook_build.fingerprint(root)
    installed = mlbook_build._installed_version
    tensorflow = next(name for name in mlbook_build.TENSORFLOW_DISTRIBUTIONS if installed(name))
    if change in ("tensorflow", "keras"):
        upgraded = tensorflow if change == "tensorflow" else "keras"
        monkeypatch.setattr(mlbook_build, "_installed_version",
                            lambda name: "9.9.9" if name == upgraded else installed(name))
    elif change == "cuda":
        monkeypatch.setattr(mlbook_build, "cuda_libraries", lambda name: {"nvidia-cudnn-cu12": "9.3.0.75"})
    else:
        monkeypatch.setenv(DISTRIBUTE_ENV_VAR, "mirrored")
    after = mlbook_build.runtime_description()
    assert [field for field in before if before[field] != after[field]] == [change]
    assert mlbook_build.fingerprint(root) != fingerprint
    assert (mlbook_build.execution_cache_dir(outdir, "full", mlbook_build.fingerprint(root))
            != mlbook_build.execution_cache_dir(outdir, "full", fingerprint))


def executed(code: str, *stdout: str) -> nbformat.NotebookNode:
    """An executed one-cell notebook whose cell printed ``stdout``."""
    cell = nbformat.v4.new_code_cell(code, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text) for text in stdout]
    return nbformat.v4.new_notebook(cells=[cell])


def fallback_line(capsys: pytest.CaptureFixture[str]) -> str:
    """What :func:`mlbook.data.announce_fallback` prints, one line without its newline."""
    announce_fallback("MNIST", "MLBOOK_OFFLINE is set", "scikit-learn's digits (1,797 images)")
    return capsys.readouterr().out.rstrip("\n")


def test_the_fallback_line_of_mlbook_data_is_recognised(capsys):
    line = fallback_line(capsys)
    assert mlbook_build.fallback_announcements(executed("load()", "Epoch 1\n" + line + "\n", "done\n")) == [line]
    others = executed("load()", "MNIST unavailable, said nobody\n", "[mlbook.data] MNIST loaded\n")
    assert mlbook_build.fallback_announcements(others) == []


def test_fallback_runs_leave_the_full_execution_cache(tmp_path, capsys):
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    line = fallback_line(capsys)
    cache_path = tmp_path / ".jupyter_cache/full-0123456789abcdef"
    cache = get_cache(str(cache_path))
    fell_back, real = executed("load('a')", line + "\n"), executed("load('b')", "MNIST (60,000 images)\n")
    for uri, notebook in (("a.md", fell_back), ("b.md", real)):
        cache.cache_notebook_bundle(CacheBundleIn(notebook, uri), check_validity=False)
    assert mlbook_build.drop_fallback_runs(cache_path, "quick") == {}  # quick uses the offline data by design
    assert len(cache.list_cache_records()) == 2
    assert mlbook_build.drop_fallback_runs(cache_path, "full") == {"a.md": [line]}
    assert [record.uri for record in get_cache(str(cache_path)).list_cache_records()] == ["b.md"]
    with pytest.raises(KeyError):
        cache.match_cache_notebook(fell_back)
    assert cache.match_cache_notebook(real).uri == "b.md"
    assert mlbook_build.drop_fallback_runs(cache_path, "full") == {}
    assert mlbook_build.drop_fallback_runs(tmp_path / "absent", "full") == {} and not (tmp_path / "absent").exists()


FALLBACK_PAGE = NOTEBOOK_HEADER + """\
# Page

```{code-cell} ipython3
import os, pathlib
from mlbook.data import announce_fallback
with pathlib.Path(os.environ["RUN_LOG"]).open("a") as log:
    log.write(os.environ.get("MLBOOK_PROFILE", "quick") + "\\n")
if os.environ.get("DATA_UNREACHABLE"):
    announce_fallback("MNIST", "offline", "scikit-learn's digits")
```
"""


@pytest.mark.slow
def test_a_full_build_on_fallback_data_executes_again_until_the_real_data_are_used(tmp_path):
    root = make_book(tmp_path)
    (root / "page.md").write_text(FALLBACK_PAGE)
    for step, (profile, unreachable, expected_runs) in enumerate([
        ("full", "1", ["full"]),                         # fell back: shown, but not kept in the cache
        ("full", "1", ["full"] * 2),                     # so the next build executes it again
        ("full", "", ["full"] * 3),                      # the data are back: executed on them, and cached
        ("full", "", ["full"] * 3),                      # served from the cache
        ("quick", "1", ["full"] * 3 + ["quick"]),        # quick keeps its runs whatever they print
        ("quick", "1", ["full"] * 3 + ["quick"]),
    ]):
        result = build(root, profile, DATA_UNREACHABLE=unreachable)
        assert result.returncode == 0, f"step {step}: build failed\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert runs(root) == expected_runs, f"step {step}"
        dropped = "[mlbook] page ran without MNIST" in result.stdout
        assert dropped == (profile == "full" and bool(unreachable)), f"step {step}"


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


def test_chapters_are_executed_longest_budget_first_and_a_book_without_a_registry_in_any_order(tmp_path):
    budgets = mlbook_execute.quick_budgets(REPO_ROOT)
    assert budgets["book/generative/gan"] > budgets["book/sequences/genetic-algorithms"] > 0
    assert mlbook_execute.quick_budgets(tmp_path) == {}


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


#: What TensorFlow 2.21 writes to fd 2 on CPUs where it turns oneDNN on (one line shortened), and grappler's error.
TENSORFLOW_NATIVE_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796532233.053740    2940 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.\n"
    "E0000 00:00:1796532240.123456    2951 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply\n"
)


def test_native_log_lines_are_recognised_and_other_stderr_kept():
    python_warning = "/tmp/x.py:3: UserWarning: check this\n  warnings.warn('check this')\n"
    own_line = "E0000 is how my chapter labels its first error\n"  # not glog's format: kept
    text, removed = mlbook_execute.without_native_log_lines(TENSORFLOW_NATIVE_LINES + python_warning + own_line)
    assert (text, removed) == (python_warning + own_line, 3)
    assert mlbook_execute.without_native_log_lines("") == ("", 0)


def test_clean_outputs_drops_native_lines_split_across_chunks_and_glue_echoes():
    half = len(TENSORFLOW_NATIVE_LINES) // 2
    cell = nbformat.v4.new_code_cell("import tensorflow")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=TENSORFLOW_NATIVE_LINES[:half]),
        nbformat.v4.new_output("stream", name="stderr", text=TENSORFLOW_NATIVE_LINES[half:]),
        nbformat.v4.new_output("stream", name="stdout", text="2.21.0\n"),
        nbformat.from_dict(echo_output("accuracy", "0.97")),
        nbformat.v4.new_output("display_data", data={"text/plain": "kept"}),
    ]
    warned = nbformat.v4.new_code_cell("warn")
    warned.outputs = [nbformat.v4.new_output("stream", name="stderr",
                                             text=TENSORFLOW_NATIVE_LINES + "x.py:1: UserWarning: w\n")]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), cell, warned])
    assert mlbook_execute.clean_outputs(notebook) == 6
    assert [o.get("text") or o["data"]["text/plain"] for o in cell.outputs] == ["2.21.0\n", "kept"]
    assert [o["text"] for o in warned.outputs] == ["x.py:1: UserWarning: w\n"]


def test_build_environment_lets_kernels_capture_native_stderr(monkeypatch):
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/x.py::t (call)")
    env = build_environment(MLBOOK_PROFILE="quick")
    assert "PYTEST_CURRENT_TEST" not in env and env["MLBOOK_PROFILE"] == "quick"


def stderr_book(root: Path, cell: str) -> Path:
    """A one-chapter book, built as the real book is (both extensions), whose chapter runs ``cell``."""
    make_parallel_book(root)
    config = (root / "_config.yml").read_text().replace("raise_on_error: true",
                                                        "raise_on_error: true, stderr_output: warn")
    (root / "_config.yml").write_text(config)  # as the book's: stderr becomes a warning, fatal under -W
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: a\n")
    (root / "b.md").unlink()
    (root / "a.md").write_text(NOTEBOOK_HEADER + f"# A\n\n```{{code-cell}} ipython3\n{cell}\nprint('a ran')\n```\n")
    return root


@pytest.mark.slow
def test_native_log_lines_on_fd2_build_clean_and_stay_off_the_page(tmp_path):
    lines = TENSORFLOW_NATIVE_LINES.encode()
    root = stderr_book(tmp_path, f"import os\nos.write(2, {lines!r})")
    result = build(root)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "[mlbook] executed a in" in result.stdout and "3 native log lines left out" in result.stdout
    outputs = BeautifulSoup((root / "_build/html/a.html").read_text(), "html.parser").select(".cell_output")
    text = "".join(output.get_text() for output in outputs)
    assert "a ran" in text
    assert "oneDNN" not in text and "InitializeLog" not in text and "remapper" not in text
    assert not any(output.select(".stderr") for output in outputs)


@pytest.mark.slow
@pytest.mark.parametrize("cell", [
    "import os\nos.write(2, b'written to fd 2 by native code, not a log line\\n')",  # proves fd 2 is captured
    "import warnings\nwarnings.warn('a real problem', UserWarning)",
    "import sys\nprint('the chapter complains', file=sys.stderr)",
], ids=["fd2-text", "user-warning", "print-to-stderr"])
def test_real_stderr_still_fails_the_build(tmp_path, cell):
    result = build(stderr_book(tmp_path, cell))
    assert result.returncode != 0
    assert "stderr was found in the cell outputs" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_guarded_claim_that_the_run_contradicts_fails_the_build_naming_the_claim(tmp_path):
    guard = ("from mlbook.claims import require\n"
             "accuracy = {'plain': 0.91, 'augmented': 0.88}\n"
             "require(accuracy['augmented'] > accuracy['plain'], 'augmentation raises the test accuracy')")
    result = build(stderr_book(tmp_path, guard))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ClaimError" in output and "augmentation raises the test accuracy" in output


RESULTS_REGISTRY = """\
chapters:
  - {{docname: page, title: The page, budget_s: {{quick: 600}}, data: {data}}}
expected:
  - {{chapter: page, key: accuracy, label: accuracy, bands: {{quick: {band}}}}}
"""


@pytest.mark.slow
def test_an_edited_results_registry_rewrites_the_results_and_footers_and_executes_nothing(tmp_path):
    root = make_book(tmp_path)
    config = (root / "_config.yml").read_text().replace("{mlbook_build: ./tools}",
                                                        "{mlbook_build: ./tools, mlbook_results: ./tools}")
    (root / "_config.yml").write_text(config)
    registry = root / "_results.yml"
    for data, band in (("the first data", [0.5, 1.0]), ("the second data", [0.9, 1.0])):
        registry.write_text(RESULTS_REGISTRY.format(data=data, band=band))
        result = build(root)
        assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert f"data: {data}" in (root / "_build/html/page.html").read_text()
        assert json.loads((root / "_build/html/results-quick.json").read_text())["results"][0]["band"] == band
    assert runs(root) == ["quick"]  # executed by the first build only
    assert "0 added, 1 changed, 0 removed" in result.stdout  # the chapter was read again, the intro was not


GLUE_CELL = """
```{code-cell} ipython3
from mlbook.notebook import glue
glue("accuracy", 0.75, display=False)
```
"""


@pytest.mark.slow
def test_a_truncated_glue_file_is_rebuilt_from_the_execution_cache_at_the_next_build(tmp_path):
    """An interrupted build can leave ``<chapter>.glue.json`` cut short; the next build must not crash on it, and
    must restore the chapter's numbers from the cache without executing it again."""
    root = make_book(tmp_path)
    config = (root / "_config.yml").read_text().replace("{mlbook_build: ./tools}",
                                                        "{mlbook_build: ./tools, mlbook_results: ./tools}")
    (root / "_config.yml").write_text(config)
    (root / "_results.yml").write_text(RESULTS_REGISTRY.format(data="the data", band=[0.5, 1.0]))
    (root / "page.md").write_text(PAGE + GLUE_CELL)
    glue_file = root / "_build/jupyter_execute/page.glue.json"
    for _ in range(2):
        result = build(root)
        assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert json.loads(glue_file.read_text())["accuracy"]["data"]["text/plain"] == "0.75"
        assert json.loads((root / "_build/html/results-quick.json").read_text())["results"][0]["value"] == 0.75
        glue_file.write_text(glue_file.read_text()[:40])
    assert runs(root) == ["quick"]  # the second build read the chapter from the cache
    assert "page.glue.json is unreadable (JSONDecodeError" in result.stdout
