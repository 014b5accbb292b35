"""Training inverting networks to convergence: the held-out plateau criterion, best
weights, learning-rate drops, one module alone, resume, the feature cache."""
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from test_inverters import PHOTOS, stack_factory, tiny_model  # noqa: E402

from tfrestore.classifiers import Classifier  # noqa: E402
from tfrestore.data import load_images  # noqa: E402
from tfrestore.inverters import TrainConfig, Trainer, prepare_data  # noqa: E402
from tfrestore.inverters.training import (Plateau, level_losses, load_features,  # noqa: E402
                                          save_features)


@pytest.fixture(scope="module")
def clf():
    return Classifier("tiny", tiny_model(), "tf")


@pytest.fixture(scope="module")
def data(clf):
    photos = load_images(PHOTOS, 32)
    return prepare_data(clf, ["input", "c2", "c3"], photos.images, photos.paths, num_val=3,
                        seed=0)


@pytest.fixture(autouse=True)
def no_step_cap(monkeypatch):
    monkeypatch.delenv("TFRESTORE_MAX_STEPS", raising=False)


def test_plateau_events_on_known_sequences():
    w = tf.Variable([1.0])
    p = Plateau([w], rtol=0.1, patience=2, drops=1)
    # 10 -> 8 improves (> 10%), 7.5 is within 10% of 8 (flat), 7.4 flat: drop;
    # 5 improves (best weights copied), then two flat: converged.
    events = []
    for step, (value, weight) in enumerate([(10, 1.), (8, 2.), (7.5, 3.), (7.4, 4.),
                                            (5, 5.), (4.9, 6.), (4.8, 7.)], start=1):
        w.assign([weight])
        events.append(p.update(step, value))
    assert events == ["improved", "improved", "wait", "drop", "improved", "wait",
                      "converged"]
    assert bool(p.done.numpy()) and int(p.best_step.numpy()) == 5
    p.restore_best()
    assert float(w.numpy()[0]) == 5.0
    # A steadily improving sequence never stops.
    q = Plateau([w], rtol=0.01, patience=1)
    assert {q.update(s, 100 * 0.9 ** s) for s in range(1, 30)} == {"improved"}


def _val_total(trainer):
    batch = [tf.constant(v) for v in trainer.data.val]
    losses = level_losses(trainer.stack, batch, trainer.cfg.mode, trainer.data.scales)
    return float(np.mean(tf.add_n(list(losses.values()))))


def test_criterion_stops_a_converged_run_and_not_an_improving_one(clf, data):
    flat = TrainConfig(mode="solo", steps=2000, batch_size=3, lr=3e-3, schedule="constant",
                       log_every=10, val_every=10, patience=3, rtol=0.01)
    converged = Trainer(stack_factory(clf), data, flat)
    converged.train()
    assert converged.converged and int(converged.step.numpy()) < 2000
    assert converged.history[-1]["criterion"] == "converged"
    # The last `patience` evaluations were all flat (not 1% below the best).
    tail = [r for r in converged.history if "val_total" in r][-3:]
    assert all(r["val_total"] >= converged.best_value * 0.99 for r in tail)
    # Best weights restored: the held-out loss is the best recorded one (independent).
    converged.use_best_weights()
    assert _val_total(converged) == pytest.approx(converged.best_value, rel=1e-4)
    # The same run at its start is improving: it is not stopped.
    improving = Trainer(stack_factory(clf), data,
                        TrainConfig(**{**flat.__dict__, "steps": 50}))
    improving.train()
    evals = [r for r in improving.history if "val_total" in r]
    assert int(improving.step.numpy()) == 50 and not improving.converged
    assert [r["criterion"] for r in evals] == ["improved"] * 5
    assert all(b["val_total"] < a["val_total"] * 0.99 for a, b in zip(evals, evals[1:]))


def test_plateau_schedule_drops_the_rate_before_stopping(clf, data):
    cfg = TrainConfig(mode="joint", steps=3000, batch_size=3, lr=3e-3, schedule="plateau",
                      log_every=10, val_every=10, patience=2, rtol=0.01)
    t = Trainer(stack_factory(clf), data, cfg)
    t.train()
    drops = [r for r in t.history if r.get("criterion") == "drop"]
    assert t.converged and len(drops) == 3
    # After each drop, the rate is the thesis's next factor (1/3, 1/10, 1/30).
    rates = sorted({r["lr"] for r in t.history}, reverse=True)
    np.testing.assert_allclose(rates, [3e-3, 1e-3, 3e-4, 1e-4], rtol=1e-5)


def test_resume_with_criterion_equals_uninterrupted(clf, data, tmp_path):
    cfg = TrainConfig(mode="joint", steps=400, batch_size=3, lr=3e-3, schedule="plateau",
                      log_every=2, val_every=4, patience=1, rtol=0.02, checkpoint_every=3)
    full = Trainer(stack_factory(clf), data, cfg)
    full.train()
    assert full.converged          # the test covers drops and the stop after a resume
    ck = str(tmp_path / "ck")
    first = Trainer(stack_factory(clf), data, cfg, ckpt_dir=ck)
    first.train(until=10)
    # A crash after step 10 that lost its last checkpoint: the latest is step 9 (between
    # evaluations), and history.json holds a record of step 10 that must be dropped.
    for f in os.listdir(ck):
        if f.startswith("ckpt-10."):
            os.remove(os.path.join(ck, f))
    tf.compat.v1.train.update_checkpoint_state(ck, os.path.join(ck, "ckpt-9"))
    assert json.load(open(os.path.join(ck, "history.json")))[-1]["step"] == 10
    resumed = Trainer(stack_factory(clf, seed=99), data, cfg, ckpt_dir=ck)
    assert int(resumed.step.numpy()) == 9
    resumed.train()
    assert int(resumed.step.numpy()) == int(full.step.numpy())
    assert resumed.best_step == full.best_step and resumed.converged
    for a, b in zip(full.stack.get_weights(), resumed.stack.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    keys = ("step", "lr", "val_total", "criterion", "train_total")
    strip = [lambda h: [{k: r.get(k) for k in keys} for r in h]][0]
    got, want = strip(resumed.history), strip(full.history)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want):
        assert g["criterion"] == w["criterion"] and g["lr"] == pytest.approx(w["lr"])
        assert g["train_total"] == pytest.approx(w["train_total"], rel=1e-4)
    # The history is saved with the checkpoints, so a finished run reloads converged.
    again = Trainer(stack_factory(clf, seed=5), data, cfg, ckpt_dir=ck)
    assert again.converged and again.train() == again.history
    assert int(again.step.numpy()) == int(full.step.numpy())
    assert json.load(open(os.path.join(ck, "history.json")))[-1]["criterion"] == "converged"


def test_one_module_alone_trains_only_that_module(clf, data):
    cfg = TrainConfig(mode="solo", steps=6, batch_size=3, lr=3e-3, module=2, log_every=2,
                      val_every=3)
    t = Trainer(stack_factory(clf), data, cfg)
    before = [[w.copy() for w in m.get_weights()] for m in t.stack.inverse_modules]
    t.train()
    for m, b in zip(t.stack.inverse_modules, before):
        same = all(np.array_equal(x, y) for x, y in zip(m.get_weights(), b))
        assert same == (m is t.stack.inverse_modules[0])
    assert set(k for k in t.history[-1] if k.startswith("level_")) == {"level_1"}
    assert "val_chain_image" not in t.history[-1] and "val_level_1" in t.history[-1]
    with pytest.raises(ValueError, match="solo training"):
        TrainConfig(mode="joint", module=1)
    with pytest.raises(ValueError, match="set --val_every"):
        TrainConfig(patience=2, val_every=0)


def test_feature_cache_round_trip_and_key(data, tmp_path):
    path = str(tmp_path / "f.npz")
    key = {"classifier": "tiny", "images": "x", "seed": 0}
    save_features(path, data, key)
    back = load_features(path, key)
    assert back.levels == data.levels and back.val_names == data.val_names
    assert back.scales == pytest.approx(data.scales)
    for a, b in zip(back.train + back.val, data.train + data.val):
        np.testing.assert_array_equal(a, b)
    assert load_features(path, {**key, "seed": 1}) is None
    assert load_features(str(tmp_path / "none.npz"), key) is None
