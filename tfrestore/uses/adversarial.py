"""Adversarial examples and their restoration, on the engine.

Attacks (Goodfellow et al. 2015; Madry et al. 2018), images RGB 0-255, budgets in 0-255
units: FGSM = one step of size eps along sign(grad); PGD = `iters` steepest-ascent steps of
the cross-entropy under the L-inf (sign) or L2 (normalised gradient) norm from a seeded
random start, each followed by the projection onto the eps-ball around the image and onto
[0, 255]. The steepest-ascent step is a keras optimizer (`SteepestDescent`) and the
projection the engine's `project`: an attack is an engine run.

Restoration:
* `map_restore`: MAP under a prior, E(x) = ||x - y||^2 / (2 s^2) + tv * TV(x) + sum_k w_k
  E_k(x) (learned priors from `prior_terms`, e.g. FoE@image), Adam from y on the engine.
* `inversion_restore`: pre-image of the adversarial image's features at a layer (M&V
  objective). It reproduces what the network sees at that layer, *including* what the
  perturbation changed there; it can only help through its image priors and because the
  pre-image is a different image with the same layer code (the deeper layers then see a
  different input) — a probe of where the perturbation acts, not a principled defence.
* `jpeg`, `median`: the simple baselines.
"""
import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfrestore import engine as E
from tfrestore.inversion.objectives import IMAGE, Objective, PriorTerm, Term
from tfrestore.inversion.optimize import ImageOptimizer, invert
from tfrestore.inversion.presets import get_settings
from tfrestore.priors.denoising import tv_energy
from tfrestore.uses.targets import logits_layer

__all__ = ["SteepestDescent", "attack", "NORMS", "DataTerm", "map_restore",
           "inversion_restore", "jpeg", "median", "top1"]

NORMS = ("linf", "l2")


def _per_example_norm(x):
    return ops.sqrt(ops.sum(ops.square(x), axis=list(range(1, len(x.shape))), keepdims=True))


class SteepestDescent(keras.optimizers.Optimizer):
    """x <- x - lr * d, d the steepest-descent direction of the gradient under a norm:
    sign(g) for L-inf, g / ||g||_2 per example (first axis) for L2."""

    def __init__(self, learning_rate, norm="linf", name="steepest_descent", **kwargs):
        super().__init__(learning_rate=float(learning_rate), name=name, **kwargs)
        if norm not in NORMS:
            raise ValueError(f"--norm={norm}: choose one of {list(NORMS)}.")
        self.norm = norm

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        if self.norm == "linf":
            d = ops.sign(gradient)
        else:
            d = gradient / ops.maximum(_per_example_norm(gradient), 1e-12)
        self.assign_sub(variable, lr * d)

    def get_config(self):
        return dict(super().get_config(), norm=self.norm)


def project_ball(delta, eps, norm):
    """Project perturbations [B, ...] onto the eps-ball of `norm` (per example)."""
    if norm == "linf":
        return tf.clip_by_value(delta, -eps, eps)
    n = _per_example_norm(delta)
    return delta * tf.minimum(1.0, eps / tf.maximum(n, 1e-12))


def _random_start(shape, eps, norm, seed):
    rng = np.random.default_rng(seed)
    if norm == "linf":
        return rng.uniform(-eps, eps, shape).astype(np.float32)
    g = rng.normal(size=shape)
    g /= np.linalg.norm(g.reshape(len(g), -1), axis=1).reshape(-1, *[1] * (len(shape) - 1))
    r = eps * rng.uniform(size=(shape[0],) + (1,) * (len(shape) - 1)) ** (1.0 / g[0].size)
    return (g * r).astype(np.float32)


def attack(classifier, images, labels, method="pgd", norm="linf", eps=4.0, step_size=1.0,
           iters=10, random_start=True, seed=0, logits=None):
    """Adversarial images (RGB 0-255) within `eps` (0-255 units) of `images` that raise the
    cross-entropy of `labels` (class indices). FGSM: method="fgsm" (one step of size eps,
    no random start). Returns a float32 array [B, H, W, 3] inside [0, 255]."""
    if method not in ("fgsm", "pgd"):
        raise ValueError(f"--attack={method}: choose fgsm or pgd.")
    if not eps > 0:
        raise ValueError(f"--eps={eps}: the budget must be > 0 (0-255 units).")
    x0 = tf.constant(np.asarray(images, np.float32))
    labels = tf.constant(np.asarray(labels, np.int64))
    if method == "fgsm":
        step_size, iters, random_start = eps, 1, False
    if iters < 1 or not step_size > 0:
        raise ValueError(f"--iters={iters} / --step_size={step_size}: need >= 1 step of > 0.")
    start = x0.numpy()
    if random_start:
        start = np.clip(start + _random_start(start.shape, eps, norm, seed), 0, 255)
    x = tf.Variable(start)
    model = classifier.feature_model(logits or logits_layer(classifier))

    def loss_fn(step, steps):
        ce = tf.keras.losses.sparse_categorical_crossentropy(
            labels, model(x, training=False), from_logits=True)
        return -ce, {"cross_entropy": ce}

    def project():
        x.assign(tf.clip_by_value(x0 + project_ball(x - x0, eps, norm), 0.0, 255.0))

    eng = E.Engine([x], loss_fn, SteepestDescent(step_size, norm), project=project)
    eng.run(iters, [E.NanGuard()])
    return x.numpy()


class DataTerm(Term):
    """||x - y||^2 / (2 s^2) per image: the Gaussian likelihood of the observed y."""

    def __init__(self, observed, sigma, weight=1.0, name="data"):
        super().__init__(name, weight, IMAGE)
        if not sigma > 0:
            raise ValueError(f"--restore_sigma={sigma}: must be > 0 (0-255 units).")
        self.y = tf.constant(np.asarray(observed, np.float32))
        self.sigma = float(sigma)

    def __call__(self, x):
        return tf.reduce_sum(tf.square(x - self.y), axis=[1, 2, 3]) / (2 * self.sigma ** 2)

    def describe(self):
        return dict(super().describe(), sigma=self.sigma)


def map_restore(classifier, observed, sigma=4.0, tv_weight=0.0, priors=(), steps=50, lr=2.0,
                prior_crop=0.0, seed=0, verbose=False):
    """MAP estimate under TV (`tv_weight`, the isotropic TV of bin/denoise.py) and learned
    `priors` (PriorTerms), Adam (cosine-decayed step `lr`, pixels) from `observed`.
    Returns (images [B, H, W, 3] float32, InversionResult)."""
    observed = np.asarray(observed, np.float32)
    terms = [DataTerm(observed, sigma)]
    if tv_weight:
        terms.append(PriorTerm(tv_energy, weight=tv_weight, name="tv"))
    for t in priors:
        if t.at != IMAGE:
            raise ValueError(f"Restoration priors act on the image; '{t.name}' is attached "
                             f"to {t.at}: use PATH@image:WEIGHT.")
        if prior_crop and not t.crop:
            t = PriorTerm(t.fn, weight=t.weight, name=t.name, crop=prior_crop, seed=seed)
        terms.append(t)
    settings = get_settings(
        "fast", classifier, logits_layer(classifier), steps=int(steps), seed=seed,
        parameterization="pixels", optimizer="adam", lr_schedule="cosine",
        lr_values=[float(lr)], lr_boundaries=[], range_weight=0.0, tv_weight=0.0,
        bound_factor=0.0, jitter=0, feature_weight=0.0)
    opt = ImageOptimizer(classifier, Objective(classifier, terms), settings,
                         init=observed)
    result = opt.run(verbose=verbose)
    return result.reconstructions, result


def inversion_restore(classifier, observed, layer, steps=50, preset="fast", seed=0,
                      verbose=False):
    """The pre-image of `observed`'s features at `layer` (see the module docstring)."""
    settings = get_settings(preset, classifier, layer, steps=int(steps), seed=seed)
    result = invert(classifier, np.asarray(observed, np.float32), settings, verbose=verbose)
    return result.reconstructions, result


def jpeg(images, quality=75):
    """JPEG re-encoding at `quality` (images rounded to 8 bits first)."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"--jpeg_quality={quality}: a JPEG quality is in 1..100.")
    out = []
    for img in np.clip(np.round(np.asarray(images)), 0, 255).astype(np.uint8):
        out.append(tf.io.decode_jpeg(tf.io.encode_jpeg(img, quality=int(quality))).numpy())
    return np.asarray(out, np.float32)


def median(images, size=3):
    """Per-channel median filter of size x size (reflecting borders)."""
    from scipy.ndimage import median_filter
    if int(size) < 1:
        raise ValueError(f"--median_size={size}: a filter size is >= 1.")
    return median_filter(np.asarray(images, np.float32), size=(1, int(size), int(size), 1),
                         mode="reflect")


def top1(classifier, images, batch_size=25):
    """Top-1 class indices of the float model for RGB 0-255 images (rounded to 8 bits)."""
    images = np.clip(np.round(np.asarray(images, np.float32)), 0, 255)
    model = classifier.feature_model(logits_layer(classifier))
    return np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))
                           .reshape(len(images[i:i + batch_size]), -1).argmax(-1)
                           for i in range(0, len(images), batch_size)])
