"""Caricatures: the projection term against NumPy, its growth on a small network, the binary."""
import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from conftest import REPO
from tfrestore.inversion import get_settings
from tfrestore.uses.caricature import CaricatureTerm, caricature, projection
from uses_helpers import tiny_softmax_classifier


def test_caricature_term_value_and_gradient(rng):
    x = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    t = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    term = CaricatureTerm("l", target=t)
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        v = term(xv)
        s = tf.reduce_sum(v)
    den = (t ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(v.numpy(), -(x * t).sum(axis=(1, 2, 3)) / den, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(s, xv).numpy(),
                               -t / den[:, None, None, None], rtol=1e-5)
    np.testing.assert_allclose(CaricatureTerm("l", target=t)(tf.constant(t)).numpy(), -1.0,
                               rtol=1e-6)


def test_caricature_amplifies_the_code(rng):
    clf = tiny_softmax_classifier(size=16)
    # Smooth images inside the preset's bound B+ around the mean (else the first
    # projection alone changes them).
    small = rng.uniform(-50, 50, (2, 4, 4, 3)).astype(np.float32)
    images = 120 + tf.image.resize(small, (16, 16)).numpy()
    np.testing.assert_allclose(projection(clf, "c2", images, images), 1.0, rtol=1e-5)
    settings = get_settings("fast", clf, "c2", steps=20, feature_weight=100.0)
    r = caricature(clf, images, settings, verbose=False)
    p = projection(clf, "c2", np.clip(r.reconstructions, 0, 255), images)
    assert np.all(p > 1.5), p


def test_caricature_and_sample_binaries(tmp_path):
    from tfrestore.priors import PatchPrior
    clf = tiny_softmax_classifier(size=32)
    path = str(tmp_path / "tiny.keras")
    clf.model.save(path)
    prior = PatchPrior(3, 3, 5, expert="student_t", seed=0, metadata={"layer": "image"})
    prior(tf.zeros((1, 8, 8, 3)))
    ppath = str(tmp_path / "prior.keras")
    prior.save(ppath)
    env = dict(os.environ, PYTHONPATH=REPO)
    base = [sys.executable, f"--classifier={path}", "--preprocessing=caffe"]
    out = tmp_path / "car"
    r = subprocess.run([base[0], os.path.join(REPO, "bin", "caricature.py")] + base[1:] + [
        "--images=astronaut,coffee", "--layer=c2", "--steps=5", f"--output_dir={out}",
        "--feature_weight=100", "--bound_factor=0", "--jitter=0",
        f"--prior={ppath}@image:1e-4"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((out / "metrics.json").read_text())
    assert len(rec["images"]) == 2 and rec["settings"]["jitter"] == 0
    np.testing.assert_allclose(rec["projection_start"], 1.0, rtol=1e-4)
    assert all(i["projection_end"] > 1.0 for i in rec["images"])
    assert (out / "figure.png").exists()
    for mode_args in (["--mode=prior", f"--prior={ppath}@image:1", "--size=12", "--mala"],
                      ["--mode=preimage", "--images=astronaut", "--layer=c1",
                       "--init=image"]):
        out = tmp_path / mode_args[0][7:]
        r = subprocess.run([base[0], os.path.join(REPO, "bin", "sample.py")] + base[1:] +
                           mode_args + ["--n_samples=2", "--steps=8", "--every=4",
                                        "--step_size=0.01", f"--output_dir={out}"],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        stats = json.loads((out / "chain.json").read_text())["stats"]
        z = np.load(out / "samples.npz")
        assert z["energies"].shape == (8, 2) and z["samples"].shape[:2] == (2, 2)
        if "--mala" in mode_args:
            assert 0.0 <= stats["acceptance_rate"] <= 1.0
        else:
            assert stats["acceptance_rate"] is None
    bad = subprocess.run([base[0], os.path.join(REPO, "bin", "sample.py")] + base[1:] +
                         ["--mode=preimage", f"--output_dir={tmp_path / 'x'}"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--layer" in bad.stderr
