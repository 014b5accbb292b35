"""Reconstruction with a trained inverting network, alone or as the start of optimisation.

* `reconstruct_with_network`: one forward pass, features of `layer` -> RGB 0-255.
* `reconstruct_hybrid`: the network's output is the *initialisation* of prior-regularised
  pre-image optimisation (`tfrestore.inversion.invert`, any preset and extra prior terms).
  Because the start is already close, the optimisation runs with a smaller learning
  rate (`lr_scale`, default 0.1 of the preset's) so that the first steps do not throw
  the initialisation away, and for fewer steps.
"""
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfrestore.classifiers import UnknownLayerError
from tfrestore.inverters.stack import other_weights

__all__ = ["InverterMismatchError", "NetworkResult", "load_inverter", "check_inverter",
           "reconstruct_with_network", "reconstruct_hybrid"]


class InverterMismatchError(ValueError):
    """An inverter that was trained for another classifier or layer (message says which)."""


@dataclass
class NetworkResult:
    reconstructions: np.ndarray      # [N, H, W, 3] RGB 0-255, unclipped
    seconds: float                   # wall time of the forward passes (features + inverter)
    layer: str
    settings: dict = field(default_factory=dict)
    optimisation: object = None      # InversionResult of the hybrid's optimisation


def load_inverter(path):
    """Load a saved `.keras` inverter (registers tfrestore's layers first).

    An inverter saved before its classifier's weights were recorded in it takes them from
    the training record shipped beside it (`PATH.json`, "classifier": {"weights": ...}),
    when there is one: the shipped files stay byte-identical (study cells fingerprint them).
    """
    import tfrestore  # noqa: F401  (registers InverterStack / InverseModule)
    from tfrestore.io import read_keras
    model = read_keras(path, "Inverter")
    if not hasattr(model, "invert_levels"):
        raise InverterMismatchError(f"'{path}' is a Keras model but not a tfrestore "
                                    f"inverter (InverterStack).")
    record = os.path.splitext(path)[0] + ".json"
    if not model.classifier_weights and os.path.isfile(record):
        try:
            with open(record) as f:
                model.classifier_weights = str(json.load(f)["classifier"]["weights"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not a training record: the weights stay unknown (unchecked)
    return model


def check_inverter(inverter, classifier, layer):
    """Raise `InverterMismatchError` unless `inverter` inverts `layer` of `classifier`."""
    trained_for = (f"the inverter was trained for '{inverter.classifier_name}' and inverts "
                   f"from {', '.join(inverter.levels[1:])}")
    targets = {}
    for name in list(inverter.levels[1:]) + [layer]:
        try:
            targets[name] = classifier.resolve(name)
        except UnknownLayerError:
            raise InverterMismatchError(
                f"Classifier '{classifier.name}' does not fit the inverter: {trained_for}, "
                f"but '{classifier.name}' has no layer '{name}'. Pass the classifier the "
                f"inverter was trained for.") from None
    trained, here = getattr(inverter, "classifier_weights", ""), classifier.describe()["weights"]
    if other_weights(trained, here):
        # Same architecture, other weights: other features, so the inverter's output would
        # look plausible and be wrong.
        raise InverterMismatchError(
            f"The inverter was trained on '{inverter.classifier_name}' with weights "
            f"{trained}, but this classifier has weights {here}. Load the classifier with "
            f"the inverter's weights, or train an inverter for these (bin/train_inverter.py).")
    target = targets[layer]
    resolved = {targets[l]: l for l in inverter.levels[1:]}
    if layer not in inverter.levels:
        if target not in resolved:
            raise InverterMismatchError(
                f"The inverter (trained for '{inverter.classifier_name}') has modules from "
                f"{', '.join(inverter.levels[1:])}, not from '{layer}'; pass one of those "
                f"layers or train an inverter for '{layer}' with bin/train_inverter.py.")
        layer = resolved[target]
    deepest = inverter.levels[-1]
    if getattr(inverter, "mode", "") in ("joint", "end_to_end") and layer != deepest:
        raise InverterMismatchError(
            f"This inverter was trained in {inverter.mode} mode, from '{deepest}' only: its "
            f"modules were never fed real '{layer}' features. Invert from '{deepest}', or "
            f"train a solo or stacked inverter (bin/train_inverter.py --mode=stacked) to "
            f"start from any level.")
    s = inverter.level_index(layer)
    for i in range(s + 1):
        name = inverter.levels[i]
        want = classifier.input_shape if name == "input" else classifier.output_shape(name)
        if tuple(want) != tuple(inverter.shapes[i]):
            raise InverterMismatchError(
                f"Layer '{name}' of classifier '{classifier.name}' has shape {tuple(want)} "
                f"but the inverter (trained for '{inverter.classifier_name}') expects "
                f"{tuple(inverter.shapes[i])}.")
    return layer


def reconstruct_with_network(inverter, classifier, layer, images, batch_size=16):
    """Reconstruct RGB 0-255 `images` [N, H, W, 3] from their `layer` features in one pass."""
    from tfrestore.data import check_rgb_batch
    layer = check_inverter(inverter, classifier, layer)
    images = check_rgb_batch(images, classifier.input_size)
    feature_model = classifier.feature_model(layer)

    @tf.function
    def forward(x):
        return inverter(feature_model(x, training=False), source=layer)

    forward(tf.constant(images[:1]))  # trace once, outside the timing
    start, out = time.perf_counter(), []
    for i in range(0, len(images), batch_size):
        out.append(forward(tf.constant(images[i:i + batch_size])).numpy())
    seconds = time.perf_counter() - start
    return NetworkResult(np.concatenate(out, 0), seconds, layer,
                         {"method": "network", "inverter": inverter.describe(),
                          "layer": layer})


def reconstruct_hybrid(inverter, classifier, layer, images, settings, extra_terms=(),
                       lr_scale=0.1, steps=None, batch_size=16, **run_options):
    """Network output as the start of pre-image optimisation with `settings`' priors.

    Args:
      settings: `tfrestore.inversion.InversionSettings` (layer must equal `layer`).
      extra_terms: more objective terms, e.g. a learned patch prior (`PriorTerm`).
      lr_scale: multiplies the preset's learning rates (a good start needs small steps).
      steps: optimisation steps (default the settings'; capped by $TFRESTORE_MAX_STEPS).
      run_options: passed to `invert` (verbose, summary_dir, checkpoint_dir, curve, ...; a
        resumed run restores its image, so the network's start matters at step 0 only).
    """
    from tfrestore.inversion import invert
    net = reconstruct_with_network(inverter, classifier, layer, images, batch_size)
    settings = settings.replace(layer=layer,
                                lr_values=[v * float(lr_scale) for v in settings.lr_values])
    start = time.perf_counter()
    init = np.clip(net.reconstructions, 0, 255)
    result = invert(classifier, images, settings, init=init, extra_terms=extra_terms,
                    steps=steps, **run_options)
    seconds = net.seconds + (time.perf_counter() - start)
    return NetworkResult(result.reconstructions, seconds, layer,
                         {"method": "hybrid", "inverter": inverter.describe(),
                          "layer": layer, "lr_scale": float(lr_scale),
                          "optimisation": settings.as_dict(), "steps_run": result.steps},
                         optimisation=result)
