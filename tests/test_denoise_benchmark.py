"""MAP denoising convergence (energy priors and DAE fixed point) and bin/denoise.py."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfrestore  # noqa: F401
from tfrestore.data import load_images
from tfrestore.priors import DAEPrior, DenoisingAutoencoder, PatchPrior
from tfrestore.priors.denoising import (add_noise, centre_crop, dae_map_denoise, luminance,
                                        map_denoise, psnr, tv_energy)

from conftest import REPO


@pytest.fixture(scope="module")
def small_grey():
    clean = luminance(centre_crop(load_images("camera", 64).images, 24))
    return clean, add_noise(clean, 25, seed=1)


@pytest.mark.parametrize("kind", ["foe", "tv"])
def test_map_lowers_the_objective_monotonically(kind, small_grey):
    clean, noisy = small_grey
    if kind == "foe":
        prior = PatchPrior(3, 1, 6, expert="student_t", seed=0)
        prior.set_statistics([110.0], [50.0])
        energy, lam = prior, 30.0
    else:
        energy, lam = tv_energy, 0.04
    r = map_denoise(noisy, energy, 25, lam, steps=20, tol=0.0)
    f = np.asarray(r.objective)
    assert len(f) == r.steps + 1 and r.steps >= 10
    assert np.all(np.diff(f) <= 1e-6 * np.abs(f[:-1])), np.diff(f)
    assert f[-1] < 0.9 * f[0]
    # Independent check of the objective at the returned point.
    fx = np.sum((r.x - noisy) ** 2) / (2 * 25 ** 2) + lam * float(tf.reduce_sum(energy(r.x)))
    assert fx == pytest.approx(f[-1], rel=1e-4)


def test_dae_fixed_point_solves_the_stationarity_condition(small_grey):
    clean, noisy = small_grey
    dae = DenoisingAutoencoder(1, 25 / 255, features=6, dilations=(1,), seed=0)
    dae.set_statistics([0.0], [255.0])
    prior = DAEPrior(dae)
    sigma, lam = 25.0, 0.7
    r = dae_map_denoise(noisy, prior, sigma, lam, steps=200, tol_pixels=1e-4)
    assert r.converged
    # At the fixed point the MAP gradient (x − y)/σ² + λ dE/dx vanishes.
    x = tf.constant(r.x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        f = tf.reduce_sum(tf.square(x - noisy)) / (2 * sigma ** 2) + lam * tf.reduce_sum(
            prior(x))
    g = tape.gradient(f, x).numpy()
    scale = np.abs((r.x - noisy) / sigma ** 2).max()
    assert np.abs(g).max() < 1e-3 * scale + 1e-7


def test_denoise_binary_on_untuned_images(tmp_path):
    dae = DenoisingAutoencoder(1, 25 / 255, features=4, dilations=(1,), seed=0)
    dae.set_statistics([0.0], [255.0])
    dae_path = str(tmp_path / "dae.keras")
    dae.save(dae_path)
    foe = PatchPrior(3, 1, 4, seed=0)
    foe.set_statistics([110.0], [50.0])
    foe_path = str(tmp_path / "foe.keras")
    foe.save(foe_path)
    out = str(tmp_path / "dn.md")
    env = dict(os.environ, PYTHONPATH=REPO, TFRESTORE_MAX_STEPS="15")
    # Tuned on scikit-image's "camera"; tested on two other photographs.
    cmd = [sys.executable, os.path.join(REPO, "bin", "denoise.py"), "--mode=grey",
           "--images=coins,moon", "--image_size=32", "--tune_images=camera",
           "--tune_image_size=32", "--sigmas=25", f"--priors={dae_path},{foe_path},tv,"
           "tv_chambolle,nl_means,wavelet,bm3d", "--prior_weights=0.1,1", "--dae_weights=1",
           "--tv_weights=0.02,0.04", "--chambolle_weights=0.08", "--nlm_h=0.8",
           f"--output={out}"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)
    rec = json.load(open(out.replace(".md", ".json")))
    rows = {r["method"]: r for r in rec["rows"]}
    for r in rec["rows"]:
        assert set(r) >= {"method", "sigma", "mode", "psnr", "ssim", "images",
                          "seconds_per_image"} and r["images"] == 2 and r["mode"] == "grey"
    assert {"dae (MAP, DAE gradient)", "dae (direct r(y))", "foe (MAP, L-BFGS)",
            "TV (MAP, L-BFGS)", "TV Chambolle (scikit-image)", "non-local means (scikit-image)",
            "wavelet BayesShrink (scikit-image)", "noisy input"} <= set(rows)
    assert rows["foe (MAP, L-BFGS)"]["param"] in (0.1, 1.0)
    assert rows["foe (MAP, L-BFGS)"]["objective_monotone"]
    noisy = rows["noisy input"]["psnr"]
    assert rows["TV (MAP, L-BFGS)"]["psnr"] > noisy + 2
    assert rows["TV Chambolle (scikit-image)"]["psnr"] > noisy + 2
    try:
        import bm3d  # noqa: F401
        assert rows["BM3D (bm3d package)"]["psnr"] > noisy + 3
    except ImportError:
        assert any("BM3D skipped" in n for n in rec["notes"])
    text = open(out).read()
    assert "| TV (MAP, L-BFGS) |" in text and "σ=25 PSNR / SSIM" in text
    # Tuning on the test images is refused.
    bad = subprocess.run(cmd[:-1] + ["--tune_images=coins", f"--output={out}"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "overlap" in bad.stderr


def test_rerun_keeps_cells_and_merges_parallel_results(tmp_path):
    from tfrestore.priors.denoise_cli import run_benchmark
    kw = dict(mode="grey", image_size=32, tune_images=["camera"], tune_image_size=32,
              weights={"tv_chambolle": [0.04, 0.08]}, log=lambda *_: None)
    a = str(tmp_path / "a.md")
    b = str(tmp_path / "b.md")
    first = run_benchmark(["wavelet"], ["coins", "moon"], a, sigmas=[25], **kw)
    # A stale cell in the output is replaced by the merged file's cell.
    with open(a.replace(".md", ".json")) as f:
        stale = json.load(f)
    for r in stale["rows"]:
        r["psnr"] = -1.0 if r["method"].startswith("wavelet") else r["psnr"]
    with open(a.replace(".md", ".json"), "w") as f:
        json.dump(stale, f)
    run_benchmark(["tv_chambolle", "wavelet"], ["coins", "moon"], b, sigmas=[15, 25], **kw)
    merged = run_benchmark(["tv_chambolle"], ["coins", "moon"], a, sigmas=[15, 25],
                           merge=[b.replace(".md", ".json")], **kw)
    cells = {(r["method"], r["sigma"]): r for r in merged["rows"]}
    wav = [r for r in first["rows"] if r["method"].startswith("wavelet")][0]
    assert cells[("wavelet BayesShrink (scikit-image)", 25.0)]["psnr"] == wav["psnr"]
    assert ("TV Chambolle (scikit-image)", 15.0) in cells
    assert ("noisy input", 15.0) in cells and ("noisy input", 25.0) in cells
    assert len(merged["rows"]) == 6
    # The same seeded noise for every run: the noisy rows agree.
    assert cells[("noisy input", 25.0)]["psnr"] == [r for r in first["rows"] if
                                                     r["method"] == "noisy input"][0]["psnr"]
