"""Learned priors inside pre-image optimisation; method comparison and weight search."""
import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfrestore  # noqa: F401
from tfrestore.classifiers import Classifier
from tfrestore.inversion import FeatureLoss, Objective, get_settings, invert
from tfrestore.inversion.comparison import (end_of_run_table, end_slope, markdown_table,
                                            missing_cells, run_comparison,
                                            spec_at)
from tfrestore.inversion.learned import parse_prior_spec, prior_terms
from tfrestore.inversion.methods import Method, methods_from_config
from tfrestore.priors import PatchPrior, PriorMismatchError

from conftest import REPO


def tiny_classifier():
    keras.utils.set_random_seed(1)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", padding="same", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", padding="same", name="c2")(x)
    return Classifier("tiny", keras.Model(inp, x), "caffe")


def save_prior(path, channels, seed=0):
    prior = PatchPrior(3, channels, 5, expert="student_t", seed=seed,
                       metadata={"layer": "c1" if channels == 4 else "image"})
    prior(tf.zeros((1, 8, 8, channels)))
    prior.save(path)
    return path


@pytest.fixture(scope="module")
def priors(tmp_path_factory):
    d = tmp_path_factory.mktemp("priors")
    return save_prior(str(d / "img.keras"), 3), save_prior(str(d / "c1.keras"), 4, seed=1)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, 24, 24, 3)).astype(np.float32)


def test_parse_prior_spec():
    s = parse_prior_spec("dir/p.keras@expanded_conv_3_add:2.5e-5")
    assert (s.path, s.at, s.weight) == ("dir/p.keras", "expanded_conv_3_add", 2.5e-5)
    s = parse_prior_spec("p.keras")
    assert (s.at, s.weight) == ("image", 1.0)
    assert parse_prior_spec("p.keras@c2/lin:3").at == "c2/lin"
    with pytest.raises(ValueError, match=">= 0"):
        parse_prior_spec("p.keras@image:-1")


def test_prior_terms_check_where_they_attach(priors):
    clf = tiny_classifier()
    img, c1 = priors
    terms = prior_terms(clf, [f"{img}@image:0.5", f"{c1}@c1:2"])
    assert [t.at for t in terms] == ["image", "c1"] and terms[1].weight == 2.0
    with pytest.raises(PriorMismatchError, match="3 channels"):
        prior_terms(clf, [f"{img}@c1:1"])
    with pytest.raises(Exception, match="Valid layers"):
        prior_terms(clf, [f"{c1}@c9:1"])
    with pytest.raises(FileNotFoundError):
        prior_terms(clf, ["/no/such/prior.keras@image:1"])


def test_feature_map_prior_gradient_reaches_the_image(priors, images):
    """d(prior at c1)/d(image) by autodiff equals a finite difference through the net."""
    clf = tiny_classifier()
    term = prior_terms(clf, [f"{priors[1]}@c1:1"])[0]
    obj = Objective(clf, [term])
    x = tf.Variable(images[:1])
    with tf.GradientTape() as tape:
        total, _ = obj(x)
    g = tape.gradient(total, x).numpy()
    assert np.abs(g).max() > 0
    idx = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(g)), g.shape))
    eps = 0.05
    plus, minus = images[:1].copy(), images[:1].copy()
    plus[idx] += eps
    minus[idx] -= eps
    fd = (float(obj(plus)[0][0]) - float(obj(minus)[0][0])) / (2 * eps)
    np.testing.assert_allclose(g[idx], fd, rtol=2e-2)


def test_two_phase_gate(priors, images):
    clf = tiny_classifier()
    terms = prior_terms(clf, [f"{priors[0]}@image:1e-3"])
    settings = get_settings("mv2016", clf, "c2", steps=10, prior_start=0.5)
    res = invert(clf, images, settings, extra_terms=terms, steps=10, log_every=1,
                 verbose=False)
    name = terms[0].name
    before = [h["terms"][name] for h in res.history if h["step"] <= 5]
    after = [h["terms"][name] for h in res.history if h["step"] > 5]
    assert all(v == 0 for v in before) and all(v > 0 for v in after)


def test_inactive_prior_is_not_evaluated(priors, images):
    """Before `prior_start` the compiled step leaves the prior out (not weight 0), and the
    crops it draws are the same whether or not the prior is evaluated."""
    from tfrestore.inversion import PriorTerm
    clf = tiny_classifier()
    prior = keras.models.load_model(priors[0])
    calls = tf.Variable(0, dtype=tf.int64)

    def counted(x):
        calls.assign_add(1)
        return prior(x)

    term = PriorTerm(counted, weight=1e-3, name="prior:counted", crop=0.5, seed=3)
    settings = get_settings("mv2016", clf, "c2", steps=10, prior_start=0.3)
    res = invert(clf, images, settings, extra_terms=[term], steps=10, log_every=1,
                 verbose=False)
    assert int(calls.numpy()) == 7          # steps 4-10 only
    assert [h["terms"]["prior:counted"] > 0 for h in res.history] == [False] * 3 + [True] * 7
    # crops (12x12 of 24x24): 10 draws of (top, left) whatever the phase, so the generator
    # ends where a fresh one ends after 10 draws
    fresh = tf.random.Generator.from_seed(3)
    for _ in range(10):
        fresh.uniform((), 0, 13, tf.int32), fresh.uniform((), 0, 13, tf.int32)
    assert np.array_equal(term.generator.state.numpy(), fresh.state.numpy())


def test_prior_lowers_its_energy_during_inversion(priors, images):
    clf = tiny_classifier()
    settings = get_settings("mv2016", clf, "c2", steps=15, tv_weight=0.0)
    base = invert(clf, images, settings, steps=15, verbose=False)
    terms = prior_terms(clf, [f"{priors[0]}@image:1e-2"])
    with_prior = invert(clf, images, settings, extra_terms=terms, steps=15, verbose=False)
    prior = terms[0].fn
    assert float(tf.reduce_sum(prior(with_prior.reconstructions))) < \
        float(tf.reduce_sum(prior(base.reconstructions)))


def test_comparison_runs_every_cell_and_resumes(tmp_path, priors, images):
    clf = tiny_classifier()
    methods = methods_from_config({
        "mv2016": {},
        "learned": {"overrides": {"tv_weight": 0.0},
                    "priors": {"*": [f"{priors[0]}@image:1e-3"],
                               "c2": [f"{priors[0]}@image:1e-3", f"{priors[1]}@c1:1e-3"]}},
        "network": {"inverter": {"p1": "unused.keras"}}})
    path = str(tmp_path / "cmp.json")
    res = run_comparison(clf, ["c1", "c2"], methods, images, ["a", "b"], path, steps=4,
                         log=lambda s: None)
    cells = res["cells"]
    assert len(cells) == 6 and "skipped" in cells["c1 | network"]
    only_c2 = Method(name="fmap", priors={"c2": [f"{priors[1]}@c1:1e-3"]})
    other = run_comparison(clf, ["c1"], [only_c2], images, ["a", "b"],
                           str(tmp_path / "other.json"), steps=2, log=lambda s: None)
    assert "no prior for 'c1'" in other["cells"]["c1 | fmap"]["skipped"]
    assert cells["c2 | learned"]["record"]["priors"][1].endswith("@c1:1e-3")
    assert len(cells["c1 | mv2016"]["per_image"]["ssim"]) == 2
    table = markdown_table(res, ["c1", "c2"], ["mv2016", "learned", "network"])
    assert "| mv2016 |" in table and "**ssim**" in table
    from tfrestore.metrics.paired import bootstrap_ci
    ssim = cells["c1 | mv2016"]["per_image"]["ssim"]
    lo, hi = bootstrap_ci(ssim)
    assert f"{np.mean(ssim):.3f} [{lo:.3f}, {hi:.3f}]" in table

    class Exploding(Method):
        def reconstruct(self, *a, **k):
            raise AssertionError("a finished cell was recomputed")
    again = run_comparison(clf, ["c1", "c2"], [Exploding(name="mv2016")], images,
                           ["a", "b"], path, steps=4, log=lambda s: None)
    assert again["cells"] == cells
    # a changed method definition reruns that method's cells only
    changed = Method(name="mv2016", overrides={"tv_weight": 0.5})
    third = run_comparison(clf, ["c1"], [changed], images, ["a", "b"], path, steps=4,
                           log=lambda s: None)
    assert third["cells"]["c1 | mv2016"]["spec"]["overrides"] == {"tv_weight": 0.5}
    assert third["cells"]["c1 | learned"] == cells["c1 | learned"]
    # A cell is keyed by the method as it applies at its layer: a new weight at c2 reruns
    # the c2 cell only, and a cell recorded under the whole method (older studies) still
    # counts at c1.
    reweighted = Method(name="learned", overrides={"tv_weight": 0.0},
                        priors={"*": [f"{priors[0]}@image:1e-3"],
                                "c2": [f"{priors[0]}@image:3e-3", f"{priors[1]}@c1:1e-3"]})
    assert missing_cells(res, ["c1", "c2"], [reweighted]) == ["c2 | learned"]
    old_style = dict(cells["c1 | learned"], spec=dataclasses.asdict(methods[1]))
    assert old_style["spec"]["priors"].keys() == {"*", "c2"}
    assert missing_cells({"cells": {"c1 | learned": old_style}}, ["c1"], [reweighted]) == []
    assert spec_at(spec_at(old_style["spec"], "c1"), "c1") == spec_at(old_style["spec"], "c1")
    # Files holding cells outside the run's wanted ones merge too (a subset of methods run
    # against a study with shards).
    from tfrestore.inversion.comparison import load_results, shard_path, wanted_specs
    with open(path) as f:
        stored = json.load(f)
    with open(shard_path(path, (0, 3)), "w") as f:
        json.dump(stored, f)
    merged, _, files = load_results(path, stored["settings"],
                                    wanted_specs(["c1"], [methods[0]]), log=lambda s: None)
    assert len(files) == 2 and set(merged["cells"]) == set(stored["cells"])
    os.remove(shard_path(path, (0, 3)))
    # Cells record their prior files' fingerprints: a prior retrained into the same path
    # is not the old one (cells recorded before fingerprints are judged without them).
    assert set(cells["c2 | learned"]["spec"]["files"]) == {priors[0], priors[1]}
    assert missing_cells(res, ["c1", "c2"], methods) == []
    save_prior(priors[1], 4, seed=5)
    assert missing_cells(res, ["c1", "c2"], methods) == ["c2 | learned"]
    # A method's own step budget wins over the study's (the fast preset keeps its 350).
    budget = Method(name="fixed budget", overrides={"steps": 3})
    own = run_comparison(clf, ["c1"], [budget], images, ["a", "b"],
                         str(tmp_path / "budget.json"), steps=5, log=lambda s: None)
    record = own["cells"]["c1 | fixed budget"]["record"]
    assert record["steps_run"] == 3 and record["settings"]["steps"] == 3
    with pytest.raises(ValueError, match="unknown key"):
        methods_from_config({"x": {"prior": []}})


@pytest.mark.parametrize("hybrid", [False, True])
def test_comparison_cells_record_curves_and_resume_inside_a_cell(tmp_path, images, hybrid):
    """A cell interrupted mid-run resumes from its checkpoint to the uninterrupted result,
    and its curve spans both sittings (steps in order, seconds not restarting); a hybrid
    cell (network start, then optimisation) as well."""
    from tfrestore.engine import callbacks as E
    clf = tiny_classifier()
    spec = {}
    if hybrid:
        from tfrestore.inverters import build_stack, save_stack
        inverter = save_stack(build_stack(clf, blocks=["p1", "c2"], seed=0),
                              str(tmp_path / "inverter.keras"))
        spec = {"inverter": {"c2": inverter}, "hybrid": True}
    methods = methods_from_config({"mv2016": spec}, overrides={"converge_window": 2})
    assert methods[0].overrides == {"converge_window": 2}
    kw = dict(steps=12, log=lambda s: None, curve_every=3)
    whole = run_comparison(clf, ["c2"], methods, images, ["a", "b"],
                           str(tmp_path / "whole.json"), work_dir=str(tmp_path / "w1"), **kw)
    cell = whole["cells"]["c2 | mv2016"]
    steps = [r["step"] for r in cell["curve"]]
    assert steps == [1, 3, 6, 9, 12]
    assert all(len(r["ssim"]) == 2 and len(r["feature_error"]) == 2 for r in cell["curve"])
    # the curve's last point is the cell's final reconstruction, scored the same way
    np.testing.assert_allclose(cell["curve"][-1]["feature_error"],
                               cell["per_image"]["feature_error"], rtol=1e-4)
    assert not os.path.exists(str(tmp_path / "w1"))   # finished cells leave no checkpoint

    original = E.CurveRecorder.on_step_end

    def interrupting(self, engine, logs):   # raise once the step-8 state is checkpointed
        original(self, engine, logs)
        if logs.step == 8 and not getattr(interrupting, "done", False):
            interrupting.done = True
            raise KeyboardInterrupt
    path, work = str(tmp_path / "cut.json"), str(tmp_path / "w2")
    import unittest.mock as mock
    with mock.patch.object(E.CurveRecorder, "on_step_end", interrupting), \
            mock.patch("tfrestore.inversion.optimize.ImageOptimizer.callbacks",
                       _checkpoint_every(4)):
        with pytest.raises(KeyboardInterrupt):
            run_comparison(clf, ["c2"], methods, images, ["a", "b"], path, work_dir=work,
                           **kw)
        assert os.path.exists(os.path.join(work, "c2___mv2016", "curve.json"))
        resumed = run_comparison(clf, ["c2"], methods, images, ["a", "b"], path,
                                 work_dir=work, **kw)["cells"]["c2 | mv2016"]
    assert [r["step"] for r in resumed["curve"]] == steps
    seconds = [r["seconds"] for r in resumed["curve"]]
    assert seconds == sorted(seconds) and resumed["seconds"] == seconds[-1]
    np.testing.assert_allclose(resumed["per_image"]["ssim"], cell["per_image"]["ssim"],
                               rtol=1e-5)


def _checkpoint_every(n):
    """ImageOptimizer.callbacks with checkpoints every `n` steps (the default is 250)."""
    from tfrestore.inversion.optimize import ImageOptimizer
    original = ImageOptimizer.callbacks

    def callbacks(self, **kw):
        return original(self, **dict(kw, checkpoint_every=n))
    return callbacks


def test_search_and_compare_binaries(tmp_path, priors):
    model = tiny_classifier().model
    clf_path = str(tmp_path / "tiny.keras")
    model.save(clf_path)
    env = dict(os.environ, TFRESTORE_MAX_STEPS="3")
    out = str(tmp_path / "search")
    res = subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "search_weights.py"),
         f"--classifier={clf_path}", "--layer=c1,c2", "--images=chelsea,coffee", "--limit=2",
         f"--prior={priors[0]}@image", "--grid=1e-4,1e-2", "--set=tv_weight=0",
         "--metric=psnr", f"--output={out}", "--curve_every=1"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ranking = json.load(open(out + "_ranking.json"))
    assert {r["weights"] for r in ranking["ranking"]} == {"w=0", "w=0.0001", "w=0.01"}
    scores = [r["psnr"] for r in ranking["ranking"]]
    assert scores == sorted(scores, reverse=True)
    # Per layer: each layer's best is its own highest PSNR, from the cells' per-image values.
    cells = json.load(open(out + ".json"))["cells"]
    for layer in ("c1", "c2"):
        means = {w: float(np.mean(cells[f"{layer} | {w}"]["per_image"]["psnr"]))
                 for w in ("w=0", "w=0.0001", "w=0.01")}
        assert ranking["per_layer"][layer] == pytest.approx(means)
        assert ranking["best_per_layer"][layer] == max(means, key=means.get)
        assert [p["step"] for p in cells[f"{layer} | w=0.01"]["curve"]][-1] == 3
    assert not os.path.exists(out + "_cells")   # finished cells' checkpoints are removed
    # --render_only ranks what a search still running has: drop one cell and re-rank.
    del cells["c2 | w=0.01"]
    data = json.load(open(out + ".json"))
    data["cells"] = cells
    json.dump(data, open(out + ".json", "w"))
    res = subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "search_weights.py"),
         f"--classifier={clf_path}", "--layer=c1,c2", "--images=chelsea,coffee", "--limit=2",
         f"--prior={priors[0]}@image", "--grid=1e-4,1e-2", "--set=tv_weight=0",
         "--metric=psnr", f"--output={out}", "--render_only"],
        capture_output=True, text=True, cwd=REPO, env=dict(env, TFRESTORE_MAX_STEPS="0"),
        timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    partial = json.load(open(out + "_ranking.json"))
    assert partial["missing"] == ["c2 | w=0.01"]
    assert {r["weights"] for r in partial["ranking"]} == {"w=0", "w=0.0001"}
    assert partial["per_layer"]["c1"] == ranking["per_layer"]["c1"]
    assert "**Incomplete:** 1 of 6 cells" in open(out + ".md").read()
    # c2 lacks a weight: no best is named for it yet; c1 keeps its best.
    assert partial["best_per_layer"] == {"c1": ranking["best_per_layer"]["c1"]}
    assert "c2: not all weights run yet" in open(out + ".md").read()

    config = {"classifier": clf_path, "layers": ["c1", "c2"],
              "methods": {"mv2016": {}, "learned": {"priors": {"*": [f"{priors[0]}@image:1e-3"]}}}}
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    out = str(tmp_path / "cmp")
    res = subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "compare.py"), f"--config={cfg}",
         "--images=chelsea,coffee", "--limit=2", "--perceptual_network=none",
         f"--output={out}"], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    md = open(out + ".md").read()
    assert "| learned |" in md and "c2" in md and "**budget**" in md
    assert os.path.getsize(out + ".png") > 1000
    assert os.path.getsize(out + "_fig2.png") > 1000      # the second image's figure
    assert not os.path.exists(out + "_fig3.png")          # only two images
    assert os.path.getsize(out + "_curves.png") > 1000
    cell = json.load(open(out + ".json"))["cells"]["c2 | learned"]
    assert cell["curve"][-1]["step"] == cell["record"]["steps_run"] == 3
    os.remove(out + ".md")
    res = subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "compare.py"), f"--config={cfg}",
         "--images=chelsea,coffee", "--limit=2", "--perceptual_network=none",
         f"--output={out}", "--render_only"], capture_output=True, text=True, cwd=REPO,
        env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert open(out + ".md").read() == md  # same table, nothing recomputed
    bad = subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "search_weights.py"),
         f"--classifier={clf_path}", "--layer=c2", "--images=chelsea",
         f"--prior={priors[0]}@image", "--set=no_such_setting=1", f"--output={out}2"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert bad.returncode == 2 and "no_such_setting" in bad.stderr


def test_random_crop_estimates_the_whole_energy(priors):
    from tfrestore.inversion import PriorTerm
    from tfrestore.priors import load_prior
    prior = load_prior(priors[0])
    x = tf.constant(np.random.default_rng(3).normal(120, 40, (1, 40, 40, 3)), tf.float32)
    full = float(PriorTerm(prior)(x)[0])
    term = PriorTerm(prior, crop=0.4, seed=0)
    draws = [float(term(x)[0]) for _ in range(300)]
    assert np.std(draws) > 0  # the crop really moves
    np.testing.assert_allclose(np.mean(draws), full, rtol=0.05)
    with pytest.raises(ValueError, match="fraction"):
        PriorTerm(prior, crop=1.5)


def test_status_table_tells_done_running_pending(tmp_path, priors, images):
    from tfrestore.inversion.comparison import _slug, status_table
    clf = tiny_classifier()
    methods = methods_from_config({"mv2016": {},
                                   "fmap": {"priors": {"c2": [f"{priors[1]}@c1:1e-3"]}}})
    path = str(tmp_path / "s.json")
    results = run_comparison(clf, ["c1"], methods[:1], images, ["a", "b"], path, steps=3,
                             log=lambda s: None)
    work = tmp_path / "cells"
    (work / _slug("c2 | mv2016")).mkdir(parents=True)
    (work / _slug("c2 | mv2016") / "curve.json").write_text('[{"step": 7, "seconds": 12.5}]')
    table = status_table(results, ["c1", "c2"], methods, str(work))
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:4]}
    assert "| 3, " in rows["mv2016"] and "running: step 7, 12 s" in rows["mv2016"]
    assert "n/a" in rows["fmap"].split(" | ")[1] and "pending" in rows["fmap"].split(" | ")[2]
    assert "1 done, 1 in progress, 1 pending, 1 skipped (of 4 cells)" in table
    # a changed method definition is pending again
    changed = methods_from_config({"mv2016": {"overrides": {"tv_weight": 0.5}}})
    assert "pending" in status_table(results, ["c1"], changed).splitlines()[2]


def test_comparison_feature_chunk_is_recorded_and_changes_rounding_only(tmp_path, images):
    """--feature_chunk runs the network on chunks of the cell's images: the cell records the
    value, the class default comes back afterwards, and the results match the unchunked run
    (the same maths; only float rounding may differ)."""
    from tfrestore.inversion.objectives import Objective
    clf = tiny_classifier()
    methods = methods_from_config({"mv2016": {}})
    kw = dict(steps=5, log=lambda s: None)
    whole = run_comparison(clf, ["c2"], methods, images, ["a", "b"],
                           str(tmp_path / "whole.json"), **kw)
    chunked = run_comparison(clf, ["c2"], methods, images, ["a", "b"],
                             str(tmp_path / "chunked.json"), feature_chunk=1, **kw)
    assert Objective.feature_chunk == 0
    a, b = whole["cells"]["c2 | mv2016"], chunked["cells"]["c2 | mv2016"]
    assert b["record"]["feature_chunk"] == 1 and "feature_chunk" not in a["record"]
    for metric in ("ssim", "feature_error"):
        np.testing.assert_allclose(b["per_image"][metric], a["per_image"][metric],
                                   rtol=1e-3, atol=1e-4)


def test_a_cell_folder_started_under_another_method_is_not_resumed(tmp_path, images):
    """An interrupted cell's checkpoint folder serves its method definition only: after a
    change (here the TV weight) the cell restarts from scratch and says so."""
    from tfrestore.inversion.comparison import wanted_specs
    clf = tiny_classifier()
    old, new = (methods_from_config({"m": o}) for o in ({}, {"overrides": {"tv_weight": 0.5}}))
    folder = tmp_path / "cells" / "c2___m"
    folder.mkdir(parents=True)
    (folder / "cell_spec.json").write_text(json.dumps(wanted_specs(["c2"], old)["c2 | m"]))
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "stale").write_text("from the old definition")
    seen = []

    def log(msg):
        seen.append(msg)
        if "restarting" in msg:   # the old folder is gone before the cell runs
            assert not (folder / "checkpoint" / "stale").exists()
    res = run_comparison(clf, ["c2"], new, images, ["a", "b"], str(tmp_path / "a.json"),
                         steps=4, log=log, work_dir=str(tmp_path / "cells"))
    assert any("method changed since the cell started; restarting it" in m for m in seen)
    assert res["cells"]["c2 | m"]["record"]["steps_run"] == 4


def test_end_slope_measures_the_trend_after_the_last_schedule_event():
    """SSIM rising 0.002 per 100 steps after a jump at step 2750 (jitter off): the slope over
    the last 250 steps is 0.002 per 100, the jump is left out, too short a tail is None."""
    curve = [{"step": s, "ssim": [0.3 + (0.1 if s > 2750 else 0.0) + 2e-5 * s,
                                  0.5 + (0.1 if s > 2750 else 0.0) + 2e-5 * s]}
             for s in range(50, 3501, 50)]
    assert end_slope(curve, span=250, after=2750) == pytest.approx(0.002)
    short = [p for p in curve if p["step"] <= 2850]   # 50 steps after the jump
    assert end_slope(short, span=250, after=2750) is None
    assert end_slope(short, span=250, after=2750, min_span=50) == pytest.approx(0.002)
    assert end_slope(curve, span=1000, after=0) > 0.002              # spans the jump
    assert end_slope([], span=250) is None
    cells = {"c1 | m": {"record": {"convergence": {"relative_change": 0.012,
                                                   "checked_after_step": 2750}},
                        "curve": curve},
             "c2 | m": {"seconds": 1.0}}
    table = end_of_run_table({"cells": cells}, ["c1", "c2"], ["m"])
    assert "| m | 1.2%, +0.0020 | – |" in table


def test_cells_table_pairs_each_cell_with_the_baseline_at_its_layer():
    """One row per finished cell with its prior weight, budget, convergence and the paired
    statistics against the baseline of the same layer, checked against a direct computation."""
    from tfrestore.inversion.comparison import cells_table
    from tfrestore.metrics.paired import paired_summary
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, 10)
    better = base + rng.uniform(0.0, 0.02, 10)

    def cell(ssim, steps=None, converged=None, change=None, spec=None):
        rec = {} if steps is None else {"steps_run": steps, "converged": converged,
                                        "convergence": {"relative_change": change}}
        return {"seconds": 12.0, "record": rec, "spec": spec or {},
                "per_image": {"ssim": list(ssim), "feature_error": [0.01] * 10,
                              "psnr": [15.0] * 10}}
    cells = {"L1 | base": cell(base, 3500, False, 0.055),
             "L1 | prior": cell(better, 3300, True, 0.00085,
                                {"priors": {"L1": ["p.keras@image:3e-3"],
                                            "*": ["p.keras@image:1e-3"]}}),
             "L2 | prior": cell(better, 3500, False, 0.02, {"priors": {"*": ["p@image:1e-3"]}}),
             "L2 | net": cell(better)}
    table = cells_table({"cells": cells}, ["L1", "L2"], ["base", "prior", "net"], "base")
    rows = [r for r in table.splitlines() if r.startswith("| ") and "@" in r]
    assert [r.split(" | ")[0] for r in rows] == ["| base @ L1", "| prior (3e-3) @ L1",
                                                 "| prior (1e-3) @ L2", "| net @ L2"]
    s = paired_summary(better, base)
    assert s["wins"] == 10
    assert (f"{s['mean_difference']:+.3f} [{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}], "
            f"10/0/0, p = {s['wilcoxon_p']:.2g}") in rows[1]
    assert "| 3300 | ✓ (0.085%) | 12 |" in rows[1]
    assert "| 3500 | † (5.5%) |" in rows[0] and rows[0].endswith("| – |")
    assert "| network | – |" in rows[3]
    assert rows[2].endswith("| – |")   # no baseline at L2: nothing to pair with
