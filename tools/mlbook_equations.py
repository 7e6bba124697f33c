"""Sphinx extension (loaded from ``_config.yml``): the book's equations traced to the code and tests that implement
and check them.

The declarations live where the truth does, never in a hand-kept list:

- a function, class or method of the package says which labelled equations it computes with a line
  ``Implements: eq-vae-kl-closed-form`` in its docstring (several labels separated by commas);
- a test says which equations it checks with ``@pytest.mark.equation("eq-vae-kl-closed-form")`` (several labels
  as several arguments).

Both are read from the source files with :mod:`ast` at every build (nothing is imported: no TensorFlow). Then

- under each traced equation a one-line badge names the implementing functions, linked to their entries on the
  API page, and the tests, linked to their source on GitHub at the line of the test (the repository is
  ``_config.yml``'s ``repository.url``, which Jupyter Book passes on as the theme's ``repository_url``);
- the ``{mlbook-equations}`` directive (book/equations.md) becomes a table of every labelled equation of the book,
  with its number, chapter, functions and tests, built from the math domain's labels;
- on the API page, an ``Implements:`` line becomes a link to the equation;
- the build warns, so that ``-W`` fails it, when a docstring names an equation the book does not have
  (``mlbook_equations.unknown_label``), an implemented equation has no test (``mlbook_equations.untested``), a
  test checks an equation that no docstring implements (``mlbook_equations.unimplemented``), a declaring object is
  not documented on any page (``mlbook_equations.undocumented``), or a declaration cannot be read
  (``mlbook_equations.malformed``).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import html
import re
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

from mlbook_build import marked_pages, page_directive

LOGGER = logging.getLogger(__name__)

#: ``Implements: eq-a, eq-b`` on a line of its own in a docstring (leading spaces allowed).
IMPLEMENTS_LINE = re.compile(r"^(?P<indent>[ \t]*)Implements:[ \t]*(?P<labels>.*?)[ \t]*$")
#: The pytest marker, ``@pytest.mark.equation(...)`` or ``@mark.equation(...)``.
MARKER_NAME = "equation"
#: The warnings' type; each check has its own subtype (``suppress_warnings`` can name ``type.subtype``).
WARNING_TYPE = "mlbook_equations"
#: myst-parser labels a numbered amsmath environment with a random UUID: not a label a reader can cite.
GENERATED_LABEL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DECLARATIONS_ATTRIBUTE = "mlbook_equation_declarations"
DIGEST_ATTRIBUTE = "mlbook_equations_digest"
#: The metadata key that marks the Equations page.
EQUATIONS_PAGE_KEY = "mlbook_equations_page"
CSS_FILE = "mlbook-equations.css"
#: Small, muted and readable in the theme's light and dark modes (pydata-sphinx-theme's colour variables).
CSS = """\
p.mlbook-equation-trace {
  margin: -0.4rem 0 1.2rem;
  text-align: center;
  font-size: 0.8rem;
  line-height: 1.6;
  color: var(--pst-color-text-muted);
}
p.mlbook-equation-trace code.literal, table.mlbook-equations code.literal {
  font-size: 0.95em;
  padding: 0.05em 0.25em;
}
p.mlbook-equation-trace code.literal span.pre, table.mlbook-equations code.literal span.pre {
  white-space: normal;  /* long names wrap after a dot or an underscore (their <wbr>), nowhere else */
}
p.mlbook-equation-trace a, table.mlbook-equations a {
  text-underline-offset: 0.3em;  /* below the underscores of the names, not through them */
}
table.mlbook-equations {
  font-size: 0.9rem;
}
table.mlbook-equations td {
  vertical-align: top;
}
table.mlbook-equations td p {
  margin: 0;
}
table.mlbook-equations p.mlbook-equation-label {
  font-size: 0.85em;
  color: var(--pst-color-text-muted);
}
"""


# --- declarations read from the source ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, order=True)
class Declaration:
    """One equation label declared by one object: a package function (``name`` qualified, e.g.
    ``mlbook.vae.VAE.loss_terms``) or a test (``name`` the test function's)."""

    path: str  #: the source file, relative to the book root, in POSIX form
    line: int  #: the ``def``/``class`` line (for a test: the line its GitHub link points at)
    name: str
    label: str

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclasses.dataclass(frozen=True)
class Problem:
    """A declaration the build refuses: ``kind`` is the warning's subtype."""

    kind: str
    message: str
    location: str


@dataclasses.dataclass
class Declarations:
    """What the package implements, what the tests check, and what could not be read."""

    implemented: list[Declaration] = dataclasses.field(default_factory=list)
    checked: list[Declaration] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)

    def digest(self) -> str:
        """Changes whenever a badge or a row of the table would."""
        text = repr((sorted(self.implemented), sorted(self.checked)))
        return hashlib.sha256(text.encode()).hexdigest()

    def implementers(self, label: str) -> list[Declaration]:
        return sorted({d for d in self.implemented if d.label == label})

    def tests(self, label: str) -> list[Declaration]:
        return sorted({d for d in self.checked if d.label == label})


def label_list(text: str) -> list[str]:
    """``"eq-a, eq-b"`` → ``["eq-a", "eq-b"]``, each once, in order."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _documentable(body: Sequence[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.AST]]:
    """Module-level functions and classes, and the members of classes (recursively), with qualified names;
    functions nested in functions are not documented, so they are not looked at."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}.{node.name}"
            yield name, node
            if isinstance(node, ast.ClassDef):
                yield from _documentable(node.body, name)


def package_declarations(package_dir: Path, root: Path) -> Declarations:
    """The ``Implements:`` lines in the docstrings of ``package_dir/*.py``.

    Args:
        package_dir: the package's folder; its name is the package's (``code/src/mlbook`` → ``mlbook``).
        root: the book root, which the declarations' paths are relative to.
    """
    found = Declarations()
    for path in sorted(package_dir.glob("*.py")):
        module = package_dir.name if path.stem == "__init__" else f"{package_dir.name}.{path.stem}"
        relative = _relative(path, root)
        for name, node in _documentable(ast.parse(path.read_text(encoding="utf-8"), str(path)).body, module):
            docstring = ast.get_docstring(node, clean=False)
            if not docstring:
                continue
            first_line = node.body[0].lineno  # the docstring's opening line: its lines follow the source's
            for offset, text in enumerate(docstring.splitlines()):
                match = IMPLEMENTS_LINE.fullmatch(text)
                if match is None:
                    continue
                labels = label_list(match["labels"])
                if not labels:
                    found.problems.append(Problem("malformed", f"{name}: 'Implements:' names no equation label",
                                                  f"{relative}:{first_line + offset}"))
                found.implemented += [Declaration(relative, node.lineno, name, label) for label in labels]
    return found


def _is_equation_marker(decorator: ast.expr) -> bool:
    """``pytest.mark.equation(...)`` or ``mark.equation(...)``."""
    if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
        return False
    owner = decorator.func.value
    named_mark = (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark")
    return decorator.func.attr == MARKER_NAME and named_mark


def marker_declarations(tests_dir: Path, root: Path) -> Declarations:
    """The ``@pytest.mark.equation(...)`` markers of the tests in ``tests_dir/test_*.py``.

    Args:
        tests_dir: the tests' folder.
        root: the book root, which the declarations' paths are relative to.
    """
    found = Declarations()
    for path in sorted(tests_dir.glob("test_*.py")):
        relative = _relative(path, root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for decorator in filter(_is_equation_marker, node.decorator_list):
                where = f"{relative}:{decorator.lineno}"
                labels = [arg.value for arg in decorator.args if isinstance(arg, ast.Constant)
                          and isinstance(arg.value, str) and arg.value.strip()]
                if not node.name.startswith("test"):
                    found.problems.append(Problem("malformed", f"{node.name} is not a test, so its "
                                                  f"@pytest.mark.{MARKER_NAME} checks nothing", where))
                elif not decorator.args or decorator.keywords or len(labels) != len(decorator.args):
                    found.problems.append(Problem("malformed", f"{node.name}: @pytest.mark.{MARKER_NAME} takes one "
                                                  "or more equation labels as string literals", where))
                else:
                    found.checked += [Declaration(relative, node.lineno, node.name, label.strip())
                                      for label in labels]
    return found


def read_declarations(package_dir: Path, tests_dir: Path, root: Path) -> Declarations:
    """The package's and the tests' declarations together."""
    package, tests = package_declarations(package_dir, root), marker_declarations(tests_dir, root)
    return Declarations(package.implemented, tests.checked, package.problems + tests.problems)


# --- the checks ---------------------------------------------------------------------------------------------------


def _did_you_mean(label: str, labels: Collection[str]) -> str:
    close = difflib.get_close_matches(label, sorted(labels), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def problems(found: Declarations, labels: Collection[str], documented: Collection[str] | None = None) -> list[Problem]:
    """Every reason to fail the build, besides :attr:`Declarations.problems`.

    Args:
        found: the declarations.
        labels: the labels of the book's equations.
        documented: the objects documented on the book's pages (the Python domain's names), or ``None`` not to
            check that.
    """
    checked_labels = {d.label for d in found.checked}
    implemented_labels = {d.label for d in found.implemented}
    reported, undocumented = [], set()
    for declaration in sorted(set(found.implemented)):
        name, label, where = declaration.name, declaration.label, declaration.location
        if label not in labels:
            reported.append(Problem("unknown_label", f"{name} declares 'Implements: {label}', but the book has no "
                                    f"equation labelled {label!r}{_did_you_mean(label, labels)}", where))
        elif label not in checked_labels:
            reported.append(Problem("untested", f"{name} implements {label}, but no test checks it: mark the test "
                                    f"that does with @pytest.mark.{MARKER_NAME}({label!r})", where))
        if documented is not None and name not in documented and name not in undocumented:
            undocumented.add(name)
            reported.append(Problem("undocumented", f"{name} implements {label}, but no page documents it (the API "
                                    "page leaves out private and undocumented objects), so the badge cannot link "
                                    "to it", where))
    for declaration in sorted(set(found.checked)):
        name, label, where = declaration.name, declaration.label, declaration.location
        if label not in implemented_labels:
            unknown = "" if label in labels else (f"; the book has no equation labelled {label!r} either"
                                                  f"{_did_you_mean(label, labels)}")
            reported.append(Problem("unimplemented", f"{name} checks {label}, but no docstring of the package "
                                    f"implements it: add 'Implements: {label}' to the function that computes "
                                    f"it{unknown}", where))
    return reported


def report(found_problems: Sequence[Problem]) -> None:
    """One Sphinx warning per problem, typed ``mlbook_equations.<kind>`` (``-W`` makes each fatal)."""
    for problem in found_problems:
        LOGGER.warning(f"[mlbook] {problem.message}", type=WARNING_TYPE, subtype=problem.kind,
                       location=problem.location)


# --- the build ----------------------------------------------------------------------------------------------------


def declarations(app: Sphinx) -> Declarations:
    """This build's declarations (read at ``builder-inited``)."""
    return getattr(app, DECLARATIONS_ATTRIBUTE)


def read_sources(app: Sphinx) -> None:
    root = Path(app.srcdir)
    setattr(app, DECLARATIONS_ATTRIBUTE, read_declarations(root / app.config.mlbook_equations_package,
                                                           root / app.config.mlbook_equations_tests, root))


def book_labels(env: BuildEnvironment) -> dict[str, tuple[str, int]]:
    """Every labelled equation of the book: label → (document, its number within the document)."""
    equations = env.get_domain("math").equations  # type: ignore[attr-defined]
    return {label: place for label, place in equations.items() if not GENERATED_LABEL.fullmatch(label)}


def check(app: Sphinx, env: BuildEnvironment) -> None:
    """After reading: warn about every declaration the build refuses."""
    found = declarations(app)
    documented = set(env.get_domain("py").objects)  # type: ignore[attr-defined]
    report(found.problems + problems(found, book_labels(env), documented))


def pages_to_rewrite(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """The Equations page always (its table shows every chapter's equations, and is cheap to write), and every
    page with equations when a declaration changed since the last build (the badges are added as pages are written,
    so nothing needs to be read again)."""
    pages = marked_pages(env, EQUATIONS_PAGE_KEY)
    digest = declarations(app).digest() + repr(repository(app))
    if getattr(env, DIGEST_ATTRIBUTE, None) != digest:
        setattr(env, DIGEST_ATTRIBUTE, digest)
        pages += sorted({docname for docname, _ in book_labels(env).values()})
    return pages


def repository(app: Sphinx) -> tuple[str, str] | None:
    """The repository's URL and branch as ``_config.yml`` gives them (Jupyter Book passes them to the theme)."""
    options = app.config.html_theme_options or {}
    url = str(options.get("repository_url") or "").rstrip("/")
    return (url, str(options.get("repository_branch") or "main")) if url else None


def source_url(app: Sphinx, test: Declaration) -> str | None:
    """The test's source on GitHub, at its line."""
    where = repository(app)
    return None if where is None else f"{where[0]}/blob/{where[1]}/{test.path}#L{test.line}"


def breakable_literal(text: str, classes: Sequence[str] = ()) -> nodes.Node:
    """``text`` as inline code that may wrap after a dot or an underscore: HTML's ``<wbr>``, which copying and the
    browser's search ignore (no other builder renders these pages)."""
    inner = "<wbr>".join(html.escape(piece) for piece in re.split(r"(?<=[._])(?=.)", text))
    names = " ".join(["docutils", "literal", "notranslate", *classes])
    return nodes.raw("", f'<code class="{names}"><span class="pre">{inner}</span></code>', format="html")


def function_link(app: Sphinx, fromdocname: str, function: Declaration) -> nodes.Node:
    """The function's name, linked to its entry on the API page (resolved by the Python domain, as a role would be,
    so the link is right in the html and the singlehtml builds alike)."""
    text = breakable_literal(function.name, ["xref", "py", "py-obj"])
    pending = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=function.name, refexplicit=True)
    resolved = app.env.get_domain("py").resolve_xref(app.env, fromdocname, app.builder, "obj", function.name,
                                                     pending, text)
    return resolved if resolved is not None else text


def checker_link(app: Sphinx, test: Declaration) -> nodes.Node:
    text = breakable_literal(test.name)
    url = source_url(app, test)
    if url is None:
        return text
    return nodes.reference("", "", text, refuri=url, reftitle=f"{test.path}, line {test.line}")


def _joined(parts: Sequence[nodes.Node]) -> list[nodes.Node]:
    joined: list[nodes.Node] = []
    for index, part in enumerate(parts):
        joined += [nodes.Text(", ")] * (index > 0) + [part]
    return joined


def badge(app: Sphinx, fromdocname: str, label: str) -> nodes.paragraph | None:
    """"Implemented by `f` · checked by `test`" for the equation ``label``, or ``None`` if it is not traced."""
    found = declarations(app)
    functions, tests = found.implementers(label), found.tests(label)
    if not functions and not tests:
        return None
    paragraph = nodes.paragraph("", "", classes=["mlbook-equation-trace"])
    if functions:
        paragraph += nodes.Text("Implemented by ")
        paragraph += _joined([function_link(app, fromdocname, f) for f in functions])
    if tests:
        paragraph += nodes.Text(" · checked by " if functions else "Checked by ")
        paragraph += _joined([checker_link(app, t) for t in tests])
    return paragraph


def add_badges(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for math in list(doctree.findall(nodes.math_block)):
        label = math.get("label")
        line = badge(app, docname, label) if label else None
        if line is not None:
            math.parent.insert(math.parent.index(math) + 1, line)


# --- the Equations page -------------------------------------------------------------------------------------------


class equations_placeholder(nodes.General, nodes.Element):
    """Replaced by the table of equations when the page is written."""


#: ``{mlbook-equations}``: the table of every labelled equation of the book.
EquationsDirective = page_directive(equations_placeholder, EQUATIONS_PAGE_KEY)


def document_order(env: BuildEnvironment) -> list[str]:
    """The documents in the order of the table of contents, then any others."""
    order: list[str] = []

    def visit(docname: str) -> None:
        if docname not in order:
            order.append(docname)
            for child in env.toctree_includes.get(docname, []):
                visit(child)

    visit(env.config.root_doc)
    return order + sorted(set(env.all_docs) - set(order))


def _cell(*content: nodes.Node) -> nodes.entry:
    return nodes.entry("", nodes.paragraph("", "", *content))


def equations_table(app: Sphinx, fromdocname: str) -> list[nodes.Node]:
    """A sentence that counts the traced equations, and the table: the number (and label below it), the chapter,
    the functions and the tests."""
    env, found = app.env, declarations(app)
    labels = book_labels(env)
    position = {docname: index for index, docname in enumerate(document_order(env))}
    math = env.get_domain("math")
    table = nodes.table(classes=["mlbook-equations"])
    group = nodes.tgroup(cols=4)
    table += group
    group += [nodes.colspec(colwidth=width) for width in (14, 20, 33, 33)]
    group += nodes.thead("", nodes.row("", *(_cell(nodes.Text(title)) for title in
                                            ("Equation", "Chapter", "Implemented by", "Checked by"))))
    body = nodes.tbody()
    group += body
    traced = 0
    for label, (docname, _) in sorted(labels.items(), key=lambda item: (position.get(item[1][0], 0), item[1][1])):
        target = nodes.make_id(f"equation-{label}")
        pending = addnodes.pending_xref("", refdomain="math", reftype="eq", reftarget=label)
        number = math.resolve_xref(env, fromdocname, app.builder, "eq", label, pending, nodes.Text(label))
        title = env.titles[docname].astext() if docname in env.titles else docname
        chapter = make_refnode(app.builder, fromdocname, docname, target, nodes.Text(title))
        functions, tests = found.implementers(label), found.tests(label)
        traced += bool(functions and tests)
        equation = _cell(number)
        equation += nodes.paragraph("", "", nodes.literal(label, label), classes=["mlbook-equation-label"])
        body += nodes.row(
            "", equation, _cell(chapter),
            _cell(*(_joined([function_link(app, fromdocname, f) for f in functions]) or [nodes.Text("—")])),
            _cell(*(_joined([checker_link(app, t) for t in tests]) or [nodes.Text("—")])),
        )
    summary = nodes.paragraph("", f"{traced} of the book's {len(labels)} labelled equations are implemented by the "
                              "package and checked by its tests; a dash marks the others.")
    return [summary, table]


def fill_placeholders(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for placeholder in list(doctree.findall(equations_placeholder)):
        placeholder.replace_self(equations_table(app, docname))


def on_doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    add_badges(app, doctree, docname)
    fill_placeholders(app, doctree, docname)


# --- the API page -------------------------------------------------------------------------------------------------


def link_implemented_equations(app: Sphinx, what: str, name: str, obj: object, options: object,
                               lines: list[str]) -> None:
    """On the API page, ``Implements: eq-a, eq-b`` reads "Implements equations (9.1), (9.2)." with links."""
    for index, line in enumerate(lines):
        match = IMPLEMENTS_LINE.fullmatch(line)
        labels = label_list(match["labels"]) if match else []
        if labels:
            references = ", ".join(f":eq:`{label}`" for label in labels)
            lines[index] = f"{match['indent']}Implements equation{'s' * (len(labels) > 1)} {references}."


def write_css(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / CSS_FILE).write_text(CSS, encoding="utf-8")


def setup(app: Sphinx) -> dict[str, object]:
    app.setup_extension("sphinx.ext.autodoc")
    app.add_config_value("mlbook_equations_package", "code/src/mlbook", "env", [str])
    app.add_config_value("mlbook_equations_tests", "tests", "env", [str])
    app.add_node(equations_placeholder)
    app.add_directive("mlbook-equations", EquationsDirective)
    app.add_css_file(CSS_FILE)
    app.connect("builder-inited", read_sources)
    app.connect("env-get-updated", pages_to_rewrite)
    app.connect("env-check-consistency", check)
    app.connect("doctree-resolved", on_doctree_resolved)
    app.connect("autodoc-process-docstring", link_implemented_equations)
    app.connect("build-finished", write_css)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
