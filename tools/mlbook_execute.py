"""Sphinx extension (loaded from ``_config.yml``): execute the chapters missing from the cache several at a time,
before Sphinx reads them.

myst-nb's ``cache`` mode executes a notebook while Sphinx reads it, so a cold build runs the chapters one after
another. Much of a chapter's time is single-threaded Python (kernel start-up, imports, Keras's loop between
steps), so on a 2-core machine two chapters at once finish sooner than one after the other.

At ``env-before-read-docs`` this extension reads each document due to be read exactly as myst-nb will (same
reader, same notebook, so the same jupyter-cache hash), keeps the notebooks the cache lacks, executes them in a
pool of threads (each notebook in its own kernel; the longest budgets in :mod:`mlbook.results` first) and stores
each success in the cache with its execution time. myst-nb then finds every chapter cached. A notebook that fails
here is not stored: myst-nb executes it again while reading and reports the error the usual way, so a failing
cell still fails the build with its traceback.

``MLBOOK_EXECUTION_WORKERS`` sets the number of chapters run at once (default 2; 1 turns this off).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from tempfile import TemporaryDirectory

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn, JupyterCacheAbstract
from jupyter_cache.executors.utils import ExecutionResult, single_nb_execution
from myst_nb.core.config import NbParserConfig
from myst_nb.core.read import create_nb_reader
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.errors import ConfigError
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
WORKERS_VARIABLE = "MLBOOK_EXECUTION_WORKERS"
DEFAULT_WORKERS = 2


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


def pending_notebooks(env: BuildEnvironment, docnames: list[str], cache: JupyterCacheAbstract) -> list[PendingNotebook]:
    """The notebooks among ``docnames`` that myst-nb would execute because ``cache`` has no match for them."""
    pending = []
    for docname in docnames:
        path = Path(env.doc2path(docname))
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        reader = create_nb_reader(str(path), env.myst_config, env.mystnb_config, text)
        if reader is None:  # plain Markdown, not a notebook
            continue
        try:
            notebook = reader.read(text)
        except Exception:  # noqa: BLE001 - myst-nb reads it again while reading and reports the problem
            continue
        config = notebook_config(env.mystnb_config, notebook)
        if config.execution_mode != "cache" or excluded(path, config):
            continue
        try:
            cache.match_cache_notebook(notebook)
        except KeyError:
            pending.append(PendingNotebook(docname, path, notebook, config))
    return pending


def execute(item: PendingNotebook) -> ExecutionResult:
    """Run one notebook in its own kernel (from a worker thread), as myst-nb's cache client does."""
    cwd_context = TemporaryDirectory() if item.config.execution_in_temp else nullcontext(str(item.path.parent))
    with cwd_context as cwd:
        return single_nb_execution(
            item.notebook, cwd=os.path.abspath(cwd), allow_errors=item.config.execution_allow_errors,
            timeout=item.config.execution_timeout, meta_override=True,
        )


def expected_seconds(docname: str) -> float:
    """The chapter's quick budget from :mod:`mlbook.results` (0 when it has none), to start the longest first."""
    from mlbook.results import find_chapter

    chapter = find_chapter(docname)
    return chapter.budget_s.get("quick", 0.0) if chapter else 0.0


def execute_pending(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Execute the uncached notebooks among ``docnames`` in parallel and store the successes in the cache."""
    workers = execution_workers()
    if workers < 2 or env.mystnb_config.execution_mode != "cache":
        return
    cache = get_cache(env.mystnb_config.execution_cache_path or ".jupyter_cache")  # the folder myst-nb uses
    pending = sorted(pending_notebooks(env, docnames, cache), key=lambda item: -expected_seconds(item.docname))
    if len(pending) < 2:
        return  # nothing to overlap: myst-nb executes it while reading
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
            # written from this (the main) thread only: the cache is one SQLite database
            cache.cache_notebook_bundle(
                CacheBundleIn(result.nb, str(item.path), data={"execution_seconds": result.time}),
                check_validity=False, overwrite=True,
            )
            LOGGER.info(f"[mlbook] executed {item.docname} in {result.time:.1f} s")
    LOGGER.info(f"[mlbook] executed {len(pending)} notebooks in {time.perf_counter() - start:.0f} s")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("env-before-read-docs", execute_pending)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
