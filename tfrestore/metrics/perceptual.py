"""Perceptual Gram score (REFERENCE section 5).

score = mean over layers l of  sum (G_t^l - G_r^l)^2 / sum (G_t^l)^2,
G^l = F^T F / (H W) the channel Gram matrix of layer l's ReLU output F [H W, C].

The defining network is VGG16 with ImageNet weights at conv{1..5}_1/relu. Those
weights cannot be downloaded offline, and random weights would make a meaningless
score, so the network is a setting (`perceptual_network`) that is recorded with
every result:

* "auto" (the default): VGG16 when its ImageNet weights are already in Keras's cache
  (nothing is downloaded), otherwise the bundled ImageNet MobileNetV2
  ("mobilenet_v2_tflite", at 5 depths); works offline without a warning, and
  `describe()` records which network was used and why ("perceptual_choice");
* "vgg16" (the definition; `PerceptualUnavailable` when its weights cannot be had);
* any classifier name or `.tflite`/`.keras` path, e.g. "mobilenet_v2_tflite";
* "none": no score.

An explicit setting is never substituted: `make_perceptual` raises
`PerceptualUnavailable`, and callers log it and skip.
"""
import os

import numpy as np
import tensorflow as tf

__all__ = ["PerceptualScore", "PerceptualUnavailable", "gram_matrix", "make_perceptual",
           "perceptual_layers", "vgg16_weights_cached", "VGG16_PERCEPTUAL_LAYERS",
           "DEFAULT_PERCEPTUAL", "OFFLINE_PERCEPTUAL"]

VGG16_PERCEPTUAL_LAYERS = tuple(f"conv{b}_1/relu" for b in range(1, 6))
DEFAULT_PERCEPTUAL = "auto"
OFFLINE_PERCEPTUAL = "mobilenet_v2_tflite"  # bundled with the package
_VGG16_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
# Where Keras caches when $KERAS_HOME (default ~/.keras) is not writable.
_FALLBACK_CACHE = os.path.join("/tmp", ".keras", "models")


class PerceptualUnavailable(RuntimeError):
    """The perceptual network cannot be loaded (the message says why and what to pass)."""


def gram_matrix(features):
    """[B, H, W, C] -> [B, C, C] Gram matrices normalised by H*W."""
    f = tf.convert_to_tensor(features, tf.float32)
    hw = tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
    f = tf.reshape(f, [tf.shape(f)[0], -1, f.shape[-1]])
    return tf.matmul(f, f, transpose_a=True) / hw


def perceptual_layers(classifier, count=5):
    """VGG16's conv{1..5}_1/relu, or `count` activation layers evenly spread in depth."""
    if all(a.split("/")[0] in classifier.aliases for a in VGG16_PERCEPTUAL_LAYERS):
        return list(VGG16_PERCEPTUAL_LAYERS)
    names = [n for n in classifier.layer_names
             if "/" in n and not n.endswith("/lin") and len(classifier.output_shape(n)) == 3]
    if not names:  # a network without split activations: any spatial layer
        names = [n for n in classifier.layer_names if len(classifier.output_shape(n)) == 3]
    if len(names) < count:
        return names
    idx = np.linspace(0, len(names) - 1, count + 2)[1:-1].round().astype(int)
    return [names[i] for i in idx]


class PerceptualScore:
    """Callable (images, reconstructions) -> [N] perceptual Gram score (0 = identical)."""

    def __init__(self, classifier, layers=None, setting=None, choice=None):
        self.classifier = classifier
        self.layers = list(layers or perceptual_layers(classifier))
        self.setting = setting or classifier.name
        self.choice = choice or f"requested: {self.setting}"
        self._model = classifier.feature_model(self.layers)

    def _features(self, rgb):
        size = self.classifier.input_size
        rgb = tf.convert_to_tensor(rgb, tf.float32)
        if tuple(rgb.shape[1:3]) != tuple(size):
            rgb = tf.image.resize(rgb, size, method="bilinear")
        out = self._model(rgb, training=False)
        return out if isinstance(out, (list, tuple)) else [out]

    def __call__(self, images, reconstructions):
        ft = self._features(images)
        fr = self._features(np.clip(reconstructions, 0, 255))
        scores = []
        for a, b in zip(ft, fr):
            gt, gr = gram_matrix(a), gram_matrix(b)
            scores.append(tf.reduce_sum(tf.square(gt - gr), [1, 2])
                          / (tf.reduce_sum(tf.square(gt), [1, 2]) + 1e-12))
        return tf.reduce_mean(tf.stack(scores, 0), 0).numpy()

    def describe(self):
        return {"perceptual_network": self.setting, "perceptual_choice": self.choice,
                "perceptual_layers": self.layers,
                "perceptual_weights": str(self.classifier.weights)}


def vgg16_weights_cached():
    """Path of Keras's cached VGG16 ImageNet weights (with the top), or None.

    Keras caches in $KERAS_HOME/models (default ~/.keras/models), or in /tmp/.keras/models
    when that folder is not writable.
    """
    from tfrestore.classifiers.weights import keras_cache_dir
    for folder in (keras_cache_dir(), _FALLBACK_CACHE):
        path = os.path.join(folder, _VGG16_FILE)
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            return path
    return None


def _load(setting):
    from tfrestore.classifiers import load_classifier
    return load_classifier(setting, weights="imagenet")


def _auto():
    """VGG16 if its weights are cached, else the bundled network.

    Nothing is downloaded unless the cached file fails Keras's hash check (Keras then fetches
    it again; offline that fails and the bundled network is used, with the reason recorded).
    """
    from tfrestore.classifiers import WeightsError
    cached = vgg16_weights_cached()
    if cached is None:
        return _load(OFFLINE_PERCEPTUAL), OFFLINE_PERCEPTUAL, (
            f"auto: VGG16 ImageNet weights not cached ({_VGG16_FILE}), so the bundled "
            f"ImageNet MobileNetV2")
    try:
        return _load("vgg16"), "vgg16", f"auto: VGG16 ImageNet weights cached at {cached}"
    except (WeightsError, ValueError, OSError) as e:
        return _load(OFFLINE_PERCEPTUAL), OFFLINE_PERCEPTUAL, (
            f"auto: cached VGG16 weights at {cached} failed to load ({e}), so the bundled "
            f"ImageNet MobileNetV2")


def make_perceptual(setting=DEFAULT_PERCEPTUAL):
    """A `PerceptualScore` for a setting, None for "none", or `PerceptualUnavailable`."""
    if setting in (None, "", "none"):
        return None
    from tfrestore.classifiers import WeightsError
    try:
        if setting == "auto":
            clf, setting, choice = _auto()
        else:
            clf, choice = _load(setting), f"requested: {setting}"
    except (WeightsError, ValueError, OSError, ImportError) as e:
        raise PerceptualUnavailable(
            f"Perceptual network '{setting}' is unavailable ({e}). The score is skipped; "
            f"pass --perceptual_network=auto (VGG16 if cached, else the bundled ImageNet "
            f"MobileNetV2, offline), --perceptual_network={OFFLINE_PERCEPTUAL}, or "
            f"--perceptual_network=none to silence this note.") from e
    return PerceptualScore(clf, setting=setting, choice=choice)
