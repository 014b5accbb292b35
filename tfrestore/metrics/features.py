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
    model = classifier.feature_model(layers)
    out = {l: [] for l in layers}
    rec = np.clip(np.asarray(reconstructions, np.float32), 0, 255)
    images = np.asarray(images, np.float32)
    for i in range(0, len(images), batch_size):
        ft = model(images[i:i + batch_size], training=False)
        fr = model(rec[i:i + batch_size], training=False)
        if len(layers) == 1:
            ft, fr = [ft], [fr]
        for l, a, b in zip(layers, fr, ft):
            out[l].append(normalised_feature_error(a, b).numpy())
    return {l: np.concatenate(v) for l, v in out.items()}
