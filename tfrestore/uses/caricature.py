"""Caricatures (M&V 2016, section 3.4): amplify what a layer sees in an image.

The feature loss is replaced by the projection onto the image's own code,

    -C <phi(x), phi0> / ||phi0||^2,       phi0 = phi(x0) at `layer`,

so that the optimisation grows every activation pattern phi0 already has (1 at the start
when x = x0), under the preset's regularisers (range prior, TV, bound, jitter) and any
learned priors; it starts from the image itself (or from noise).
"""
import numpy as np
import tensorflow as tf

from tfrestore.inversion.objectives import FeatureLoss
from tfrestore.inversion.optimize import (ImageOptimizer, with_prior_estimates, build_objective,
                                          check_images)

__all__ = ["CaricatureTerm", "caricature", "projection"]


class CaricatureTerm(FeatureLoss):
    """-<phi(x), phi0> / ||phi0||^2 per image (the target phi0 set like a FeatureLoss's)."""

    def __init__(self, at, weight=1.0, target=None, name=None):
        super().__init__(at, weight, target, name or f"caricature:{at}")

    def __call__(self, x):
        if self.target is None:
            raise ValueError(f"{self.name}: no target features; call set_target first.")
        axes = list(range(1, x.shape.rank))
        t = self.target
        return -tf.reduce_sum(x * t, axis=axes) / tf.maximum(
            tf.reduce_sum(t * t, axis=axes), 1e-12)


def projection(classifier, layer, images, originals):
    """<phi(x), phi(x0)> / ||phi(x0)||^2 per image (1 for x = x0)."""
    m = classifier.feature_model(layer)
    a = np.asarray(m(np.asarray(images, np.float32))).reshape(len(images), -1)
    b = np.asarray(m(np.asarray(originals, np.float32))).reshape(len(images), -1)
    return (a * b).sum(1) / np.maximum((b * b).sum(1), 1e-12)


def caricature(classifier, images, settings, extra_terms=(), init="image", **run_kw):
    """Caricatures of `images` (RGB 0-255) at `settings.layer`; returns InversionResult."""
    images = check_images(images, classifier)
    if init not in ("image", "noise"):
        raise ValueError(f"--init={init}: choose image or noise.")
    term = CaricatureTerm(settings.layer, weight=settings.feature_weight)
    objective = build_objective(classifier, settings,
                                [term] + with_prior_estimates(extra_terms, settings),
                                feature_loss=False)
    objective.set_targets(images)
    opt = ImageOptimizer(classifier, objective, settings, shape=images.shape,
                         init=images if init == "image" else None)
    return opt.run(**run_kw)
