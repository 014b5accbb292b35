"""Robustness transforms and the image parameterisation of pre-image optimisation.

* `jitter`: random circular translation by (dy, dx), each uniform on {-T..T} (zero
  mean), drawn from a seeded `tf.random.Generator`; the network sees the shifted image,
  the image priors the unshifted one (M&V 2016).
* sigma-scaling (M&V 2015): the variable u is the mean-subtracted image divided by
  sigma, so it has about unit norm: rgb = mean + sigma * u (`to_rgb`, `from_rgb`).
* `project_bound`: the hard per-pixel bound ||x_ij|| <= B+ of 2016.
"""
import tensorflow as tf

__all__ = ["jitter", "draw_shift", "to_rgb", "from_rgb", "project_bound", "effective_sigma",
           "SIGMA_2015"]

# Mean Euclidean norm of mean-subtracted 227x227 training images (M&V 2015).
SIGMA_2015 = 2.7098e4


def effective_sigma(sigma, height, width, ref=227):
    """The sigma used for an H x W image: `sigma` itself, at every size.

    Keeping sigma (rather than rescaling it by sqrt(H W / 227^2) to keep ||u|| = 1)
    keeps the per-pixel scale of u, hence of the alpha-norm and TV terms and of the
    lambdas, equal to the paper's 227 x 227 setting; rescaling made the 6th-power
    alpha-norm (x (227/H)^6 per pixel) blow up momentum SGD on small images.
    """
    del height, width, ref
    return float(sigma)


def draw_shift(generator, max_shift):
    """Two int32 shifts uniform on {-T, ..., T} (T a scalar int tensor; T=0 -> no shift)."""
    t = tf.cast(max_shift, tf.int32)
    return generator.uniform([2], minval=-t, maxval=t + 1, dtype=tf.int32)


def jitter(images, shift):
    """Circularly translate a batch [B, H, W, C] by `shift` = (dy, dx)."""
    return tf.roll(images, shift=shift, axis=[1, 2])


def to_rgb(variable, mean, scale=1.0):
    return mean + scale * variable


def from_rgb(rgb, mean, scale=1.0):
    return (rgb - mean) / scale


def project_bound(centred, bound):
    """Scale each pixel vector of a mean-subtracted batch down to norm <= `bound`."""
    norm = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=-1, keepdims=True))
    return centred * tf.minimum(1.0, bound / tf.maximum(norm, 1e-12))
