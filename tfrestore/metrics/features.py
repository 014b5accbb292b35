"""Feature-space error: the normalised loss of Mahendran & Vedaldi (REFERENCE section 2)."""
import numpy as np
import tensorflow as tf

__all__ = ["normalised_feature_error", "feature_errors"]

# Guards the division for an all-zero target feature map (e.g. a dead ReLU layer).
_EPS = 1e-12


def normalised_feature_error(features, target):
    """||phi - phi0||^2 / ||phi0||^2 per image -> [B] (differentiable in `features`)."""
    features = tf.convert_to_tensor(features)
    target = tf.cast(tf.convert_to_tensor(target), features.dtype)
    axes = list(range(1, features.shape.rank))
    num = tf.reduce_sum(tf.square(features - target), axis=axes)
    den = tf.reduce_sum(tf.square(target), axis=axes)
    return num / (den + _EPS)


def feature_errors(classifier, images, reconstructions, layers, batch_size=16):
    """{layer: [N] normalised feature error} of reconstructions vs images (RGB 0-255)."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    rec = np.clip(np.asarray(reconstructions, np.float32), 0, 255)
    target = classifier.features(images, layers, batch_size)
    got = classifier.features(rec, layers, batch_size)
    return {l: normalised_feature_error(got[l], target[l]).numpy() for l in layers}
