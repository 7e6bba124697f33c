"""Sphinx extension (loaded from ``_config.yml``): the book's citation style for sphinxcontrib-bibtex.

``bibtex_reference_style: author_year_round`` is sphinxcontrib-bibtex's ``author_year`` with round brackets, so
``{cite:p}`goodfellow2014generative``` reads "(Goodfellow et al., 2014)" and ``{cite:t}`` "Goodfellow et al.
(2014)"; several keys are separated by semicolons (the built-in style uses square brackets and commas).
tools/colab.py writes the same text for the Colab notebooks.

``bibtex_default_style: mlbook`` is pybtex's ``alpha`` style with labels that match those citations, "[Kingma and
Ba, 2015]" ("2015a", "2015b" when one list holds two alike), instead of alpha's "[KB15]". Alpha's labels of entries
without an author come from the first letters of their keys, so two posts of the same year got the same label in
different lists, which sphinxcontrib-bibtex reports as a duplicate label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pybtex.plugin

import sphinxcontrib.bibtex.plugin
from pybtex.database import Entry, Person
from pybtex.richtext import Text
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx
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


def _last_name(person: Person) -> str:
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


def author_year_label(entry: Entry) -> str:
    """"Kingma and Ba, 2015", "Goodfellow et al., 2014"; a work without an author is labelled by where it was
    published ("Machine Learning Notebook blog, 2017"), so that its list entry does not show its title twice."""
    people = list(entry.persons.get("author", []))
    year = entry.fields.get("year", "")
    if not people:
        source = entry.fields.get("howpublished") or entry.fields.get("organization") or entry.fields["title"]
        source = Text.from_latex(source).render_as("text")
        return f"{source}, {year}" if year else source
    if len(people) >= 3 or str(people[-1]) == "others":
        names = f"{_last_name(people[0])} et al."
    else:
        names = " and ".join(_last_name(person) for person in people)
    return f"{names}, {year}" if year else names


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels like the citations; labels that one list holds twice get "a", "b", ... in list order."""

    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        labels = [author_year_label(entry) for entry in sorted_entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class BookStyle(AlphaStyle):
    """pybtex's alpha style (sorted by author, year, title) with author-year labels."""

    default_label_style = LABEL_STYLE_NAME


sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing", STYLE_NAME,
                                            RoundAuthorYearReferenceStyle)
pybtex.plugin.register_plugin("pybtex.style.labels", LABEL_STYLE_NAME, AuthorYearLabelStyle)
pybtex.plugin.register_plugin("pybtex.style.formatting", FORMATTING_STYLE_NAME, BookStyle)


def setup(app: Sphinx) -> dict[str, object]:
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
