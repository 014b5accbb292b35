"""Differentiable, invertible mapping from RGB 0–255 images to a network's input.

Every classifier in tfrestore sees images through one of these layers, so that
inversion, priors and metrics can all work on RGB 0–255 while each network keeps
its own convention (Caffe BGR mean subtraction, [-1, 1] scaling, torch
normalisation, TFLite quantisation ranges).
"""
import keras
import numpy as np
from keras import ops

__all__ = ["Preprocessing", "PRESETS", "make_preprocessing"]

# name -> (reverse channels (RGB->BGR), per-channel mean in RGB order, per-channel std)
PRESETS = {
    # Caffe / keras "caffe" mode: BGR, subtract the ImageNet mean, keep the 0-255 range.
    "caffe": (True, (123.68, 116.779, 103.939), (1.0, 1.0, 1.0)),
    # keras "tf" mode: scale to [-1, 1].
    "tf": (False, (127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    # keras "torch" mode: [0, 1] then ImageNet mean/std.
    "torch": (False, (0.485 * 255, 0.456 * 255, 0.406 * 255),
              (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    # The network takes RGB 0-255 itself (e.g. EfficientNet, models with built-in rescaling).
    "raw": (False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


@keras.saving.register_keras_serializable(package="tfrestore")
class Preprocessing(keras.layers.Layer):
    """x = (rgb[..., order] - mean[order]) / std[order]; `invert` undoes it exactly."""

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), bgr=False, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.bgr = bool(bgr)
        order = [2, 1, 0] if self.bgr else [0, 1, 2]
        self._mean_net = np.asarray(self.mean, "float32")[order]
        self._std_net = np.asarray(self.std, "float32")[order]

    def call(self, rgb):
        x = ops.flip(rgb, axis=-1) if self.bgr else rgb
        return (x - self._mean_net) / self._std_net

    def invert(self, x):
        """Network input -> RGB 0-255 (no clipping)."""
        rgb = x * self._std_net + self._mean_net
        return ops.flip(rgb, axis=-1) if self.bgr else rgb

    @property
    def mean_rgb(self):
        return np.asarray(self.mean, "float32")

    def get_config(self):
        cfg = super().get_config()
        cfg.update(mean=list(self.mean), std=list(self.std), bgr=self.bgr)
        return cfg


def make_preprocessing(mode, name="preprocessing"):
    """A `Preprocessing` layer from a preset name (see `PRESETS`)."""
    if isinstance(mode, Preprocessing):
        return mode
    if mode not in PRESETS:
        raise ValueError(f"Unknown preprocessing '{mode}'. Choose one of {sorted(PRESETS)}.")
    bgr, mean, std = PRESETS[mode]
    return Preprocessing(mean=mean, std=std, bgr=bgr, name=name)
