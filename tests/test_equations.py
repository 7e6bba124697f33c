"""Equations traced to code and tests (tools/mlbook_equations.py): the collectors on small source files, the checks
that fail the build, a small book built with the extension, and the badges and the Equations page of the real book."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
from bs4 import BeautifulSoup  # noqa: E402

import mlbook_equations as equations  # noqa: E402
from mlbook_equations import Declaration, Declarations  # noqa: E402

#: A labelled display equation of a chapter: ``$$ (eq-label)`` closing the block.
BOOK_LABEL = re.compile(r"^\s*\$\$ *\((eq-[^)\s]+)\)", re.MULTILINE)


def book_labels() -> dict[str, str]:
    """Every labelled equation in the chapters' sources: label → document name."""
    return {label: path.relative_to(REPO_ROOT).with_suffix("").as_posix()
            for path in sorted((REPO_ROOT / "book").rglob("*.md")) for label in BOOK_LABEL.findall(path.read_text())}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def line_of(path: Path, pattern: str) -> int:
    """The 1-based number of the only line of ``path`` that matches ``pattern``."""
    lines = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if re.search(pattern, line)]
    assert len(lines) == 1, (pattern, lines)
    return lines[0]


# --- the collectors -----------------------------------------------------------------------------------------------

PACKAGE_MODULE = '''\
"""A module.

Implements: eq-module (a module's docstring declares nothing: only objects have an entry on the API page)
"""

import tensorflow  # never imported: the collector only parses the source


def kl(mean, log_var):
    """The KL divergence.

    Implements: eq-a, eq-b

    Args:
        mean: the mean.
    """

    def helper():
        """Implements: eq-nested (a nested function is not documented, so not read)"""


class Model:
    """A model."""

    def train_step(self, data):
        """One step.

        Implements: eq-c
        """


def plain():
    """Nothing declared."""
'''


def test_package_declarations_read_functions_and_methods_with_qualified_names(tmp_path):
    module = write(tmp_path / "src/minipkg/ops.py", PACKAGE_MODULE)
    write(tmp_path / "src/minipkg/__init__.py", '"""The package."""\n')
    found = equations.package_declarations(tmp_path / "src/minipkg", tmp_path)
    assert found.problems == []
    assert sorted(found.implemented) == [
        Declaration("src/minipkg/ops.py", line_of(module, "^def kl"), "minipkg.ops.kl", "eq-a"),
        Declaration("src/minipkg/ops.py", line_of(module, "^def kl"), "minipkg.ops.kl", "eq-b"),
        Declaration("src/minipkg/ops.py", line_of(module, "def train_step"), "minipkg.ops.Model.train_step", "eq-c"),
    ]
    assert "minipkg" not in sys.modules  # parsed, never imported


TEST_MODULE = '''\
import pytest
from pytest import mark


@pytest.mark.parametrize("x", [1, 2])
@pytest.mark.equation("eq-a")
def test_one(x):
    assert x


@mark.equation("eq-b", "eq-c")
def test_two():
    pass


@pytest.mark.slow
def test_three():
    pass


class TestGroup:
    @pytest.mark.equation("eq-d")
    def test_four(self):
        pass
'''


def test_marker_declarations_read_the_equation_marker_with_the_tests_def_line(tmp_path):
    tests = write(tmp_path / "tests/test_ops.py", TEST_MODULE)
    write(tmp_path / "tests/helpers.py", '@pytest.mark.equation("eq-ignored")\ndef test_not_collected():\n    pass\n')
    found = equations.marker_declarations(tmp_path / "tests", tmp_path)
    assert found.problems == []
    where = "tests/test_ops.py"
    assert sorted(found.checked) == [
        Declaration(where, line_of(tests, "def test_one"), "test_one", "eq-a"),
        Declaration(where, line_of(tests, "def test_two"), "test_two", "eq-b"),
        Declaration(where, line_of(tests, "def test_two"), "test_two", "eq-c"),
        Declaration(where, line_of(tests, "def test_four"), "test_four", "eq-d"),
    ]


def test_declarations_that_cannot_be_read_are_problems(tmp_path):
    write(tmp_path / "src/minipkg/ops.py", '''\
        def f():
            """Implements:"""
        ''')
    tests = write(tmp_path / "tests/test_ops.py", '''\
        import pytest

        LABEL = "eq-a"


        @pytest.mark.equation(LABEL)
        def test_variable():
            pass


        @pytest.mark.equation()
        def test_nothing():
            pass


        @pytest.fixture
        @pytest.mark.equation("eq-a")
        def data():
            return 1
        ''')
    found = equations.read_declarations(tmp_path / "src/minipkg", tmp_path / "tests", tmp_path)
    assert found.implemented == found.checked == []
    assert [(p.kind, p.location) for p in found.problems] == [
        ("malformed", "src/minipkg/ops.py:2"),
        ("malformed", f"tests/test_ops.py:{line_of(tests, 'equation.LABEL')}"),
        ("malformed", f"tests/test_ops.py:{line_of(tests, 'equation..$')}"),
        ("malformed", f"tests/test_ops.py:{line_of(tests, 'equation..eq-a')}"),
    ]
    assert "string literals" in found.problems[1].message and "not a test" in found.problems[3].message


# --- the checks that fail the build -------------------------------------------------------------------------------

KL = Declaration("code/src/mlbook/vae.py", 72, "mlbook.vae.kl_divergence", "eq-vae-kl-closed-form")
KL_TEST = Declaration("tests/test_vae.py", 42, "test_kl_matches_monte_carlo", "eq-vae-kl-closed-form")
LABELS = {"eq-vae-kl", "eq-vae-kl-closed-form"}


def test_consistent_declarations_pass():
    assert equations.problems(Declarations([KL], [KL_TEST]), LABELS, documented={KL.name}) == []


def test_a_docstring_naming_an_equation_the_book_lacks_is_refused():
    typo = Declaration(KL.path, KL.line, KL.name, "eq-vae-kl-closed-from")
    test = Declaration(KL_TEST.path, KL_TEST.line, KL_TEST.name, typo.label)  # the same typo: a test "checks" it
    [problem] = equations.problems(Declarations([typo], [test]), LABELS)
    assert problem.kind == "unknown_label" and problem.location == "code/src/mlbook/vae.py:72"
    assert "no equation labelled 'eq-vae-kl-closed-from'" in problem.message
    assert "did you mean 'eq-vae-kl-closed-form'" in problem.message


def test_an_implemented_equation_that_no_test_checks_is_refused():
    [problem] = equations.problems(Declarations([KL], []), LABELS)
    assert problem.kind == "untested" and problem.location == KL.location
    assert "@pytest.mark.equation('eq-vae-kl-closed-form')" in problem.message


def test_a_test_of_an_equation_that_no_docstring_implements_is_refused():
    other = Declaration(KL_TEST.path, 50, "test_kl_definition", "eq-vae-kl")
    [problem] = equations.problems(Declarations([KL], [KL_TEST, other]), LABELS)
    assert problem.kind == "unimplemented" and problem.location == "tests/test_vae.py:50"
    assert "add 'Implements: eq-vae-kl'" in problem.message
    unknown = Declaration(KL_TEST.path, 60, "test_typo", "eq-vae-kl-closed")
    [problem] = equations.problems(Declarations([KL], [KL_TEST, unknown]), LABELS)
    assert problem.kind == "unimplemented" and "the book has no equation labelled 'eq-vae-kl-closed'" in problem.message


def test_an_object_that_no_page_documents_is_refused_once():
    private = Declaration(KL.path, 90, "mlbook.vae._helper", "eq-vae-kl")
    found = Declarations([private, Declaration(KL.path, 90, private.name, KL.label)], [KL_TEST, Declaration(
        KL_TEST.path, 50, "test_kl_definition", "eq-vae-kl")])
    assert [p.kind for p in equations.problems(found, LABELS, documented={KL.name})] == ["undocumented"]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_each_problem_is_a_sphinx_warning_with_its_own_subtype():
    """Sphinx's logger turns type, subtype and location into the warning's ``[mlbook_equations.<kind>]`` and its
    ``path:line`` prefix; with ``-W`` every warning fails the build."""
    records = Records()
    logger = logging.getLogger("sphinx.mlbook_equations")
    logger.addHandler(records)
    try:
        found = Declarations([Declaration(KL.path, KL.line, KL.name, "eq-missing")], [KL_TEST])
        equations.report(equations.problems(found, LABELS))
    finally:
        logger.removeHandler(records)
    assert [(r.levelno, r.type, r.subtype) for r in records.records] == [
        (logging.WARNING, "mlbook_equations", "unknown_label"), (logging.WARNING, "mlbook_equations", "unimplemented")]
    assert records.records[0].location == "code/src/mlbook/vae.py:72"


def test_an_implements_line_becomes_a_link_to_the_equation_on_the_api_page():
    lines = ["The KL divergence.", "", "Implements: eq-a", "", "    Implements: eq-a, eq-b", "Implementation notes."]
    equations.link_implemented_equations(None, "function", "f", None, None, lines)
    assert lines == ["The KL divergence.", "", "Implements equation :eq:`eq-a`.", "",
                     "    Implements equations :eq:`eq-a`, :eq:`eq-b`.", "Implementation notes."]


def test_the_books_declarations_are_consistent_without_a_build():
    """The same checks as the build (but for the API page), on the repository: a quick way to see a problem."""
    found = equations.read_declarations(REPO_ROOT / "code/src/mlbook", REPO_ROOT / "tests", REPO_ROOT)
    assert found.problems == []
    assert equations.problems(found, set(book_labels())) == []
    assert {d.label for d in found.implemented} <= set(book_labels())


# --- a small book -------------------------------------------------------------------------------------------------

MINI_PACKAGE = '''\
"""Two operations."""


def square(x):
    """The square of ``x``.

    Implements: eq-square
    """
    return x * x


def cube(x):
    """The cube of ``x``."""
    return x * x * x
'''

MINI_TESTS = '''\
import pytest


@pytest.mark.equation("eq-square")
def test_square_by_hand():
    assert 3 * 3 == 9
'''


def make_small_book(root: Path) -> Path:
    write(root / "src/minipkg/__init__.py", '"""A small package."""\n')
    write(root / "src/minipkg/ops.py", MINI_PACKAGE)
    write(root / "tests/test_ops.py", MINI_TESTS)
    write(root / "conf.py", f'''\
        import sys
        sys.path[:0] = [{str(REPO_ROOT / "tools")!r}, {str(root / "src")!r}]
        project = "mini"
        extensions = ["sphinx.ext.autodoc", "mlbook_equations"]
        html_theme = "sphinx_book_theme"
        html_theme_options = {{"repository_url": "https://github.com/example/mini", "repository_branch": "main"}}
        mlbook_equations_package = "src/minipkg"
        mlbook_equations_tests = "tests"
        numfig = True
        show_warning_types = True
        exclude_patterns = ["_build", "src", "tests"]
        ''')
    write(root / "index.rst", """\
        Mini
        ====

        .. toctree::
           :numbered:

           chapter
           api
           equations
        """)
    write(root / "chapter.rst", """\
        Powers
        ======

        .. math:: y = x^2
           :label: eq-square

        .. math:: y = x^3
           :label: eq-cube
        """)
    write(root / "api.rst", "API\n===\n\n.. automodule:: minipkg.ops\n   :members:\n")
    write(root / "equations.rst", "Equations\n=========\n\n.. mlbook-equations::\n")
    return root


def build_small_book(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", str(root),
                           str(root / "_build/html")], capture_output=True, text=True)


@pytest.mark.slow
def test_a_small_book_shows_the_badge_and_the_table(tmp_path):
    root = make_small_book(tmp_path)
    result = build_small_book(root)
    assert result.returncode == 0, result.stderr
    html = root / "_build/html"
    chapter = BeautifulSoup((html / "chapter.html").read_text(), "html.parser")
    badge = chapter.find(id="equation-eq-square").find_next_sibling("p")
    assert "mlbook-equation-trace" in badge["class"]
    assert badge.get_text().strip() == "Implemented by minipkg.ops.square · checked by test_square_by_hand"
    links = [a["href"] for a in badge.find_all("a")]
    test_line = line_of(root / "tests/test_ops.py", "def test_square_by_hand")
    github = "https://github.com/example/mini/blob/main/tests/test_ops.py"
    assert links == ["api.html#minipkg.ops.square", f"{github}#L{test_line}"]
    assert chapter.find(id="equation-eq-cube").find_next_sibling("p") is None  # untraced: no badge
    assert (html / "_static" / equations.CSS_FILE).is_file()
    assert equations.CSS_FILE in (html / "chapter.html").read_text()
    table = BeautifulSoup((html / "equations.html").read_text(), "html.parser").find("table", class_="mlbook-equations")
    rows = [[" ".join(p.get_text().strip() for p in cell.find_all("p")) for cell in row.find_all("td")]
            for row in table.find("tbody").find_all("tr")]
    assert rows == [["(1.1) eq-square", "Powers", "minipkg.ops.square", "test_square_by_hand"],
                    ["(1.2) eq-cube", "Powers", "—", "—"]]
    assert table.find("a")["href"] == "chapter.html#equation-eq-square"
    api = BeautifulSoup((html / "api.html").read_text(), "html.parser")
    assert api.find("a", href="chapter.html#equation-eq-square").get_text() == "(1.1)"


@pytest.mark.slow
def test_a_small_book_with_each_problem_fails_to_build_naming_it(tmp_path):
    root = make_small_book(tmp_path)
    write(root / "src/minipkg/ops.py", MINI_PACKAGE.replace('"""The cube of ``x``."""',
                                                            '"""The cube.\n\n    Implements: eq-cube\n    """')
          .replace("Implements: eq-square", "Implements: eq-squared"))
    write(root / "tests/test_ops.py", MINI_TESTS)  # checks eq-square, which nothing implements now
    result = build_small_book(root)
    assert result.returncode != 0
    ops = line_of(root / "src/minipkg/ops.py", "^def square")
    assert re.search(rf"src/minipkg/ops\.py:{ops}: WARNING: \[mlbook\] minipkg\.ops\.square declares 'Implements: "
                     r"eq-squared', but the book has no equation labelled 'eq-squared'.*"
                     r"\[mlbook_equations\.unknown_label\]", result.stderr)
    assert re.search(r"minipkg\.ops\.cube implements eq-cube, but no test checks it.*\[mlbook_equations\.untested\]",
                     result.stderr)
    assert re.search(r"tests/test_ops\.py:\d+: WARNING: \[mlbook\] test_square_by_hand checks eq-square, but no "
                     r"docstring of the package implements it.*\[mlbook_equations\.unimplemented\]", result.stderr)


# --- the real book ------------------------------------------------------------------------------------------------


def repository_url() -> str:
    return yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def page(built_book: Path, docname: str) -> BeautifulSoup:
    return BeautifulSoup((built_book / f"{docname}.html").read_text(), "html.parser")


@pytest.mark.slow
def test_the_vae_page_traces_the_kl_closed_form_to_its_function_and_test(built_book):
    badge = page(built_book, "book/generative/vae").find(id="equation-eq-vae-kl-closed-form").find_next_sibling("p")
    assert "mlbook-equation-trace" in badge["class"]
    assert badge.get_text().strip().startswith("Implemented by mlbook.vae.kl_divergence · checked by ")
    links = {a.get_text(strip=True): a["href"] for a in badge.find_all("a")}
    assert links["mlbook.vae.kl_divergence"] == "../api.html#mlbook.vae.kl_divergence"
    assert page(built_book, "book/api").find(id="mlbook.vae.kl_divergence") is not None
    test = "test_kl_closed_form_matches_a_monte_carlo_estimate"
    line = line_of(REPO_ROOT / "tests/test_vae.py", rf"^def {test}\(")
    assert links[test] == f"{repository_url()}/blob/main/tests/test_vae.py#L{line}"
    # the API page links back: "Implements equation (9.8)."
    entry = page(built_book, "book/api").find(id="mlbook.vae.kl_divergence").find_parent("dl")
    number = page(built_book, "book/generative/vae").find(id="equation-eq-vae-kl-closed-form").find(
        class_="eqno").get_text(strip=True).rstrip("#")
    back = entry.find("a", href="generative/vae.html#equation-eq-vae-kl-closed-form")
    assert back is not None and back.get_text() == number


def declared_functions(label: str) -> set[str]:
    found = equations.read_declarations(REPO_ROOT / "code/src/mlbook", REPO_ROOT / "tests", REPO_ROOT)
    return {d.name for d in found.implemented if d.label == label}


@pytest.mark.slow
def test_the_equations_page_lists_every_equation_with_its_number_functions_and_tests(built_book):
    labels = book_labels()
    assert len(labels) > 60  # 64 when this test was written: a broken pattern would find none
    table = page(built_book, "book/equations").find("table", class_="mlbook-equations")
    rows = {}
    for row in table.find("tbody").find_all("tr"):
        cells = row.find_all("td")
        rows[cells[0].find("code").get_text(strip=True)] = cells
    assert set(rows) == set(labels) and len(table.find("tbody").find_all("tr")) == len(labels)
    numbers = {}
    for label, docname in labels.items():
        number, chapter, functions, tests = rows[label]
        equation = page(built_book, docname).find(id=f"equation-{label}")
        numbers[label] = number.find("a").get_text(strip=True)
        assert numbers[label] == equation.find(class_="eqno").get_text(strip=True).rstrip("#")  # as the book shows
        assert chapter.find("a")["href"] == f"{docname.removeprefix('book/')}.html#equation-{label}"
        declared = declared_functions(label)
        if declared:
            assert {a.get_text(strip=True) for a in functions.find_all("a")} == declared
            assert all(a["href"].startswith(f"{repository_url()}/blob/main/tests/") for a in tests.find_all("a"))
        else:
            assert functions.get_text(strip=True) == tests.get_text(strip=True) == "—"
    assert numbers["eq-nn-forward"] == "(1.1)"
    assert "mlbook.vae.kl_divergence" in rows["eq-vae-kl-closed-form"][2].get_text()
