"""MAP denoising and the shipped priors' behaviour on held-out natural photographs."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrestore.data import load_images
from tfrestore.priors import PatchPrior, load_prior
from tfrestore.priors.denoising import (add_noise, centre_crop, luminance, map_denoise, psnr,
                                        tv_energy)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = [os.path.join(REPO, "checkpoints", f) for f in
           ("foe_8x8x3_512.keras", "ica_8x8x3_512.keras")]


def test_map_with_quadratic_energy_matches_closed_form(rng):
    # E(x) = c/2 ‖x‖²  =>  argmin ‖x−y‖²/2σ² + λE = y / (1 + λcσ²).
    y = rng.uniform(0, 255, (2, 6, 6, 1)).astype(np.float32)
    c, lam, sigma = 0.01, 0.5, 10.0
    r = map_denoise(y, lambda v: 0.5 * c * tf.reduce_sum(tf.square(v), [1, 2, 3]), sigma, lam,
                    steps=400)
    assert r.converged
    np.testing.assert_allclose(r.x, y / (1 + lam * c * sigma ** 2), atol=0.05)


def test_map_on_the_engine_matches_closed_form_and_lbfgs(rng, monkeypatch):
    """MAP denoising on the optimisation engine (Adam) reaches the closed-form minimum of a
    quadratic energy, and on TV the objective L-BFGS reaches, within a small tolerance."""
    monkeypatch.delenv("TFRESTORE_MAX_STEPS", raising=False)
    y = rng.uniform(0, 255, (2, 6, 6, 1)).astype(np.float32)
    c, lam, sigma = 0.01, 0.5, 10.0
    r = map_denoise(y, lambda v: 0.5 * c * tf.reduce_sum(tf.square(v), [1, 2, 3]), sigma, lam,
                    steps=600, optimizer="adam", lr=20.0, tol=1e-7)
    np.testing.assert_allclose(r.x, y / (1 + lam * c * sigma ** 2), atol=0.5)
    assert r.objective[-1] < r.objective[0]
    clean = luminance(centre_crop(load_images("camera", 64).images, 16))
    noisy = add_noise(clean, 25, seed=1)
    ref = map_denoise(noisy, tv_energy, 25, 0.04, steps=300)
    eng = map_denoise(noisy, tv_energy, 25, 0.04, steps=600, optimizer="adam", lr=5.0,
                      tol=1e-7)
    assert eng.objective[-1] <= ref.objective[-1] * 1.01, (eng.objective[-1], ref.objective[-1])


def test_tv_energy_and_tv_denoising():
    flat = np.full((1, 5, 5, 1), 7.0, np.float32)
    assert float(tv_energy(flat, eps=0.0)[0]) == pytest.approx(0.0)
    step = flat.copy()
    step[:, :, 3:] = 17.0
    # 4 rows (the last row/column are excluded by the forward differences) x one jump of 10.
    assert float(tv_energy(step, eps=0.0)[0]) == pytest.approx(40.0, rel=1e-5)
    clean = luminance(centre_crop(load_images("camera", 64).images, 32))
    noisy = add_noise(clean, 25, seed=1)
    x = map_denoise(noisy, tv_energy, 25, 0.04, steps=100).x
    assert psnr(x, clean)[0] > psnr(noisy, clean)[0] + 3


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_prior_prefers_clean_held_out_photos(path):
    if not os.path.exists(path):
        pytest.skip(f"{path} not trained yet")
    prior = load_prior(path)
    assert prior.patch_size == (8, 8) and prior.channels == 3 and prior.n_experts == 512
    assert prior.dim == 191 and "imagenet_samples" in prior.metadata["source"]
    # scikit-image photographs are not ImageNet images: never seen in training.
    clean = centre_crop(load_images("astronaut,chelsea,coffee,rocket", 128).images, 64)
    e_clean = prior(clean).numpy()
    for sigma in (5, 15, 25):
        e_noisy = prior(add_noise(clean, sigma, seed=sigma)).numpy()
        assert np.all(e_clean < e_noisy), (sigma, e_clean, e_noisy)
    # Grey photos (luminance replicated to RGB) too.
    grey = np.repeat(luminance(clean), 3, -1)
    assert np.all(prior(grey).numpy() < prior(add_noise(grey, 15, seed=2)).numpy())


def test_shipped_prior_on_shared_photos(shared_data):
    paths = [p for p in SHIPPED if os.path.exists(p)]
    if not paths:
        pytest.skip("no shipped priors yet")
    clean = centre_crop(load_images(os.path.join(shared_data, "images"), 128).images, 64)
    for p in paths:
        prior = load_prior(p)
        assert np.all(prior(clean).numpy() < prior(add_noise(clean, 15, seed=3)).numpy())
