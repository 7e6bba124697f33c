"""Smoke build of the whole book in the quick profile, into a temporary folder, with a fresh weights cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


@pytest.fixture(scope="module")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("book")
    env = {**os.environ, "MLBOOK_PROFILE": "quick", "MLBOOK_CACHE": str(output / "weights-cache"),
           "MLBOOK_OFFLINE": "1"}
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(REPO_ROOT), "--path-output", str(output), "-W", "--keep-going"],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    return output / "_build" / "html"


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
def test_mathjax_and_maths_present(built_book):
    page = (built_book / "book/foundations/numpy-nn.html").read_text()
    assert re.search(r"<script[^>]+mathjax", page, re.IGNORECASE), "MathJax is not loaded"
    assert "\\frac" in page and 'class="math' in page


@pytest.mark.slow
def test_no_error_output_in_any_page(built_book):
    for name, soup in pages(built_book).items():
        text = soup.get_text()
        assert "Traceback" not in text, f"traceback in {name}"
        assert not soup.select(".output.stderr, .output.error, .output.traceback"), f"stderr/error output in {name}"
    reports = built_book / "reports"
    assert not reports.exists() or not any(reports.iterdir()), "execution failure reports were written"


@pytest.mark.slow
def test_build_report_names_profile_and_chapters(built_book):
    report = pages(built_book)["book/build-report"].get_text()
    assert "quick profile" in report
    assert "foundations/numpy-nn" in report and "✅" in report
