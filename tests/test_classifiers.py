"""The classifier interface: activation splitting, addressing, sub-models, weights."""
import numpy as np
import pytest
import keras

import tfrestore  # noqa: F401  (registers layers)
from tfrestore.classifiers import (Classifier, UnknownLayerError, WeightsError,
                                   load_classifier, make_preprocessing, split_activations)
from tfrestore.classifiers import applications


def small_model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    out = keras.layers.Dense(5, activation="softmax", name="fc")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def vgg():
    return load_classifier("vgg16", weights="random", seed=0)


def test_split_activations_keeps_outputs_and_exposes_preactivations():
    model = small_model()
    split = split_activations(model)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(split(x), model(x), rtol=1e-6, atol=1e-7)
    names = [l.name for l in split.layers]
    assert "c1__relu" in names and "fc__softmax" in names
    assert split.get_layer("c1").activation.__name__ == "linear"


def test_lin_and_relu_points(rng):
    clf = Classifier("small", small_model(), "raw")
    assert {"c1/lin", "c1/relu", "c1", "fc/lin", "fc/softmax", "p1"} <= set(clf.layer_names)
    x = rng.uniform(0, 255, size=(2, 16, 16, 3)).astype("float32")
    lin, relu, plain = clf.feature_model(["c1/lin", "c1/relu", "c1"])(x)
    assert np.min(lin) < 0  # the pre-activation really is before the ReLU
    np.testing.assert_allclose(relu, np.maximum(lin, 0), atol=1e-6)
    np.testing.assert_allclose(plain, relu)
    logits, probs = clf.feature_model(["fc/lin", "fc/softmax"])(x)
    np.testing.assert_allclose(probs, keras.ops.softmax(logits), rtol=1e-5)


def test_submodel_between_layers_matches_full_network(rng):
    clf = Classifier("small", small_model(), "raw")
    x = rng.uniform(0, 255, size=(3, 16, 16, 3)).astype("float32")
    mid = clf.submodel("p1")(x)
    np.testing.assert_allclose(clf.submodel("c2/relu", from_layer="p1")(mid),
                               clf.submodel("c2/relu")(x), rtol=1e-5, atol=1e-5)


def test_feature_model_is_cut_at_deepest_layer(vgg):
    m = vgg.feature_model(["conv1_1/relu", "pool1"])
    names = [l.name for l in m.get_layer(index=2).layers]
    assert "block1_pool" in names and "block2_conv1" not in names


def test_vgg16_aliases(vgg):
    assert vgg.resolve("conv3_3/lin") == "block3_conv3"
    assert vgg.resolve("conv3_3/relu") == "block3_conv3__relu"
    assert vgg.resolve("conv3_3") == "block3_conv3__relu"
    assert vgg.resolve("pool5") == "block5_pool"
    assert vgg.resolve("fc6") == "fc1__relu" and vgg.resolve("fc6/lin") == "fc1"
    assert vgg.resolve("fc8") == "predictions"
    assert vgg.resolve("softmax") == "predictions__softmax"
    assert vgg.output_shape("conv5_3") == (14, 14, 512)


def test_misspelt_layer_lists_valid_names(vgg):
    with pytest.raises(UnknownLayerError) as e:
        vgg.resolve("conv3_4")
    msg = str(e.value)
    assert "conv3_4" in msg and "block1_conv1/lin" in msg and "Did you mean conv3_3" in msg


def test_caffe_preprocessing_matches_keras_and_inverts(rng):
    rgb = rng.uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    prep = make_preprocessing("caffe")
    ref = keras.applications.vgg16.preprocess_input(rgb.copy())
    np.testing.assert_allclose(prep(rgb), ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(prep.invert(prep(rgb)), rgb, rtol=1e-5, atol=1e-4)
    tf_prep = make_preprocessing("tf")
    np.testing.assert_allclose(tf_prep(rgb),
                               keras.applications.mobilenet_v2.preprocess_input(rgb.copy()),
                               atol=1e-5)


def test_random_weights_are_seeded():
    a = load_classifier("vgg16", weights="random", seed=5, input_size=32)
    b = load_classifier("vgg16", weights="random", seed=5, input_size=32)
    c = load_classifier("vgg16", weights="random", seed=6, input_size=32)
    wa, wb, wc = (m.model.get_layer("block1_conv1").get_weights()[0] for m in (a, b, c))
    np.testing.assert_array_equal(wa, wb)
    assert not np.allclose(wa, wc)
    assert "fc6" not in a.aliases  # no head below the network's own size


def test_imagenet_unavailable_is_a_clear_error(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure: Name or service not known")
    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    with pytest.raises(WeightsError) as e:
        load_classifier("mobilenet_v2", weights="imagenet")
    msg = str(e.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in msg
    assert "https://storage.googleapis.com/" in msg and ".keras" in msg
    assert "--weights=random" in msg


def test_missing_weights_file_and_unknown_classifier():
    with pytest.raises(WeightsError, match="does not exist"):
        load_classifier("vgg16", weights="/nonexistent/w.weights.h5")
    with pytest.raises(ValueError, match="Unknown classifier"):
        load_classifier("vgg17")
    with pytest.raises(WeightsError, match="does not exist"):
        load_classifier("/nonexistent/model.keras")


def test_weights_file_round_trip(tmp_path, rng):
    a = load_classifier("vgg16", weights="random", seed=1, input_size=32)
    path = str(tmp_path / "vgg.weights.h5")
    a.model.save_weights(path)  # the split model has the same variables in the same order
    b = load_classifier("vgg16", weights=path, input_size=32)
    x = rng.uniform(0, 255, size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(a.feature_model("pool5")(x), b.feature_model("pool5")(x),
                               rtol=1e-5, atol=1e-5)


def test_saved_keras_file_is_a_classifier(tmp_path, rng):
    model = small_model()
    path = str(tmp_path / "small.keras")
    model.save(path)
    clf = load_classifier(path, preprocessing="tf")
    x = rng.uniform(0, 255, size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(clf.predict_proba(x), model(x / 127.5 - 1.0), rtol=1e-5,
                               atol=1e-6)
    assert clf.top_k(x, k=2)[0][0][0] == int(np.argmax(model(x / 127.5 - 1.0)[0]))


def test_imagenet_labels():
    labels = applications.imagenet_labels()
    assert len(labels) == 1000 and labels[0].startswith("tench")
    assert labels[652].startswith("military uniform")
