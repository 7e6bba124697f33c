"""Explorable models that need no kernel: self-contained HTML blocks, made at build time from a chapter's trained
model, that a reader can play with on the page.

- :func:`latent_explorer_html`: a 2-D pad (and two sliders) over a latent space, showing the decoded image at the
  chosen point, from a grid of decodings made in advance.
- :func:`interpolation_explorer_html`: a slider that steps through the frames of a path, such as a generator's
  images along a spherical interpolation between two latent vectors.
- :func:`temperature_explorer_html`: a slider over text samples drawn at several temperatures, each shown with its
  bits per character.

Like the GAN chapter's quiz (:mod:`mlbook.quiz`), each block carries everything it needs: the images are one
sprite sheet, a PNG ``data:`` URI that a ``<canvas>`` crops the current frame from; the style and script are
inline. It works offline, from ``file://`` and in a notebook's output (Colab, Jupyter). Every control is a native
range input or a focusable element with arrow keys; colours follow the book theme's variables, so the text is
readable in the dark theme too. The data the page shows are in the markup (``data-*`` attributes, the sprite, the
samples' text), so a test can check that a control shows the frame or the sample it should.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import math
from collections.abc import Sequence

import numpy as np

from mlbook.cache import array_fingerprint
from mlbook.plot import tile_images
from mlbook.quiz import fill_placeholders, png_data_uri

#: CSS class of every explorable's outer element, with one more class per kind.
EXPLORABLE_CLASS = "mlbook-explorable"
LATENT_CLASS = "mlbook-latent-explorer"
INTERPOLATION_CLASS = "mlbook-interpolation-explorer"
TEMPERATURE_CLASS = "mlbook-temperature-explorer"
#: zlib level of the sprite sheets' PNGs (the quiz's images stay uncompressed, for its own reason).
SPRITE_COMPRESS_LEVEL = 9
#: Grey (or colour-channel) levels of the explorers' sprite sheets. A decoder's blurred digits compress badly at
#: 256 levels (41 × 41 of them take 0.56 MB as a data URI); at 32 they take about half that, and a reader cannot
#: tell the difference.
SPRITE_LEVELS = 32
MINUS = "\u2212"
#: Text alternatives of the pad's map and of the (hidden) sprite sheets.
MAP_ALT = "Map of the images across the grid"
SPRITE_ALT = "Every frame, in one sprite sheet"


@dataclasses.dataclass(frozen=True)
class TemperatureSample:
    """One sample of a text generator: the temperature it was drawn at, its text (without the prompt) and its bits
    per character under the model (see :func:`mlbook.charrnn.bits_per_character`)."""

    temperature: float
    text: str
    bits_per_character: float


# --- checks and shared pieces -----------------------------------------------------------------------------------


def _as_frames(frames: np.ndarray, leading: int, what: str) -> np.ndarray:
    """``frames`` as float32 ``(*leading dims, h, w, c)`` with c = 1 or 3, values checked to lie in [0, 1]."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.size == 0:
        raise ValueError(f"expected at least one frame, got {what} of shape {frames.shape}")
    expected = f"{what} of shape (" + ", ".join(["…"] * leading) + ", h, w), (…, h, w, 1) or (…, h, w, 3)"
    if frames.ndim == leading + 2:
        frames = frames[..., None]
    if frames.ndim != leading + 3 or frames.shape[-1] not in (1, 3) or min(frames.shape[leading:-1]) < 1:
        raise ValueError(f"expected {expected}, got shape {np.shape(frames)}")
    if not np.all(np.isfinite(frames)) or frames.min() < 0.0 or frames.max() > 1.0:
        raise ValueError(f"expected {what} with finite values in [0, 1], got values from {frames.min()} to "
                         f"{frames.max()}")
    return frames


def sprite_pixels(frames: np.ndarray, ncols: int, levels: int = 256) -> np.ndarray:
    """The pixels of one sprite sheet of equally sized frames: the frames tiled row by row, ``ncols`` to a row,
    without gutters (frame ``i`` has its top-left corner at ``(i // ncols · h, i % ncols · w)``), rounded to
    ``levels`` evenly spaced values per channel and stored in 8 bits.

    Args:
        frames: ``(n, h, w[, c])`` images in [0, 1], with c = 1 (grey) or 3 (RGB).
        ncols: frames per row of the sheet.
        levels: values per channel, from 2 to 256 (fewer compress better).

    Returns:
        ``(rows · h, ncols · w)`` uint8 pixels for grey frames, ``(rows · h, ncols · w, 3)`` for RGB ones; the cells
        after the last frame are black.

    Raises:
        ValueError: for another shape, values outside [0, 1], ``ncols < 1`` or ``levels`` outside [2, 256].
    """
    frames = _as_frames(frames, 1, "frames")
    if ncols < 1:
        raise ValueError(f"expected ncols >= 1, got {ncols}")
    if not 2 <= levels <= 256:
        raise ValueError(f"expected 2 to 256 levels, got {levels}")
    sheet = tile_images(frames, ncols, padding=0, fill=0.0)
    pixels = np.round(np.round(sheet * (levels - 1)) / (levels - 1) * 255).astype(np.uint8)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def sprite_data_uri(frames: np.ndarray, ncols: int, levels: int = 256) -> str:
    """:func:`sprite_pixels` as a compressed PNG ``data:`` URI (same arguments and errors)."""
    return png_data_uri(sprite_pixels(frames, ncols, levels), compress_level=SPRITE_COMPRESS_LEVEL)


def latent_map_data_uri(frames: np.ndarray, width: int, height: int, min_tile: int = 20,
                        levels: int = 256) -> str:
    """A map of a grid of frames for a pad of ``width × height`` pixels, as a compressed PNG ``data:`` URI.

    The pad is divided into ``rows × cols`` cells, one per frame. Shrunk to a cell, a frame would be a speck when
    the cells are small, so the map shows every ``s``-th frame of every ``s``-th row, with ``s`` the smallest
    stride that makes them at least ``min_tile`` pixels wide and high. Each shown frame is centred on its own cell
    and covers ``s × s`` cells; the map is box-filtered to the pad's size, so the browser does not scale it.

    Args:
        frames: ``(rows, cols, h, w, c)`` images in [0, 1], with c = 1 or 3.
        width, height: the pad's size in pixels.
        min_tile: the smallest side of a shown frame, in pixels.
        levels: values per channel (:func:`sprite_pixels`).
    """
    from PIL import Image

    frames = _as_frames(frames, 2, "frames")
    rows, cols, h, w, channels = frames.shape
    stride = max(1, math.ceil(min_tile * cols / width), math.ceil(min_tile * rows / height))
    # tile a shows frame a·s, centred on its cell: the tiles start half a tile before the first cell's centre
    tile_rows = math.ceil((rows - 0.5 + stride / 2) / stride)
    tile_cols = math.ceil((cols - 0.5 + stride / 2) / stride)
    shown = np.zeros((tile_rows, tile_cols, h, w, channels), dtype=np.float32)  # black beyond the grid
    kept = frames[::stride, ::stride]
    shown[: kept.shape[0], : kept.shape[1]] = kept
    sheet = sprite_pixels(shown.reshape(-1, h, w, channels), tile_cols, levels)
    margin = stride / 2 - 0.5  # cells between the first tile's edge and the pad's
    box = (margin * w / stride, margin * h / stride, (cols + margin) * w / stride, (rows + margin) * h / stride)
    image = Image.fromarray(sheet).resize((width, height), Image.Resampling.BOX, box=box)
    return png_data_uri(np.asarray(image), compress_level=SPRITE_COMPRESS_LEVEL)


def element_id(kind: str, *parts: object) -> str:
    """A repeatable HTML id for one explorable: its kind and a hash of what it shows, so that two explorables
    with different data on one page never share an id."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update((array_fingerprint(part) if isinstance(part, np.ndarray) else repr(part)).encode())
    return f"mlx-{kind}-{digest.hexdigest()[:10]}"


def format_number(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals and a true minus sign, as the pages' scripts write it."""
    text = f"{abs(value):.{digits}f}"
    return (MINUS if value < 0 and float(text) != 0 else "") + text


def _display_scale(height: int, width: int, display_size: int) -> int:
    """Whole-number magnification that brings the larger side of a frame to at most ``display_size`` pixels."""
    if display_size < 1:
        raise ValueError(f"expected display_size >= 1, got {display_size}")
    return max(1, display_size // max(height, width))


# The book theme gives HTML outputs a light box and dims images in dark mode; the first rules undo that, and the
# colours follow the theme's own variables (with fallbacks for a notebook, light or dark).
_STYLE = """
#{id} { --x-fg: var(--pst-color-text-base, #222); --x-bg: var(--pst-color-surface, #f3f4f6);
  --x-border: var(--pst-color-border, #c8ccd2); --x-accent: var(--pst-color-primary, #0b5cad);
  color: var(--x-fg); margin: 1em 0; }
@media (prefers-color-scheme: dark) { html:not([data-theme]) #{id} { --x-fg: #e6e6e6; --x-bg: #23262b;
  --x-border: #555b63; --x-accent: #79b8ff; color-scheme: dark; } }
html[data-theme="dark"] #{id} { color-scheme: dark; }
.text_html:has(> #{id}) { background: transparent; color: inherit; padding: 0; }
#{id} img, #{id} canvas { filter: none; padding: 0; }
#{id} canvas { display: block; image-rendering: pixelated; background: #000; border: 1px solid var(--x-border);
  border-radius: 4px; }
#{id} p { margin: 0.4em 0; }
#{id} label { font-weight: 600; }
#{id} output { font-variant-numeric: tabular-nums; }
#{id} input[type="range"] { accent-color: var(--x-accent); width: 100%; margin: 0.2em 0; }
#{id} :focus-visible { outline: 3px solid var(--x-accent); outline-offset: 2px; }
#{id} .x-help { font-size: 0.9em; }
"""

_LATENT_STYLE = """
#{id} .x-layout { display: flex; flex-wrap: wrap; gap: 1.2em 2em; align-items: flex-start; }
#{id} .x-map { display: grid; grid-template-columns: auto {pad_width}px; grid-template-rows: {pad_height}px auto;
  gap: 0.25em 0.4em; font-size: 0.85em; }
#{id} .x-y-axis { display: flex; flex-direction: column; justify-content: space-between; align-items: flex-end; }
#{id} .x-x-axis { grid-column: 2; display: flex; justify-content: space-between; }
#{id} .x-axis-name { font-weight: 600; }
#{id} .x-pad { position: relative; width: {pad_width}px; height: {pad_height}px; cursor: crosshair;
  touch-action: none; border: 1px solid var(--x-border); border-radius: 4px; overflow: hidden; user-select: none; }
#{id} .x-pad img { display: block; width: 100%; height: 100%; pointer-events: none; }
#{id} .x-sprite { display: none; }
#{id} .x-marker { position: absolute; width: 12px; height: 12px; border: 2px solid #fff; border-radius: 50%;
  box-shadow: 0 0 0 2px #d1242f; transform: translate(-50%, -50%); pointer-events: none; }
#{id} .x-view { width: {view_width}px; }
#{id} .x-where { display: block; margin: 0.3em 0 0.6em; font-weight: 600; }
#{id} .x-slider { display: grid; grid-template-columns: 2.2em 1fr; align-items: center; gap: 0.4em; }
"""

_LATENT_SCRIPT = """
(function () {
  var root = document.getElementById("{id}");
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var rows = +root.getAttribute("data-rows"), cols = +root.getAttribute("data-cols");
  var h = +root.getAttribute("data-frame-height"), w = +root.getAttribute("data-frame-width");
  var extent = root.getAttribute("data-extent").split(",").map(Number);
  var sprite = root.querySelector(".x-sprite"), pad = root.querySelector(".x-pad");
  var marker = root.querySelector(".x-marker"), canvas = root.querySelector(".x-frame");
  var context = canvas.getContext("2d"), where = root.querySelector(".x-where");
  var sliderX = root.querySelector(".x-slider-x"), sliderY = root.querySelector(".x-slider-y");
  var row = +root.getAttribute("data-row"), col = +root.getAttribute("data-col");
  function format(v) {
    var text = Math.abs(v).toFixed(2);
    return (v < 0 && Number(text) !== 0 ? "\\u2212" : "") + text;
  }
  function value(index, count, low, high) { return low + index * (high - low) / (count - 1); }
  function draw() {
    if (!sprite.complete || !sprite.naturalWidth) return;
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, w, h);
    context.drawImage(sprite, col * w, row * h, w, h, 0, 0, w, h);
  }
  function show(newRow, newCol) {
    row = Math.max(0, Math.min(rows - 1, newRow));
    col = Math.max(0, Math.min(cols - 1, newCol));
    var x = format(value(col, cols, extent[0], extent[1]));
    var y = format(value(rows - 1 - row, rows, extent[2], extent[3]));
    root.setAttribute("data-row", String(row));
    root.setAttribute("data-col", String(col));
    marker.style.left = (100 * (col + 0.5) / cols) + "%";
    marker.style.top = (100 * (row + 0.5) / rows) + "%";
    sliderX.value = String(col);
    sliderY.value = String(rows - 1 - row);
    sliderX.setAttribute("aria-valuetext", "{x_label} = " + x);
    sliderY.setAttribute("aria-valuetext", "{y_label} = " + y);
    where.textContent = "{x_label} = " + x + ", {y_label} = " + y;
    canvas.setAttribute("aria-label", "{image_name} at {x_label} = " + x + ", {y_label} = " + y);
    draw();
  }
  function fromPointer(event) {
    var box = pad.getBoundingClientRect();
    show(Math.floor((event.clientY - box.top) / box.height * rows),
         Math.floor((event.clientX - box.left) / box.width * cols));
  }
  sprite.addEventListener("load", draw);
  pad.addEventListener("pointerdown", function (event) {
    if (pad.setPointerCapture) pad.setPointerCapture(event.pointerId);
    pad.focus({ preventScroll: true });
    fromPointer(event);
    event.preventDefault();
  });
  pad.addEventListener("pointermove", function (event) { if (event.buttons) fromPointer(event); });
  pad.addEventListener("keydown", function (event) {
    var step = event.shiftKey ? 5 : 1, moves = { ArrowLeft: [0, -step], ArrowRight: [0, step],
      ArrowUp: [-step, 0], ArrowDown: [step, 0] }, move = moves[event.key];
    if (!move) return;
    show(row + move[0], col + move[1]);
    event.preventDefault();
  });
  sliderX.addEventListener("input", function () { show(row, +sliderX.value); });
  sliderY.addEventListener("input", function () { show(rows - 1 - +sliderY.value, col); });
  show(row, col);
})();
"""


# --- the latent-space pad ---------------------------------------------------------------------------------------


def latent_explorer_html(frames: np.ndarray, extent: Sequence[float], *, x_label: str = "z\u2081",
                         y_label: str = "z\u2082", image_name: str = "The decoded image", pad_size: int = 246,
                         display_size: int = 168, levels: int = SPRITE_LEVELS) -> str:
    """A 2-D pad over a latent space, with the decoded image at the chosen point, as one HTML block.

    The pad shows a map of the decodings (:func:`latent_map_data_uri`), with a marker at the chosen cell. Pressing or
    dragging on it, the arrow keys once it has the focus (Shift: five cells at a time), or the two labelled sliders
    choose the cell; the image beside it is that cell's frame of the sprite sheet, drawn on a ``<canvas>``, with its
    latent coordinates written below.

    Args:
        frames: ``(rows, cols, h, w[, c])`` images in [0, 1]: ``frames[i, j]`` decodes the point whose first
            coordinate is the ``j``-th of ``cols`` evenly spaced values from ``x_min`` to ``x_max`` and whose second
            is the ``i``-th of ``rows`` values from ``y_max`` down to ``y_min`` (top to bottom, as on a plot).
        extent: ``(x_min, x_max, y_min, y_max)``, the coordinates of the first and last rows and columns.
        x_label, y_label: the names of the two coordinates (slider labels, axis names).
        image_name: what the image is, for its text alternative ("… at z₁ = 0.41, z₂ = −1.20").
        pad_size: the longer side of the pad, in CSS pixels.
        display_size: the longer side of the shown image at most, in CSS pixels (scaled by a whole factor).
        levels: grey levels of the sprite sheet (:func:`sprite_data_uri`).

    The outer element carries ``data-rows``, ``data-cols``, ``data-frame-height``, ``data-frame-width``,
    ``data-extent`` and the current ``data-row`` and ``data-col``; the sprite is its ``img.x-sprite`` (hidden), the
    map the pad's ``img.x-map-image``.

    Raises:
        ValueError: for frames of another shape or outside [0, 1], fewer than 2 rows or columns, or an extent
            that is not four finite numbers with ``x_min < x_max`` and ``y_min < y_max``.
    """
    frames = _as_frames(frames, 2, "frames")
    rows, cols, height, width, _ = frames.shape
    if rows < 2 or cols < 2:
        raise ValueError(f"expected a grid of at least 2 × 2 frames, got {rows} × {cols}")
    extent = tuple(float(v) for v in np.ravel(np.asarray(extent, dtype=np.float64)))
    if len(extent) != 4 or not all(math.isfinite(v) for v in extent) or not (
            extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(f"expected extent (x_min, x_max, y_min, y_max) with x_min < x_max and y_min < y_max, "
                         f"got {extent}")
    explorer_id = element_id("latent", frames, extent)
    sheet = sprite_pixels(frames.reshape(rows * cols, height, width, -1), cols, levels)
    sprite = png_data_uri(sheet, compress_level=SPRITE_COMPRESS_LEVEL)
    scale = _display_scale(height, width, display_size)
    sheet_width, sheet_height = cols * width, rows * height
    pad_width = pad_size if sheet_width >= sheet_height else max(1, round(pad_size * sheet_width / sheet_height))
    pad_height = pad_size if sheet_height >= sheet_width else max(1, round(pad_size * sheet_height / sheet_width))
    pad_map = latent_map_data_uri(frames, pad_width, pad_height, levels=levels)
    row, col = (rows - 1) // 2, (cols - 1) // 2
    x_min, x_max, y_min, y_max = (format_number(v) for v in extent)
    names = {"x_label": html.escape(x_label), "y_label": html.escape(y_label), "image_name": html.escape(image_name)}
    style = fill_placeholders(_STYLE + _LATENT_STYLE, id=explorer_id, pad_width=pad_width, pad_height=pad_height,
                              view_width=max(scale * width, 200))
    script = fill_placeholders(_LATENT_SCRIPT, id=explorer_id, **names)
    x_name, y_name = names["x_label"], names["y_label"]
    pad_label = (f"Latent space map: {x_name} from left to right, {y_name} from bottom to top. Press or drag to "
                 f"choose a point, or use the arrow keys (Shift: five steps).")
    return (
        f'<div class="{EXPLORABLE_CLASS} {LATENT_CLASS}" id="{explorer_id}" data-rows="{rows}" data-cols="{cols}" '
        f'data-frame-height="{height}" data-frame-width="{width}" data-extent="{",".join(map(repr, extent))}" '
        f'data-row="{row}" data-col="{col}">\n<style>{style}</style>\n'
        f'<p class="x-help">Press or drag on the map, or focus it and use the arrow keys; the sliders move '
        f'{x_name} and {y_name} one grid step at a time.</p>\n'
        f'<div class="x-layout">\n<div class="x-map">'
        f'<div class="x-y-axis" aria-hidden="true"><span>{y_max}</span><span class="x-axis-name">{y_name}</span>'
        f'<span>{y_min}</span></div>'
        f'<div class="x-pad" tabindex="0" role="group" aria-label="{pad_label}" aria-describedby="{explorer_id}-where">'
        f'<img class="x-map-image" src="{pad_map}" alt="{MAP_ALT}" width="{pad_width}" height="{pad_height}">'
        f'<span class="x-marker"></span></div>'
        f'<div class="x-x-axis" aria-hidden="true"><span>{x_min}</span><span class="x-axis-name">{x_name}</span>'
        f'<span>{x_max}</span></div></div>\n'
        f'<div class="x-view"><canvas class="x-frame" width="{width}" height="{height}" role="img" '
        f'aria-label="{names["image_name"]}" style="width: {scale * width}px; height: {scale * height}px"></canvas>'
        f'<output class="x-where" id="{explorer_id}-where" aria-live="polite"></output>'
        f'<div class="x-slider"><label for="{explorer_id}-x">{x_name}</label>'
        f'<input type="range" class="x-slider-x" id="{explorer_id}-x" min="0" max="{cols - 1}" step="1" '
        f'value="{col}"></div>'
        f'<div class="x-slider"><label for="{explorer_id}-y">{y_name}</label>'
        f'<input type="range" class="x-slider-y" id="{explorer_id}-y" min="0" max="{rows - 1}" step="1" '
        f'value="{rows - 1 - row}"></div></div>\n</div>\n'
        f'<img class="x-sprite" src="{sprite}" alt="{SPRITE_ALT}">\n'
        f'<noscript><p>This explorable needs JavaScript.</p></noscript>\n'
        f'<script>{script}</script>\n</div>'
    )


# --- a path, frame by frame -------------------------------------------------------------------------------------

_INTERPOLATION_STYLE = """
#{id} .x-layout { display: flex; flex-wrap: wrap; gap: 1em 1.5em; align-items: center; }
#{id} .x-walk { display: grid; grid-template-columns: auto minmax(8em, {slider_width}px) auto; gap: 0.6em;
  align-items: center; justify-content: start; margin: 0.4em 0; }
#{id} .x-end { width: {end_width}px; height: {end_height}px; }
#{id} .x-step { display: block; font-weight: 600; }
#{id} .x-sprite { display: none; }
"""

_INTERPOLATION_SCRIPT = """
(function () {
  var root = document.getElementById("{id}");
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var count = +root.getAttribute("data-frames"), cols = +root.getAttribute("data-cols");
  var h = +root.getAttribute("data-frame-height"), w = +root.getAttribute("data-frame-width");
  var sprite = root.querySelector(".x-sprite"), slider = root.querySelector(".x-slider");
  var canvas = root.querySelector(".x-frame"), step = root.querySelector(".x-step");
  var ends = root.querySelectorAll(".x-end"), index = +root.getAttribute("data-frame");
  function drawFrame(target, i) {
    var context = target.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, w, h);
    context.drawImage(sprite, (i % cols) * w, Math.floor(i / cols) * h, w, h, 0, 0, w, h);
  }
  function draw() {
    if (!sprite.complete || !sprite.naturalWidth) return;
    drawFrame(canvas, index);
    drawFrame(ends[0], 0);
    drawFrame(ends[1], count - 1);
  }
  function show(i) {
    index = Math.max(0, Math.min(count - 1, i));
    root.setAttribute("data-frame", String(index));
    slider.value = String(index);
    var fraction = (index / (count - 1)).toFixed(2), text = "Frame " + (index + 1) + " of " + count +
      " (t = " + fraction + ")";
    slider.setAttribute("aria-valuetext", text);
    step.textContent = text;
    canvas.setAttribute("aria-label", "{image_name}, frame " + (index + 1) + " of " + count);
    draw();
  }
  sprite.addEventListener("load", draw);
  slider.addEventListener("input", function () { show(+slider.value); });
  show(index);
})();
"""


def interpolation_explorer_html(frames: np.ndarray, *, label: str = "Step along the path",
                                image_name: str = "The generated image", start_name: str = "start",
                                end_name: str = "end", display_size: int = 168, levels: int = SPRITE_LEVELS) -> str:
    """A slider that steps through the frames of a path (an interpolation between two latent vectors), one
    frame at a time, as one HTML block.

    The current frame is drawn large on a ``<canvas>``; the path's two ends are drawn small on either side of the
    slider, and the frame number and the fraction ``t`` of the way along it (0 at the start, 1 at the end) are
    written below.

    Args:
        frames: ``(n, h, w[, c])`` images in [0, 1], in path order.
        label: the slider's label.
        image_name: what the frames are, for the image's text alternative ("…, frame 3 of 32").
        start_name, end_name: text alternatives of the two small end images.
        display_size: the longer side of the shown image at most, in CSS pixels (scaled by a whole factor).
        levels: levels per channel of the sprite sheet (:func:`sprite_data_uri`).

    The outer element carries ``data-frames``, ``data-cols`` (frames per row of the sprite sheet),
    ``data-frame-height``, ``data-frame-width`` and the current ``data-frame`` (from 0); the sprite is its
    ``img.x-sprite``.

    Raises:
        ValueError: for frames of another shape or outside [0, 1], or fewer than 2 frames.
    """
    frames = _as_frames(frames, 1, "frames")
    count, height, width, _ = frames.shape
    if count < 2:
        raise ValueError(f"expected at least 2 frames (the two ends), got {count}")
    explorer_id = element_id("path", frames)
    cols = math.ceil(math.sqrt(count))
    sprite = sprite_data_uri(frames, cols, levels)
    scale = _display_scale(height, width, display_size)
    end_scale = max(1, scale // 3)
    style = fill_placeholders(_STYLE + _INTERPOLATION_STYLE, id=explorer_id, slider_width=max(240, scale * width),
                              end_width=end_scale * width, end_height=end_scale * height)
    script = fill_placeholders(_INTERPOLATION_SCRIPT, id=explorer_id, image_name=html.escape(image_name))
    return (
        f'<div class="{EXPLORABLE_CLASS} {INTERPOLATION_CLASS}" id="{explorer_id}" data-frames="{count}" '
        f'data-cols="{cols}" data-frame-height="{height}" data-frame-width="{width}" data-frame="0">\n'
        f'<style>{style}</style>\n'
        f'<div class="x-layout"><canvas class="x-frame" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(image_name)}" style="width: {scale * width}px; height: {scale * height}px">'
        f'</canvas>\n<div class="x-controls">'
        f'<label for="{explorer_id}-t">{html.escape(label)}</label>\n'
        f'<div class="x-walk"><canvas class="x-end" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(start_name)}"></canvas>'
        f'<input type="range" class="x-slider" id="{explorer_id}-t" min="0" max="{count - 1}" step="1" value="0">'
        f'<canvas class="x-end" width="{width}" height="{height}" role="img" aria-label="{html.escape(end_name)}">'
        f'</canvas></div>\n'
        f'<output class="x-step" for="{explorer_id}-t" aria-live="polite"></output></div></div>\n'
        f'<img class="x-sprite" src="{sprite}" alt="{SPRITE_ALT}">\n'
        f'<noscript><p>This explorable needs JavaScript.</p></noscript>\n'
        f'<script>{script}</script>\n</div>'
    )


# --- text samples over temperatures -----------------------------------------------------------------------------

_TEMPERATURE_STYLE = """
#{id} .x-controls { display: grid; grid-template-columns: auto minmax(10em, 22em) auto; gap: 0.4em 0.8em;
  align-items: center; }
#{id} .x-readout { font-weight: 600; }
#{id} .x-text { background: var(--x-bg); color: var(--x-fg); border: 1px solid var(--x-border); border-radius: 6px;
  padding: 0.6em 0.8em; margin: 0.6em 0; font-family: var(--pst-font-family-monospace, monospace);
  font-size: 0.9em; white-space: pre-wrap; overflow-wrap: anywhere; min-height: 4.5em; }
#{id} .x-prompt { font-weight: 700; text-decoration: underline; }
#{id} .x-controls, #{id} .x-readout-line, #{id} .x-text { display: none; }
#{id}.x-live .x-controls { display: grid; }
#{id}.x-live .x-readout-line, #{id}.x-live .x-text { display: block; }
#{id}.x-live .x-samples { display: none; }
#{id} .x-samples li { margin: 0.3em 0; }
#{id} .x-samples .x-sample-text { font-family: var(--pst-font-family-monospace, monospace); }
"""

_TEMPERATURE_SCRIPT = """
(function () {
  var root = document.getElementById("{id}");
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var items = root.querySelectorAll(".x-samples li"), slider = root.querySelector(".x-slider");
  var readout = root.querySelector(".x-readout"), sample = root.querySelector(".x-text .x-sample");
  function show(i) {
    var index = Math.max(0, Math.min(items.length - 1, i)), item = items[index];
    root.setAttribute("data-index", String(index));
    slider.value = String(index);
    slider.setAttribute("aria-valuetext", item.getAttribute("data-label"));
    readout.textContent = item.getAttribute("data-readout");
    sample.textContent = item.querySelector(".x-sample-text").textContent;
  }
  slider.addEventListener("input", function () { show(+slider.value); });
  root.classList.add("x-live");
  show(+root.getAttribute("data-index"));
})();
"""


def temperature_readout(sample: TemperatureSample) -> str:
    """The line the page shows above a sample: its temperature and its bits per character."""
    return f"\u03c4 = {sample.temperature:g}: {sample.bits_per_character:.2f} bits per character"


def temperature_explorer_html(samples: Sequence[TemperatureSample], *, prompt: str = "",
                              label: str = "Temperature \u03c4", start_index: int | None = None) -> str:
    """A temperature slider over text samples drawn in advance, each shown with its bits per character, as one
    HTML block.

    Without JavaScript the block is a plain list of the samples; with it, the list gives way to the slider, the
    current sample (after the ``prompt``, underlined) and a line with its temperature and bits per character.

    Args:
        samples: at least two samples, in strictly increasing order of temperature.
        prompt: the text the samples continue, shown before each.
        label: the slider's label.
        start_index: the sample shown first (default: the middle one).

    Each sample is an ``li`` of the list ``.x-samples`` with ``data-temperature``, ``data-bpc`` (bits per
    character), ``data-label`` and ``data-readout`` (the line :func:`temperature_readout` writes); the outer
    element carries ``data-count`` and the current ``data-index``.

    Raises:
        ValueError: for fewer than two samples, temperatures that are negative or not increasing, bits per
            character that are not finite and non-negative, or a ``start_index`` out of range.
    """
    samples = list(samples)
    if len(samples) < 2:
        raise ValueError(f"expected at least 2 samples, got {len(samples)}")
    temperatures = [float(s.temperature) for s in samples]
    if temperatures[0] < 0 or any(b <= a for a, b in zip(temperatures, temperatures[1:])):
        raise ValueError(f"expected non-negative temperatures in increasing order, got {temperatures}")
    bits = [float(s.bits_per_character) for s in samples]
    if not all(math.isfinite(b) and b >= 0 for b in bits):
        raise ValueError(f"expected finite, non-negative bits per character, got {bits}")
    index = (len(samples) - 1) // 2 if start_index is None else start_index
    if not 0 <= index < len(samples):
        raise ValueError(f"expected start_index in [0, {len(samples)}), got {start_index}")
    explorer_id = element_id("temperature", prompt, [(s.temperature, s.text, s.bits_per_character) for s in samples])
    items = "".join(
        f'<li data-temperature="{float(s.temperature)!r}" data-bpc="{float(s.bits_per_character)!r}" '
        f'data-label="\u03c4 = {s.temperature:g}" data-readout="{html.escape(temperature_readout(s))}">'
        f'{html.escape(temperature_readout(s))}<br><span class="x-sample-text">{html.escape(s.text)}</span></li>'
        for s in samples
    )
    style = fill_placeholders(_STYLE + _TEMPERATURE_STYLE, id=explorer_id)
    script = fill_placeholders(_TEMPERATURE_SCRIPT, id=explorer_id)
    lowest, highest = f"{temperatures[0]:g}", f"{temperatures[-1]:g}"
    return (
        f'<div class="{EXPLORABLE_CLASS} {TEMPERATURE_CLASS}" id="{explorer_id}" data-count="{len(samples)}" '
        f'data-index="{index}">\n<style>{style}</style>\n'
        f'<div class="x-controls"><label for="{explorer_id}-t">{html.escape(label)}</label>'
        f'<input type="range" class="x-slider" id="{explorer_id}-t" min="0" max="{len(samples) - 1}" step="1" '
        f'value="{index}" aria-describedby="{explorer_id}-readout">'
        f'<span aria-hidden="true">{lowest} to {highest}</span></div>\n'
        f'<p class="x-readout-line"><output class="x-readout" id="{explorer_id}-readout" for="{explorer_id}-t" '
        f'aria-live="polite"></output></p>\n'
        f'<p class="x-text"><span class="x-prompt">{html.escape(prompt)}</span><span class="x-sample"></span></p>\n'
        f'<ol class="x-samples">{items}</ol>\n'
        f'<script>{script}</script>\n</div>'
    )
