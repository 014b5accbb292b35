"""Feature-map statistics of a classifier layer over an image set (seed §4.1, Fig. 4).

    stats = featmap_stats(load_classifier("vgg16", weights="random"), "pool5",
                          "../shared/data/imagenet_samples", limit=200)
    save_stats(stats, "results/featmap_stats/vgg16_pool5")

Images are read and pushed through the network one batch at a time, so memory does not
grow with the number of images (see `FeatureMapAccumulator` for the definitions).
"""
import os

import numpy as np
import tensorflow as tf

from tfrestore.data.images import (ImageInputError, list_image_files, load_images)
from tfrestore.io import save_npz, write_json
from tfrestore.stats.accumulator import FeatureMapAccumulator
from tfrestore.stats.toeplitz import (autocovariance, regularized_inverse, shuffled_baseline,
                                      toeplitz_residual)

__all__ = ["iter_image_batches", "featmap_stats", "analyse", "save_stats", "default_margin"]


def iter_image_batches(sources, size, batch_size=16, limit=None):
    """Yield (images [B, H, W, 3] RGB 0-255, names) batches from `load_images` sources.

    Folders are expanded to their files and read batch by batch; other sources (files,
    scikit-image photo names, tfds specs) are read one source at a time.
    """
    if isinstance(sources, str):
        sources = [s.strip() for s in sources.split(",") if s.strip()]
    if not sources:
        raise ImageInputError("No images given: pass files, folders, scikit-image photo names "
                              "or tfds:NAME:SPLIT:COUNT.")
    items = []
    for src in sources:
        items += list_image_files(src) if os.path.isdir(src) else [src]
    buf_imgs, buf_names, total = [], [], 0
    for item in items:
        if limit and total >= limit:
            break
        loaded = load_images([item], size, limit=(limit - total) if limit else None)
        buf_imgs.append(loaded.images)
        buf_names += loaded.paths
        total += len(loaded)
        while sum(len(b) for b in buf_imgs) >= batch_size:
            allimg = np.concatenate(buf_imgs)
            yield allimg[:batch_size], buf_names[:batch_size]
            buf_imgs, buf_names = [allimg[batch_size:]], buf_names[batch_size:]
    if buf_names:
        yield np.concatenate(buf_imgs), buf_names


def default_margin(height, width):
    """Border left out of the Toeplitz measure: 1 position, 0 for maps under 5 x 5."""
    return 1 if min(height, width) >= 5 else 0


def analyse(raw, margin=None, inverse_eps=1e-3, seed=0):
    """Add the inverse covariance and the stationarity numbers to accumulator results."""
    out = dict(raw)
    y0, x0, h, w = (int(v) for v in raw["crop_box"])
    margin = default_margin(h, w) if margin is None else int(margin)
    cov = raw["covariance"]
    inv, lam = regularized_inverse(cov, inverse_eps)
    out.update({
        "inverse": inv, "inverse_ridge": lam, "inverse_eps": inverse_eps, "margin": margin,
        "toeplitz_residual": toeplitz_residual(cov, h, w, margin),
        "toeplitz_residual_inverse": toeplitz_residual(inv, h, w, margin),
        "toeplitz_residual_shuffled": shuffled_baseline(cov, h, w, margin, seed),
        "toeplitz_residual_inverse_shuffled": shuffled_baseline(inv, h, w, margin, seed),
        "autocovariance": autocovariance(cov, h, w, margin),
        "autocovariance_inverse": autocovariance(inv, h, w, margin),
    })
    return out


def featmap_stats(classifier, layer, sources, limit=None, batch_size=16, max_size=32,
                  bins=64, hist_range=None, zero_tol=0.0, margin=None, inverse_eps=1e-3,
                  seed=0, progress=None):
    """Stream `sources` through `classifier` up to `layer` and gather the statistics.

    Args:
      classifier: a `tfrestore.classifiers.Classifier`.
      layer: an addressable layer name (e.g. "pool5", "conv3_3/lin"), or a list of names
        (then one pass over the images serves them all and a dict layer -> stats returns).
      sources: image sources as for `tfrestore.data.load_images`.
      limit: use at most this many images (in order).
      max_size, bins, hist_range, zero_tol: see `FeatureMapAccumulator`.
      margin: border positions left out of the Toeplitz measure (None: `default_margin`).
      inverse_eps: relative ridge of the inverse covariance (`regularized_inverse`).
      seed: seed of the shuffled-position baseline.
      progress: optional callable(n_images_done).
    Returns:
      dict of arrays and numbers (see `save_stats`), or a dict of them per layer.
    """
    import math
    finite = lambda v: math.isfinite(v)  # noqa: E731
    for name, value, ok, rule in (
            ("batch_size", batch_size, batch_size >= 1, ">= 1"),
            ("bins", bins, bins >= 1, ">= 1"),
            ("max_size", max_size, max_size is None or max_size >= 1, ">= 1"),
            ("margin", margin, margin is None or margin >= 0, ">= 0"),
            ("zero_tol", zero_tol, finite(zero_tol) and zero_tol >= 0, "finite and >= 0"),
            ("inverse_eps", inverse_eps, finite(inverse_eps) and inverse_eps > 0,
             "finite and > 0")):
        if not ok:
            raise ValueError(f"--{name}={value}: must be {rule}.")
    single = isinstance(layer, str)
    layers = [layer] if single else list(layer)
    for name in layers:
        shape = classifier.output_shape(name)
        if len(shape) != 3:
            raise ValueError(f"Layer '{name}' of '{classifier.name}' has output shape {shape}; "
                             "spatial statistics need an [H, W, C] feature map (a convolution "
                             "or pooling layer).")
    model = classifier.feature_model(layers)
    features = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    accs = [FeatureMapAccumulator(max_size=max_size, bins=bins, hist_range=hist_range,
                                  zero_tol=zero_tol) for _ in layers]
    for images, _ in iter_image_batches(sources, classifier.input_size, batch_size, limit):
        outs = features(tf.constant(images))
        if not isinstance(outs, (list, tuple)):
            outs = [outs]  # Keras returns a one-output model's output unwrapped
        for acc, feats in zip(accs, outs):
            acc.update(feats)
        if progress:
            progress(accs[0].n)
    if accs[0].n < 2:
        raise ImageInputError(f"Need at least 2 images for a covariance; got {accs[0].n}.")
    results = {}
    for name, acc in zip(layers, accs):
        out = analyse(acc.result(), margin, inverse_eps, seed)
        out["layer"] = name
        out["canonical_layer"] = classifier.resolve(name)
        results[name] = out
    return results[layer] if single else results


SCALARS = ("n_images", "fraction_zeros", "gini_mean", "gini_std", "channel_gini_mean",
           "toeplitz_residual", "toeplitz_residual_shuffled", "toeplitz_residual_inverse",
           "toeplitz_residual_inverse_shuffled", "inverse_ridge", "inverse_eps", "margin",
           "hist_clipped")


def summary(stats):
    """JSON-able dict of the scalar results."""
    out = {k: (stats[k].item() if hasattr(stats[k], "item") else stats[k])
           for k in SCALARS if k in stats}
    out["shape"] = [int(v) for v in stats["shape"]]
    out["crop_box"] = [int(v) for v in stats["crop_box"]]
    for k in ("layer", "canonical_layer"):
        if k in stats:
            out[k] = stats[k]
    return out


def save_stats(stats, prefix, settings=None, figures=True, float32=True):
    """Write `<prefix>.npz` (all arrays), `<prefix>.json` (numbers + settings), figures.

    Float arrays are stored as float32 unless `float32=False` (halves the files; the
    JSON numbers are computed in float64 before). Returns the list of written paths.
    """
    arrays = {}
    for k, v in stats.items():
        if isinstance(v, str):
            continue
        v = np.asarray(v)
        arrays[k] = v.astype(np.float32) if float32 and v.dtype == np.float64 else v
    paths = [prefix + ".npz", prefix + ".json"]
    save_npz(paths[0], **arrays)
    write_json(paths[1], {"summary": summary(stats), "settings": settings or {}})
    if figures:
        from tfrestore.plotting.stats_figures import save_stats_figures
        paths += save_stats_figures(stats, prefix)
    return paths
