"""The pre-image optimisation loop and the presets."""
import numpy as np
import pytest

from tfrestore.classifiers import UnknownLayerError, load_classifier
from tfrestore.data import load_images
from tfrestore.inversion import (InversionSettings, PreimageOptimizer, get_settings,
                                 invert)
from tfrestore.metrics import psnr

from test_objectives import tiny_classifier


@pytest.fixture(scope="module")
def vgg32():
    return load_classifier("vgg16", weights="random", seed=0, input_size=32)


@pytest.fixture(scope="module")
def photo():
    return load_images(["astronaut"], 32).images


def test_random_network_early_layer_recovers_image(vgg32, photo, monkeypatch):
    monkeypatch.delenv("TFRESTORE_MAX_STEPS", raising=False)
    s = get_settings("mv2016", vgg32, "conv1_2", steps=80)
    opt = PreimageOptimizer(vgg32, photo, s)
    start = float(psnr(photo, np.clip(opt.rgb().numpy(), 0, 255))[0])
    r = opt.run(verbose=False)
    end = float(psnr(photo, np.clip(r.reconstructions, 0, 255))[0])
    assert r.steps == 80
    assert end > 20.0, end             # measured 22.0 dB at 80-100 steps
    assert end > start + 5.0, (start, end)
    assert r.history[-1]["loss"] < r.history[0]["loss"]


def test_seeded_run_is_repeatable_and_seed_matters(vgg32, photo):
    s = get_settings("mv2016", vgg32, "conv2_1", steps=8, jitter=2)
    a = invert(vgg32, photo, s, verbose=False).reconstructions
    b = invert(vgg32, photo, s, verbose=False).reconstructions
    c = invert(vgg32, photo, s.replace(seed=1), verbose=False).reconstructions
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1.0


def test_init_is_used_and_projected(vgg32, photo):
    s = get_settings("mv2016", vgg32, "conv1_1")
    init = np.full_like(photo, 255.0)
    init[..., 0, 0, :] = 100.0
    opt = PreimageOptimizer(vgg32, photo, s, init=init)
    centred = opt.rgb().numpy() - np.asarray(s.image_mean)
    assert np.linalg.norm(centred, axis=-1).max() <= 160.0 + 1e-3
    np.testing.assert_allclose(opt.rgb().numpy()[0, 0, 0], 100.0, atol=1e-3)  # inside B+
    # White (norm ~230 from the mean) is pulled back onto the sphere of radius B+.
    np.testing.assert_allclose(np.linalg.norm(centred[0, 5, 5]), 160.0, rtol=1e-4)
    # The noise start is not the target.
    noise = PreimageOptimizer(vgg32, photo, s).rgb().numpy()
    assert float(psnr(photo, np.clip(noise, 0, 255))[0]) < 15.0


def test_sgd_resets_momentum_at_each_lr_change(vgg32, photo, monkeypatch):
    from tfrestore import engine
    monkeypatch.delenv("TFRESTORE_MAX_STEPS", raising=False)
    s = get_settings("mv2015", vgg32, "conv1_1", steps=8)
    assert s.optimizer == "sgd" and len(s.lr_values) == 3
    calls = []
    orig = engine.callbacks.reset_optimizer_state
    monkeypatch.setattr(engine.callbacks, "reset_optimizer_state",
                        lambda opt: (calls.append(int(opt.iterations.numpy())), orig(opt)))
    r = invert(vgg32, photo, s, verbose=False)
    assert calls == [2, 6]          # before the steps at the boundaries 100/400, 300/400
    assert np.isfinite(r.reconstructions).all()
    calls.clear()
    invert(vgg32, photo, s.replace(momentum_reset=False), verbose=False)
    assert calls == []


def test_mv2016_on_the_engine_equals_the_papers_loop(vgg32, photo, monkeypatch):
    """mv2016 through the engine against an independent loop written out here: the same
    noise start, jitter draws, objective, textbook Adam (eps 1e-8) and B+ projection."""
    import tensorflow as tf
    from tfrestore.engine.transforms import draw_shift, jitter
    from tfrestore.engine.parameterizations import project_bound
    from tfrestore.inversion import build_objective
    monkeypatch.delenv("TFRESTORE_MAX_STEPS", raising=False)
    s = get_settings("mv2016", vgg32, "conv2_1", steps=12, jitter=2, jitter_off=0.5)
    ours = invert(vgg32, photo, s, verbose=False).reconstructions
    obj = build_objective(vgg32, s)
    obj.set_targets(photo)
    mean = np.asarray(s.image_mean, np.float32)
    x = project_bound(np.random.default_rng(s.seed).normal(0, s.init_std, photo.shape)
                      .astype(np.float32), 160.0).numpy().astype(np.float64)
    gen = tf.random.Generator.from_seed(s.seed)
    m = v = 0.0
    for t in range(1, 13):
        lr = s.lr_values[int(t - 1 >= 3) + int(t - 1 >= 7)]   # round(12 * 2/7), round(12 * 4/7)
        xt = tf.constant((x + mean).astype(np.float32))
        shift = draw_shift(gen, s.jitter if t - 1 < 6 else 0)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            total, _ = obj(xt, jitter(xt, shift))
            loss = tf.reduce_sum(total)
        g = tape.gradient(loss, xt).numpy().astype(np.float64)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        x = project_bound(x.astype(np.float32), 160.0).numpy().astype(np.float64)
    # float32 engine against this float64 loop: where v is near 0, Adam's normalised step
    # turns rounding into up to ~0.07 grey levels on a few pixels (a wrong step is ~lr = 10).
    np.testing.assert_allclose(ours, x + mean, atol=0.1)


def test_vgg16_presets_follow_the_papers(vgg32):
    table = {"conv1_1": (300, 0), "conv2_2": (300, 1), "conv3_3/lin": (300, 2),
             "conv4_3": (300, 4), "pool4": (100, 4), "conv5_1": (100, 8),
             "conv5_2": (20, 8), "block5_conv3": (20, 8), "pool5": (1, 8)}
    for layer, (C, T) in table.items():
        s = get_settings("mv2016", vgg32, layer)
        assert (s.feature_weight, s.jitter) == (C, T), layer
        assert s.steps == 3500 and s.bound == 80 and s.bound_factor == 2
        np.testing.assert_allclose(s.lr_values, np.array([1e-2, 3e-3, 1e-3]) * 80 ** 2 / 6)
        np.testing.assert_allclose(s.tv_V, 80 / 6.5)
        np.testing.assert_allclose(s.jitter_off * 3500, 2750)
    s15 = {l: get_settings("mv2015", vgg32, l).tv_weight for l in ("conv2_1", "conv3_1",
                                                                   "conv5_1")}
    assert s15 == {"conv2_1": 1.0, "conv3_1": 10.0, "conv5_1": 100.0}


def test_alexnet_presets_follow_the_papers():
    alex = load_classifier("alexnet", weights="random", seed=0)
    table = {"conv1": (300, 1), "lrn1": (300, 2), "conv2/lin": (300, 2), "lrn2": (300, 2),
             "pool2": (300, 4), "conv3": (300, 4), "conv4": (100, 4), "conv5": (20, 4),
             "pool5": (1, 8), "fc7": (1, 8)}
    for layer, (C, T) in table.items():
        s = get_settings("mv2016", alex, layer)
        assert (s.feature_weight, s.jitter) == (C, T), layer
    tv = {l: get_settings("mv2015", alex, l).tv_weight
          for l in ("conv1", "conv2", "pool2", "conv4", "conv5", "fc8")}
    assert tv == {"conv1": 1, "conv2": 1, "pool2": 10, "conv4": 10, "conv5": 100, "fc8": 100}


def test_other_classifier_defaults_by_relative_depth():
    clf = tiny_classifier()
    first, last = get_settings("mv2016", clf, "c1"), get_settings("mv2016", clf, "c2")
    vec = get_settings("mv2016", clf, "fc")
    assert (first.feature_weight, first.jitter) == (300, 1)
    assert last.feature_weight == 1 and last.jitter == 8
    assert (vec.feature_weight, vec.jitter) == (1, 8)


def test_settings_overrides_and_errors(vgg32):
    s = get_settings("mv2016", vgg32, "conv3_3", feature_weight=5.0, jitter=3, tv_weight=None)
    assert (s.feature_weight, s.jitter, s.tv_weight) == (5.0, 3, 1.0)
    with pytest.raises(ValueError, match="Unknown inversion setting"):
        InversionSettings().replace(colour=1)
    with pytest.raises(ValueError, match="Unknown preset"):
        get_settings("mv2017", vgg32, "conv3_3")
    with pytest.raises(UnknownLayerError, match="conv3_3"):
        get_settings("mv2016", vgg32, "conv3_4")


def test_bad_images_are_clear_errors(vgg32, photo):
    s = get_settings("mv2016", vgg32, "conv1_1")
    with pytest.raises(ValueError, match="size=32"):
        PreimageOptimizer(vgg32, np.zeros((1, 40, 40, 3), np.float32), s)
    with pytest.raises(ValueError, match=r"batch \[N, H, W, 3\]"):
        PreimageOptimizer(vgg32, photo[0], s)
    with pytest.raises(ValueError, match="NaN"):
        PreimageOptimizer(vgg32, np.full_like(photo, np.nan), s)
    with pytest.raises(ValueError, match="multiply by 255"):
        PreimageOptimizer(vgg32, photo / 255.0, s)


@pytest.mark.parametrize("field,value,fragment", [
    ("steps", 0, "at least 1"), ("steps", -5, "at least 1"),
    ("lr_values", [float("nan")], "finite"), ("feature_weight", float("inf"), "finite"),
    ("feature_weight", float("nan"), "finite"), ("prior_crop", 2.0, "fraction"),
    ("jitter", -3, "pixels"), ("parameterization", "wavelet", "choose one of"),
    ("lr_schedule", "exp", "choose one of"), ("jitter_off", 1.5, "fraction")])
def test_settings_that_cannot_work_name_their_flag(vgg32, field, value, fragment):
    with pytest.raises(ValueError, match=fr"--{field}=.*{fragment}"):
        get_settings("mv2016", vgg32, "conv1_1", **{field: value})
