"""Generate the Colab notebooks: one ``.ipynb`` beside each chapter's MyST ``.md``, committed to the repository.

Jupyter Book 1's Colab button only works for ``.ipynb`` pages; sphinx-book-theme links to ``<chapter>.ipynb``
when that file exists next to the ``.md``. This script writes those notebooks from the chapters' sources:

- outputs stripped, deterministic cell ids (so a regenerated notebook is byte-identical when nothing changed);
- a first cell that installs this repository's package, ``pip install "git+<url>@<branch>#subdirectory=code"``,
  with the URL and branch from ``_config.yml``;
- ``{literalinclude}`` blocks replaced by the code they show (Colab does not render MyST directives);
- relative image paths rewritten to raw.githubusercontent.com URLs, so they resolve outside the book;
- a GPU accelerator in the notebook metadata for chapters whose front matter says ``mlbook: {accelerator: GPU}``.

Usage: ``python tools/colab.py`` (write) or ``python tools/colab.py --check`` (exit 1 if any is out of date).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP_CELL_TAG = "colab-setup"
LITERALINCLUDE = re.compile(r"```\{literalinclude\}\s+(?P<path>\S+)\n(?P<options>(?::[^\n]*\n)*)```", re.MULTILINE)
MARKDOWN_IMAGE = re.compile(r"(!\[[^\]]*\]\()(?!https?://|data:)([^)\s]+)(\))")
FIGURE_DIRECTIVE = re.compile(r"(```\{(?:figure|image)\}\s+)(?!https?://)(\S+)")


def book_settings(root: Path = REPO_ROOT) -> dict[str, str]:
    """Repository URL and branch from ``_config.yml``; the URL must be a GitHub repository."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    repository = config.get("repository") or {}
    url, branch = repository.get("url", "").rstrip("/"), repository.get("branch", "main")
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url)
    if not match:
        raise ValueError(f"_config.yml repository.url must be https://github.com/<org>/<repo>, got {url!r}")
    return {"url": url, "branch": branch, "org": match[1], "repo": match[2]}


def chapter_sources(root: Path = REPO_ROOT) -> list[Path]:
    """Every page of ``_toc.yml`` that is a notebook (a MyST ``.md`` with a kernelspec)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = re.findall(r"(?:file|root):\s*([^\s#]+)", yaml.safe_dump(toc))
    chapters = []
    for name in files:
        path = root / f"{name}.md"
        if path.is_file() and re.search(r"^kernelspec:", path.read_text(), re.MULTILINE):
            chapters.append(path)
    return chapters


def colab_url(notebook: Path, settings: dict[str, str], root: Path = REPO_ROOT) -> str:
    """The address that opens ``notebook`` in Colab straight from GitHub."""
    relative = notebook.relative_to(root).as_posix()
    return f"https://colab.research.google.com/github/{settings['org']}/{settings['repo']}/blob/{settings['branch']}/{relative}"


def python_object_source(path: Path, dotted_name: str) -> str:
    """The source of ``dotted_name`` (``function``, ``Class`` or ``Class.method``) in ``path``, as literalinclude's
    ``:pyobject:`` shows it."""
    source = path.read_text()
    body: list[ast.stmt] = ast.parse(source).body
    node: ast.AST | None = None
    for part in dotted_name.split("."):
        node = next((n for n in body if getattr(n, "name", None) == part), None)
        if node is None:
            raise ValueError(f"{path}: no object {dotted_name!r} (literalinclude :pyobject:)")
        body = getattr(node, "body", [])
    lines = source.splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    block = lines[start - 1 : node.end_lineno]
    indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    return "\n".join(line[indent:] for line in block)


def _inline_literalincludes(markdown: str, chapter: Path) -> str:
    def replace(match: re.Match) -> str:
        path = (chapter.parent / match["path"]).resolve()
        options = dict(re.findall(r":(\w+):\s*(.*)", match["options"]))
        code = python_object_source(path, options["pyobject"].strip()) if "pyobject" in options else path.read_text()
        return f"```{options.get('language', 'python').strip()}\n{code.rstrip()}\n```"

    return LITERALINCLUDE.sub(replace, markdown)


def _absolute_images(markdown: str, chapter: Path, settings: dict[str, str], root: Path) -> str:
    folder = chapter.parent.relative_to(root).as_posix()
    base = f"https://raw.githubusercontent.com/{settings['org']}/{settings['repo']}/{settings['branch']}/{folder}/"
    markdown = MARKDOWN_IMAGE.sub(lambda m: f"{m[1]}{base}{m[2]}{m[3]}", markdown)
    return FIGURE_DIRECTIVE.sub(lambda m: f"{m[1]}{base}{m[2]}", markdown)


def setup_cell_source(settings: dict[str, str], install_target: str | None = None) -> str:
    """The first cell: install ``mlbook`` from the repository (or from ``install_target``, e.g. a local path)."""
    target = install_target or f"git+{settings['url']}@{settings['branch']}#subdirectory=code"
    return (
        "# Colab set-up: install this book's code package, mlbook (a minute on a fresh runtime).\n"
        f'%pip install -q "{target}"'
    )


def make_notebook(chapter: Path, settings: dict[str, str] | None = None, root: Path = REPO_ROOT) -> nbformat.NotebookNode:
    """The Colab notebook for one chapter (outputs stripped, set-up cell first)."""
    settings = settings or book_settings(root)
    notebook = jupytext.read(chapter, fmt="md:myst")
    accelerator = (notebook.metadata.get("mlbook") or {}).get("accelerator")
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = _absolute_images(_inline_literalincludes(cell.source, chapter), chapter, settings, root)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    setup = nbformat.v4.new_code_cell(setup_cell_source(settings), metadata={"tags": [SETUP_CELL_TAG]})
    notebook.cells.insert(0, setup)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"
    notebook.metadata = {
        "kernelspec": notebook.metadata["kernelspec"],
        "language_info": {"name": "python"},
        "colab": {"name": chapter.with_suffix(".ipynb").name, "provenance": []},
    }
    if accelerator:
        notebook.metadata["accelerator"] = accelerator
        notebook.metadata["colab"]["gpuType"] = "T4"
    nbformat.validate(notebook)
    return notebook


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that every notebook is up to date")
    args = parser.parse_args(argv)
    settings, stale = book_settings(), []
    for chapter in chapter_sources():
        target, text = chapter.with_suffix(".ipynb"), notebook_text(make_notebook(chapter, settings))
        if target.is_file() and target.read_text() == text:
            continue
        stale.append(target.relative_to(REPO_ROOT).as_posix())
        if not args.check:
            target.write_text(text)
    if args.check and stale:
        print(f"out of date (run python tools/colab.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    print(f"{'stale' if args.check else 'written'}: {len(stale)} notebook(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
