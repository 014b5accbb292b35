"""Langevin sampling: ULA and MALA against a correlated 2-D Gaussian with known moments."""
import numpy as np
import pytest
import tensorflow as tf

from tfrestore.uses.sampling import langevin

MU = np.array([1.0, -2.0], np.float32)
SIGMA = np.array([[1.0, 0.8], [0.8, 1.0]])
PREC = np.linalg.inv(SIGMA).astype(np.float32)


def gaussian_chains(n, step, steps, mala, seed=0, temperature=1.0):
    x = tf.Variable(np.zeros((n, 2), np.float32))

    def energy():  # 0.5 (x - mu)^T P (x - mu) per chain
        d = x - MU
        return 0.5 * tf.reduce_sum((d @ PREC) * d, axis=1)
    return langevin([x], energy, steps, step, temperature, mala=mala, seed=seed,
                    every=5, burn_in=steps // 2)


def ula_stationary_covariance(h):
    """Exact stationary covariance of ULA on this Gaussian: per precision eigenvalue l,
    variance 2h / (1 - (1 - h l)^2) = 1 / (l (1 - h l / 2))."""
    lam, V = np.linalg.eigh(PREC.astype(np.float64))
    return V @ np.diag(1.0 / (lam * (1 - h * lam / 2))) @ V.T


def moments(chain):
    s = chain.samples.reshape(-1, 2)
    return s.mean(0), np.cov(s.T)


def test_ula_reproduces_mean_and_covariance():
    # 2000 chains x 400 steps (h = 0.02), samples every 5 steps after 200: ~80k draws.
    chain = gaussian_chains(2000, 0.02, 400, mala=False)
    mean, cov = moments(chain)
    np.testing.assert_allclose(mean, MU, atol=0.03)
    # Within 0.03 of Sigma (ULA's O(h) bias here is 0.02 on the large eigenvalue) ...
    np.testing.assert_allclose(cov, SIGMA, atol=0.05)
    # ... and within 0.03 of ULA's exact stationary covariance at this step.
    np.testing.assert_allclose(cov, ula_stationary_covariance(0.02), atol=0.03)
    assert chain.acceptance is None


def test_mala_removes_the_step_size_bias():
    # At h = 0.3, ULA's covariance is biased by > 0.25 on the large eigenvalue; MALA's is not.
    h = 0.3
    ula = moments(gaussian_chains(2000, h, 300, mala=False))[1]
    mala_chain = gaussian_chains(2000, h, 300, mala=True)
    mean, cov = moments(mala_chain)
    assert np.abs(ula - SIGMA).max() > 0.2
    np.testing.assert_allclose(mean, MU, atol=0.04)
    np.testing.assert_allclose(cov, SIGMA, atol=0.06)
    assert 0.3 < mala_chain.acceptance.mean() < 1.0


def test_mala_acceptance_falls_as_the_step_grows():
    rates = [gaussian_chains(500, h, 60, mala=True).acceptance.mean()
             for h in (0.01, 0.1, 0.4, 1.0)]
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert rates[0] > 0.97 and rates[-1] < 0.5, rates


def test_temperature_scales_the_covariance():
    cov = moments(gaussian_chains(2000, 0.01, 400, mala=True, temperature=2.0))[1]
    np.testing.assert_allclose(cov, 2 * SIGMA, atol=0.1)


def test_bad_settings_are_refused():
    x = tf.Variable(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="T > 0"):
        langevin([x], lambda: tf.reduce_sum(x * x, 1), 5, 0.1, temperature=0.0)
    with pytest.raises(ValueError, match="step"):
        langevin([x], lambda: tf.reduce_sum(x * x, 1), 5, 0.0)
