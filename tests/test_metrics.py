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
