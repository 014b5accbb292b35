"""Keras layers that Caffe networks need and Keras lacks.

`LRN` is Caffe's across-channel local response normalisation (AlexNet, CaffeNet), and
`SplitGroupConv2D` a grouped convolution computed as one convolution per channel group.
Both are registered so that `keras.models.load_model` restores them after `import tfrestore`.
"""
import keras
import tensorflow as tf

__all__ = ["LRN", "SplitGroupConv2D"]


@keras.saving.register_keras_serializable(package="tfrestore")
class LRN(keras.layers.Layer):
    """Caffe across-channel LRN: b_c = a_c / (k + (alpha / n) * sum_{|c'-c| <= n//2} a_c'^2)^beta.

    Parameters use Caffe's convention (`local_size` n, `alpha` before the division
    by n). `tf.nn.local_response_normalization` multiplies the plain sum of squares
    by its alpha, so it gets alpha / n; its `depth_radius` is (n - 1) / 2. The
    defaults are BVLC AlexNet's: n = 5, alpha = 1e-4, beta = 0.75, k = 1, which are
    depth_radius = 2, alpha = 2e-5 in TensorFlow terms. Channels near the ends see a
    zero-padded window, as in Caffe.

    Args:
      local_size: odd window length n over channels.
      alpha: Caffe's alpha (divided by n inside).
      beta: exponent.
      k: additive constant (TensorFlow's `bias`).
    """

    def __init__(self, local_size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super().__init__(**kwargs)
        if int(local_size) != local_size or local_size < 1 or local_size % 2 == 0:
            raise ValueError(f"LRN local_size must be a positive odd integer, got {local_size}.")
        self.local_size = int(local_size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    @property
    def tf_params(self):
        """The same normalisation as keyword arguments of tf.nn.local_response_normalization."""
        return dict(depth_radius=(self.local_size - 1) // 2,
                    alpha=self.alpha / self.local_size, beta=self.beta, bias=self.k)

    def call(self, x):
        # The TF kernel exists for float32 (and half on some devices only): compute in
        # float32 so mixed-precision models work on every device.
        y = tf.nn.local_response_normalization(tf.cast(x, tf.float32), **self.tf_params)
        return tf.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update(local_size=self.local_size, alpha=self.alpha, beta=self.beta, k=self.k)
        return cfg


@keras.saving.register_keras_serializable(package="tfrestore")
class SplitGroupConv2D(keras.layers.Conv2D):
    """`Conv2D(groups=g)` computed as g ordinary convolutions on the channel groups, concatenated.

    TensorFlow's grouped convolution has no fast CPU gradient kernel: for AlexNet's conv2
    (27x27x96 -> 256, 5x5, 2 groups) its backward pass to the input is several times slower
    than two plain convolutions on the channel halves (bench/bench_alexnet_groups.py).
    The result is the same convolution: the kernel variable keeps Conv2D's shape
    [kh, kw, in_channels / groups, filters] (output channels group by group), so weights
    saved from a `Conv2D(groups=g)` load unchanged, and with groups=1 it is a plain Conv2D.
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        xs = tf.split(inputs, self.groups, axis=axis)
        ks = tf.split(kernel, self.groups, axis=-1)
        return tf.concat([super(SplitGroupConv2D, self).convolution_op(x, k)
                          for x, k in zip(xs, ks)], axis=axis)
