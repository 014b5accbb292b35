"""All metrics of a set of reconstructions at once (what every script records)."""
import numpy as np

from tfrestore.metrics.features import feature_errors
from tfrestore.metrics.image import image_metrics

__all__ = ["evaluate_reconstructions"]


def evaluate_reconstructions(classifier, images, reconstructions, layer, perceptual=None):
    """{"mse", "psnr", "ssim", "feature_error"[, "perceptual"]} -> numpy [N] each.

    Reconstructions are clipped to [0, 255] (the saved PNG is what is scored).
    `perceptual` is a `PerceptualScore` or None (then the key is absent).
    """
    from tfrestore.data import check_rgb_batch
    images = check_rgb_batch(images, classifier.input_size)
    rec = np.asarray(reconstructions, np.float32)
    if rec.shape != images.shape:
        raise ValueError(f"reconstructions have shape {rec.shape}, the images {images.shape}.")
    rec = np.clip(rec, 0, 255)
    out = image_metrics(images, rec)
    out["feature_error"] = feature_errors(classifier, images, rec, [layer])[layer]
    if perceptual is not None:
        out["perceptual"] = perceptual(images, rec)
    return out
