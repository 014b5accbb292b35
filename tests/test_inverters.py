"""Inverting networks: modules, blocks, the four training modes, save/load, resume,
distribution over two logical CPU devices, and reconstruction (network / hybrid)."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfrestore
from tfrestore.classifiers import Classifier, UnknownLayerError
from tfrestore.data import load_images
from tfrestore.inverters import (MODES, BlockError, InverseModule, InverterMismatchError,
                                 TrainConfig, Trainer, build_stack, check_inverter, cut_layers,
                                 default_blocks, evaluate_stack, load_inverter,
                                 prepare_data, reconstruct_hybrid, reconstruct_with_network,
                                 resolve_blocks, save_stack, warm_start)
from tfrestore.inverters.training import batch_indices, level_losses

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "cat",
          "immunohistochemistry", "hubble_deep_field", "grass", "brick", "colorwheel"]


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1"),
        keras.layers.MaxPooling2D(name="p1"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2"),
        keras.layers.MaxPooling2D(name="p2"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c3"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(10, name="fc")])


@pytest.fixture(scope="module")
def clf():
    return Classifier("tiny", tiny_model(), "tf")


@pytest.fixture(scope="module")
def photos():
    return load_images(PHOTOS, 32)


@pytest.fixture(scope="module")
def data(clf, photos):
    return prepare_data(clf, ["input", "c2", "c3"], photos.images, photos.paths, num_val=3,
                        seed=0)


def stack_factory(clf, seed=0):
    return lambda: build_stack(clf, blocks=["c2", "c3"], seed=seed)


# ---------------------------------------------------------------------- modules, blocks
@pytest.mark.parametrize("kind", ["deconv", "upsample"])
@pytest.mark.parametrize("shapes", [((8, 8, 16), (16, 16, 8)), ((27, 27, 96), (55, 55, 96)),
                                    ((7, 7, 4), (7, 7, 6)), ((14, 14, 5), (56, 56, 3))])
def test_module_output_shape(kind, shapes):
    src, dst = shapes
    m = InverseModule(dst, kind=kind)
    y = m(np.zeros((2,) + src, np.float32))
    assert tuple(y.shape) == (2,) + dst


def test_module_rejects_bad_order_and_kind():
    with pytest.raises(ValueError, match="smaller than the input"):
        InverseModule((8, 8, 3))(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="Unknown inverse module kind"):
        InverseModule((8, 8, 3), kind="pixelshuffle")


def test_cut_layers_skip_residual_branch():
    inp = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inp)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)      # inside the branch
    s = keras.layers.Add(name="s")([a, b])
    p = keras.layers.MaxPooling2D(name="p")(s)
    c = keras.layers.Conv2D(4, 3, padding="same", name="c")(p)
    cuts = cut_layers(keras.Model(inp, c))
    assert "b" not in cuts
    assert cuts == ["a", "s", "p", "c"]


def test_default_and_explicit_blocks(clf):
    # Resolutions 32 (= input, folded into the first block), 16 and 8.
    assert default_blocks(clf) == ["c2", "c3"]
    assert resolve_blocks(clf, "p1,c3") == ["p1", "c3"]
    assert resolve_blocks(clf, None, up_to="c2") == ["c2"]
    with pytest.raises(BlockError, match="network order"):
        resolve_blocks(clf, ["c3", "c2"])
    with pytest.raises(BlockError, match="feature map"):
        resolve_blocks(clf, ["c2", "fc"])
    with pytest.raises(UnknownLayerError, match="Valid layers"):
        resolve_blocks(clf, ["c9"])


def test_stack_levels_and_shapes(clf):
    stack = build_stack(clf, blocks=["p1", "c2/lin", "c3"], kind="upsample")
    assert stack.levels == ["input", "p1", "c2/lin", "c3"]
    x = np.zeros((2, 8, 8, 16), np.float32)
    outs = stack.invert_levels(x)
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 16, 16), (16, 16, 8), (32, 32, 3)]
    # The last step is the classifier's preprocessing inverted: zero input -> grey 127.5.
    rgb = stack.to_rgb(np.zeros((1, 32, 32, 3), np.float32))
    np.testing.assert_allclose(rgb, 127.5)


# ---------------------------------------------------------------------- training
def test_data_split_is_held_out(data):
    assert len(data.val_names) == 3 and len(data.train_names) == len(PHOTOS) - 3
    assert not set(data.val_names) & set(data.train_names)
    # Scales are the mean squares of the training features, computed independently.
    np.testing.assert_allclose(data.scales[0], np.mean(data.train[0] ** 2), rtol=1e-5)


def test_split_needs_a_training_image():
    from tfrestore.inverters import split_indices
    tr, va = split_indices(10, 3, seed=1)
    assert len(tr) == 7 and len(va) == 3 and not set(tr) & set(va)
    with pytest.raises(ValueError, match="need at least one training image"):
        split_indices(6, 6)


def test_batch_indices_are_epochs_of_permutations():
    idx = batch_indices(10, 4, 7, seed=3)
    assert idx.shape == (7, 4)
    # 2 batches per epoch, each epoch draws distinct images.
    for e in range(3):
        assert len(set(idx[2 * e:2 * e + 2].ravel())) == 8
    np.testing.assert_array_equal(idx, batch_indices(10, 4, 7, seed=3))


def _total_loss(stack, data, mode):
    batch = [tf.constant(t) for t in data.train]
    losses = level_losses(stack, batch, mode, data.scales)
    return float(tf.reduce_mean(tf.add_n(list(losses.values()))))


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_decreases_its_loss(clf, data, mode, monkeypatch):
    monkeypatch.delenv("TFRESTORE_MAX_STEPS", raising=False)
    trainer = Trainer(stack_factory(clf), data,
                      TrainConfig(mode=mode, steps=25, batch_size=3, lr=3e-3,
                                  schedule="constant", log_every=5, val_every=25))
    before = _total_loss(trainer.stack, data, mode)
    history = trainer.train()
    after = _total_loss(trainer.stack, data, mode)
    assert after < 0.8 * before, (mode, before, after)
    assert history[-1]["step"] == 25 and "val_chain_image" in history[-1]
    levels = {"solo": {0, 1}, "stacked": {0, 1}, "joint": {0, 1}, "end_to_end": {0}}[mode]
    assert {int(k.split("_")[1]) for k in history[-1] if k.startswith("level_")} == levels


def test_joint_equals_sum_of_chain_losses(clf, data):
    stack = stack_factory(clf)()
    batch = [tf.constant(t) for t in data.train]
    joint = level_losses(stack, batch, "joint", data.scales)
    # Independent computation with NumPy: chain c3 -> c2 -> input.
    mid = np.asarray(stack.inverse_modules[1](batch[2]))
    img = np.asarray(stack.inverse_modules[0](mid))
    want1 = np.mean((mid - data.train[1]) ** 2, axis=(1, 2, 3)) / data.scales[1]
    want0 = np.mean((img - data.train[0]) ** 2, axis=(1, 2, 3)) / data.scales[0]
    np.testing.assert_allclose(joint[1], want1, rtol=1e-4)
    np.testing.assert_allclose(joint[0], want0, rtol=1e-4)
    e2e = level_losses(stack, batch, "end_to_end", data.scales)
    np.testing.assert_allclose(e2e[0], want0, rtol=1e-4)


def test_solo_modules_beat_trivial_baseline(clf, data, monkeypatch):
    monkeypatch.delenv("TFRESTORE_MAX_STEPS", raising=False)
    trainer = Trainer(stack_factory(clf), data,
                      TrainConfig(mode="solo", steps=120, batch_size=3, lr=3e-3,
                                  schedule="constant", val_every=0, log_every=60))
    trainer.train()
    result = evaluate_stack(trainer.stack, clf, data.val)
    for s, name in enumerate(["c2", "c3"], start=1):
        # Baseline: predict the mean training target of each channel, everywhere.
        mean = data.train[s - 1].mean(axis=(0, 1, 2))
        tgt = data.val[s - 1]
        base = np.mean(np.sum((tgt - mean) ** 2, axis=(1, 2, 3)) / np.sum(tgt ** 2, axis=(1, 2, 3)))
        assert result[name]["solo_module_nmse"] < 0.8 * base, (name, result[name], base)
    # The image from c2 beats the mean-image baseline in MSE (RGB 0-255).
    rgb = np.asarray(trainer.stack.to_rgb(data.val[0]))
    mean_img = np.asarray(trainer.stack.to_rgb(data.train[0])).mean(axis=0)
    assert result["c2"]["image_mse"] < np.mean((rgb - mean_img) ** 2)


def test_max_steps_env_caps_training(clf, data, monkeypatch):
    monkeypatch.setenv("TFRESTORE_MAX_STEPS", "3")
    trainer = Trainer(stack_factory(clf), data, TrainConfig(mode="solo", steps=50, batch_size=3,
                                                            log_every=1, val_every=0))
    assert trainer.cfg.steps == 3 and len(trainer.train()) == 3


def test_save_load_round_trip(clf, data, tmp_path):
    trainer = Trainer(stack_factory(clf), data, TrainConfig(mode="joint", steps=5, batch_size=3,
                                                            val_every=0))
    trainer.train()
    path = save_stack(trainer.stack, str(tmp_path / "inv.keras"))
    loaded = keras.models.load_model(path)
    x = data.val[2]
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(trainer.stack(x)))
    np.testing.assert_array_equal(np.asarray(loaded(data.val[1], source="c2")),
                                  np.asarray(trainer.stack(data.val[1], source="c2")))
    assert loaded.levels == trainer.stack.levels and loaded.classifier_name == "tiny"
    with pytest.raises(ValueError, match=".keras"):
        save_stack(trainer.stack, str(tmp_path / "inv.h5"))


def test_warm_start_continues_a_trained_stack_and_refuses_another(clf, data):
    stacked = Trainer(stack_factory(clf), data, TrainConfig(mode="stacked", steps=6,
                                                            batch_size=3, lr=1e-2, val_every=0))
    stacked.train()
    x = data.val[2]
    # Joint fine-tuning starts where the stacked modules ended, not at its own seed's init.
    joint = Trainer(lambda: warm_start(build_stack(clf, blocks=["c2", "c3"], seed=1),
                                       stacked.stack),
                    data, TrainConfig(mode="joint", steps=3, batch_size=3, lr=1e-3, val_every=0))
    np.testing.assert_array_equal(np.asarray(joint.stack(x)), np.asarray(stacked.stack(x)))
    fresh = build_stack(clf, blocks=["c2", "c3"], seed=1)
    assert np.abs(np.asarray(fresh(x)) - np.asarray(stacked.stack(x))).max() > 1.0
    before = [w.copy() for w in stacked.stack.get_weights()]
    joint.train()
    # ... and trains its own copy (the init stack is left as it was).
    for a, b in zip(before, stacked.stack.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(before, joint.stack.get_weights()))
    with pytest.raises(BlockError, match="levels"):
        warm_start(build_stack(clf, blocks=["c3"]), stacked.stack)
    with pytest.raises(BlockError, match="hidden"):
        warm_start(build_stack(clf, blocks=["c2", "c3"], hidden=5), stacked.stack)
    # Same architecture, other weights: refused, unless the init predates the record ("").
    retrained = Classifier("tiny", clf.model, "tf", weights="random(seed=1)")
    with pytest.raises(BlockError, match=r"weights unknown there, random\(seed=1\) here"):
        warm_start(build_stack(retrained, blocks=["c2", "c3"]), stacked.stack)
    stacked.stack.classifier_weights = ""
    warm_start(build_stack(retrained, blocks=["c2", "c3"]), stacked.stack)


def test_resume_equals_uninterrupted(clf, data, tmp_path):
    cfg = TrainConfig(mode="joint", steps=8, batch_size=3, lr=3e-3, log_every=1,
                      val_every=0, checkpoint_every=4)
    full = Trainer(stack_factory(clf), data, cfg)
    full.train()
    first = Trainer(stack_factory(clf), data, cfg, ckpt_dir=str(tmp_path / "ck"))
    first.train(until=4)                  # "interrupted" after step 4 (checkpointed)
    resumed = Trainer(stack_factory(clf, seed=99), data, cfg, ckpt_dir=str(tmp_path / "ck"))
    assert int(resumed.step.numpy()) == 4
    resumed.train()
    for a, b in zip(full.stack.get_weights(), resumed.stack.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The history resumes with the checkpoint: steps 1-4 recorded before, 5-8 after.
    assert [h["step"] for h in resumed.history] == list(range(1, 9))
    assert [h["train_total"] for h in resumed.history] == pytest.approx(
        [h["train_total"] for h in full.history], rel=1e-5)


_MIRRORED = textwrap.dedent("""
    import sys, json, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    import keras, tfrestore
    from tfrestore.classifiers import Classifier
    from tfrestore.inverters import TrainConfig, Trainer, build_stack, prepare_data
    sys.path.insert(0, sys.argv[1] + "/tests")
    from test_inverters import tiny_model
    clf = Classifier("tiny", tiny_model(), "tf")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    data = prepare_data(clf, ["input", "c2", "c3"], images, [str(i) for i in range(8)], 2)
    cfg = TrainConfig(mode="joint", steps=4, batch_size=4, lr=1e-2, log_every=1, val_every=0)
    out = {}
    for name, strategy in [("default", None),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
        t = Trainer(lambda: build_stack(clf, blocks=["c2", "c3"], seed=0), data, cfg, strategy)
        t.train()
        out[name] = {"replicas": t.strategy.num_replicas_in_sync,
                     "loss": [h["train_total"] for h in t.history],
                     "weights": [w.tolist() for w in t.stack.get_weights()[:2]]}
    print("RESULT" + json.dumps(out))
""")


def test_mirrored_strategy_two_cpu_devices_matches_single(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(_MIRRORED)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(script), REPO], capture_output=True, text=True,
                          env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT"):])
    assert out["mirrored"]["replicas"] == 2 and out["default"]["replicas"] == 1
    # Same global batch split over two replicas: same losses and weights.
    np.testing.assert_allclose(out["mirrored"]["loss"], out["default"]["loss"], rtol=1e-4)
    for a, b in zip(out["mirrored"]["weights"], out["default"]["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------- reconstruction
@pytest.fixture(scope="module")
def trained(clf, data, tmp_path_factory):
    trainer = Trainer(stack_factory(clf), data,
                      TrainConfig(mode="joint", steps=20, batch_size=3, lr=3e-3, val_every=0))
    trainer.train()
    path = str(tmp_path_factory.mktemp("inv") / "inverter.keras")
    return save_stack(trainer.stack, path)


def test_network_reconstruction(clf, photos, trained):
    inv = load_inverter(trained)
    res = reconstruct_with_network(inv, clf, "c3", photos.images[:4], batch_size=3)
    assert res.reconstructions.shape == (4, 32, 32, 3) and res.seconds > 0
    # Equal to the stack applied to the classifier's features.
    feats = clf.feature_model("c3")(photos.images[:4])
    np.testing.assert_allclose(res.reconstructions, np.asarray(inv(feats)), rtol=1e-4,
                               atol=1e-3)
    # A joint stack is trained from its deepest level only: another level is an error.
    with pytest.raises(InverterMismatchError, match="trained in joint mode, from 'c3' only"):
        reconstruct_with_network(inv, clf, "c2", photos.images[:2])
    # A stacked one starts from any of its levels; unknown levels are a clear error.
    inv.mode = "stacked"
    assert reconstruct_with_network(inv, clf, "c2", photos.images[:2]).layer == "c2"
    with pytest.raises(InverterMismatchError, match="train an inverter"):
        reconstruct_with_network(inv, clf, "p1", photos.images[:2])
    other = Classifier("other", keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, padding="same", name="c1"),
        keras.layers.MaxPooling2D(name="c2"), keras.layers.MaxPooling2D(name="c3")]), "tf")
    with pytest.raises(InverterMismatchError, match="expects"):
        reconstruct_with_network(inv, other, "c3", photos.images[:2])


def test_inverter_refuses_features_of_other_weights(clf, photos, trained):
    """The weights the inverter was trained on are saved with it; the same architecture with
    other weights computes other features, which it refuses rather than inverting them."""
    inv = load_inverter(trained)
    assert inv.classifier_weights == clf.describe()["weights"] == "unknown"
    assert inv.describe()["weights"] == "unknown"
    retrained = Classifier("tiny", tiny_model(seed=1), "tf", weights="random(seed=1)")
    with pytest.raises(InverterMismatchError,
                       match=r"weights unknown, but this classifier has weights random\(seed=1\)"):
        reconstruct_with_network(inv, retrained, "c3", photos.images[:2])
    # Inverters saved before the weights were recorded load with "" and are not checked ...
    inv.classifier_weights = ""
    assert reconstruct_with_network(inv, retrained, "c3", photos.images[:2]).layer == "c3"


@pytest.mark.skipif(not os.path.exists(os.path.join(
    REPO, "checkpoints", "inverters", "alexnet_random_conv1_stacked.json")),
    reason="the shipped AlexNet inverter is not in this checkout")
def test_shipped_inverter_takes_its_weights_from_its_record():
    """... unless a training record beside them names them (the shipped ones, kept
    byte-identical because study cells fingerprint them)."""
    path = os.path.join(REPO, "checkpoints", "inverters", "alexnet_random_conv1_stacked.keras")
    inv = load_inverter(path)
    with open(path[:-6] + ".json") as f:
        assert inv.classifier_weights == json.load(f)["classifier"]["weights"] == "random(seed=0)"
    from tfrestore.classifiers import load_classifier
    assert check_inverter(inv, load_classifier("alexnet", weights="random", seed=0),
                          "conv1/lin") == "conv1/lin"
    with pytest.raises(InverterMismatchError, match=r"weights random\(seed=0\), but this "
                                                    r"classifier has weights random\(seed=1\)"):
        check_inverter(inv, load_classifier("alexnet", weights="random", seed=1), "conv1/lin")


def test_load_inverter_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_inverter(str(tmp_path / "missing.keras"))
    (tmp_path / "corrupt.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot be read as a Keras model"):
        load_inverter(str(tmp_path / "corrupt.keras"))
    path = str(tmp_path / "plain.keras")
    tiny_model().save(path)
    with pytest.raises(InverterMismatchError, match="not a tfrestore"):
        load_inverter(path)


def test_hybrid_starts_from_network_output(clf, photos, trained):
    get_settings = pytest.importorskip("tfrestore.inversion").get_settings
    inv = load_inverter(trained)
    images = photos.images[:2]
    settings = get_settings("mv2016", clf, "c3", jitter=0, bound_factor=0.0)
    net = reconstruct_with_network(inv, clf, "c3", images)
    # Zero learning rate: the optimisation keeps its start, i.e. the network's output.
    frozen = reconstruct_hybrid(inv, clf, "c3", images, settings, lr_scale=0.0, steps=3)
    np.testing.assert_allclose(frozen.reconstructions, np.clip(net.reconstructions, 0, 255),
                               atol=1e-3)
    moved = reconstruct_hybrid(inv, clf, "c3", images, settings, lr_scale=0.1, steps=3)
    assert moved.optimisation.steps == 3 and moved.settings["method"] == "hybrid"
    assert np.abs(moved.reconstructions - frozen.reconstructions).max() > 1e-3


@pytest.mark.parametrize("mode", ["stacked", "joint", "end_to_end"])
def test_shipped_mobilenet_v2_inverters_load(mode):
    path = os.path.join(REPO, "checkpoints", f"inverter_mobilenet_v2_{mode}.keras")
    if not os.path.exists(path):
        pytest.skip(f"{path} not shipped")
    inv = keras.models.load_model(path)
    assert inv.levels == ["input", "expanded_conv_3_add", "expanded_conv_5_add",
                          "expanded_conv_12_add"]
    out = np.asarray(inv(np.zeros((1, 14, 14, 96), np.float32)))
    assert out.shape == (1, 224, 224, 3) and np.isfinite(out).all()
