"""Tests of mlbook.augment: every transform keeps shapes, label maps stay integer with the same classes, identity
parameters give the input back, the phantom and the experiment's pieces, and the fixes of the original post (one
test per item of the chapter's "Notes on the original")."""

from __future__ import annotations

import numpy as np
import pytest

from mlbook import augment as aug
from mlbook.profiles import PROFILES, select

# Cubic-spline prefiltering and evaluation at the original pixel centres reproduce the input up to float32
# round-off (relative ~1e-7 per operation, amplified a little by the prefilter's recursion): 1e-5 is a wide margin.
IDENTITY_ATOL = 1e-5


@pytest.fixture(scope="module")
def phantom():
    return aug.cardiac_phantom((40, 48, 8), seed=3)


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).random((30, 44, 3)).astype(np.float32)


def geometric_transforms():
    """(name, function(image, is_label)) for every geometric transform, with moderate parameters."""
    return [
        ("translate", lambda x, is_label: aug.translate(x, (2, -3), is_label)),
        ("scale-up", lambda x, is_label: aug.scale(x, 1.1, is_label)),
        ("scale-down", lambda x, is_label: aug.scale(x, 0.9, is_label)),
        ("rotate", lambda x, is_label: aug.rotate(x, 7.5, is_label)),
        ("flip", lambda x, is_label: aug.flip(x, (1,))),
    ]


# ---- shapes, labels and identities -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, transform", geometric_transforms())
def test_every_transform_keeps_the_shape_of_grey_rgb_and_3d_arrays(name, transform, rgb, phantom):
    volume, _ = phantom
    for image in (rgb[..., 0], rgb, volume):
        assert transform(image, False).shape == image.shape, name
    assert aug.adjust_intensity(rgb, 1.2).shape == rgb.shape


@pytest.mark.parametrize("name, transform", geometric_transforms())
def test_label_maps_stay_integer_with_the_same_classes(name, transform, phantom):
    """Order-0 interpolation copies label values, so the dtype and the set of classes survive (moderate moves keep
    every structure of the phantom in view)."""
    _, labels = phantom
    for label_map in (labels[:, :, 2], labels):
        moved = transform(label_map, True)
        assert moved.dtype == label_map.dtype, name
        assert set(np.unique(moved)) == set(np.unique(label_map)), name


def test_cubic_interpolation_would_invent_label_values(phantom):
    """Why labels need order 0: cubic splines give non-integer values between classes."""
    _, labels = phantom
    cubic = aug.rotate(labels[:, :, 2].astype(float), 7.5)
    assert not np.allclose(cubic, np.rint(cubic))


def test_identity_parameters_return_the_input(rgb, phantom):
    volume, labels = phantom
    for image in (rgb, volume):
        np.testing.assert_allclose(aug.translate(image, (0, 0)), image, atol=IDENTITY_ATOL)
        np.testing.assert_allclose(aug.scale(image, 1.0), image, atol=IDENTITY_ATOL)
        np.testing.assert_allclose(aug.rotate(image, 0.0), image, atol=IDENTITY_ATOL)
        np.testing.assert_allclose(aug.resample(image, image.shape[:2]), image, atol=IDENTITY_ATOL)
        np.testing.assert_array_equal(aug.adjust_intensity(image, 1.0), image)  # multiplying by 1 is exact
        np.testing.assert_array_equal(aug.flip(image, ()), image)
    np.testing.assert_array_equal(aug.rotate(labels, 0.0, is_label=True), labels)  # order 0: exact copies
    np.testing.assert_array_equal(aug.scale(labels, 1.0, is_label=True), labels)
    np.testing.assert_array_equal(aug.translate(labels, (0, 0, 0), is_label=True), labels)


def test_flip_twice_is_the_identity_and_translate_moves_by_whole_pixels(rgb):
    np.testing.assert_array_equal(aug.flip(aug.flip(rgb, (0, 1)), (0, 1)), rgb)
    shifted = aug.translate(rgb, (0, 3))
    # An integer shift evaluates the spline at pixel centres: the values are the input's, up to round-off.
    np.testing.assert_allclose(shifted[:, 3:], rgb[:, :-3], atol=IDENTITY_ATOL)


def test_translate_in_3d_moves_slices_too(phantom):
    _, labels = phantom
    moved = aug.translate(labels, (0, 0, 1), is_label=True)
    np.testing.assert_array_equal(moved[:, :, 1:], labels[:, :, :-1])


def test_bad_parameters_are_refused_with_clear_messages(rgb):
    with pytest.raises(ValueError, match="positive scale factors"):
        aug.scale(rgb, 0.0)
    with pytest.raises(ValueError, match="positive intensity factor, got 0"):
        aug.adjust_intensity(rgb, 0)
    with pytest.raises(ValueError, match="one offset per shifted axis"):
        aug.translate(rgb, 3)
    with pytest.raises(ValueError, match=r"flip axes in 0..2 for an image of shape \(30, 44, 3\), got \(3,\)"):
        aug.flip(rgb, (3,))
    with pytest.raises(ValueError, match="at least 2 axes"):
        aug.rotate(np.zeros(5), 3.0)
    with pytest.raises(ValueError, match="constant image"):
        aug.normalise_intensity(np.ones((4, 4)))


# ---- regressions: the original's bugs ------------------------------------------------------------------------


def test_scale_keeps_the_centre_fixed():
    """Regression: the original ``scaleit`` cropped ``image[row:row+zheight]`` before zooming in, moving the centre
    by ~row/2 pixels. A symmetric blob at the centre must stay there, for zoom in and out, in 2-D and 3-D."""
    grid = np.indices((41, 61)).astype(float)
    blob = np.exp(-((grid[0] - 20) ** 2 + (grid[1] - 30) ** 2) / 30.0)
    for factor in (0.8, 1.25, 1.5):
        zoomed = aug.scale(blob, factor)
        centre = np.array(np.unravel_index(np.argmax(zoomed), zoomed.shape))
        np.testing.assert_array_equal(centre, [20, 30])
        mass = (grid * zoomed).sum(axis=(1, 2)) / zoomed.sum()
        # The edge fill repeats near-zero border values; the centre of mass moves by far less than a pixel.
        np.testing.assert_allclose(mass, [20, 30], atol=0.05)
    volume = np.zeros((9, 9, 9))
    volume[4, 4, 4] = 1.0
    assert np.unravel_index(np.argmax(aug.scale(volume, (1.3, 1.3, 1.3))), volume.shape) == (4, 4, 4)


def test_crop_keeps_labels_near_the_far_end_in_view():
    """Regression: the original took ``np.argmin(hits, axis=1)`` — a position in the list of labelled pixels, not
    a coordinate — so a segmentation near the end of the long axis could be cropped away."""
    image = np.random.default_rng(1).random((60, 20))
    labels = np.zeros((60, 20), dtype=np.uint8)
    labels[50:56, 5:9] = 2
    cropped, cropped_labels = aug.crop_square(image, labels, margin=3)
    assert cropped.shape == (20, 20) and cropped_labels.shape == (20, 20)
    assert cropped_labels.sum() == labels.sum()  # every labelled pixel is still there
    # Windows that keep rows 50..55 plus 3 rows each side start at 39 or 40; the one nearest the centre is 39.
    np.testing.assert_array_equal(cropped, image[39:59])


def test_crop_without_labels_is_central_and_random_crops_keep_labels():
    image = np.arange(30 * 50).reshape(30, 50)
    cropped, none = aug.crop_square(image)
    assert none is None and np.array_equal(cropped, image[:, 10:40])
    labels = np.zeros((30, 50), dtype=np.uint8)
    labels[10:20, 12:20] = 1
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        crop, crop_labels = aug.crop_square(image, labels, margin=2, rng=rng)
        assert crop_labels.sum() == labels.sum()
        starts.add(int(crop[0, 0]))
    assert starts == set(range(0, 11))  # starts 0..10 keep columns 10..21 in a 30-wide window; all get drawn
    with pytest.raises(ValueError, match="the labels span 45 pixels along axis 1, more than the square's side 30"):
        wide = np.zeros((30, 50), dtype=np.uint8)
        wide[5, 2:47] = 1
        aug.crop_square(image, wide)


def test_resample_keeps_an_intensity_change():
    """Regression: the original ``resampleit`` min–max normalised every non-RGB image, undoing ``intensifyit``."""
    image = aug.normalise_intensity(np.random.default_rng(2).random((32, 48)))
    brighter = aug.adjust_intensity(image, 1.2)
    ratio = aug.resample(brighter, (16, 16)).mean() / aug.resample(image, (16, 16)).mean()
    assert ratio == pytest.approx(1.2, rel=1e-6)  # resampling is linear in the intensities
    assert aug.resample(brighter, (16, 24)).max() > 1.0  # no silent rescaling to [0, 1]
    assert aug.resample(np.zeros((10, 20, 3)), (5, 5)).shape == (5, 5, 3)  # 3 channels are not special


def test_positive_angle_rotates_counter_clockwise():
    """Regression: the post says negative angles rotate anti-clockwise; positive ones do (row 0 at the top)."""
    image = np.zeros((21, 21))
    image[2:5, 9:12] = 1.0  # a blob at the top centre
    rows, cols = np.nonzero(aug.rotate(image, 90.0, is_label=True))
    assert rows.mean() == pytest.approx(10.0) and cols.mean() < 5  # now on the left: counter-clockwise


def test_random_offsets_reach_both_ends():
    """Regression: ``np.random.randint(-5, 5)`` never draws +5."""
    rng = np.random.default_rng(0)
    ranges = aug.AugmentRanges(max_transforms=5, max_offset=2)
    seen = set()
    image = np.zeros((8, 8))
    for _ in range(400):
        _, _, applied = aug.random_augment(image, None, rng, ranges)
        seen.update(applied.get("translate", ()))
    assert seen == {-2, -1, 0, 1, 2}


# ---- the random pipeline and the experiment's pieces --------------------------------------------------------


def test_random_augment_moves_labels_with_the_image_and_never_flips_when_told_not_to(phantom):
    volume, labels = phantom
    rng = np.random.default_rng(5)
    no_flips = aug.AugmentRanges(flip_axes=())
    counts = []
    for _ in range(30):
        image, label_map, applied = aug.random_augment(volume[:, :, 3], labels[:, :, 3], rng, no_flips)
        assert image.shape == label_map.shape == labels[:, :, 3].shape
        assert label_map.dtype == np.uint8 and set(np.unique(label_map)) <= set(np.unique(labels))
        assert "flip" not in applied and 1 <= len(applied) <= 4
        counts.append(len(applied))
    assert set(counts) == {1, 2, 3, 4}


def test_cardiac_phantom_is_repeatable_with_four_classes():
    volume, labels = aug.cardiac_phantom((32, 40, 8), seed=7)
    again, again_labels = aug.cardiac_phantom((32, 40, 8), seed=7)
    np.testing.assert_array_equal(volume, again)
    np.testing.assert_array_equal(labels, again_labels)
    assert volume.dtype == np.float32 and 0.0 <= volume.min() and volume.max() <= 1.0
    assert set(np.unique(labels)) == set(aug.PHANTOM_CLASSES)
    assert (labels[:, :, 0] == 1).sum() > (labels[:, :, -1] == 1).sum()  # the ventricle tapers to the apex
    with pytest.raises(ValueError, match="expected a volume shape"):
        aug.cardiac_phantom((32, 40))


def test_few_labels_subset_takes_per_class_examples():
    labels = np.repeat(np.arange(4), 5)
    chosen = aug.few_labels_subset(labels, 3, seed=0)
    assert np.bincount(labels[chosen]).tolist() == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="class 0 has 5 examples, fewer than per_class=6"):
        aug.few_labels_subset(labels, 6, seed=0)


def test_augmented_batches_are_repeatable_and_pair_the_same_images():
    images = np.random.default_rng(0).random((10, 28, 28, 1)).astype(np.float32)
    labels = np.arange(10)
    plain = aug.augmented_batches(images, labels, 4, None, seed=1, repeats=2)
    augmented = aug.augmented_batches(images, labels, 4, aug.DIGIT_RANGES, seed=1, repeats=2)
    assert len(plain) == 5  # 20 images in batches of 4
    x_plain, y_plain = plain[0]
    x_aug, y_aug = augmented[0]
    np.testing.assert_array_equal(y_plain, y_aug)  # the same images in the same order
    np.testing.assert_array_equal(x_plain, images[y_plain])
    assert x_aug.shape == x_plain.shape and not np.allclose(x_aug, x_plain)
    np.testing.assert_array_equal(augmented[0][0], x_aug)  # same epoch, same batch: same augmentation
    augmented.on_epoch_end()
    assert not np.array_equal(augmented[0][1], y_aug) or not np.allclose(augmented[0][0], x_aug)


def test_small_cnn_shape():
    model = aug.small_cnn((28, 28, 1), 10)
    assert model.output_shape == (None, 10)


def test_settings_cover_every_profile_and_digits_never_flip():
    for profile in PROFILES:
        cfg = select(aug.SETTINGS, profile)
        assert cfg.ranges.flip_axes == () and cfg.num_seeds >= 1
