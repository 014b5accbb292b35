"""The pre-image optimisation loop: one compiled step over a batch, Python around it.

    settings = get_settings("mv2016", clf, "conv3_3")
    result = invert(clf, images, settings)          # images: [N, H, W, 3] RGB 0-255
    result.reconstructions                          # [N, H, W, 3] RGB 0-255

The variable is the mean-subtracted image (divided by sigma with 2015's sigma-scaling),
started from seeded Gaussian noise or an `init` batch (e.g. an inverting network's
output), never from the target. Every step: jitter -> network -> objective -> gradient
-> Adam or momentum SGD -> projection onto the per-pixel bound B+.
"""
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfrestore.io import cap_steps
from tfrestore.inversion.objectives import (AlphaNorm, FeatureLoss, Objective, PriorTerm,
                                           RangePrior, TotalVariation)
from tfrestore import summaries
from tfrestore.inversion.schedules import PiecewiseConstant, step_boundaries
from tfrestore.inversion.transforms import (draw_shift, effective_sigma, jitter,
                                           project_bound)

__all__ = ["build_objective", "PreimageOptimizer", "InversionResult", "invert"]


def build_objective(classifier, settings, extra_terms=()):
    """The objective of `settings` (feature loss + enabled priors) plus `extra_terms`."""
    terms = [FeatureLoss(settings.layer, weight=settings.feature_weight)]
    if settings.range_weight:
        terms.append(RangePrior(settings.range_alpha, settings.bound,
                                center=settings.image_mean, weight=settings.range_weight))
    if settings.tv_weight:
        terms.append(TotalVariation(settings.tv_beta, settings.tv_V, settings.tv_per_pixel,
                                    weight=settings.tv_weight))
    if settings.alpha_weight:
        # On the sigma-scaled image when sigma-scaling is on (M&V 2015's R_alpha(x)).
        terms.append(AlphaNorm(settings.alpha_norm, weight=settings.alpha_weight,
                               scale=effective_sigma(settings.sigma, *classifier.input_size)
                               if settings.sigma else 1.0))
    return Objective(classifier, terms + list(extra_terms))


@dataclass
class InversionResult:
    reconstructions: np.ndarray      # [N, H, W, 3] RGB 0-255, unclipped
    settings: object                 # InversionSettings
    steps: int                       # steps actually run (after $TFRESTORE_MAX_STEPS)
    seconds: float
    final_terms: dict = field(default_factory=dict)   # name -> [N] weighted values
    history: list = field(default_factory=list)       # logged {step, loss, lr, terms}


class PreimageOptimizer:
    """State and compiled step of one inversion of a batch.

    Args:
      classifier: the `Classifier` to invert.
      images: [N, H, W, 3] targets, RGB 0-255 (only their features are used).
      settings: `InversionSettings`.
      init: optional [N, H, W, 3] RGB start; default seeded Gaussian noise.
      extra_terms: more `Term`s (e.g. a learned prior `PriorTerm`).
    """

    def __init__(self, classifier, images, settings, init=None, extra_terms=()):
        from tfrestore.data import check_rgb_batch
        images = check_rgb_batch(images, classifier.input_size)
        self.classifier, self.settings = classifier, settings
        n, h, w, _ = images.shape
        for t in extra_terms:
            if isinstance(t, PriorTerm) and settings.prior_crop and not t.crop:
                t.crop, t.seed = float(settings.prior_crop), settings.seed
        self.objective = build_objective(classifier, settings, extra_terms)
        self.objective.set_targets(images)
        self.mean = tf.constant(np.asarray(settings.image_mean, np.float32))
        self.scale = effective_sigma(settings.sigma, h, w) if settings.sigma else 1.0
        self.bound_plus = settings.bound * settings.bound_factor
        if init is None:
            rng = np.random.default_rng(settings.seed)
            centred = rng.normal(0.0, settings.init_std, images.shape).astype(np.float32)
        else:
            init = np.asarray(init, np.float32)
            if init.shape != images.shape:
                raise ValueError(f"init has shape {init.shape}, the images {images.shape}.")
            centred = init - np.asarray(settings.image_mean, np.float32)
        if self.bound_plus:
            centred = project_bound(centred, self.bound_plus).numpy()
        self.variable = tf.Variable(centred / self.scale, name="preimage")
        self.slots = [tf.Variable(tf.zeros_like(self.variable)) for _ in range(2)]
        self.t = tf.Variable(0.0)
        self.generator = tf.random.Generator.from_seed(settings.seed)
        if settings.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got '{settings.optimizer}'.")
        self.step = tf.function(self._step)

    def rgb(self):
        """Current reconstruction, RGB 0-255 (unclipped)."""
        return self.mean + self.scale * self.variable

    def _update(self, grad, lr):
        if self.settings.optimizer == "adam":
            b1, b2, eps = 0.9, 0.999, 1e-8
            m, v = self.slots
            self.t.assign_add(1.0)
            m.assign(b1 * m + (1 - b1) * grad)
            v.assign(b2 * v + (1 - b2) * tf.square(grad))
            m_hat = m / (1 - tf.pow(b1, self.t))
            v_hat = v / (1 - tf.pow(b2, self.t))
            self.variable.assign_sub(lr * m_hat / (tf.sqrt(v_hat) + eps))
        else:
            vel = self.slots[0]
            vel.assign(self.settings.momentum * vel - lr * grad)
            self.variable.assign_add(vel)

    def _step(self, lr, max_shift):
        with tf.GradientTape() as tape:
            rgb = self.rgb()
            shifted = jitter(rgb, draw_shift(self.generator, max_shift))
            total, values = self.objective(rgb, shifted)
            # Images are independent: the gradient of the sum is each image's gradient.
            loss = tf.reduce_sum(total)
        grad = tape.gradient(loss, self.variable)
        self._update(grad, lr)
        if self.bound_plus:
            self.variable.assign(project_bound(self.scale * self.variable, self.bound_plus)
                                 / self.scale)
        return total, values

    def reset_momentum(self):
        for s in self.slots:
            s.assign(tf.zeros_like(s))

    def run(self, steps=None, log_every=None, verbose=True, summary_dir=None, stream=None):
        """Optimise for `steps` (default the settings', capped by $TFRESTORE_MAX_STEPS)."""
        s = self.settings
        steps = cap_steps(s.steps if steps is None else steps)
        lr_schedule = PiecewiseConstant(s.lr_boundaries, s.lr_values)
        jitter_off = step_boundaries([s.jitter_off], steps)[0]
        prior_on = step_boundaries([s.prior_start], steps)[0] if s.prior_start else 0
        gates = [t.gate for t in self.objective.terms if isinstance(t, PriorTerm)]
        log_every = log_every or max(1, steps // 20)
        stream = stream or sys.stdout
        writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
        history, prev_lr, total, values = [], None, None, {}
        start = time.time()
        for i in range(steps):
            lr = lr_schedule(i, steps)
            if s.optimizer == "sgd" and prev_lr is not None and lr != prev_lr:
                self.reset_momentum()  # M&V 2015: momentum restarts at each lr change
            prev_lr = lr
            shift = s.jitter if i < jitter_off else 0
            if gates and i in (0, prior_on):
                for g in gates:
                    g.assign(1.0 if i >= prior_on else 0.0)
            total, values = self.step(tf.constant(lr, tf.float32),
                                      tf.constant(shift, tf.int32))
            if (i + 1) % log_every == 0 or i + 1 == steps:
                rec = {"step": i + 1, "loss": float(tf.reduce_mean(total)), "lr": lr,
                       "jitter": shift,
                       "terms": {k: float(tf.reduce_mean(v)) for k, v in values.items()}}
                history.append(rec)
                elapsed = time.time() - start
                left = elapsed / (i + 1) * (steps - i - 1)
                if verbose:
                    terms = " ".join(f"{k}={v:.4g}" for k, v in rec["terms"].items())
                    print(f"step {i + 1}/{steps} loss={rec['loss']:.4g} [{terms}] lr={lr:.3g} "
                          f"T={shift} {elapsed:.0f}s elapsed, ~{left:.0f}s left",
                          file=stream, flush=True)
                if writer is not None:
                    with writer.as_default(step=i + 1):
                        summaries.scalar("loss/total", rec["loss"])
                        for k, v in rec["terms"].items():
                            summaries.scalar(f"loss/{k}", v)
                        summaries.scalar("schedule/lr", lr)
                        summaries.scalar("schedule/jitter", shift)
        if writer is not None:
            writer.flush()
        final = {k: np.asarray(v) for k, v in values.items()}
        return InversionResult(self.rgb().numpy(), s, steps, time.time() - start, final,
                               history)


def invert(classifier, images, settings, init=None, extra_terms=(), steps=None,
           log_every=None, verbose=True, summary_dir=None):
    """Reconstruct `images` (RGB 0-255) from `settings.layer`; returns `InversionResult`."""
    opt = PreimageOptimizer(classifier, images, settings, init=init, extra_terms=extra_terms)
    return opt.run(steps=steps, log_every=log_every, verbose=verbose, summary_dir=summary_dir)
