"""The pages' .ipynb download (tools/mlbook_download.py): the reader's notebook, with the build's outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import colab  # noqa: E402
import mlbook_download  # noqa: E402
from mlbook.notebook import GLUE_MIME_PREFIX, is_echo  # noqa: E402


def glue_record(name: str, plain: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data={GLUE_MIME_PREFIX + "text/plain": plain},
                                  metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_MIME_PREFIX}})


def reader_and_executed() -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    setup = nbformat.v4.new_code_cell("%pip install mlbook", metadata={"tags": [colab.SETUP_CELL_TAG]})
    reader = nbformat.v4.new_notebook(cells=[setup, nbformat.v4.new_markdown_cell("Text"),
                                             nbformat.v4.new_code_cell("x = 1\nprint(x)\n"),
                                             nbformat.v4.new_code_cell("glue('acc', 0.97, display=False)"),
                                             *colab.compare_cells("book/part/chapter")])
    first = nbformat.v4.new_code_cell("x = 1\nprint(x)", execution_count=1,
                                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    second = nbformat.v4.new_code_cell("glue('acc', 0.97, display=False)", execution_count=2,
                                       outputs=[glue_record("acc", "0.97")])
    executed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("{glue:text}`acc`"), first, second])
    return reader, executed


def test_outputs_go_to_the_matching_code_cells_and_glued_values_become_echo_lines():
    reader, executed = reader_and_executed()
    notebook = mlbook_download.with_outputs(reader, executed)
    setup, markdown, first, second, heading, compare = notebook.cells
    assert setup.outputs == [] and markdown.source == "Text"
    assert compare.outputs == [] and heading.cell_type == "markdown"  # the reader's own cells, never run here
    assert first.outputs[0]["text"] == "1\n" and first.execution_count == 1
    assert len(second.outputs) == 1 and is_echo(second.outputs[0])
    assert second.outputs[0]["data"] == {"text/plain": "acc = 0.97"}
    nbformat.validate(notebook)


def test_a_displayed_glue_output_is_kept_as_it_is():
    output = nbformat.v4.new_output("display_data", data={"text/plain": "0.97"},
                                    metadata={"scrapbook": {"name": "acc", "mime_prefix": ""}})
    assert mlbook_download.reader_output(output) is output


def test_code_cells_that_differ_are_refused():
    reader, executed = reader_and_executed()
    executed.cells[1].source = "x = 2"
    with pytest.raises(ValueError, match="code cells do not match"):
        mlbook_download.with_outputs(reader, executed)


@pytest.mark.slow
def test_every_chapter_download_is_the_reader_notebook_with_this_builds_outputs(built_book):
    for chapter in colab.chapter_sources():
        docname = chapter.relative_to(REPO_ROOT).with_suffix("").as_posix()
        download = built_book / "_sources" / f"{docname}.ipynb"
        notebook = nbformat.read(download, as_version=4)
        nbformat.validate(notebook)
        assert colab.SETUP_CELL_TAG in notebook.cells[0].metadata.get("tags", []), docname
        assert "myst_nb" not in download.read_text(), docname
        code = [cell for cell in notebook.cells[1:] if cell.cell_type == "code"]
        assert sum(bool(cell.outputs) for cell in code) >= len(code) // 3, f"{docname}: few outputs"
        assert not [o for cell in code for o in cell.outputs if o.output_type == "error"], docname
        # the markdown is the Colab notebook's, which test_colab checks for leftover MyST
        colab_notebook = nbformat.read(chapter.with_suffix(".ipynb"), as_version=4)
        assert ([cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
                == [cell.source for cell in colab_notebook.cells if cell.cell_type == "markdown"]), docname
    vae = nbformat.read(built_book / "_sources/book/generative/vae.ipynb", as_version=4)
    echoes = [o["data"]["text/plain"] for cell in vae.cells if cell.cell_type == "code" for o in cell.outputs
              if is_echo(o)]
    assert any(line.startswith("vae_test_") for line in echoes), echoes[:5]
    images = [output for cell in vae.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert images, "the VAE chapter's figures are missing from its download"
