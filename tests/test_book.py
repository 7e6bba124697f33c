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
def test_every_image_in_a_chapter_has_meaningful_alternative_text(built_book):
    for name, soup in pages(built_book).items():
        for image in soup.select("main img"):
            alt = image.get("alt", "").strip()
            assert len(alt.split()) >= 2, f"{name}: image {image.get('src', '')[:60]} has no meaningful alt: {alt!r}"
            assert not re.search(r"\.(png|jpe?g|gif|svg)$", alt) and "_images/" not in alt, f"{name}: alt is a path"
        for figure in soup.select("main figure"):
            caption = figure.select_one("figcaption")
            if caption is not None and figure.select("img"):
                # the caption's own words (after "Fig. N"; maths aside, which MathJax renders apart) make the alt
                words = [w for w in caption.get_text(" ", strip=True).split()[2:12] if w.isalpha()]
                alt = figure.img["alt"]
                assert alt.startswith("Figure: ") and sum(w in alt for w in words) >= min(3, len(words)), (
                    f"{name}: alt is not the caption: {alt!r}")


@pytest.mark.slow
def test_every_page_offers_an_edit_link_and_states_the_licences(built_book):
    for name, soup in pages(built_book).items():
        edit = soup.select_one('a[href*="/edit/main/"]')
        assert edit is not None and edit["href"].endswith(f"{name}.md"), f"{name}: no edit link to its source"
        footer = soup.get_text(" ", strip=True)
        assert "CC BY 4.0" in footer and "MIT" in footer, f"{name}: the licences are not stated"


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
NATIVE_LOG = re.compile(
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]|absl::InitializeLog|oneDNN custom operations")


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


#: The numbered chapters: pages of the table of contents with a kernelspec (the notebooks), numbered 1.. in order.
CHAPTER_PAGES = [name for name in toc_files(yaml.safe_load((REPO_ROOT / "_toc.yml").read_text()))
                 if re.search(r"^kernelspec:", (REPO_ROOT / f"{name}.md").read_text(), re.MULTILINE)]


@pytest.mark.slow
def test_every_chapter_has_numbered_exercises_with_dropdown_solutions(built_book):
    """sphinx-exercise numbers chapter n's exercises n.1, n.2, ...; each has a solution that starts closed (a
    sphinx-togglebutton dropdown) and links back to it, and every reference to an exercise reaches its anchor."""
    soups = pages(built_book)
    for number, name in enumerate(CHAPTER_PAGES, start=1):
        soup = soups[name]
        exercises = soup.select("main div.exercise")
        assert len(exercises) >= 3, f"{name}: {len(exercises)} exercises"
        shown = [exercise.select_one(".admonition-title .caption-number").get_text(strip=True)
                 for exercise in exercises]
        assert shown == [f"Exercise {number}.{k}" for k in range(1, len(exercises) + 1)], f"{name}: {shown}"
        solutions = soup.select("main div.solution")
        assert [" ".join(s.get("class")) for s in solutions] == ["solution dropdown admonition"] * len(exercises), name
        solved = [solution.select_one(".admonition-title a")["href"] for solution in solutions]
        assert solved == [f"#{exercise['id']}" for exercise in exercises], f"{name}: solutions out of order"
        for link in soup.select("main a.reference.internal"):
            page, _, anchor = link["href"].partition("#")
            if not anchor.startswith("ex-"):
                continue
            target = soups[name] if not page else BeautifulSoup(
                (built_book / Path(name).parent / page).read_text(), "html.parser")
            exercise = target.find(id=anchor)
            assert exercise is not None and "exercise" in exercise["class"], f"{name}: link to {link['href']}"
            assert link.get_text(strip=True).startswith(exercise.select_one(".caption-number").get_text(strip=True))
    referenced = soups["book/cnn/cnn-mnist"].select('main p a[href="#ex-cnn-mnist-batchnorm"] .std-numref')
    assert [span.get_text() for span in referenced] == ["Exercise 5.4"]  # prose refers by {numref}, not by hand


@pytest.mark.slow
def test_a_solution_is_hidden_until_opened(built_book, browser):
    page = browser.new_page()
    page.goto((built_book / "book/cnn/inception.html").as_uri())
    solution = page.locator("div.solution").first
    body = solution.locator("#solution-content")
    page.wait_for_selector("div.solution button.toggle-button")  # sphinx-togglebutton's script has run
    hidden = body.is_hidden()
    solution.locator("button.toggle-button").click()
    body.wait_for(state="visible", timeout=5_000)
    page.close()
    assert hidden, "the solution is visible before it is opened"


#: A citation role, ``{cite:p}`key1,{pre}key2{post}```, and one ``{pre}key{post}`` target of it.
CITATION_ROLE = re.compile(r"\{cite(?::\w+)?\}`([^`]*)`")
CITATION_TARGET = re.compile(r"\s*(?:\{[^{}]+\})?\s*([^{}\s,]+)\s*(?:\{[^{}]+\})?\s*")


def chapter_sources() -> list[Path]:
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    return [REPO_ROOT / f"{name}.md" for name in toc_files(toc) if name.count("/") == 2]


def test_every_cited_key_is_in_references_bib():
    import pybtex.database

    entries = pybtex.database.parse_file(str(REPO_ROOT / "references.bib")).entries
    cited = {}
    for chapter in [*chapter_sources(), REPO_ROOT / "book/intro.md"]:
        for role in CITATION_ROLE.finditer(chapter.read_text()):
            for part in role[1].split(","):
                cited[CITATION_TARGET.fullmatch(part)[1]] = chapter.relative_to(REPO_ROOT)
    unknown = {key: str(chapter) for key, chapter in cited.items() if key not in entries}
    assert not unknown, f"cited but not in references.bib: {unknown}"
    assert len(cited) >= 90, f"expected the chapters to cite about 96 works, found {len(cited)}"
    assert not set(entries) - set(cited), f"in references.bib but cited nowhere: {set(entries) - set(cited)}"


#: A glossary role, ``{term}`x``` or ``{term}`text <x>```, and its explicit target (Sphinx's syntax).
TERM_ROLE = re.compile(r"\{term\}`([^`]*)`")
EXPLICIT_TARGET = re.compile(r"^(.+?)\s*<([^<>]*)>$", re.DOTALL)


def term_key(term: str) -> str:
    """How Sphinx finds a glossary term: whitespace collapsed, and (its fallback) whatever the case."""
    return " ".join(term.split()).lower()


def glossary_entries() -> list[list[str]]:
    """The entries of book/glossary.md's glossary, each the list of its terms: consecutive unindented lines name one
    entry, a `` : `` classifier is not part of a term, and the indented lines are the definition."""
    body = re.search(r"^```\{glossary\}\n(.*?)^```$", (REPO_ROOT / "book/glossary.md").read_text(),
                     re.MULTILINE | re.DOTALL)[1]
    entries: list[list[str]] = []
    previous = ""
    for line in body.split("\n"):
        if line and not line[0].isspace() and not line.startswith(":"):
            term = re.split(r" +: +", line)[0].strip()
            if previous and not previous[0].isspace() and not previous.startswith(":"):
                entries[-1].append(term)
            else:
                entries.append([term])
        previous = line
    return entries


def term_targets(text: str) -> list[str]:
    """The glossary terms that ``{term}`` roles in ``text`` link to."""
    targets = []
    for role in TERM_ROLE.finditer(text):
        explicit = EXPLICIT_TARGET.match(role[1])
        targets.append(explicit[2] if explicit else role[1])
    return targets


def test_every_linked_term_is_in_the_glossary_and_every_entry_is_linked():
    """Sphinx only warns about a {term} that no glossary defines; here it fails. Each glossary entry is linked from
    a chapter (the first use of the term there), and each chapter links several."""
    entries = glossary_entries()
    entry_of = {term_key(term): n for n, terms in enumerate(entries) for term in terms}
    assert len(entry_of) == sum(map(len, entries)), "a glossary term is defined twice (whatever its case)"
    assert len(entries) >= 40, f"only {len(entries)} glossary entries"
    linked: dict[int, set[str]] = {}
    unknown = []
    for page in [*chapter_sources(), REPO_ROOT / "book/intro.md", REPO_ROOT / "book/glossary.md"]:
        for target in term_targets(page.read_text()):
            if term_key(target) not in entry_of:
                unknown.append(f"{page.relative_to(REPO_ROOT)}: {target!r}")
            elif page.name != "glossary.md":
                linked.setdefault(entry_of[term_key(target)], set()).add(page.stem)
    assert not unknown, f"{{term}} links to terms that book/glossary.md does not define: {unknown}"
    unlinked = [terms[0] for n, terms in enumerate(entries) if n not in linked]
    assert not unlinked, f"glossary entries that no chapter links: {unlinked}"
    for page in CHAPTER_PAGES:
        count = len({entry_of[term_key(target)] for target in term_targets((REPO_ROOT / f"{page}.md").read_text())})
        assert count >= 5, f"{page} links only {count} glossary entries"


def test_the_glossary_is_in_the_reference_part_and_links_the_index():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    reference = next(part for part in toc["parts"] if part["caption"] == "Reference")
    files = [entry["file"] for entry in reference["chapters"]]
    assert files.index("book/glossary") == files.index("book/api") - 1
    glossary = (REPO_ROOT / "book/glossary.md").read_text()
    assert "```{glossary}\n:sorted:\n" in glossary
    # sphinx-book-theme links no index page; genindex.html lists the glossary's terms and the API's objects
    assert "{ref}`genindex`" in glossary


def test_every_chapter_ends_with_its_bibliography():
    for chapter in chapter_sources():
        text = chapter.read_text()
        if "\nkernelspec:" not in text:
            continue
        references = text[text.index("\n## References\n"):]
        assert "```{bibliography}\n:filter: docname in docnames\n```" in references, chapter.name
        assert not re.search(r"^- ", references, re.MULTILINE), f"{chapter.name}: a hand-written list is left"


@pytest.mark.slow
def test_every_chapter_page_lists_its_references_and_cites_them(built_book):
    for name, soup in pages(built_book).items():
        if not (REPO_ROOT / f"{name}.md").read_text().count("{bibliography}") or name == "book/bibliography":
            continue
        section = soup.find(id="references")
        assert section is not None, f"{name}: no References section"
        entries = {entry["id"] for entry in section.select("div.citation")}
        assert entries, f"{name}: the References section lists nothing"
        # a citation in the text links to its entry in this page's own list (resolved locally first)
        targets = {link["href"][1:] for link in soup.select("a.reference.internal[href^='#'][title]")}
        assert targets & entries, f"{name}: no citation links to its References"
    bibliography = pages(built_book)["book/bibliography"]
    assert len(bibliography.select("div.citation")) >= 90, "the Bibliography page should list every work"


def test_reference_labels_read_like_the_citations_and_tell_alike_ones_apart():
    import sys

    import pybtex.database

    sys.path.insert(0, str(REPO_ROOT / "tools"))
    import mlbook_citations

    entries = pybtex.database.parse_file(str(REPO_ROOT / "references.bib")).entries
    labels = mlbook_citations.book_labels(entries.values())
    # One label per work across the whole book: a chapter's list and the Bibliography page agree, and no two
    # works share one (Sphinx fails the build on a duplicate label in two lists).
    assert len(set(labels.values())) == len(entries) == len(labels)
    assert [labels[key] for key in ("kingma2015adam", "gatys2015neural", "gatys2015texture", "abadi2016tensorflow",
                                    "scipyndimage")] == ["Kingma and Ba, 2015", "Gatys et al., 2015a",
                                                         "Gatys et al., 2015b", "Abadi et al., 2016",
                                                         "The SciPy community, n.d."]
    # Works without an author are labelled by where they appeared, not by the title their entry shows next.
    posts = sorted(label for key, label in labels.items() if key.startswith("mlnotebook2017"))
    assert posts[0] == "Machine Learning Notebook blog, 2017a" and all(
        label.startswith("Machine Learning Notebook blog, 2017") for label in posts)
    assert labels["mlnotebookyolo"].startswith("Machine Learning Notebook blog, n.d.-")
    # Outside the book (a list of entries it does not know), alike labels in one list still get suffixes.
    other = [pybtex.database.Entry("misc", fields={"title": "A", "howpublished": "Blog", "year": "2020"})
             for _ in range(2)]
    assert list(mlbook_citations.AuthorYearLabelStyle().format_labels(other)) == ["Blog, 2020a", "Blog, 2020b"]
    style = mlbook_citations.RoundAuthorYearReferenceStyle()
    assert (style.bracket_parenthetical.left, style.bracket_parenthetical.right) == ("(", ")")
