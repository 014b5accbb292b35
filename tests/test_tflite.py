"""TFLite import: dequantisation, layer-by-layer agreement with the TFLite interpreter,
the float original, and real quantised MobileNets (the bundled MobileNetV2, see also
test_bundled.py, and the MobileNetV1 of ../shared/data)."""
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrestore.classifiers import load_classifier
from tfrestore.classifiers.tflite import (SUPPORTED_OPS, UnsupportedOpError, dequantize,
                                          load_tflite, tflite_preprocessing)
from tfrestore.classifiers.weights import WeightsError

L = keras.layers
SIZE = 24


def _interpreter(path, preserve=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(model_path=path, experimental_preserve_all_tensors=preserve)
    it.allocate_tensors()
    return it


def _dequantised_tensor(it, index):
    detail = [d for d in it.get_tensor_details() if d["index"] == index][0]
    q = it.get_tensor(index).astype(np.float64)
    scale, zp = detail["quantization"]
    return (q - zp) * scale if scale else q


def _convert(model, path, n_rep=32, seed=0, io_type=tf.uint8):
    """Full-integer int8 quantisation with uint8 (like the Coral models) or int8 input/output."""
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(n_rep):
            yield [rng.uniform(-1, 1, (1,) + model.input_shape[1:]).astype("float32")]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = io_type
    conv.inference_output_type = io_type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = conv.convert()
    with open(path, "wb") as f:
        f.write(data)
    return path


def _small_cnn(seed=0):
    """Every supported layer kind: PAD, strided VALID/SAME convs, relu/relu6, depthwise
    (multiplier 1 and 2), ADD, AVERAGE_POOL_2D, MEAN, RESHAPE, FULLY_CONNECTED, SOFTMAX."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    x = L.ZeroPadding2D(1, name="pad")(inp)
    x = L.Conv2D(8, 3, strides=2, padding="valid", activation="relu6", name="conv_a")(x)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw_b")(x)
    y = L.Conv2D(8, 1, name="proj_c")(y)
    x = L.Add(name="block_add")([x, y])
    x = L.DepthwiseConv2D(3, padding="valid", depth_multiplier=2, name="dw_mult")(x)
    x = L.AveragePooling2D(2, name="avgpool")(x)
    x = L.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="conv_s2")(x)
    x = L.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    x = L.Conv2D(16, 1, name="head_conv")(x)
    x = L.Reshape((16,), name="squeeze")(x)
    x = L.Dense(10, name="fc")(x)
    x = L.Softmax(name="probs")(x)
    model = keras.Model(inp, x)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if len(ws) == 2:  # non-zero biases, so their int32 dequantisation is exercised
            layer.set_weights([ws[0], rng.normal(0, 0.2, ws[1].shape).astype("float32")])
    return model


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    model = _small_cnn()
    path = _convert(model, str(tmp_path_factory.mktemp("tfl") / "small.tflite"))
    return model, path


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(1).integers(0, 256, (8, SIZE, SIZE, 3)).astype("float32")


# --------------------------------------------------------------------------- maths
def test_dequantize_per_channel_and_per_tensor():
    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, (4, 3, 3, 5)).astype(np.int8)
    scale0 = rng.uniform(0.01, 0.1, 4)
    ref0 = np.stack([q[i].astype(np.float64) * scale0[i] for i in range(4)])
    np.testing.assert_allclose(dequantize(q, scale0, np.zeros(4), axis=0), ref0, rtol=1e-6)
    scale3 = rng.uniform(0.01, 0.1, 5)   # depthwise filters are quantised along axis 3
    ref3 = np.stack([q[..., j].astype(np.float64) * scale3[j] for j in range(5)], axis=-1)
    np.testing.assert_allclose(dequantize(q, scale3, [0] * 5, axis=3), ref3, rtol=1e-6)
    u = rng.integers(0, 256, (2, 3)).astype(np.uint8)
    np.testing.assert_allclose(dequantize(u, [0.5], [128]),
                               (u.astype(np.float64) - 128) * 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="Per-channel"):
        dequantize(q, scale0, np.zeros(4), axis=3)


def test_preprocessing_from_input_quantisation():
    rgb = np.array([[[[0.0, 127.0, 254.5]]]], "float32")
    u8 = tflite_preprocessing("UINT8", (np.array([1 / 127.5]), np.array([127]), 0))
    np.testing.assert_allclose(np.asarray(u8(rgb)), [[[[-127 / 127.5, 0.0, 1.0]]]], atol=1e-6)
    # The same real range stored as int8 has its zero point shifted by -128.
    i8 = tflite_preprocessing("INT8", (np.array([1 / 127.5]), np.array([-1]), 0))
    np.testing.assert_allclose(np.asarray(i8(rgb)), np.asarray(u8(rgb)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(i8.invert(i8(rgb))), rgb, atol=1e-4)


# --------------------------------------------------------------------------- import
def test_weights_match_float_original(converted):
    model, path = converted
    clf = load_tflite(path)
    for name in ("conv_a", "dw_b", "proj_c", "dw_mult", "conv_s2", "head_conv", "fc"):
        w_ref, b_ref = model.get_layer(name).get_weights()
        w, b = clf.model.get_layer(clf.resolve(f"{name}/lin") if f"{name}/lin" in
                                   clf.layer_names else name).get_weights()
        assert w.shape == w_ref.shape, name
        # Symmetric int8 per output channel: |error| <= max|w_c| / 127 / 2.
        w_flat = w_ref.reshape(w_ref.shape[:2] + (-1,)) if name.startswith("dw") else w_ref
        amax = np.abs(w_flat).max(axis=tuple(range(w_flat.ndim - 1)))
        err = np.abs(w - w_ref).reshape(w_flat.shape)
        assert np.all(err <= amax / 127 / 2 + 1e-6), name
        assert err.max() > 0, f"{name}: weights were not quantised at all?"
        np.testing.assert_allclose(b, b_ref, atol=0.01 * np.abs(b_ref).max(), err_msg=name)


def test_layers_match_interpreter_and_float_model(converted, rgb):
    model, path = converted
    clf = load_tflite(path)
    assert clf.input_shape == (SIZE, SIZE, 3)
    names = list(clf.tflite_tensors)
    # The converter keeps Keras layer names, except on the output (named by the signature).
    assert names == ["pad", "conv_a", "dw_b", "proj_c", "block_add", "dw_mult", "avgpool",
                     "conv_s2", "gap", "head_conv", "squeeze", "fc", "softmax"]
    feats = clf.feature_model(names)(rgb)
    it = _interpreter(path, preserve=True)
    inp = it.get_input_details()[0]
    errs = {n: [] for n in names}
    for k in range(len(rgb)):
        it.set_tensor(inp["index"], rgb[k:k + 1].astype(np.uint8))
        it.invoke()
        for n, f in zip(names, feats):
            ref = _dequantised_tensor(it, clf.tflite_tensors[n])[0]
            mine = np.asarray(f[k], np.float64)
            errs[n].append(np.linalg.norm(mine - ref) / (np.linalg.norm(ref) + 1e-12))
    worst = {n: max(e) for n, e in errs.items()}
    # Only activation rounding separates the two: about 2% at worst (measured).
    assert all(e < 0.05 for e in worst.values()), worst
    # Against the float original the only difference is the weight rounding.
    ref = model(clf.preprocess(rgb))
    np.testing.assert_allclose(np.asarray(feats[-1]), np.asarray(ref), atol=0.03)
    logits_ref = keras.Model(model.input, model.get_layer("fc").output)(clf.preprocess(rgb))
    logits = clf.feature_model("logits")(rgb)
    rel = np.linalg.norm(logits - logits_ref) / np.linalg.norm(logits_ref)
    assert rel < 0.03, rel


def test_int8_input_zero_point_offset(tmp_path, rgb):
    """An int8 input holds pixel - 128: the preprocessing must undo the -128 shift."""
    path = _convert(_small_cnn(seed=1), str(tmp_path / "int8.tflite"), n_rep=8,
                    io_type=tf.int8)
    clf = load_tflite(path)
    it = _interpreter(path)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.int8
    scale, zp = inp["quantization"]
    assert clf.preprocessing.get_config()["mean"] == [zp + 128.0] * 3
    mine = clf.predict_proba(rgb)
    for k in range(len(rgb)):
        it.set_tensor(inp["index"], (rgb[k:k + 1] - 128).astype(np.int8))
        it.invoke()
        o_scale, o_zp = out["quantization"]
        ref = (it.get_tensor(out["index"])[0].astype(np.float64) - o_zp) * o_scale
        np.testing.assert_allclose(mine[k], ref, atol=0.03)


def test_layers_addressable(converted):
    _, path = converted
    clf = load_classifier(path)           # dispatched by the .tflite suffix
    names = clf.layer_names
    for n in ("conv_a/lin", "conv_a/relu6", "dw_b/lin", "dw_b/relu", "block_add", "softmax"):
        assert n in names, n
    assert clf.resolve("conv_a/relu") == clf.resolve("conv_a/relu6") == clf.resolve("conv_a")
    assert clf.resolve("conv_a/lin") != clf.resolve("conv_a")
    assert clf.resolve("logits") == clf.resolve("fc")
    assert clf.output_shape("dw_mult") == (10, 10, 16)
    assert clf.output_shape("conv_s2") == (3, 3, 12)   # TF SAME padding with stride 2
    lin, act = clf.feature_model(["conv_a/lin", "conv_a"])(np.full((1, SIZE, SIZE, 3), 200.0))
    np.testing.assert_allclose(np.asarray(act), np.clip(np.asarray(lin), 0, 6), atol=1e-6)
    sub = clf.submodel("logits", from_layer="block_add")
    assert sub.output_shape == (None, 10)
    assert all("/" not in layer.name for layer in clf.model.layers)
    # Records name the file, not this machine's folders.
    assert clf.describe()["weights"] == os.path.basename(path)


def test_labels(converted, tmp_path):
    _, path = converted
    assert load_tflite(path).labels is None   # 10 outputs: no default label set
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(10)) + "\n")
    clf = load_tflite(path, labels=str(labels))
    assert clf.label(3) == "class 3"
    labels.write_text("a\nb\n")
    with pytest.raises(WeightsError, match="2 labels for a model with 10 outputs"):
        load_tflite(path, labels=str(labels))


def test_unsupported_op_is_a_clear_error(tmp_path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="conv")(inp)
    x = L.Activation("tanh", name="squash")(x)
    x = L.GlobalAveragePooling2D()(x)
    path = _convert(keras.Model(inp, x), str(tmp_path / "tanh.tflite"), n_rep=4)
    with pytest.raises(UnsupportedOpError) as info:
        load_tflite(path)
    msg = str(info.value)
    assert "TANH" in msg and "CONV_2D" in msg and "DEPTHWISE_CONV_2D" in msg
    assert set(SUPPORTED_OPS) >= {"ADD", "MEAN", "SOFTMAX", "QUANTIZE", "RESHAPE"}


def test_bad_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_classifier(str(tmp_path / "missing.tflite"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="Cannot read TFLite file"):
        load_tflite(str(junk))


# --------------------------------------------------------------------------- real models
def test_bundled_mobilenet_v2_coral_example(shared_data):
    """The Coral example's known answer, on the bundled copy of its model."""
    from tfrestore.data.images import load_image
    clf = load_classifier("mobilenet_v2_tflite")
    assert clf.input_shape == (224, 224, 3) and len(clf.labels) == 1001
    # Whole image resized to 224x224, as in the Coral example that names this label.
    img = load_image(os.path.join(shared_data, "images", "grace_hopper.bmp"))
    img = np.round(tf.image.resize(img, (224, 224)).numpy())[None]
    index, label, score = clf.top_k(img, k=1)[0][0]
    assert label == "military uniform" and index == 653 and score > 0.5


def test_shared_mobilenet_v1_uint8_layers_match(shared_data):
    from tfrestore.data import load_images
    path = os.path.join(shared_data, "models", "mobilenet_v1_0.25_128_quant.tflite")
    clf = load_tflite(path)
    assert clf.preprocessing.get_config()["mean"] == [128.0] * 3
    images = np.round(load_images([os.path.join(shared_data, "images")], 128).images)
    names = list(clf.tflite_tensors)
    feats = clf.feature_model(names)(images)
    it = _interpreter(path, preserve=True)
    inp = it.get_input_details()[0]
    for k in range(len(images)):
        it.set_tensor(inp["index"], images[k:k + 1].astype(np.uint8))
        it.invoke()
        for n, f in zip(names, feats):
            ref = _dequantised_tensor(it, clf.tflite_tensors[n])[0]
            rel = np.linalg.norm(np.asarray(f[k]) - ref) / (np.linalg.norm(ref) + 1e-12)
            assert rel < 0.25, (n, k, rel)
        probs = _dequantised_tensor(it, clf.tflite_tensors[names[-1]])[0]
        assert np.argmax(np.asarray(feats[-1][k])) == np.argmax(probs) or \
            np.sort(probs)[-2] >= np.max(probs) - 2 / 256  # a tie within output rounding
