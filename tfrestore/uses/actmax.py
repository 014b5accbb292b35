"""Activation maximisation on the engine (M&V 2016 section 3.3; Nguyen et al. 2016 with
learned priors): find an image that drives a target activation up under image priors.

    targets = parse_targets(clf, ["class:flamingo", "channel:expanded_conv_6_add:3"])
    settings = actmax_settings("fast", clf, targets)
    run = maximise(clf, targets, settings, extra_terms=prior_terms(clf, specs))
    run.images, run.activation_start, run.activation_end

The objective is the preset's (mv2016: range prior N_alpha, TV, bound B+ and jitter T of
the deepest target layer) with the feature loss replaced by -C * <S, phi(x)> (C =
`feature_weight`, the preset's C for that layer), plus any learned-prior terms.
"""
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfrestore.inversion.optimize import (ImageOptimizer, build_objective,
                                         with_prior_estimates)
from tfrestore.inversion.presets import get_settings
from tfrestore.uses.targets import logits_layer, selection_terms

__all__ = ["actmax_settings", "maximise", "measure", "ActmaxRun", "INITS"]

INITS = ("noise", "grey")


def actmax_settings(preset, classifier, targets, **overrides):
    """`get_settings(preset, ...)` for the deepest layer the targets read."""
    order = {n: i for i, n in enumerate(classifier.layer_names)}
    layer = max((t.layer for t in targets), key=lambda l: order.get(l, -1))
    return get_settings(preset, classifier, layer, **overrides)


def measure(classifier, targets, images):
    """Per target b (on image b): its activation, and for logit targets the softmax
    probability of its class; also every image's top-1 class. Returns a dict of arrays."""
    layers = list(dict.fromkeys([t.layer for t in targets] + [logits_layer(classifier)]))
    model = classifier.feature_model(layers)
    out = model(tf.constant(np.asarray(images, np.float32)), training=False)
    out = dict(zip(layers, out if len(layers) > 1 else [out]))
    act = np.array([float(tf.reduce_sum(t.selection(out[t.layer].shape[1:]) *
                                        out[t.layer][b])) for b, t in enumerate(targets)])
    logits = np.asarray(out[logits_layer(classifier)]).reshape(len(targets), -1)
    p = tf.nn.softmax(logits).numpy()
    prob = np.array([p[b, t.class_index] if t.class_index is not None else np.nan
                     for b, t in enumerate(targets)])
    return {"activation": act, "probability": prob, "top1": p.argmax(-1),
            "top1_probability": p.max(-1)}


@dataclass
class ActmaxRun:
    images: np.ndarray               # [B, H, W, 3] RGB 0-255, unclipped
    start: dict                      # `measure` of the start
    end: dict                        # `measure` of the 8-bit result
    result: object                   # InversionResult of the engine run
    history: list = field(default_factory=list)


def start_images(classifier, settings, n, init="noise"):
    """None (the optimiser's seeded noise start) or a grey batch at the dataset mean."""
    if init not in INITS:
        raise ValueError(f"--init={init}: choose one of {list(INITS)}.")
    if init == "noise":
        return None
    h, w = classifier.input_size
    return np.broadcast_to(np.asarray(settings.image_mean, np.float32),
                           (n, h, w, 3)).copy()


def maximise(classifier, targets, settings, extra_terms=(), init="noise", **run_kw):
    """Maximise target b on image b of a batch; `run_kw` go to `ImageOptimizer.run`."""
    h, w = classifier.input_size
    terms = selection_terms(classifier, targets, weight=settings.feature_weight)
    objective = build_objective(classifier, settings,
                                terms + with_prior_estimates(extra_terms, settings),
                                feature_loss=False)
    shape = (len(targets), h, w, 3)
    opt = ImageOptimizer(classifier, objective, settings, shape=shape,
                         init=start_images(classifier, settings, len(targets), init))
    start = measure(classifier, targets, opt.rgb().numpy())
    result = opt.run(**run_kw)
    images = result.reconstructions
    end = measure(classifier, targets, np.clip(np.round(images), 0, 255))
    return ActmaxRun(images, start, end, result, result.history)
