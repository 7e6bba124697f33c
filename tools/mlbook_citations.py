"""Sphinx extension (loaded from ``_config.yml``): the book's citation style for sphinxcontrib-bibtex.

``bibtex_reference_style: author_year_round`` is sphinxcontrib-bibtex's ``author_year`` with round brackets, so
``{cite:p}`goodfellow2014generative``` reads "(Goodfellow et al., 2014)" and ``{cite:t}`` "Goodfellow et al.
(2014)"; several keys are separated by semicolons (the built-in style uses square brackets and commas).
tools/colab.py writes the same text for the Colab notebooks.

``bibtex_default_style: mlbook`` is pybtex's ``alpha`` style with labels that match those citations, "[Kingma and
Ba, 2015]" ("2015a", "2015b" where the bibliography holds two alike: each work has the same label in every list),
instead of alpha's "[KB15]". Alpha's labels of entries without an author come from the first letters of their
keys, so two posts of the same year got the same label in different lists, which sphinxcontrib-bibtex reports as a
duplicate label.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pybtex.backends
import pybtex.database
import pybtex.plugin
import sphinxcontrib.bibtex.plugin
from pybtex.database import Entry, Person
from pybtex.richtext import Text
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

STYLE_NAME = "author_year_round"
LABEL_STYLE_NAME = FORMATTING_STYLE_NAME = "mlbook"


def round_brackets() -> BracketStyle:
    return BracketStyle(left="(", right=")", sep="; ")


@dataclass
class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    """Author-year references in round brackets: "(Kingma and Ba, 2015)", "Kingma and Ba (2015)"."""

    bracket_parenthetical: BracketStyle = field(default_factory=round_brackets)
    bracket_textual: BracketStyle = field(default_factory=round_brackets)
    bracket_author: BracketStyle = field(default_factory=round_brackets)
    bracket_label: BracketStyle = field(default_factory=round_brackets)
    bracket_year: BracketStyle = field(default_factory=round_brackets)


@functools.cache
def _text_backend() -> pybtex.backends.BaseBackend:
    return pybtex.plugin.find_plugin("pybtex.backends", "text")()


def plain_text(latex: str) -> str:
    """A BibTeX field as plain text, braces dropped.

    pybtex's ``render_as("text")`` looks its backend up among every installed package's entry points on each
    call (about 60 ms here); the Colab notebooks' reference lists made a thousand such calls per build.
    """
    return Text.from_latex(latex).render(_text_backend())


def last_name(person: Person) -> str:
    """A person's last name with its "von" part, as plain text ("van der Maaten")."""
    return plain_text(" ".join(person.prelast_names + person.last_names))


def is_others(person: Person) -> bool:
    """Whether ``person`` is BibTeX's "and others" marker at the end of an author list."""
    return str(person) == "others"


def author_names(entry: Entry) -> str | None:
    """The authors as citations name them: "Kingma and Ba", "Goodfellow et al." (three or more, or a list that ends
    in "and others"); ``None`` for a work without an author."""
    people = list(entry.persons.get("author", []))
    if not people:
        return None
    if len(people) >= 3 or is_others(people[-1]):
        return f"{last_name(people[0])} et al."
    return " and ".join(last_name(person) for person in people)


def author_year_label(entry: Entry) -> str:
    """"Kingma and Ba, 2015", "Goodfellow et al., 2014", "Kim, n.d." (no year, as the citations say); a work
    without an author is labelled by where it was published ("Machine Learning Notebook blog, 2017"), so that its
    list entry does not show its title twice."""
    year = entry.fields.get("year", "n.d.")
    names = author_names(entry)
    if names is None:
        names = plain_text(entry.fields.get("howpublished") or entry.fields.get("organization")
                           or entry.fields["title"])
    return f"{names}, {year}"


def with_suffixes(labels: list[str]) -> list[str]:
    """``labels`` with "a", "b", ... appended, in order, to every label that occurs more than once ("2017a";
    "n.d.-a" after a missing year)."""
    counts, seen = Counter(labels), Counter()
    suffixed = []
    for label in labels:
        if counts[label] > 1:
            seen[label] += 1
            label += ("" if label[-1].isdigit() else "-") + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
        suffixed.append(label)
    return suffixed


def book_labels(entries: Iterable[Entry]) -> dict[str, str]:
    """Each entry's label among *all* of ``entries`` (the whole bibliography), by key.

    Labels must be unique across the book: suffixes given per list would give "Machine Learning Notebook blog,
    2017" to one post in one chapter's list and to another post in another's, which Sphinx reports as a duplicate.
    """
    ordered = BookStyle().sort(list(entries))
    return dict(zip((entry.key for entry in ordered), with_suffixes([author_year_label(e) for e in ordered])))


#: The labels of the book's bibliography, set when Sphinx reads its configuration.
BOOK_LABELS: dict[str, str] = {}


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels like the citations: the book's labels where known, else labels that one list holds twice get "a",
    "b", ... in list order."""

    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        entries = list(sorted_entries)
        if entries and all(entry.key in BOOK_LABELS for entry in entries):
            yield from (BOOK_LABELS[entry.key] for entry in entries)
        else:
            yield from with_suffixes([author_year_label(entry) for entry in entries])


class BookStyle(AlphaStyle):
    """pybtex's alpha style (sorted by author, year, title) with author-year labels."""

    default_label_style = LABEL_STYLE_NAME


sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing", STYLE_NAME,
                                            RoundAuthorYearReferenceStyle)
pybtex.plugin.register_plugin("pybtex.style.labels", LABEL_STYLE_NAME, AuthorYearLabelStyle)
pybtex.plugin.register_plugin("pybtex.style.formatting", FORMATTING_STYLE_NAME, BookStyle)


def read_book_labels(app: Sphinx, config: Config) -> None:
    database = pybtex.database.BibliographyData()
    for name in config.bibtex_bibfiles:
        for key, entry in pybtex.database.parse_file(str(Path(app.srcdir) / name)).entries.items():
            database.add_entry(key, entry)
    BOOK_LABELS.clear()
    BOOK_LABELS.update(book_labels(database.entries.values()))


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", read_book_labels)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
