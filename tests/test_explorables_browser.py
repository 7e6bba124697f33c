"""The three explorables in a real browser: headless Chromium driven by Playwright, against the chapters' pages in
a real build of the book (the VAE's latent pad, the GAN's interpolation slider, the character RNN's temperature
slider).

Each control is moved with the mouse and with the keyboard, and what the page then shows is checked against the
data the build wrote into it: the canvas's pixels against the frame the sprite sheet holds for that position, the
text against the sample for that temperature. Setup as in test_quiz_browser.py (Debian's ``chromium``, ``pip
install playwright``, never ``playwright install``); screenshots go to ``$MLBOOK_ARTIFACTS`` if set.
"""

from __future__ import annotations

import dataclasses
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mlbook import explorables
from test_quiz_browser import (
    ARTIFACTS_ENV_VAR,
    assert_readable,
    decode_png,
    open_chapter,
    text_and_background_colours,
)

pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class Kind:
    css_class: str
    page: Path
    #: the most the explorable's HTML may add to its page, in characters (the site's budget is 3 MB in all)
    max_size: int


KINDS = {
    "latent": Kind(explorables.LATENT_CLASS, Path("book/generative/vae.html"), 450_000),
    "interpolation": Kind(explorables.INTERPOLATION_CLASS, Path("book/generative/gan.html"), 400_000),
    "temperature": Kind(explorables.TEMPERATURE_CLASS, Path("book/sequences/char-rnn.html"), 40_000),
}


class ExplorableParser(HTMLParser):
    """The explorable of one class in a page: its outer attributes, its sprite's data URI, the attributes of its
    list items and their sample texts, and the length of its markup."""

    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class, self.found = css_class, 0
        self.attributes: dict[str, str] = {}
        self.sprite = ""
        self.items: list[dict[str, str]] = []
        self.texts: list[str] = []
        self.start: tuple[int, int] | None = None
        self.end: tuple[int, int] | None = None
        self._depth = 0
        self._in_text = False

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        if tag == "div" and self._depth == 0 and self.css_class in classes:
            self.found += 1
            self.attributes, self._depth, self.start = attributes, 1, self.getpos()
        elif self._depth:
            self._depth += tag == "div"
            if tag == "img" and "x-sprite" in classes:
                self.sprite = attributes["src"]
            if tag == "li":
                self.items.append(attributes)
            self._in_text = "x-sample-text" in classes
            if self._in_text:
                self.texts.append("")

    def handle_endtag(self, tag):
        self._in_text = False
        if tag == "div" and self._depth:
            self._depth -= 1
            if self._depth == 0:
                self.end = self.getpos()

    def handle_data(self, data):
        if self._in_text:
            self.texts[-1] += data


@dataclasses.dataclass(frozen=True)
class Built:
    """One explorable as the build wrote it."""

    kind: Kind
    page: Path
    attributes: dict[str, str]
    sheet: np.ndarray | None  # the sprite sheet's pixels, (H, W, 3) uint8
    items: list[dict[str, str]]
    texts: list[str]
    size: int

    @property
    def id(self) -> str:
        return self.attributes["id"]

    def number(self, name: str) -> int:
        return int(self.attributes[f"data-{name}"])

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the sprite sheet, counted row by row."""
        height, width = self.number("frame-height"), self.number("frame-width")
        row, col = divmod(index, self.number("cols"))
        return self.sheet[row * height : (row + 1) * height, col * width : (col + 1) * width]


def read_built(page: Path, kind: Kind) -> Built:
    source = page.read_text(encoding="utf-8")
    parser = ExplorableParser(kind.css_class)
    parser.feed(source)
    assert parser.found == 1, f"{page}: expected one .{kind.css_class}, found {parser.found}"
    line_starts = np.cumsum([0] + [len(line) for line in source.splitlines(keepends=True)])
    start, end = (int(line_starts[line - 1]) + column for line, column in (parser.start, parser.end))
    size = end + len("</div>") - start
    assert source[start:].startswith("<div") and source[start:size + start].endswith("</div>")
    sheet = None
    if parser.sprite:
        pixels = decode_png(parser.sprite)
        sheet = np.repeat(pixels[..., None], 3, axis=-1) if pixels.ndim == 2 else pixels[..., :3]
    return Built(kind, page, parser.attributes, sheet, parser.items, parser.texts, size)


@pytest.fixture(scope="module", params=list(KINDS))
def built(request, built_book: Path) -> Built:
    kind = KINDS[request.param]
    page = built_book / kind.page
    assert page.is_file(), f"the build has no {kind.page} (is the chapter in the table of contents?)"
    return read_built(page, kind)


@pytest.fixture(scope="module")
def built_kind(built_book: Path):
    return lambda name: read_built(built_book / KINDS[name].page, KINDS[name])


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ[ARTIFACTS_ENV_VAR]) if os.environ.get(ARTIFACTS_ENV_VAR) else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def canvas_pixels(canvas) -> np.ndarray:
    """A canvas's own pixels (not their on-screen magnification), RGB."""
    width, height, data = canvas.evaluate(
        "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]")
    return np.array(data, dtype=np.uint8).reshape(height, width, 4)[..., :3]


def assert_shows(canvas, frame: np.ndarray, what: str) -> None:
    shown = canvas_pixels(canvas)
    assert shown.shape == frame.shape, what
    assert np.abs(shown.astype(int) - frame.astype(int)).max() <= 1, f"{what}: the canvas is not that frame"


def z_text(built: Built, row: int, col: int) -> str:
    """What the latent pad writes under its image for a cell: as the script computes it."""
    x_min, x_max, y_min, y_max = map(float, built.attributes["data-extent"].split(","))
    rows, cols = built.number("rows"), built.number("cols")
    z1 = x_min + col * (x_max - x_min) / (cols - 1)
    z2 = y_min + (rows - 1 - row) * (y_max - y_min) / (rows - 1)
    return f"z\u2081 = {explorables.format_number(z1)}, z\u2082 = {explorables.format_number(z2)}"


# --- every explorable ----------------------------------------------------------------------------------------------


def test_explorable_loads_with_no_console_errors_and_stays_within_its_size(browser, built, capsys):
    assert built.size <= built.kind.max_size, f"{built.kind.page}: the explorable takes {built.size:,} characters"
    page, errors, external = open_chapter(browser, built.page)
    root = page.locator(f"#{built.id}")
    assert root.is_visible() and root.get_attribute("data-ready") == "1"  # the script ran
    for image in root.locator("img").all():
        assert image.evaluate("i => i.complete && i.naturalWidth > 0")
    assert errors == [], f"console errors: {errors}"
    assert all("mathjax" in url.lower() for url in external), external  # the explorable fetches nothing
    with capsys.disabled():
        print(f"\n[explorables] {built.kind.page}: {built.size:,} characters")
    page.context.close()


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_explorable_text_is_readable_in_both_themes(browser, built, artifacts, color_scheme, capsys):
    page, errors, _ = open_chapter(browser, built.page, color_scheme)
    if color_scheme == "dark":  # the theme's own switch, as its button sets it
        page.evaluate("document.documentElement.dataset.theme = 'dark'")
    assert page.evaluate("document.documentElement.dataset.theme") == color_scheme
    root = page.locator(f"#{built.id}")
    pairs = text_and_background_colours(root, ["label", ".x-help", ".x-where", ".x-x-axis span", ".x-step",
                                                ".x-readout", ".x-text", ".x-controls span"])
    assert len(pairs) >= 2
    assert_readable(pairs)
    screenshot = artifacts / f"explorable-{built.kind.page.stem}-{color_scheme}.png"
    root.screenshot(path=str(screenshot))
    assert errors == [], f"console errors: {errors}"
    with capsys.disabled():
        print(f"\n[explorables] screenshot ({color_scheme}): {screenshot}")
    page.context.close()


# --- the VAE's latent pad ------------------------------------------------------------------------------------------


def test_latent_pad_sliders_clicks_drags_and_keys_show_the_decoded_frame(browser, built_kind):
    built = built_kind("latent")
    rows, cols = built.number("rows"), built.number("cols")
    page, errors, _ = open_chapter(browser, built.page)
    root = page.locator(f"#{built.id}")
    canvas, pad, where = root.locator("canvas.x-frame"), root.locator(".x-pad"), root.locator(".x-where")

    def assert_cell(row: int, col: int, how: str) -> None:
        assert (root.get_attribute("data-row"), root.get_attribute("data-col")) == (str(row), str(col)), how
        assert_shows(canvas, built.frame(row * cols + col), how)
        assert where.inner_text() == z_text(built, row, col), how
        assert root.locator(".x-slider-x").input_value() == str(col), how
        assert root.locator(".x-slider-y").input_value() == str(rows - 1 - row), how

    row, col = (rows - 1) // 2, (cols - 1) // 2
    assert_cell(row, col, "at first: the middle")
    root.locator(".x-slider-x").fill("7")
    assert_cell(row, 7, "z₁ slider")
    root.locator(".x-slider-y").fill(str(rows - 4))
    assert_cell(3, 7, "z₂ slider")

    box = pad.bounding_box()
    target = (rows - 2, 1)  # near the bottom left
    page.mouse.click(box["x"] + (target[1] + 0.5) * box["width"] / cols,
                     box["y"] + (target[0] + 0.5) * box["height"] / rows)
    assert_cell(*target, "click on the map")
    marker = root.locator(".x-marker").evaluate("m => [m.style.left, m.style.top]")
    assert [float(v.rstrip("%")) for v in marker] == pytest.approx(
        [100 * (target[1] + 0.5) / cols, 100 * (target[0] + 0.5) / rows])

    page.mouse.move(box["x"] + 0.5 * box["width"] / cols, box["y"] + 0.5 * box["height"] / rows)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25, steps=5)
    page.mouse.up()
    drag_end = (int(0.25 * rows), int(0.75 * cols))
    assert_cell(*drag_end, "drag on the map")

    pad.focus()  # keyboard: arrows move one cell, Shift+arrows five, and the edges hold
    page.keyboard.press("ArrowRight")
    assert_cell(drag_end[0], drag_end[1] + 1, "ArrowRight")
    page.keyboard.press("ArrowUp")
    assert_cell(drag_end[0] - 1, drag_end[1] + 1, "ArrowUp")
    page.keyboard.press("Shift+ArrowLeft")
    assert_cell(drag_end[0] - 1, drag_end[1] - 4, "Shift+ArrowLeft")
    for _ in range(rows):
        page.keyboard.press("ArrowDown")
    assert_cell(rows - 1, drag_end[1] - 4, "ArrowDown to the edge")
    root.locator(".x-slider-x").focus()
    page.keyboard.press("ArrowLeft")
    assert_cell(rows - 1, drag_end[1] - 5, "ArrowLeft on the z₁ slider")
    root.locator(".x-slider-y").focus()
    page.keyboard.press("ArrowRight")
    assert_cell(rows - 2, drag_end[1] - 5, "ArrowRight on the z₂ slider: up")
    assert errors == [], f"console errors: {errors}"
    page.context.close()


# --- the GAN's interpolation slider ----------------------------------------------------------------------------


def test_interpolation_slider_and_keys_step_through_the_frames(browser, built_kind):
    built = built_kind("interpolation")
    count = built.number("frames")
    assert 24 <= count <= 32
    page, errors, _ = open_chapter(browser, built.page)
    root = page.locator(f"#{built.id}")
    canvas, slider, step = root.locator("canvas.x-frame"), root.locator(".x-slider"), root.locator(".x-step")
    ends = root.locator("canvas.x-end")
    assert_shows(ends.nth(0), built.frame(0), "the start")
    assert_shows(ends.nth(1), built.frame(count - 1), "the end")

    def assert_frame(index: int, how: str) -> None:
        assert root.get_attribute("data-frame") == str(index), how
        assert_shows(canvas, built.frame(index), how)
        assert step.inner_text() == f"Frame {index + 1} of {count} (t = {index / (count - 1):.2f})", how
        assert slider.input_value() == str(index), how

    assert_frame(0, "at first")
    for index in (count // 2, 5, count - 1):
        slider.fill(str(index))
        assert_frame(index, f"slider set to {index}")
    slider.focus()
    page.keyboard.press("ArrowLeft")
    assert_frame(count - 2, "ArrowLeft")
    page.keyboard.press("Home")
    assert_frame(0, "Home")
    page.keyboard.press("ArrowRight")
    assert_frame(1, "ArrowRight")
    assert len({built.frame(i).tobytes() for i in range(count)}) > count // 2  # the walk moves
    assert errors == [], f"console errors: {errors}"
    page.context.close()


# --- the character RNN's temperature slider ------------------------------------------------------------------


def test_temperature_slider_and_keys_show_each_sample_with_its_bits(browser, built_kind):
    from mlbook import charrnn

    built = built_kind("temperature")
    temperatures = [float(item["data-temperature"]) for item in built.items]
    assert tuple(temperatures) == charrnn.SETTINGS["quick"].explorer_temperatures  # the chapter's settings
    bits = [float(item["data-bpc"]) for item in built.items]
    assert all(0 < b < 10 for b in bits) and bits[0] < bits[-1]
    assert len(set(built.texts)) == len(built.texts)  # a sample per temperature
    for item, text in zip(built.items, built.texts):
        sample = explorables.TemperatureSample(float(item["data-temperature"]), text, float(item["data-bpc"]))
        assert item["data-readout"] == explorables.temperature_readout(sample)

    page, errors, _ = open_chapter(browser, built.page)
    root = page.locator(f"#{built.id}")
    slider, readout, shown = root.locator(".x-slider"), root.locator(".x-readout"), root.locator(".x-text .x-sample")
    assert not root.locator(".x-samples").is_visible()  # the list is for pages without JavaScript

    def assert_sample(index: int, how: str) -> None:
        assert root.get_attribute("data-index") == str(index), how
        assert readout.inner_text() == built.items[index]["data-readout"], how
        assert shown.inner_text() == built.texts[index], how
        assert slider.get_attribute("aria-valuetext") == built.items[index]["data-label"], how

    assert_sample((len(temperatures) - 1) // 2, "at first: the middle temperature")
    for index in range(len(temperatures)):
        slider.fill(str(index))
        assert_sample(index, f"slider set to {index}")
    slider.focus()
    page.keyboard.press("Home")
    assert_sample(0, "Home")
    page.keyboard.press("ArrowRight")
    assert_sample(1, "ArrowRight")
    page.keyboard.press("End")
    assert_sample(len(temperatures) - 1, "End")
    assert errors == [], f"console errors: {errors}"
    page.context.close()
