"""The GAN chapter's quiz in a real browser: headless Chromium (Debian's ``chromium`` package) driven by
Playwright, against the chapter's page in a real build of the book.

Setup (no browser download): ``apt-get install -y --no-install-recommends chromium`` and ``pip install
playwright``; never ``playwright install``. Screenshots are written to ``$MLBOOK_ARTIFACTS`` if set, else to
pytest's temporary folder, and their paths printed.
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlbook import quiz
from mlbook.data import load_mnist_like

pytestmark = pytest.mark.slow

CHAPTER_PAGE = Path("book/generative/gan.html")
ARTIFACTS_ENV_VAR = "MLBOOK_ARTIFACTS"
#: WCAG 2 AA contrast for normal text.
MIN_CONTRAST = 4.5


@pytest.fixture(scope="module")
def chapter_page(built_book: Path) -> Path:
    page = built_book / CHAPTER_PAGE
    assert page.is_file(), f"the build has no {CHAPTER_PAGE} (is the chapter in _toc.yml?)"
    return page


@pytest.fixture(scope="module")
def record(chapter_page: Path) -> quiz.QuizRecord:
    """The quiz as the build wrote it, answer key included: the truth the browser's answers are checked against."""
    (found,) = quiz.read_quiz(chapter_page.read_text(encoding="utf-8"))
    return found


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ[ARTIFACTS_ENV_VAR]) if os.environ.get(ARTIFACTS_ENV_VAR) else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_chapter(browser, chapter_page: Path, color_scheme: str = "light"):
    """Open the page offline: any http(s) request (the theme's MathJax from a CDN) gets an empty answer, and is
    recorded. Returns ``(page, errors, external_requests)``."""
    context = browser.new_context(color_scheme=color_scheme, viewport={"width": 1280, "height": 1600})
    external: list[str] = []

    def answer_empty(route):
        external.append(route.request.url)
        route.fulfill(status=200, body="", content_type="text/plain")

    context.route(re.compile(r"^https?://"), answer_empty)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(chapter_page.resolve().as_uri(), wait_until="load")
    return page, errors, external


def label(is_real: bool) -> str:
    return quiz.REAL_TEXT if is_real else quiz.GENERATED_TEXT


def decode_png(uri: str) -> np.ndarray:
    from PIL import Image

    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))))


def relative_luminance(css_colour: str) -> float:
    channels = [float(v) / 255 for v in re.findall(r"[\d.]+", css_colour)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def assert_readable(pairs: list[tuple[str, str, str]]) -> None:
    """Every ``(what, text colour, background colour)`` has at least WCAG AA contrast."""
    for what, text_colour, background_colour in pairs:
        assert contrast(text_colour, background_colour) >= MIN_CONTRAST, (what, text_colour, background_colour)


def text_and_background_colours(root: Any, selectors: list[str]) -> list[tuple[str, str, str]]:
    """``(selector, text colour, colour of the first opaque background behind it)`` for each shown element under
    the Playwright locator ``root`` that matches one of ``selectors``."""
    return root.evaluate(
        """(root, selectors) => {
             const background = element => {
               for (let e = element; e; e = e.parentElement) {
                 const colour = getComputedStyle(e).backgroundColor;
                 if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") return colour;
               }
               return "rgb(255, 255, 255)";
             };
             return selectors.flatMap(s => Array.from(root.querySelectorAll(s))
               .filter(e => e.offsetParent !== null)
               .map(e => [s, getComputedStyle(e).color, background(e)]));
           }""", selectors)


def test_answer_key_agrees_with_the_pixels(record):
    """Independent of the key: in the quick build, real items are held-out digits, pixel for pixel, and
    generated ones are not. About half the items are real."""
    held_out = load_mnist_like("quick").x_test
    real_pixels = {quiz.prepare_image(image).tobytes() for image in held_out}  # as the quiz shows them
    found = tuple(decode_png(uri).astype(np.uint8).tobytes() in real_pixels for uri in record.image_uris)
    assert found == record.is_real
    assert 3 / 8 <= np.mean(record.is_real) <= 5 / 8


def test_quiz_loads_with_no_console_errors(browser, chapter_page, record, capsys):
    page, errors, external = open_chapter(browser, chapter_page)
    root = page.locator(f"#{record.quiz_id}")
    assert root.is_visible() and root.locator(".q-card").count() == len(record.is_real)
    assert root.locator("img").evaluate_all("images => images.every(i => i.complete && i.naturalWidth > 0)")
    assert root.locator(".q-score").inner_text().startswith("Score: 0 correct out of 0 answered")
    assert errors == [], f"console errors: {errors}"
    # the quiz itself fetches nothing; only the book theme may ask for MathJax
    assert all("mathjax" in url.lower() for url in external), external
    with capsys.disabled():
        print(f"\n[quiz] external requests answered empty: {external}")
    page.context.close()


def test_reveal_score_verdict_show_all_and_reset(browser, chapter_page, record, artifacts, capsys):
    page, errors, _ = open_chapter(browser, chapter_page)
    root = page.locator(f"#{record.quiz_id}")
    cards, score = root.locator(".q-card"), root.locator(".q-score")
    num_items = len(record.is_real)

    # clicking an image reveals its label without scoring
    cards.nth(0).locator(".q-image").click()
    assert cards.nth(0).locator(".q-answer").inner_text() == label(record.is_real[0])
    assert root.get_attribute("data-answered") == "0"
    assert cards.nth(0).locator(".q-choices button").first.is_disabled()  # no answering after a peek

    # answer the rest: right on odd items, wrong on even ones; two of them with the keyboard
    right = 0
    for i in range(1, num_items):
        guess = record.is_real[i] if i % 2 else not record.is_real[i]
        button = cards.nth(i).locator(f'.q-choices button[data-choice="{int(guess)}"]')
        if i in (1, 2):
            button.focus()
            page.keyboard.press("Enter" if i == 1 else "Space")
        else:
            button.click()
        correct = guess == record.is_real[i]
        right += correct
        assert cards.nth(i).locator(".q-answer").inner_text() == ("✓ " if correct else "✗ ") + label(
            record.is_real[i])
        assert score.inner_text().startswith(f"Score: {right} correct out of {i} answered")
    assert right == (num_items - 1) // 2 + (num_items - 1) % 2  # the odd items among 1..n-1
    verdict = root.locator(".q-verdict").inner_text()
    assert verdict.startswith(f"You scored {right}/{num_items - 1} ")
    # the page applies the binomial rule to the answers given (the peeked image does not count)
    assert ("the GAN passes" in verdict) == (right < quiz.pass_threshold(num_items - 1))
    screenshot = artifacts / "gan-quiz-answered.png"
    root.screenshot(path=str(screenshot))

    # reset clears everything
    root.locator(".q-reset").click()
    assert score.inner_text().startswith("Score: 0 correct out of 0 answered")
    assert root.locator(".q-verdict").inner_text() == ""
    for i in range(num_items):
        assert cards.nth(i).get_attribute("data-state") == "open"
        assert cards.nth(i).locator(".q-answer").inner_text() == ""
        assert cards.nth(i).locator(".q-image").is_enabled()

    # show all reveals every label, and scores nothing
    root.locator(".q-show-all").click()
    assert [cards.nth(i).locator(".q-answer").inner_text() for i in range(num_items)] == [
        label(v) for v in record.is_real]
    assert root.get_attribute("data-answered") == "0"

    # a perfect score fails the GAN, with the page's binomial threshold equal to the package's
    root.locator(".q-reset").click()
    for i in range(num_items):
        cards.nth(i).locator(f'.q-choices button[data-choice="{int(record.is_real[i])}"]').click()
    assert score.inner_text().startswith(f"Score: {num_items} correct out of {num_items} answered")
    verdict = root.locator(".q-verdict").inner_text()
    assert "the GAN fails" in verdict and f"{quiz.pass_threshold(num_items)} of {num_items}" in verdict
    assert errors == [], f"console errors: {errors}"
    with capsys.disabled():
        print(f"\n[quiz] screenshot: {screenshot}")
    page.context.close()


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_quiz_is_readable_in_light_and_dark_mode(browser, chapter_page, record, artifacts, color_scheme, capsys):
    page, errors, _ = open_chapter(browser, chapter_page, color_scheme)
    root = page.locator(f"#{record.quiz_id}")
    root.locator(".q-card").first.locator(".q-image").click()  # one label shown, the other cards still open
    assert page.evaluate("document.documentElement.dataset.theme") == color_scheme  # the theme followed
    selectors = ["p", ".q-card:first-child .q-answer", ".q-card:nth-child(2) .q-choices button", ".q-show-all",
                 ".q-score"]
    pairs = text_and_background_colours(root, selectors)
    assert {selector for selector, _, _ in pairs} == set(selectors)  # each one shown
    assert_readable(pairs)
    screenshot = artifacts / f"gan-quiz-{color_scheme}.png"
    root.screenshot(path=str(screenshot))
    assert errors == [], f"console errors: {errors}"
    with capsys.disabled():
        print(f"\n[quiz] screenshot ({color_scheme}): {screenshot}")
    page.context.close()
