"""Small images the tests build instead of loading a dataset."""

import numpy as np


def blob_images(n: int = 16, seed: int = 0) -> np.ndarray:
    """Grey Gaussian blobs in [0, 1] with MNIST's shape ``(n, 28, 28, 1)``: enough to run a model."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    centres = rng.uniform(9, 19, size=(n, 2))
    images = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 18.0)
    return images[..., None].astype(np.float32)
