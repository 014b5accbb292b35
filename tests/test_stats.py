"""Tests for tfrestore.stats on synthetic fields with known covariance, and the binary."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfrestore import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------- synthetic fields
def _kernel():
    k = np.array([[0.2, 0.5, 0.1], [0.4, 1.0, 0.3], [0.0, 0.6, 0.2]])
    return k


def torus_fields(rng, n, h, w, c, kernel):
    """White noise circularly convolved with `kernel` (via FFT), [n, h, w, c]."""
    z = rng.normal(size=(n, c, h, w))
    kp = np.zeros((h, w))
    kp[:kernel.shape[0], :kernel.shape[1]] = kernel
    x = np.real(np.fft.ifft2(np.fft.fft2(z) * np.fft.fft2(kp)))
    return np.transpose(x, (0, 2, 3, 1))


def torus_covariance(h, w, kernel):
    """Exact covariance K K^T of the torus field, with K built entry by entry."""
    P = h * w
    K = np.zeros((P, P))
    for i in range(h):
        for j in range(w):
            for u in range(kernel.shape[0]):
                for v in range(kernel.shape[1]):
                    K[i * w + j, ((i - u) % h) * w + (j - v) % w] += kernel[u, v]
    return K @ K.T


def numpy_reference(x):
    """Direct (one-shot) NumPy computation of every definition in the accumulator."""
    n, H, W, C = x.shape
    f = np.transpose(x, (0, 3, 1, 2)).reshape(n, C, H * W)
    cov = np.mean([np.cov(f[:, c, :], rowvar=False) for c in range(C)], axis=0)
    full = x.reshape(n, H * W, C)
    gram = np.mean([m.T @ m / (H * W) for m in full], axis=0)
    return cov, gram


@pytest.fixture(scope="module")
def stationary():
    rng = np.random.default_rng(1)
    return torus_fields(rng, 512, 8, 8, 16, _kernel())


def _accumulate(x, batch=64, **kw):
    acc = stats.FeatureMapAccumulator(**kw)
    for i in range(0, len(x), batch):
        acc.update(x[i:i + batch].astype(np.float32))
    return acc


# ---------------------------------------------------------------------- Toeplitz measure
def test_toeplitz_exact_matrices_score_zero():
    h, w = 7, 6
    ii, jj = np.divmod(np.arange(h * w), w)
    d2 = (ii[:, None] - ii[None]) ** 2 + 0.5 * (jj[:, None] - jj[None]) ** 2
    cov = np.exp(-d2 / 4.0) + 0.1 * (ii[:, None] - ii[None] == 1)   # asymmetric offsets too
    for margin in (0, 1, 2):
        assert stats.toeplitz_residual(cov, h, w, margin) < 1e-12
    # a circulant (torus) covariance and its inverse are both exactly stationary
    tc = torus_covariance(8, 8, _kernel())
    assert stats.toeplitz_residual(tc, 8, 8, 0) < 1e-12
    assert stats.toeplitz_residual(np.linalg.inv(tc), 8, 8, 1) < 1e-9


def test_toeplitz_projection_is_orthogonal(rng):
    a = rng.normal(size=(30, 30))
    sub, proj, (h, w) = stats.toeplitz_projection(a, 5, 6, 0)
    assert (h, w) == (5, 6)
    # residual orthogonal to the projection, and projecting twice changes nothing
    assert abs(np.sum((sub - proj) * proj)) < 1e-9 * np.sum(sub * sub)
    _, proj2, _ = stats.toeplitz_projection(proj, 5, 6, 0)
    np.testing.assert_allclose(proj2, proj, atol=1e-12)
    # unstructured random matrix: far from Toeplitz, close to the shuffled baseline
    r = stats.toeplitz_residual(a, 5, 6, 0)
    assert r > 0.9
    assert abs(r - stats.shuffled_baseline(a, 5, 6, 0, seed=3)) < 0.1


def test_toeplitz_bad_input():
    with pytest.raises(ValueError, match="no interior"):
        stats.toeplitz_residual(np.eye(16), 4, 4, margin=2)
    with pytest.raises(ValueError, match="does not match"):
        stats.toeplitz_residual(np.eye(15), 4, 4)


def test_regularized_inverse(rng):
    a = rng.normal(size=(10, 3))
    cov = a @ a.T            # rank 3: singular
    inv, lam = stats.regularized_inverse(cov, eps=1e-2)
    assert np.isclose(lam, 1e-2 * np.trace(cov) / 10)
    np.testing.assert_allclose(inv @ (cov + lam * np.eye(10)), np.eye(10), atol=1e-8)


# ---------------------------------------------------------------------- accumulation
def test_covariance_of_stationary_field_matches_known(stationary):
    res = stats.analyse(_accumulate(stationary).result())
    known = torus_covariance(8, 8, _kernel())
    cov = res["covariance"]
    rel = np.linalg.norm(cov - known) / np.linalg.norm(known)
    assert rel < 0.08, rel        # 8192 samples of a 64-dim field (0.053 measured)
    # offset-averaged (stationary) estimate is much closer than single entries
    auto_known = stats.autocovariance(known, 8, 8, 1)
    auto = res["autocovariance"]
    assert np.abs(auto - auto_known).max() < 0.04 * np.abs(auto_known).max()
    # near-perfect stationarity, far below the no-structure baseline
    assert res["toeplitz_residual"] < 0.06          # 0.039 measured
    assert res["toeplitz_residual_shuffled"] > 5 * res["toeplitz_residual"]
    assert res["toeplitz_residual_inverse"] < 0.5 * res["toeplitz_residual_inverse_shuffled"]


def test_nonstationary_field_scores_clearly_worse(stationary):
    # standard deviation growing from 0.3 to 1.7 across the image
    ramp = np.linspace(0.3, 1.7, 8)[None, None, :, None]
    res_s = stats.analyse(_accumulate(stationary).result())
    res_n = stats.analyse(_accumulate(stationary * ramp).result())
    assert res_n["toeplitz_residual"] > 0.4           # 0.52 measured, stationary 0.04
    assert res_n["toeplitz_residual"] > 5 * res_s["toeplitz_residual"]
    assert res_n["toeplitz_residual_inverse"] > 5 * res_s["toeplitz_residual_inverse"]


def test_streaming_equals_one_shot(rng):
    x = rng.normal(size=(23, 6, 5, 4)) * rng.uniform(0.5, 2, 4) + 3.0
    x = np.maximum(x - 3.2, 0) + 1e3            # large mean: tests the shifted sums
    x[..., 1] = np.maximum(x[..., 1] - 1e3, 0)  # a sparse channel
    ref_cov, ref_gram = numpy_reference(x.astype(np.float32).astype(np.float64))
    for batch in (1, 4, 23):
        r = _accumulate(x, batch=batch, bins=16).result()
        assert r["n_images"] == 23
        np.testing.assert_allclose(r["covariance"], ref_cov, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r["gram"], ref_gram, rtol=1e-6)
    x32 = x.astype(np.float32)
    assert np.isclose(r["fraction_zeros"], np.mean(x32 == 0))
    np.testing.assert_allclose(r["channel_fraction_zeros"], np.mean(x32 == 0, axis=(0, 1, 2)))
    g_img = stats.gini_index(x32.reshape(23, -1))
    assert np.isclose(r["gini_mean"], g_img.mean()) and np.isclose(r["gini_std"], g_img.std())
    g_ch = stats.gini_index(np.transpose(x32, (0, 3, 1, 2)).reshape(23, 4, -1))
    np.testing.assert_allclose(r["channel_gini"], np.nanmean(g_ch, 0))
    # histograms equal np.histogram with the same edges, per channel
    for c in range(4):
        h, _ = np.histogram(x32[..., c], bins=r["hist_edges"])
        np.testing.assert_array_equal(r["histograms"][c], h)
    assert r["histograms"].sum() == x.size and r["hist_clipped"] == 0


def test_position_dependent_mean_does_not_change_covariance(stationary):
    mean_map = np.linspace(-5, 5, 64).reshape(1, 8, 8, 1)
    a = _accumulate(stationary).covariance()
    b = _accumulate(stationary + mean_map).covariance()
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_crop_and_histogram_clipping(rng):
    x = rng.normal(size=(10, 9, 11, 2)).astype(np.float32)
    acc = stats.FeatureMapAccumulator(max_size=4, bins=8, hist_range=(-1, 1))
    acc.update(x)
    r = acc.result()
    assert tuple(r["crop_box"]) == (2, 3, 4, 4)
    ref, _ = numpy_reference(x[:, 2:6, 3:7, :].astype(np.float64))
    np.testing.assert_allclose(r["covariance"], ref, rtol=1e-6, atol=1e-7)
    assert r["hist_clipped"] == np.sum(np.abs(x) >= 1)
    assert r["histograms"].sum() == x.size


def test_accumulator_errors(rng):
    acc = stats.FeatureMapAccumulator()
    with pytest.raises(ValueError, match="dense"):
        acc.update(rng.normal(size=(3, 10)))
    acc.update(rng.normal(size=(1, 4, 4, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        acc.covariance()
    with pytest.raises(ValueError, match="after batches"):
        acc.update(rng.normal(size=(1, 5, 4, 2)))


# ---------------------------------------------------------------------- sparsity
def test_gini_known_values(rng):
    assert abs(stats.gini_index(np.full(10, 3.0))) < 1e-12
    one_hot = np.zeros(10)
    one_hot[4] = -2.0
    assert np.isclose(stats.gini_index(one_hot), 1 - 1 / 10)
    assert np.isclose(stats.gini_index([0, 0, 1, 1]), 0.5)       # by hand
    assert np.isnan(stats.gini_index(np.zeros(5)))
    # equals the classical mean-absolute-difference Gini, is scale invariant, TF == NumPy
    v = np.abs(rng.normal(size=50))
    classical = np.abs(v[:, None] - v[None]).sum() / (2 * len(v) * v.sum())
    assert np.isclose(stats.gini_index(v), classical)
    assert np.isclose(stats.gini_index(7 * v), stats.gini_index(v))
    m = rng.normal(size=(3, 40))
    np.testing.assert_allclose(stats.gini_index_tf(m).numpy(), stats.gini_index(m))
    assert stats.fraction_zeros([0, 1, 0, 2]) == 0.5
    assert stats.fraction_zeros([1e-9, 1, 0, 2], tol=1e-6) == 0.5


# ---------------------------------------------------------------------- classifier + binary
def _tiny_keras(path):
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = keras.layers.MaxPooling2D(name="pool_a")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="fc")(x)
    keras.Model(inp, out).save(path)
    return path


def test_featmap_stats_on_classifier_and_figures(tmp_path):
    from tfrestore.classifiers import load_classifier
    clf = load_classifier(_tiny_keras(str(tmp_path / "tiny.keras")))
    res = stats.featmap_stats(clf, ["conv_a/lin", "conv_b"], ["astronaut", "chelsea", "coffee"],
                              batch_size=2, max_size=6)
    a, b = res["conv_a/lin"], res["conv_b"]
    assert tuple(a["shape"]) == (16, 16, 4) and tuple(a["crop_box"]) == (5, 5, 6, 6)
    assert a["covariance"].shape == (36, 36) and a["n_images"] == 3
    assert b["fraction_zeros"] > 0 and a["fraction_zeros"] == 0   # ReLU vs linear output
    # the statistics equal a direct computation on the model's features
    from tfrestore.data import load_images
    imgs = load_images(["astronaut", "chelsea", "coffee"], 16).images
    feats = np.asarray(clf.feature_model("conv_b")(imgs))
    ref_cov, ref_gram = numpy_reference(feats[:, 1:7, 1:7, :].astype(np.float64))
    np.testing.assert_allclose(b["covariance"], ref_cov, rtol=1e-4, atol=1e-6)
    paths = stats.save_stats(b, str(tmp_path / "out" / "tiny_conv_b"))
    for p in paths:
        assert os.path.getsize(p) > 100
    with open(paths[1]) as f:
        js = json.load(f)
    assert js["summary"]["layer"] == "conv_b"
    npz = np.load(paths[0])
    assert npz["inverse"].dtype == np.float32
    np.testing.assert_allclose(npz["inverse"], b["inverse"], rtol=1e-6)
    # a one-element list gives a dict with the same numbers as a two-layer pass
    one = stats.featmap_stats(clf, ["conv_b"], ["astronaut", "chelsea", "coffee"],
                              batch_size=3, max_size=6)
    np.testing.assert_allclose(one["conv_b"]["covariance"], b["covariance"], rtol=1e-5,
                               atol=1e-8)
    with pytest.raises(ValueError, match="spatial statistics"):
        stats.featmap_stats(clf, "fc", ["astronaut", "chelsea"])


def _run_bin(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "featmap_stats.py"),
                           *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_binary_end_to_end_and_errors(tmp_path):
    model = _tiny_keras(str(tmp_path / "tiny.keras"))
    out = tmp_path / "res"
    p = _run_bin(f"--classifier={model}", "--layer=conv_a,pool_a",
                 "--images=astronaut,chelsea,rocket", "--batch_size=2", f"--output_dir={out}",
                 "--seed=1")
    assert p.returncode == 0, p.stderr
    assert "toeplitz_residual=" in p.stdout
    names = sorted(os.listdir(out))
    assert "tiny_conv_a.npz" in names and "tiny_pool_a_covariance.png" in names
    with open(out / "tiny_pool_a.json") as f:
        js = json.load(f)
    assert js["settings"]["seed"] == 1 and js["summary"]["n_images"] == 3


def test_unknown_layer_lists_valid_names(tmp_path):
    from tfrestore.classifiers import UnknownLayerError, load_classifier
    clf = load_classifier(_tiny_keras(str(tmp_path / "tiny.keras")))
    with pytest.raises(UnknownLayerError, match="conv_zz.*conv_a"):
        stats.featmap_stats(clf, "conv_zz", ["astronaut", "chelsea"])


def test_dc_colour_response_of_a_known_linear_layer():
    # A layer whose mean response to constant colour c is A c (+ bias): the singular values
    # and the weakest direction are those of A, whatever the spatial kernel's shape.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3)) @ np.diag([3.0, 1.0, 0.1])
    kernel = rng.uniform(0.5, 1.5, (3, 3))
    kernel /= kernel.sum()               # spatial taps sum to 1: a constant image gives A c

    def feature_fn(x):
        from scipy.ndimage import convolve
        x = np.asarray(x, np.float64)
        chans = [convolve(x[0, :, :, c], kernel, mode="nearest") for c in range(3)]
        return (np.stack(chans, -1) @ a.T + 7.0)[None]
    s, dirs = stats.dc_colour_response(feature_fn, 32)
    _, s_ref, vt = np.linalg.svd(a)
    np.testing.assert_allclose(s, s_ref[::-1], rtol=1e-5)
    assert abs(abs(dirs[0] @ vt[-1]) - 1) < 1e-6 and abs(abs(dirs[-1] @ vt[0]) - 1) < 1e-6
