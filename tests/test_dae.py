"""Denoising-autoencoder priors: custom gradient, Alain & Bengio on a Gaussian, saving,
training resume, the training binary, and attachment through `--prior` specs."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfrestore  # noqa: F401
from tfrestore.priors import DAEPrior, DenoisingAutoencoder, PriorMismatchError, load_prior
from tfrestore.priors.dae import DAETrainConfig, optimal_gaussian_denoiser, train_dae

from conftest import REPO


def tiny_dae(channels=3, sigma=0.1, mean=None, std=None, seed=0, **kw):
    dae = DenoisingAutoencoder(channels, sigma, features=8, dilations=(1, 2), seed=seed, **kw)
    dae.set_statistics(np.zeros(channels) if mean is None else mean,
                       np.full(channels, 255.0) if std is None else std)
    # Non-trivial output layer so that r(x) − x is far from zero.
    k = dae.convs[-1].kernel
    k.assign(np.random.default_rng(seed).normal(0, 0.2, k.shape).astype(np.float32))
    return dae


def test_gradient_is_minus_residual_over_sigma_squared(rng):
    # Feature-map-like statistics: per-channel σ_natural = σ · std differs per channel.
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 3.0])
    dae = tiny_dae(3, sigma=0.3, mean=mean, std=std)
    prior = DAEPrior(dae)
    x = tf.constant(rng.normal(0, 2, (2, 9, 11, 3)).astype(np.float32))
    up = tf.constant([1.5, -0.5])
    with tf.GradientTape() as tape:
        tape.watch(x)
        e = prior(x)
        total = tf.reduce_sum(up * e)
    g = tape.gradient(total, x).numpy()
    # Independent NumPy reference: residual from the saved model's forward pass.
    res = dae(x).numpy() - x.numpy()
    sig2 = (0.3 * std) ** 2
    expect = -np.asarray(up)[:, None, None, None] * res / sig2
    np.testing.assert_allclose(g, expect, rtol=1e-6, atol=1e-9)
    assert np.abs(expect).max() > 1e-2           # the check is not vacuous
    # The logged value is ‖r(x) − x‖² per image.
    np.testing.assert_allclose(e.numpy(), np.sum(res ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_dae_prior_rejects_wrong_channels():
    prior = DAEPrior(tiny_dae(3))
    with pytest.raises(PriorMismatchError, match="3-channel"):
        prior(tf.zeros((1, 8, 8, 4)))


def test_keras_round_trip_and_load_prior(tmp_path, rng):
    dae = tiny_dae(1, sigma=25 / 255, metadata={"source": "unit", "layer": "image"})
    path = str(tmp_path / "dae.keras")
    dae.save(path)
    back = keras.models.load_model(path)
    x = rng.uniform(0, 255, (2, 12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(back(x).numpy(), dae(x).numpy(), rtol=1e-6, atol=1e-4)
    prior = load_prior(path)
    assert isinstance(prior, DAEPrior) and prior.channels == 1
    assert prior.metadata == {"source": "unit", "layer": "image"}
    d = prior.describe()
    assert d["kind"] == "dae" and d["sigma_natural"] == pytest.approx([25.0])
    assert prior.patch_size == (dae.receptive_field(),) * 2 == (1 + 2 * 5,) * 2


def test_trained_dae_matches_gaussian_score():
    """Alain & Bengio: the optimal DAE has r(x) − x = σ²∇log p_σ(x) (p_σ = p * N(0, σ²I)).

    For data N(μ, S) that is −σ²(S + σ²I)⁻¹(x − μ) = (optimal linear denoiser)(x) − x. Each
    pixel of the training "images" is an independent 2-D sample (1x1 convolutions).
    Tolerance: relative RMS error < 0.08 over data-distributed test points (1500 Adam steps
    reach about 0.03); the unsmoothed score −σ²S⁻¹(x − μ) is off by > 0.4, so the test
    distinguishes the two.
    """
    mu, cov, sigma = np.array([1.0, -0.5]), np.array([[1.0, 0.6], [0.6, 0.5]]), 0.5
    rng = np.random.default_rng(0)
    chol = np.linalg.cholesky(cov)
    data = (mu + rng.standard_normal((256, 8, 8, 2)) @ chol.T).astype(np.float32)
    val = (mu + rng.standard_normal((16, 8, 8, 2)) @ chol.T).astype(np.float32)
    dae = DenoisingAutoencoder(2, sigma, features=32, dilations=(1,), kernel_size=1, seed=0)
    cfg = DAETrainConfig(steps=1500, batch_size=32, crop=8, lr=3e-3, eval_every=1500,
                         augment=False)
    env = os.environ.pop("TFRESTORE_MAX_STEPS", None)   # this test needs its 1500 steps
    try:
        train_dae(dae, data, val, cfg, log=lambda *_: None)
    finally:
        if env is not None:
            os.environ["TFRESTORE_MAX_STEPS"] = env
    x = mu + rng.standard_normal((2000, 2)) @ chol.T
    res = dae(x.reshape(1, -1, 1, 2).astype(np.float32)).numpy().reshape(-1, 2) - x
    ref = optimal_gaussian_denoiser(mu, cov, sigma)(x) - x
    np.testing.assert_allclose(ref, -sigma ** 2 * (x - mu) @ np.linalg.inv(
        cov + sigma ** 2 * np.eye(2)).T, atol=1e-12)
    rel = lambda a, b: np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2))  # noqa
    assert rel(res, ref) < 0.08, rel(res, ref)
    unsmoothed = -sigma ** 2 * (x - mu) @ np.linalg.inv(cov).T
    assert rel(unsmoothed, ref) > 0.4


def test_training_resumes_exactly(tmp_path, rng):
    data = rng.uniform(0, 1, (6, 16, 16, 1)).astype(np.float32)

    def run(ckpt, stop_after=None):
        dae = DenoisingAutoencoder(1, 0.1, features=4, dilations=(1,), seed=0)
        cfg = DAETrainConfig(steps=10, batch_size=2, crop=8, eval_every=5, n_val=4,
                             checkpoint_dir=ckpt, checkpoint_every=5)
        hist = train_dae(dae, data[:4], data[4:], cfg, log=lambda *_: None,
                         stop_after=stop_after)
        return dae, hist
    full, _ = run(str(tmp_path / "a"))
    interrupted, _ = run(str(tmp_path / "b"), stop_after=5)
    assert not np.allclose(interrupted.convs[0].kernel.numpy(), full.convs[0].kernel.numpy())
    resumed, hist = run(str(tmp_path / "b"))
    assert hist["steps_run"] == 5
    for a, b in zip(full.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _classifier():
    from tfrestore.classifiers import Classifier
    keras.utils.set_random_seed(1)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", padding="same", name="c1")(inp)
    x = keras.layers.Conv2D(6, 3, activation="relu", padding="same", name="c2")(x)
    return Classifier("tiny", keras.Model(inp, x), "caffe")


def test_dae_attaches_through_prior_specs_and_gradient_flows(tmp_path, rng):
    from tfrestore.inversion import Objective
    from tfrestore.inversion.learned import prior_terms
    img = str(tmp_path / "img.keras")
    c1 = str(tmp_path / "c1.keras")
    tiny_dae(3).save(img)
    tiny_dae(4, sigma=0.5, mean=np.zeros(4), std=np.ones(4), seed=2,
             metadata={"layer": "c1"}).save(c1)
    clf = _classifier()
    terms = prior_terms(clf, [f"{img}@image:2.0", f"{c1}@c1:0.5"])
    assert [t.at for t in terms] == ["image", "c1"] and terms[0].weight == 2.0
    x = tf.constant(rng.uniform(0, 255, (1, 24, 24, 3)).astype(np.float32))
    # The image term's gradient is exactly −(r(x) − x)/σ² (σ = 0.1·255 here).
    with tf.GradientTape() as tape:
        tape.watch(x)
        e = terms[0](x)
    g = tape.gradient(e, x).numpy()
    r = terms[0].fn.dae(x).numpy() - x.numpy()
    np.testing.assert_allclose(g, -r / 25.5 ** 2, rtol=1e-5, atol=1e-9)
    # The feature-map term's gradient flows back through the network to the image.
    model = clf.feature_model(["c1"])
    with tf.GradientTape() as tape:
        tape.watch(x)
        feats = model(x)
        feats = feats[0] if isinstance(feats, (list, tuple)) else feats
        e = terms[1](feats)
    g = tape.gradient(e, x)
    assert g is not None and float(tf.reduce_max(tf.abs(g))) > 0
    assert Objective(clf, terms).layers == ["c1"]
    with pytest.raises(PriorMismatchError, match="4 channels"):
        prior_terms(clf, [f"{c1}@c2:1"])


def test_binary_trains_grey_dae_and_reports_bad_input(tmp_path):
    out = str(tmp_path / "dae_grey.keras")
    env = dict(os.environ, PYTHONPATH=REPO, TFRESTORE_MAX_STEPS="6")
    cmd = [sys.executable, os.path.join(REPO, "bin", "train_dae.py"),
           "--images=camera,coins,moon,page,text", "--grey", "--image_size=48",
           "--features=4", "--dilations=1", "--crop=16", "--batch_size=2",
           "--eval_every=3", f"--checkpoint_dir={tmp_path / 'ckpt'}",
           f"--tensorboard_dir={tmp_path / 'tb'}", f"--output={out}"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    prior = load_prior(out)
    assert prior.channels == 1 and prior.metadata["space"] == "grey_0_255"
    rec = json.load(open(out.replace(".keras", ".json")))
    assert rec["data"]["n_val_images"] == 1 and rec["data"]["n_train_images"] == 4
    assert rec["history"]["val_step"] == [3, 6] and os.listdir(tmp_path / "tb")
    bad = subprocess.run(cmd[:-1] + [f"--output={tmp_path / 'x.h5'}"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "must end in .keras" in bad.stderr
    # Resuming under another setting is refused, naming it; --fresh starts afresh.
    other = [a for a in cmd if not a.startswith("--crop")] + ["--crop=12"]
    refused = subprocess.run(other, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "crop" in refused.stderr
    assert "Traceback" not in refused.stderr
    again = subprocess.run(other + ["--fresh"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.load(open(out.replace(".keras", ".json")))["settings"]["crop"] == 12


def test_init_fine_tunes_a_saved_dae_blind(tmp_path):
    """--init starts from a saved DAE (its architecture and weights); --blind_max is recorded."""
    from tfrestore.priors.dae_recipe import train_dae_prior
    start = DenoisingAutoencoder(1, 25 / 255, features=5, dilations=(1, 2), seed=3)
    start.set_statistics([0.0], [255.0])
    from tfrestore.priors.recipe import save_prior
    save_prior(start, str(tmp_path / "start.keras"))
    kw = dict(image_size=32, grey=True, crop=16, batch_size=2, eval_every=2, lr=0.0,
              log=lambda *_: None)
    # lr 0: the weights must come through unchanged (Adam's update is lr-scaled).
    dae, rec = train_dae_prior(["camera", "coins", "moon"], str(tmp_path / "ft.keras"),
                               steps=2, sigma=25, blind_max=50,
                               init=str(tmp_path / "start.keras"), **kw)
    assert dae.features == 5 and dae.dilations == (1, 2)
    for a, b in zip(start.get_weights(), dae.get_weights()):
        np.testing.assert_allclose(a, b)
    assert dae.metadata["blind_max"] == "50" and dae.metadata["init"].endswith("start.keras")
    with pytest.raises(ValueError, match="channels"):
        train_dae_prior(["camera", "coins", "moon"], str(tmp_path / "rgb.keras"), steps=1,
                        sigma=25, init=str(tmp_path / "start.keras"),
                        **dict(kw, grey=False))


def test_a_dae_that_learned_nothing_is_flagged(tmp_path):
    """lr 0 leaves r(x) ≈ x (the output layer starts near zero): the record says so."""
    from tfrestore.priors.dae_recipe import train_dae_prior
    msgs = []
    _, rec = train_dae_prior(["camera", "coins", "moon"], str(tmp_path / "none.keras"),
                             image_size=32, grey=True, crop=16, batch_size=2, eval_every=2,
                             steps=2, lr=0.0, features=4, dilations=(1,), log=msgs.append)
    assert max(rec["history"]["val_psnr_gain"]) < 0.01
    assert "learned nothing" in rec["history"]["warning"]
    assert any(m.startswith("WARNING: the DAE learned nothing") for m in msgs)


def test_linear_skip_starts_at_the_best_linear_denoiser(tmp_path):
    """fit_linear_skip sets the linear path to y − (optimal Gaussian denoiser)(y) for the
    data's own mean and covariance (an independent NumPy computation), so the DAE starts
    with the held-out gain of a Gaussian model of the channels; it survives saving."""
    from tfrestore.priors.dae import fit_linear_skip
    from tfrestore.priors.recipe import save_prior
    mu, cov, sigma = np.array([0.5, -1.0, 0.0]), np.array(
        [[1.0, 0.8, 0.2], [0.8, 1.0, 0.1], [0.2, 0.1, 0.5]]), 0.5
    rng = np.random.default_rng(1)
    chol = np.linalg.cholesky(cov)
    data = (mu + rng.standard_normal((64, 8, 8, 3)) @ chol.T).astype(np.float32)
    dae = DenoisingAutoencoder(3, sigma, features=4, dilations=(1,), kernel_size=1, seed=0,
                               linear_skip=True)
    with pytest.raises(ValueError, match="linear_skip=True"):
        fit_linear_skip(DenoisingAutoencoder(3, sigma, features=4, dilations=(1,)), data)
    fit_linear_skip(dae, data)
    flat = data.reshape(-1, 3).astype(np.float64)
    ref = optimal_gaussian_denoiser(flat.mean(0), np.cov(flat, rowvar=False), sigma)
    y = (mu + rng.standard_normal((500, 3)) @ chol.T
         + sigma * rng.standard_normal((500, 3))).astype(np.float32)
    lin = dae.linear(y.reshape(1, -1, 1, 3)).numpy().reshape(-1, 3)
    np.testing.assert_allclose(lin, y - ref(y), atol=1e-5)
    # The whole DAE starts exactly there (its CNN output layer starts at zero).
    out = dae(y.reshape(1, -1, 1, 3)).numpy().reshape(-1, 3)
    clean_err = np.mean((out - ref(y)) ** 2) / np.mean((y - ref(y)) ** 2)
    assert clean_err < 1e-8, clean_err
    path = str(tmp_path / "skip.keras")
    save_prior(dae, path)
    back = load_prior(path).dae
    assert back.linear_skip and back.get_config()["linear_skip"]
    np.testing.assert_allclose(back(y.reshape(1, -1, 1, 3)).numpy().reshape(-1, 3), out,
                               atol=1e-5)


def test_linear_skip_recipe_records_it_and_beats_an_untrained_dae(tmp_path):
    """train_dae_prior --linear_skip: at step 0 (lr 0) the held-out gain is already that of
    the pointwise linear denoiser (> 0), where a DAE without the path gains nothing."""
    from tfrestore.priors.dae_recipe import train_dae_prior
    kw = dict(image_size=32, grey=False, crop=16, batch_size=2, eval_every=2, steps=2,
              lr=0.0, features=4, dilations=(1,), sigma=60, log=lambda *_: None)
    _, plain = train_dae_prior(["camera", "coins", "moon", "astronaut"],
                               str(tmp_path / "plain.keras"), **kw)
    dae, skip = train_dae_prior(["camera", "coins", "moon", "astronaut"],
                                str(tmp_path / "skip.keras"), linear_skip=True, **kw)
    assert skip["settings"]["linear_skip"] and dae.linear_skip
    assert max(plain["history"]["val_psnr_gain"]) < 0.01
    assert max(skip["history"]["val_psnr_gain"]) > 0.5
    with pytest.raises(ValueError, match="--init"):
        train_dae_prior(["camera", "coins"], str(tmp_path / "x.keras"), linear_skip=True,
                        init=str(tmp_path / "skip.keras"), **kw)
