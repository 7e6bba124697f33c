"""Sphinx extension (loaded from ``_config.yml``): execute the chapters missing from the cache, several at a time,
before Sphinx reads them, and keep out of their outputs what is not the chapter's.

myst-nb's ``cache`` mode executes a notebook while Sphinx reads it, so a cold build runs the chapters one after
another. Much of a chapter's time is single-threaded Python (kernel start-up, imports, Keras's loop between
steps), so on a 2-core machine two chapters at once finish sooner than one after the other.

At ``env-before-read-docs`` this extension reads each document due to be read exactly as myst-nb will (same
reader, same notebook, so the same jupyter-cache hash), keeps the notebooks the cache lacks, executes them in a
pool of threads (each notebook in its own kernel; the longest budgets in ``_results.yml`` first) and stores
each success in the cache with its execution time. myst-nb then finds every chapter cached. A notebook that fails
here is not stored: myst-nb executes it again while reading and reports the error the usual way, so a failing
cell still fails the build with its traceback.

Before a notebook is stored, its outputs are cleaned of what is not the chapter's (:func:`clean_outputs`):

- native log lines that libraries write straight to the process's stderr (fd 2), bypassing Python: TensorFlow's
  ``I0000 … port.cc:153] oneDNN custom operations are on …`` on CPUs where it enables oneDNN, absl's
  ``WARNING: All log messages before absl::InitializeLog() …``, grappler's ``E0000 … remapper failed``. They
  ignore ``TF_CPP_MIN_LOG_LEVEL``, appear on some CPUs only, and ipykernel captures them into the cell's stderr,
  where myst-nb would turn them into warnings (fatal under ``-W``) and show them on the page. They still reach
  the build's terminal. Anything else on stderr (a Python warning, a traceback, a chapter's own
  ``print(..., file=sys.stderr)``) is kept, so it still fails the build;
- the ``name = value`` echo lines of :func:`mlbook.notebook.glue`, which serve readers of the bare notebook: on
  the page the value is pasted into the text.

``MLBOOK_EXECUTION_WORKERS`` sets the number of chapters run at once (default 2; 1 runs them one after another).
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from tempfile import TemporaryDirectory

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn, JupyterCacheAbstract, NbCacheRecord
from jupyter_cache.executors.utils import ExecutionResult, single_nb_execution
from myst_nb.core.config import NbParserConfig
from myst_nb.core.read import create_nb_reader
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.errors import ConfigError
from sphinx.util import logging

from mlbook_registry import REGISTRY_FILE, load_registry

LOGGER = logging.getLogger(__name__)
WORKERS_VARIABLE = "MLBOOK_EXECUTION_WORKERS"
DEFAULT_WORKERS = 2
#: A line written to fd 2 by native code: the glog/absl format ``<I|W|E|F><MMDD> <hh:mm:ss.micro> <thread>
#: <file>:<line>] <message>`` that TensorFlow, XLA and absl use (before ``absl::InitializeLog()`` the seconds
#: field holds the Unix time, e.g. ``00:00:1796532233.053740``), or absl's notice that precedes such lines.
NATIVE_LOG_LINE = re.compile(
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
)


@dataclass(frozen=True)
class PendingNotebook:
    """A chapter the execution cache lacks: its docname, source path, notebook and myst-nb settings."""

    docname: str
    path: Path
    notebook: nbformat.NotebookNode
    config: NbParserConfig


def execution_workers() -> int:
    """The number of chapters to execute at once, from ``MLBOOK_EXECUTION_WORKERS`` (default 2).

    Raises:
        ConfigError: if the variable is not a positive integer.
    """
    raw = os.environ.get(WORKERS_VARIABLE, str(DEFAULT_WORKERS)).strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{WORKERS_VARIABLE} must be a positive integer, got {raw!r}")
    return int(raw)


def notebook_config(base: NbParserConfig, notebook: nbformat.NotebookNode) -> NbParserConfig:
    """myst-nb's settings for ``notebook``: the global ones with the notebook's own ``mystnb`` metadata applied."""
    overrides = dict(notebook.metadata.get(base.metadata_key, {}))
    overrides.pop("output_folder", None)  # as myst-nb does: not overridable per notebook
    return base.copy(**overrides) if overrides else base


def excluded(path: Path, config: NbParserConfig) -> bool:
    """Whether ``path`` matches one of myst-nb's ``execution_excludepatterns``."""
    posix = PurePosixPath(path.as_posix())
    return any(posix.match(pattern) for pattern in config.execution_excludepatterns)


def read_notebook(env: BuildEnvironment, docname: str) -> tuple[Path, nbformat.NotebookNode] | None:
    """The source path and notebook of ``docname`` as myst-nb reads it (so with the same jupyter-cache hash), or
    ``None`` for a page that is not a notebook or cannot be read (myst-nb reports that itself)."""
    path = Path(env.doc2path(docname))
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), env.myst_config, env.mystnb_config, text)
    if reader is None:  # plain Markdown, not a notebook
        return None
    try:
        return path, reader.read(text)
    except Exception:  # noqa: BLE001 - myst-nb reads it again while reading and reports the problem
        return None


def cached_record(cache: JupyterCacheAbstract, notebook: nbformat.NotebookNode) -> NbCacheRecord | None:
    """The cache's record of an executed notebook with the same code as ``notebook``, or ``None``."""
    try:
        return cache.match_cache_notebook(notebook)
    except KeyError:
        return None


def pending_notebooks(env: BuildEnvironment, docnames: list[str], cache: JupyterCacheAbstract) -> list[PendingNotebook]:
    """The notebooks among ``docnames`` that myst-nb would execute because ``cache`` has no match for them."""
    pending = []
    for docname in docnames:
        read = read_notebook(env, docname)
        if read is None:
            continue
        path, notebook = read
        config = notebook_config(env.mystnb_config, notebook)
        if config.execution_mode != "cache" or excluded(path, config):
            continue
        if cached_record(cache, notebook) is None:
            pending.append(PendingNotebook(docname, path, notebook, config))
    return pending


def without_native_log_lines(text: str) -> tuple[str, int]:
    """``text`` without the lines that match :data:`NATIVE_LOG_LINE`, and how many were removed."""
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not NATIVE_LOG_LINE.fullmatch(line.rstrip("\r\n"))]
    return "".join(kept), len(lines) - len(kept)


def merged_streams(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """``outputs`` with consecutive stream outputs of the same stream joined (a line can span two chunks)."""
    merged: list[nbformat.NotebookNode] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def clean_outputs(notebook: nbformat.NotebookNode) -> int:
    """Drop native log lines from stderr outputs and glue echo lines, in place; return the log lines dropped."""
    from mlbook.notebook import is_echo

    dropped = 0
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for output in merged_streams(cell.get("outputs", [])):
            if is_echo(output):
                continue
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"], removed = without_native_log_lines(output["text"])
                dropped += removed
                if not output["text"]:
                    continue
            outputs.append(output)
        cell["outputs"] = outputs
    return dropped


def execute(item: PendingNotebook) -> ExecutionResult:
    """Run one notebook in its own kernel (from a worker thread), as myst-nb's cache client does."""
    cwd_context = TemporaryDirectory() if item.config.execution_in_temp else nullcontext(str(item.path.parent))
    with cwd_context as cwd:
        return single_nb_execution(
            item.notebook, cwd=os.path.abspath(cwd), allow_errors=item.config.execution_allow_errors,
            timeout=item.config.execution_timeout, meta_override=True,
        )


def quick_budgets(book_root: Path) -> dict[str, float]:
    """Each chapter's quick budget from the book's ``_results.yml``, to start the longest first; empty for a book
    without one (a small test book).

    Raises:
        mlbook_registry.RegistryError: if the registry is malformed.
    """
    path = book_root / REGISTRY_FILE
    if not path.is_file():
        return {}
    return {chapter.docname: chapter.budget_s.get("quick", 0.0) for chapter in load_registry(path).chapters}


def execute_pending(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Execute the uncached notebooks among ``docnames`` (in parallel), clean and store the successes in the
    cache."""
    workers = execution_workers()
    if env.mystnb_config.execution_mode != "cache":
        return
    cache = get_cache(env.mystnb_config.execution_cache_path or ".jupyter_cache")  # the folder myst-nb uses
    pending = pending_notebooks(env, docnames, cache)
    if not pending:
        return
    budgets = quick_budgets(Path(app.srcdir))
    pending.sort(key=lambda item: -budgets.get(item.docname, 0.0))
    LOGGER.info(f"[mlbook] executing {len(pending)} notebooks, {workers} at a time")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlbook-execute") as pool:
        futures: dict[Future, PendingNotebook] = {pool.submit(execute, item): item for item in pending}
        for future in as_completed(futures):
            item = futures[future]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. the kernel died; myst-nb runs it again and reports
                LOGGER.info(f"[mlbook] {item.docname} could not be executed here ({type(error).__name__}); "
                            "it runs again while reading")
                continue
            if result.err is not None:
                LOGGER.info(f"[mlbook] {item.docname} failed ({type(result.err).__name__}); "
                            "it runs again while reading, which reports the error")
                continue
            dropped = clean_outputs(result.nb)
            # written from this (the main) thread only: the cache is one SQLite database
            cache.cache_notebook_bundle(
                CacheBundleIn(result.nb, str(item.path), data={"execution_seconds": result.time}),
                check_validity=False, overwrite=True,
            )
            noise = f" ({dropped} native log lines left out of its stderr)" if dropped else ""
            LOGGER.info(f"[mlbook] executed {item.docname} in {result.time:.1f} s{noise}")
    LOGGER.info(f"[mlbook] executed {len(pending)} notebooks in {time.perf_counter() - start:.0f} s")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("env-before-read-docs", execute_pending)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
