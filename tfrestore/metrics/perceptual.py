"""Perceptual Gram score (REFERENCE section 5).

score = mean over layers l of  sum (G_t^l - G_r^l)^2 / sum (G_t^l)^2,
G^l = F^T F / (H W) the channel Gram matrix of layer l's ReLU output F [H W, C].

The defining network is VGG16 with ImageNet weights at conv{1..5}_1/relu. Those
weights cannot be downloaded offline, and random weights would make a meaningless
score, so the network is a setting (`perceptual_network`) that is recorded with
every result: "vgg16" (the definition), a `.tflite`/`.keras` path (e.g. the shared
ImageNet MobileNetV2, at 5 depths), or "none". Nothing is substituted silently:
`make_perceptual` raises `PerceptualUnavailable`, and callers log it and skip.
"""
import numpy as np
import tensorflow as tf

__all__ = ["PerceptualScore", "PerceptualUnavailable", "gram_matrix", "make_perceptual",
           "perceptual_layers", "VGG16_PERCEPTUAL_LAYERS"]

VGG16_PERCEPTUAL_LAYERS = tuple(f"conv{b}_1/relu" for b in range(1, 6))


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

    def __init__(self, classifier, layers=None, setting=None):
        self.classifier = classifier
        self.layers = list(layers or perceptual_layers(classifier))
        self.setting = setting or classifier.name
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
        return {"perceptual_network": self.setting, "perceptual_layers": self.layers,
                "perceptual_weights": str(self.classifier.weights)}


def make_perceptual(setting="vgg16"):
    """A `PerceptualScore` for a setting, None for "none", or `PerceptualUnavailable`."""
    if setting in (None, "", "none"):
        return None
    from tfrestore.classifiers import WeightsError, load_classifier
    try:
        if setting == "vgg16":
            clf = load_classifier("vgg16", weights="imagenet")
        else:
            clf = load_classifier(setting)
    except (WeightsError, ValueError, OSError, ImportError) as e:
        raise PerceptualUnavailable(
            f"Perceptual network '{setting}' is unavailable ({e}). The score is skipped; "
            f"pass --perceptual_network=PATH.tflite (e.g. ../shared/data/models/"
            f"tf2_mobilenet_v2_1.0_224_ptq.tflite) for an offline ImageNet network, or "
            f"--perceptual_network=none to silence this note.") from e
    return PerceptualScore(clf, setting=setting)
