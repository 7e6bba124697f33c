"""Generate the Colab notebooks: one ``.ipynb`` beside each chapter's MyST ``.md``, committed to the repository.

Jupyter Book 1's Colab button only works for ``.ipynb`` pages; sphinx-book-theme links to ``<chapter>.ipynb``
when that file exists next to the ``.md``. This script writes those notebooks from the chapters' sources:

- outputs stripped, deterministic cell ids (so a regenerated notebook is byte-identical when nothing changed);
- a first cell that installs this repository's package, ``pip install "git+<url>@<branch>#subdirectory=code"``,
  with the URL and branch from ``_config.yml``;
- a GPU accelerator in the notebook metadata for chapters whose front matter says ``mlbook: {accelerator: GPU}``;
- markdown without MyST, which Colab would show as text (Colab renders CommonMark, GitHub tables, ``$``/``$$``
  maths and simple HTML). With numbers as the built book gives them (parts numbered, chapters 1..14 across
  parts, ``numfig_secnum_depth: 1``: figure and equation *k* of chapter *n* is *n.k*):

  - ``{literalinclude}`` becomes the code it shows; relative images point at raw.githubusercontent.com;
  - ``(label)=`` lines and ``% comments`` disappear;
  - ``{numref}`fig-x``` becomes "Figure 5.2"; a captioned figure cell is followed by a cell with its caption,
    "**Figure 5.2.** ...", so that the number means something in Colab;
  - ``{eq}`eq-x``` becomes "(5.3)", and the labelled equation ``$$ ... $$ (eq-x)`` gets ``\\tag{5.3}``;
  - ``{ref}``/``{doc}``: a section of the same chapter becomes its title in italics ("the section *Title*"),
    the chapter's own top "this chapter", and a label on another page a link into the published book
    (``html.baseurl``);
  - ``{glue:text}`name:fmt``` (and ``{glue}``, ``{glue:md}``) becomes ```name``` with where the notebook prints
    it (``glue`` echoes ``name = value``): "(printed above)" or "(printed below)", one note per paragraph; a
    setting that ``setup_chapter`` records (``cfg_grid_size`` for ``cfg.grid_size``) is "among the settings
    printed above", by the chapter's ``print(ctx.describe())``;
  - ``{math}`x``` becomes ``$x$``;
  - ``{term}`x``` and ``{term}`text <x>``` (Sphinx's glossary role) become a link to the term's entry in the
    published glossary (the page whose ``{glossary}`` directive defines it), with the anchor Sphinx gives a
    glossary term, ``term-`` and the term as an id ("#term-latent-space");
  - a dropdown admonition becomes ``<details><summary>Title</summary>...</details>``, any other admonition a
    blockquote that starts with ``> **Title**``; ``{figure}``/``{image}`` become markdown images;
  - sphinx-exercise's ``{exercise} title`` (with a ``:label:``) becomes a blockquote that starts with
    "**Exercise 5.2: title**", numbered per chapter like figures, and ``{solution} label`` becomes
    ``<details><summary>Solution</summary>...</details>``; ``{numref}``/``{ref}`` to an exercise become
    "Exercise 5.2".
  - sphinxcontrib-bibtex citations, from ``references.bib`` (read with pybtex): ``{cite:p}`key``` becomes
    "(Goodfellow et al., 2014)", ``{cite:t}`` "Goodfellow et al. (2014)", ``{cite:yearpar}`` "(2014)" and
    ``{cite:empty}`` nothing (several keys and ``{pre}key{post}`` texts as in the book); the ``{bibliography}``
    directive becomes a markdown list of the chapter's cited works ("Kingma, D. P. & Ba, J. (2015). Adam: ...").

  Anything else MyST-only (an unknown label, role or directive, a ``{{ substitution }}``) raises a ValueError
  that names it and the chapter.

Usage: ``python tools/colab.py`` (write) or ``python tools/colab.py --check`` (exit 1 if any is out of date).
"""

from __future__ import annotations

import argparse
import ast
import html
import posixpath
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jupytext
import nbformat
import pybtex.database
import yaml

from mlbook_citations import author_names, is_others, last_name, plain_text
from mlbook_registry import REGISTRY_FILE, load_registry

REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP_CELL_TAG = "colab-setup"
#: The glue names of the settings that ``mlbook.setup_chapter`` records (``mlbook.runtime.SETTINGS_GLUE_PREFIX``).
SETTINGS_GLUE = re.compile(r"cfg_\w+")
LITERALINCLUDE = re.compile(r"```\{literalinclude\}\s+(?P<path>\S+)\n(?P<options>(?::[^\n]*\n)*)```", re.MULTILINE)
MARKDOWN_IMAGE = re.compile(r"(!\[[^\]]*\]\()(?!https?://|data:)([^)\s]+)(\))")
FIGURE_DIRECTIVE = re.compile(r"(```\{(?:figure|image)\}\s+)(?!https?://)(\S+)")

#: A fence line: ``` or ~~~ (code, or a directive when the info is ``{name}``) or ::: (a MyST colon directive);
#: indented, in a list item, or quoted, in a blockquote.
FENCE = re.compile(r"^(?:[ \t]*>)*[ \t]*(?P<fence>`{3,}|~{3,}|:{3,})[ \t]*(?P<info>.*?)[ \t]*$")
DIRECTIVE_NAME = re.compile(r"^\{(?P<name>[\w:-]+)\}[ \t]*(?P<argument>.*)$")
DIRECTIVE_OPTION = re.compile(r"^:(?P<key>[\w-]+):[ \t]*(?P<value>.*)$")
LABEL_LINE = re.compile(r"^\((?P<label>[^()\s]+)\)=[ \t]*$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<title>.*?)[ \t]*#*[ \t]*$")
#: Display maths, ``$$ ... $$``, with the ``(label)`` that numbers it.
DISPLAY_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$(?:[ \t]*\((?P<label>[^()\s]+)\))?", re.DOTALL)
#: A role, ``{name}`content``` (the content may end with ``<label>`` when it gives its own text), or an inline
#: code span, matched so that a ``{x}`` inside code is not taken for a role.
ROLE = re.compile(r"(?P<code>``[^\n]+?``|`[^`\n]+`)|(?<!\w)\{(?P<name>[\w:.-]+)\}`(?P<content>[^`]*)`")
EXPLICIT_TARGET = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
#: One target of a citation role, ``{pre}key{post}`` (sphinxcontrib-bibtex's syntax; several are comma-separated).
CITATION_TARGET = re.compile(r"\s*(?:\{(?P<pre>[^{}]+)\})?\s*(?P<key>[^{}\s,]+)\s*(?:\{(?P<post>[^{}]+)\})?\s*")
#: A line holding only ``{cite:empty}`` roles (a citation that shows nothing): the line goes.
EMPTY_CITATION_LINE = re.compile(r"^[ \t]*(?:\{cite:empty\}`[^`]*`[ \t]*)+\n(?:[ \t]*\n)?", re.MULTILINE)
BIBLIOGRAPHY = "references.bib"
SUBSTITUTION = re.compile(r"\{\{.*?\}\}")
COMMENT_LINE = re.compile(r"^%.*(?:\n|$)", re.MULTILINE)
#: A list item's marker, also in a blockquote.
LIST_MARKER = r"[ \t>]*(?:[-*+]|\d+[.)])[ \t]"
#: Where a paragraph, list item or fenced block starts: before a blank line, a list marker or a fence.
BLOCK_START = re.compile(rf"(?<=\n)(?=[ \t]*\n|{LIST_MARKER}|[ \t]*(?::{{3}}|`{{3}}|~{{3}}))")
AMSMATH_ENVIRONMENT = re.compile(r"^[ \t]*\\begin\{(?:equation|align|gather|multline|flalign|alignat|eqnarray)\*?\}",
                                 re.MULTILINE)

ADMONITIONS = ("admonition", "note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
               "error", "seealso", "dropdown")
#: Cell tags with which myst-nb renders no output, so a figure in such a cell is not numbered.
NO_OUTPUT_TAGS = frozenset({"remove-cell", "remove-output"})
#: What Sphinx's glossary takes for a term's classifier, `` : ``, after the term on its line.
TERM_CLASSIFIER = re.compile(r" +: +")
#: Markup in a glossary term, whose rendered text (and so its anchor) this script does not work out.
TERM_MARKUP = re.compile(r"[`*_\[\]{}$<>\\]")
#: The letters that Sphinx transliterates before it drops what is not ASCII from an id
#: (``sphinx.util.nodes._non_id_translate`` and ``_non_id_translate_digraphs``, Sphinx 7.4).
SPHINX_ID_TRANSLATION = str.maketrans({
    **dict(zip("øđħıłŧƀƃƈƌƒƙƚƞƥƫƭƴƶǥȥȴȵȶȷȼȿɀɇɉɋɍɏ", "odhiltbbcdfklnpttyzgzlntjcszejqry")),
    "ß": "sz", "æ": "ae", "œ": "oe", "ȸ": "db", "ȹ": "qp",
})


# --- settings and the table of contents -------------------------------------------------------------------------

def book_settings(root: Path = REPO_ROOT) -> dict[str, str]:
    """Repository URL and branch, and the published book's base URL (``html.baseurl``, "" if unset), from
    ``_config.yml``; the URL must be a GitHub repository."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    repository = config.get("repository") or {}
    url, branch = repository.get("url", "").rstrip("/"), repository.get("branch", "main")
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url)
    if not match:
        raise ValueError(f"_config.yml repository.url must be https://github.com/<org>/<repo>, got {url!r}")
    baseurl = ((config.get("html") or {}).get("baseurl") or "").rstrip("/")
    return {"url": url, "branch": branch, "org": match[1], "repo": match[2], "baseurl": baseurl and f"{baseurl}/"}


def toc_pages(root: Path = REPO_ROOT) -> list[tuple[str, int | None]]:
    """Every page of ``_toc.yml`` in order, as (docname, chapter number or None). Chapters of parts with
    ``numbered: true`` are numbered on from one part to the next (``use_multitoc_numbering``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages: list[tuple[str, int | None]] = [(toc["root"], None)]
    number = 0
    for part in toc.get("parts") or [{"chapters": toc.get("chapters") or []}]:
        for entry in part.get("chapters") or []:
            if "sections" in entry:
                raise ValueError(f"_toc.yml: nested sections under {entry.get('file')} are not supported")
            if "file" not in entry:
                continue
            number += 1 if part.get("numbered") else 0
            pages.append((entry["file"], number if part.get("numbered") else None))
    return pages


def chapter_sources(root: Path = REPO_ROOT) -> list[Path]:
    """Every page of ``_toc.yml`` that is a notebook (a MyST ``.md`` with a kernelspec)."""
    chapters = []
    for docname, _ in toc_pages(root):
        path = root / f"{docname}.md"
        if path.is_file() and re.search(r"^kernelspec:", path.read_text(), re.MULTILINE):
            chapters.append(path)
    return chapters


def colab_url(notebook: Path, settings: dict[str, str], root: Path = REPO_ROOT) -> str:
    """The address that opens ``notebook`` in Colab straight from GitHub."""
    relative = notebook.relative_to(root).as_posix()
    return f"https://colab.research.google.com/github/{settings['org']}/{settings['repo']}/blob/{settings['branch']}/{relative}"


# --- literalinclude and images (already plain markdown in the notebook) ------------------------------------------

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


# --- code fences ------------------------------------------------------------------------------------------------

def _directive(info: str) -> re.Match | None:
    """The ``{name} argument`` of a fence's info string, when the fence opens a MyST directive."""
    return DIRECTIVE_NAME.match(info)


def _fence_end(lines: list[str], start: int) -> int:
    """The index of the line that closes the fence opened at ``lines[start]`` (the last line when none does).

    A code fence closes at the first bare fence of the same character at least as long; a directive looks past
    the code fences inside it, whose closing lines would otherwise close it."""
    opening = FENCE.match(lines[start])
    fence, is_directive = opening["fence"], bool(_directive(opening["info"]))
    index = start + 1
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match and not match["info"] and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence):
            return index
        if is_directive and match and match["fence"][0] in "`~" and not _directive(match["info"]):
            index = _fence_end(lines, index)
        index += 1
    return len(lines) - 1


def split_code(markdown: str) -> list[tuple[str, bool]]:
    """``markdown`` cut into (text, is_code) pieces, the code pieces being whole fenced code blocks. A directive's
    fences (```` ```{note} ````, ``:::{admonition}``) and content are text, except the code blocks inside it."""
    lines = markdown.split("\n")
    pieces: list[tuple[str, bool]] = []
    text: list[str] = []
    directive_closings: set[int] = set()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match and _directive(match["info"]):
            directive_closings.add(_fence_end(lines, index))
        if not match or match["fence"][0] == ":" or _directive(match["info"]) or index in directive_closings:
            text.append(lines[index])
            index += 1
            continue
        end = _fence_end(lines, index)
        pieces.append(("\n".join(text + [""]), False))
        pieces.append(("\n".join(lines[index : end + 1]) + ("\n" if end + 1 < len(lines) else ""), True))
        text, index = [], end + 1
    pieces.append(("\n".join(text), False))
    return [(piece, is_code) for piece, is_code in pieces if piece]


def map_text(markdown: str, function: Callable[[str], str]) -> str:
    """``markdown`` with ``function`` applied to everything outside fenced code blocks."""
    return "".join(piece if is_code else function(piece) for piece, is_code in split_code(markdown))


# --- directives -------------------------------------------------------------------------------------------------

def directive_options(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's ``:key: value`` options and the content lines after them."""
    options: dict[str, str] = {}
    position = 0
    while position < len(lines) and (match := DIRECTIVE_OPTION.match(lines[position])):
        options[match["key"]] = match["value"].strip()
        position += 1
    return options, lines[position:]


#: ``render(name, argument, options, content)``: the markdown that replaces one directive.
DirectiveRenderer = Callable[[str, str, dict[str, str], str], str]


def walk_directives(markdown: str, render: DirectiveRenderer) -> str:
    """``markdown`` with each MyST directive replaced by what ``render`` makes of it, its content walked first
    (so nested directives are rendered inside out); fenced code is left as it is."""
    lines, converted, position = markdown.split("\n"), [], 0
    while position < len(lines):
        fence = FENCE.match(lines[position])
        if not fence or fence["fence"][0] == ":" and not _directive(fence["info"]):
            converted.append(lines[position])
            position += 1
            continue
        end = _fence_end(lines, position)
        if directive := _directive(fence["info"]):
            options, body = directive_options(lines[position + 1 : end])
            content = walk_directives("\n".join(body), render)
            converted.append(render(directive["name"], directive["argument"].strip(), options, content))
        else:
            converted += lines[position : end + 1]
        position = end + 1
    return "\n".join(converted)


# --- what labels name -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Label:
    """What a label names, as the built book shows it."""

    docname: str  #: the page, e.g. "book/cnn/cnn-mnist"
    kind: str  #: "section", "figure", "equation", "admonition", "exercise", "term" or "target" (anything else)
    title: str = ""  #: a section's, admonition's or exercise's title, a figure's caption
    anchor: str = ""  #: the HTML id in the page; "" for the page's top
    number: str = ""  #: "5.3" for a numbered figure, equation or exercise


@dataclass
class BookIndex:
    """Every label of the book's pages, and each page's title."""

    labels: dict[str, Label] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    terms: dict[str, Label] = field(default_factory=dict)  #: glossary terms, by :func:`term_key`

    def add(self, name: str, label: Label) -> None:
        if name in self.labels:
            raise ValueError(f"label {name!r} is defined twice: {self.labels[name].docname} and {label.docname}")
        self.labels[name] = label

    def add_term(self, label: Label) -> None:
        """Record a glossary term (``label.title``); Sphinx finds a term whatever its case, and gives two terms
        whose ids clash a numbered id instead, so either is refused here."""
        key = term_key(label.title)
        if key in self.terms:
            raise ValueError(f"glossary term {label.title!r} is defined twice: {self.terms[key].docname} and "
                             f"{label.docname}")
        if clash := next((term for term in self.terms.values() if term.anchor == label.anchor), None):
            raise ValueError(f"glossary terms {clash.title!r} and {label.title!r} have the same anchor "
                             f"{label.anchor!r}")
        self.terms[key] = label


def html_id(label: str) -> str:
    """The HTML id docutils gives a label (lower case, runs of other characters as one hyphen)."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def term_key(term: str) -> str:
    """How the ``{term}`` role finds a glossary term: its whitespace collapsed, and, as Sphinx falls back to,
    whatever its case."""
    return " ".join(term.split()).lower()


def term_id(term: str) -> str:
    """The HTML id Sphinx gives a glossary term (``make_id(env, document, "term", term)``): ``term-`` and the
    term with its case kept, a few letters transliterated, other non-ASCII dropped after NFKD decomposition
    ("é" to "e", "–" to nothing), and runs of characters other than letters, digits, "." and "_" as one hyphen:
    "latent space" becomes "term-latent-space", "KL divergence" "term-KL-divergence"."""
    text = f"term-{term}".translate(SPHINX_ID_TRANSLATION)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-zA-Z0-9._]+", "-", " ".join(text.split()))
    return re.sub(r"^[-0-9._]+|-+$", "", text)


def glossary_terms(content: str, docname: str) -> list[str]:
    """The terms of a ``{glossary}`` directive's ``content``, as Sphinx reads them: each line that is not
    indented (several lines in a row name one entry), without a `` : `` classifier; ``..`` lines are comments.
    A term with inline markup is refused, since its anchor comes from the rendered text."""
    terms = []
    for line in content.split("\n"):
        if not line or line[0].isspace() or line.startswith(".. "):
            continue
        term = TERM_CLASSIFIER.split(line)[0].strip()
        if TERM_MARKUP.search(term):
            raise ValueError(f"{docname}.md: glossary term {term!r} has markup; write it as plain text")
        terms.append(term)
    return terms


def figure_options(cell: nbformat.NotebookNode) -> dict[str, str]:
    """A code cell's myst-nb figure options (``mystnb: figure: {caption, name}``), or {}."""
    options = (cell.metadata.get("mystnb") or {}).get("figure")
    return options if isinstance(options, dict) else {}


def _counter(chapter_number: int | None) -> Callable[[], str]:
    """Numbers "n.1", "n.2", ... for chapter n (just "1", "2", ... on an unnumbered page)."""
    count = 0

    def next_number() -> str:
        nonlocal count
        count += 1
        return f"{chapter_number}.{count}" if chapter_number else str(count)

    return next_number


def _index_sections(markdown: str, docname: str, index: BookIndex, top_seen: bool) -> bool:
    """Record the ``(label)=`` lines of one markdown cell, with the heading each names; returns whether the
    page's title (its first heading, level 1) has been seen."""
    pending: list[str] = []
    for line in "".join(piece for piece, is_code in split_code(markdown) if not is_code).split("\n"):
        if match := LABEL_LINE.match(line):
            pending.append(match["label"])
        elif heading := HEADING.match(line):
            top = not top_seen and len(heading["hashes"]) == 1
            index.titles.setdefault(docname, heading["title"])
            for name in pending:
                index.add(name, Label(docname, "section", heading["title"], "" if top else html_id(name)))
            pending, top_seen = [], True
        elif line.strip():
            for name in pending:
                index.add(name, Label(docname, "target", anchor=html_id(name)))
            pending = []
    for name in pending:
        index.add(name, Label(docname, "target", anchor=html_id(name)))
    return top_seen


def _index_directives(markdown: str, docname: str, index: BookIndex, next_figure: Callable[[], str],
                      next_exercise: Callable[[], str]) -> None:
    """Record the ``:name:`` of the admonitions and figures of one markdown cell, numbering captioned figures, and
    the ``:label:`` of its exercises, numbering those without ``:nonumber:`` (sphinx-exercise numbers them as
    Sphinx numbers figures: per chapter, in document order)."""
    def record(name: str, argument: str, options: dict[str, str], content: str) -> str:
        if name == "glossary":
            for term in glossary_terms(content, docname):
                index.add_term(Label(docname, "term", term, term_id(term)))
        elif name == "exercise":
            if "label" not in options:
                raise ValueError(f"{docname}.md: exercise {argument!r} has no :label:")
            number = "" if "nonumber" in options else next_exercise()
            index.add(options["label"], Label(docname, "exercise", argument, html_id(options["label"]), number))
        elif "name" in options:
            label = options["name"]
            if name == "figure":
                number = next_figure() if content.strip() else ""
                index.add(label, Label(docname, "figure", content.strip(), html_id(label), number))
            else:
                kind = "admonition" if name in ADMONITIONS else "target"
                index.add(label, Label(docname, kind, argument or name.capitalize(), html_id(label)))
        return ""

    walk_directives(markdown, record)


def index_page(notebook: nbformat.NotebookNode, docname: str, index: BookIndex, next_figure: Callable[[], str],
               next_equation: Callable[[], str], next_exercise: Callable[[], str]) -> None:
    """Record one page's labels: sections, admonitions, figures, exercises and labelled equations, numbering the
    figures Sphinx numbers (a caption, a name and an output), the exercises and the labelled equations, each in
    document order."""
    top_seen = False
    for cell in notebook.cells:
        if cell.cell_type == "code":
            options = figure_options(cell)
            if options.get("name"):
                numbered = options.get("caption") and not NO_OUTPUT_TAGS & set(cell.metadata.get("tags", []))
                index.add(options["name"], Label(docname, "figure", str(options.get("caption") or ""),
                                                 html_id(options["name"]), next_figure() if numbered else ""))
            continue
        top_seen = _index_sections(cell.source, docname, index, top_seen)
        _index_directives(cell.source, docname, index, next_figure, next_exercise)
        for piece, is_code in split_code(cell.source):
            for match in DISPLAY_MATH.finditer("" if is_code else piece):
                if match["label"]:
                    index.add(match["label"], Label(docname, "equation", anchor=f"equation-{html_id(match['label'])}",
                                                    number=next_equation()))


def _source_stamp(root: Path) -> tuple[tuple[str, int], ...]:
    pages = [root / "_toc.yml"] + [root / f"{docname}.md" for docname, _ in toc_pages(root)]
    return tuple((str(path), path.stat().st_mtime_ns) for path in pages if path.is_file())


@cache
def _book_index(root: Path, stamp: tuple[tuple[str, int], ...]) -> BookIndex:
    """The book's labels; ``stamp`` (the pages' modification times) only makes a changed page a new cache key."""
    index = BookIndex()
    counters: dict[int | None, tuple[Callable[[], str], ...]] = {}
    for docname, number in toc_pages(root):
        path = root / f"{docname}.md"
        if path.is_file():  # Sphinx counts per chapter number: unnumbered pages share one count
            figure, equation, exercise = counters.setdefault(number, tuple(_counter(number) for _ in range(3)))
            index_page(jupytext.read(path, fmt="md:myst"), docname, index, figure, equation, exercise)
    return index


def book_index(root: Path = REPO_ROOT) -> BookIndex:
    """The labels of every page in ``_toc.yml`` (read again when a page changes)."""
    return _book_index(root, _source_stamp(root))


# --- converting one markdown cell -------------------------------------------------------------------------------

@dataclass(frozen=True)
class GlueSite:
    """The names one code cell glues: literal names, f-string patterns, and, for ``glue(variable, ...)``, every
    string constant in the cell (the name comes from one of them)."""

    cell: int
    names: frozenset[str]
    patterns: tuple[re.Pattern, ...]

    def glues(self, name: str) -> bool:
        return name in self.names or any(pattern.fullmatch(name) for pattern in self.patterns)


def glue_site(source: str, cell: int) -> GlueSite:
    """What the ``glue(...)`` calls in one code cell's ``source`` record (for a cell that is not Python, after
    IPython's ``%``/``!`` lines are left out, only the names written as ``glue("name"``)."""
    try:
        tree = ast.parse(re.sub(r"^([ \t]*)[%!]", r"\1#", source, flags=re.MULTILINE))
    except SyntaxError:
        return GlueSite(cell, frozenset(re.findall(r"""\bglue\(\s*["']([^"']+)["']""", source)), ())
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    names: set[str] = set()
    patterns: list[re.Pattern] = []
    for node in ast.walk(tree):
        function = getattr(node.func, "id", getattr(node.func, "attr", None)) if isinstance(node, ast.Call) else None
        if function == "setup_chapter":
            patterns.append(SETTINGS_GLUE)
        if not (function == "glue" and node.args):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
        elif isinstance(first, ast.JoinedStr):
            parts = [re.escape(part.value) if isinstance(part, ast.Constant) else ".+" for part in first.values]
            patterns.append(re.compile("".join(parts)))
        else:
            names |= strings
    return GlueSite(cell, frozenset(names), tuple(patterns))


def glue_sites(notebook: nbformat.NotebookNode) -> list[GlueSite]:
    """The glue calls of every code cell that has one (or calls ``setup_chapter``), in cell order."""
    return [glue_site(cell.source, position) for position, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and ("glue" in cell.source or "setup_chapter" in cell.source)]


@dataclass(frozen=True)
class Context:
    """What converting one chapter's markdown needs to know."""

    chapter: Path
    docname: str
    index: BookIndex
    settings: Mapping[str, str]
    sites: tuple[GlueSite, ...] = ()
    bibliography: Mapping[str, pybtex.database.Entry] = field(default_factory=dict)  #: references.bib's entries
    cited: tuple[str, ...] = ()  #: the keys the chapter cites, in order of first citation

    def entry(self, key: str, role: str) -> pybtex.database.Entry:
        if key not in self.bibliography:
            raise ValueError(f"{self.docname}.md: unknown citation key {key!r} in {{{role}}} (not in {BIBLIOGRAPHY})")
        return self.bibliography[key]

    def label(self, name: str, role: str) -> Label:
        if name not in self.index.labels:
            raise ValueError(f"{self.docname}.md: unknown label {name!r} in {{{role}}}")
        return self.index.labels[name]

    def link(self, words: str, label: Label) -> str:
        """``words`` as they stand when ``label`` is on this page, else a link to it in the published book."""
        if label.docname == self.docname:
            return words
        if not self.settings.get("baseurl"):
            raise ValueError(f"{self.docname}.md links to {label.docname}: set html.baseurl in _config.yml")
        anchor = f"#{label.anchor}" if label.anchor else ""
        return f"[{words}]({self.settings['baseurl']}{label.docname}.html{anchor})"


def remove_labels_and_comments(markdown: str) -> str:
    """Drop ``(label)=`` lines and MyST ``%`` comment lines."""
    kept = (line for line in markdown.splitlines(keepends=True) if not LABEL_LINE.match(line.rstrip("\n")))
    return COMMENT_LINE.sub("", "".join(kept))


def tag_equations(markdown: str, context: Context) -> str:
    """``$$ body $$ (label)`` becomes ``$$ body \\tag{n.k} $$``, with the number the book shows beside it."""
    def tagged(match: re.Match) -> str:
        if not match["label"]:
            return match[0]
        number, body = context.label(match["label"], "eq").number, match["body"].rstrip()
        return f"$${body}\n\\tag{{{number}}}\n$$" if "\n" in body else f"$${body} \\tag{{{number}}} $$"

    return DISPLAY_MATH.sub(tagged, markdown)


def _target(content: str) -> tuple[str, str]:
    """A role's (own text or "", label): ``text <label>`` or ``label``."""
    match = EXPLICIT_TARGET.match(content.strip())
    return (match["text"], match["target"]) if match else ("", content.strip())


def _starts_sentence(before: str) -> bool:
    """Whether text that follows ``before`` starts a sentence: a paragraph's or list item's start, or after
    ". ", "? ", "! "."""
    words = before.rstrip()
    return (not words or words[-1] in ".!?" or before.rstrip(" \t").endswith("\n\n")
            or bool(re.fullmatch(rf"{LIST_MARKER}[ \t]*", before.rsplit("\n", 1)[-1])))


def sub_roles(markdown: str, replace: Callable[[re.Match], str]) -> str:
    """``markdown`` with each role (not inline code) replaced by ``replace(match)``."""
    return ROLE.sub(lambda match: match[0] if match["code"] else replace(match), markdown)


def find_role(markdown: str) -> re.Match | None:
    """The first role in ``markdown`` (outside inline code), if any."""
    return next((match for match in ROLE.finditer(markdown) if not match["code"]), None)


def numref_text(content: str, context: Context) -> str:
    """``{numref}`label``` as "Figure 5.2" or "Exercise 5.2"; ``{numref}`Text %s <label>``` with the number for
    ``%s``."""
    text, name = _target(content)
    label = context.label(name, "numref")
    if label.kind not in ("figure", "exercise") or not label.number:
        raise ValueError(f"{context.docname}.md: {{numref}} {name!r} is not a numbered figure or exercise")
    words = (text.replace("%s", label.number).replace("{number}", label.number) if text
             else f"{label.kind.capitalize()} {label.number}")
    return context.link(words, label)


def eq_text(content: str, context: Context) -> str:
    """``{eq}`label``` as "(5.3)"."""
    name = _target(content)[1]
    label = context.label(name, "eq")
    if label.kind != "equation":
        raise ValueError(f"{context.docname}.md: {{eq}} {name!r} is not a labelled equation")
    return context.link(f"({label.number})", label)


def ref_text(content: str, context: Context, before: str) -> str:
    """``{ref}``: its own text or the title it names. On the same page, "this chapter" for the page's top and
    "the section *Title*" for a section ("*Title*" right after the word "section"); on another page, a link."""
    text, name = _target(content)
    label = context.label(name, "ref")
    if label.kind == "exercise" and not text and label.number:
        return context.link(f"Exercise {label.number}", label)
    if not text and not label.title:
        raise ValueError(f"{context.docname}.md: {{ref}} {name!r} names no section or title; give it a text")
    if text or label.docname != context.docname:
        return context.link(text or label.title, label)
    if not label.anchor:
        words = "this chapter"
    elif label.kind == "section" and not re.search(r"\bsections?(?:\s+(?:on|about))?\s*$", before, re.IGNORECASE):
        words = f"the section *{label.title}*"
    else:
        words = f"*{label.title}*"
    return words[0].upper() + words[1:] if _starts_sentence(before) else words


def doc_text(content: str, context: Context) -> str:
    """``{doc}`path``` or ``{doc}`text <path>``` as a link to that page of the published book."""
    text, path = _target(content)
    joined = path.lstrip("/") if path.startswith("/") else posixpath.join(posixpath.dirname(context.docname), path)
    docname = re.sub(r"\.(md|ipynb)$", "", posixpath.normpath(joined))
    if docname not in context.index.titles:
        raise ValueError(f"{context.docname}.md: {{doc}} {path!r} is not a page of the book")
    return context.link(text or context.index.titles[docname], Label(docname, "section"))


def term_text(content: str, context: Context) -> str:
    """``{term}`x``` or ``{term}`text <x>``` as a link to glossary term ``x`` in the published book, with the
    role's own words ("x" as written, or "text")."""
    text, name = _target(content)
    label = context.index.terms.get(term_key(name))
    if label is None:
        raise ValueError(f"{context.docname}.md: unknown glossary term {name!r} in {{term}} (no {{glossary}} of "
                         "the book defines it)")
    return context.link(text or name, label)


def glue_place(name: str, position: int, sites: tuple[GlueSite, ...]) -> str:
    """Where the notebook prints the echo of glued ``name``, seen from cell ``position``: "printed above" (a code
    cell at or before it glues the name; for a setting that ``setup_chapter`` records, "among the settings printed
    above"), "printed below", or, when no cell visibly does, a vaguer truth."""
    if any(site.cell <= position and site.glues(name) for site in sites):
        return "among the settings printed above" if SETTINGS_GLUE.fullmatch(name) else "printed above"
    if any(site.glues(name) for site in sites):
        return "printed below"
    return "printed by a code cell of this notebook"


def _glue_note(places: Mapping[str, str]) -> str:
    """E.g. "`a` and `b` are printed above; `c` is printed below", for {name: place}."""
    groups: dict[str, list[str]] = {}
    for name, place in places.items():
        groups.setdefault(place, []).append(f"`{name}`")
    note = "; ".join(f"{', '.join(names[:-1])} and {names[-1]} are {place}" if len(names) > 1
                     else f"{names[0]} is {place}" for place, names in groups.items())
    return note[0].upper() + note[1:]


def replace_glue(block: str, position: int, context: Context) -> str:
    """The glue roles of one paragraph or list item as ```name```: followed by "(printed above)" when it is the
    only one (or in a table row, which must stay one line), else with one note at the end of the paragraph."""
    places: dict[str, str] = {}

    def glued(match: re.Match, inline_note: bool = False) -> str:
        if not match["name"].startswith("glue"):
            return match[0]
        if match["name"] not in ("glue", "glue:text", "glue:md"):
            raise ValueError(f"{context.docname}.md: unsupported role {{{match['name']}}}")
        name = match["content"].split(":", 1)[0].strip()
        places[name] = glue_place(name, position, context.sites)
        space = " " if match.string[: match.start()].endswith("`") else ""  # `a``b` would be one code span
        return f"{space}`{name}`" + (f" ({places[name]})" if inline_note else "")

    replaced = sub_roles(block, glued)
    if not places:
        return block
    if len(places) == 1 or block.lstrip().startswith("|"):
        return sub_roles(block, lambda match: glued(match, inline_note=True))
    body, end = replaced.rstrip(), replaced[len(replaced.rstrip()):]
    if body.endswith(":"):  # the paragraph leads into what follows: the note goes before its colon
        return f"{body[:-1]} ({_glue_note(places)}):{end}"
    return f"{body} ({_glue_note(places)}.){end}"


def _blocks(markdown: str) -> list[str]:
    """``markdown`` cut before each blank line, list item and fence: one paragraph or list item a piece."""
    return BLOCK_START.split(markdown)


# --- citations (sphinxcontrib-bibtex) ---------------------------------------------------------------------------

def _bibliography_stamp(root: Path) -> int:
    path = root / BIBLIOGRAPHY
    return path.stat().st_mtime_ns if path.is_file() else 0


@cache
def _read_bibliography(root: Path, stamp: int) -> dict[str, pybtex.database.Entry]:
    """``references.bib``'s entries by key ({} when there is none); ``stamp`` only makes a changed file a new key."""
    path = root / BIBLIOGRAPHY
    return dict(pybtex.database.parse_file(str(path)).entries) if stamp else {}


def read_bibliography(root: Path = REPO_ROOT) -> dict[str, pybtex.database.Entry]:
    """The entries of the book's ``references.bib``, by key."""
    return _read_bibliography(root, _bibliography_stamp(root))


def citation_targets(content: str) -> list[re.Match]:
    """The ``{pre}key{post}`` targets of one citation role's content."""
    return [CITATION_TARGET.fullmatch(part) or _malformed(content) for part in content.split(",")]


def _malformed(content: str) -> re.Match:
    raise ValueError(f"malformed citation target {content!r}")


def cited_keys(notebook: nbformat.NotebookNode) -> tuple[str, ...]:
    """The citation keys of a notebook's markdown cells (outside code), in order of first citation."""
    keys: dict[str, None] = {}
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for piece, is_code in split_code(cell.source):
            for match in ROLE.finditer("" if is_code else piece):
                if match["name"] and (match["name"] == "cite" or match["name"].startswith("cite:")):
                    keys.update((target["key"], None) for target in citation_targets(match["content"]))
    return tuple(keys)


def latex_text(value: str) -> str:
    """A BibTeX field as plain text: braces dropped, ``--`` as an en dash."""
    return plain_text(value).replace("--", "–")


def _people(entry: pybtex.database.Entry) -> list[pybtex.database.Person]:
    return list(entry.persons.get("author", []))


def citation_author(entry: pybtex.database.Entry) -> str:
    """The author part of an author-year citation, as the book shows it: "Kingma and Ba", "Goodfellow et al.", or
    the title when there is no author."""
    return author_names(entry) or latex_text(entry.fields["title"])


def citation_year(entry: pybtex.database.Entry) -> str:
    return entry.fields.get("year", "n.d.")


def citation_text(name: str, content: str, context: Context) -> str:
    """A citation role as text: ``{cite:p}`` "(Kingma and Ba, 2015)", ``{cite:t}`` "Kingma and Ba (2015)",
    ``{cite:yearpar}`` "(2015)", ``{cite:year}`` "2015", ``{cite:empty}`` nothing; several keys are joined with
    "; ", and a ``{pre}key{post}`` target gets its texts as in the book ("Chollet (2017, §4.5)")."""
    role = name.removeprefix("cite:") if name != "cite" else "p"
    if role not in ("p", "t", "year", "yearpar", "empty"):
        raise ValueError(f"{context.docname}.md: unsupported role {{{name}}}`{content}`")
    parts = []
    for target in citation_targets(content):
        entry = context.entry(target["key"], name)
        inner = citation_year(entry) if role != "p" else f"{citation_author(entry)}, {citation_year(entry)}"
        inner = " ".join(filter(None, [target["pre"], inner])) + (f", {target['post']}" if target["post"] else "")
        parts.append(f"{citation_author(entry)} ({inner})" if role == "t" else inner)
    if role == "empty":
        return ""
    return f"({'; '.join(parts)})" if role in ("p", "yearpar") else "; ".join(parts)


def _reference_authors(people: list[pybtex.database.Person]) -> str:
    """"Simard, P. Y., Steinkraus, D. & Platt, J. C.", "Abadi, M. et al." (a list that ends in "others")."""
    def name(person: pybtex.database.Person) -> str:
        initials = " ".join(f"{part[0]}." if "-" not in part else "-".join(f"{p[0]}." for p in part.split("-"))
                            for part in map(latex_text, person.first_names + person.middle_names))
        return f"{last_name(person)}, {initials}" if initials else last_name(person)

    others = bool(people) and is_others(people[-1])
    names = [name(person) for person in (people[:-1] if others else people)]
    if others:
        return f"{', '.join(names)} et al."
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} & {names[-1]}"


def _sentence(text: str) -> str:
    """``text`` ended with a full stop, unless it already ends a sentence ("?", "!", ".", also in italics)."""
    return text if text.rstrip("*").endswith((".", "?", "!")) else f"{text}."


def reference_markdown(entry: pybtex.database.Entry) -> str:
    """One reference as the book's hand-written lists had it: authors (year). Title. *Venue*, volume(number),
    pages. Publisher. arXiv link, URL, note."""
    fields = {key.lower(): latex_text(value) for key, value in entry.fields.items()}
    people, title = _people(entry), fields["title"]
    italic_title = entry.type in ("book", "misc", "mastersthesis", "phdthesis")
    title = f"*{title}*" if italic_title else title
    year = fields.get("year")
    if people:
        parts = [f"{_reference_authors(people)} ({year})." if year else _sentence(_reference_authors(people)),
                 _sentence(title)]
    else:
        parts = [_sentence(title)]
    pages = fields.get("pages", "")
    if entry.type == "article":
        volume = fields.get("volume", "") + (f"({fields['number']})" if "number" in fields else "")
        parts.append(", ".join(filter(None, [f"*{fields['journal']}*", volume, pages])) + ".")
    elif entry.type in ("inproceedings", "incollection"):
        prefix = "In " if entry.type == "incollection" else ""
        edition = f"{fields['edition']} ed." if "edition" in fields else ""
        parts.append(prefix + ", ".join(filter(None, [f"*{fields['booktitle']}*", edition, pages])) + ".")
    elif entry.type in ("mastersthesis", "phdthesis"):
        parts.append(", ".join(filter(None, [fields.get("type"), fields.get("school")])) + ".")
    venue = fields.get("howpublished", "")
    if not people and year:
        venue = ", ".join(filter(None, [venue, year]))
    parts += [f"{venue}." if venue else "", f"{fields['publisher']}." if "publisher" in fields else ""]
    if "eprint" in fields:
        parts.append(f"[arXiv:{fields['eprint']}](https://arxiv.org/abs/{fields['eprint']}).")
    if "url" in fields:
        parts.append(f"<{fields['url']}>")
    if "note" in fields:
        parts.append(f"({fields['note']}.)")
    return " ".join(filter(None, parts))


def _reference_order(entry: pybtex.database.Entry) -> tuple[str, str, str]:
    people = [person for person in _people(entry) if not is_others(person)]
    first = " ".join(last_name(person) for person in people) or latex_text(entry.fields["title"])
    return first.lower(), entry.fields.get("year", ""), latex_text(entry.fields["title"]).lower()


def bibliography_markdown(context: Context) -> str:
    """The chapter's ``{bibliography}``: a markdown list of the works it cites, by author then year."""
    entries = sorted((context.entry(key, "cite") for key in context.cited), key=_reference_order)
    if not entries:
        raise ValueError(f"{context.docname}.md: a {{bibliography}} but no citation in the chapter")
    return "\n".join(f"- {reference_markdown(entry)}" for entry in entries)


def replace_roles(markdown: str, position: int, context: Context) -> str:
    """Every role of markdown cell ``position`` as plain markdown; an unsupported role raises."""
    markdown = EMPTY_CITATION_LINE.sub("", markdown)
    markdown = "".join(replace_glue(block, position, context) for block in _blocks(markdown))

    def replace(match: re.Match) -> str:
        name, content = match["name"], match["content"]
        if name == "numref":
            return numref_text(content, context)
        if name == "eq":
            return eq_text(content, context)
        if name == "ref":
            return ref_text(content, context, match.string[: match.start()])
        if name == "doc":
            return doc_text(content, context)
        if name == "math":
            return f"${content}$"
        if name == "term":
            return term_text(content, context)
        if name == "cite" or name.startswith("cite:"):
            return citation_text(name, content, context)
        raise ValueError(f"{context.docname}.md: unsupported role {{{name}}}`{content}`")

    return sub_roles(markdown, replace)


def admonition_markdown(title: str, body: str, dropdown: bool) -> str:
    """An admonition as ``<details>`` (a dropdown) or as a blockquote that starts with its title in bold."""
    body = body.strip("\n")
    if dropdown:
        return f"<details><summary>{html.escape(title)}</summary>\n\n{body}\n\n</details>"
    quoted = "\n".join(f"> {line}".rstrip() for line in body.split("\n"))
    return f"> **{title}**\n>\n{quoted}" if body else f"> **{title}**"


def figure_markdown(path: str, options: Mapping[str, str], caption: str, number: str) -> str:
    """A ``{figure}``/``{image}`` directive as a markdown image, then its caption ("**Figure 5.2.** ...")."""
    image = f"![{options.get('alt', '')}]({path})"
    if not caption:
        return image
    return f"{image}\n\n**Figure {number}.** {caption}" if number else f"{image}\n\n{caption}"


def render_directive(name: str, argument: str, options: Mapping[str, str], content: str, context: Context) -> str:
    """One directive, its content already converted, as markdown; an unsupported one raises."""
    if name in ADMONITIONS:
        if name in ("admonition", "dropdown"):
            title = argument or ("Details" if name == "dropdown" else "Note")
        else:  # {note} and the like: the argument is the first line of the content
            title, content = {"seealso": "See also"}.get(name, name.capitalize()), f"{argument}\n{content}".strip("\n")
        dropdown = name == "dropdown" or "dropdown" in options.get("class", "").split()
        return admonition_markdown(title, content, dropdown)
    if name == "exercise":  # indexed with its :label: (book_index raises when it has none)
        number = context.label(options["label"], "exercise").number
        title = f"Exercise {number}" if number else "Exercise"
        return admonition_markdown(f"{title}: {argument}" if argument else title, content, dropdown=False)
    if name == "solution":
        context.label(argument, "solution")  # the exercise it solves must exist
        return admonition_markdown("Solution", content, dropdown=True)
    if name == "bibliography":
        if options != {"filter": "docname in docnames"} or argument or content.strip():
            raise ValueError(f"{context.docname}.md: a {{bibliography}} needs exactly ':filter: docname in docnames'")
        return bibliography_markdown(context)
    if name in ("figure", "image"):
        number = context.index.labels[options["name"]].number if "name" in options else ""
        return figure_markdown(argument, options, content.strip() if name == "figure" else "", number)
    raise ValueError(f"{context.docname}.md: unsupported directive {{{name}}} {argument}".rstrip())


def check_plain_markdown(markdown: str, context: Context) -> None:
    """Raise if MyST that Colab cannot show is left outside code: a role, a substitution or a top-level amsmath
    environment (which the book would number without a label)."""
    for piece, is_code in split_code(markdown):
        prose = "" if is_code else DISPLAY_MATH.sub("", piece)
        if role := find_role(prose):
            raise ValueError(f"{context.docname}.md: unsupported role {role[0]!r}")
        for pattern, what in ((SUBSTITUTION, "substitution"), (AMSMATH_ENVIRONMENT, "amsmath environment")):
            if match := pattern.search(prose):
                raise ValueError(f"{context.docname}.md: unsupported {what} {match[0]!r}")


def convert_markdown(markdown: str, position: int, context: Context) -> str:
    """One markdown cell (cell ``position`` of the notebook) as markdown that Colab renders."""
    markdown = map_text(markdown, remove_labels_and_comments)
    markdown = map_text(markdown, lambda text: tag_equations(text, context))
    markdown = map_text(markdown, lambda text: replace_roles(text, position, context))
    markdown = walk_directives(markdown, lambda *directive: render_directive(*directive, context=context))
    check_plain_markdown(markdown, context)
    return markdown


def caption_cell(cell: nbformat.NotebookNode, position: int, context: Context) -> nbformat.NotebookNode | None:
    """The markdown cell that shows a figure cell's caption under it, "**Figure 5.2.** ..." (None: no caption)."""
    options = figure_options(cell)
    caption = " ".join(str(options.get("caption") or "").split())
    if not caption:
        return None
    caption = convert_markdown(caption, position, context)
    number = context.index.labels[options["name"]].number if options.get("name") else ""
    return nbformat.v4.new_markdown_cell(f"**Figure {number}.** {caption}" if number else caption)


# --- the notebook -----------------------------------------------------------------------------------------------

def setup_cell_source(settings: dict[str, str], install_target: str | None = None) -> str:
    """The first cell: install ``mlbook`` from the repository (or from ``install_target``, e.g. a local path)."""
    target = install_target or f"git+{settings['url']}@{settings['branch']}#subdirectory=code"
    return (
        "# Colab set-up: install this book's code package, mlbook (a minute on a fresh runtime).\n"
        f'%pip install -q "{target}"'
    )


COMPARE_CELL_TAG = "mlbook-compare"
#: The tags of the cells that only the reader's notebook has (the chapter has no such cell): the set-up and the
#: comparison with the book.
READER_ONLY_TAGS = frozenset({SETUP_CELL_TAG, COMPARE_CELL_TAG})


def compare_cells(docname: str) -> list[nbformat.NotebookNode]:
    """The last cells of a chapter with headline numbers: a heading and :func:`mlbook.compare_with_book`."""
    heading = ("## Did your run match the book?\n\n"
               "The cell below sets the headline numbers your run recorded beside the book's: ✓ where yours lies in "
               "the band the book's own build is checked against, ✗ where it does not, with the book's value. For a "
               "✗ it also names the installed packages whose versions differ from the book's build, and the device. "
               "Run it after the cells above.")
    code = f'from mlbook import compare_with_book\n\ncompare_with_book("{docname}")'
    return [nbformat.v4.new_markdown_cell(heading),
            nbformat.v4.new_code_cell(code, metadata={"tags": [COMPARE_CELL_TAG]})]


def chapters_with_numbers(root: Path) -> set[str]:
    """The chapters that record headline numbers (``_results.yml``; none in a book without that file)."""
    registry = root / REGISTRY_FILE
    return {number.chapter for number in load_registry(registry).expected} if registry.is_file() else set()


def _cells(notebook: nbformat.NotebookNode, context: Context, root: Path) -> Iterator[nbformat.NotebookNode]:
    """The chapter's cells for Colab: markdown converted, outputs stripped, a caption cell after each figure."""
    for position, cell in enumerate(notebook.cells):
        caption = None
        if cell.cell_type == "markdown":
            source = _absolute_images(_inline_literalincludes(cell.source, context.chapter), context.chapter,
                                      dict(context.settings), root)
            cell.source = convert_markdown(source, position, context)
        elif cell.cell_type == "code":
            caption = caption_cell(cell, position, context)
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("mystnb", None)  # the book's figure options: the caption now has a cell of its own
        yield cell
        if caption:
            yield caption


def make_notebook(chapter: Path, settings: dict[str, str] | None = None,
                  root: Path = REPO_ROOT) -> nbformat.NotebookNode:
    """The Colab notebook for one chapter (outputs stripped, set-up cell first, markdown without MyST)."""
    settings = settings or book_settings(root)
    notebook = jupytext.read(chapter, fmt="md:myst")
    accelerator = (notebook.metadata.get("mlbook") or {}).get("accelerator")
    docname = chapter.relative_to(root).with_suffix("").as_posix()
    context = Context(chapter, docname, book_index(root), settings, tuple(glue_sites(notebook)),
                      read_bibliography(root), cited_keys(notebook))
    setup = nbformat.v4.new_code_cell(setup_cell_source(settings), metadata={"tags": [SETUP_CELL_TAG]})
    compare = compare_cells(docname) if docname in chapters_with_numbers(root) else []
    notebook.cells = [setup, *_cells(notebook, context, root), *compare]
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
