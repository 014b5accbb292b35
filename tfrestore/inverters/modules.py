"""Inverse modules (Dosovitskiy & Brox): map one block's output back to its input.

Two designs (REFERENCE.md §4):

* ``"deconv"``: transposed conv (kernel 2s, stride s) -> ReLU -> conv 3x3 -- the best
  module in the thesis;
* ``"upsample"``: bilinear upsampling by s -> conv 3x3 -> ReLU -> conv 3x3 -- avoids the
  checkerboard artefacts of strided transposed convolutions (Odena et al. 2016).

The last conv is linear: the target (a pre- or post-activation feature map, or the
network input) may be negative. A module is built from the two shapes alone, so it
fits any block of any classifier; when the spatial ratio is not an integer (e.g.
AlexNet's 55 -> 27 pooling), the upsampled map is bilinearly resized to the exact target.
"""
import math

import keras
import tensorflow as tf
from keras import ops

__all__ = ["InverseModule", "MODULE_KINDS", "DECONV_IMPLS", "default_hidden",
           "subpixel_conv_transpose"]

MODULE_KINDS = ("deconv", "upsample")
# How a "deconv" module computes its transposed convolution (same weights, same result):
# "transpose" = keras Conv2DTranspose (the default and reference), "subpixel" = one
# stride-1 conv + depth_to_space (see `subpixel_conv_transpose`).
DECONV_IMPLS = ("transpose", "subpixel")


def _same_pad_before(k, s):
    """Leading padding TF's SAME uses for a stride-s transposed conv of kernel k."""
    return max(k - s, 0) // 2


def subpixel_conv_transpose(x, kernel, bias, strides):
    """`padding="same"` transposed convolution computed as a sub-pixel convolution.

    Equal to ``tf.nn.conv2d_transpose(x, kernel, [B, h*sh, w*sw, C], strides, "SAME")
    + bias`` (Shi et al. 2016): with output row o shifted by the SAME padding p,
    o + p = s*q + r, output (q, r) only sees inputs q-m+1..q (m = ceil(k/s)), so one
    stride-1 conv on x with m x m taps producing sh*sw*C channels (phase r's kernel is the
    transposed kernel's rows s*u + r), then depth_to_space and a crop of p rows, gives it
    exactly, with (n+1)^2/n^2 of the MACs. Measured on this package's 2-core CPU
    (bench/bench_inverter_speed.py) it is not faster than TF's Conv2DTranspose: the
    conv is, but depth_to_space and the crop are two more passes over the 224x224 hidden
    map; hence "transpose" stays the default and this is the checked alternative.

    Args:
      x: [B, h, w, c_in]; kernel: [kh, kw, C, c_in] (the Conv2DTranspose layout);
      bias: [C] or None; strides: (sh, sw).
    """
    kh, kw, c, c_in = (int(d) for d in kernel.shape)
    h, w = int(x.shape[1]), int(x.shape[2])
    (sh, sw), pads, taps = strides, [], []
    for k, s, n in ((kh, sh, h), (kw, sw, w)):
        m = -(-k // s)  # taps per output phase
        p = _same_pad_before(k, s)
        q0, q1 = p // s, (s * n - 1 + p) // s  # coarse rows that cover the output
        left = m - 1 - q0
        pads.append((left, (q1 - q0 + 1) - n - left + m - 1, p - s * q0))
        taps.append(m)
    (mh, mw) = taps
    # kernel rows s*u + r (u = tap distance, r = phase); rows >= k are zero.
    kp = tf.pad(kernel, [[0, sh * mh - kh], [0, sw * mw - kw], [0, 0], [0, 0]])
    kp = tf.reshape(kp, [mh, sh, mw, sw, c, c_in])
    kp = tf.reverse(kp, [0, 2])  # tap j reads input q - (m-1-j)
    kp = tf.reshape(tf.transpose(kp, [0, 2, 5, 1, 3, 4]), [mh, mw, c_in, sh * sw * c])
    xp = tf.pad(x, [[0, 0], list(pads[0][:2]), list(pads[1][:2]), [0, 0]])
    z = tf.nn.conv2d(xp, kp, 1, "VALID")
    if bias is not None:
        z = tf.nn.bias_add(z, tf.tile(bias, [sh * sw]))
    if sh == sw:
        y = tf.nn.depth_to_space(z, sh) if sh > 1 else z
    else:
        b_, hq, wq = tf.shape(z)[0], int(z.shape[1]), int(z.shape[2])
        y = tf.reshape(tf.transpose(tf.reshape(z, [b_, hq, wq, sh, sw, c]),
                                    [0, 1, 3, 2, 4, 5]), [b_, hq * sh, wq * sw, c])
    ch, cw = pads[0][2], pads[1][2]
    if (ch, cw) != (0, 0) or int(y.shape[1]) != sh * h or int(y.shape[2]) != sw * w:
        y = y[:, ch:ch + sh * h, cw:cw + sw * w]
    return y


def default_hidden(in_channels, out_channels):
    """Hidden width: enough to carry the input, never below 32, capped for speed."""
    return int(min(256, max(32, in_channels, 2 * out_channels)))


@keras.saving.register_keras_serializable(package="tfrestore")
class InverseModule(keras.layers.Layer):
    """Invert one block: features [B, h, w, c_in] -> target [B, H, W, c_out].

    Args:
      out_shape: (H, W, C) of the block's input (the module's target).
      kind: "deconv" or "upsample" (see module docstring).
      hidden: channels of the hidden layer (default: `default_hidden`).
      source: name of the layer whose output this module takes (recorded only).
      target: name of the layer (or "input") it reconstructs (recorded only).

    ``deconv_impl`` (an attribute, not saved: it changes speed, not results) picks how a
    "deconv" module runs its transposed convolution, one of `DECONV_IMPLS`.
    """

    deconv_impl = "transpose"

    def __init__(self, out_shape, kind="deconv", hidden=None, source="", target="",
                 **kwargs):
        super().__init__(**kwargs)
        if kind not in MODULE_KINDS:
            raise ValueError(f"Unknown inverse module kind '{kind}'; use one of {MODULE_KINDS}.")
        self.out_shape = tuple(int(d) for d in out_shape)
        if len(self.out_shape) != 3:
            raise ValueError(f"out_shape must be (H, W, C), got {out_shape}.")
        self.kind = kind
        self.hidden = None if hidden is None else int(hidden)
        self.source, self.target = str(source), str(target)

    def build(self, input_shape):
        h_in, w_in, c_in = (int(d) for d in input_shape[1:])
        h_out, w_out, c_out = self.out_shape
        if h_out < h_in or w_out < w_in:
            raise ValueError(
                f"Inverse module {self.source}->{self.target}: target {self.out_shape} is "
                f"smaller than the input {(h_in, w_in, c_in)}; a block never upsamples, so "
                f"the block boundaries are probably in the wrong order.")
        # Integer factor that gets closest from above; an exact resize fixes the rest.
        self.stride = (max(1, math.ceil(h_out / h_in - 1e-6)),
                       max(1, math.ceil(w_out / w_in - 1e-6)))
        hidden = self.hidden or default_hidden(c_in, c_out)
        self.hidden = hidden
        sh, sw = self.stride
        if self.kind == "deconv":
            # Kernel 2s (or 3 at stride 1) so every output pixel sees >= 2 inputs per axis.
            k = (2 * sh if sh > 1 else 3, 2 * sw if sw > 1 else 3)
            self.up = keras.layers.Conv2DTranspose(hidden, k, strides=self.stride,
                                                   padding="same", name="deconv")
            self.up.build((None, h_in, w_in, c_in))
        else:
            self.up = keras.layers.Conv2D(hidden, 3, padding="same", name="conv_a")
            self.up.build((None, h_in * sh, w_in * sw, c_in))
        self._up_size = (h_in * sh, w_in * sw)
        self.out_conv = keras.layers.Conv2D(c_out, 3, padding="same", name="conv_out")
        self.out_conv.build((None, h_out, w_out, hidden))
        self._needs_resize = self._up_size != (h_out, w_out)
        super().build(input_shape)

    def _resize(self, x, size, method):
        return ops.image.resize(x, size, interpolation=method)

    def call(self, x):
        h_out, w_out, _ = self.out_shape
        sh, sw = self.stride
        if self.kind == "deconv":
            if self.deconv_impl not in DECONV_IMPLS:
                raise ValueError(f"deconv_impl '{self.deconv_impl}': use one of {DECONV_IMPLS}.")
            if self.deconv_impl == "subpixel":
                y = ops.relu(subpixel_conv_transpose(x, self.up.kernel, self.up.bias,
                                                     self.stride))
            else:
                y = ops.relu(self.up(x))
        else:
            if (sh, sw) != (1, 1):
                x = self._resize(x, self._up_size, "bilinear")
            y = ops.relu(self.up(x))
        if self._needs_resize:
            y = self._resize(y, (h_out, w_out), "bilinear")
        return self.out_conv(y)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.out_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update(out_shape=list(self.out_shape), kind=self.kind, hidden=self.hidden,
                   source=self.source, target=self.target)
        return cfg
