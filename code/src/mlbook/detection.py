"""Generic object-detection tools: boxes, intersection over union, non-maximum suppression and average precision.

Boxes are ``(x_min, y_min, x_max, y_max)`` rows, in any unit as long as every box compared uses the same one
(the YOLO chapter uses fractions of the image side). Everything here works on NumPy arrays, except the functions
whose names end in ``_tensor``: they are the keras.ops twins of NumPy ones, for losses that are differentiated.

References:
    Everingham, M. et al. (2010). The PASCAL Visual Object Classes (VOC) Challenge. *IJCV* 88, 303–338 (average
    precision, the 0.5 IoU threshold). Lin, T.-Y. et al. (2014). Microsoft COCO: Common Objects in Context.
    *ECCV* (stricter IoU thresholds such as 0.75, greedy matching by score).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from keras import ops

if TYPE_CHECKING:
    import tensorflow as tf

#: Added to a union before dividing, so that two empty boxes give an IoU of 0 instead of 0/0.
IOU_EPSILON = 1e-12


def as_boxes(boxes: np.ndarray | Sequence[Sequence[float]], name: str = "boxes") -> np.ndarray:
    """Return ``boxes`` as a float64 ``(k, 4)`` array of ``(x_min, y_min, x_max, y_max)`` rows.

    Raises:
        ValueError: if the shape is not ``(k, 4)`` or a box has ``x_max < x_min`` or ``y_max < y_min``.
    """
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"expected {name} of shape (k, 4) as (x_min, y_min, x_max, y_max), got {array.shape}")
    if np.any(array[:, 2] < array[:, 0]) or np.any(array[:, 3] < array[:, 1]):
        raise ValueError(f"expected {name} with x_max >= x_min and y_max >= y_min, got {array.tolist()}")
    return array


def centres_to_corners(boxes: np.ndarray) -> np.ndarray:
    """``(x_centre, y_centre, width, height)`` rows to ``(x_min, y_min, x_max, y_max)`` rows."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    half = boxes[:, 2:] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def centres_to_corners_tensor(boxes: tf.Tensor) -> tf.Tensor:
    """:func:`centres_to_corners` in keras.ops, on ``(..., 4)`` tensors of ``(x_centre, y_centre, w, h)``."""
    half = boxes[..., 2:4] / 2
    return ops.concatenate([boxes[..., 0:2] - half, boxes[..., 0:2] + half], axis=-1)


def corners_to_centres(boxes: np.ndarray) -> np.ndarray:
    """``(x_min, y_min, x_max, y_max)`` rows to ``(x_centre, y_centre, width, height)`` rows."""
    boxes = as_boxes(boxes)
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of each ``(x_min, y_min, x_max, y_max)`` row."""
    boxes = as_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def pairwise_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``boxes_a`` with every box of ``boxes_b``.

    The intersection is ``min(maxes) − max(mins)`` along each axis, clipped at 0: right for disjoint, touching,
    partly overlapping and nested boxes alike.

    Implements: eq-yolo-iou

    Returns:
        An ``(len(boxes_a), len(boxes_b))`` array with values in [0, 1].
    """
    a, b = as_boxes(boxes_a, "boxes_a"), as_boxes(boxes_b, "boxes_b")
    lower = np.maximum(a[:, None, :2], b[None, :, :2])
    upper = np.minimum(a[:, None, 2:], b[None, :, 2:])
    sides = np.clip(upper - lower, 0.0, None)
    intersection = sides[..., 0] * sides[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - intersection
    return intersection / (union + IOU_EPSILON)


def iou_tensor(corners_a: tf.Tensor, corners_b: tf.Tensor) -> tf.Tensor:
    """Element-wise IoU of two broadcastable ``(..., 4)`` tensors of corners, in keras.ops. Given
    ``corners_a[:, None]`` and ``corners_b[None]`` it is :func:`pairwise_iou` of the two lists of boxes.

    The intersection's sides are ``min(maxes) − max(mins)`` clipped at 0, so disjoint, touching, nested and
    identical boxes all come out right.

    Implements: eq-yolo-iou
    """
    lower = ops.maximum(corners_a[..., 0:2], corners_b[..., 0:2])
    upper = ops.minimum(corners_a[..., 2:4], corners_b[..., 2:4])
    sides = ops.maximum(upper - lower, 0.0)
    intersection = sides[..., 0] * sides[..., 1]

    def area(corners):
        return (corners[..., 2] - corners[..., 0]) * (corners[..., 3] - corners[..., 1])

    return intersection / (area(corners_a) + area(corners_b) - intersection + IOU_EPSILON)


@dataclasses.dataclass(frozen=True)
class Boxes:
    """The labelled boxes of one image: ground truth (``scores`` is ``None``) or detections (with scores).

    Attributes:
        boxes: ``(k, 4)`` float64 corners ``(x_min, y_min, x_max, y_max)``.
        classes: ``(k,)`` integer class indices.
        scores: ``(k,)`` confidence scores, or ``None`` for ground truth.
    """

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = as_boxes(self.boxes)
        classes = np.asarray(self.classes, dtype=np.int64).reshape(-1)
        if len(classes) != len(boxes):
            raise ValueError(f"expected one class per box ({len(boxes)}), got {len(classes)}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "classes", classes)
        if self.scores is not None:
            scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
            if len(scores) != len(boxes):
                raise ValueError(f"expected one score per box ({len(boxes)}), got {len(scores)}")
            object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> Boxes:
        """The boxes at the indices (or boolean mask) ``keep``."""
        return Boxes(self.boxes[keep], self.classes[keep], None if self.scores is None else self.scores[keep])


def non_max_suppression(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5, classes: np.ndarray | None = None
) -> np.ndarray:
    """Greedy non-maximum suppression: keep the best-scoring box, drop the boxes that overlap it, repeat.

    Args:
        boxes: ``(k, 4)`` corners.
        scores: ``(k,)`` scores; higher is better (ties keep the earlier box).
        iou_threshold: a box whose IoU with a kept box is *above* this is suppressed.
        classes: if given, only boxes of the same class suppress each other.

    Returns:
        The indices of the kept boxes, best score first.
    """
    boxes = as_boxes(boxes)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"expected one score per box ({len(boxes)}), got {len(scores)}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"expected an iou_threshold in [0, 1], got {iou_threshold}")
    same_class = np.ones((len(boxes),) * 2, bool) if classes is None else np.equal.outer(classes, classes)
    overlaps = pairwise_iou(boxes, boxes)
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    kept = []
    for index in order:
        if suppressed[index]:
            continue
        kept.append(index)
        suppressed |= (overlaps[index] > iou_threshold) & same_class[index]
    return np.asarray(kept, dtype=np.int64)


def class_aware_nms(detections: Boxes, iou_threshold: float = 0.5) -> Boxes:
    """Class-aware :func:`non_max_suppression` of one image's scored detections."""
    if detections.scores is None:
        raise ValueError("class_aware_nms needs scored detections, got boxes with scores=None")
    return detections.select(
        non_max_suppression(detections.boxes, detections.scores, iou_threshold, detections.classes)
    )


def match_detections(
    detections: Sequence[Boxes], truths: Sequence[Boxes], class_id: int, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mark one class's detections over a data set as true or false positives.

    Detections are taken in decreasing score over all images. Each is matched to the unmatched ground-truth box
    of its image and class with the largest IoU; it is a true positive if that IoU is at least
    ``iou_threshold``, otherwise (or if every such box is already matched) a false positive.

    Returns:
        ``(scores, is_true_positive, num_truths)``: the detections' scores in decreasing order, a boolean array
        aligned with them, and the number of ground-truth boxes of the class.
    """
    if len(detections) != len(truths):
        raise ValueError(f"expected detections for each of the {len(truths)} images, got {len(detections)}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"expected an iou_threshold in (0, 1], got {iou_threshold}")
    entries = []  # (score, image index, box)
    for image, found in enumerate(detections):
        if found.scores is None:
            raise ValueError(f"detections of image {image} have no scores")
        for box, score in zip(found.boxes[found.classes == class_id], found.scores[found.classes == class_id]):
            entries.append((score, image, box))
    entries.sort(key=lambda entry: -entry[0])  # sort is stable: equal scores keep image order
    truth_boxes = [truth.boxes[truth.classes == class_id] for truth in truths]
    matched = [np.zeros(len(boxes), dtype=bool) for boxes in truth_boxes]
    is_true_positive = np.zeros(len(entries), dtype=bool)
    for rank, (_, image, box) in enumerate(entries):
        if len(truth_boxes[image]) == 0:
            continue
        overlaps = np.where(matched[image], -1.0, pairwise_iou(box[None], truth_boxes[image])[0])
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold:
            matched[image][best] = True
            is_true_positive[rank] = True
    scores = np.array([entry[0] for entry in entries], dtype=np.float64)
    return scores, is_true_positive, sum(len(boxes) for boxes in truth_boxes)


def precision_recall(is_true_positive: np.ndarray, num_truths: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, for detections ranked by decreasing score."""
    is_true_positive = np.asarray(is_true_positive, dtype=bool)
    true_positives = np.cumsum(is_true_positive)
    ranks = np.arange(1, len(is_true_positive) + 1)
    recall = true_positives / num_truths if num_truths > 0 else np.full(len(ranks), np.nan)
    return true_positives / ranks, recall


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the precision–recall curve, with precision made non-increasing (all-point interpolation).

    This is PASCAL VOC's definition since 2010: ``AP = Σ (r_i − r_{i−1}) · max_{j ≥ i} p_j``, over the ranks
    where recall grows, starting from ``r_0 = 0``.

    Implements: eq-yolo-ap
    """
    precision, recall = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    if precision.shape != recall.shape or precision.ndim != 1:
        raise ValueError(f"expected 1-D precision and recall of equal length, got {precision.shape}, {recall.shape}")
    if len(recall) == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


@dataclasses.dataclass(frozen=True)
class DetectionScores:
    """Average precision per IoU threshold and class, and the precision–recall curves behind it.

    Attributes:
        ap: ``{iou_threshold: (num_classes,) array}``; NaN for a class with no ground-truth box.
        curves: ``{(iou_threshold, class_id): (precision, recall)}``.
        num_truths: ground-truth boxes per class.
    """

    ap: dict[float, np.ndarray]
    curves: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]]
    num_truths: np.ndarray

    def mean_ap(self, iou_threshold: float) -> float:
        """mAP: the mean AP over the classes that have ground-truth boxes."""
        if iou_threshold not in self.ap:
            raise KeyError(f"no AP computed at IoU {iou_threshold}; thresholds are {sorted(self.ap)}")
        return float(np.nanmean(self.ap[iou_threshold]))


def evaluate_detections(
    detections: Sequence[Boxes],
    truths: Sequence[Boxes],
    num_classes: int,
    iou_thresholds: Sequence[float] = (0.5, 0.75),
) -> DetectionScores:
    """AP of every class at every IoU threshold (mAP@0.5 is VOC's measure; 0.75 asks for tight boxes).

    Args:
        detections: one scored :class:`Boxes` per image (after non-maximum suppression).
        truths: one ground-truth :class:`Boxes` per image, in the same order.
        num_classes: class indices run from 0 to ``num_classes − 1``.
    """
    ap: dict[float, np.ndarray] = {}
    curves: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]] = {}
    num_truths = np.zeros(num_classes, dtype=np.int64)
    for threshold in iou_thresholds:
        ap[threshold] = np.full(num_classes, np.nan)
        for class_id in range(num_classes):
            _, is_true_positive, num_truths[class_id] = match_detections(detections, truths, class_id, threshold)
            if num_truths[class_id] == 0:
                continue
            precision, recall = precision_recall(is_true_positive, int(num_truths[class_id]))
            curves[threshold, class_id] = (precision, recall)
            ap[threshold][class_id] = average_precision(precision, recall)
    return DetectionScores(ap, curves, num_truths)


def detection_grid(
    images: np.ndarray,
    found: Sequence[Boxes],
    class_names: Sequence[str],
    ncols: int = 6,
    truths: Sequence[Boxes] | None = None,
    cell_size: float = 1.6,
    titles: Sequence[str] | None = None,
):
    """A grid of images with their boxes (fractions of the image side), optionally over dashed ground truth.

    Args:
        images: ``(n, side, side)`` or ``(n, side, side, 1 | 3)`` images.
        found: one :class:`Boxes` per image (ground truth or detections), drawn solid and labelled.
        class_names: the name of each class index.
        ncols: images per row.
        truths: if given, one ground-truth :class:`Boxes` per image, drawn dashed in grey under ``found``.
        cell_size: inches per image.
        titles: one short title per image, or ``None``.

    Returns:
        The matplotlib figure.
    """
    from mlbook.plot import image_grid

    if len(found) != len(images) or (truths is not None and len(truths) != len(images)):
        raise ValueError(f"expected one Boxes per image ({len(images)}), got {len(found)}"
                         + ("" if truths is None else f" and {len(truths)} truths"))
    fig = image_grid(images, ncols=ncols, titles=titles, vmin=0.0, vmax=1.0, cell_size=cell_size)
    fig.subplots_adjust(wspace=0.06, hspace=0.06 if titles is None else 0.25)
    side = np.asarray(images).shape[2]
    for index, ax in enumerate(fig.axes[: len(images)]):
        if truths is not None:
            draw_boxes(ax, truths[index], class_names, scale=side, colours=["#bbbbbb"], linestyle="--",
                       show_labels=False)
        draw_boxes(ax, found[index], class_names, scale=side)
    return fig


def draw_boxes(
    ax,
    found: Boxes,
    class_names: Sequence[str],
    scale: float = 1.0,
    colours: Sequence[str] | None = None,
    linestyle: str = "-",
    show_labels: bool = True,
) -> None:
    """Draw labelled boxes on a matplotlib axes that shows an image.

    Args:
        ax: the axes (``imshow`` already called, so pixel ``(i, j)`` is centred on ``(j, i)``).
        found: the boxes; their scores, if any, are printed after the class name.
        class_names: the name of each class index.
        scale: multiplies the box coordinates (e.g. the image side, for boxes in fractions of it).
        colours: one colour per class (default: the book's palette).
        linestyle: matplotlib line style of the rectangles.
        show_labels: write the class name (and score) above each box.
    """
    from matplotlib.patches import Rectangle

    from mlbook.plot import PALETTE

    colours = list(colours) if colours is not None else list(PALETTE)
    for index, (box, class_id) in enumerate(zip(found.boxes * scale, found.classes)):
        colour = colours[int(class_id) % len(colours)]
        # pixel edges are at half-integers in imshow's coordinates
        x0, y0, x1, y1 = box - 0.5
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.3,
                               linestyle=linestyle))
        if show_labels:
            label = class_names[int(class_id)]
            if found.scores is not None:
                label += f" {found.scores[index]:.2f}"
            ax.text(x0, y0 - 0.8, label, color="white", fontsize=6.5, va="bottom",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": 0.8, "alpha": 0.85})
