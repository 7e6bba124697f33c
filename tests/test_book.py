"""Smoke build of the whole book in the quick profile, into a temporary folder, with a fresh weights cache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

REPO_ROOT = Path(__file__).resolve().parents[1]


def toc_files(toc: dict) -> list[str]:
    """Every file named in a jb-book table of contents, root first."""
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("chapters")), walk(entry.get("sections"))

    for part in toc.get("parts", [toc]):
        walk(part.get("chapters"))
    return found


def pages(html: Path) -> dict[str, BeautifulSoup]:
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    return {name: BeautifulSoup((html / f"{name}.html").read_text(), "html.parser") for name in toc_files(toc)}


@pytest.mark.slow
def test_every_toc_entry_is_a_page(built_book):
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    missing = [name for name in toc_files(toc) if not (built_book / f"{name}.html").is_file()]
    assert not missing, f"no page for toc entries {missing}"
    # only toc files become pages: nothing from code/, tests/ or .github/
    assert not any((built_book / folder).exists() for folder in ("code", "tests", ".github", "requirements"))


@pytest.mark.slow
def test_chapters_embed_their_figures(built_book):
    soup = pages(built_book)["book/foundations/numpy-nn"]
    figures = soup.select("figure img, .cell_output img")
    assert len(figures) >= 4, f"expected the chapter's figures, found {len(figures)} images"
    chapter_dir = built_book / "book/foundations"
    for image in figures:
        assert (chapter_dir / image["src"]).resolve().is_file(), f"broken image {image['src']}"


@pytest.mark.slow
def test_mathjax_is_served_from_the_build_and_maths_present(built_book):
    page = (built_book / "book/foundations/numpy-nn.html").read_text()
    scripts = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', page, re.IGNORECASE)
    assert scripts, "MathJax is not loaded"
    assert not any("://" in src for src in scripts), f"MathJax comes from the network: {scripts}"
    # a rebuild into the same folder finds the files already there, and Sphinx then adds a "?v=<checksum>" query
    assert all((built_book / "book/foundations" / src.split("?")[0]).resolve().is_file() for src in scripts)
    assert (built_book / "_static/mathjax/output/chtml/fonts/woff-v2").is_dir()  # the fonts it loads
    assert "\\frac" in page and 'class="math' in page


@pytest.mark.slow
def test_no_error_output_in_any_page(built_book):
    for name, soup in pages(built_book).items():
        text = soup.get_text()
        assert "Traceback" not in text, f"traceback in {name}"
        assert not soup.select(".output.stderr, .output.error, .output.traceback"), f"stderr/error output in {name}"
    reports = built_book / "reports"
    assert not reports.exists() or not any(reports.iterdir()), "execution failure reports were written"


#: MyST markup that a page should never show as text: substitutions, roles, colon fences, directives and targets.
LEFTOVER_MARKUP = re.compile(
    r"\{\{[^}]*\}\}"                      # {{ substitution }}
    r"|\{(?:glue|numref|eq|ref|doc|term|math|download|cite)(?::\w+)?\}`"  # {role}`...`
    r"|^\s*:{3,}\s*\{?\w"                     # ::: fences
    r"|```\{\w"                             # ```{directive}
    r"|^\s*\([\w-]+\)=\s*$",                   # (label)=
    re.MULTILINE,
)
#: A native library's log line (glog/absl format) or absl's notice, as TensorFlow writes them to stderr.
NATIVE_LOG = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]|absl::InitializeLog|oneDNN custom operations")


def prose_text(soup: BeautifulSoup) -> str:
    """A page's visible text outside code blocks (inline code included), one block element per line."""
    article = soup.select_one("article") or soup
    for block in article.select("pre, script, style, .cell_input"):
        block.decompose()
    return article.get_text("\n")


@pytest.mark.slow
def test_no_page_shows_leftover_markup(built_book):
    for name, soup in pages(built_book).items():
        leftovers = [match.group(0) for match in LEFTOVER_MARKUP.finditer(prose_text(soup))]
        assert not leftovers, f"{name} shows raw markup: {leftovers[:5]}"


def test_leftover_markup_pattern_catches_what_myst_leaves_unrendered():
    soup = BeautifulSoup("<article><p>fingerprint <code>{{ mlbook_fingerprint }}</code>, "
                         "{numref}`fig-x` and {glue:text}`acc:.3f`</p><pre>f'{{x}}'</pre></article>", "html.parser")
    found = LEFTOVER_MARKUP.findall(prose_text(soup))
    assert found == ["{{ mlbook_fingerprint }}", "{numref}`", "{glue:text}`"]


@pytest.mark.slow
def test_no_page_shows_native_log_lines(built_book):
    for name in pages(built_book):
        page = (built_book / f"{name}.html").read_text()
        assert not NATIVE_LOG.search(page), f"{name} shows a native log line: {NATIVE_LOG.search(page).group(0)}"


@pytest.mark.slow
def test_build_report_names_profile_and_chapters(built_book):
    report = pages(built_book)["book/build-report"].get_text()
    assert "quick profile" in report
    assert re.search(r"fingerprint [0-9a-f]{16}\.", report), "the fingerprint substitution was not rendered"
    assert "foundations/numpy-nn" in report and "✅" in report


def test_api_page_documents_every_module():
    """A new module must be added to book/api.md (the page fails no build by itself when one is missing)."""
    api = (REPO_ROOT / "book/api.md").read_text()
    modules = sorted(p.stem for p in (REPO_ROOT / "code/src/mlbook").glob("*.py") if not p.stem.startswith("_"))
    missing = [m for m in modules if f".. automodule:: mlbook.{m}\n" not in api]
    assert not missing, f"book/api.md lacks: {missing}"


@pytest.mark.slow
def test_api_page_renders_signatures(built_book):
    soup = pages(built_book)["book/api"]
    names = {tag.get_text() for tag in soup.select(".sig-name")}
    assert {"load_or_train", "setup_chapter", "NeuralNetwork", "load_mnist_like"} <= names
