"""Experts, prior layers (full / separable / channel-wise), whitening and patch data."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfrestore  # noqa: F401  (registers the prior for load_model)
from tfrestore.data.patches import (channel_statistics, extract_patches, feature_maps,
                                    prepare_patches, split_by_image)
from tfrestore.priors import (PatchPrior, PriorMismatchError, fit_whitening, get_expert,
                              load_prior)


# ------------------------------------------------------------------ experts
@pytest.mark.parametrize("name", ["logistic", "student_t"])
def test_expert_derivatives_match_autodiff(name):
    e = get_expert(name)
    s = tf.constant(np.linspace(-30, 30, 601), tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(s)
        G = e.G(s)
        g = e.g(s)
    np.testing.assert_allclose(tape.gradient(G, s), e.g(s), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tape.gradient(g, s), e.gprime(s), rtol=1e-7, atol=1e-12)
    # Closed forms of REFERENCE §3 in NumPy.
    x = s.numpy()
    if name == "logistic":
        np.testing.assert_allclose(G, -np.log(np.cosh(x)), rtol=1e-9)
        np.testing.assert_allclose(e.gprime(s), -1 / np.cosh(x) ** 2, rtol=1e-6, atol=1e-20)
    else:
        np.testing.assert_allclose(G, -np.log1p(x ** 2 / 2), rtol=1e-9)
        np.testing.assert_allclose(e.g(s), -2 * x / (x ** 2 + 2), rtol=1e-9)
        np.testing.assert_allclose(e.gprime(s), 2 * (x ** 2 - 2) / (x ** 2 + 2) ** 2, rtol=1e-7)


@pytest.mark.parametrize("name", ["logistic", "student_t"])
def test_experts_stable_for_huge_responses(name):
    e = get_expert(name)
    s = tf.constant([-1e30, -1e12, 1e12, 1e30], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(s)
        G = e.G(s)
    for v in (G, e.g(s), e.gprime(s), tape.gradient(G, s)):
        assert np.all(np.isfinite(v.numpy())), v
    assert np.all(G.numpy() < 0)                       # a log-potential, decreasing in |s|
    if name == "logistic":
        np.testing.assert_allclose(G.numpy(), -np.abs(s.numpy()) + np.log(2), rtol=1e-6)
        np.testing.assert_allclose(e.g(s).numpy(), [1, 1, -1, -1])
    else:
        np.testing.assert_allclose(G.numpy(), -(2 * np.log(np.abs(s.numpy().astype(np.float64)))
                                                - np.log(2)), rtol=1e-6)
        assert np.all(np.sign(e.g(s).numpy()) == [1, 1, -1, -1])
    with pytest.raises(ValueError, match="Unknown expert"):
        get_expert("gaussian")


# ------------------------------------------------------------------ prior layers
def _fitted_prior(layout, rng, channels=3, ps=3, n=6, expert="student_t", centre=True):
    imgs = rng.uniform(0, 255, (4, 12, 12, channels)).astype(np.float32)
    prior = PatchPrior(ps, channels, n, expert=expert, layout=layout, centre=centre, seed=2,
                       metadata={"source": "test"})
    mean, std = channel_statistics(list(imgs))
    cw = layout == "channelwise"
    patches = extract_patches(list(imgs), (ps, ps), 400, 0, cw, (mean, std))
    prior.set_statistics(mean, std)
    flat = prior.patch_coords(patches).numpy()
    if layout == "separable":
        wh = fit_whitening(flat, kind="none")
    else:
        wh = fit_whitening(flat, flat.shape[1] - (1 if centre else 0), kind="pca")
        prior = PatchPrior(ps, channels, n, expert=expert, layout=layout, centre=centre,
                           dim=wh.dim, seed=2, metadata={"source": "test"})
    prior.set_statistics(mean, std, wh)
    return prior, imgs


def _numpy_energy(prior, x):
    """Independent energy: explicit loops over patch positions, no convolution."""
    e = get_expert(prior.expert.name)
    ph, pw = prior.patch_size
    w = prior.model_filters().numpy()
    alpha = prior.alpha().numpy()
    m, s = np.asarray(prior.norm_mean), np.asarray(prior.norm_std)
    mu, f = np.asarray(prior.white_mean), np.asarray(prior.white_matrix)
    out = []
    for img in x:
        xn = (img - m) / s
        chans = [xn[..., c:c + 1] for c in range(xn.shape[-1])] \
            if prior.layout == "channelwise" else [xn]
        total = 0.0
        for ch in chans:
            for i in range(ch.shape[0] - ph + 1):
                for j in range(ch.shape[1] - pw + 1):
                    p = ch[i:i + ph, j:j + pw].reshape(-1).astype(np.float64)
                    if prior.centre:
                        p = p - p.mean()
                    resp = ((p - mu) @ f) @ w
                    total += -np.sum(alpha * e.G(tf.constant(resp)).numpy())
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("layout", ["full", "separable", "channelwise"])
def test_energy_is_mrf_sum_matching_numpy(layout, rng):
    prior, imgs = _fitted_prior(layout, rng)
    x = imgs[:2, :9, :10]
    e = prior(x).numpy()
    assert e.shape == (2,)
    np.testing.assert_allclose(e, _numpy_energy(prior, x), rtol=2e-4)
    # A sum over positions: the energy map adds up to it, and a bigger image costs more.
    np.testing.assert_allclose(prior.energy_map(x).numpy().sum((1, 2)), e, rtol=1e-5)
    if layout == "separable":
        w = prior.model_filters().numpy()        # [D, N]: rank 1 over (space, channel)
        for f in w.T:
            sv = np.linalg.svd(f.reshape(-1, prior.channels), compute_uv=False)
            assert sv[1] < 1e-5 * sv[0]


def test_energy_gradient_matches_finite_differences(rng):
    prior, imgs = _fitted_prior("full", rng)
    x = tf.Variable(imgs[:1, :7, :7].astype(np.float64).astype(np.float32))
    with tf.GradientTape() as tape:
        e = prior(x)
    grad = tape.gradient(e, x).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    for idx in [(0, 3, 3, 0), (0, 0, 6, 2), (0, 5, 1, 1)]:
        h = 0.05
        xp, xm = x.numpy().copy(), x.numpy().copy()
        xp[idx] += h
        xm[idx] -= h
        fd = (prior(xp).numpy()[0] - prior(xm).numpy()[0]) / (2 * h)
        assert fd == pytest.approx(grad[idx], rel=2e-2, abs=1e-3)


@pytest.mark.parametrize("layout", ["full", "separable"])
def test_keras_save_load_round_trip(layout, rng, tmp_path):
    prior, imgs = _fitted_prior(layout, rng, expert="logistic")
    path = os.path.join(tmp_path, "prior.keras")
    prior.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, PatchPrior)
    np.testing.assert_allclose(loaded(imgs).numpy(), prior(imgs).numpy(), rtol=1e-6)
    assert loaded.metadata == {"source": "test"}
    assert loaded.describe()["expert"] == "logistic" and loaded.layout == layout
    assert load_prior(path).dim == prior.dim
    with pytest.raises(FileNotFoundError):
        load_prior(os.path.join(tmp_path, "missing.keras"))


def test_prior_rejects_mismatched_inputs(rng):
    prior, _ = _fitted_prior("full", rng)
    with pytest.raises(PriorMismatchError, match="3-channel"):
        prior(np.zeros((1, 8, 8, 5), np.float32))
    with pytest.raises(PriorMismatchError, match="smaller"):
        prior(np.zeros((1, 2, 8, 3), np.float32))
    with pytest.raises(ValueError, match="layout"):
        PatchPrior(3, 3, 4, layout="diagonal")


# ------------------------------------------------------------------ whitening
@pytest.mark.parametrize("kind", ["pca", "zca"])
def test_whitening_gives_identity_covariance(kind, rng):
    a = rng.standard_normal((6, 6))
    x = rng.standard_normal((5000, 6)) @ a.T + 3.0
    wh = fit_whitening(x, 4, kind=kind)
    z = wh.coords(x)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(4), atol=1e-3)
    t = wh.transform(x)
    assert t.shape == ((5000, 6) if kind == "zca" else (5000, 4))
    if kind == "zca":   # ZCA = PCA rotated back by U_d: same covariance on its subspace
        np.testing.assert_allclose(t, z @ wh.basis.T, atol=1e-4)
    # Kept variance is the top of the spectrum.
    evals = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    np.testing.assert_allclose(wh.eigenvalues, evals[:4], rtol=1e-3)
    with pytest.raises(ValueError, match="span only"):
        fit_whitening(x[:, :3] @ np.ones((3, 6)), 4)


# ------------------------------------------------------------------ patches
def test_split_by_image_never_shares_images(rng):
    names = [f"dir/img{i}.jpg" for i in range(20)]
    tr, va = split_by_image(names, 0.25, seed=3)
    assert len(va) == 5 and not set(tr) & set(va) and len(tr) + len(va) == 20
    tr2, va2 = split_by_image(names, val_names=["img3.jpg", "img7.jpg"])
    assert list(va2) == [3, 7]
    with pytest.raises(ValueError, match="not among"):
        split_by_image(names, val_names=["other.jpg"])
    # Patches: validation patches come only from validation images.
    imgs = np.stack([np.full((10, 10, 3), float(i)) for i in range(20)]).astype(np.float32)
    data = prepare_patches(list(imgs), names, (4, 4), 300, 50, 0.25, seed=3)
    val_vals = set(np.unique(data.val[..., 0]))
    train_vals = set(np.unique(data.train[..., 0]))
    assert val_vals == {float(i) for i in va} and not val_vals & train_vals
    np.testing.assert_allclose(data.norm_mean, np.mean([float(i) for i in tr]), rtol=1e-5)
    again = prepare_patches(list(imgs), names, (4, 4), 300, 50, 0.25, seed=3)
    np.testing.assert_array_equal(again.train, data.train)


def test_feature_map_patches_through_classifier(rng):
    from tfrestore.classifiers import Classifier
    inp = keras.Input((16, 16, 3))
    out = keras.layers.Conv2D(5, 3, activation="relu", name="conv")(inp)
    clf = Classifier("tiny", keras.Model(inp, out), "raw")
    imgs = rng.uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    fm = feature_maps(clf, "conv/lin", imgs)
    assert fm.shape == (3, 14, 14, 5) and fm.min() < 0          # pre-activation
    fm_relu = feature_maps(clf, "conv/relu", imgs)
    np.testing.assert_allclose(fm_relu, np.maximum(fm, 0), atol=1e-5)
    pats = extract_patches(list(fm), (3, 3), 10, 0)
    assert pats.shape == (10, 3, 3, 5)


@pytest.mark.parametrize("name", ["logistic", "student_t"])
@pytest.mark.parametrize("rank", [4, 5])
def test_fused_expert_sums_equal_plain_sums_and_gradients(name, rank, rng):
    """Expert.sum_G (XLA-fused forward and backward) == Σ_positions G(s) by plain autodiff."""
    e = get_expert(name)
    shape = (2, 3, 4, 5) if rank == 4 else (2, 2, 3, 4, 5)
    s = rng.standard_normal(shape) * 3
    s.flat[:4] = [1e30, -1e20, 0.0, 1e5]              # stable for huge responses too
    axes = list(range(1, rank - 1))
    dy = tf.constant(rng.standard_normal((2, 5)).astype(np.float32))
    for dtype, rtol in ((tf.float32, 1e-5), (tf.float64, 1e-12)):
        st = tf.constant(s, dtype)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(st)
            fused = e.sum_G(st)
            plain = tf.reduce_sum(e.G(st), axis=axes)
            lf = tf.reduce_sum(fused * tf.cast(dy, dtype))
            lp = tf.reduce_sum(plain * tf.cast(dy, dtype))
        assert fused.shape == (2, 5)
        np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=rtol)
        gf, gp = tape.gradient(lf, st).numpy(), tape.gradient(lp, st).numpy()
        np.testing.assert_allclose(gf, gp, rtol=rtol, atol=1e-30)
        assert np.all(np.isfinite(gf)) and np.abs(gf).max() > 0.01
