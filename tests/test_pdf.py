"""The PDF edition (``make pdf``, ``tools/pdf.py``), read back with pypdf: every chapter, a number of each chapter
as its page shows it, and the figures.

One PDF per session: ``MLBOOK_PDF=<a built PDF>`` reads that one (CI passes the PDF it publishes, printed from the
build that ``MLBOOK_BOOK_HTML`` names); otherwise the PDF is printed from the ``built_book`` build, reusing its
execution cache, into a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from bs4 import BeautifulSoup

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import mlbook_build  # noqa: E402
import pdf  # noqa: E402
from conftest import build_environment  # noqa: E402
from test_book import toc_files  # noqa: E402

#: ``{glue:text}`key:fmt``` in a chapter's source: a glued number shown with a format.
GLUE_WITH_FORMAT = re.compile(r"\{glue:text\}`(?P<key>[\w-]+):(?P<fmt>[^`]+)`")


def normalised(text: str) -> str:
    """Text as compared here: ligatures and wide forms unfolded (NFKC), typographic quotes and dashes made plain,
    whitespace collapsed (a title may wrap over two lines of the PDF)."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "−": "-",
                                         "\u00ad": None}))
    return " ".join(text.split())


def squeezed(text: str) -> str:
    """``text`` without spaces: a PDF's text may lose the space where a line wraps ("TensorFlow:handwritten")."""
    return "".join(normalised(text).split())


def chapter_title(docname: str) -> str:
    """The page's ``# `` heading, without its Markdown emphasis and code marks."""
    source = (REPO_ROOT / f"{docname}.md").read_text(encoding="utf-8")
    heading = re.search(r"^# (.+)$", source, re.MULTILINE)
    assert heading, f"{docname}.md has no '# ' title"
    return normalised(re.sub(r"[`*]", "", heading.group(1)))


@pytest.fixture(scope="session")
def pdf_file(built_book: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("MLBOOK_PDF"):
        return Path(os.environ["MLBOOK_PDF"])
    pdf = tmp_path_factory.mktemp("pdf") / "ml-notebook.pdf"
    env = build_environment(MLBOOK_PROFILE="quick", MLBOOK_OFFLINE="1",
                            MLBOOK_CACHE=str(tmp_path_factory.mktemp("pdf-weights")))
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools/pdf.py"), "--path-output", str(built_book.parent.parent),
         "--pdf", str(pdf), "--no-copy"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"make pdf failed:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    return pdf


@pytest.fixture(scope="session")
def reader(pdf_file: Path):
    from pypdf import PdfReader

    return PdfReader(pdf_file)


class PageTexts:
    """Each page's text without spaces (:func:`squeezed`), extracted when first asked for (a page takes ~0.1 s)."""

    def __init__(self, reader) -> None:
        self.reader, self.texts = reader, {}

    def __len__(self) -> int:
        return len(self.reader.pages)

    def __getitem__(self, index: int) -> str:
        index = index % len(self)
        if index not in self.texts:
            self.texts[index] = squeezed(self.reader.pages[index].extract_text() or "")
        return self.texts[index]


@pytest.fixture(scope="session")
def page_texts(reader) -> PageTexts:
    return PageTexts(reader)


@pytest.fixture(scope="session")
def chapter_starts(reader) -> dict[str, int]:
    """Each toc page's first page (0-based), from the PDF's outline: its bookmark that holds the page's title. A page
    other than the first must start a new page: the bookmark before its own points to an earlier page."""
    flat: list[tuple[str, int]] = []

    def walk(items) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                flat.append((squeezed(item.title), reader.get_destination_page_number(item)))

    walk(reader.outline)
    starts, position = {}, 0
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    for docname in toc_files(toc):  # in the toc's order: a section titled "Results" comes before the Results page
        title = chapter_title(docname)
        found = next((i for i in range(position, len(flat)) if squeezed(title) in flat[i][0]), None)
        after = flat[position - 1] if position else "the start"
        assert found is not None, f"no bookmark for {docname} ({title!r}) after {after}"
        assert found == 0 or flat[found - 1][1] < flat[found][1], f"{docname} does not start a new page"
        starts[docname], position = flat[found][1], found + 1
    return starts


def test_the_printed_page_links_to_itself_with_plain_anchors(tmp_path):
    """Sphinx writes the single page of a book rooted at book/intro into book/ but its URLs as seen from the top
    folder; the copy that is printed sits at the top, and its links to itself become in-document links."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    page = tmp_path / "_build/singlehtml/book/intro.html"
    page.parent.mkdir(parents=True)
    page.write_text('<img src="_images/a.png"><a href="book/intro.html#fig-x">Fig. 1</a><a href="#eq-y">(1)</a>')
    printed = pdf.singlehtml_page(tmp_path, tmp_path)
    assert printed.parent == page.parent.parent
    assert printed.read_text() == '<img src="_images/a.png"><a href="#fig-x">Fig. 1</a><a href="#eq-y">(1)</a>'


@pytest.mark.parametrize("builder", ["singlehtml", "html"])
def test_the_single_page_builder_renders_every_node_the_html_builder_renders(builder):
    """sphinx-exercise registers its nodes for singlehtml, which hides every handler registered for html alone."""
    handlers = {"html": {"hide_code_cell": "html", "exercise": "html"}, "singlehtml": {"exercise": "singlehtml"}}
    app = SimpleNamespace(builder=SimpleNamespace(name=builder),
                          registry=SimpleNamespace(translation_handlers=handlers))
    mlbook_build.inherit_html_handlers(app)
    expected = ({"hide_code_cell": "html", "exercise": "singlehtml"} if builder == "singlehtml"
                else {"exercise": "singlehtml"})
    assert handlers["singlehtml"] == expected and handlers["html"] == {"hide_code_cell": "html", "exercise": "html"}


@pytest.mark.slow
def test_pdf_has_pages_numbers_and_an_outline(reader, page_texts):
    assert len(reader.pages) >= 50, f"only {len(reader.pages)} pages"
    last = len(reader.pages)
    assert f"1/{last}" in page_texts[0] and f"{last}/{last}" in page_texts[-1], "no page numbers in the footer"
    assert reader.outline, "the PDF has no outline (bookmarks)"


@pytest.mark.slow
def test_every_chapter_has_a_bookmark_and_starts_a_page_with_its_title(chapter_starts, page_texts):
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    names = toc_files(toc)
    for name in names:
        title = chapter_title(name)
        assert squeezed(title) in page_texts[chapter_starts[name]], f"{name}: {title!r} not on its first page"
    starts = [chapter_starts[name] for name in names]
    assert starts == sorted(starts), f"chapters out of the toc's order: {dict(zip(names, starts))}"


@pytest.mark.slow
def test_each_chapter_shows_a_glued_number_of_this_build(built_book, chapter_starts, page_texts):
    """One number per chapter of ``results-<profile>.json``, formatted as the chapter shows it, on the chapter's
    own pages (the Results page lists every number too, so the whole PDF would prove little)."""
    report = json.loads(next(built_book.glob("results-*.json")).read_text(encoding="utf-8"))
    order = sorted(chapter_starts.values())
    checked = {}
    for row in report["results"]:
        docname, value = row["chapter"], row["value"]
        if docname in checked or value is None:
            continue
        source = (REPO_ROOT / f"{docname}.md").read_text(encoding="utf-8")
        # as the text pastes it ({glue:text}`key:fmt`); a number only printed by a cell uses the Results format
        fmt = next((m["fmt"] for m in GLUE_WITH_FORMAT.finditer(source) if m["key"] == row["key"]), row["fmt"])
        start = chapter_starts[docname]
        end = next((page for page in order if page > start), len(page_texts))
        shown = squeezed(format(value, fmt))
        assert any(shown in page_texts[page] for page in range(start, end)), \
            f"{docname}: {row['key']} = {shown} not on pages {start + 1}-{end}"
        checked[docname] = shown
    chapters = {row["chapter"] for row in report["results"]}
    assert set(checked) == chapters, f"no number checked for {sorted(chapters - set(checked))}"


def image_count(resources) -> int:
    """Image XObjects drawn with ``resources``, inside form XObjects too (counted, not decoded: fast)."""
    count = 0
    for xobject in (resources.get_object().get("/XObject") or {}).values():
        xobject = xobject.get_object()
        if xobject.get("/Subtype") == "/Image":
            count += 1
        elif xobject.get("/Subtype") == "/Form" and "/Resources" in xobject:
            count += image_count(xobject["/Resources"])
    return count


@pytest.mark.slow
def test_every_figure_of_the_site_is_in_the_pdf(built_book, reader):
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    figures = sum(len(BeautifulSoup((built_book / f"{name}.html").read_text(), "html.parser").select("figure img"))
                  for name in toc_files(toc))
    images = sum(image_count(page["/Resources"]) for page in reader.pages)
    assert figures > 0 and images >= figures, f"{images} images in the PDF for {figures} figures on the site"
