"""Sparsity measures of activations: Gini index and fraction of zeros.

Gini index (Hurley & Rickard 2009, "Comparing measures of sparsity"), on magnitudes:
for c = |x| sorted ascending, c_(1) <= ... <= c_(n),

    G(x) = 1 - 2 * sum_k (c_(k) / ||c||_1) * (n - k + 1/2) / n.

G = 0 for a vector with all entries equal in magnitude, 1 - 1/n for a one-hot vector.
It is undefined for the zero vector; we return NaN there (callers use nan-means).
"""
import numpy as np
import tensorflow as tf

__all__ = ["gini_index", "gini_index_tf", "fraction_zeros"]


def gini_index(x, axis=-1):
    """Gini index of |x| along `axis` (NumPy; NaN where all entries are 0)."""
    c = np.sort(np.abs(np.asarray(x, np.float64)), axis=axis)
    c = np.moveaxis(c, axis, -1)
    n = c.shape[-1]
    k = np.arange(1, n + 1)
    s = c.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 1.0 - 2.0 * np.sum(c * ((n - k + 0.5) / n), -1) / s
    return np.where(s > 0, g, np.nan)


def gini_index_tf(x):
    """Gini index of |x| along the last axis (TensorFlow, float64; NaN for zero vectors)."""
    c = tf.sort(tf.abs(tf.cast(x, tf.float64)), axis=-1)
    n = tf.cast(tf.shape(c)[-1], tf.float64)
    k = tf.range(1, tf.shape(c)[-1] + 1, dtype=tf.float64)
    s = tf.reduce_sum(c, -1)
    num = tf.reduce_sum(c * ((n - k + 0.5) / n), -1)
    g = 1.0 - 2.0 * num / tf.where(s > 0, s, tf.ones_like(s))
    return tf.where(s > 0, g, tf.fill(tf.shape(g), tf.constant(np.nan, tf.float64)))


def fraction_zeros(x, tol=0.0):
    """Fraction of entries with |x| <= tol."""
    x = np.asarray(x)
    return float(np.mean(np.abs(x) <= tol)) if x.size else float("nan")
