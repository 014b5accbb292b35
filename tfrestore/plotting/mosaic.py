"""Filters tiled into one image array (TensorBoard), sorted by weight; no matplotlib.

`tfrestore.plotting.figures.filter_grid` draws the same tiles as a labelled figure."""
import numpy as np

__all__ = ["filter_mosaic"]


def filter_mosaic(filters, weights=None, max_filters=64):
    """[1, H, W, 3] image tiling [N, ph, pw, C] filters sorted by weight (TensorBoard)."""
    f = np.asarray(filters, np.float32)
    if weights is not None:
        f = f[np.argsort(-np.asarray(weights))]
    f = f[:max_filters]
    if f.shape[-1] not in (1, 3):
        f = f.mean(-1, keepdims=True)
    if f.shape[-1] == 1:
        f = np.repeat(f, 3, -1)
    m = np.abs(f).reshape(len(f), -1).max(1).reshape(-1, 1, 1, 1) + 1e-12
    f = 0.5 + 0.5 * f / m
    n, ph, pw, _ = f.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.ones((rows * (ph + 1) + 1, cols * (pw + 1) + 1, 3), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[1 + r * (ph + 1):1 + r * (ph + 1) + ph, 1 + c * (pw + 1):1 + c * (pw + 1) + pw] = f[i]
    return out[None]
