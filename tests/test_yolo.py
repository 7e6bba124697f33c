"""Tests of mlbook.yolo: the generated data and its label files, the grid encoding, the YOLO v1 loss (hand-computed
values, finite differences, one regression test per fix in the chapter's "Notes on the original"), the network and
a short training run."""

from __future__ import annotations

import dataclasses

import keras
import matplotlib

matplotlib.use("Agg")  # no display in tests

import numpy as np
import pytest
import tensorflow as tf

from mlbook import detection, yolo
from mlbook.detection import Boxes
from mlbook.profiles import PROFILES, select

SPEC = yolo.GridSpec()  # 64 × 64 images, 4 × 4 grid, 2 classes, 2 boxes per cell
C = SPEC.num_classes


@pytest.fixture(scope="module")
def small_set() -> yolo.DetectionDataset:
    return yolo.generate_word_images(24, SPEC, seed=3)


# ---- the generated data -------------------------------------------------------------------------------------------


def test_grid_spec_checks_its_geometry():
    assert (SPEC.cell_size, SPEC.prediction_depth, SPEC.target_depth) == (16, 12, 7)
    with pytest.raises(ValueError, match="divisible by grid_size, got 64 and 5"):
        yolo.GridSpec(grid_size=5)
    with pytest.raises(ValueError, match="positive integer num_boxes, got 0"):
        yolo.GridSpec(num_boxes=0)


def test_generator_is_repeatable_and_seeded(small_set):
    again = yolo.generate_word_images(24, SPEC, seed=3)
    np.testing.assert_array_equal(again.images, small_set.images)
    for a, b in zip(again.labels, small_set.labels):
        np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(yolo.generate_word_images(24, SPEC, seed=4).images, small_set.images)
    assert small_set.images.shape == (24, 64, 64, 1) and small_set.images.dtype == np.float32
    assert small_set.images.min() >= 0.0 and small_set.images.max() <= 1.0


def test_generated_boxes_are_tight_around_the_ink():
    data = yolo.generate_word_images(20, SPEC, noise=0.0, seed=5)
    for image, labels in zip(data.images[..., 0], data.labels):
        background = image[0, 0] if not _inside_any(0, 0, labels) else image[-1, -1]
        ink = image != background
        covered = np.zeros_like(ink)
        for x0, y0, x1, y1 in np.round(labels.boxes * 64).astype(int):
            covered[y0:y1, x0:x1] = True
            box_ink = ink[y0:y1, x0:x1]
            # tight: the first and last row and column of every box hold some ink
            assert box_ink[0].any() and box_ink[-1].any() and box_ink[:, 0].any() and box_ink[:, -1].any()
        assert not ink[~covered].any(), "ink outside every box"


def _inside_any(row: int, col: int, labels: Boxes) -> bool:
    return any(x0 <= col < x1 and y0 <= row < y1 for x0, y0, x1, y1 in labels.boxes * 64)


def test_generated_words_never_overlap_nor_share_a_cell(small_set):
    for labels in small_set.labels:
        assert 1 <= len(labels) <= 3
        overlaps = detection.pairwise_iou(labels.boxes, labels.boxes)
        np.testing.assert_array_equal(overlaps[~np.eye(len(labels), dtype=bool)], 0.0)
        centres = detection.corners_to_centres(labels.boxes)
        cells = set(zip(yolo.cell_of(centres[:, 1], 4), yolo.cell_of(centres[:, 0], 4)))
        assert len(cells) == len(labels)
    assert np.all(small_set.num_objects > 0)  # both words appear


def test_generator_rejects_a_spec_with_another_class_count():
    with pytest.raises(ValueError, match=r"num_classes == len\(class_names\) \(2\), got 3"):
        yolo.generate_word_images(1, yolo.GridSpec(num_classes=3))


# ---- label files --------------------------------------------------------------------------------------------------


def test_label_file_round_trip(small_set):
    for labels in small_set.labels:
        text = yolo.format_label_file(labels)
        assert len(text.splitlines()) == len(labels)
        back = yolo.parse_label_file(text, num_classes=C)
        np.testing.assert_array_equal(back.classes, labels.classes)
        # six decimals per centre and size: each corner is off by at most 1.5e-6 (half a unit, 1.5 roundings)
        np.testing.assert_allclose(back.boxes, labels.boxes, atol=1.5e-6)


def test_label_file_format_is_darknet_centre_and_size():
    labels = Boxes([[0.25, 0.5, 0.75, 0.625]], [1])
    assert yolo.format_label_file(labels) == "1 0.500000 0.562500 0.500000 0.125000\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [("0 0.5 0.5 0.1\n", "line 1: expected 5 fields"), ("\n# comment\n2 0.5 0.5 0.1 0.1\n", r"line 3: .*0\.\.1, got 2"),
     ("0 0.95 0.5 0.2 0.1\n", "line 1: expected a box inside the image")],
)
def test_label_file_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        yolo.parse_label_file(text, num_classes=2)


def test_dataset_folder_round_trip(small_set, tmp_path):
    paths = yolo.write_dataset(tmp_path, small_set)
    assert paths[0].name == "image_00000.png" and (tmp_path / "image_00000.txt").is_file()
    assert (tmp_path / "classes.txt").read_text() == "chat\nrat\n"
    back = yolo.read_dataset(tmp_path)
    # the generator quantises to 8 bits, and the PNG stores those 8 bits: float32 round-off only
    np.testing.assert_allclose(back.images, small_set.images, atol=1e-7)
    assert back.class_names == yolo.CLASS_NAMES
    (tmp_path / "image_00003.txt").unlink()
    with pytest.raises(FileNotFoundError, match="image_00003.txt"):
        yolo.read_dataset(tmp_path)


# ---- the grid encoding ----------------------------------------------------------------------------------------------


def test_cell_offsets_match_the_original_listing_for_a_2x2_grid():
    # the post's offsets, cell by cell in reading order, for 2 boxes: [[0,0],[0,0]], [[1,0],[1,0]], ...
    offsets = np.broadcast_to(yolo.cell_offsets(2), (2, 2, 2, 2)).reshape(4, 2, 2)
    np.testing.assert_array_equal(offsets, [[[0, 0]] * 2, [[1, 0]] * 2, [[0, 1]] * 2, [[1, 1]] * 2])


def test_encode_then_decode_gives_the_boxes_back(small_set):
    targets = yolo.encode_dataset(small_set.labels, SPEC)
    assert targets.shape == (24, 4, 4, 7)
    for target, labels in zip(targets, small_set.labels):
        back = yolo.decode_target(target, SPEC)
        order, back_order = np.lexsort(labels.boxes.T), np.lexsort(back.boxes.T)
        np.testing.assert_array_equal(back.classes[back_order], labels.classes[order])
        # float32 storage of cell-relative values: ~1e-7 relative to the image side
        np.testing.assert_allclose(back.boxes[back_order], labels.boxes[order], atol=1e-6)
    x_y = targets[..., C : C + 2][targets[..., C + 4] == 1]
    assert np.all((x_y >= 0) & (x_y < 1)), "x, y must be relative to the cell that holds the centre"


@pytest.mark.equation("eq-yolo-encoding")
def test_encoding_by_hand():
    # a box centred at (0.40, 0.70) of the image, 0.2 × 0.1: column 1 (0.40 · 4 = 1.6), row 2 (0.70 · 4 = 2.8)
    target = yolo.encode_labels(Boxes(detection.centres_to_corners([[0.40, 0.70, 0.2, 0.1]]), [1]), SPEC)
    np.testing.assert_allclose(target[2, 1], [0, 1, 0.6, 0.8, 0.2, 0.1, 1], atol=1e-6)  # float32 of 1.6 − 1 etc.
    assert target.sum() == pytest.approx(target[2, 1].sum())  # every other cell is empty


def test_two_objects_in_one_cell_are_refused():
    boxes = Boxes([[0.0, 0.0, 0.1, 0.1], [0.1, 0.1, 0.2, 0.2]], [0, 1])
    with pytest.raises(ValueError, match=r"cell \(row 0, column 0\)"):
        yolo.encode_labels(boxes, SPEC)


# ---- the loss -----------------------------------------------------------------------------------------------------


def perfect_prediction(targets: np.ndarray, spec: yolo.GridSpec, seed: int = 0) -> np.ndarray:
    """A prediction with zero loss: the true class and box in predictor 0 of each object cell with confidence 1;
    every other predictor a random box with confidence 0; random class probabilities in empty cells."""
    rng = np.random.default_rng(seed)
    classes, num_boxes = spec.num_classes, spec.num_boxes
    prediction = np.empty(targets.shape[:3] + (spec.prediction_depth,))
    has_object = targets[..., classes + 4] == 1
    prediction[..., :classes] = np.where(has_object[..., None], targets[..., :classes],
                                         rng.uniform(0.1, 0.9, targets.shape[:3] + (classes,)))
    boxes = rng.uniform(0.1, 0.9, targets.shape[:3] + (num_boxes, 5))
    boxes[..., 4] = 0.0
    boxes[has_object, 0, :4] = targets[has_object][:, classes : classes + 4]
    boxes[has_object, 0, 4] = 1.0
    prediction[..., classes:] = boxes.reshape(targets.shape[:3] + (5 * num_boxes,))
    return prediction


def loss_terms(targets, predictions, spec=SPEC, **kwargs) -> dict[str, np.ndarray]:
    terms = yolo.yolo_loss_terms(tf.constant(targets, tf.float64), tf.constant(predictions, tf.float64), spec,
                                 **kwargs)
    return {name: keras.ops.convert_to_numpy(value) for name, value in terms.items()}


@pytest.fixture(scope="module")
def one_image():
    """One image's target (objects at cells (0, 1) and (2, 3)) and its perfect prediction, batch of 1."""
    labels = Boxes(detection.centres_to_corners([[0.30, 0.10, 0.25, 0.12], [0.90, 0.60, 0.15, 0.10]]), [0, 1])
    targets = yolo.encode_labels(labels, SPEC)[None].astype(np.float64)
    return targets, perfect_prediction(targets, SPEC)


def test_loss_is_zero_for_a_perfect_prediction(one_image, small_set):
    terms = loss_terms(*one_image)
    assert set(terms) == set(yolo.LOSS_TERMS)
    # the only non-zero is the object term's (1 − IoU)² with IoU = A / (A + 1e-12): below 1e-20
    assert all(np.all(np.abs(value) < 1e-18) for value in terms.values()), terms
    targets = yolo.encode_dataset(small_set.labels, SPEC).astype(np.float64)
    many = loss_terms(targets, perfect_prediction(targets, SPEC, seed=1))
    assert max(np.abs(value).max() for value in many.values()) < 1e-18


BOX0 = C  # index of predictor 0's x in a cell's prediction; its confidence is at BOX0 + 4, predictor 1 starts at C + 5


@pytest.mark.parametrize(
    ("cell", "index", "value", "term", "expected"),
    [
        # x of the responsible box: 0.2 (cell units) → λ_coord · 0.1² (the object term moves too: the IoU falls)
        ((0, 1), BOX0, "+0.1", "xy_loss", 5.0 * 0.1**2),
        # w: 0.25 → 0.36 gives λ_coord · (√0.36 − √0.25)² = 5 · 0.1²  (ε = 1e-6 inside both roots: < 1e-6 effect)
        ((0, 1), BOX0 + 2, "+0.11", "wh_loss", 5.0 * 0.1**2),
        ((0, 1), BOX0 + 4, "0.6", "object_loss", 0.4**2),  # responsible confidence 0.6, target IoU 1
        ((3, 3), BOX0 + 4, "0.8", "no_object_loss", 0.5 * 0.8**2),  # a confident empty cell: λ_noobj · 0.8²
        ((0, 1), C + 5 + 4, "0.5", "no_object_loss", 0.5 * 0.5**2),  # the other predictor of an object cell
        ((2, 3), 0, "0.3", "class_loss", 0.3**2),  # p(chat) = 0.3 in a "rat" cell
    ],
)
@pytest.mark.equation("eq-yolo-loss")
def test_each_term_grows_when_its_part_is_perturbed(one_image, cell, index, value, term, expected):
    targets, prediction = one_image
    perturbed = prediction.copy()
    old = perturbed[0, cell[0], cell[1], index]
    perturbed[0, cell[0], cell[1], index] = old + float(value) if value.startswith("+") else float(value)
    terms = loss_terms(targets, perturbed)
    assert terms[term][0] == pytest.approx(expected, rel=1e-5)  # the ε = 1e-6 under the roots: ~1e-6 relative
    untouched = {"xy_loss", "wh_loss", "no_object_loss", "class_loss"} - {term}
    assert all(abs(terms[name][0]) < 1e-18 for name in untouched), terms  # only the targeted term moved
    total = keras.ops.convert_to_numpy(yolo.yolo_loss(tf.constant(targets), tf.constant(perturbed), SPEC))
    assert total > expected * (1 - 1e-5)


def test_no_object_term_penalises_confident_empty_cells(one_image):
    """Regression: the original multiplied every confidence error by 1_obj, so empty cells were never trained."""
    targets, prediction = one_image
    confident = prediction.copy()
    empty = targets[0, ..., C + 4] == 0
    confident[0, empty, BOX0 + 4] = 0.9
    loss = loss_terms(targets, confident)["no_object_loss"][0]
    assert loss == pytest.approx(0.5 * 0.9**2 * empty.sum(), rel=1e-12)  # 14 empty cells, one confident box each
    assert loss_terms(targets, confident, lambda_noobj=0.0)["no_object_loss"][0] == 0.0


@pytest.mark.equation("eq-yolo-loss")
def test_size_term_compares_with_the_true_width_and_height(one_image):
    """Regression: the original took the 'true' w, h from the predictions, so its size term was always 0."""
    targets, prediction = one_image
    wrong_size = prediction.copy()
    wrong_size[0, 0, 1, BOX0 + 2 : BOX0 + 4] = [0.5, 0.4]  # truth 0.25 × 0.12
    expected = 5.0 * ((np.sqrt(0.5) - np.sqrt(0.25)) ** 2 + (np.sqrt(0.4) - np.sqrt(0.12)) ** 2)
    assert loss_terms(targets, wrong_size)["wh_loss"][0] == pytest.approx(expected, rel=1e-5)  # ε under the roots


def test_confidence_target_is_a_constant_iou(one_image):
    """Regression: the original's confidence target IoU was differentiated (and its y_pred_conf undefined). Here the
    IoU depends on the predicted box, but no gradient flows through it into the box."""
    targets, prediction = one_image
    shifted = prediction.copy()
    shifted[0, 0, 1, BOX0] += 0.1
    variable = tf.Variable(shifted)
    with tf.GradientTape() as tape:
        object_loss = yolo.yolo_loss_terms(tf.constant(targets), variable, SPEC)["object_loss"][0]
    gradient = tape.gradient(object_loss, variable).numpy()[0, 0, 1]
    assert np.all(gradient[BOX0 : BOX0 + 4] == 0.0)
    assert gradient[BOX0 + 4] != 0.0  # the confidence itself is trained towards the IoU
    # ...and the IoU really does move with the box: the loss changes when x does
    assert object_loss.numpy() > 1e-3


def nested_iou_of_the_original(size_a, size_b):
    """The post's intersection: max(0, (w_a + w_b)/2 − |x_a − x_b|) per axis, for concentric boxes."""
    sides = np.maximum(0.0, (np.asarray(size_a) + size_b) / 2 - 0.0)
    intersection = sides.prod()
    return intersection / (np.prod(size_a) + np.prod(size_b) - intersection)


def test_iou_of_nested_boxes_is_the_area_ratio():
    """Regression: the original's intersection formula is only right for partial overlaps. For a 1 × 1 box inside
    a 2 × 2 box it gives 1.5² / (4 + 1 − 2.25) = 0.82 instead of 1/4."""
    outer, inner = [0.0, 0.0, 2.0, 2.0], [0.5, 0.5, 1.5, 1.5]
    ours = keras.ops.convert_to_numpy(
        detection.iou_tensor(tf.constant([outer], tf.float64), tf.constant([inner], tf.float64)))
    assert ours[0] == pytest.approx(0.25, rel=1e-11)  # the 1e-12 in the union
    assert nested_iou_of_the_original([2.0, 2.0], [1.0, 1.0]) == pytest.approx(2.25 / 2.75)


def test_loss_iou_is_in_image_units_in_every_cell():
    """Regression for the original's mixed units: x, y are cell-relative, w, h image-relative and the labels were in
    pixels. A prediction that is right in cell units must give IoU 1 (zero loss) in any cell, and a shifted one
    the IoU of the decoded boxes."""
    labels = Boxes(detection.centres_to_corners([[0.85, 0.6, 0.2, 0.15]]), [1])  # cell (row 2, column 3)
    targets = yolo.encode_labels(labels, SPEC)[None].astype(np.float64)
    prediction = perfect_prediction(targets, SPEC)
    assert sum(v[0] for v in loss_terms(targets, prediction).values()) < 1e-18
    prediction[0, 2, 3, BOX0] += 0.2  # 0.2 of a cell = 0.05 of the image
    prediction[0, 2, 3, BOX0 + 4] = 0.0  # confidence 0: the object term is then exactly IoU²
    iou_in_loss = np.sqrt(loss_terms(targets, prediction)["object_loss"][0])
    decoded = yolo.prediction_boxes(prediction[0], SPEC).boxes.reshape(4, 4, 2, 4)[2, 3, 0]
    expected = detection.pairwise_iou(decoded[None], labels.boxes)[0, 0]
    # targets are stored in float32 (≈ 6e-8 relative), the labels in float64
    assert iou_in_loss == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.15 * 0.15 / (2 * 0.2 * 0.15 - 0.15 * 0.15), rel=1e-6)  # overlap 0.15 × 0.15


def test_class_term_sees_every_class_and_any_number_of_boxes():
    """Regression: the original sliced [..., 0:2] with three class slots, and its product only broadcast for one or
    two boxes per cell. Here a third class and three boxes per cell both count."""
    spec = yolo.GridSpec(num_classes=3, num_boxes=3)
    targets = yolo.encode_labels(Boxes([[0.3, 0.3, 0.4, 0.4]], [2]), spec)[None].astype(np.float64)
    prediction = perfect_prediction(targets, spec)
    assert sum(v[0] for v in loss_terms(targets, prediction, spec).values()) < 1e-18
    prediction[0, 1, 1, 2] = 0.25  # p(class 2) in the object's cell
    assert loss_terms(targets, prediction, spec)["class_loss"][0] == pytest.approx(0.75**2, rel=1e-12)


def test_loss_checks_shapes():
    with pytest.raises(ValueError, match=r"predictions of shape \(n, 4, 4, 12\), got \(1, 4, 4, 11\)"):
        yolo.yolo_loss_terms(tf.zeros((1, 4, 4, 7)), tf.zeros((1, 4, 4, 11)), SPEC)


# Central differences in float64 with step 1e-6: truncation ~ h² |f'''| ~ 1e-12 (the square roots' third
# derivative is ~10 at w ≥ 0.1) and round-off ~ 1e-16 · |loss| / h ~ 1e-10, so 1e-7 is a wide margin that still
# catches any wrong factor.
FD_STEP, FD_ATOL = 1e-6, 1e-7


def test_loss_gradient_matches_finite_differences(small_set):
    targets = yolo.encode_dataset(small_set.labels[:3], SPEC).astype(np.float64)
    prediction = np.random.default_rng(4).uniform(0.1, 0.9, targets.shape[:3] + (SPEC.prediction_depth,))
    has_object = targets[..., C + 4] == 1
    prediction[..., C : C + 4][has_object] = targets[..., C : C + 4][has_object] + 0.05  # overlapping: IoU > 0
    # every term except the object term differentiates everything; the object term only its confidences (its
    # IoU target is constant by design: see test_confidence_target_is_a_constant_iou)
    box_coordinates = np.zeros(SPEC.prediction_depth, dtype=bool)
    for box in range(SPEC.num_boxes):
        box_coordinates[C + 5 * box : C + 5 * box + 4] = True

    def total(values: np.ndarray) -> float:
        terms = yolo.yolo_loss_terms(tf.constant(targets), tf.constant(values), SPEC)
        return float(sum(keras.ops.sum(v) for name, v in terms.items() if name != "object_loss"))

    variable = tf.Variable(prediction)
    with tf.GradientTape() as tape:
        terms = yolo.yolo_loss_terms(tf.constant(targets), variable, SPEC)
        loss = sum(keras.ops.sum(v) for v in terms.values())
    analytic = tape.gradient(loss, variable).numpy()
    rng = np.random.default_rng(5)
    picks = [tuple(int(rng.integers(n)) for n in prediction.shape) for _ in range(16)]  # mostly empty cells
    picks += [(i, r, c, k) for i, r, c in zip(*np.nonzero(has_object)) for k in range(SPEC.prediction_depth)][:24]
    for index in picks:
        step = np.zeros_like(prediction)
        step[index] = FD_STEP
        numeric = (total(prediction + step) - total(prediction - step)) / (2 * FD_STEP)
        if not box_coordinates[index[-1]]:  # confidences and classes: add the object term's own derivative
            numeric += (_object_loss(targets, prediction + step) - _object_loss(targets, prediction - step)) / (
                2 * FD_STEP)
        assert analytic[index] == pytest.approx(numeric, abs=FD_ATOL), index


def _object_loss(targets, prediction) -> float:
    terms = yolo.yolo_loss_terms(tf.constant(targets), tf.constant(prediction), SPEC)
    return float(keras.ops.sum(terms["object_loss"]))


# ---- decoding and the network -------------------------------------------------------------------------------------


def test_decoding_a_perfect_prediction_gives_map_one(small_set):
    targets = yolo.encode_dataset(small_set.labels, SPEC)
    found = yolo.decode_predictions(perfect_prediction(targets, SPEC), SPEC, score_threshold=0.05)
    scores = detection.evaluate_detections(found, small_set.labels, C)
    assert scores.mean_ap(0.5) == 1.0 and scores.mean_ap(0.75) == 1.0


def test_prediction_boxes_are_scored_and_suppressed():
    prediction = np.zeros((4, 4, SPEC.prediction_depth))
    prediction[1, 1, :C] = [0.2, 0.8]  # "rat"
    prediction[1, 1, C:] = [0.5, 0.5, 0.25, 0.25, 0.9, 0.55, 0.5, 0.25, 0.25, 0.6]  # two nearly equal boxes
    everything = yolo.prediction_boxes(prediction, SPEC)
    assert len(everything) == 4 * 4 * 2
    np.testing.assert_allclose(np.sort(everything.scores)[-2:], [0.6 * 0.8, 0.9 * 0.8])
    (kept,) = yolo.decode_predictions(prediction[None], SPEC, score_threshold=0.1)
    assert len(kept) == 1 and kept.classes[0] == 1 and kept.scores[0] == pytest.approx(0.72)
    # cell (1, 1), centre (0.5, 0.5) of the cell → (1.5 / 4, 1.5 / 4) of the image, 0.25 wide
    np.testing.assert_allclose(kept.boxes[0], [0.25, 0.25, 0.5, 0.5], atol=1e-12)


def test_network_maps_height_width_channels_to_the_grid():
    network = yolo.build_yolo_network(SPEC)
    assert network.input_shape == (None, 64, 64, 1)
    output = network(np.random.default_rng(0).uniform(size=(3, 64, 64, 1)).astype(np.float32))
    assert tuple(output.shape) == (3, 4, 4, 12)
    output = keras.ops.convert_to_numpy(output)
    assert np.all((output > 0) & (output < 1))  # sigmoid outputs
    kernels = [layer.kernel.shape for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    assert (1, 1, 32, 16) in kernels and (3, 3, 16, 32) in kernels  # 1×1 channel mixing, 3-D 3×3 kernels


def test_heads_and_their_limits():
    dense = yolo.build_yolo_network(yolo.GridSpec(grid_size=8), head="dense")
    assert dense.output_shape == (None, 8, 8, 12)
    assert yolo.build_yolo_network(yolo.GridSpec(grid_size=2)).output_shape == (None, 2, 2, 12)  # pooled 4 → 2
    with pytest.raises(ValueError, match="divide image_size / 16 = 4, got grid_size=8"):
        yolo.build_yolo_network(yolo.GridSpec(grid_size=8))
    with pytest.raises(ValueError, match="head 'conv' or 'dense', got 'fc'"):
        yolo.build_yolo_network(SPEC, head="fc")


def test_detector_config_round_trip():
    detector = yolo.YoloDetector(yolo.GridSpec(grid_size=2), lambda_noobj=0.25)
    clone = yolo.YoloDetector.from_config(detector.get_config())
    assert clone.spec == detector.spec and clone.lambda_noobj == 0.25
    assert [m.name for m in detector.metrics] == ["loss", *yolo.LOSS_TERMS]


def test_settings_exist_for_every_profile():
    for profile in PROFILES:
        cfg = select(yolo.SETTINGS, profile)
        assert cfg.spec.num_classes == len(yolo.CLASS_NAMES) and cfg.num_epochs > 0
    with pytest.raises(ValueError, match="split in"):
        yolo.SETTINGS["quick"].generate("holdout", seed=0)


def test_a_short_training_run_beats_the_untrained_model():
    # small and easy so that it runs in seconds: 32-pixel images, a 2 × 2 grid, one word per image
    cfg = dataclasses.replace(yolo.SETTINGS["quick"], num_train=800, num_validation=64, num_test=150, num_epochs=4,
                              batch_size=16, image_size=32, grid_size=2, max_objects=1, font_sizes=(8, 13))
    keras.utils.set_random_seed(0)
    detector = yolo.YoloDetector(cfg.spec)
    test_set = cfg.generate("test", seed=0)
    untrained = detection.evaluate_detections(yolo.detect(detector, test_set.images, cfg.spec), test_set.labels, C)
    history = yolo.train_detector(detector, cfg, seed=0)
    trained = detection.evaluate_detections(yolo.detect(detector, test_set.images, cfg.spec), test_set.labels, C)
    assert set(history) >= {"loss", *yolo.LOSS_TERMS, *(f"val_{name}" for name in yolo.LOSS_TERMS)}
    assert history["loss"][-1] < history["loss"][0]
    # untrained, every box scores about 0.25 and sits near its cell's centre: mAP@0.5 ≈ 0.001. This run reached
    # ≈ 0.78 when the test was written; 0.4 above the untrained model leaves room for other CPUs' round-off.
    assert trained.mean_ap(0.5) > untrained.mean_ap(0.5) + 0.4, (trained.ap, untrained.ap)


# ---- figures ------------------------------------------------------------------------------------------------------


def test_box_in_cell_figure_shows_the_cell_of_the_centre(small_set):
    labels = small_set.labels[0]
    centre_x, centre_y = detection.corners_to_centres(labels.boxes)[0, :2]
    fig = yolo.plot_box_in_cell(small_set.images[0], labels, 0, SPEC)
    assert len(fig.axes) == 2
    row, col = yolo.cell_of(centre_y, 4), yolo.cell_of(centre_x, 4)
    assert f"cell (row {row}, column {col})" in fig.axes[1].get_title()
    # the dot on the right panel sits at the cell-relative centre of eq-yolo-encoding
    dot = next(line for line in fig.axes[1].lines if line.get_marker() == "o")
    np.testing.assert_allclose([dot.get_xdata()[0], dot.get_ydata()[0]], [centre_x * 4 - col, centre_y * 4 - row],
                               atol=1e-12)
