"""Keras layers that Caffe networks need and Keras lacks.

`LRN` is Caffe's across-channel local response normalisation (AlexNet, CaffeNet),
registered so that `keras.models.load_model` restores it after `import tfrestore`.
"""
import keras
import tensorflow as tf

__all__ = ["LRN"]


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
