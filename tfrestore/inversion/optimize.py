"""Pre-image optimisation on the engine: an image batch, an objective, the run's settings.

    settings = get_settings("mv2016", clf, "conv3_3")
    result = invert(clf, images, settings)          # images: [N, H, W, 3] RGB 0-255
    result.reconstructions                          # [N, H, W, 3] RGB 0-255

`ImageOptimizer` optimises any objective over images (inversion, activation maximisation,
caricatures, sampling): the image is a parameterization's output (`settings.parameterization`,
M&V's mean + sigma u by default), started from seeded Gaussian noise or an `init` batch (e.g.
an inverting network's output), never from the target; each step the network sees the
transformed (jittered) image and the image priors the untransformed one; after each step the
image is projected onto the per-pixel bound B+.
"""
import copy
from dataclasses import dataclass, field

import numpy as np

from tfrestore import engine as E
from tfrestore.io import cap_steps
from tfrestore.inversion.objectives import (IMAGE, AlphaNorm, FeatureLoss, Objective,
                                           PriorTerm, RangePrior, TotalVariation)
from tfrestore.inversion.presets import effective_sigma

__all__ = ["build_objective", "ImageOptimizer", "PreimageOptimizer", "InversionResult",
           "with_prior_estimates",
           "invert", "check_images"]


def build_objective(classifier, settings, extra_terms=(), feature_loss=True):
    """The objective of `settings` (feature loss + enabled priors) plus `extra_terms`."""
    terms = [FeatureLoss(settings.layer, weight=settings.feature_weight)] if feature_loss \
        else []
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


def check_images(images, classifier, what="images"):
    """[N, H, W, 3] float32 RGB 0-255 fitting the classifier, else an error saying why
    (`tfrestore.data.check_rgb_batch`, the one check of API images)."""
    from tfrestore.data import check_rgb_batch
    return check_rgb_batch(images, classifier.input_size, what)


@dataclass
class InversionResult:
    reconstructions: np.ndarray      # [N, H, W, 3] RGB 0-255, unclipped
    settings: object                 # InversionSettings
    steps: int                       # steps done (after $TFRESTORE_MAX_STEPS / stopping)
    seconds: float
    final_terms: dict = field(default_factory=dict)   # name -> [N] weighted values
    history: list = field(default_factory=list)       # logged {step, loss, lr, terms}
    converged: bool = None           # the convergence criterion held at the end
    stopped: str = "steps"           # "steps" | "converged"
    convergence: dict = field(default_factory=dict)   # criterion, last relative change
    curve: list = field(default_factory=list)         # CurveRecorder records, if any


class _PriorGate(E.Callback):
    """Switch learned-prior terms on at `on_step` (two-phase runs), also when resuming."""

    def __init__(self, terms, on_step):
        self.terms, self.on_step = terms, on_step

    def on_step_begin(self, engine, step):
        if step in (engine.start_step, self.on_step):
            for t in self.terms:
                t.active = step >= self.on_step


class ImageOptimizer:
    """The engine set up for an image batch, an `Objective` and `InversionSettings`.

    Args:
      classifier: the network the objective reads.
      objective: an `Objective` (targets set, if it has feature losses).
      settings: `InversionSettings` (optimizer, schedule, parameterization, transforms).
      shape: [N, H, W, 3] of the batch (default from `init`).
      init: optional [N, H, W, 3] RGB start; default seeded Gaussian noise.
      steps: run length (default the settings'; capped by $TFRESTORE_MAX_STEPS).
      temperature: the engine's Langevin noise temperature (sampling; 0 = optimisation).
    """

    def __init__(self, classifier, objective, settings, shape=None, init=None, steps=None,
                 temperature=0.0):
        self.classifier, self.objective, self.settings = classifier, objective, settings
        s = settings
        self.steps = cap_steps(s.steps if steps is None else steps)
        if self.steps < 1:
            raise ValueError(f"--steps={self.steps}: needs at least 1 optimisation step.")
        mean = np.asarray(s.image_mean, np.float32)
        if init is None:
            rng = np.random.default_rng(s.seed)
            centred = rng.normal(0.0, s.init_std, tuple(shape)).astype(np.float32)
        else:
            init = np.asarray(init, np.float32)
            if shape is not None and tuple(init.shape) != tuple(shape):
                raise ValueError(f"init has shape {init.shape}, the images {tuple(shape)}.")
            centred = init - mean
        h, w = centred.shape[1:3]
        self.param = E.make_parameterization(
            s.parameterization, mean=mean, bound=s.bound * s.bound_factor,
            sigma=effective_sigma(s.sigma, h, w) if s.sigma else 0.0,
            **self._param_options(s)).build(centred)
        self.transforms = [E.Jitter(s.jitter, s.jitter_off, seed=s.seed)]
        if s.scale_jitter:
            self.transforms.append(E.RandomScale(s.scale_jitter, s.jitter_off, seed=s.seed + 1))
        self.schedule = E.make_schedule(s.lr_schedule, self.steps, s.lr_values,
                                        s.lr_boundaries)
        self.optimizer = E.make_optimizer(s.optimizer, self.schedule, momentum=s.momentum)
        self.engine = E.Engine(self.param.variables, self._loss, self.optimizer,
                               project=self.param.project if self.param.bound else None,
                               temperature=temperature, seed=s.seed,
                               trace_key=self._active_priors)

    def _active_priors(self):
        return tuple(t.active for t in self.objective.terms if isinstance(t, PriorTerm))

    @staticmethod
    def _param_options(s):
        if s.parameterization == "fourier":
            return {"decay": s.fourier_decay}
        if s.parameterization == "laplacian":
            return {"levels": s.pyramid_levels, "gain": s.pyramid_gain}
        return {}

    def _loss(self, step, steps):
        rgb = self.param.to_rgb()
        seen = E.apply_transforms(self.transforms, rgb, step, steps)
        return self.objective(rgb, seen)

    def rgb(self):
        """Current images, RGB 0-255 (unclipped)."""
        return self.param.to_rgb()

    def checkpoint_objects(self):
        objs = {f"variable_{i}": v for i, v in enumerate(self.param.variables)}
        objs["optimizer"] = self.optimizer
        for i, t in enumerate(self.transforms):
            objs[f"transform_{i}"] = t.generator
        for i, t in enumerate(self.objective.terms):
            if isinstance(t, PriorTerm) and t.crop:
                objs[f"crop_{i}"] = t.generator
            if isinstance(t, PriorTerm) and hasattr(t.fn, "stride"):
                objs[f"grid_{i}"] = t.fn.generator
        return objs

    def callbacks(self, verbose=True, log_every=None, summary_dir=None, checkpoint_dir=None,
                  checkpoint_every=250, fresh=False, curve=None, curve_every=25,
                  curve_path=None):
        """The standard callbacks of a run (plus those the caller adds)."""
        s, cbs = self.settings, []
        if s.optimizer == "sgd" and s.momentum_reset:
            cbs.append(E.OptimizerReset(getattr(self.schedule, "step_boundaries", [])))
        priors = [t for t in self.objective.terms if isinstance(t, PriorTerm)]
        if priors:
            cbs.append(_PriorGate(priors, E.step_boundaries([s.prior_start], self.steps)[0]))
        cbs.append(E.NanGuard())
        last_drop = max(getattr(self.schedule, "step_boundaries", [0]) or [0])
        jitter_off = E.step_boundaries([s.jitter_off], self.steps)[0] if s.jitter else 0
        self.meter = E.ConvergenceStop(s.converge_rtol or 1e-3, s.converge_window,
                                       max(last_drop, jitter_off), stop=s.converge_rtol > 0)
        cbs.append(self.meter)
        if checkpoint_dir:
            cbs.append(E.Checkpoint(checkpoint_dir, self.checkpoint_objects(),
                                    every=checkpoint_every, fresh=fresh,
                                    settings=dict(s.resume_record(), steps_run=self.steps)))
        self.history = E.History(log_every)
        cbs.append(self.history)
        if curve is not None:
            self.curve = E.CurveRecorder(curve, curve_every, curve_path)
            cbs.append(self.curve)
        if summary_dir:
            cbs.append(E.TensorBoard(summary_dir, log_every))
        if verbose:
            cbs.append(E.ProgressBar(log_every))
        return cbs

    def run(self, callbacks=(), **kw):
        """Optimise; `kw` are `callbacks()` options. Returns an `InversionResult`."""
        cbs = self.callbacks(**kw) + list(callbacks)
        r = self.engine.run(self.steps, cbs)
        final = r.last.terms if r.last is not None else {}
        conv = {"rtol": self.meter.rtol, "window": self.meter.window,
                "relative_change": self.meter.change, "checked_after_step": self.meter.min_step}
        converged = None if self.meter.change is None else bool(
            self.meter.change < self.meter.rtol and r.steps >= self.meter.min_step)
        return InversionResult(self.rgb().numpy(), self.settings, r.steps, r.seconds,
                               final, r.history, converged, r.stopped, conv,
                               getattr(self, "curve", None) and self.curve.records or [])


def with_prior_estimates(terms, settings):
    """Learned-prior terms with the run's cost settings (copies: the caller's are untouched):
    a random crop (`prior_crop`) or, for patch priors, the strided-grid estimate
    (`prior_grid` on the image, `prior_grid_maps` on feature maps)."""
    from tfrestore.priors.grid import GridEstimate
    out = []
    for t in terms:
        if isinstance(t, PriorTerm) and settings.prior_crop and not t.crop:
            t = copy.copy(t)
            t.crop, t.seed = float(settings.prior_crop), settings.seed
            t.make_generator()
        elif isinstance(t, PriorTerm) and not t.crop and _is_patch_prior(t.fn):
            stride = settings.prior_grid if t.at == IMAGE else settings.prior_grid_maps
            if stride > 1:
                t = copy.copy(t)
                t.fn = GridEstimate(t.fn, stride, seed=settings.seed)
        out.append(t)
    return out


def _is_patch_prior(fn):
    from tfrestore.priors.layers import PatchPrior
    return isinstance(fn, PatchPrior)


class PreimageOptimizer(ImageOptimizer):
    """`ImageOptimizer` for reconstructing `images` from `settings.layer`.

    Args:
      classifier: the `Classifier` to invert.
      images: [N, H, W, 3] targets, RGB 0-255 (only their features are used).
      settings: `InversionSettings`.
      init: optional [N, H, W, 3] RGB start; default seeded Gaussian noise.
      extra_terms: more `Term`s (e.g. a learned prior `PriorTerm`).
    """

    def __init__(self, classifier, images, settings, init=None, extra_terms=(), steps=None):
        images = check_images(images, classifier)
        objective = build_objective(classifier, settings,
                                    with_prior_estimates(extra_terms, settings))
        objective.set_targets(images)
        self.images = images
        super().__init__(classifier, objective, settings, shape=images.shape, init=init,
                         steps=steps)


def invert(classifier, images, settings, init=None, extra_terms=(), steps=None,
           log_every=None, verbose=True, summary_dir=None, checkpoint_dir=None, fresh=False,
           callbacks=(), curve=None, curve_every=25, curve_path=None):
    """Reconstruct `images` (RGB 0-255) from `settings.layer`; returns `InversionResult`.

    `checkpoint_dir` makes the run resumable (same settings only); `curve` is an optional
    function of the current reconstructions -> {name: [N]} recorded every `curve_every`
    steps (and kept in `curve_path`, JSON, across a resume).
    """
    opt = PreimageOptimizer(classifier, images, settings, init=init, extra_terms=extra_terms,
                            steps=steps)
    fn = None if curve is None else (lambda: curve(opt.rgb().numpy()))
    return opt.run(callbacks, verbose=verbose, log_every=log_every, summary_dir=summary_dir,
                   checkpoint_dir=checkpoint_dir, fresh=fresh, curve=fn,
                   curve_every=curve_every, curve_path=curve_path)
