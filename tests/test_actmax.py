"""Activation maximisation: target parsing, the selection maths, the run and the binary."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from tfrestore.inversion import get_settings
from tfrestore.uses.actmax import actmax_settings, maximise, measure
from tfrestore.uses.targets import logits_layer, parse_targets, selection_terms
from uses_helpers import tiny_softmax_classifier


def test_logits_layer_is_the_input_of_the_softmax():
    clf = tiny_softmax_classifier()
    assert logits_layer(clf) == "logits"


def test_parse_targets_forms_and_errors():
    clf = tiny_softmax_classifier()
    ts = parse_targets(clf, ["class:synonym3,logit:1", "channel:c2:7", "unit:c1:2:3:4",
                             "unit:c1:2"])
    assert [(t.kind, t.layer, t.index) for t in ts] == [
        ("logit", "logits", 3), ("logit", "logits", 1), ("channel", "c2", 7),
        ("unit", "c1", 2), ("unit", "c1", 2)]
    assert ts[0].name == "class_class3" and ts[3].position == (3, 4)
    assert ts[4].position == (8, 8)  # the centre of the 16x16 map
    for bad, msg in [("logit:9", "outside"), ("class:nothing", "no such label"),
                     ("channel:c2:8", "outside"), ("unit:gap:1", "no spatial map"),
                     ("unit:c1:0:16:0", "outside"), ("pixel:3", "expected"),
                     ("class:class", "ambiguous")]:
        with pytest.raises(ValueError, match=msg):
            parse_targets(clf, [bad])


def test_selection_terms_match_numpy(rng):
    clf = tiny_softmax_classifier()
    ts = parse_targets(clf, ["channel:c1:1", "unit:c1:2:3:4", "logit:4"])
    terms = selection_terms(clf, ts, weight=2.0)
    assert [t.at for t in terms] == ["c1", "logits"]
    x = rng.uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    feats = clf.feature_model(["c1", "logits"])(x)
    c1, logits = np.asarray(feats[0]), np.asarray(feats[1])
    want = [c1[0, :, :, 1].mean(), c1[1, 3, 4, 2], logits[2, 4]]
    got = -(terms[0](tf.constant(c1)).numpy() + terms[1](tf.constant(logits)).numpy())
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(measure(clf, ts, x)["activation"], want, rtol=1e-5)


def test_actmax_raises_its_targets_well_above_their_start(rng):
    clf = tiny_softmax_classifier()
    # A unit before its ReLU: a dead ReLU unit has no gradient to climb.
    ts = parse_targets(clf, ["logit:2", "channel:c2:3", "unit:c1/lin:1"])
    # No jitter: a unit target sits at one position of the unshifted image.
    settings = actmax_settings("fast", clf, ts, steps=20, feature_weight=10.0, jitter=0)
    assert settings.layer == "logits"  # the deepest target's preset
    # The activation's spread over the noise starts sets the scale of "well above".
    noise = rng.normal(0, 80 / 6.5, (32, 16, 16, 3)).astype(np.float32) + 120
    spread = [measure(clf, [t] * 32, noise)["activation"].std() for t in ts]
    run = maximise(clf, ts, settings, verbose=False)
    gain = run.end["activation"] - run.start["activation"]
    assert np.all(gain > 5 * np.array(spread)), (gain, spread)
    p0 = tf.nn.softmax(clf.feature_model("logits")(run.images[:1])).numpy()[0, 2]
    assert run.end["probability"][0] == pytest.approx(p0, abs=0.02)
    assert np.isnan(run.end["probability"][1])


def test_actmax_binary(tmp_path):
    import keras
    clf = tiny_softmax_classifier(size=32)
    path = str(tmp_path / "tiny.keras")
    clf.model.save(path)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"thing{i}\n" for i in range(5)))
    out = tmp_path / "out"
    cmd = [sys.executable, os.path.join(REPO, "bin", "actmax.py"), f"--classifier={path}",
           "--preprocessing=caffe", f"--labels={labels}", "--target=class:thing1,logit:3",
           "--target=channel:c2:0", "--steps=5", "--tv_weight=0.5",
           f"--output_dir={out}"]
    env = dict(os.environ, PYTHONPATH=REPO)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["settings"]["tv_weight"] == 0.5 and rec["settings"]["steps_run"] == 5
    assert [t["image"] for t in rec["targets"]] == [
        "images/class_thing1.png", "images/logit_3.png", "images/channel_c2_0.png"]
    for t in rec["targets"]:
        if "class_index" in t:  # (a ReLU channel can sit at 0)
            assert t["activation_end"] > t["activation_start"]
        img = tf.io.decode_png(tf.io.read_file(str(out / t["image"]))).numpy()
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert (out / "grid.png").exists() and (out / "tensorboard").is_dir()
    bad = subprocess.run(cmd[:5] + ["--target=class:nope", f"--output_dir={out}"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "no such label" in bad.stderr
