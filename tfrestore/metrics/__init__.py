"""Reconstruction quality metrics, each defined once and reused by every script.

* `mse`, `psnr`, `ssim`: image space, RGB 0-255 (`image.py`).
* `normalised_feature_error`: ||phi(x) - phi0||^2 / ||phi0||^2 (`features.py`), the same
  function the inversion's feature loss uses.
* `PerceptualScore`: Gram-matrix distance of REFERENCE section 5 (`perceptual.py`).
"""
from tfrestore.metrics.features import feature_errors, normalised_feature_error
from tfrestore.metrics.evaluate import evaluate_reconstructions
from tfrestore.metrics.image import image_metrics, mse, psnr, ssim
from tfrestore.metrics.perceptual import (PerceptualScore, PerceptualUnavailable,
                                          gram_matrix, make_perceptual, perceptual_layers)

__all__ = ["mse", "psnr", "ssim", "image_metrics", "normalised_feature_error",
           "feature_errors", "PerceptualScore", "PerceptualUnavailable", "gram_matrix",
           "make_perceptual", "perceptual_layers", "evaluate_reconstructions"]
