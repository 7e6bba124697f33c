"""Tests of mlbook.detection: IoU on hand-computed cases, the keras.ops twins of the NumPy box maths,
non-maximum suppression, and average precision."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf

from mlbook import detection as det
from mlbook.detection import Boxes

# ---- IoU ---------------------------------------------------------------------------------------------------------

UNIT = [0.0, 0.0, 2.0, 2.0]  # a 2 × 2 square, area 4

# (box a, box b, IoU worked out by hand)
IOU_CASES = {
    "identical": (UNIT, UNIT, 1.0),
    "disjoint": (UNIT, [5.0, 5.0, 6.0, 6.0], 0.0),
    "touching edges": (UNIT, [2.0, 0.0, 4.0, 2.0], 0.0),  # they share an edge of zero area
    "touching corners": (UNIT, [2.0, 2.0, 3.0, 3.0], 0.0),
    "nested": (UNIT, [0.5, 0.5, 1.5, 1.5], 1.0 / 4.0),  # inner 1 × 1 inside 2 × 2: 1 / 4
    "partial": (UNIT, [1.0, 1.0, 3.0, 3.0], 1.0 / 7.0),  # overlap 1 × 1; union 4 + 4 − 1 = 7
    "half shifted": (UNIT, [1.0, 0.0, 3.0, 2.0], 2.0 / 6.0),  # overlap 1 × 2; union 4 + 4 − 2 = 6
    "cross": ([0.0, 1.0, 4.0, 2.0], [1.0, 0.0, 2.0, 4.0], 1.0 / 7.0),  # neither holds a corner of the other
}


@pytest.mark.parametrize("case", sorted(IOU_CASES))
@pytest.mark.equation("eq-yolo-iou")
def test_pairwise_iou_matches_hand_computed_cases(case):
    box_a, box_b, expected = IOU_CASES[case]
    # the only inexactness is the 1e-12 added to the union (relative effect < 1e-12 here)
    assert det.pairwise_iou([box_a], [box_b])[0, 0] == pytest.approx(expected, rel=1e-11, abs=1e-12)


def test_pairwise_iou_is_symmetric_and_shaped_n_by_m():
    rng = np.random.default_rng(0)
    corners = np.sort(rng.uniform(0, 1, size=(7, 2, 2)), axis=1)  # sorted: min before max on each axis
    boxes = np.concatenate([corners[:, 0], corners[:, 1]], axis=1)
    matrix = det.pairwise_iou(boxes, boxes[:5])
    assert matrix.shape == (7, 5)
    np.testing.assert_array_equal(matrix[:5], matrix[:5].T)  # same products in the same order: exactly equal
    assert np.all((matrix >= 0) & (matrix <= 1))
    np.testing.assert_allclose(np.diag(matrix[:5]), 1.0, rtol=1e-9)  # area / (area + 1e-12), areas > 1e-4


def test_iou_of_degenerate_boxes_is_zero_not_nan():
    point = [1.0, 1.0, 1.0, 1.0]
    assert det.pairwise_iou([point], [point])[0, 0] == 0.0  # 0 / (0 + ε)


def test_boxes_are_validated():
    with pytest.raises(ValueError, match=r"shape \(k, 4\).*got \(2, 3\)"):
        det.pairwise_iou(np.zeros((2, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="x_max >= x_min"):
        det.as_boxes([[2.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="one class per box"):
        Boxes(np.zeros((2, 4)), [0])


def test_centres_and_corners_convert_both_ways():
    centres = np.array([[0.5, 0.25, 0.2, 0.1], [0.1, 0.9, 0.2, 0.2]])
    corners = det.centres_to_corners(centres)
    np.testing.assert_allclose(corners[0], [0.4, 0.2, 0.6, 0.3], rtol=1e-15)  # a few ulps at most
    np.testing.assert_allclose(det.corners_to_centres(corners), centres, rtol=1e-15, atol=1e-16)


# ---- the keras.ops twins (``_tensor``) of the NumPy box maths -----------------------------------------------------


def random_corners(rng: np.random.Generator, count: int) -> np.ndarray:
    """Boxes with centres in [0.1, 0.9] and sides up to 0.45: many pairs overlap, many do not."""
    return det.centres_to_corners(rng.uniform(0.1, 0.9, (count, 4)) * [1, 1, 0.5, 0.5])


def test_centres_to_corners_tensor_agrees_with_its_numpy_twin():
    centres = np.random.default_rng(1).uniform(0.1, 0.9, (50, 4))
    ours = keras.ops.convert_to_numpy(det.centres_to_corners_tensor(tf.constant(centres)))
    np.testing.assert_array_equal(ours, det.centres_to_corners(centres))  # the same float64 operations


@pytest.mark.equation("eq-yolo-iou")
def test_iou_tensor_agrees_with_pairwise_iou_on_random_boxes():
    rng = np.random.default_rng(2)
    a, b = random_corners(rng, 50), random_corners(rng, 50)
    elementwise = keras.ops.convert_to_numpy(det.iou_tensor(tf.constant(a), tf.constant(b)))
    np.testing.assert_allclose(elementwise, np.diag(det.pairwise_iou(a, b)), rtol=1e-12, atol=1e-15)  # same formula
    assert (elementwise > 0).sum() > 5  # the sample includes overlapping pairs, not just disjoint ones
    broadcast = keras.ops.convert_to_numpy(det.iou_tensor(tf.constant(a[:, None]), tf.constant(b[None])))
    np.testing.assert_allclose(broadcast, det.pairwise_iou(a, b), rtol=1e-12, atol=1e-15)


# ---- non-maximum suppression --------------------------------------------------------------------------------------


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 1, 10, 11]], dtype=float)
    scores = np.array([0.6, 0.9, 0.5, 0.7])
    # box 1 (0.9) overlaps boxes 0 and 3 with IoU 81/119 and 90/110, both > 0.5; box 2 is far away
    np.testing.assert_array_equal(det.non_max_suppression(boxes, scores, 0.5), [1, 2])
    # with a threshold above every overlap, nothing is suppressed, and the order is by score
    np.testing.assert_array_equal(det.non_max_suppression(boxes, scores, 0.95), [1, 3, 0, 2])


def test_nms_suppresses_only_above_the_threshold_not_at_it():
    boxes = np.array([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    scores = np.array([0.9, 0.8])
    overlap = float(det.pairwise_iou(boxes[:1], boxes[1:])[0, 0])  # the very number NMS compares
    np.testing.assert_array_equal(det.non_max_suppression(boxes, scores, overlap), [0, 1])
    np.testing.assert_array_equal(det.non_max_suppression(boxes, scores, np.nextafter(overlap, 0.0)), [0])


def test_nms_with_classes_only_suppresses_within_a_class():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7])
    np.testing.assert_array_equal(det.non_max_suppression(boxes, scores, 0.5, classes=np.array([0, 1, 0])), [0, 1])
    np.testing.assert_array_equal(det.non_max_suppression(boxes, scores, 0.5), [0])


def test_nms_checks_its_arguments():
    with pytest.raises(ValueError, match="one score per box"):
        det.non_max_suppression(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match=r"iou_threshold in \[0, 1\]"):
        det.non_max_suppression(np.zeros((1, 4)), np.zeros(1), 1.5)


# ---- average precision --------------------------------------------------------------------------------------------


@pytest.mark.equation("eq-yolo-ap")
def test_average_precision_of_a_hand_ranked_list():
    # ranked: TP, FP, TP with 2 truths → precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # Envelope: 1, 2/3, 2/3; recall steps 1/2, 0, 1/2 → AP = 1/2 · 1 + 1/2 · 2/3 = 5/6.
    precision, recall = det.precision_recall(np.array([True, False, True]), num_truths=2)
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3], rtol=1e-15)
    np.testing.assert_allclose(recall, [1 / 2, 1 / 2, 1], rtol=1e-15)
    assert det.average_precision(precision, recall) == pytest.approx(5 / 6, rel=1e-15)


@pytest.mark.equation("eq-yolo-ap")
def test_average_precision_uses_the_precision_envelope():
    # FP, TP, TP with 2 truths: precision 0, 1/2, 2/3; the envelope lifts the first step to 2/3 → AP = 2/3
    precision, recall = det.precision_recall(np.array([False, True, True]), num_truths=2)
    assert det.average_precision(precision, recall) == pytest.approx(2 / 3, rel=1e-15)


def _truths() -> list[Boxes]:
    return [
        Boxes([[0.1, 0.1, 0.4, 0.3], [0.5, 0.5, 0.9, 0.7]], [0, 1]),
        Boxes([[0.2, 0.6, 0.5, 0.8]], [0]),
        Boxes(np.zeros((0, 4)), []),
    ]


def _as_detections(truths: list[Boxes], shift: float = 0.0) -> list[Boxes]:
    return [Boxes(t.boxes + [shift, 0, shift, 0], t.classes, np.linspace(0.9, 0.8, len(t))) for t in truths]


def test_map_is_one_for_perfect_predictions():
    scores = det.evaluate_detections(_as_detections(_truths()), _truths(), num_classes=2)
    assert scores.mean_ap(0.5) == 1.0 and scores.mean_ap(0.75) == 1.0  # exact: every precision and recall is 1
    np.testing.assert_array_equal(scores.num_truths, [2, 1])


def test_map_falls_for_shifted_predictions():
    truths = _truths()
    # shifting a 0.3-wide box by 0.05 leaves IoU 0.25 / 0.35 = 0.71: a hit at 0.5, a miss at 0.75;
    # the 0.4- and 0.3-wide boxes keep IoU 0.78 and 0.71
    shifted = det.evaluate_detections(_as_detections(truths, 0.05), truths, num_classes=2)
    assert shifted.mean_ap(0.5) == 1.0
    np.testing.assert_array_equal(shifted.ap[0.75], [0.0, 1.0])
    far = det.evaluate_detections(_as_detections(truths, 0.5), truths, num_classes=2)
    assert far.mean_ap(0.5) == 0.0


def test_duplicate_detections_count_as_false_positives():
    truths = [Boxes([[0.1, 0.1, 0.4, 0.4]], [0])]
    doubled = [Boxes([[0.1, 0.1, 0.4, 0.4], [0.1, 0.1, 0.4, 0.4]], [0, 0], [0.9, 0.8])]
    scores, is_true_positive, num_truths = det.match_detections(doubled, truths, 0, 0.5)
    np.testing.assert_array_equal(is_true_positive, [True, False])
    # the false positive comes after recall already reached 1, so AP is still 1: ranking is what AP measures
    assert det.evaluate_detections(doubled, truths, 1).mean_ap(0.5) == 1.0
    ranked_badly = [Boxes(doubled[0].boxes + [[0.5, 0, 0.5, 0], [0, 0, 0, 0]], [0, 0], [0.9, 0.8])]
    assert det.evaluate_detections(ranked_badly, truths, 1).mean_ap(0.5) == pytest.approx(0.5, rel=1e-15)


def test_wrong_class_is_a_miss_and_a_class_without_truths_is_nan():
    truths = [Boxes([[0.1, 0.1, 0.4, 0.4]], [0])]
    wrong = [Boxes([[0.1, 0.1, 0.4, 0.4]], [1], [0.9])]
    scores = det.evaluate_detections(wrong, truths, num_classes=2)
    assert scores.ap[0.5][0] == 0.0 and np.isnan(scores.ap[0.5][1])
    assert scores.mean_ap(0.5) == 0.0  # the mean skips the class with no truths
    with pytest.raises(KeyError, match="0.9"):
        scores.mean_ap(0.9)


def test_evaluation_needs_one_entry_per_image_and_scores():
    with pytest.raises(ValueError, match="each of the 3 images, got 1"):
        det.evaluate_detections(_as_detections(_truths())[:1], _truths(), 2)
    with pytest.raises(ValueError, match="no scores"):
        det.evaluate_detections(_truths(), _truths(), 2)


# ---- drawing ------------------------------------------------------------------------------------------------------


def test_detection_grid_draws_every_box_in_pixels():
    images = np.zeros((3, 20, 20, 1))
    found = [Boxes([[0.1, 0.2, 0.5, 0.6]], [1], [0.75]), Boxes(np.zeros((0, 4)), []), _truths()[0]]
    fig = det.detection_grid(images, found, ["a", "b"], ncols=3, truths=[found[2]] * 3)
    patches = [len(ax.patches) for ax in fig.axes]
    assert patches == [3, 2, 4]  # the two dashed truth boxes under each image, then its own boxes
    rectangle = fig.axes[0].patches[-1]
    # the box (0.1, 0.2)–(0.5, 0.6) of a 20-pixel image spans pixels 2..10 and 4..12; edges at half-pixels
    assert (rectangle.get_x(), rectangle.get_y(), rectangle.get_width()) == pytest.approx((1.5, 3.5, 8.0))
    assert fig.axes[0].texts[0].get_text() == "b 0.75"
    plt.close(fig)
    with pytest.raises(ValueError, match="one Boxes per image"):
        det.detection_grid(images, found[:2], ["a", "b"])
