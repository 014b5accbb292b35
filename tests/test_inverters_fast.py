"""The sub-pixel computation of an inverse module's transposed convolution equals the
reference (tf.nn.conv2d_transpose / keras Conv2DTranspose), for every stride the modules
use; and shipped inverters give the same output whichever computation runs (not timed:
speed is measured in bench/bench_inverter_speed.py)."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrestore.inverters import InverseModule, load_inverter
from tfrestore.inverters.modules import DECONV_IMPLS, subpixel_conv_transpose

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("size,strides,kernel", [
    ((7, 9), (2, 2), (4, 4)),      # the stride-2 modules (kernel 2s)
    ((14, 14), (4, 4), (8, 8)),    # the stride-4 module of the shipped MobileNetV2 inverter
    ((5, 6), (1, 1), (3, 3)),      # stride 1 (kernel 3)
    ((6, 5), (3, 3), (6, 6)),      # odd stride
    ((6, 5), (2, 1), (4, 3)),      # different strides per axis (no depth_to_space)
])
def test_subpixel_equals_conv2d_transpose(size, strides, kernel):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2,) + size + (5,)).astype(np.float32)
    w = rng.normal(size=kernel + (7, 5)).astype(np.float32)
    b = rng.normal(size=(7,)).astype(np.float32)
    out = [2, size[0] * strides[0], size[1] * strides[1], 7]
    ref = tf.nn.conv2d_transpose(x, w, out, (1,) + strides + (1,), "SAME").numpy() + b
    got = subpixel_conv_transpose(tf.constant(x), tf.constant(w), tf.constant(b),
                                  strides).numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    # A wrong phase or tap order is not a rounding error: a shifted kernel fails.
    bad = subpixel_conv_transpose(tf.constant(x), tf.constant(np.roll(w, 1, axis=0)),
                                  tf.constant(b), strides).numpy()
    assert np.abs(bad - ref).max() > 1e-2 * np.abs(ref).max()


def _module_out(m, x, impl):
    m.deconv_impl = impl
    try:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = m(x)
            loss = tf.reduce_sum(y * tf.cos(y))
        return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x] + m.trainable_weights)]
    finally:
        m.deconv_impl = "transpose"


@pytest.mark.parametrize("in_shape,out_shape", [
    ((7, 7, 6), (14, 14, 4)),      # integer ratio 2
    ((5, 5, 6), (20, 20, 3)),      # integer ratio 4
    ((13, 13, 6), (27, 27, 4)),    # AlexNet-like non-integer ratio: stride 3 then a resize
])
def test_module_paths_agree_with_gradients(in_shape, out_shape):
    keras.utils.set_random_seed(1)
    m = InverseModule(out_shape, kind="deconv", hidden=8)
    m.build((None,) + in_shape)
    x = tf.constant(np.random.default_rng(2).normal(size=(3,) + in_shape).astype(np.float32))
    y_ref, g_ref = _module_out(m, x, "transpose")
    # The reference really is the Keras layer: relu(Conv2DTranspose) -> (resize) -> conv.
    h = tf.nn.relu(m.up(x))
    if h.shape[1:3] != out_shape[:2]:
        h = tf.image.resize(h, out_shape[:2], method="bilinear")
    np.testing.assert_allclose(y_ref, m.out_conv(h).numpy(), rtol=1e-6, atol=1e-6)
    y, g = _module_out(m, x, "subpixel")
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5 * np.abs(y_ref).max())
    for a, b in zip(g, g_ref):   # training through either path gives the same gradients
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


def test_unknown_impl_is_refused():
    m = InverseModule((8, 8, 3), kind="deconv", hidden=4)
    m.build((None, 4, 4, 2))
    m.deconv_impl = "fft"
    with pytest.raises(ValueError, match="deconv_impl"):
        m(tf.zeros((1, 4, 4, 2)))
    assert "deconv_impl" not in m.get_config() and DECONV_IMPLS[0] == "transpose"


def test_shipped_inverter_same_output_either_path():
    path = os.path.join(REPO, "checkpoints", "inverter_mobilenet_v2_joint.keras")
    if not os.path.exists(path):
        pytest.skip("shipped inverter absent")
    inv = load_inverter(path)
    src = inv.levels[-1]
    shape = inv.shapes[-1]
    f = tf.constant(np.abs(np.random.default_rng(3).normal(size=(2,) + tuple(shape)))
                    .astype(np.float32))
    # The old code path written out: relu(Conv2DTranspose) -> (resize) -> conv, per module.
    x = f
    for m in inv.inverse_modules[::-1]:
        h = tf.nn.relu(m.up(x))
        if tuple(h.shape[1:3]) != m.out_shape[:2]:
            h = tf.image.resize(h, m.out_shape[:2], method="bilinear")
        x = m.out_conv(h)
    old = inv.to_rgb(x).numpy()
    for impl in DECONV_IMPLS:
        for m in inv.inverse_modules:
            m.deconv_impl = impl
        got = inv(f, source=src).numpy()
        np.testing.assert_allclose(got, old, rtol=1e-4, atol=1e-3, err_msg=impl)
    for m in inv.inverse_modules:
        m.deconv_impl = "transpose"
