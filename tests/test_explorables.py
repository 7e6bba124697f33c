"""Tests of mlbook.explorables: the sprite sheets, and the three HTML blocks built from small synthetic arrays and
parsed back (the data a page shows must be the data it was given). The real-browser tests of the built chapters
are in test_explorables_browser.py."""

from __future__ import annotations

import base64
import io
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from mlbook import explorables as ex

PNG_PREFIX = "data:image/png;base64,"


def decode_png(uri: str) -> np.ndarray:
    from PIL import Image

    assert uri.startswith(PNG_PREFIX)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(PNG_PREFIX):]))))


def tolerance(levels: int) -> float:
    """Half a quantisation step, plus the rounding to 8 bits."""
    return 0.5 / (levels - 1) + 0.5 / 255 + 1e-6


class Elements(HTMLParser):
    """Every start tag as ``(tag, attributes)``, and the text inside each element of class ``x-sample-text``."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.sample_texts: list[str] = []
        self._in_sample = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        self._in_sample = "x-sample-text" in attributes.get("class", "").split()
        if self._in_sample:
            self.sample_texts.append("")

    def handle_endtag(self, tag):
        self._in_sample = False

    def handle_data(self, data):
        if self._in_sample:
            self.sample_texts[-1] += data

    def find(self, tag: str | None = None, css_class: str | None = None) -> list[dict[str, str]]:
        return [attributes for name, attributes in self.tags if (tag is None or name == tag)
                and (css_class is None or css_class in attributes.get("class", "").split())]

    def one(self, tag: str | None = None, css_class: str | None = None) -> dict[str, str]:
        (found,) = self.find(tag, css_class)
        return found


def random_frames(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def assert_self_contained(page: str) -> None:
    assert not re.search(r"\{(id|x_label|y_label|image_name|pad_width|pad_height|view_width)\}", page), \
        "a placeholder was left unfilled"
    assert "http://" not in page and "https://" not in page
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
    assert page.count("<script>") == 1 and page.count("<style>") == 1
    for image in re.findall(r"<img [^>]*>", page):  # the book's rule: every image says what it is
        assert len(re.search(r'alt="([^"]*)"', image)[1].split()) >= 2, image[:80]


def assert_labels_name_their_controls(parsed: Elements) -> None:
    ids = {attributes["id"] for _, attributes in parsed.tags if "id" in attributes}
    for label in parsed.find("label"):
        assert label["for"] in ids
    for control in parsed.find("input"):
        assert control["type"] == "range" and control["id"] in {label["for"] for label in parsed.find("label")}


# --- the sprite sheet -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("levels", [256, 32])
def test_sprite_holds_each_frame_where_the_layout_says(channels, levels):
    frames = random_frames(7, 5, 4, channels)
    sheet = decode_png(ex.sprite_data_uri(frames, ncols=3, levels=levels)).astype(np.float64) / 255
    assert sheet.shape[:2] == (3 * 5, 3 * 4)  # 3 rows of 3, the last two cells empty
    sheet = sheet.reshape(*sheet.shape[:2], channels)
    for i, frame in enumerate(frames):
        row, col = divmod(i, 3)
        np.testing.assert_allclose(sheet[row * 5 : (row + 1) * 5, col * 4 : (col + 1) * 4], frame,
                                   atol=tolerance(levels))
    np.testing.assert_array_equal(sheet[10:, 4:], 0.0)  # the empty cells are black
    if levels < 256:
        assert len(np.unique(sheet)) <= levels


def test_sprite_rejects_wrong_shapes_values_and_settings():
    with pytest.raises(ValueError, match=r"expected frames of shape \(…, h, w\)"):
        ex.sprite_data_uri(np.zeros((4, 4)), ncols=2)
    with pytest.raises(ValueError, match=r"expected frames of shape"):
        ex.sprite_data_uri(np.zeros((2, 4, 4, 2)), ncols=2)  # two channels
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\]"):
        ex.sprite_data_uri(np.full((2, 4, 4), 1.5), ncols=2)
    with pytest.raises(ValueError, match="finite values"):
        ex.sprite_data_uri(np.full((2, 4, 4), np.nan), ncols=2)
    with pytest.raises(ValueError, match="at least one frame"):
        ex.sprite_data_uri(np.zeros((0, 4, 4)), ncols=2)
    with pytest.raises(ValueError, match="ncols >= 1"):
        ex.sprite_data_uri(np.zeros((2, 4, 4)), ncols=0)
    with pytest.raises(ValueError, match="2 to 256 levels"):
        ex.sprite_data_uri(np.zeros((2, 4, 4)), ncols=2, levels=1)


def test_numbers_are_written_with_a_true_minus_sign_and_no_negative_zero():
    assert ex.format_number(-1.5) == "\u22121.50"
    assert ex.format_number(1.644854) == "1.64"
    assert ex.format_number(-0.001) == "0.00"


# --- the latent pad ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [256, ex.SPRITE_LEVELS])
def test_latent_explorer_carries_its_grid_and_every_frame(levels):
    frames = random_frames(3, 4, 5, 6)  # 3 rows of 4 frames of 5×6 pixels, grey
    extent = (-2.0, 2.0, -1.0, 3.0)
    page = ex.latent_explorer_html(frames, extent, levels=levels)
    assert_self_contained(page)
    parsed = Elements(page)
    root = parsed.one("div", ex.LATENT_CLASS)
    assert ex.EXPLORABLE_CLASS in root["class"].split()
    assert (root["data-rows"], root["data-cols"], root["data-frame-height"], root["data-frame-width"]) == (
        "3", "4", "5", "6")
    assert tuple(map(float, root["data-extent"].split(","))) == extent
    assert (root["data-row"], root["data-col"]) == ("1", "1")  # the middle, rounded towards the top left
    x, y = parsed.one("input", "x-slider-x"), parsed.one("input", "x-slider-y")
    assert (x["min"], x["max"], x["value"]) == ("0", "3", "1")
    assert (y["min"], y["max"], y["value"]) == ("0", "2", "1")  # z₂'s slider counts rows from the bottom
    canvas = parsed.one("canvas", "x-frame")
    assert (canvas["width"], canvas["height"]) == ("6", "5")  # one frame, at its own resolution
    assert_labels_name_their_controls(parsed)
    pad = parsed.one("div", "x-pad")
    assert pad["tabindex"] == "0" and "arrow keys" in pad["aria-label"]

    sheet = decode_png(parsed.one("img", "x-sprite")["src"]).astype(np.float64) / 255
    assert sheet.shape == (3 * 5, 4 * 6)
    for row, col in [(0, 0), (1, 2), (2, 3)]:
        np.testing.assert_allclose(sheet[row * 5 : (row + 1) * 5, col * 6 : (col + 1) * 6], frames[row, col],
                                   atol=tolerance(levels))
    # the pad's map: here every frame, shrunk to the pad's size (24 × 15 pixels, so 246 × 154 CSS pixels)
    pad_map = parsed.one("img", "x-map-image")
    assert (pad_map["width"], pad_map["height"]) == ("246", str(round(246 * 15 / 24)))
    shrunk = decode_png(pad_map["src"]).astype(np.float64) / 255
    assert shrunk.shape == (154, 246)
    np.testing.assert_allclose(shrunk.mean(), sheet.mean(), atol=0.01)
    lit = np.zeros_like(frames)
    lit[0, 3] = 1.0  # only the top right frame is white: so is the top right of the map, and nothing else
    shrunk = decode_png(Elements(ex.latent_explorer_html(lit, extent)).one("img", "x-map-image")["src"]) / 255
    assert shrunk[:51, 185:].min() > 0.99 and shrunk[52:].max() == 0 and shrunk[:, :184].max() == 0


def test_the_map_of_a_fine_grid_shows_every_few_frames_each_centred_on_its_cell():
    frames = np.zeros((41, 41, 28, 28))
    frames[40, 40] = 1.0  # bottom right: a frame the map shows (with a stride of 4 at 246 pixels)
    frames[1, 1] = 1.0  # a frame between two shown ones: left out
    shrunk = decode_png(ex.latent_map_data_uri(frames, 246, 246)).astype(np.float64) / 255
    assert shrunk.shape == (246, 246)
    cell = 246 / 41
    assert shrunk[: int(10 * cell)].max() == 0 and shrunk[:, : int(10 * cell)].max() == 0  # nothing top left
    # the last frame's tile is centred on its cell (40.5 cells) and 4 cells wide: the map is lit from 38.5 cells
    lit = np.flatnonzero(shrunk[-1] > 0.5)
    assert lit.min() == pytest.approx(38.5 * cell, abs=2) and lit.max() == 245


def test_latent_explorer_ids_are_unique_per_content_and_repeatable():
    frames, extent = random_frames(2, 2, 3, 3), (-1, 1, -1, 1)
    first = Elements(ex.latent_explorer_html(frames, extent)).one("div", ex.LATENT_CLASS)["id"]
    assert first == Elements(ex.latent_explorer_html(frames, extent)).one("div", ex.LATENT_CLASS)["id"]
    other = Elements(ex.latent_explorer_html(random_frames(2, 2, 3, 3, seed=1), extent)).one("div", ex.LATENT_CLASS)
    assert other["id"] != first
    page = ex.latent_explorer_html(frames, extent)
    assert f'getElementById("{first}")' in page and f"#{first} " in page


def test_latent_explorer_accepts_colour_and_writes_the_axis_ends():
    page = ex.latent_explorer_html(random_frames(2, 3, 4, 4, 3), (-1.6448536, 1.6448536, -0.5, 0.25),
                                   x_label="a", y_label="b")
    parsed = Elements(page)
    assert parsed.one("div", ex.LATENT_CLASS)["data-cols"] == "3"
    assert "\u22121.64" in page and "1.64" in page and "\u22120.50" in page and "0.25" in page
    assert '"a = "' in page and '"b = "' in page  # the script writes the coordinates' names


@pytest.mark.parametrize("frames, extent, message", [
    (np.zeros((4, 4, 4)), (0, 1, 0, 1), r"expected frames of shape \(…, …, h, w\)"),
    (np.zeros((1, 4, 4, 4)), (0, 1, 0, 1), r"at least 2 × 2 frames, got 1 × 4"),
    (np.zeros((2, 2, 4, 4)), (0, 1, 0), "extent"),
    (np.zeros((2, 2, 4, 4)), (1, 0, 0, 1), "x_min < x_max"),
    (np.zeros((2, 2, 4, 4)), (0, 1, 0, np.inf), "extent"),
    (np.full((2, 2, 4, 4), -0.1), (0, 1, 0, 1), r"\[0, 1\]"),
])
def test_latent_explorer_rejects_wrong_shapes_and_extents(frames, extent, message):
    with pytest.raises(ValueError, match=message):
        ex.latent_explorer_html(frames, extent)


# --- the interpolation slider ------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_interpolation_explorer_carries_every_frame_in_order(channels):
    frames = random_frames(5, 4, 6, channels)
    page = ex.interpolation_explorer_html(frames, label="Walk", image_name="Image")
    assert_self_contained(page)
    parsed = Elements(page)
    root = parsed.one("div", ex.INTERPOLATION_CLASS)
    cols = int(root["data-cols"])
    assert cols == math.ceil(math.sqrt(5))
    assert (root["data-frames"], root["data-frame"], root["data-frame-height"], root["data-frame-width"]) == (
        "5", "0", "4", "6")
    slider = parsed.one("input", "x-slider")
    assert (slider["min"], slider["max"], slider["value"]) == ("0", "4", "0")
    assert_labels_name_their_controls(parsed)
    assert len(parsed.find("canvas", "x-end")) == 2
    sheet = decode_png(parsed.one("img", "x-sprite")["src"]).astype(np.float64) / 255
    sheet = sheet.reshape(*sheet.shape[:2], channels)
    for k in range(5):
        row, col = divmod(k, cols)
        np.testing.assert_allclose(sheet[row * 4 : (row + 1) * 4, col * 6 : (col + 1) * 6], frames[k],
                                   atol=tolerance(ex.SPRITE_LEVELS))


def test_interpolation_explorer_needs_two_frames_of_one_shape():
    with pytest.raises(ValueError, match="at least 2 frames"):
        ex.interpolation_explorer_html(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match=r"expected frames of shape \(…, h, w\)"):
        ex.interpolation_explorer_html(np.zeros((2, 3, 4, 4, 1)))


# --- the temperature slider --------------------------------------------------------------------------------------


def samples() -> list[ex.TemperatureSample]:
    return [ex.TemperatureSample(0.0, "the the the", 0.41234), ex.TemperatureSample(0.5, "a <b> & 'c'", 1.5),
            ex.TemperatureSample(1.25, "zq xv", 3.987654)]


def test_temperature_explorer_carries_each_sample_its_temperature_and_bits():
    page = ex.temperature_explorer_html(samples(), prompt="the ")
    assert_self_contained(page)
    parsed = Elements(page)
    root = parsed.one("div", ex.TEMPERATURE_CLASS)
    assert (root["data-count"], root["data-index"]) == ("3", "1")
    items = parsed.find("li")
    assert [float(item["data-temperature"]) for item in items] == [0.0, 0.5, 1.25]
    assert [float(item["data-bpc"]) for item in items] == [0.41234, 1.5, 3.987654]  # exact, not rounded
    assert [item["data-readout"] for item in items] == [ex.temperature_readout(s) for s in samples()]
    assert ex.temperature_readout(samples()[2]) == "\u03c4 = 1.25: 3.99 bits per character"
    assert [item["data-label"] for item in items] == ["\u03c4 = 0", "\u03c4 = 0.5", "\u03c4 = 1.25"]
    assert parsed.sample_texts == [s.text for s in samples()]  # escaped in the markup, the same text once parsed
    slider = parsed.one("input", "x-slider")
    assert (slider["min"], slider["max"], slider["value"]) == ("0", "2", "1")
    assert_labels_name_their_controls(parsed)
    assert 'class="x-prompt">the </span>' in page
    first = Elements(ex.temperature_explorer_html(samples(), start_index=0)).one("div", ex.TEMPERATURE_CLASS)
    assert first["data-index"] == "0" and first["id"] != root["id"]  # another prompt, another id


@pytest.mark.parametrize("change, message", [
    (lambda s: s[:1], "at least 2 samples"),
    (lambda s: [s[1], s[0], s[2]], "increasing order"),
    (lambda s: [ex.TemperatureSample(-0.5, "a", 1.0), *s[1:]], "non-negative temperatures"),
    (lambda s: [*s[:2], ex.TemperatureSample(2.0, "a", float("nan"))], "finite, non-negative bits"),
])
def test_temperature_explorer_rejects_bad_samples(change, message):
    with pytest.raises(ValueError, match=message):
        ex.temperature_explorer_html(change(samples()))


def test_temperature_explorer_rejects_a_start_outside_the_samples():
    with pytest.raises(ValueError, match="start_index"):
        ex.temperature_explorer_html(samples(), start_index=3)
