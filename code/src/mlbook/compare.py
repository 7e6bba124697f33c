"""Did my run match the book? Set the numbers a reader's run recorded beside the book's.

A chapter records its headline numbers with :func:`mlbook.notebook.glue` or :func:`~mlbook.notebook.record`; this
Python process keeps them (:func:`mlbook.notebook.recorded`). :func:`compare_with_book` prints, for each headline
number of a chapter, whether the reader's value lies in the band the book's build is judged against, the value, the
band and the value of the book's own build; for a number outside its band it also names the installed packages
whose versions differ from the book's and the device.

The bands and the book's values ship with the package (``mlbook/published/results-<profile>.json``, a snapshot of
a build's ``results-<profile>.json``), rather than being fetched from the published site: the comparison then
works offline, and it is made against the book that matches the installed package, not against a later build.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from mlbook.notebook import recorded
from mlbook.profiles import resolve_profile
from mlbook.runtime import CONDITIONS_KEY

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
PUBLISHED_FILE = "results-{profile}.json"
#: The packages whose versions can change a chapter's numbers; the book's toolchain (Jupyter Book) cannot.
RUNTIME_PACKAGES = ("mlbook", "tensorflow", "keras", "numpy", "scipy", "scikit-learn", "matplotlib")
#: TensorFlow's distributions: the book pins ``tensorflow-cpu``, a reader (Colab) usually has ``tensorflow``.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu")
MARKS = {"ok": "✓", "outside": "✗", "missing": "–", "unchecked": "·"}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One headline number: the reader's ``value`` (``None`` if not recorded), the ``band`` it is judged against
    (``None`` where the profile has none), the book's value and the ``status``: ``"ok"``, ``"outside"``,
    ``"missing"`` or ``"unchecked"``."""

    key: str
    label: str
    value: float | None
    band: tuple[float, float] | None
    book_value: float | None
    fmt: str
    status: str

    def line(self) -> str:
        """``✓ label: 0.972 · band [0.900, 1.000] · book 0.968``."""
        def show(number: float | None) -> str:
            return "—" if number is None else format(number, self.fmt)

        value = "not recorded in this session (run the chapter's cells first)" if self.value is None else show(
            self.value)
        band = "no band" if self.band is None else f"band [{show(self.band[0])}, {show(self.band[1])}]"
        return f"{MARKS[self.status]} {self.label}: {value} · {band} · book {show(self.book_value)}"


def published_results(profile: str, published: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The book's results for ``profile``: ``published`` (a ``results-<profile>.json`` written by a build) or the
    snapshot shipped with the package; ``None`` when the package ships none for that profile.

    Raises:
        ValueError: if the file is not a results file of that profile.
    """
    path = Path(published) if published is not None else PUBLISHED_DIR / PUBLISHED_FILE.format(profile=profile)
    if published is None and not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the book's results from {path}: {error}") from error
    if not isinstance(report, dict) or report.get("profile") != profile or "results" not in report:
        raise ValueError(f"{path} is not a results file of the {profile!r} profile")
    return report


def chapter_docname(chapter: str, report: Mapping[str, Any]) -> str:
    """The docname (``book/generative/vae``) of ``chapter``, given as its docname, ``generative/vae`` or ``vae``.

    Raises:
        ValueError: if no chapter of the report matches, naming those that do exist.
    """
    names = sorted({result["chapter"] for result in report["results"]})
    wanted = chapter.removesuffix(".md").removesuffix(".ipynb").strip("/")
    matches = [name for name in names if name == wanted or name.endswith("/" + wanted)]
    if len(matches) != 1:
        raise ValueError(f"no single chapter with headline numbers matches {chapter!r}; choose one of {names}")
    return matches[0]


def compare(docname: str, report: Mapping[str, Any], values: Mapping[str, Any]) -> list[Comparison]:
    """Each headline number of ``docname`` in ``report``, judged for the reader's ``values``."""
    rows = []
    for result in (r for r in report["results"] if r["chapter"] == docname):
        band = tuple(result["band"]) if result.get("band") else None
        value = values.get(result["key"])
        value = None if value is None else float(value)
        if value is None:
            status = "missing"
        elif band is None:
            status = "unchecked"
        else:
            status = "ok" if band[0] <= value <= band[1] else "outside"
        rows.append(Comparison(result["key"], result["label"], value, band, result.get("value"),
                               result.get("fmt", ".3f"), status))
    return rows


def installed_version(name: str) -> str | None:
    """The installed version of ``name`` (Python itself for ``"python"``; TensorFlow under any of its
    distributions), or ``None``."""
    if name == "python":
        return platform.python_version()
    for distribution in TENSORFLOW_DISTRIBUTIONS if name in TENSORFLOW_DISTRIBUTIONS else (name,):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def version_differences(book_versions: Mapping[str, str]) -> list[str]:
    """``"numpy 1.26.4 (book: 2.4.6)"`` for each of Python and :data:`RUNTIME_PACKAGES` whose installed version
    differs from the book's build."""
    book = {("tensorflow" if name in TENSORFLOW_DISTRIBUTIONS else name): version
            for name, version in book_versions.items()}
    differences = []
    for name in ("python", *RUNTIME_PACKAGES):
        if name in book and (installed := installed_version(name)) != book[name]:
            differences.append(f"{name} {installed or 'not installed'} (book: {book[name]})")
    return differences


def compare_with_book(chapter: str, profile: str | None = None, *, values: Mapping[str, Any] | None = None,
                      published: str | os.PathLike | None = None) -> list[Comparison]:
    """Print one line per headline number of ``chapter``: ✓ or ✗, the reader's value, its band and the book's value.

    For any ✗ it also prints the installed packages whose versions differ from the book's build, and both devices.

    Args:
        chapter: the chapter's docname, or its last part (``"vae"``).
        profile: the profile to compare with; by default the one the chapter ran with (else ``MLBOOK_PROFILE``).
        values: the reader's numbers by key; by default those recorded in this process.
        published: a ``results-<profile>.json`` to compare with instead of the snapshot shipped with the package.

    Returns:
        The comparisons, in the Results page's order (empty when the package has no values for the profile).

    Raises:
        ValueError: for an unknown profile or chapter, or an unreadable ``published`` file.
    """
    values = recorded() if values is None else values
    conditions = values.get(CONDITIONS_KEY) or {}
    profile = resolve_profile(profile or conditions.get("profile"))
    report = published_results(profile, published)
    if report is None:
        print(f"The package holds no published values of the {profile!r} profile to compare with.")
        return []
    docname = chapter_docname(chapter, report)
    rows = compare(docname, report, values)
    print(f"Your run of {docname} (profile {profile}) beside the book's build:")
    for row in rows:
        print(row.line())
    if any(row.status == "outside" for row in rows):
        print("For the ✗ above, what differs from the book's build:")
        differences = version_differences(report.get("versions", {}))
        print("  " + ("; ".join(differences) if differences else "no installed version differs from the book's"))
        book_device = report.get("devices", {}).get(docname, "unknown")
        print(f"  device: {conditions.get('device', 'unknown (run the chapter from its first cell)')} "
              f"(book: {book_device})")
    return rows
