"""Sphinx extension (loaded from ``_config.yml``): alternative text for the book's figures.

A chapter's figures are cell outputs, and myst-nb gives their images no ``alt``, so Sphinx's HTML writer falls back
to the file's path, which a screen reader reads out as a hash. Every figure here has a caption written for the
reader, so the caption, as resolved for this build (glued numbers and cross-references filled in), becomes the
alternative text of the images it captions. An image that already has its own alternative text keeps it.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.application import Sphinx

#: Screen readers read alt text in one breath; a longer caption is cut at a word boundary and marked with "…".
MAX_ALT_CHARACTERS = 300


def has_own_alt(image: nodes.image) -> bool:
    """Whether the image's ``alt`` says something other than its own file name."""
    alt = str(image.get("alt", "")).strip()
    return bool(alt) and alt != image.get("uri") and not re.search(r"\.(png|jpe?g|gif|svg)$", alt)


def alt_from_caption(caption: nodes.caption, limit: int = MAX_ALT_CHARACTERS) -> str:
    """The caption's text on one line, at most ``limit`` characters long."""
    text = " ".join(caption.astext().split())
    if len(text) <= limit:
        return text
    return text[: text.rfind(" ", 0, limit - 1)].rstrip(" ,;:") + "…"


def add_alt_text(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give every image in a captioned figure the caption as its alternative text, unless it has its own."""
    for figure in doctree.findall(nodes.figure):
        captions = list(figure.findall(nodes.caption))
        if not captions:
            continue
        for image in figure.findall(nodes.image):
            if not has_own_alt(image):
                image["alt"] = "Figure: " + alt_from_caption(captions[0])


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("doctree-resolved", add_alt_text)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
