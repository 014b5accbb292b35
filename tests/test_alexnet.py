"""The Keras AlexNet / CaffeNet port against an independent NumPy Caffe network.

The reference below is written the way Caffe computes: activations as (C, H, W), weights
as (out, in/groups, kh, kw), fc6 reading pool5 flattened in (c, h, w) order, Caffe's
ceil-mode pooling and its LRN formula b = a / (k + (alpha/n) * sum a^2)^beta. Random
Caffe-layout weights are converted to the .npy format the way caffe-tensorflow does, loaded
through `load_classifier`, and every layer is compared.
"""
import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

import keras

from tfrestore.classifiers import WeightsError, load_classifier
from tfrestore.classifiers import alexnet as ax
from tfrestore.classifiers.layers import LRN, SplitGroupConv2D

# ----------------------------------------------------------------- NumPy Caffe reference


def np_conv(x, w, b, stride=1, pad=0, groups=1):
    """Caffe convolution: x (C, H, W), w (O, C/groups, kh, kw) -> (O, Ho, Wo)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out_ch, cg, kh, kw = w.shape
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    og = out_ch // groups
    outs = [np.einsum("chwij,ocij->ohw", win[g * cg:(g + 1) * cg], w[g * og:(g + 1) * og],
                      optimize=True) for g in range(groups)]
    return np.concatenate(outs, 0) + b[:, None, None]


def np_lrn(a, n=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe LRN across channels (zero-padded window of n channels)."""
    c = a.shape[0]
    sq = np.pad(a ** 2, ((n // 2, n // 2), (0, 0), (0, 0)))
    s = sum(sq[i:i + c] for i in range(n))
    return a / (k + alpha / n * s) ** beta


def np_maxpool(x, k=3, s=2):
    """Caffe max pooling: output size ceil((H - k) / s) + 1, windows clipped at the border."""
    _, h, w = x.shape
    ho, wo = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    out = np.empty((x.shape[0], ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = x[:, i * s:min(i * s + k, h), j * s:min(j * s + k, w)].max(axis=(1, 2))
    return out


def relu(x):
    return np.maximum(x, 0)


def np_caffe_forward(bgr, p, caffenet=False):
    """Every blob of Caffe AlexNet (CaffeNet order if asked) for one (C, H, W) image."""
    f = {}
    x = bgr
    for blk, (stride, pad, groups) in ((1, (4, 0, 1)), (2, (1, 2, 2))):
        x = f[f"conv{blk}/lin"] = np_conv(x, *p[f"conv{blk}"], stride, pad, groups)
        x = f[f"conv{blk}/relu"] = relu(x)
        if caffenet:
            x = f[f"pool{blk}"] = np_maxpool(x)
            x = f[f"lrn{blk}"] = np_lrn(x)
        else:
            x = f[f"lrn{blk}"] = np_lrn(x)
            x = f[f"pool{blk}"] = np_maxpool(x)
    for blk, groups in ((3, 1), (4, 2), (5, 2)):
        x = f[f"conv{blk}/lin"] = np_conv(x, *p[f"conv{blk}"], 1, 1, groups)
        x = f[f"conv{blk}/relu"] = relu(x)
    x = f["pool5"] = np_maxpool(x)
    x = x.reshape(-1)  # Caffe's (c, h, w) flattening
    for name in ("fc6", "fc7"):
        w, b = p[name]
        x = f[f"{name}/lin"] = w @ x + b
        x = f[f"{name}/relu"] = relu(x)
    w, b = p["fc8"]
    x = f["fc8"] = w @ x + b
    e = np.exp(x - x.max())
    f["softmax"] = e / e.sum()
    return f


def caffe_to_npy(p):
    """Caffe-layout params -> bvlc_alexnet.npy layout, as caffe-tensorflow converts them."""
    out = {}
    for name, (w, b) in p.items():
        if w.ndim == 4:
            w = w.transpose(2, 3, 1, 0)                  # (o, i, h, w) -> (h, w, i, o)
        elif name == "fc6":                              # fc after a spatial blob: rows
            w = w.reshape(4096, 256, 6, 6).transpose(2, 3, 1, 0).reshape(9216, 4096)
        else:
            w = w.T
        out[name] = [np.ascontiguousarray(w, np.float32), b.astype(np.float32)]
    return out


CAFFE_SHAPES = {"conv1": (96, 3, 11, 11), "conv2": (256, 48, 5, 5), "conv3": (384, 256, 3, 3),
                "conv4": (384, 192, 3, 3), "conv5": (256, 192, 3, 3), "fc6": (4096, 9216),
                "fc7": (4096, 4096), "fc8": (1000, 4096)}
LAYERS = ["conv1/lin", "conv1/relu", "lrn1", "pool1", "conv2/lin", "conv2/relu", "lrn2",
          "pool2", "conv3/lin", "conv3/relu", "conv4/lin", "conv4/relu", "conv5/lin",
          "conv5/relu", "pool5", "fc6/lin", "fc6/relu", "fc7/lin", "fc7/relu", "fc8", "softmax"]


@pytest.fixture(scope="module")
def caffe_params():
    """Random Caffe-layout weights, He-scaled so activations (and LRN) are not tiny."""
    rng = np.random.default_rng(1234)
    p = {}
    for name, shape in CAFFE_SHAPES.items():
        fan_in = int(np.prod(shape[1:]))
        gain = 0.05 if name == "fc8" else 1.0  # keep the softmax away from one-hot
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(gain * np.sqrt(2 / fan_in))
        b = rng.standard_normal(shape[0]).astype(np.float32) * np.float32(0.1)
        p[name] = (w, b)
    return p


@pytest.fixture(scope="module")
def npy_path(caffe_params, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("alexnet") / "random_alexnet.npy")
    np.save(path, caffe_to_npy(caffe_params), allow_pickle=True)
    return path


@pytest.fixture(scope="module")
def image():
    from skimage import data
    return data.astronaut()[::2, ::2][:227, :227].astype(np.float32)  # RGB 0-255


@pytest.fixture(scope="module")
def classifiers(npy_path):
    return {order: load_classifier(order, weights=npy_path) for order in ("alexnet", "caffenet")}


def rel_err(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


# ----------------------------------------------------------------- the port versus NumPy


@pytest.mark.parametrize("order", ["alexnet", "caffenet"])
def test_every_layer_matches_numpy_caffe(order, classifiers, caffe_params, image):
    clf = classifiers[order]
    got = clf.feature_model(LAYERS)(image[None])
    got = {n: np.asarray(g[0], np.float64) for n, g in zip(LAYERS, got)}
    bgr = (image[..., ::-1].astype(np.float64) - np.asarray(ax.CAFFE_MEAN_BGR)).transpose(2, 0, 1)
    p64 = {k: (w.astype(np.float64), b.astype(np.float64)) for k, (w, b) in caffe_params.items()}
    ref = np_caffe_forward(bgr, p64, caffenet=(order == "caffenet"))
    for name in LAYERS:
        r = ref[name]
        r = r.transpose(1, 2, 0) if r.ndim == 3 else r  # (C, H, W) -> Keras (H, W, C)
        assert got[name].shape == r.shape, name
        assert rel_err(got[name], r) < 1e-4, (name, rel_err(got[name], r))
        print(f"{order} {name}: relative error {rel_err(got[name], r):.2e}")
    # The comparison is sensitive to the details it is meant to check:
    # LRN changes the activations substantially with these weights ...
    assert rel_err(ref["conv1/relu"], np_lrn(ref["conv1/relu"])) > 0.05
    # ... and TensorFlow's alpha convention (alpha not divided by n) would fail the test.
    assert rel_err(np_lrn(ref["conv1/relu"], alpha=5e-4), np_lrn(ref["conv1/relu"])) > 1e-2
    # A softmax that is not one-hot, so its comparison means something.
    assert ref["softmax"].max() < 0.9


def test_layer_shapes_and_names(classifiers):
    for order, clf in classifiers.items():
        assert clf.input_shape == (227, 227, 3)
        assert clf.output_shape("conv1/lin") == (55, 55, 96)
        assert clf.output_shape("lrn1") == ((27, 27, 96) if order == "caffenet" else (55, 55, 96))
        assert clf.output_shape("pool1") == (27, 27, 96)
        assert clf.output_shape("conv2/relu") == (27, 27, 256)
        assert clf.output_shape("pool2") == (13, 13, 256)
        assert clf.output_shape("conv4/lin") == (13, 13, 384)
        assert clf.output_shape("pool5") == (6, 6, 256)
        assert clf.output_shape("fc6") == (4096,)
        assert clf.output_shape("softmax") == (1000,)
        assert clf.resolve("conv4/lin") == "conv4"
        assert clf.resolve("conv4") == clf.resolve("conv4/relu") != "conv4"
        assert clf.resolve("norm2") == "lrn2" and clf.resolve("prob") == "softmax"
        assert clf.resolve("fc8/lin") == "fc8"
        assert len(clf.labels) == 1000
    with pytest.raises(Exception, match="conv6"):
        classifiers["alexnet"].resolve("conv6")


# ----------------------------------------------------------------- weights


def test_npy_round_trip(classifiers, npy_path, tmp_path):
    clf = classifiers["alexnet"]
    out = ax.save_alexnet_npy(clf, str(tmp_path / "saved.npy"))
    saved, original = ax.read_alexnet_npy(out), ax.read_alexnet_npy(npy_path)
    assert sorted(saved) == sorted(ax.PARAM_LAYERS)
    for name in ax.PARAM_LAYERS:
        for a, b in zip(saved[name], original[name]):
            np.testing.assert_array_equal(a, b)


def test_keras_weight_files_round_trip(classifiers, tmp_path):
    clf = classifiers["caffenet"]
    path = str(tmp_path / "caffenet.weights.h5")
    clf.model.save_weights(path)
    again = load_classifier("caffenet", weights=path, seed=7)
    for name in ("conv2", "fc8"):
        for a, b in zip(clf.model.get_layer(name).get_weights(),
                        again.model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def _small_params(bad_layer, bad_shape):
    """A full set of layer names with the right conv1/conv2 shapes and a bad one."""
    rng = np.random.default_rng(0)
    p = caffe_to_npy({n: (rng.standard_normal(CAFFE_SHAPES[n], dtype=np.float32),
                          np.zeros(CAFFE_SHAPES[n][0], np.float32)) for n in ("conv1", "conv2")})
    for name in ax.PARAM_LAYERS[2:]:
        p[name] = [np.zeros((1, 1), np.float32), np.zeros(1, np.float32)]
    p[bad_layer] = [np.zeros(bad_shape, np.float32), p[bad_layer][1]]
    return p


def test_bad_npy_names_layer_and_shapes(tmp_path):
    path = str(tmp_path / "bad.npy")
    np.save(path, _small_params("conv2", (5, 5, 96, 256)), allow_pickle=True)
    with pytest.raises(WeightsError) as e:
        load_classifier("alexnet", weights=path)
    msg = str(e.value)
    assert "'conv2'" in msg and "(5, 5, 96, 256)" in msg and "(5, 5, 48, 256)" in msg

    p = _small_params("conv1", (11, 11, 3, 96))
    del p["fc7"]
    np.save(path, p, allow_pickle=True)
    with pytest.raises(WeightsError, match="missing: \\['fc7'\\]"):
        load_classifier("alexnet", weights=path)

    np.save(path, np.zeros(3))
    with pytest.raises(WeightsError, match="pickled dict"):
        load_classifier("alexnet", weights=path)
    with pytest.raises(WeightsError, match="does not exist"):
        load_classifier("alexnet", weights=str(tmp_path / "absent.npy"))


def test_imagenet_offline_is_a_clear_error(monkeypatch):
    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(WeightsError) as e:
        load_classifier("alexnet", weights="imagenet")
    msg = str(e.value)
    assert "bvlc_alexnet.npy" in msg and ax.ALEXNET_NPY_URL in msg and "--weights=random" in msg
    assert "name resolution" in msg
    assert calls and calls[0][1]["file_hash"] == ax.ALEXNET_NPY_SHA256
    # AlexNet's file must never be put into the CaffeNet order.
    calls.clear()
    with pytest.raises(WeightsError, match="CaffeNet"):
        load_classifier("caffenet", weights="imagenet")
    assert not calls


def test_random_weights_are_seeded():
    a, b = (load_classifier("alexnet", weights="random", seed=3) for _ in range(2))
    keras.utils.set_random_seed(4)  # what load_alexnet does for seed=4, without the wrapper
    c = ax.build_alexnet()
    for name in ("conv1", "conv4", "fc8"):
        wa, wb = (m.model.get_layer(name).get_weights()[0] for m in (a, b))
        np.testing.assert_array_equal(wa, wb)
        assert np.std(wa) > 0
        assert not np.array_equal(wa, c.get_layer(name).get_weights()[0])
    assert "seed=3" in a.describe()["weights"]


# ----------------------------------------------------------------- building blocks


@pytest.mark.parametrize("n", [5, 3])
def test_lrn_layer_values_and_gradient(n):
    rng = np.random.default_rng(n)
    x = rng.uniform(-60, 60, (2, 4, 5, 11)).astype(np.float32)
    layer = LRN(local_size=n, alpha=1e-4, beta=0.75, k=1.0)
    want = np.stack([np_lrn(xi.astype(np.float64).transpose(2, 0, 1), n=n).transpose(1, 2, 0)
                     for xi in x])
    got = np.asarray(layer(x))
    assert rel_err(got, want) < 1e-5
    assert rel_err(got, x) > 0.05  # the normalisation is doing something

    def explicit(t):  # the Caffe formula in plain TF ops (no LRN kernel)
        sq = tf.pad(tf.square(t), [[0, 0], [0, 0], [0, 0], [n // 2, n // 2]])
        s = tf.add_n([sq[..., i:i + t.shape[-1]] for i in range(n)])
        return t / (1.0 + 1e-4 / n * s) ** 0.75

    xt = tf.constant(x)
    weights = tf.constant(rng.standard_normal(x.shape).astype(np.float32))
    grads = []
    for fn in (layer, explicit):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(fn(xt) * weights)
        grads.append(tape.gradient(loss, xt).numpy())
    assert rel_err(grads[0], grads[1]) < 1e-4


def test_lrn_config_and_keras_file(tmp_path):
    assert LRN().tf_params == dict(depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0)
    with pytest.raises(ValueError, match="odd"):
        LRN(local_size=4)
    inp = keras.Input((3, 3, 7))
    model = keras.Model(inp, LRN(local_size=3, alpha=1e-3, name="lrn")(inp))
    path = str(tmp_path / "lrn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("lrn").get_config()["alpha"] == 1e-3
    x = np.random.default_rng(0).uniform(-50, 50, (1, 3, 3, 7)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


@pytest.mark.parametrize("groups", [2, 3])
def test_split_group_conv_equals_grouped_conv2d(groups):
    """SplitGroupConv2D == Conv2D(groups=g) with the same weights: values and gradients."""
    rng = np.random.default_rng(groups)
    x = tf.constant(rng.standard_normal((2, 9, 9, 2 * groups)).astype(np.float32))
    conv = keras.layers.Conv2D(4 * groups, 3, groups=groups, padding="same")
    split = SplitGroupConv2D(4 * groups, 3, groups=groups, padding="same")
    conv.build(x.shape)
    split.build(x.shape)
    assert split.kernel.shape == conv.kernel.shape == (3, 3, 2, 4 * groups)
    conv.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                      for w in conv.get_weights()])
    split.set_weights(conv.get_weights())

    # Independent reference: each output group from its own input channels only.
    xn, kn = x.numpy(), conv.kernel.numpy()
    want = np.concatenate([tf.nn.conv2d(xn[..., 2 * g:2 * g + 2], kn[..., 4 * g:4 * g + 4], 1,
                                        "SAME").numpy() for g in range(groups)], -1)
    want += conv.bias.numpy()

    @tf.function
    def value_and_grads(layer, t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = layer(t)
            loss = tf.reduce_sum(y ** 2)
        return y, tape.gradient(loss, [t, layer.kernel, layer.bias])

    y1, g1 = value_and_grads(conv, x)
    y2, g2 = value_and_grads(split, x)
    assert rel_err(y2.numpy(), want) < 1e-5
    assert rel_err(y1.numpy(), want) < 1e-5
    for a, b in zip(g1, g2):
        assert rel_err(b.numpy(), a.numpy()) < 1e-5
    # The groups really are separate: a change in group 0's inputs leaves group 1 alone.
    x2 = xn.copy()
    x2[..., :2] += 1.0
    d = np.asarray(split(x2)) - np.asarray(split(xn))
    assert np.abs(d[..., :4]).max() > 0.1 and np.abs(d[..., 4:]).max() == 0


def test_grouped_layers_are_split_and_old_keras_files_load(classifiers, tmp_path):
    """conv2/4/5 use SplitGroupConv2D; a .keras saved with Conv2D(groups=2) still loads."""
    clf = classifiers["alexnet"]
    for name in ("conv2", "conv4", "conv5"):
        layer = clf.model.get_layer(name)
        assert isinstance(layer, SplitGroupConv2D) and layer.groups == 2
    assert clf.model.get_layer("conv3").groups == 1
    # An AlexNet as built before the split layer existed: every conv a Keras Conv2D.
    old = ax.build_alexnet(random_weights=False)
    inp = keras.Input((227, 227, 3))
    x = inp
    for layer in old.layers[1:]:
        if isinstance(layer, SplitGroupConv2D):
            cfg = layer.get_config()
            layer = keras.layers.Conv2D.from_config(cfg)
        x = layer(x)
    old = keras.Model(inp, x)
    ax.set_alexnet_weights(old, ax.alexnet_weights(clf))
    assert type(old.get_layer("conv5")) is keras.layers.Conv2D
    path = str(tmp_path / "old_alexnet.keras")
    old.save(path)
    again = load_classifier("alexnet", weights=path)
    img = np.random.default_rng(1).uniform(0, 255, (1, 227, 227, 3)).astype(np.float32)
    a = clf.feature_model(["conv5/lin"])(img)
    b = again.feature_model(["conv5/lin"])(img)
    assert rel_err(np.asarray(b), np.asarray(a)) < 1e-5
    # And a .keras of the split model round-trips as SplitGroupConv2D.
    path = str(tmp_path / "split_alexnet.keras")
    clf.model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert isinstance(loaded.get_layer("conv5"), SplitGroupConv2D)


def test_preprocessing_options():
    rgb = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3)).astype(np.float32)
    caffe = ax.alexnet_preprocessing("caffe")
    x = np.asarray(caffe(rgb))
    np.testing.assert_allclose(x, rgb[..., ::-1] - np.asarray(ax.CAFFE_MEAN_BGR, np.float32),
                               rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(np.asarray(caffe.invert(x)), rgb, atol=1e-4)
    glob = np.asarray(ax.alexnet_preprocessing("global")(rgb))
    np.testing.assert_allclose(glob, rgb[..., ::-1] - 114.799, atol=1e-4)
    with pytest.raises(ValueError, match="caffe"):
        ax.alexnet_preprocessing("imagenet")
    with pytest.raises(WeightsError, match=".npy"):
        ax.load_alexnet(weights=__file__)
