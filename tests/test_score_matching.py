"""Score matching: the O(T·N·d) objective against autodiff and against synthetic ICA data."""
import numpy as np
import pytest
import tensorflow as tf

from tfrestore.priors import (PatchPrior, fit_whitening, get_expert, score_matching_loss,
                              score_matching_pairwise)
from tfrestore.priors.training import TrainConfig, train_prior


def _autodiff_objective(x, w, alpha, expert):
    """E[tr ∇ψ + ½‖ψ‖²] with ψ = ∇ log p computed by autodiff, tr ∇ψ from the full Jacobian."""
    x = tf.constant(x)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            logp = tf.reduce_sum(alpha * expert.G(tf.matmul(x, w)), axis=1)
        psi = inner.gradient(logp, x)                     # [T, d]
    jac = outer.batch_jacobian(psi, x)                    # [T, d, d]
    trace = tf.linalg.trace(jac)
    return float(tf.reduce_mean(trace + 0.5 * tf.reduce_sum(psi ** 2, axis=1)))


@pytest.mark.parametrize("expert", ["logistic", "student_t"])
def test_objective_matches_autodiff_trace_and_score(expert, rng):
    e = get_expert(expert)
    d, n, t = 5, 7, 64
    x = rng.standard_normal((t, d)).astype(np.float32) * 2
    w = rng.standard_normal((d, n)).astype(np.float32)    # not unit norm: ‖w_k‖² matters
    alpha = rng.uniform(0.2, 2.0, n).astype(np.float32)
    # float64 for the comparison: the autodiff path goes through a second derivative.
    j, t1, t2 = score_matching_loss(tf.constant(x, tf.float64), tf.constant(w, tf.float64),
                                    tf.constant(alpha, tf.float64), e)
    ref = _autodiff_objective(x.astype(np.float64), tf.constant(w, tf.float64),
                              tf.constant(alpha, tf.float64), e)
    assert float(j) == pytest.approx(ref, rel=1e-6, abs=1e-8)
    assert float(t1 + t2) == pytest.approx(float(j), rel=1e-12)
    # The seed's pairwise double sum gives the same value.
    jp, t1p, t2p = score_matching_pairwise(tf.constant(x), tf.constant(w), tf.constant(alpha), e)
    assert float(jp) == pytest.approx(ref, rel=1e-4)
    assert float(t2p) == pytest.approx(float(t2), rel=1e-4)


def amari_index(p):
    """Amari index of P = (unmixing)·(mixing): 0 iff P is a scaled permutation, ≤ 1."""
    p = np.abs(np.asarray(p, np.float64))
    n = len(p)
    rows = (p / p.max(1, keepdims=True)).sum(1) - 1
    cols = (p / p.max(0, keepdims=True)).sum(0) - 1
    return (rows.sum() + cols.sum()) / (2 * n * (n - 1))


@pytest.mark.parametrize("expert,sources", [("logistic", "laplace"), ("student_t", "student_t")])
def test_score_matching_recovers_ica_mixing(expert, sources):
    """x = A s with independent super-Gaussian sources: learned filters unmix A.

    Bound: the Amari index of the estimated unmixing W_x = F W (whitening folded in) times
    A. A random 4x4 matrix has an index around 0.5 (we assert the 5th percentile of 200 draws
    is far above 0.1); the estimation error of a consistent estimator from n = 20000 samples
    is O(1/sqrt(n)) ~ 0.01 per entry, which gives an index of a few 1e-2 at most. 0.06 is
    thus well inside "recovered" and an order of magnitude below chance.
    """
    rng = np.random.default_rng(1)
    d, n = 4, 20000
    a = rng.standard_normal((d, d))
    s = rng.laplace(size=(n, d)) if sources == "laplace" else rng.standard_t(3, size=(n, d))
    x = (s @ a.T).astype(np.float32)
    wh = fit_whitening(x, kind="pca")
    prior = PatchPrior((2, 2), 1, d, expert=expert, centre=False, seed=0)
    prior.set_statistics([0.0], [1.0], wh)
    z = prior.patch_coords(x.reshape(-1, 2, 2, 1)).numpy()
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(d), atol=1e-3)
    train_prior(prior, z[:18000], z[18000:],
                TrainConfig(steps=800, batch_size=250, lr=0.1, eval_every=500, log_every=500),
                log=lambda *_: None)
    unmix = (wh.matrix @ prior.model_filters().numpy()).T      # s_hat = unmix @ x
    chance = np.percentile([amari_index(rng.standard_normal((d, d))) for _ in range(200)], 5)
    assert chance > 0.2
    idx = amari_index(unmix @ a)
    assert idx < 0.06, f"Amari index {idx:.3f} (chance 5th percentile {chance:.2f})"
    # Untrained random filters are not unmixing (so the test can fail).
    fresh = PatchPrior((2, 2), 1, d, expert=expert, centre=False, seed=3)
    assert amari_index((wh.matrix @ fresh.model_filters().numpy()).T @ a) > 0.1


@pytest.mark.parametrize("expert", ["logistic", "student_t"])
def test_folded_normalisation_equals_normalised_filters(expert, rng):
    """normalize=True on raw filters == the plain objective on w / ‖w‖: values and gradients."""
    e = get_expert(expert)
    d, n, t = 6, 9, 40
    x = tf.constant(rng.standard_normal((t, d)) * 2)
    w = tf.Variable(rng.standard_normal((d, n)) * rng.uniform(0.1, 5, n))  # non-unit columns
    alpha = tf.constant(rng.uniform(0.2, 2.0, n))
    with tf.GradientTape(persistent=True) as tape:
        wn = w / tf.sqrt(tf.reduce_sum(tf.square(w), axis=0, keepdims=True) + 1e-12)
        ref = score_matching_loss(x, wn, alpha, e)
        got = score_matching_loss(x, w, alpha, e, normalize=True)
    for a, b in zip(got, ref):
        assert float(a) == pytest.approx(float(b), rel=1e-10)
    np.testing.assert_allclose(tape.gradient(got[0], w), tape.gradient(ref[0], w), rtol=1e-9,
                               atol=1e-12)
    # Without normalisation the objective differs (the test can tell them apart).
    assert abs(float(score_matching_loss(x, w, alpha, e)[0]) - float(ref[0])) > 1e-3


@pytest.mark.parametrize("layout", ["full", "separable"])
@pytest.mark.parametrize("jit", [True, False])
def test_compiled_value_and_gradients_match_tape(layout, jit, rng):
    """What training uses (XLA, folded normalisation) == autodiff of the plain objective."""
    from tfrestore.priors.score_matching import value_and_gradients
    d = 12
    prior = PatchPrior((2, 2), 3, 7, layout=layout, dim=d, seed=3)
    x = tf.constant(rng.standard_normal((50, d)).astype(np.float32))
    params = prior.trainable_parameters()
    (j, t1, t2), grads = value_and_gradients(prior.raw_filters, prior.alpha, prior.expert,
                                             params, jit_compile=jit)(x)
    with tf.GradientTape() as tape:
        ref = score_matching_loss(x, prior.model_filters(), prior.alpha(), prior.expert)
    ref_grads = tape.gradient(ref[0], params)
    for a, b in zip((j, t1, t2), ref):
        assert float(a) == pytest.approx(float(b), rel=1e-5, abs=1e-6)
    for a, b in zip(grads, ref_grads):
        b = np.asarray(b)
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
