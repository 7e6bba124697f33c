"""tools/mlbook_alt.py: a figure's caption becomes its images' alternative text."""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.utils import new_document

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import mlbook_alt  # noqa: E402


def figure(caption: str, **image_options: str) -> tuple[nodes.document, nodes.image]:
    document = new_document("test", get_default_settings())
    image = nodes.image(uri=image_options.pop("uri", "../../_images/abc.png"), **image_options)
    document += nodes.figure("", image, nodes.caption(text=caption))
    return document, image


def test_a_captioned_figure_gets_its_caption_as_alt():
    document, image = figure("Test accuracy after\n each epoch, for both heads.")
    mlbook_alt.add_alt_text(None, document, "test")
    assert image["alt"] == "Figure: Test accuracy after each epoch, for both heads."


def test_an_image_with_its_own_alt_keeps_it_but_a_path_is_replaced():
    document, image = figure("A caption.", alt="Three digits drawn by the generator")
    mlbook_alt.add_alt_text(None, document, "test")
    assert image["alt"] == "Three digits drawn by the generator"
    document, image = figure("A caption.", alt="../../_images/abc.png")
    mlbook_alt.add_alt_text(None, document, "test")
    assert image["alt"] == "Figure: A caption."


def test_a_long_caption_is_cut_at_a_word():
    alt = mlbook_alt.alt_from_caption(nodes.caption(text="word " * 200), limit=50)
    assert len(alt) <= 50 and alt.endswith("word…")


def test_an_image_outside_a_figure_is_left_alone():
    document = new_document("test", get_default_settings())
    image = nodes.image(uri="x.png")
    document += image
    mlbook_alt.add_alt_text(None, document, "test")
    assert "alt" not in image
