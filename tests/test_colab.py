"""The Colab notebooks (tools/colab.py): present, in sync with their chapters, linked from the pages, runnable."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import colab  # noqa: E402

CHAPTERS = colab.chapter_sources()


def test_every_chapter_is_a_notebook_source():
    assert REPO_ROOT / "book/foundations/numpy-nn.md" in CHAPTERS
    assert all(path.suffix == ".md" for path in CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_exists_and_is_in_sync_with_its_chapter(chapter):
    notebook = chapter.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} missing: run python tools/colab.py"
    expected = colab.notebook_text(colab.make_notebook(chapter))
    assert notebook.read_text() == expected, f"{notebook.name} is stale: run python tools/colab.py"
    parsed = nbformat.reads(expected, as_version=4)
    assert "colab-setup" in parsed.cells[0].metadata["tags"]
    assert all(not cell.get("outputs") for cell in parsed.cells if cell.cell_type == "code")


def test_a_changed_chapter_makes_its_notebook_stale(tmp_path):
    chapter = CHAPTERS[0]
    edited = tmp_path / chapter.relative_to(REPO_ROOT)
    edited.parent.mkdir(parents=True)
    (tmp_path / "code").symlink_to(REPO_ROOT / "code")  # its literalincludes read the package
    edited.write_text(chapter.read_text().replace("```{code-cell} ipython3\n", "```{code-cell} ipython3\nx = 1\n", 1))
    settings = colab.book_settings()
    assert colab.notebook_text(colab.make_notebook(edited, settings, root=tmp_path)) != chapter.with_suffix(".ipynb").read_text()


def test_setup_cell_installs_from_the_configured_repository():
    settings = colab.book_settings()
    source = colab.make_notebook(CHAPTERS[0]).cells[0].source
    assert f"git+{settings['url']}@{settings['branch']}#subdirectory=code" in source


def test_literalinclude_becomes_the_code_and_images_resolve_outside_the_book(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code/m.py").write_text("import os\n\n\nclass Box:\n    @property\n    def size(self):\n        return 3\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/org/repo\n  branch: dev\n")
    chapter = tmp_path / "book/ch.md"
    chapter.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
        "  display_name: Python 3\n  language: python\n---\n# Ch\n\n"
        "```{literalinclude} ../code/m.py\n:language: python\n:pyobject: Box.size\n```\n\n"
        "![diagram](img/net.png) and ![web](https://example.org/a.png)\n"
    )
    markdown = colab.make_notebook(chapter, colab.book_settings(tmp_path), root=tmp_path).cells[1].source
    assert "```python\n@property\ndef size(self):\n    return 3\n```" in markdown
    assert "(https://raw.githubusercontent.com/org/repo/dev/book/img/net.png)" in markdown
    assert "(https://example.org/a.png)" in markdown
    with pytest.raises(ValueError, match="no object 'Box.width'"):
        colab.python_object_source(tmp_path / "code/m.py", "Box.width")


def test_repository_url_must_be_github(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://gitlab.com/org/repo\n")
    with pytest.raises(ValueError, match="github.com"):
        colab.book_settings(tmp_path)


@pytest.mark.slow
def test_every_chapter_page_links_to_its_colab_notebook(built_book):
    settings = colab.book_settings()
    for chapter in CHAPTERS:
        relative = chapter.relative_to(REPO_ROOT).with_suffix("")
        page = (built_book / f"{relative}.html").read_text()
        links = set(re.findall(r'https://colab\.research\.google\.com/github/[^"\']+', page))
        expected = colab.colab_url(chapter.with_suffix(".ipynb"), settings)
        assert links == {expected}, f"{relative}: Colab links {links}"
        assert chapter.with_suffix(".ipynb").is_file()


@pytest.mark.slow
def test_a_generated_notebook_runs_top_to_bottom_in_a_fresh_kernel(tmp_path):
    """The NumPy chapter's notebook, with the package installed from this checkout instead of the git URL."""
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO_ROOT / "book/foundations/numpy-nn.ipynb", as_version=4)
    target = tmp_path / "site"
    notebook.cells[0].source = (
        colab.setup_cell_source(colab.book_settings(), install_target=str(REPO_ROOT / "code"))
        .replace("%pip install -q", f"%pip install -q --no-deps --target {target}")
        + f"\nimport sys; sys.path.insert(0, {str(target)!r})"
    )
    notebook.cells.append(nbformat.v4.new_code_cell("import mlbook; print(mlbook.__file__)"))
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    assert printed.startswith(str(target)), f"mlbook was not imported from the fresh install: {printed!r}"
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not errors
