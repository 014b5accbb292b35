"""Classifiers to invert, all behind one interface (`Classifier`).

`load_classifier("mobilenet_v2_tflite" | "vgg16" | "alexnet" | "caffenet" | "mobilenet_v2" |
... | PATH.keras | PATH.tflite, weights="imagenet" | "random" | PATH, seed=0)`.

`mobilenet_v2_tflite` ships inside the package (`bundled/`): real ImageNet weights offline.
"""
import os

from tfrestore.classifiers import layers  # noqa: F401  (registers the LRN layer)
from tfrestore.classifiers.applications import (APPLICATIONS, imagenet_labels,
                                               load_application)
from tfrestore.classifiers.base import Classifier, UnknownLayerError, split_activations
from tfrestore.classifiers.bundled import BUNDLED, load_bundled
from tfrestore.classifiers.preprocessing import PRESETS, Preprocessing, make_preprocessing
from tfrestore.classifiers.weights import WeightsError, parse_weights

__all__ = ["DEFAULT_CLASSIFIER", "Classifier", "UnknownLayerError", "WeightsError",
           "Preprocessing", "load_classifier", "load_keras_file", "available_classifiers",
           "split_activations", "make_preprocessing", "imagenet_labels"]

_OWN = ("alexnet", "caffenet")

# The default of every binary: bundled, so a fresh install works offline on real weights.
DEFAULT_CLASSIFIER = "mobilenet_v2_tflite"


def available_classifiers():
    return sorted(list(APPLICATIONS) + list(_OWN) + list(BUNDLED))


def load_keras_file(path, preprocessing="raw", labels=None):
    """Any saved `.keras` classifier. `preprocessing` maps RGB 0-255 to its input."""
    from tfrestore.io import read_keras
    model = read_keras(path, "Classifier")
    kind = type(model).__name__
    if kind == "PatchPrior":
        raise WeightsError(f"'{path}' is a learned patch prior, not a classifier: pass it as "
                           f"--prior={path}@LAYER:WEIGHT and name the network with "
                           f"--classifier.")
    if hasattr(model, "invert_levels"):
        raise WeightsError(f"'{path}' is an inverting network, not a classifier: pass it as "
                           f"--inverter={path} and name the network with --classifier.")
    if not isinstance(getattr(model, "output_shape", None), tuple):
        raise WeightsError(f"'{path}' holds a {kind} with no single output; a classifier "
                           f"maps one image batch to one output.")
    n_out = model.output_shape[-1]
    if labels is None and n_out == 1000:
        labels = imagenet_labels()
    if labels is not None and len(labels) != n_out:
        raise WeightsError(f"{len(labels)} labels for '{path}', which has {n_out} outputs; "
                           f"give one label per output, in order.")
    return Classifier(os.path.splitext(os.path.basename(path))[0], model, preprocessing,
                      labels=labels, weights=os.path.abspath(path))


def _check_input_size(input_size):
    if input_size is None:
        return
    if isinstance(input_size, bool) or not float(input_size).is_integer() or input_size < 1:
        raise ValueError(f"input_size={input_size!r}: must be a whole number of pixels >= 1 "
                         f"(or unset for the network's own size).")


def _honour_input_size(clf, input_size, name=None):
    """Networks whose input size is fixed (AlexNet, files) reject another size.

    `clf` is a Classifier or, to fail before building one, its (H, W).
    """
    size = tuple(clf) if isinstance(clf, tuple) else tuple(clf.input_size)
    if input_size and size != (int(input_size), int(input_size)):
        h, w = size
        raise ValueError(f"{name or clf.name} takes {h}x{w} images only (a fixed input "
                         f"size); input_size={input_size} cannot be honoured (leave "
                         f"--input_size unset, or use a keras.applications network: "
                         f"{', '.join(sorted(APPLICATIONS))}).")
    return clf


def _read_labels(labels):
    if isinstance(labels, str):
        if not os.path.exists(labels):
            raise WeightsError(f"Labels file '{labels}' does not exist.")
        with open(labels) as f:
            return [line.strip() for line in f if line.strip()]
    return labels


def load_classifier(name, weights="imagenet", seed=0, input_size=None, preprocessing=None,
                    labels=None):
    """Build a `Classifier` by name or from a `.keras` / `.tflite` file.

    Args:
      name: a name from `available_classifiers()` or a path to a `.keras` or `.tflite` file.
      weights: "imagenet" (downloaded and cached by Keras; a clear error offline; for the
        bundled `mobilenet_v2_tflite`, the file's own ImageNet weights), "random" (seeded
        by `seed`; not for bundled networks), or a path to a weights file. Files (.keras,
        .tflite) hold their own weights: anything but the default is an error.
      seed: seed for random weights.
      input_size: square input size for convolution-only use (drops the head) of a
        keras.applications network; AlexNet and files have a fixed size (another one
        is an error).
      preprocessing: override of the preprocessing preset (`PRESETS`) for `.keras` and
        `.tflite` files and bundled networks.
      labels: a labels file (one per line) or list, for `.keras` and `.tflite` files and
        bundled networks.
    """
    _check_input_size(input_size)
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed={seed} (--weights_seed): must be between 0 and 2**32 - 1.")
    if name.endswith((".tflite", ".keras")) and weights not in (None, "", "imagenet"):
        raise WeightsError(f"'{name}' holds its own weights; weights={weights!r} cannot apply "
                           f"to it (leave --weights unset).")
    if name.endswith(".tflite"):
        if not os.path.exists(name):
            raise WeightsError(f"TFLite file '{name}' does not exist.")
        from tfrestore.classifiers.tflite import load_tflite
        return _honour_input_size(load_tflite(name, labels=labels, preprocessing=preprocessing),
                                  input_size)
    if name.endswith(".keras"):
        if not os.path.exists(name):
            raise WeightsError(f"Keras model file '{name}' does not exist.")
        return _honour_input_size(load_keras_file(name, preprocessing or "raw",
                                                  labels=_read_labels(labels)), input_size)
    if name in BUNDLED:
        return _honour_input_size(load_bundled(name, weights=weights,
                                               preprocessing=preprocessing, labels=labels),
                                  input_size)
    if preprocessing is not None or labels is not None:
        raise ValueError(f"preprocessing and labels apply to .keras and .tflite files and "
                         f"bundled networks only; '{name}' has its own (leave --preprocessing "
                         f"and --labels unset).")
    if name in _OWN:
        from tfrestore.classifiers.alexnet import load_alexnet
        _honour_input_size((227, 227), input_size, name)
        return load_alexnet(weights=weights, seed=seed, caffenet=(name == "caffenet"))
    if name in APPLICATIONS:
        return load_application(name, weights=weights, seed=seed, input_size=input_size)
    raise ValueError(f"Unknown classifier '{name}'. Use one of {available_classifiers()} "
                     f"or a path ending in .keras or .tflite.")
