"""Classifiers to invert, all behind one interface (`Classifier`).

`load_classifier("mobilenet_v2_tflite" | "vgg16" | "alexnet" | "caffenet" | "mobilenet_v2" |
... | PATH.keras | PATH.tflite, weights="imagenet" | "random" | PATH, seed=0)`.

`mobilenet_v2_tflite` ships inside the package (`bundled/`): real ImageNet weights offline.
"""
import os

import keras

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
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:
        raise WeightsError(f"Cannot load Keras model '{path}': {e}") from e
    n_out = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if labels is None and n_out == 1000:
        labels = imagenet_labels()
    return Classifier(os.path.splitext(os.path.basename(path))[0], model, preprocessing,
                      labels=labels, weights=os.path.abspath(path))


def _read_labels(labels):
    if isinstance(labels, str):
        if not os.path.exists(labels):
            raise WeightsError(f"Labels file '{labels}' does not exist.")
        with open(labels) as f:
            return [line.strip() for line in f if line.strip()]
    return labels


def _fixed_size(clf, input_size):
    """A TFLite network has one input size: another one is an error, not silently ignored."""
    if input_size and tuple(clf.input_size) != (int(input_size), int(input_size)):
        raise ValueError(f"{clf.name} takes {clf.input_size[0]}x{clf.input_size[1]} images "
                         f"only; --input_size={input_size} applies to keras.applications "
                         f"networks (omit it here).")
    return clf


def load_classifier(name, weights="imagenet", seed=0, input_size=None, preprocessing=None,
                    labels=None):
    """Build a `Classifier` by name or from a `.keras` / `.tflite` file.

    Args:
      name: a name from `available_classifiers()` or a path to a `.keras` or `.tflite` file.
      weights: "imagenet" (downloaded and cached by Keras; a clear error offline; for the
        bundled `mobilenet_v2_tflite`, the file's own ImageNet weights), "random" (seeded
        by `seed`; not for bundled networks), or a path to a weights file.
      seed: seed for random weights.
      input_size: square input size for convolution-only use (drops the head).
      preprocessing: override of the preprocessing preset (`PRESETS`) for `.keras` and
        `.tflite` files and bundled networks.
      labels: a labels file (one per line) or list, for `.keras` and `.tflite` files and
        bundled networks.
    """
    if name.endswith(".tflite"):
        if not os.path.exists(name):
            raise WeightsError(f"TFLite file '{name}' does not exist.")
        from tfrestore.classifiers.tflite import load_tflite
        return _fixed_size(load_tflite(name, labels=labels, preprocessing=preprocessing),
                           input_size)
    if name.endswith(".keras"):
        if not os.path.exists(name):
            raise WeightsError(f"Keras model file '{name}' does not exist.")
        return load_keras_file(name, preprocessing or "raw", labels=_read_labels(labels))
    if name in BUNDLED:
        return _fixed_size(load_bundled(name, weights=weights, preprocessing=preprocessing,
                                        labels=labels), input_size)
    if name in _OWN:
        from tfrestore.classifiers.alexnet import load_alexnet
        return load_alexnet(weights=weights, seed=seed, caffenet=(name == "caffenet"))
    if name in APPLICATIONS:
        return load_application(name, weights=weights, seed=seed, input_size=input_size)
    raise ValueError(f"Unknown classifier '{name}'. Use one of {available_classifiers()} "
                     f"or a path ending in .keras or .tflite.")
