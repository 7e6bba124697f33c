"""The "real or generated?" quiz: a self-contained HTML block that a book page embeds.

The page needs no kernel, server or network: the images are PNG ``data:`` URIs, and the style and script are
inline, so it works offline and from ``file://``. Nothing a reader sees in the markup gives the answers away:
no file names, no alt texts or ids that say which image is which. The answer key is stored in the page, masked
with a pseudo-random stream that the page's script (and :func:`read_quiz`) regenerates from a salt; it is a
puzzle for the curious, not a secret.

Nor do the image files give it away: every image, real or generated, goes through :func:`prepare_image` (the same
crop, levels and 8-bit quantisation) and :func:`png_data_uri` (an uncompressed PNG, so every image of a quiz has a
data URI of the same length). Without this, real digits (an all-black frame, exact black and white) and the
generator's tanh outputs (never quite black or white) could be told apart from their pixels or the page source.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
from html.parser import HTMLParser

import numpy as np

#: Labels the page shows once an image is revealed.
REAL_TEXT = "Real"
GENERATED_TEXT = "Generated"
#: CSS class of the quiz's outer element; :func:`read_quiz` looks for it.
QUIZ_CLASS = "mlbook-quiz"
#: Display size of each image in CSS pixels (the PNGs keep their own resolution and are scaled up).
DISPLAY_SIZE = 96
UINT32 = 0xFFFFFFFF
#: Pixels cropped from each side of every quiz image. :func:`mlbook.data.digits_as_mnist` (and MNIST, mostly)
#: leaves this frame around the 20×20 digit box black, while a generator paints it dark grey: a tell, not content.
FRAME = 4
#: Levels applied to every quiz image: at or below ``BLACK_LEVEL`` is black, at or above ``WHITE_LEVEL`` white, and
#: linear in between. 8/255 is too dark to see on a screen, but it is where the generator's tanh outputs stop (the
#: background of the quick profile's generated digits lies at 1–7/255, real digits' at 0, their strokes at 255).
BLACK_LEVEL = 8 / 255
WHITE_LEVEL = 1 - BLACK_LEVEL


@dataclasses.dataclass(frozen=True)
class QuizRecord:
    """What a built quiz holds: its id, the answer key (True = real) and the image data URIs, in page order."""

    quiz_id: str
    is_real: tuple[bool, ...]
    image_uris: tuple[str, ...]
    pass_threshold: int


# --- choosing the items -----------------------------------------------------------------------------------------


def choose_items(real_images: np.ndarray, generated_images: np.ndarray, size: int = 16, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Draw a shuffled quiz of ``size`` images, about half of them real.

    The number of real images is drawn from Binomial(size, ½) and kept between 3/8 and 5/8 of ``size``, so
    that counting the answers already given does not settle the last ones.

    Returns:
        ``(images, is_real)``: the images in quiz order and a boolean array, True for real.

    Raises:
        ValueError: if the image shapes differ, ``size < 2``, or either set is too small.
    """
    real_images, generated_images = np.asarray(real_images), np.asarray(generated_images)
    if real_images.shape[1:] != generated_images.shape[1:]:
        raise ValueError(f"expected real and generated images of one shape, got {real_images.shape[1:]} and "
                         f"{generated_images.shape[1:]}")
    if size < 2:
        raise ValueError(f"expected a quiz of at least 2 images, got size={size}")
    rng = np.random.default_rng(seed)
    num_real = int(np.clip(rng.binomial(size, 0.5), math.ceil(3 * size / 8), math.floor(5 * size / 8)))
    num_generated = size - num_real
    if len(real_images) < num_real or len(generated_images) < num_generated:
        raise ValueError(f"expected at least {num_real} real and {num_generated} generated images, got "
                         f"{len(real_images)} and {len(generated_images)}")
    images = np.concatenate([real_images[rng.choice(len(real_images), num_real, replace=False)],
                             generated_images[rng.choice(len(generated_images), num_generated, replace=False)]])
    is_real = np.array([True] * num_real + [False] * num_generated)
    order = rng.permutation(size)
    return images[order], is_real[order]


def binomial_tail(num_items: int, num_correct: int) -> float:
    """P(X ≥ num_correct) for X ~ Binomial(num_items, ½): how often pure guessing scores that well."""
    return sum(math.comb(num_items, k) for k in range(num_correct, num_items + 1)) / 2**num_items


def pass_threshold(num_items: int, alpha: float = 0.05) -> int:
    """The fewest correct answers out of ``num_items`` that guessing reaches with probability at most ``alpha``.

    A reader who scores this many or more can, at level ``alpha`` (one-sided), tell real from generated.
    """
    if num_items < 1 or not 0 < alpha < 1:
        raise ValueError(f"expected num_items >= 1 and 0 < alpha < 1, got {num_items} and {alpha}")
    return next((k for k in range(num_items + 1) if binomial_tail(num_items, k) <= alpha), num_items + 1)


# --- the answer key ---------------------------------------------------------------------------------------------


def mask_stream(salt: int, count: int) -> list[int]:
    """``count`` bytes of a 32-bit xorshift generator (Marsaglia, 2003) seeded with ``salt``; the page's script
    computes the same numbers."""
    state = salt & UINT32 or 1  # xorshift must not start at 0
    stream = []
    for _ in range(count):
        state ^= (state << 13) & UINT32
        state ^= state >> 17
        state ^= (state << 5) & UINT32
        stream.append(state & 0xFF)
    return stream


def encode_answer_key(is_real: np.ndarray, salt: int, seed: int = 0) -> str:
    """Hide ``is_real`` in a hex string: item i is a random byte whose lowest bit, once XOR-ed with mask byte i,
    is 1 for a real image."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=len(is_real))
    encoded = [(int(n) & 0xFE | int(bool(real))) ^ mask for n, real, mask in
               zip(noise, is_real, mask_stream(salt, len(is_real)))]
    return bytes(encoded).hex()


def decode_answer_key(key: str, salt: int) -> tuple[bool, ...]:
    """Invert :func:`encode_answer_key`: True where the image is real."""
    data = bytes.fromhex(key)
    return tuple(bool((byte ^ mask) & 1) for byte, mask in zip(data, mask_stream(salt, len(data))))


# --- the page ---------------------------------------------------------------------------------------------------


def prepare_image(image: np.ndarray, frame: int = FRAME) -> np.ndarray:
    """The 8-bit pixels a quiz shows for an image in [0, 1], real or generated alike: the outer ``frame`` pixels
    cropped, :data:`BLACK_LEVEL` and :data:`WHITE_LEVEL` applied, rounded to uint8.

    Cropping rather than blackening the frame: a generated stroke that reaches the frame would end at a hard edge
    inside the image, which real digits (drawn inside the box) never show; at the image's own edge it looks alike.

    Args:
        image: ``(h, w)``, ``(h, w, 1)`` or ``(h, w, 3)``.
        frame: pixels cropped from each side.

    Returns:
        ``(h - 2·frame, w - 2·frame)`` or ``(h - 2·frame, w - 2·frame, 3)`` uint8 pixels.

    Raises:
        ValueError: for another shape, or an image no larger than its frame.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"expected an image of shape (h, w), (h, w, 1) or (h, w, 3), got {image.shape}")
    if frame < 0 or min(image.shape[:2]) <= 2 * frame:
        raise ValueError(f"expected an image larger than a {frame}-pixel frame on each side, got {image.shape}")
    cropped = image[frame : image.shape[0] - frame, frame : image.shape[1] - frame]
    levelled = np.clip((cropped - BLACK_LEVEL) / (WHITE_LEVEL - BLACK_LEVEL), 0.0, 1.0)
    return np.round(levelled * 255).astype(np.uint8)


def as_shown(images: np.ndarray, frame: int = FRAME) -> np.ndarray:
    """A batch of images in [0, 1] as the quiz shows them (:func:`prepare_image`), back as float32 in [0, 1].

    What a two-sample test should compare when it stands for the reader's eye: the 8-bit pixels, without the frame.

    Args:
        images: ``(n, h, w, 1)`` or ``(n, h, w, 3)``.

    Returns:
        ``(n, h - 2·frame, w - 2·frame, channels)`` float32 images.

    Raises:
        ValueError: for another shape, or images no larger than their frame.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected images of shape (n, h, w, 1) or (n, h, w, 3), got {images.shape}")
    shown = np.stack([prepare_image(image, frame) for image in images]).astype(np.float32) / 255.0
    return shown.reshape(*shown.shape[:3], images.shape[-1])


def png_data_uri(pixels: np.ndarray, compress_level: int = 0) -> str:
    """A PNG ``data:`` URI of uint8 pixels, ``(h, w)`` or ``(h, w, 3)``, stored uncompressed by default.

    Uncompressed, the URI's length depends on the shape alone: a compressed one is shorter for a clean image (a real
    digit on plain black) than for a noisy one, and the page source would show which is which. Where that does not
    matter (:mod:`mlbook.explorables`' sprite sheets), ``compress_level`` 9 makes the URI far shorter.

    Raises:
        ValueError: if ``pixels`` are not uint8 or not of such a shape.
    """
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] != 3):
        raise ValueError(f"expected uint8 pixels of shape (h, w) or (h, w, 3), got {pixels.dtype} {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=compress_level)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# The book theme gives HTML outputs a light box and dims images in dark mode; the first two rules undo that for
# the quiz, whose colours follow the theme's own variables.
_STYLE = """
#{id} {{ --q-fg: var(--pst-color-text-base, #222); --q-bg: var(--pst-color-surface, #f3f4f6);
  --q-border: var(--pst-color-border, #c8ccd2); --q-accent: var(--pst-color-primary, #0b5cad);
  --q-right: #1a7f37; --q-wrong: #c0392b; color: var(--q-fg); margin: 1em 0; }}
@media (prefers-color-scheme: dark) {{ html:not([data-theme]) #{id} {{ --q-fg: #e6e6e6; --q-bg: #23262b;
  --q-border: #555b63; --q-accent: #79b8ff; }} }}
html[data-theme="dark"] #{id} {{ --q-right: #56d364; --q-wrong: #ff7b72; }}
@media (prefers-color-scheme: dark) {{ html:not([data-theme="light"]) #{id} {{ --q-right: #56d364;
  --q-wrong: #ff7b72; }} }}
.text_html:has(> #{id}) {{ background: transparent; color: inherit; padding: 0; }}
#{id} img {{ filter: none; background: transparent; padding: 0; }}
#{id} .q-grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax({cell}px, 1fr)); gap: 0.8em;
  list-style: none; padding: 0; margin: 0.8em 0; }}
#{id} .q-card {{ background: var(--q-bg); border: 2px solid var(--q-border); border-radius: 8px; padding: 0.4em;
  text-align: center; margin: 0; }}
#{id} .q-card[data-state="right"] {{ border-color: var(--q-right); }}
#{id} .q-card[data-state="wrong"] {{ border-color: var(--q-wrong); }}
#{id} button {{ font: inherit; color: var(--q-fg); background: transparent; border: 1px solid var(--q-border);
  border-radius: 5px; cursor: pointer; }}
#{id} button:focus-visible {{ outline: 3px solid var(--q-accent); outline-offset: 2px; }}
#{id} button:disabled {{ cursor: default; opacity: 0.55; }}
#{id} .q-image {{ padding: 0; border: none; display: block; margin: 0 auto; line-height: 0; }}
#{id} .q-image img {{ width: {size}px; height: {size}px; image-rendering: pixelated; border-radius: 4px; }}
#{id} .q-image:disabled {{ opacity: 1; }}
#{id} .q-choices {{ display: flex; flex-wrap: wrap; gap: 0.3em; justify-content: center; margin-top: 0.4em; }}
#{id} .q-choices button {{ padding: 0.1em 0.5em; font-size: 0.85em; }}
#{id} .q-choices button[aria-pressed="true"] {{ border-color: var(--q-accent); font-weight: bold; }}
#{id} .q-answer {{ min-height: 1.4em; margin: 0.3em 0 0; font-weight: bold; font-size: 0.9em; }}
#{id} .q-controls button {{ padding: 0.3em 0.9em; margin-right: 0.5em; }}
#{id} .q-score {{ font-weight: bold; margin: 0.6em 0 0.2em; }}
"""

_SCRIPT = """
(function () {
  var root = document.getElementById("{id}");
  if (!root) return;
  var cards = Array.prototype.slice.call(root.querySelectorAll(".q-card"));
  var key = root.getAttribute("data-key"), salt = parseInt(root.getAttribute("data-salt"), 10);
  var alpha = parseFloat(root.getAttribute("data-alpha"));
  function passThreshold(n) {  // as quiz.pass_threshold: fewest right answers that guessing reaches w.p. <= alpha
    var coefficients = [1], tail = 0;
    for (var k = 1; k <= n; k++) coefficients.push(coefficients[k - 1] * (n - k + 1) / k);
    for (var j = n; j >= 0; j--) {
      tail += coefficients[j];
      if (tail / Math.pow(2, n) > alpha) return j + 1;
    }
    return 0;
  }
  var state = salt >>> 0 || 1, truth = [];
  for (var i = 0; i < cards.length; i++) {
    state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
    truth.push(((parseInt(key.substr(2 * i, 2), 16) ^ (state & 255)) & 1) === 1);
  }
  var scoreLine = root.querySelector(".q-score"), verdict = root.querySelector(".q-verdict");
  function label(i) { return truth[i] ? "{real}" : "{generated}"; }
  function update() {
    var answered = 0, right = 0, open = 0;
    cards.forEach(function (card) {
      var s = card.getAttribute("data-state");
      if (s === "right" || s === "wrong") answered++;
      if (s === "right") right++;
      if (s === "open") open++;
    });
    scoreLine.textContent = "Score: " + right + " correct out of " + answered + " answered (" + cards.length +
      " images).";
    root.setAttribute("data-correct", String(right));
    root.setAttribute("data-answered", String(answered));
    if (open > 0) { verdict.textContent = ""; return; }
    if (answered === 0) { verdict.textContent = "No answers given: press Reset to take the quiz."; return; }
    var percent = Math.round(100 * right / answered), threshold = passThreshold(answered);
    var level = Math.round(100 * alpha) + " %";
    var text = "You scored " + right + "/" + answered + " (" + percent + " %). ";
    if (2 * right <= answered) text += "50 % or less: the GAN passes this Turing test.";
    else if (right < threshold) text += "Better than half, but guessing does this well too often to tell " +
      "(you would need " + threshold + " of " + answered + " for " + level + " significance): the GAN passes, just.";
    else text += "You can tell them apart (" + threshold + " of " + answered + " is significant at " + level +
      "): the GAN fails.";
    verdict.textContent = text;
  }
  function reveal(i, guess) {
    var card = cards[i];
    if (card.getAttribute("data-state") !== "open") return;
    var answer = card.querySelector(".q-answer");
    if (guess === null) {
      card.setAttribute("data-state", "shown");
      answer.textContent = label(i);
    } else {
      var right = guess === truth[i];
      card.setAttribute("data-state", right ? "right" : "wrong");
      answer.textContent = (right ? "\\u2713 " : "\\u2717 ") + label(i);
    }
    card.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    update();
  }
  cards.forEach(function (card, i) {
    card.querySelector(".q-image").addEventListener("click", function () { reveal(i, null); });
    card.querySelectorAll(".q-choices button").forEach(function (button) {
      button.addEventListener("click", function () {
        button.setAttribute("aria-pressed", "true");
        reveal(i, button.getAttribute("data-choice") === "1");
      });
    });
  });
  root.querySelector(".q-show-all").addEventListener("click", function () {
    cards.forEach(function (card, i) { reveal(i, null); });
  });
  root.querySelector(".q-reset").addEventListener("click", function () {
    cards.forEach(function (card) {
      card.setAttribute("data-state", "open");
      card.querySelector(".q-answer").textContent = "";
      card.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      card.querySelectorAll(".q-choices button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    });
    update();
    cards[0].querySelector(".q-choices button").focus();
  });
  update();
})();
"""


def fill_placeholders(template: str, **values: object) -> str:
    """Replace ``{name}`` placeholders in a script, whose own braces ``str.format`` would trip over."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def build_quiz_html(images: np.ndarray, is_real: np.ndarray, seed: int = 0, alpha: float = 0.05,
                    frame: int = FRAME) -> str:
    """The quiz as one HTML block (markup, inline style and script), for ``IPython.display.HTML``.

    Each card has the image (a button: clicking it reveals the answer without scoring) and two buttons, "Real"
    and "Generated": answering reveals the truth and updates the running score; "Show all" and "Reset" act on
    every card. The final verdict applies the 50 % rule and the binomial threshold of :func:`pass_threshold`.

    Args:
        images: ``(n, h, w[, c])`` images in [0, 1], in quiz order.
        is_real: ``n`` booleans, True for a real image.
        seed: makes the id, salt and key noise repeatable.
        frame: pixels cropped from each side of every image (:func:`prepare_image`).

    Raises:
        ValueError: if the lengths differ, there are no images, or they are no larger than the frame.
    """
    images, is_real = np.asarray(images), np.asarray(is_real, dtype=bool)
    if len(images) == 0 or len(images) != len(is_real):
        raise ValueError(f"expected one truth value per image (at least one image), got {len(images)} images and "
                         f"{len(is_real)} truth values")
    rng = np.random.default_rng(seed)
    quiz_id = f"mlq-{rng.integers(16**8):08x}"
    salt = int(rng.integers(1, 2**31))
    key = encode_answer_key(is_real, salt, seed=seed + 1)
    threshold = pass_threshold(len(images), alpha)
    uris = [png_data_uri(prepare_image(image, frame)) for image in images]
    cards = []
    for i, uri in enumerate(uris):
        number = i + 1
        cards.append(
            f'<li class="q-card" data-state="open">'
            f'<button type="button" class="q-image" aria-label="Image {number}: reveal the answer without scoring">'
            f'<img src="{uri}" alt="Quiz image {number}" width="{DISPLAY_SIZE}" '
            f'height="{DISPLAY_SIZE}"></button>'
            f'<div class="q-choices" role="group" aria-label="Your answer for image {number}">'
            f'<button type="button" data-choice="1" aria-pressed="false">{REAL_TEXT}</button>'
            f'<button type="button" data-choice="0" aria-pressed="false">{GENERATED_TEXT}</button></div>'
            f'<p class="q-answer" aria-live="polite"></p></li>'
        )
    style = _STYLE.format(id=quiz_id, size=DISPLAY_SIZE, cell=DISPLAY_SIZE + 48)
    script = fill_placeholders(_SCRIPT, id=quiz_id, real=REAL_TEXT, generated=GENERATED_TEXT)
    return (
        f'<div class="{QUIZ_CLASS}" id="{quiz_id}" data-key="{key}" data-salt="{salt}" '
        f'data-threshold="{threshold}" data-alpha="{alpha}">\n<style>{style}</style>\n'
        f'<p>For each image, choose <b>{REAL_TEXT}</b> or <b>{GENERATED_TEXT}</b>; your answer reveals the truth. '
        f'Clicking an image reveals it without scoring. Tab and Enter work too.</p>\n'
        f'<ol class="q-grid">{"".join(cards)}</ol>\n'
        f'<div class="q-controls"><button type="button" class="q-show-all">Show all answers</button>'
        f'<button type="button" class="q-reset">Reset</button></div>\n'
        f'<p class="q-score" role="status" aria-live="polite"></p>\n<p class="q-verdict" aria-live="polite"></p>\n'
        f'<noscript><p>This quiz needs JavaScript.</p></noscript>\n'
        f'<script>{script}</script>\n</div>'
    )


class _QuizParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.quizzes: list[dict] = []
        self._depth = 0  # <div> nesting inside the current quiz (0 = outside)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "div" and self._depth == 0 and QUIZ_CLASS in (attributes.get("class") or "").split():
            self.quizzes.append({"attrs": attributes, "images": []})
            self._depth = 1
        elif tag == "div" and self._depth:
            self._depth += 1
        elif tag == "img" and self._depth:
            self.quizzes[-1]["images"].append(attributes.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._depth:
            self._depth -= 1


def read_quiz(page: str) -> list[QuizRecord]:
    """Every quiz in an HTML page (a built book page or :func:`build_quiz_html`'s output), with its answers.

    Raises:
        ValueError: if a quiz's key does not have one entry per image.
    """
    parser = _QuizParser()
    parser.feed(page)
    records = []
    for quiz in parser.quizzes:
        attributes = quiz["attrs"]
        truth = decode_answer_key(attributes["data-key"], int(attributes["data-salt"]))
        if len(truth) != len(quiz["images"]):
            raise ValueError(f"quiz {attributes.get('id')}: expected one key entry per image, got {len(truth)} "
                             f"entries for {len(quiz['images'])} images")
        records.append(QuizRecord(attributes["id"], truth, tuple(quiz["images"]),
                                  int(attributes["data-threshold"])))
    return records
