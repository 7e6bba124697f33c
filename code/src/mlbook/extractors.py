"""Feature extractors for style transfer: networks that map an image to named feature maps.

Two extractors, each a :class:`FeatureExtractor`:

* ``vgg19``: the paper's network, VGG19 with ImageNet weights (``keras.applications``), its max-pooling replaced by
  average pooling. The weights are a download; offline, or when the download fails,
  :func:`mlbook.style.load_extractor` falls back (one line) on the second extractor.
* ``learned-pyramid``: a one-layer network whose filters the build learns itself, by k-means on whitened patches of
  the photographs that scikit-image and scikit-learn ship, applied at every level of an image pyramid.

References:
    Simonyan, K. & Zisserman, A. (2015). Very deep convolutional networks for large-scale image recognition. ICLR.
    Gatys, L. A., Ecker, A. S. & Bethge, M. (2016). Image style transfer using convolutional neural networks. CVPR.
    Coates, A. & Ng, A. Y. (2012). Learning feature representations with k-means. In *Neural Networks: Tricks of
    the Trade*, 561–580.
    Ustyuzhaninov, I., Brendel, W., Gatys, L. A. & Bethge, M. (2017). What does it take to generate natural
    textures? ICLR.
    Burt, P. J. & Adelson, E. H. (1983). The Laplacian pyramid as a compact image code. *IEEE Transactions on
    Communications* 31(4), 532–540.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mlbook.cache import array_fingerprint, load_or_compute_arrays
from mlbook.data import download

Array = np.ndarray

#: VGG19's ImageNet mean pixel, in its BGR channel order and 0–255 scale (Keras's ``preprocess_input``, "caffe").
VGG19_MEAN_BGR = (103.939, 116.779, 123.68)
VGG19_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
#: The MD5 that Keras itself checks for this file: its publisher gives no SHA-256.
VGG19_WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"
#: The paper's layers (Gatys et al., 2016): style from conv1_1 ... conv5_1, content from conv4_2.
VGG19_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
VGG19_CONTENT_LAYER = "conv4_2"
#: The paper's α/β ≈ 10⁻³.
VGG19_CONTENT_WEIGHT = 1e-3
#: α and the total-variation weight for the learned pyramid, chosen by eye on this chapter's images: its unit-length
#: filters on [−0.5, 0.5] images give activations far smaller than VGG19's on 0–255 images.
PYRAMID_CONTENT_WEIGHT = 3e-8
PYRAMID_TV_WEIGHT = 1e-10

#: Images scikit-image ships in its wheel (no download); the learned extractor's training photographs.
SKIMAGE_PHOTOGRAPHS = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
    "gravel", "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina", "rocket",
    "text",
)


# --------------------------------------------------------------------------------------------------------------
# What every extractor is
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """A network mapping an image batch ``(1, height, width, 3)`` in [0, 1] to named feature maps.

    Attributes:
        name: ``"vgg19"`` or ``"learned-pyramid"``.
        model: the Keras model; called on images, it returns ``{layer name: (1, h_l, w_l, N_l) tensor}``.
        layers: every layer name, from the input side to the deep end.
        style_layers: the default layers of the style loss (the paper's λ).
        content_layer: the default layer of the content loss (the paper's l_c).
        content_weight: the default α, for a style weight β = 1. Its scale depends on the size of the
            extractor's activations, so it belongs to the extractor.
        tv_weight: the default weight of the total-variation loss.
        description: one line for the reader.
        fingerprint: what identifies the weights, for cache keys.
    """

    name: str
    model: keras.Model
    layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_layer: str
    content_weight: float
    tv_weight: float
    description: str
    fingerprint: str

    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.model(images)


# --------------------------------------------------------------------------------------------------------------
# The learned filter pyramid
# --------------------------------------------------------------------------------------------------------------


def downsample(images: tf.Tensor) -> tf.Tensor:
    """The next level of a Gaussian pyramid (Burt & Adelson, 1983): blur with the binomial filter
    ``(1, 4, 6, 4, 1)/16`` in both directions, then keep every second row and column.

    Plain 2×2 average pooling lets fine detail alias into the coarse level; an image optimised through such a
    pyramid can then hide a regular pattern of 2×2 blocks in it. The blur removes most of those frequencies first.

    Args:
        images: ``(n, height, width, channels)``; edges are reflected.

    Returns:
        ``(n, ⌈height/2⌉, ⌈width/2⌉, channels)``.
    """
    if len(images.shape) != 4:
        raise ValueError(f"expected images of shape (n, height, width, channels), got {tuple(images.shape)}")
    channels = images.shape[-1]
    binomial = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0
    kernel = np.tile(np.outer(binomial, binomial)[:, :, None, None], (1, 1, channels, 1))
    padded = ops.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="reflect")
    return ops.depthwise_conv(padded, ops.convert_to_tensor(kernel, dtype=images.dtype), strides=2,
                              padding="valid")


class FilterPyramid(keras.Model):
    """One convolutional layer with fixed filters, applied at every level of an image pyramid.

    Level ``s`` (``"level1"`` is the full image) sees the image halved ``s − 1`` times by :func:`downsample`, so
    a filter of ``k`` pixels covers ``k · 2^(s−1)`` pixels of the original: the levels play the part of a deep
    network's layers, from small to large receptive fields. A level's feature maps are the rectified filter
    responses ``relu(r)`` and the rectified centred colours of both signs, so that the Gram matrices also carry
    the palette.

    Args:
        kernel: ``(k, k, 3, num_filters)`` filters, applied to images centred on 0 (``image − 0.5``).
        num_scales: pyramid levels.
    """

    def __init__(self, kernel: Array, num_scales: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        kernel = np.asarray(kernel, dtype=np.float32)
        if kernel.ndim != 4 or kernel.shape[2] != 3 or kernel.shape[0] != kernel.shape[1]:
            raise ValueError(f"expected a kernel of shape (k, k, 3, num_filters), got {kernel.shape}")
        if num_scales < 1:
            raise ValueError(f"expected at least one pyramid level, got num_scales={num_scales}")
        self.kernel = tf.constant(kernel)
        self.num_scales = num_scales
        self.level_names = tuple(f"level{s}" for s in range(1, num_scales + 1))

    def call(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        features = {}
        level = images - 0.5
        for name in self.level_names:
            responses = ops.conv(level, self.kernel, strides=1, padding="same")
            features[name] = ops.concatenate([ops.relu(responses), ops.relu(level), ops.relu(-level)], axis=-1)
            level = downsample(level)
        return features


def training_photographs(max_side: int = 256) -> list[Array]:
    """The photographs the learned extractor is trained on: scikit-image's bundled images and scikit-learn's
    ``flower.jpg`` (not ``china.jpg``, the content image), as RGB float32 in [0, 1], shrunk to ``max_side``.

    Grey images are repeated over the three channels. scikit-image is imported here, not at module import.
    """
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_image

    raw = [getattr(skimage.data, name)() for name in SKIMAGE_PHOTOGRAPHS]
    raw += [skimage.data.stereo_motorcycle()[0], load_sample_image("flower.jpg")]
    photographs = []
    for image in raw:
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        image = Image.fromarray(image[..., :3].astype(np.uint8))
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        photographs.append(np.asarray(image, dtype=np.float32) / 255.0)
    return photographs


def _gaussian_pyramid(image: Array, num_scales: int) -> list[Array]:
    levels = [np.asarray(image, dtype=np.float32)]
    for _ in range(num_scales - 1):
        levels.append(np.asarray(downsample(tf.constant(levels[-1][None]))[0]))
    return levels


def sample_patches(photographs: Sequence[Array], num_patches: int, patch_size: int, num_scales: int,
                   seed: int = 0) -> Array:
    """Random ``patch_size``² patches from every pyramid level of the photographs, as rows of length ``k·k·3``."""
    rng = np.random.default_rng(seed)
    levels = [level for image in photographs for level in _gaussian_pyramid(image, num_scales)
              if min(level.shape[:2]) > patch_size]
    if not levels:
        raise ValueError(f"no photograph is larger than a {patch_size}-pixel patch")
    patches = np.empty((num_patches, patch_size * patch_size * 3), dtype=np.float32)
    for i, which in enumerate(rng.integers(len(levels), size=num_patches)):
        level = levels[which]
        top = rng.integers(level.shape[0] - patch_size + 1)
        left = rng.integers(level.shape[1] - patch_size + 1)
        patches[i] = level[top : top + patch_size, left : left + patch_size].ravel()
    return patches


def learn_filters(patches: Array, num_filters: int, patch_size: int, seed: int = 0,
                  whitening_epsilon: float = 1e-3) -> Array:
    """Filters learned from image patches by k-means on whitened patches (Coates & Ng, 2012).

    Each patch loses its mean brightness, the patches are whitened (ZCA), so that k-means is not drawn to the
    few high-variance smooth directions, and the centroids of the unit-length whitened patches are mapped back
    through the whitening to become filters: ``filter_k = W c_k``, a response being ``c_k · W (x − x̄)``.

    Args:
        patches: ``(n, patch_size · patch_size · 3)`` rows from :func:`sample_patches`.
        num_filters: the number of centroids.
        whitening_epsilon: added to the covariance's eigenvalues; it keeps noise directions from blowing up.

    Returns:
        ``(patch_size, patch_size, 3, num_filters)`` float32 filters of unit length.
    """
    import threadpoolctl
    from sklearn.cluster import KMeans

    patches = np.asarray(patches, dtype=np.float64)
    if patches.ndim != 2 or patches.shape[1] != patch_size * patch_size * 3:
        raise ValueError(f"expected patches of shape (n, {patch_size * patch_size * 3}), got {patches.shape}")
    if len(patches) < num_filters:
        raise ValueError(f"expected at least {num_filters} patches for {num_filters} filters, got {len(patches)}")
    centred = patches - patches.mean(axis=1, keepdims=True)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    whitening = eigenvectors @ np.diag(1.0 / np.sqrt(np.maximum(eigenvalues, 0.0) + whitening_epsilon)) @ eigenvectors.T
    whitened = centred @ whitening
    whitened /= np.linalg.norm(whitened, axis=1, keepdims=True) + 1e-8
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        kmeans = KMeans(num_filters, n_init=1, max_iter=100, random_state=seed).fit(whitened)
    filters = whitening @ kmeans.cluster_centers_.T  # (k·k·3, num_filters); whitening is symmetric
    # c · W(x − x̄) = (Wc − mean(Wc)) · x: a zero-sum filter applied to the raw patch gives the same response
    filters -= filters.mean(axis=0, keepdims=True)
    filters /= np.linalg.norm(filters, axis=0, keepdims=True)
    return filters.reshape(patch_size, patch_size, 3, num_filters).astype(np.float32)


class PyramidSettings(Protocol):
    """The sizes :func:`learned_pyramid_extractor` reads from a profile's settings
    (:class:`mlbook.style.StyleSettings`)."""

    @property
    def num_filters(self) -> int: ...

    @property
    def filter_size(self) -> int: ...

    @property
    def num_scales(self) -> int: ...

    @property
    def num_patches(self) -> int: ...


def learned_pyramid_extractor(cfg: PyramidSettings, seed: int = 0) -> FeatureExtractor:
    """The extractor the build learns itself: k-means filters (cached) in a :class:`FilterPyramid`."""
    config = {"num_filters": cfg.num_filters, "filter_size": cfg.filter_size, "num_scales": cfg.num_scales,
              "num_patches": cfg.num_patches, "seed": seed}

    def compute() -> dict[str, Array]:
        patches = sample_patches(training_photographs(), cfg.num_patches, cfg.filter_size, cfg.num_scales, seed)
        return {"kernel": learn_filters(patches, cfg.num_filters, cfg.filter_size, seed)}

    kernel = load_or_compute_arrays("style-filters", config, compute)[0]["kernel"]
    model = FilterPyramid(kernel, cfg.num_scales, name="learned_pyramid")
    layers = model.level_names
    return FeatureExtractor(
        name="learned-pyramid", model=model, layers=layers, style_layers=layers,
        content_layer=layers[min(2, len(layers) - 1)], content_weight=PYRAMID_CONTENT_WEIGHT,
        tv_weight=PYRAMID_TV_WEIGHT,
        description=(f"{cfg.num_filters} filters of {cfg.filter_size}×{cfg.filter_size} pixels learned by k-means "
                     f"from {len(SKIMAGE_PHOTOGRAPHS) + 2} bundled photographs, on a {cfg.num_scales}-level pyramid"),
        fingerprint=f"learned-pyramid-{array_fingerprint(kernel)}-{cfg.num_scales}",
    )


# --------------------------------------------------------------------------------------------------------------
# VGG19
# --------------------------------------------------------------------------------------------------------------


class _VGGPreprocess(keras.layers.Layer):
    """Images in [0, 1], RGB → VGG19's input: 0–255, BGR, minus the ImageNet mean pixel (Keras's "caffe" mode)."""

    def call(self, images: tf.Tensor) -> tf.Tensor:
        return ops.flip(images, axis=-1) * 255.0 - ops.convert_to_tensor(VGG19_MEAN_BGR, dtype=images.dtype)


def vgg19_feature_model(weights: str | None) -> keras.Model:
    """VGG19's convolutional layers with average pooling, returning every conv layer's maps under the paper's
    names (``conv1_1`` ... ``conv5_4``).

    The paper replaces VGG's max-pooling by average pooling, which it found gives slightly better images; the
    pooling has no weights, so the ImageNet weights carry over unchanged.

    Args:
        weights: a path to the ``notop`` weights file, or ``None`` for random weights (tests, shapes only).
    """
    base = keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))
    images = keras.Input(shape=(None, None, 3))
    x = _VGGPreprocess(name="vgg_preprocess")(images)
    outputs = {}
    for layer in base.layers[1:]:
        if isinstance(layer, keras.layers.MaxPooling2D):
            x = keras.layers.AveragePooling2D(pool_size=2, strides=2, name=layer.name + "_average")(x)
        else:
            x = layer(x)
            block, conv = layer.name.removeprefix("block").split("_conv")  # "block4_conv2" → conv4_2
            outputs[f"conv{block}_{conv}"] = x
    return keras.Model(images, outputs, name="vgg19_average_pooling")


def download_vgg19_weights() -> str:
    """The local path of VGG19's ImageNet weights (``notop``, 80 MB), downloaded once into the data folder by
    :func:`mlbook.data.download`, with its deadline and size cap, and checked against Keras's MD5.

    Raises:
        DownloadError: offline (``MLBOOK_OFFLINE``), network failure, timeout, past the deadline or a wrong checksum.
    """
    return str(download(VGG19_WEIGHTS_URL, "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", VGG19_WEIGHTS_MD5,
                        algorithm="md5"))


def vgg19_extractor(weights: str | None = None) -> FeatureExtractor:
    """The paper's extractor: VGG19 with average pooling; ImageNet weights unless ``weights`` is given."""
    model = vgg19_feature_model(download_vgg19_weights() if weights is None else weights)
    return FeatureExtractor(
        name="vgg19", model=model, layers=tuple(model.output.keys()), style_layers=VGG19_STYLE_LAYERS,
        content_layer=VGG19_CONTENT_LAYER, content_weight=VGG19_CONTENT_WEIGHT, tv_weight=0.0,
        description="VGG19 trained on ImageNet (Simonyan & Zisserman, 2015), max-pooling replaced by average pooling",
        fingerprint="vgg19-imagenet-average-pooling",
    )


# --------------------------------------------------------------------------------------------------------------
# For display
# --------------------------------------------------------------------------------------------------------------


def first_layer_filters(extractor: FeatureExtractor) -> Array:
    """The filters that look at the pixels, ``(num_filters, k, k, 3)`` RGB, each stretched to [0, 1] for display."""
    if isinstance(extractor.model, FilterPyramid):
        kernel = extractor.model.kernel.numpy()
    else:
        kernel = extractor.model.get_layer("block1_conv1").get_weights()[0][:, :, ::-1, :]  # VGG19 reads BGR
    filters = np.moveaxis(kernel, -1, 0)
    low = filters.min(axis=(1, 2, 3), keepdims=True)
    high = filters.max(axis=(1, 2, 3), keepdims=True)
    return (filters - low) / np.maximum(high - low, 1e-12)
