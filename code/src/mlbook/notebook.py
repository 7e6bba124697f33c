"""Glue: record a value computed in a notebook cell under a name, so that text written elsewhere can show it.

:func:`glue` writes the same output that ``myst_nb.glue`` writes, so a Jupyter Book built with myst-nb pastes the
value wherever the text names it with myst-nb's ``glue:text`` role. It needs no myst-nb, so a chapter's notebook
runs unchanged in Colab or a plain Jupyter. There, where nothing pastes the value into the text,
``glue(..., display=False)`` also shows a line ``name = value`` (an *echo*), so a sentence that mentions ``name`` can
point at it. The echo
carries :data:`ECHO_METADATA_KEY` in its metadata, so that a book build can drop it from the page.
:func:`record` stores a value for the build alone (e.g. the run's conditions for the Results page), with no echo.
Every value glued or recorded is also kept in this Python process (:func:`recorded`), so that
:func:`mlbook.compare.compare_with_book` can set a reader's run beside the book's.
:func:`markdown_table` shows a table the code computes as a Markdown table, which the book and Colab both render.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.display import Markdown

#: The MIME prefix of a value recorded but not displayed (myst-nb's ``GLUE_PREFIX``, papermill's convention).
GLUE_MIME_PREFIX = "application/papermill.record/"
#: Output metadata key that marks an echo line; its value is the glued name.
ECHO_METADATA_KEY = "mlbook_glue_echo"

_recorded: dict[str, Any] = {}


def recorded() -> dict[str, Any]:
    """Every value glued or recorded in this process so far, by name (the latest value of a name wins)."""
    return dict(_recorded)


def echo_text(name: str, plain: str) -> str:
    """The echo line for ``name`` whose plain-text representation is ``plain``, e.g. ``"accuracy = 0.97"``."""
    return f"{name} = {plain}"


def echo_output(name: str, plain: str) -> dict[str, Any]:
    """The echo of a glued value as an nbformat ``display_data`` output (a plain dict)."""
    return {"output_type": "display_data", "data": {"text/plain": echo_text(name, plain)},
            "metadata": {ECHO_METADATA_KEY: name}}


def is_echo(output: dict[str, Any]) -> bool:
    """Whether a notebook output is an echo line written by :func:`glue`."""
    return ECHO_METADATA_KEY in (output.get("metadata") or {})


def glue(name: str, value: Any, display: bool = True, *, echo: bool = True) -> None:
    """Record ``value`` under ``name`` in the running notebook's outputs, as ``myst_nb.glue`` does.

    Args:
        name: the key the text refers to (unique within a notebook).
        value: any object; what is stored is its IPython display representation.
        display: also display the value as an ordinary output; when ``False`` it is stored only.
        echo: when ``display`` is ``False``, also show ``name = value`` for readers of the bare notebook.

    Outside a Jupyter kernel (a plain Python script) it only keeps the value for :func:`recorded`.
    """
    _recorded[name] = value
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import display as show
    except ImportError:
        return
    if get_ipython() is None:
        return
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_MIME_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    show({prefix + mime: data for mime, data in bundle.items()}, raw=True, metadata=metadata)
    if not display and echo:
        echoed = echo_output(name, bundle.get("text/plain", repr(value)))
        show(echoed["data"], raw=True, metadata=echoed["metadata"])


def record(name: str, value: Any) -> None:
    """Record ``value`` under ``name`` for the build, with no line shown to the reader; outside a Jupyter kernel it
    only keeps the value for :func:`recorded`."""
    glue(name, value, display=False, echo=False)


#: The separator cell of :func:`markdown_table` for each alignment character: the renderer's default, left,
#: centre, right.
TABLE_ALIGNMENTS = {"-": "---", "l": ":---", "c": ":---:", "r": "---:"}


def table_cell(value: object) -> str:
    """One cell of a Markdown table: ``str(value)`` with each ``|`` escaped as ``\\|`` (the renderer shows ``|``).

    Raises:
        ValueError: if the text has a line break, which would end the table's row.
    """
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"a Markdown table cell cannot hold a line break: {text!r}")
    return text.replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> Markdown:
    """A pipe table (GitHub's, MyST's and Colab's Markdown) of ``header`` and ``rows``, for a code cell to show.

    Each cell is ``str(value)`` with ``|`` escaped and nothing else done to it: a cell formats its own numbers
    (``f"{loss:.3f}"``) and its own emphasis (``f"**{total:,}**"``), and an empty string leaves a cell empty.

    Args:
        header: the column titles.
        rows: the rows, each with one value per column.
        align: one character per column: ``"l"`` left, ``"c"`` centred, ``"r"`` right, ``"-"`` the renderer's
            default (left in the book); ``None`` for the default in every column. E.g. ``"lrr"``.

    Returns:
        an :class:`IPython.display.Markdown` whose text is the header line, the separator line and one line per
        row, e.g. ``"| a | b |\\n|---|---:|\\n| x | 1 |"``.

    Raises:
        ValueError: if there is no column, if a row or ``align`` does not have one entry per column, if ``align``
            has a character other than ``l``, ``c``, ``r`` and ``-``, or if a cell has a line break.
    """
    from IPython.display import Markdown

    return Markdown(markdown_table_text(header, rows, align))


def markdown_table_text(header: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """The text of :func:`markdown_table` (same arguments and errors), without IPython."""
    columns = len(header)
    if columns == 0:
        raise ValueError("a Markdown table needs at least one column")
    align = "-" * columns if align is None else align
    if len(align) != columns:
        raise ValueError(f"align {align!r} has {len(align)} character(s) for {columns} column(s)")
    if unknown := sorted(set(align) - set(TABLE_ALIGNMENTS)):
        raise ValueError(f"align {align!r} has unknown character(s) {unknown}; use l, c, r or -")

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(table_cell(cell) for cell in cells) + " |"

    lines = [line(header), "|" + "|".join(TABLE_ALIGNMENTS[char] for char in align) + "|"]
    for number, row in enumerate(rows, start=1):
        if len(row) != columns:
            raise ValueError(f"row {number} has {len(row)} cell(s) for {columns} column(s): {list(row)!r}")
        lines.append(line(row))
    return "\n".join(lines)
