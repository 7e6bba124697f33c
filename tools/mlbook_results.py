"""Sphinx extension (loaded from ``_config.yml``): the Results page, each chapter's provenance footer, and
``results-<profile>.json`` in the HTML folder.

Chapters record numbers with ``mlbook.notebook.glue`` (in myst-nb's format); myst-nb writes each chapter's glued
outputs to ``_build/jupyter_execute/<docname>.glue.json`` and keeps its execution time in the environment, also when
the outputs come from the execution cache. A glue file that cannot be read (cut short by an interrupted build)
counts as missing: it is deleted and its chapter read again, from the cache, at the next build. The registry
``_results.yml`` (:mod:`mlbook_registry`) says which numbers are headline results, the band each is expected in per
profile, and each chapter's time budget; it is read and checked once per build, and a malformed entry stops the
build before anything executes. A page with the ``{mlbook-results}`` directive gets the tables; it is re-read on
every build so it always shows the current numbers. Each chapter depends on the registry, so an edited budget
reaches its provenance footer without executing it again.
"""

from __future__ import annotations

import ast
import json
import math
import platform
import re
from collections.abc import Collection, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.errors import ConfigError
from sphinx.util import logging

from mlbook.profiles import current_profile
from mlbook.runtime import CONDITIONS_KEY
from mlbook_build import FALLBACK_LINE, fallback_announcements, marked_pages, page_directive
from mlbook_registry import REGISTRY_FILE, Chapter, Expected, Registry, RegistryError, load_registry

LOGGER = logging.getLogger(__name__)
#: The metadata key that marks the Results page.
RESULTS_PAGE_KEY = "mlbook_results_page"
RESULTS_FILE = "results-{profile}.json"
REPORT_ATTRIBUTE = "mlbook_results_report"
REGISTRY_ATTRIBUTE = "mlbook_results_registry"
#: Packages whose versions a results file lists.
REPORTED_PACKAGES = ("mlbook", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn", "scipy",
                     "matplotlib", "jupyter-book", "myst-nb")
STATUS_TEXT = {"ok": "✓ in band", "outside": "✗ outside band", "missing": "✗ not recorded", "unchecked": "—",
               "substitute": "— substitute data, not judged"}


def number_from_glue(bundle: Mapping[str, Any]) -> float:
    """The number a glue output holds (its ``text/plain`` repr, e.g. ``'0.98'`` or ``'np.float32(0.98)'``).

    Raises:
        ValueError: if the output holds no single number.
    """
    text = str(bundle.get("data", bundle).get("text/plain", ""))
    match = re.fullmatch(r"\s*(?:np\.\w+\()?\s*([-+0-9.eE]+|nan|inf)\s*\)?\s*", text)
    if match is None:
        raise ValueError(f"glue value {text[:60]!r} is not a number")
    return float(match.group(1))


def text_from_glue(bundle: Mapping[str, Any]) -> str:
    """The text a glue output holds: its Markdown, or the string its ``text/plain`` repr stands for."""
    data = bundle.get("data", bundle)
    if "text/markdown" in data:
        return str(data["text/markdown"]).strip()
    text = str(data.get("text/plain", ""))
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str) else repr(value)


def conditions_from_glue(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The conditions :func:`mlbook.setup_chapter` recorded (a dict), or an empty dict."""
    try:
        value = ast.literal_eval(str(bundle.get("data", bundle).get("text/plain", "")))
    except (ValueError, SyntaxError):
        return {}
    return value if isinstance(value, dict) else {}


def status(value: float | None, band: tuple[float, float] | None) -> str:
    """``"ok"`` inside the band, ``"outside"`` outside it, ``"missing"`` when not recorded, ``"unchecked"``
    when the profile has no band."""
    if value is None:
        return "missing"
    if band is None:
        return "unchecked"
    low, high = band
    return "ok" if not math.isnan(value) and low <= value <= high else "outside"


def evaluate(expected: Sequence[Expected], glued: Mapping[str, Mapping[str, Any]], profile: str,
             substituted: Collection[str] = ()) -> list[dict[str, Any]]:
    """One row per headline number: chapter, key, label, value, band and status.

    Args:
        expected: the registry's headline numbers.
        glued: chapter document name → its glue outputs (key → output bundle), as myst-nb writes them.
        profile: the profile the build ran in.
        substituted: chapters that ran on substitute data (a ``full`` build whose download failed): their numbers
            get the status ``"substitute"``, since the profile's bands are for the real data.
    """
    rows = []
    for number in expected:
        bundle = glued.get(number.chapter, {}).get(number.key)
        value = None if bundle is None else number_from_glue(bundle)
        band = number.band(profile)
        judged = "substitute" if number.chapter in substituted and value is not None else status(value, band)
        rows.append({"chapter": number.chapter, "key": number.key, "label": number.label, "value": value,
                     "band": list(band) if band else None, "status": judged, "fmt": number.fmt})
    return rows


def chapter_data(chapter: Chapter, glued: Mapping[str, Any]) -> str:
    """What data ``chapter`` used: its own recorded description if it glued one, else the registry's."""
    if chapter.data_key and chapter.data_key in glued:
        return text_from_glue(glued[chapter.data_key])
    return chapter.data


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the results (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def format_value(value: float | None, fmt: str) -> str:
    """``value`` with ``fmt``, or an em dash when missing."""
    return "—" if value is None else format(value, fmt)


def registry_path(app: Sphinx) -> Path:
    """The book's ``_results.yml``."""
    return Path(app.srcdir) / REGISTRY_FILE


def read_registry(app: Sphinx) -> None:
    """Load and check the registry once per build, before any chapter executes.

    Raises:
        ConfigError: naming the malformed entry.
    """
    try:
        setattr(app, REGISTRY_ATTRIBUTE, load_registry(registry_path(app)))
    except RegistryError as error:
        raise ConfigError(str(error)) from error


def registry(app: Sphinx) -> Registry:
    """The registry :func:`read_registry` loaded for this build."""
    return getattr(app, REGISTRY_ATTRIBUTE)


def note_registry_dependency(app: Sphinx, doctree: nodes.document) -> None:
    """A chapter's footer shows its budget from the registry, so an edited registry makes Sphinx read the chapter
    again (its outputs come from the execution cache: nothing runs)."""
    if registry(app).find_chapter(app.env.docname) is not None:
        app.env.note_dependency(str(registry_path(app)))


class results_placeholder(nodes.General, nodes.Element):
    """Replaced by the results tables once every chapter has been read."""


#: ``{mlbook-results}``: the tables of headline numbers, times and conditions.
ResultsDirective = page_directive(results_placeholder, RESULTS_PAGE_KEY)


def glue_path(app: Sphinx, docname: str) -> Path:
    """Where myst-nb writes the chapter's glued outputs when it reads the chapter."""
    return Path(app.outdir).parent / "jupyter_execute" / f"{docname}.glue.json"


def read_glue_file(path: Path) -> dict[str, Any] | None:
    """The glued outputs in ``path``: ``{}`` if there is no such file, ``None`` if it cannot be read as a JSON
    object (e.g. cut short by an interrupted build); such a file is deleted, with one line in the log."""
    if not path.is_file():
        return {}
    try:
        outputs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError covers JSONDecodeError and UnicodeDecodeError
        problem = f"{type(error).__name__}: {error}"
    else:
        if isinstance(outputs, dict):
            return outputs
        problem = f"a JSON {type(outputs).__name__}, not an object"
    LOGGER.info(f"[mlbook] {path} is unreadable ({problem}), e.g. left by an interrupted build: deleted; its "
                "chapter is read again from the execution cache (or executed) at the next build")
    path.unlink(missing_ok=True)
    return None


def glue_outputs(app: Sphinx, docname: str) -> dict[str, Any]:
    """The chapter's glued outputs as myst-nb wrote them (empty if it glued nothing, was not executed, or its
    file is unreadable: see :func:`read_glue_file`)."""
    return read_glue_file(glue_path(app, docname)) or {}


def reread_chapters_with_lost_glue(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str],
                                   removed: set[str]) -> list[str]:
    """Documents that glued outputs when last read but whose glue file is now missing or unreadable (deleted by
    :func:`read_glue_file`): read again, so myst-nb rewrites the file from the execution cache, or
    :mod:`mlbook_execute` executes the chapter if the cache lacks it. Without this, Sphinx would not read an
    unchanged chapter again and its numbers would stay missing until ``make clean``."""
    from myst_nb.sphinx_ import NbMetadataCollector

    lost = []
    for docname, data in NbMetadataCollector.get_doc_data(env).items():
        if not data.get("glue") or docname in added or docname in changed or docname not in env.all_docs:
            continue
        if not read_glue_file(glue_path(app, docname)):
            lost.append(docname)
    return lost


def execution_seconds(env: BuildEnvironment, docname: str) -> float | None:
    """How long the chapter's notebook took to execute (myst-nb's record, also for cached outputs)."""
    from myst_nb.sphinx_ import NbMetadataCollector

    data = NbMetadataCollector.get_exec_data(env, docname) if docname in env.all_docs else None
    return None if not data else data.get("runtime")


def substitute_data(app: Sphinx, docname: str) -> list[str]:
    """The datasets the chapter's run could not load and replaced (its ``[mlbook.data] ... unavailable`` lines)."""
    path = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"
    if not path.is_file():
        return []
    notebook = nbformat.read(path, as_version=4)
    return [FALLBACK_LINE.match(line)["wanted"] for line in fallback_announcements(notebook)]


def collect(app: Sphinx) -> dict[str, Any]:
    """Everything the Results page and the JSON file show, for this build's profile.

    In ``full``, a chapter that fell back to substitute data says so in its data, and its numbers are not judged
    against bands set for the real data; in ``quick`` the substitutes *are* the data.
    """
    profile = current_profile()
    book = registry(app)
    glued = {chapter.docname: glue_outputs(app, chapter.docname) for chapter in book.chapters}
    substituted = {chapter.docname: substitute_data(app, chapter.docname) for chapter in book.chapters
                   if profile == "full"}
    substituted = {docname: wanted for docname, wanted in substituted.items() if wanted}
    chapters = []
    for chapter in book.chapters:
        outputs = glued[chapter.docname]
        seconds = execution_seconds(app.env, chapter.docname)
        budget = chapter.budget_s.get(profile)
        conditions = conditions_from_glue(outputs[CONDITIONS_KEY]) if CONDITIONS_KEY in outputs else {}
        chapters.append({
            "docname": chapter.docname, "title": chapter.title, "seconds": seconds, "budget_s": budget,
            "within_budget": None if seconds is None or budget is None else seconds <= budget,
            "data": chapter_data(chapter, outputs), **conditions,
            "substitute_for": substituted.get(chapter.docname, []),
        })
    seconds = [c["seconds"] for c in chapters if c["seconds"] is not None]
    return {
        "profile": profile,
        "results": evaluate(book.expected, glued, profile, substituted=set(substituted)),
        "chapters": chapters,
        "total_seconds": sum(seconds),
        "versions": package_versions(),
    }


def build_report(app: Sphinx) -> dict[str, Any]:
    """:func:`collect` once per build: every chapter page and the JSON file share it (reset at ``env-updated``)."""
    report = getattr(app, REPORT_ATTRIBUTE, None)
    if report is None:
        report = collect(app)
        setattr(app, REPORT_ATTRIBUTE, report)
    return report


def forget_report(app: Sphinx, env: BuildEnvironment) -> None:
    """Chapters were (re)read: the next :func:`build_report` collects afresh."""
    setattr(app, REPORT_ATTRIBUTE, None)


def _table(header: list[str], rows: list[list[nodes.Node | str]], widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["mlbook-results"])
    group = nodes.tgroup(cols=len(header))
    table += group
    group.extend(nodes.colspec(colwidth=width) for width in widths)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for target, cells in ((head, [header]), (body, rows)):
        for cells_of_row in cells:
            row = nodes.row()
            for cell in cells_of_row:
                entry = nodes.entry()
                entry += nodes.paragraph("", "", cell if isinstance(cell, nodes.Node) else nodes.Text(str(cell)))
                row += entry
            target += row
    return table


def _chapter_link(app: Sphinx, fromdocname: str, docname: str, title: str) -> nodes.Node:
    uri = app.builder.get_relative_uri(fromdocname, docname)
    return nodes.reference("", title, internal=True, refuri=uri)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def results_nodes(app: Sphinx, fromdocname: str, report: dict[str, Any]) -> list[nodes.Node]:
    """The three tables of the Results page."""
    titles = {c["docname"]: c["title"] for c in report["chapters"]}
    numbers = _table(
        ["Chapter", "Result", "Value", f"Expected ({report['profile']})", "Status"],
        [[_chapter_link(app, fromdocname, row["chapter"], titles[row["chapter"]]), row["label"],
          format_value(row["value"], row["fmt"]),
          "—" if row["band"] is None else " to ".join(format(v, row["fmt"]) for v in row["band"]),
          STATUS_TEXT[row["status"]]] for row in report["results"]],
        [14, 36, 10, 16, 10],
    )
    times = _table(
        ["Chapter", "Data", "Executed in", "Budget", "Within budget"],
        [[_chapter_link(app, fromdocname, c["docname"], c["title"]), c["data"], _seconds(c["seconds"]),
          _seconds(c["budget_s"]), {True: "✓", False: "✗ over", None: "—"}[c["within_budget"]]]
         for c in report["chapters"]],
        [16, 44, 10, 10, 10],
    )
    devices = sorted({c.get("device", "?") for c in report["chapters"] if c.get("device")})
    seeds = sorted({str(c["seed"]) for c in report["chapters"] if "seed" in c})
    conditions = _table(
        ["Condition", "Value"],
        [["profile", report["profile"]], ["device", ", ".join(devices) or "—"], ["seed", ", ".join(seeds) or "—"],
         ["chapters' total execution time", _seconds(report["total_seconds"])]]
        + [[name, version] for name, version in report["versions"].items()],
        [30, 30],
    )
    sections = []
    for title, table in (("Headline numbers", numbers), ("Time per chapter", times), ("Conditions", conditions)):
        section = nodes.rubric("", title)
        sections += [section, table]
    return sections


def provenance_node(chapter: dict[str, Any], profile: str) -> nodes.Node:
    """A short footer: profile, data, device, seed and execution time of one chapter."""
    substitute = (f" (substitute: {' and '.join(chapter['substitute_for'])} could not be loaded, so the numbers are "
                  f"not judged against the {profile} bands)" if chapter.get("substitute_for") else "")
    parts = [f"profile {profile}", f"data: {chapter['data']}{substitute}"]
    if chapter.get("device"):
        parts.append(f"device: {chapter['device']}")
    if "seed" in chapter:
        parts.append(f"seed {chapter['seed']}")
    if chapter["seconds"] is not None:
        budget = "" if chapter["budget_s"] is None else f" (budget {chapter['budget_s']:.0f} s)"
        parts.append(f"executed in {chapter['seconds']:.0f} s{budget}")
    paragraph = nodes.paragraph("", "", nodes.strong("", "Provenance of this page's outputs: "),
                                nodes.Text("; ".join(parts) + "."))
    return nodes.container("", paragraph, classes=["mlbook-provenance"])


def on_doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    placeholders = list(doctree.findall(results_placeholder))
    is_chapter = registry(app).find_chapter(docname) is not None
    if not placeholders and not is_chapter:
        return
    report = build_report(app)
    for placeholder in placeholders:
        placeholder.replace_self(results_nodes(app, docname, report))
    if is_chapter:
        chapter = next(c for c in report["chapters"] if c["docname"] == docname)
        doctree += provenance_node(chapter, report["profile"])


def always_reread_results_page(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str],
                               removed: set[str]) -> list[str]:
    """The Results page shows every chapter's numbers, so it is read again whenever the book is built."""
    return [doc for doc in marked_pages(env, RESULTS_PAGE_KEY) if doc not in changed]


def write_results_file(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    report = build_report(app)
    path = Path(app.outdir) / RESULTS_FILE.format(profile=report["profile"])
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    outside = [r["key"] for r in report["results"] if r["status"] in ("outside", "missing")]
    if outside:
        LOGGER.info(f"[mlbook] results outside their bands or missing: {', '.join(outside)}")
    LOGGER.info(f"[mlbook] wrote {path.name}")


def setup(app: Sphinx) -> dict[str, object]:
    app.add_node(results_placeholder)
    app.add_directive("mlbook-results", ResultsDirective)
    app.connect("builder-inited", read_registry)
    app.connect("doctree-read", note_registry_dependency)
    app.connect("env-get-outdated", always_reread_results_page)
    app.connect("env-get-outdated", reread_chapters_with_lost_glue)
    app.connect("env-updated", forget_report)
    app.connect("doctree-resolved", on_doctree_resolved)
    app.connect("build-finished", write_results_file)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
