"""Training loop: exact resume, early stopping, MirroredStrategy, TensorBoard, the binary."""
import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfrestore.priors import PatchPrior, fit_whitening, load_prior
from tfrestore.priors.training import TrainConfig, _order, thesis_schedule, train_prior

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _problem(seed=0, n=1200, d=6, n_experts=8):
    rng = np.random.default_rng(seed)
    x = (rng.laplace(size=(n, d)) @ rng.standard_normal((d, d)).T).astype(np.float32)
    wh = fit_whitening(x, kind="pca")
    z = wh.coords(x)

    def make():
        p = PatchPrior((2, 3), 1, n_experts, expert="student_t", centre=False, seed=seed)
        p.set_statistics([0.0], [1.0], wh)
        return p
    return make, z[:1000], z[1000:]


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_uninterrupted_result(tmp_path):
    make, tr, va = _problem()
    cfg = dict(steps=40, batch_size=50, lr=0.05, eval_every=10, checkpoint_every=10, seed=4)
    ref = make()
    train_prior(ref, tr, va, TrainConfig(**cfg), log=lambda *_: None)

    ck = str(tmp_path / "ck")

    def interrupt(msg):
        if msg.startswith("step 30"):   # after step 30's evaluation, before its checkpoint
            raise _Interrupt()
    first = make()
    with pytest.raises(_Interrupt):
        train_prior(first, tr, va, TrainConfig(checkpoint_dir=ck, **cfg), log=interrupt)
    assert tf.train.latest_checkpoint(ck).endswith("-20")
    resumed = make()                       # a fresh process: new objects, same seed
    lines = []
    hist = train_prior(resumed, tr, va, TrainConfig(checkpoint_dir=ck, **cfg), log=lines.append)
    assert hist["start_step"] == 20 and hist["steps"] == 40 and "resumed" in lines[0]
    for a, b in zip(resumed.trainable_parameters(), ref.trainable_parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    # ... and training did change the parameters (the comparison is not vacuous).
    assert np.abs(make().filters.numpy() - ref.filters.numpy()).max() > 1e-2


def test_batch_order_is_a_function_of_step_only():
    full = _order(1000, 50, 7, 0, 65)
    np.testing.assert_array_equal(_order(1000, 50, 7, 23, 65), full[23 * 50:])
    epoch0 = full[:1000]
    assert sorted(epoch0.tolist()) == list(range(1000))         # each epoch: a permutation
    assert not np.array_equal(full[1000:2000], epoch0)


def test_thesis_schedule_scales_boundaries():
    sched = thesis_schedule(2500, lr=2.0)
    assert float(sched(0)) == pytest.approx(2.0)
    assert float(sched(999)) == pytest.approx(2.0)
    assert float(sched(1001)) == pytest.approx(0.2)
    assert float(sched(2400)) == pytest.approx(2.0 * 3e-5)


def test_early_stopping_keeps_best_validation_weights(tmp_path):
    make, tr, va = _problem(1)
    prior = make()
    seen = []

    def log(msg):
        seen.append(msg)
    # A huge learning rate makes validation worse after the first evaluations.
    hist = train_prior(prior, tr, va, TrainConfig(steps=400, batch_size=50, lr=20.0,
                                                  schedule="constant", eval_every=5,
                                                  patience=2, min_delta=1e9, seed=0,
                                                  log_dir=str(tmp_path / "tb")), log=log)
    assert hist["stopped_early"] and hist["steps"] == 15 and "early stopping" in seen[-1]
    # Returned weights are those of the best evaluation (step 5), not of step 15.
    from tfrestore.priors import score_matching_loss
    v = float(score_matching_loss(tf.constant(va), prior.model_filters(), prior.alpha(),
                                  prior.expert)[0])
    assert v == pytest.approx(hist["best_val"], rel=1e-5)
    assert v == pytest.approx(hist["val"][0][1], rel=1e-5)
    # TensorBoard: losses, both terms, validation loss and a filter image.
    tags = set()
    for f in glob.glob(str(tmp_path / "tb" / "events*")):
        for ev in tf.compat.v1.train.summary_iterator(f):
            tags |= {v.tag for v in ev.summary.value}
    assert {"val/total", "val/trace_term", "val/norm_term", "filters"} <= tags


MIRRORED = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {repo!r})
    from tfrestore.priors import PatchPrior, fit_whitening
    from tfrestore.priors.training import TrainConfig, train_prior
    rng = np.random.default_rng(0)
    x = (rng.laplace(size=(1200, 6)) @ rng.standard_normal((6, 6)).T).astype(np.float32)
    wh = fit_whitening(x, kind="pca"); z = wh.coords(x)
    cfg = TrainConfig(steps=30, batch_size=50, lr=0.05, eval_every=10, seed=1)
    out = []
    for strategy in (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), None):
        scope = strategy.scope() if strategy else tf.distribute.get_strategy().scope()
        with scope:
            p = PatchPrior((2, 3), 1, 8, centre=False, seed=0)
        p.set_statistics([0.0], [1.0], wh)
        train_prior(p, z[:1000], z[1000:], cfg, strategy=strategy, log=lambda *_: None)
        out.append(p.filters.numpy())
    print("REPLICAS", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).num_replicas_in_sync)
    print("MAXDIFF", float(np.abs(out[0] - out[1]).max()))
""")


def test_mirrored_strategy_matches_single_device():
    r = subprocess.run([sys.executable, "-c", MIRRORED.format(repo=REPO)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "REPLICAS 2" in r.stdout
    diff = float(r.stdout.split("MAXDIFF")[1].split()[0])
    assert diff < 1e-4, r.stdout


def _run_bin(args, env_steps="12"):
    env = dict(os.environ, TFRESTORE_MAX_STEPS=env_steps, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "train_prior.py")] + args,
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def test_binary_trains_and_writes_a_loadable_prior(tmp_path):
    out = str(tmp_path / "p.keras")
    r = _run_bin(["--images", "chelsea,astronaut,coffee,rocket", "--image_size", "32",
                  "--patch_size", "4", "--n_experts", "12", "--whiten_dims", "20",
                  "--n_train", "600", "--n_val", "100", "--val_fraction", "0.25",
                  "--batch_size", "50", "--eval_every", "5", "--distribute", "mirrored",
                  "--cpu_replicas", "2", "--output", out])
    assert r.returncode == 0, r.stderr[-3000:]
    prior = load_prior(out)
    rec = json.load(open(out.replace(".keras", ".json")))
    assert rec["history"]["steps"] == 12 and rec["settings"]["steps"] == 12
    assert rec["prior"]["dim"] == 20 and prior.metadata["source"].startswith("chelsea")
    assert len(rec["data"]["val_images"]) == 1 and os.path.exists(rec["figure"])
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    assert np.all(np.isfinite(prior(x).numpy()))


def test_recipe_reports_bad_input(tmp_path):
    # The binary turns this ImageInputError into exit status 2 (tfrestore.cli); a subprocess
    # run costs a TensorFlow import, so the message is checked in-process.
    from tfrestore.data import ImageInputError
    from tfrestore.priors.recipe import train_patch_prior
    with pytest.raises(ImageInputError, match="nothing_here"):
        train_patch_prior(str(tmp_path / "nothing_here"), str(tmp_path / "p.keras"))
    assert not os.path.exists(tmp_path / "p.keras")
    with pytest.raises(ValueError, match=".keras"):
        from tfrestore.priors.recipe import save_prior
        save_prior(None, str(tmp_path / "p.h5"))
