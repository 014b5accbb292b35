"""Metrics vs NumPy / scikit-image references."""
import os

import numpy as np
import pytest

from tfrestore.metrics import (PerceptualScore, PerceptualUnavailable, evaluate_reconstructions,
                               gram_matrix, make_perceptual, mse, normalised_feature_error,
                               perceptual_layers, psnr, ssim)

from test_objectives import tiny_classifier


@pytest.fixture
def pair(rng):
    a = rng.uniform(0, 255, (2, 24, 24, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.float32)
    return a, b


def test_mse_and_psnr(pair):
    a, b = pair
    ref = ((a.astype(np.float64) - b) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(mse(a, b).numpy(), ref, rtol=1e-5)
    np.testing.assert_allclose(psnr(a, b).numpy(), 10 * np.log10(255 ** 2 / ref), rtol=1e-4)


def test_ssim_matches_scikit_image(pair):
    from skimage.metrics import structural_similarity
    a, b = pair
    ours = ssim(a, b).numpy()
    ref = [structural_similarity(x, y, data_range=255, channel_axis=-1, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False) for x, y in zip(a, b)]
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    np.testing.assert_allclose(ssim(a, a).numpy(), 1.0, atol=1e-5)


def test_normalised_feature_error(rng):
    f = rng.normal(size=(2, 3, 3, 4))
    t = rng.normal(size=(2, 3, 3, 4))
    ref = ((f - t) ** 2).sum((1, 2, 3)) / (t ** 2).sum((1, 2, 3))
    np.testing.assert_allclose(normalised_feature_error(f, t).numpy(), ref, rtol=1e-6)


def test_evaluate_reconstructions(pair):
    clf = tiny_classifier(24)
    a, b = pair
    over = b + 300.0 * (b > 200)
    m = evaluate_reconstructions(clf, a, over, "c2")  # scored after clipping to 0-255
    b = np.clip(over, 0, 255)
    fa, fb = clf.feature_model("c2")(a).numpy(), clf.feature_model("c2")(b).numpy()
    ref = ((fb - fa) ** 2).sum((1, 2, 3)) / (fa ** 2).sum((1, 2, 3))
    np.testing.assert_allclose(m["feature_error"], ref, rtol=1e-4)
    np.testing.assert_allclose(m["mse"], mse(a, b).numpy(), rtol=1e-5)
    assert set(m) == {"mse", "psnr", "ssim", "feature_error"}


def test_gram_and_perceptual_score(pair):
    clf = tiny_classifier(24)
    a, b = pair
    f = np.random.default_rng(1).normal(size=(2, 4, 5, 3))
    ref_g = np.einsum("bhwc,bhwd->bcd", f, f) / 20
    np.testing.assert_allclose(gram_matrix(f).numpy(), ref_g, rtol=1e-5)
    layers = perceptual_layers(clf, count=2)
    score = PerceptualScore(clf, layers)
    np.testing.assert_allclose(score(a, a), 0.0, atol=1e-6)
    model = clf.feature_model(layers)
    ref = []
    for fa, fb in zip(model(a), model(b)):
        ga = np.einsum("bhwc,bhwd->bcd", fa, fa)
        gb = np.einsum("bhwc,bhwd->bcd", fb, fb)
        ref.append(((ga - gb) ** 2).sum((1, 2)) / (ga ** 2).sum((1, 2)))
    np.testing.assert_allclose(score(a, b), np.mean(ref, 0), rtol=1e-3)


def test_perceptual_setting_is_explicit():
    assert make_perceptual("none") is None
    cached = os.path.join(os.path.expanduser("~"), ".keras", "models",
                          "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    if os.path.exists(cached):
        pytest.skip("VGG16 ImageNet weights are cached here")
    with pytest.raises(PerceptualUnavailable, match="perceptual_network"):
        make_perceptual("vgg16")


def test_perceptual_offline_mobilenet(shared_data):
    score = make_perceptual(os.path.join(shared_data, "models",
                                         "mobilenet_v1_0.25_128_quant.tflite"))
    assert len(score.layers) == 5
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)  # resized to 128
    assert score(a, a)[0] < 1e-6 and score(a, 255 - a)[0] > 1e-3


# ------------------------------------------------- default perceptual network ("auto")
@pytest.fixture
def empty_keras_cache(monkeypatch, tmp_path):
    """A Keras cache with no VGG16 weights (both the $KERAS_HOME and the /tmp fallback)."""
    from tfrestore.metrics import perceptual
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(perceptual, "_FALLBACK_CACHE", str(tmp_path / "tmp_keras" / "models"))
    return tmp_path / "keras" / "models"


def test_perceptual_default_offline_is_the_bundled_network(empty_keras_cache):
    import warnings
    from tfrestore.metrics.perceptual import vgg16_weights_cached
    assert vgg16_weights_cached() is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = make_perceptual()  # the default setting: "auto"
    assert [str(w.message) for w in caught if "tfrestore" in w.filename] == []
    d = score.describe()
    assert d["perceptual_network"] == "mobilenet_v2_tflite"
    assert d["perceptual_choice"].startswith("auto:") and "not cached" in d["perceptual_choice"]
    assert d["perceptual_weights"].endswith("tf2_mobilenet_v2_1.0_224_ptq.tflite")
    assert len(score.layers) == 5 and all(l.endswith("/relu6") for l in score.layers)
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)  # resized to 224
    assert score(a, a)[0] < 1e-6 and score(a, 255 - a)[0] > 1e-3


def _fake_loader(calls, fail_vgg16=False):
    from tfrestore.classifiers import WeightsError, load_classifier

    def load(setting):
        calls.append(setting)
        if setting == "vgg16" and fail_vgg16:
            raise WeightsError("corrupt cached file")
        # Any VGG16 stands in (random weights, small input): only the choice is tested.
        return load_classifier("vgg16", weights="random", input_size=32)
    return load


def test_perceptual_default_prefers_cached_vgg16(empty_keras_cache, monkeypatch):
    from tfrestore.metrics import perceptual
    cached = empty_keras_cache / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"h5")
    assert perceptual.vgg16_weights_cached() == str(cached)
    calls = []
    monkeypatch.setattr(perceptual, "_load", _fake_loader(calls))
    score = make_perceptual("auto")
    assert calls == ["vgg16"] and score.describe()["perceptual_network"] == "vgg16"
    assert str(cached) in score.describe()["perceptual_choice"]
    assert score.layers == list(perceptual.VGG16_PERCEPTUAL_LAYERS)
    # An unloadable cached file falls back to the bundled network, and says so.
    calls.clear()
    monkeypatch.setattr(perceptual, "_load", _fake_loader(calls, fail_vgg16=True))
    score = make_perceptual("auto")
    assert calls == ["vgg16", "mobilenet_v2_tflite"]
    assert score.describe()["perceptual_network"] == "mobilenet_v2_tflite"
    assert "failed to load" in score.describe()["perceptual_choice"]
    # An explicit setting is never substituted.
    monkeypatch.setattr(perceptual, "_load", _fake_loader([], fail_vgg16=True))
    with pytest.raises(PerceptualUnavailable, match="auto"):
        make_perceptual("vgg16")


def test_perceptual_bundled_by_name():
    score = make_perceptual("mobilenet_v2_tflite")
    assert score.describe()["perceptual_choice"] == "requested: mobilenet_v2_tflite"
