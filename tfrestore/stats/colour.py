"""How much a layer sees uniform colour: the directions of RGB it responds to least and most.

A pre-image matches features only up to the feature error at which its optimisation stops;
a colour shift whose feature error is below that is left to the priors and the
initialisation (`bench/colour_sensitivity.py` measures both for the study's layers).
"""
import numpy as np

__all__ = ["dc_colour_response"]


def dc_colour_response(feature_fn, size, level=127.0, step=10.0):
    """(singular values, directions) of a layer's mean response to constant colour.

    The [C, 3] map from a change of constant RGB colour (per grey level, around `level`)
    to the mean response over a few interior positions (away from padding); its singular
    values weakest to strongest and the matching unit RGB directions [3, 3] (row 0: the
    colour the layer sees least). `feature_fn`: RGB 0-255 images [1, size, size, 3] ->
    features [1, H, W, C]. Exact for a linear layer; a linearisation at `level` otherwise.
    """
    grey = np.full((1, size, size, 3), level, np.float32)

    def mean_response(x):
        f = np.asarray(feature_fn(x), np.float64)[0]
        h, w = f.shape[:2]
        return f[h // 4:h // 4 + 4, w // 4:w // 4 + 4].reshape(-1, f.shape[-1]).mean(0)
    base = mean_response(grey)
    m = np.stack([(mean_response(grey + step * np.eye(3, dtype=np.float32)[c]) - base) / step
                  for c in range(3)], 1)
    _, s, vt = np.linalg.svd(m)
    return s[::-1], vt[::-1]
