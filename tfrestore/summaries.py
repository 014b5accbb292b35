"""TensorBoard summaries: the one place every training and inversion loop writes them.

Thin wrappers over `tf.summary.scalar` / `tf.summary.image` (the tensorboard package is a
dependency) that accept Python or NumPy values. Call inside `writer.as_default(step=...)`
or pass `step`.
"""
import numpy as np
import tensorflow as tf

__all__ = ["scalar", "image"]


def scalar(tag, value, step=None):
    return tf.summary.scalar(tag, tf.constant(float(value), tf.float32), step=step)


def image(tag, images, step=None, max_outputs=3):
    """A batch [N, H, W, C] with values in [0, 1]."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    return tf.summary.image(tag, images, step=step, max_outputs=max_outputs)
