"""Sphinx extension (loaded from ``_config.yml``): the page's ``.ipynb`` download is a notebook a reader can use.

sphinx-book-theme's download button serves ``_sources/<page>.ipynb``, a copy of what myst-nb wrote to
``jupyter_execute/``: raw MyST markup in its markdown, and no outputs at all when the chapter came from the
execution cache. After the HTML is written, this extension replaces each chapter's copy with the notebook Colab
gets (:func:`colab.make_notebook`: markdown Colab renders, a set-up cell that installs ``mlbook``) holding the
outputs of this build, taken from the execution cache. Values the text refers to (glued with
:func:`mlbook.notebook.glue`) appear as the ``name = value`` lines the notebook prints outside the book.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from sphinx.application import Sphinx
from sphinx.util import logging

import colab
from mlbook.notebook import echo_output
from mlbook_execute import cached_record, read_notebook

LOGGER = logging.getLogger(__name__)


def reader_output(output: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """An executed output as a reader's notebook shows it: a value glued without display becomes its echo line."""
    scrapbook = (output.get("metadata") or {}).get("scrapbook")
    if not scrapbook or not scrapbook.get("mime_prefix"):
        return output
    plain = output["data"].get(scrapbook["mime_prefix"] + "text/plain", "")
    return nbformat.from_dict(echo_output(scrapbook["name"], plain))


def with_outputs(reader: nbformat.NotebookNode, executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``reader`` (a notebook from :func:`colab.make_notebook`) with the outputs of ``executed``, code cell by code
    cell; the cells that only the reader's notebook has (set-up, comparison with the book) stay empty.

    Raises:
        ValueError: if the two notebooks' code cells differ.
    """
    code = [cell for cell in reader.cells
            if cell.cell_type == "code" and not colab.READER_ONLY_TAGS & set(cell.metadata.get("tags", []))]
    ran = [cell for cell in executed.cells if cell.cell_type == "code"]
    if [cell.source.strip() for cell in code] != [cell.source.strip() for cell in ran]:
        raise ValueError(f"the executed notebook's {len(ran)} code cells do not match the chapter's {len(code)}")
    for cell, source in zip(code, ran):
        cell.outputs = [reader_output(output) for output in source.get("outputs", [])]
        cell.execution_count = source.get("execution_count")
    return reader


def write_downloads(app: Sphinx, exception: Exception | None) -> None:
    """Write the reader's notebook of every chapter to ``_sources/<docname>.ipynb`` in the HTML output."""
    if exception is not None or app.builder.format != "html":
        return
    root, env = Path(app.srcdir), app.env
    cache = get_cache(env.mystnb_config.execution_cache_path or ".jupyter_cache")
    for chapter in colab.chapter_sources(root):
        docname = chapter.relative_to(root).with_suffix("").as_posix()
        read = read_notebook(env, docname)
        record = cached_record(cache, read[1]) if read else None
        if record is None:
            LOGGER.warning(f"[mlbook] {docname}: no executed notebook in the cache, so no download with outputs")
            continue
        try:
            notebook = with_outputs(colab.make_notebook(chapter, root=root), cache.get_cache_bundle(record.pk).nb)
        except ValueError as error:
            LOGGER.warning(f"[mlbook] {docname}: {error}")
            continue
        target = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(colab.notebook_text(notebook), encoding="utf-8")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("build-finished", write_downloads)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
