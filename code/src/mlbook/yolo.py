"""A humble YOLO v1: generated "chat"/"rat" images, the grid encoding, a small Keras 3 detector and its loss.

The data set is drawn with Pillow: grey images with the words of :data:`CLASS_NAMES` at random positions and sizes,
and the tight box of each word's ink. Labels are stored in the Darknet text format that labelling tools such as
LabelImg and Yolo Mark write, one line per object::

    <class index> <x centre> <y centre> <width> <height>

with x and the width as fractions of the image width, y and the height as fractions of its height, plus a
``classes.txt`` that names the classes in index order. In memory, an image's objects are a
:class:`mlbook.detection.Boxes` with corners ``(x_min, y_min, x_max, y_max)`` in fractions of the image side.

The network's output for an image is an ``S × S`` grid (rows, columns) of vectors
``[p(class 0), …, p(class C−1), x, y, w, h, confidence] + … (B boxes)``, all squashed by a sigmoid: x and y place
a box's centre inside its cell (0 = left/top edge of the cell, 1 = right/bottom edge), w and h are fractions of
the image side. A target holds one box per cell: ``[one-hot class, x, y, w, h, 1]``, or zeros for an empty cell.

References:
    Redmon, J., Divvala, S., Girshick, R. & Farhadi, A. (2016). You Only Look Once: Unified, Real-Time Object
    Detection. *CVPR*. (The grid, the B boxes per cell and the loss with λ_coord = 5, λ_noobj = 0.5.)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import ops

from mlbook.cache import evaluation_only, weights_config
from mlbook.detection import (
    Boxes,
    centres_to_corners,
    centres_to_corners_tensor,
    class_aware_nms,
    corners_to_centres,
    iou_tensor,
)
from mlbook.distribute import scale_for_replicas
from mlbook.training import STEPS_PER_EXECUTION

#: The words drawn, in class-index order ("chat" is French for cat).
CLASS_NAMES: tuple[str, ...] = ("chat", "rat")
#: The loss weights of the YOLO v1 paper: box coordinates count 5×, confidences of empty boxes ½×.
LAMBDA_COORD = 5.0
LAMBDA_NOOBJ = 0.5
#: Added under the square roots of the size term, so that its gradient stays finite at a width of 0.
SQRT_EPSILON = 1e-6
#: The names of the five terms of the loss, in the order of the paper's equation.
LOSS_TERMS: tuple[str, ...] = ("xy_loss", "wh_loss", "object_loss", "no_object_loss", "class_loss")
#: YOLO v1's leaky ReLU slope.
LEAKY_SLOPE = 0.1
#: How often the generator retries placing a word before giving up on it.
MAX_PLACEMENT_ATTEMPTS = 30


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """The geometry of the detector: square images of ``image_size`` pixels, an ``S × S`` grid, B boxes a cell."""

    image_size: int = 64
    grid_size: int = 4
    num_classes: int = len(CLASS_NAMES)
    num_boxes: int = 2
    channels: int = 1

    def __post_init__(self) -> None:
        for name in ("image_size", "grid_size", "num_classes", "num_boxes", "channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"expected a positive integer {name}, got {value!r}")
        if self.image_size % self.grid_size:
            raise ValueError(f"expected an image_size divisible by grid_size, got {self.image_size} and "
                             f"{self.grid_size}")

    @property
    def cell_size(self) -> int:
        """Pixels per cell side."""
        return self.image_size // self.grid_size

    @property
    def prediction_depth(self) -> int:
        """Numbers the network predicts per cell: C class probabilities and B × (x, y, w, h, confidence)."""
        return self.num_classes + 5 * self.num_boxes

    @property
    def target_depth(self) -> int:
        """Numbers a target holds per cell: a one-hot class, one box and its objectness."""
        return self.num_classes + 5


# --- the generated data set --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DetectionDataset:
    """Images ``(n, side, side, 1)`` float32 in [0, 1] and one :class:`Boxes` (fractions of the side) per image."""

    images: np.ndarray
    labels: list[Boxes]
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"expected square images of shape (n, side, side, channels), got {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"expected one Boxes per image ({len(self.images)}), got {len(self.labels)}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_objects(self) -> np.ndarray:
        """Objects per class over the whole data set."""
        classes = np.concatenate([label.classes for label in self.labels] + [np.zeros(0, np.int64)])
        return np.bincount(classes, minlength=len(self.class_names))


@functools.cache
def word_stamp(word: str, font_size: int):
    """The ink of ``word`` in Pillow's bundled scalable font, cropped to its tight box (a greyscale mask)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_size)
    _, _, right, bottom = font.getbbox(word)
    canvas = Image.new("L", (right + 2, bottom + 2), 0)
    ImageDraw.Draw(canvas).text((0, 0), word, fill=255, font=font)
    return canvas.crop(canvas.getbbox())


def cell_of(centres: np.ndarray, grid_size: int) -> np.ndarray:
    """The grid row (or column) that contains each centre coordinate, given as a fraction of the image side."""
    return np.clip(np.floor(np.asarray(centres) * grid_size), 0, grid_size - 1).astype(np.int64)


def generate_word_images(
    num_images: int,
    spec: GridSpec = GridSpec(),
    *,
    class_names: Sequence[str] = CLASS_NAMES,
    font_sizes: tuple[int, int] = (9, 20),
    max_objects: int = 3,
    noise: float = 8.0,
    seed: int = 0,
) -> DetectionDataset:
    """Draw ``num_images`` grey images with 1 to ``max_objects`` words each, and their tight boxes.

    Each image has a random dark background and a random light ink, with Gaussian pixel noise. Words never overlap
    (a 2-pixel gap is kept), and no two word centres fall into the same grid cell, because YOLO v1 predicts one
    class per cell.

    Args:
        num_images: how many images.
        spec: the image side and grid (``spec.num_classes`` must equal the number of ``class_names``).
        class_names: the words to draw; the class index of a word is its position here.
        font_sizes: the smallest and largest font size, in pixels (uniform between them).
        max_objects: the most words per image (fewer when a word finds no free place in
            :data:`MAX_PLACEMENT_ATTEMPTS` tries).
        noise: standard deviation of the pixel noise, in grey levels out of 255.
        seed: the generator's seed; the same seed gives the same images.

    Raises:
        ValueError: for a spec whose class count differs from ``class_names``, or impossible sizes.
    """
    from PIL import Image

    if spec.num_classes != len(class_names):
        raise ValueError(f"expected spec.num_classes == len(class_names) ({len(class_names)}), got "
                         f"{spec.num_classes}")
    if not 1 <= font_sizes[0] <= font_sizes[1]:
        raise ValueError(f"expected font sizes 1 <= low <= high, got {font_sizes}")
    if num_images < 0 or max_objects < 1:
        raise ValueError(f"expected num_images >= 0 and max_objects >= 1, got {num_images} and {max_objects}")
    rng = np.random.default_rng(seed)
    side = spec.image_size
    images = np.empty((num_images, side, side, 1), dtype=np.float32)
    labels = []
    for index in range(num_images):
        background, ink = int(rng.integers(0, 90)), int(rng.integers(160, 256))
        canvas = Image.new("L", (side, side), background)
        boxes: list[tuple[int, int, int, int]] = []
        classes: list[int] = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            placed = _place_word(canvas, rng, spec, class_names, font_sizes, boxes, ink)
            if placed is not None:
                boxes.append(placed[0])
                classes.append(placed[1])
        pixels = np.asarray(canvas, dtype=np.float64) + rng.normal(0.0, noise, (side, side))
        images[index, ..., 0] = np.clip(np.round(pixels), 0, 255) / 255.0
        labels.append(Boxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / side, classes))
    return DetectionDataset(images, labels, tuple(class_names))


def _place_word(
    canvas, rng: np.random.Generator, spec: GridSpec, class_names: Sequence[str], font_sizes: tuple[int, int],
    boxes: list[tuple[int, int, int, int]], ink: int,
) -> tuple[tuple[int, int, int, int], int] | None:
    """Paste one random word on the Pillow ``canvas`` in ``ink``, clear of the ``boxes`` already placed and in a
    grid cell of its own; return its pixel box and class, or ``None`` if no place was found."""
    side, gap = spec.image_size, 2
    taken = {(int(r), int(c)) for r, c in (_cell_of_box(box, spec) for box in boxes)}
    for _ in range(MAX_PLACEMENT_ATTEMPTS):
        class_id = int(rng.integers(len(class_names)))
        stamp = word_stamp(class_names[class_id], int(rng.integers(font_sizes[0], font_sizes[1] + 1)))
        width, height = stamp.size
        if width > side or height > side:
            continue
        x0, y0 = int(rng.integers(0, side - width + 1)), int(rng.integers(0, side - height + 1))
        box = (x0, y0, x0 + width, y0 + height)
        clear = all(box[0] >= b[2] + gap or b[0] >= box[2] + gap or box[1] >= b[3] + gap or b[1] >= box[3] + gap
                    for b in boxes)
        if clear and _cell_of_box(box, spec) not in taken:
            canvas.paste(ink, box, mask=stamp)
            return box, class_id
    return None


def _cell_of_box(box: tuple[int, int, int, int], spec: GridSpec) -> tuple[int, int]:
    centre_x, centre_y = (box[0] + box[2]) / 2 / spec.image_size, (box[1] + box[3]) / 2 / spec.image_size
    return int(cell_of(centre_y, spec.grid_size)), int(cell_of(centre_x, spec.grid_size))


# --- label files ---------------------------------------------------------------------------------------------------


def format_label_file(labels: Boxes) -> str:
    """The Darknet label text of one image: ``class x_centre y_centre width height`` per line, as fractions."""
    rows = corners_to_centres(labels.boxes)
    return "".join(f"{c:d} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, (x, y, w, h) in zip(labels.classes, rows))


def parse_label_file(text: str, num_classes: int) -> Boxes:
    """Read the text written by :func:`format_label_file` (blank lines and ``#`` comments are skipped).

    Raises:
        ValueError: naming the line, for a line without five fields, a class outside ``0 … num_classes − 1``, or
            a box that leaves the unit square.
    """
    classes, rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 5:
            raise ValueError(f"line {number}: expected 5 fields 'class x y w h', got {len(fields)}: {line!r}")
        class_id, values = int(fields[0]), np.array([float(field) for field in fields[1:]])
        if not 0 <= class_id < num_classes:
            raise ValueError(f"line {number}: expected a class in 0..{num_classes - 1}, got {class_id}")
        corners = centres_to_corners(values)[0]
        # 1e-6: the file keeps six decimals, so a box on the border may read a hair outside it
        if np.any(values[2:] < 0) or np.any(corners < -1e-6) or np.any(corners > 1 + 1e-6):
            raise ValueError(f"line {number}: expected a box inside the image (fractions in [0, 1]), got {line!r}")
        classes.append(class_id)
        rows.append(np.clip(corners, 0.0, 1.0))
    return Boxes(np.asarray(rows).reshape(-1, 4), classes)


def write_dataset(folder: str | Path, dataset: DetectionDataset) -> list[Path]:
    """Write each image as ``image_NNNNN.png`` (8-bit grey) beside its ``image_NNNNN.txt``, and ``classes.txt``.

    Returns:
        The image paths, in order.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in dataset.class_names))
    paths = []
    for index, (image, labels) in enumerate(zip(dataset.images, dataset.labels)):
        path = folder / f"image_{index:05d}.png"
        Image.fromarray(np.round(image[..., 0] * 255).astype(np.uint8), mode="L").save(path)
        path.with_suffix(".txt").write_text(format_label_file(labels))
        paths.append(path)
    return paths


def read_dataset(folder: str | Path) -> DetectionDataset:
    """Read a folder written by :func:`write_dataset` (or by a labelling tool in the same format).

    Raises:
        FileNotFoundError: if ``classes.txt`` or an image's label file is missing.
    """
    from PIL import Image

    folder = Path(folder)
    class_names = tuple((folder / "classes.txt").read_text().split())
    images, labels = [], []
    for path in sorted(folder.glob("image_*.png")):
        label_path = path.with_suffix(".txt")
        if not label_path.is_file():
            raise FileNotFoundError(f"no label file {label_path.name} for {path.name}")
        images.append(np.asarray(Image.open(path).convert("L"), dtype=np.float32)[..., None] / 255.0)
        labels.append(parse_label_file(label_path.read_text(), len(class_names)))
    return DetectionDataset(np.stack(images), labels, class_names)


# --- the grid encoding -----------------------------------------------------------------------------------------------


def cell_offsets(grid_size: int) -> np.ndarray:
    """The column and row of every cell, shaped ``(S, S, 1, 2)`` to broadcast over a cell's B boxes.

    ``(x + offsets[..., 0]) / S`` turns a cell-relative x into a fraction of the image width, and likewise for y
    with ``offsets[..., 1]``.
    """
    rows, cols = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")
    return np.stack([cols, rows], axis=-1)[:, :, None, :].astype(np.float32)


def encode_labels(labels: Boxes, spec: GridSpec) -> np.ndarray:
    """The ``(S, S, C + 5)`` target of one image: per cell a one-hot class, then x, y (in the cell), w, h, 1.

    Implements: eq-yolo-encoding

    Raises:
        ValueError: for a class index out of range, or two objects whose centres share a cell.
    """
    size, classes = spec.grid_size, spec.num_classes
    if len(labels) and (labels.classes.min() < 0 or labels.classes.max() >= classes):
        raise ValueError(f"expected class indices in 0..{classes - 1}, got {labels.classes.tolist()}")
    target = np.zeros((size, size, spec.target_depth), dtype=np.float32)
    centres = corners_to_centres(labels.boxes)
    rows, cols = cell_of(centres[:, 1], size), cell_of(centres[:, 0], size)
    for (x, y, w, h), row, col, class_id in zip(centres, rows, cols, labels.classes):
        if target[row, col, classes + 4]:
            raise ValueError(f"two objects have their centres in cell (row {row}, column {col}); YOLO v1 "
                             "predicts one class per cell")
        target[row, col, class_id] = 1.0
        target[row, col, classes : classes + 5] = (x * size - col, y * size - row, w, h, 1.0)
    return target


def encode_dataset(labels: Sequence[Boxes], spec: GridSpec) -> np.ndarray:
    """The ``(n, S, S, C + 5)`` targets of a list of images' labels."""
    return np.stack([encode_labels(label, spec) for label in labels]) if labels else np.zeros(
        (0, spec.grid_size, spec.grid_size, spec.target_depth), np.float32)


def decode_target(target: np.ndarray, spec: GridSpec) -> Boxes:
    """Invert :func:`encode_labels`: the boxes (fractions of the side) and classes of one ``(S, S, C + 5)`` target."""
    _check_depth(target, spec.target_depth, "target")
    classes, size = spec.num_classes, spec.grid_size
    rows, cols = np.nonzero(target[..., classes + 4] > 0.5)
    x, y, w, h = np.moveaxis(target[rows, cols, classes : classes + 4], -1, 0)
    centres = np.stack([(cols + x) / size, (rows + y) / size, w, h], axis=-1)
    return Boxes(centres_to_corners(centres), np.argmax(target[rows, cols, :classes], axis=-1))


def prediction_boxes(prediction: np.ndarray, spec: GridSpec) -> Boxes:
    """All ``S·S·B`` boxes of one ``(S, S, C + 5B)`` prediction, scored ``confidence × max class probability``.

    Boxes are corners in fractions of the image side, clipped to the image.
    """
    _check_depth(prediction, spec.prediction_depth, "prediction")
    prediction = np.asarray(prediction, dtype=np.float64)
    size, classes = spec.grid_size, spec.num_classes
    boxes = prediction[..., classes:].reshape(size, size, spec.num_boxes, 5)
    centres_xy = (boxes[..., :2] + cell_offsets(size)) / size
    corners = centres_to_corners(np.concatenate([centres_xy, boxes[..., 2:4]], axis=-1).reshape(-1, 4))
    class_probabilities = prediction[..., :classes]
    scores = boxes[..., 4] * class_probabilities.max(axis=-1, keepdims=True)
    best_class = np.repeat(class_probabilities.argmax(axis=-1)[..., None], spec.num_boxes, axis=-1)
    return Boxes(np.clip(corners, 0.0, 1.0), best_class.reshape(-1), scores.reshape(-1))


def decode_predictions(
    predictions: np.ndarray, spec: GridSpec, score_threshold: float = 0.05, iou_threshold: float = 0.5
) -> list[Boxes]:
    """Detections of a batch of predictions: boxes scoring at least ``score_threshold``, after class-aware NMS."""
    found = []
    for prediction in np.asarray(predictions):
        boxes = prediction_boxes(prediction, spec)
        found.append(class_aware_nms(boxes.select(boxes.scores >= score_threshold), iou_threshold))
    return found


def _check_depth(array: np.ndarray, depth: int, name: str) -> None:
    if array.ndim < 3 or array.shape[-3] != array.shape[-2] or array.shape[-1] != depth:
        raise ValueError(f"expected a {name} of shape (..., S, S, {depth}), got {array.shape}")


# --- the network --------------------------------------------------------------------------------------------------


def build_yolo_network(spec: GridSpec, head: str = "conv", hidden_units: int = 256) -> keras.Model:
    """The backbone (stacked 3×3 convolutions, 1×1 convolutions, pooling) and a head that predicts the grid.

    The input is ``(height, width, channels)``, Keras's order. Four 2×2 poolings shrink the image 16 times
    (64 pixels → 4 × 4 features). The ``"conv"`` head pools further if the grid is coarser, then predicts each
    cell from the features at that cell with a 3×3 and a 1×1 convolution, so all cells share its weights (as in
    YOLO v2). The ``"dense"`` head is YOLO v1's: flatten, a hidden dense layer, and a dense layer for all cells.

    Args:
        spec: the grid.
        head: ``"conv"`` or ``"dense"``.
        hidden_units: the width of the dense head's hidden layer.

    Returns:
        A functional model from ``(batch, side, side, channels)`` images to ``(batch, S, S, C + 5B)`` sigmoids.

    Raises:
        ValueError: for an unknown head, or a conv head on a grid finer than the features (``side / 16``).
    """
    side, size = spec.image_size, spec.grid_size
    if head not in ("conv", "dense"):
        raise ValueError(f"expected head 'conv' or 'dense', got {head!r}")
    features = side // 16
    if head == "conv" and (side % 16 or features % size):
        raise ValueError(f"a conv head needs grid_size to divide image_size / 16 = {side / 16:g}, got "
                         f"grid_size={size}; use head='dense'")

    def conv(x, filters: int, kernel: int):
        x = keras.layers.Conv2D(filters, kernel, padding="same")(x)
        return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)(x)

    inputs = keras.Input((side, side, spec.channels), name="images")
    x = conv(inputs, 16, 3)
    x = keras.layers.MaxPooling2D(2)(x)
    x = conv(x, 32, 3)
    x = keras.layers.MaxPooling2D(2)(x)
    x = conv(x, 16, 1)
    x = conv(x, 32, 3)
    x = keras.layers.MaxPooling2D(2)(x)
    x = conv(x, 32, 1)
    x = conv(x, 64, 3)
    x = keras.layers.MaxPooling2D(2)(x)
    if head == "conv":
        if features > size:
            x = keras.layers.MaxPooling2D(features // size)(x)
        x = conv(x, 128, 3)
        outputs = keras.layers.Conv2D(spec.prediction_depth, 1, activation="sigmoid", name="grid")(x)
    else:
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(hidden_units)(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)(x)
        x = keras.layers.Dense(size * size * spec.prediction_depth, activation="sigmoid")(x)
        outputs = keras.layers.Reshape((size, size, spec.prediction_depth), name="grid")(x)
    return keras.Model(inputs, outputs, name=f"yolo_{head}_head")


# --- the loss -------------------------------------------------------------------------------------------------------


def yolo_loss_terms(
    targets, predictions, spec: GridSpec, lambda_coord: float = LAMBDA_COORD, lambda_noobj: float = LAMBDA_NOOBJ
) -> dict[str, object]:
    """The five terms of the YOLO v1 loss, each summed over the cells and boxes of each image.

    Within a cell that holds an object, the *responsible* box is the one whose IoU with the true box is largest;
    its confidence is trained towards that IoU (a constant: no gradient flows through it), every other confidence
    towards 0. x and y are compared in cell units, w and h through their square roots in image units; the IoU is
    computed in image units, after adding the cell offsets.

    Implements: eq-yolo-loss

    Args:
        targets: ``(n, S, S, C + 5)`` from :func:`encode_dataset`.
        predictions: ``(n, S, S, C + 5B)`` from the network.
        spec: the grid.
        lambda_coord, lambda_noobj: the weights of the coordinate terms and of the no-object term.

    Returns:
        ``{name: (n,) tensor}`` for the names in :data:`LOSS_TERMS`.

    Raises:
        ValueError: if the shapes do not match ``spec``.
    """
    size, classes, num_boxes = spec.grid_size, spec.num_classes, spec.num_boxes
    expected = {"targets": (size, size, spec.target_depth), "predictions": (size, size, spec.prediction_depth)}
    for name, tensor in (("targets", targets), ("predictions", predictions)):
        if tuple(tensor.shape[1:]) != expected[name]:
            raise ValueError(f"expected {name} of shape (n, {', '.join(map(str, expected[name]))}), got "
                             f"{tuple(tensor.shape)}")
    dtype = predictions.dtype
    targets = ops.cast(targets, dtype)
    true_class, true_box = targets[..., :classes], targets[..., None, classes : classes + 4]  # box: (n,S,S,1,4)
    has_object = targets[..., classes + 4]                                                     # 1_i^obj: (n,S,S)
    pred_class = predictions[..., :classes]
    pred_boxes = ops.reshape(predictions[..., classes:], (-1, size, size, num_boxes, 5))
    pred_box, pred_confidence = pred_boxes[..., 0:4], pred_boxes[..., 4]

    offsets = ops.convert_to_tensor(cell_offsets(size), dtype=dtype)

    def in_image(box):  # cell-relative centre → fraction of the image; w, h already are
        return centres_to_corners_tensor(ops.concatenate([(box[..., 0:2] + offsets) / size, box[..., 2:4]], axis=-1))

    iou = ops.stop_gradient(iou_tensor(in_image(pred_box), in_image(true_box)))              # (n,S,S,B)
    responsible = ops.one_hot(ops.argmax(iou, axis=-1), num_boxes, dtype=dtype) * has_object[..., None]  # 1_ij^obj

    def sum_cells(values):
        return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)

    squared_xy = ops.sum(ops.square(pred_box[..., 0:2] - true_box[..., 0:2]), axis=-1)
    squared_sqrt_wh = ops.sum(
        ops.square(ops.sqrt(pred_box[..., 2:4] + SQRT_EPSILON) - ops.sqrt(true_box[..., 2:4] + SQRT_EPSILON)), axis=-1)
    return {
        "xy_loss": lambda_coord * sum_cells(responsible * squared_xy),
        "wh_loss": lambda_coord * sum_cells(responsible * squared_sqrt_wh),
        "object_loss": sum_cells(responsible * ops.square(iou - pred_confidence)),
        "no_object_loss": lambda_noobj * sum_cells((1.0 - responsible) * ops.square(pred_confidence)),
        "class_loss": sum_cells(has_object * ops.sum(ops.square(true_class - pred_class), axis=-1)),
    }


def total_loss(terms: dict[str, object]):
    """The sum of the terms, averaged over the batch."""
    return ops.mean(sum(terms.values()))


def yolo_loss(targets, predictions, spec: GridSpec, lambda_coord: float = LAMBDA_COORD,
              lambda_noobj: float = LAMBDA_NOOBJ):
    """The YOLO v1 loss: the five terms of :func:`yolo_loss_terms`, summed and averaged over the batch."""
    return total_loss(yolo_loss_terms(targets, predictions, spec, lambda_coord, lambda_noobj))


# --- the detector ---------------------------------------------------------------------------------------------------


class YoloDetector(keras.Model):
    """The network of :func:`build_yolo_network`, trained on the YOLO loss with a tracker for each of its terms.

    ``fit`` takes images and the targets of :func:`encode_dataset`; its history has ``loss`` and the names of
    :data:`LOSS_TERMS` (with ``val_`` versions when there is validation data).
    """

    def __init__(self, spec: GridSpec = GridSpec(), lambda_coord: float = LAMBDA_COORD,
                 lambda_noobj: float = LAMBDA_NOOBJ, head: str = "conv", **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec, self.head = spec, head
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj
        self.network = build_yolo_network(spec, head)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = [keras.metrics.Mean(name=name) for name in LOSS_TERMS]

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, *self.term_trackers]

    def call(self, images, training: bool = False):
        return self.network(images, training=training)

    def _loss_and_terms(self, targets, predictions):
        terms = yolo_loss_terms(targets, predictions, self.spec, self.lambda_coord, self.lambda_noobj)
        return total_loss(terms), terms

    def _record(self, loss, terms) -> dict[str, object]:
        self.loss_tracker.update_state(loss)
        for tracker in self.term_trackers:
            tracker.update_state(ops.mean(terms[tracker.name]))
        return {tracker.name: tracker.result() for tracker in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        images, targets = data
        with tf.GradientTape() as tape:
            loss, terms = self._loss_and_terms(targets, self(images, training=True))
            scaled_loss = scale_for_replicas(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._record(loss, terms)

    def test_step(self, data):
        images, targets = data
        return self._record(*self._loss_and_terms(targets, self(images, training=False)))

    def get_config(self) -> dict[str, object]:
        return {"spec": dataclasses.asdict(self.spec), "lambda_coord": self.lambda_coord,
                "lambda_noobj": self.lambda_noobj, "head": self.head}

    @classmethod
    def from_config(cls, config: dict[str, object]) -> YoloDetector:
        return cls(GridSpec(**config.pop("spec")), **config)


def detect(detector: keras.Model, images: np.ndarray, spec: GridSpec, score_threshold: float = 0.05,
           iou_threshold: float = 0.5, batch_size: int = 256) -> list[Boxes]:
    """Run the detector on images and return each image's detections after non-maximum suppression."""
    predictions = detector.predict(images, batch_size=batch_size, verbose=0)
    return decode_predictions(predictions, spec, score_threshold, iou_threshold)


# --- figures -------------------------------------------------------------------------------------------------------


def plot_box_in_cell(image: np.ndarray, labels: Boxes, index: int, spec: GridSpec):
    """Two views of one box: in image coordinates over the grid (left), and in its cell's coordinates (right).

    Args:
        image: one ``(side, side, 1)`` image.
        labels: its boxes (fractions of the side); ``index`` picks the box to show.
        spec: the grid.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from mlbook.plot import PALETTE

    size = spec.grid_size
    centre_x, centre_y, width, height = corners_to_centres(labels.boxes[index : index + 1])[0]
    row, col = int(cell_of(centre_y, size)), int(cell_of(centre_x, size))
    x, y = centre_x * size - col, centre_y * size - row
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.3))
    # the same picture twice: image units (a fraction of the side), then cell units with the cell at [0, 1]²
    for ax, scale, shift in ((axes[0], 1.0, (0.0, 0.0)), (axes[1], float(size), (col, row))):
        extent = (-shift[0], scale - shift[0], scale - shift[1], -shift[1])
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, extent=extent)
        for line in range(1, size):
            ax.axvline(line * scale / size - shift[0], color="white", linewidth=0.6, alpha=0.6)
            ax.axhline(line * scale / size - shift[1], color="white", linewidth=0.6, alpha=0.6)
        cell_x, cell_y = col * scale / size - shift[0], row * scale / size - shift[1]
        ax.add_patch(Rectangle((cell_x, cell_y), scale / size, scale / size, facecolor=PALETTE[4], alpha=0.35))
        box_x, box_y = centre_x * scale - shift[0], centre_y * scale - shift[1]
        ax.add_patch(Rectangle((box_x - width * scale / 2, box_y - height * scale / 2), width * scale,
                               height * scale, fill=False, edgecolor=PALETTE[5], linewidth=1.8))
        ax.plot(box_x, box_y, "o", color=PALETTE[1], markersize=6)
        ax.grid(False)
    axes[0].set(title=f"image: centre ({centre_x:.3f}, {centre_y:.3f}), size {width:.3f} × {height:.3f}",
                xlabel="x (fraction of the width)", ylabel="y (fraction of the height)")
    guide = {"color": PALETTE[1], "linestyle": ":", "linewidth": 1.4}
    axes[1].plot([0, x], [y, y], **guide)
    axes[1].plot([x, x], [0, y], **guide)
    axes[1].text(x / 2, y - 0.04, "x", color=PALETTE[1], ha="center", va="bottom", fontsize=11)
    axes[1].text(x + 0.03, y / 2, "y", color=PALETTE[1], ha="left", va="center", fontsize=11)
    margin = 0.25
    axes[1].set(xlim=(min(0, x - width * size / 2) - margin, max(1, x + width * size / 2) + margin),
                ylim=(max(1, y + height * size / 2) + margin, min(0, y - height * size / 2) - margin),
                title=f"cell (row {row}, column {col}): centre ({x:.3f}, {y:.3f})",
                xlabel="x (cells, from the cell's left edge)", ylabel="y (cells, from the cell's top edge)")
    fig.tight_layout()
    return fig


# --- the chapter's settings and training -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class YoloSettings:
    """Sizes of the chapter's data and training run (one instance per profile)."""

    num_train: int
    num_epochs: int
    num_validation: int = 300
    num_test: int = evaluation_only(500)
    image_size: int = 64
    grid_size: int = 4
    num_boxes: int = 2
    head: str = "conv"
    max_objects: int = 3
    font_sizes: tuple[int, int] = (9, 20)
    batch_size: int = 32
    learning_rate: float = 3e-3
    lambda_coord: float = LAMBDA_COORD
    lambda_noobj: float = LAMBDA_NOOBJ
    score_threshold: float = evaluation_only(0.05)
    display_threshold: float = evaluation_only(0.3)
    nms_iou_threshold: float = evaluation_only(0.5)

    @property
    def spec(self) -> GridSpec:
        return GridSpec(self.image_size, self.grid_size, len(CLASS_NAMES), self.num_boxes)

    def training_config(self, seed: int) -> dict[str, object]:
        """Everything that changes the trained weights (the weights cache's key): no evaluation settings."""
        return weights_config(self, seed=seed)

    def generate(self, split: str, seed: int) -> DetectionDataset:
        """The ``train``, ``validation`` or ``test`` images; each split has its own seed, so they never coincide."""
        sizes = {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}
        if split not in sizes:
            raise ValueError(f"expected a split in {sorted(sizes)}, got {split!r}")
        return generate_word_images(sizes[split], self.spec, font_sizes=self.font_sizes,
                                    max_objects=self.max_objects, seed=seed * 10 + sorted(sizes).index(split))


def train_detector(detector: YoloDetector, cfg: YoloSettings, seed: int, callbacks: Sequence = ()) -> dict:
    """Generate the training and validation images and train ``detector`` with Adam and a cosine-decayed rate.

    Returns:
        The Keras history (per epoch: ``loss``, the five terms, and their ``val_`` versions).
    """
    train_set, validation_set = cfg.generate("train", seed), cfg.generate("validation", seed)
    steps = cfg.num_epochs * int(np.ceil(cfg.num_train / cfg.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps)
    detector.compile(optimizer=keras.optimizers.Adam(schedule), steps_per_execution=STEPS_PER_EXECUTION)
    history = detector.fit(
        train_set.images, encode_dataset(train_set.labels, cfg.spec),
        validation_data=(validation_set.images, encode_dataset(validation_set.labels, cfg.spec)),
        batch_size=cfg.batch_size, epochs=cfg.num_epochs, shuffle=True, verbose=0, callbacks=list(callbacks),
    )
    return history.history


SETTINGS: dict[str, YoloSettings] = {
    "quick": YoloSettings(num_train=8_000, num_epochs=8),
    "full": YoloSettings(num_train=20_000, num_epochs=40, num_validation=1_000, num_test=2_000),
}
