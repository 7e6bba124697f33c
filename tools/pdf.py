"""The PDF edition of the book (``make pdf``): a single-page HTML build printed by headless Chromium.

1. ``jupyter-book build --builder singlehtml`` writes the whole book as one page into ``<output>/_build/singlehtml``.
   It shares ``<output>/_build/.jupyter_cache`` (the execution cache of ``make book``, chosen by
   ``tools/mlbook_build.py`` beside the output folder), ``jupyter_execute`` and ``.doctrees`` with the HTML build,
   so after ``make book`` nothing is executed and nothing is read again: the build only writes the page.
   Do not run it at the same time as ``make book`` (they share ``.doctrees``).
2. Chromium (Debian's ``chromium``, driven by Playwright; never ``playwright install``) opens that page from
   ``file://`` with the network refused, waits for MathJax (served from the build's ``_static``) to typeset every
   equation, applies :data:`PRINT_CSS` (a page break before each chapter, no sidebars or buttons, code wrapped,
   figures kept whole, dropdowns opened) and prints A4 pages with page numbers in the footer, an outline
   (bookmarks from the headings) and a tagged PDF, to ``<output>/_build/pdf/ml-notebook.pdf``.
3. The PDF is copied into the HTML folder (``<output>/_build/html/ml-notebook.pdf``), where the introduction's
   "PDF edition" link points.

Any request that is not ``file:``/``data:``/``blob:`` is refused and fails the build, so the PDF is made offline.

Usage: ``python tools/pdf.py [--path-output DIR] [--pdf PATH] [--no-strict] [--no-build] [--no-copy]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

BOOK_ROOT = Path(__file__).resolve().parents[1]
PDF_NAME = "ml-notebook.pdf"
PRINT_PAGE_NAME = "ml-notebook.html"
#: Chromium, headless, as root, with none of the background traffic a closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: URL schemes the page may load; anything else is refused and fails the build.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
#: Milliseconds to wait for MathJax, the fonts and the images of the whole book.
RENDER_TIMEOUT_MS = 180_000

PRINT_CSS = """
@page { size: A4; margin: 16mm 15mm 18mm 15mm; }
html, body { background: white !important; font-size: 10.5pt; }
/* the site's furniture: navbar, sidebars, article header buttons, footers, prev/next, search, launch buttons */
.bd-header, .bd-header-announcement, .bd-sidebar-primary, .bd-sidebar-secondary, .header-article,
.bd-header-article, .bd-footer, .bd-footer-article, .bd-footer-content, .footer-article, .prev-next-area,
.prev-next-footer, #pst-skip-link, .skip-link, .search-button-field, .theme-switch-button, .copybtn,
button, .headerlink, .toggle-button, .mlbook-web-only { display: none !important; }
.bd-container, .bd-container__inner, .bd-main, .bd-content, .bd-article-container, .bd-article, main {
  display: block !important; max-width: none !important; width: auto !important; margin: 0 !important;
  padding: 0 !important; overflow: visible !important; }
/* every document of the book starts a new page (Sphinx marks each with <span id="document-...">) */
span[id^="document-"] { display: block; break-before: page; height: 0; }
h1, h2, h3, h4 { break-after: avoid; }
/* code is wrapped, not cut at the right margin */
pre, .highlight pre, .output pre, div.highlight { white-space: pre-wrap !important; overflow-wrap: anywhere;
  word-break: break-word; overflow: visible !important; max-height: none !important; }
div.cell_output, div.output, .cell_output .output { overflow: visible !important; max-height: none !important; }
/* figures and equations are never split over two pages; wide ones shrink to the text width */
figure, .figure, img, .cell_output img, div.math, mjx-container[display="true"], table {
  break-inside: avoid; }
img { max-width: 100% !important; height: auto !important; }
mjx-container[display="true"] { overflow: visible !important; max-width: 100%; }
table { overflow: visible !important; }
a { color: inherit; text-decoration: none; }
details { break-inside: auto; }
"""

#: Run in the page before printing: light theme, dropdowns open, images loaded now, the PDF link unlinked.
PREPARE_PAGE_JS = """
async () => {
  document.documentElement.dataset.theme = "light";
  document.documentElement.dataset.mode = "light";
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  document.querySelectorAll(".toggle-hidden").forEach((e) => e.classList.remove("toggle-hidden"));
  document.querySelectorAll("a.mlbook-pdf-link").forEach((a) => a.removeAttribute("href"));
  const images = [...document.images];
  images.forEach((img) => { img.loading = "eager"; });
  await Promise.all(images.map((img) => img.complete ? null
      : new Promise((done) => { img.onload = done; img.onerror = done; })));
  await document.fonts.ready;
  return images.filter((img) => !img.naturalWidth).map((img) => img.src);
}
"""


def chromium_executable() -> str:
    """Debian's ``chromium`` (this machine, CI), else a preinstalled Chrome (GitHub's ubuntu runners).

    Raises:
        FileNotFoundError: if none is on ``PATH``.
    """
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    raise FileNotFoundError("no Chromium found: apt-get install -y --no-install-recommends chromium "
                            "(tools/ensure-chromium does it)")


def build_singlehtml(book_root: Path, path_output: Path, strict: bool = True) -> Path:
    """Build the book as one HTML page into ``<path_output>/_build/singlehtml`` and return that page.

    The build uses the execution cache in ``<path_output>/_build/.jupyter_cache``, so building after
    ``jupyter-book build`` (``make book``) with the same ``path_output`` executes nothing.

    Args:
        book_root: the folder with ``_config.yml`` and ``_toc.yml``.
        path_output: the folder that holds ``_build`` (``--path-output`` of the HTML build).
        strict: ``-W --keep-going`` (warnings fail the build), as ``make book`` builds.

    Raises:
        subprocess.CalledProcessError: if the build fails.
    """
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(book_root), "--builder", "singlehtml", "--path-output",
               str(path_output)] + (["-W", "--keep-going"] if strict else [])
    # a build started from pytest must run its kernels as `make book` does (see tests/conftest.py)
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}
    subprocess.run(command, check=True, env=env)
    return singlehtml_page(book_root, path_output)


def singlehtml_page(book_root: Path, path_output: Path) -> Path:
    """The single page, ready to print from ``file://``: a copy of ``<root document>.html`` at the top of the
    ``singlehtml`` folder (its ``index.html`` only redirects).

    With a root document in a subfolder (``book/intro``), Sphinx's ``singlehtml`` builder writes the page there
    but its URLs as seen from the top folder (``_static/...``, ``_images/...``, ``book/intro.html#label``), so the
    copy sits at the top and its links to itself become plain ``#label`` links (internal links in the PDF).

    Raises:
        FileNotFoundError: if the single-page build is missing.
    """
    root_doc = yaml.safe_load((book_root / "_toc.yml").read_text(encoding="utf-8"))["root"]
    folder = path_output / "_build" / "singlehtml"
    html = (folder / f"{root_doc}.html").read_text(encoding="utf-8")
    page = folder / PRINT_PAGE_NAME
    page.write_text(html.replace(f'href="{root_doc}.html#', 'href="#'), encoding="utf-8")
    return page


def print_page(page_path: Path, pdf_path: Path, title: str = "ML Notebook") -> None:
    """Open ``page_path`` in headless Chromium with the network refused and print it to ``pdf_path``.

    Raises:
        RuntimeError: if the page asked for anything that is not local, an image did not load, or an equation
            was left as raw TeX.
    """
    from playwright.sync_api import sync_playwright

    refused: list[str] = []

    def refuse_remote(route) -> None:  # noqa: ANN001 - playwright's Route
        if route.request.url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(color_scheme="light", service_workers="block")
            context.route("**/*", refuse_remote)
            page = context.new_page()
            page.on("request", lambda request: request.url.startswith(LOCAL_SCHEMES) or refused.append(request.url))
            page.goto(page_path.as_uri(), wait_until="load", timeout=RENDER_TIMEOUT_MS)
            wait_for_mathjax(page)
            page.emulate_media(media="print")
            page.add_style_tag(content=PRINT_CSS)
            broken = page.evaluate(PREPARE_PAGE_JS)
            raw_tex = page.locator("div.math:not(:has(mjx-container))").count()
            problems = ([f"requests to the network (refused): {sorted(set(refused))[:10]}"] if refused else []) + (
                [f"images that did not load: {broken[:10]}"] if broken else []) + (
                [f"{raw_tex} display equations left as raw TeX"] if raw_tex else [])
            if problems:
                raise RuntimeError("; ".join(problems))
            page.pdf(path=str(pdf_path), format="A4", print_background=True, prefer_css_page_size=True,
                     display_header_footer=True, header_template="<span></span>",
                     footer_template=footer_html(title), outline=True, tagged=True)
        finally:
            browser.close()


def wait_for_mathjax(page) -> None:  # noqa: ANN001 - playwright's Page
    """Wait until MathJax 3 has loaded and typeset the page (its ``startup.promise`` resolves after that)."""
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                           timeout=RENDER_TIMEOUT_MS)
    page.evaluate("() => MathJax.startup.promise.then(() => true)")


def footer_html(title: str) -> str:
    """Chromium's footer template: the book's title on the left, "page / pages" on the right."""
    style = "font-size:8pt;color:#555;width:100%;margin:0 15mm;display:flex;justify-content:space-between"
    return (f'<div style="{style}"><span>{title}</span>'
            '<span><span class="pageNumber"></span> / <span class="totalPages"></span></span></div>')


def publish(pdf_path: Path, html_dir: Path) -> Path | None:
    """Copy the PDF into the HTML output (where the introduction links to it); ``None`` if there is no HTML build."""
    if not html_dir.is_dir():
        return None
    return Path(shutil.copy2(pdf_path, html_dir / PDF_NAME))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path-output", type=Path, default=BOOK_ROOT,
                        help="the folder holding _build, as for jupyter-book build (default: the book)")
    parser.add_argument("--pdf", type=Path, help="where to write the PDF (default: <path-output>/_build/pdf/"
                        f"{PDF_NAME})")
    parser.add_argument("--no-strict", action="store_true", help="do not fail the build on Sphinx warnings")
    parser.add_argument("--no-build", action="store_true", help="print the existing single-page build")
    parser.add_argument("--no-copy", action="store_true", help="do not copy the PDF into the HTML folder")
    args = parser.parse_args(argv)
    path_output = args.path_output.resolve()
    pdf_path = (args.pdf or path_output / "_build" / "pdf" / PDF_NAME).resolve()
    started = time.perf_counter()
    page = (singlehtml_page(BOOK_ROOT, path_output) if args.no_build
            else build_singlehtml(BOOK_ROOT, path_output, strict=not args.no_strict))
    built = time.perf_counter()
    print_page(page, pdf_path)
    copy = None if args.no_copy else publish(pdf_path, path_output / "_build" / "html")
    print(f"[pdf] {pdf_path} ({pdf_path.stat().st_size / 1e6:.1f} MB): single-page build "
          f"{built - started:.0f} s, printing {time.perf_counter() - built:.0f} s"
          + (f"; copied to {copy}" if copy else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
