"""Objective terms, transforms and schedules vs independent NumPy / hand-derived maths."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrestore.classifiers import Classifier, UnknownLayerError
from tfrestore.engine.parameterizations import project_bound
from tfrestore.inversion import (AlphaNorm, FeatureLoss, Objective, PriorTerm, RangePrior,
                                 TotalVariation)
from tfrestore.engine.transforms import draw_shift, jitter


def _grad(term, x):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        v = term(x)
        s = tf.reduce_sum(v)
    return v.numpy(), tape.gradient(s, x).numpy()


@pytest.fixture
def img(rng):
    return (rng.uniform(0, 255, (2, 7, 9, 3))).astype(np.float32)


def tiny_classifier(size=16, seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(5, name="fc")(x)
    return Classifier("tiny", keras.Model(inp, out), "caffe")


def test_feature_loss_value_and_gradient(rng):
    x = rng.normal(size=(3, 4, 4, 5)).astype(np.float32)
    t = rng.normal(size=(3, 4, 4, 5)).astype(np.float32)
    v, g = _grad(FeatureLoss("l", target=t), x)
    den = (t ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(v, ((x - t) ** 2).sum(axis=(1, 2, 3)) / den, rtol=1e-5)
    np.testing.assert_allclose(g, 2 * (x - t) / den[:, None, None, None], rtol=1e-4,
                               atol=1e-6)


def test_feature_loss_needs_target():
    with pytest.raises(ValueError, match="no target"):
        FeatureLoss("l")(tf.zeros([1, 2, 2, 1]))


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_alpha_norm_value_and_gradient(img, scale):
    x = img.astype(np.float64)
    alpha = 6.0
    v, g = _grad(AlphaNorm(alpha, scale=scale), img)
    c = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / scale
    np.testing.assert_allclose(v, (np.abs(c) ** alpha).sum(axis=(1, 2, 3)), rtol=1e-4)
    # d/dx sum |c|^a with c = (x - mean x)/s: (g - mean g)/s, g = a |c|^(a-1) sign c.
    gc = alpha * np.abs(c) ** (alpha - 1) * np.sign(c)
    ref = (gc - gc.mean(axis=(1, 2, 3), keepdims=True)) / scale
    np.testing.assert_allclose(g, ref, rtol=2e-3, atol=1e-3 * np.abs(ref).max())


def test_range_prior_value_and_gradient(img):
    center = np.array([123.68, 116.779, 103.939])
    B, alpha = 80.0, 6.0
    v, g = _grad(RangePrior(alpha, B, center=center), img)
    c = img.astype(np.float64) - center
    h, w = c.shape[1:3]
    s = (c ** 2).sum(-1)
    np.testing.assert_allclose(v, (s ** (alpha / 2)).sum(axis=(1, 2)) / (h * w * B ** alpha),
                               rtol=1e-4)
    ref = alpha / 2 * s[..., None] ** (alpha / 2 - 1) * 2 * c / (h * w * B ** alpha)
    np.testing.assert_allclose(g, ref, rtol=1e-3, atol=1e-6 * np.abs(ref).max())


def _tv_numpy(x, beta, V, per_pixel):
    x = x.astype(np.float64) / V
    dx = x[:, :-1, 1:] - x[:, :-1, :-1]
    dy = x[:, 1:, :-1] - x[:, :-1, :-1]
    s = dx ** 2 + dy ** 2
    eps = 0.0 if beta == 2 else 1e-8
    val = ((s + eps) ** (beta / 2)).sum(axis=(1, 2, 3))
    wgt = beta / 2 * (s + eps) ** (beta / 2 - 1)
    g = np.zeros_like(x)
    g[:, :-1, 1:] += 2 * wgt * dx
    g[:, 1:, :-1] += 2 * wgt * dy
    g[:, :-1, :-1] -= 2 * wgt * (dx + dy)
    g /= V
    hw = x.shape[1] * x.shape[2]
    if per_pixel:
        val, g = val / hw, g / hw
    return val, g


@pytest.mark.parametrize("beta,V,per_pixel", [(2.0, 80 / 6.5, True), (1.0, 1.0, False),
                                              (2.0, 3.0, False)])
def test_total_variation_value_and_gradient(img, beta, V, per_pixel):
    v, g = _grad(TotalVariation(beta, V, per_pixel), img)
    rv, rg = _tv_numpy(img, beta, V, per_pixel)
    np.testing.assert_allclose(v, rv, rtol=1e-4)
    np.testing.assert_allclose(g, rg, rtol=1e-3, atol=1e-5 * np.abs(rg).max())


def test_projection_bounds_each_pixel(rng):
    x = rng.normal(0, 200, (2, 5, 5, 3)).astype(np.float32)
    p = project_bound(x, 160.0).numpy()
    n_in, n_out = np.linalg.norm(x, axis=-1), np.linalg.norm(p, axis=-1)
    assert n_out.max() <= 160.0 * (1 + 1e-5)
    inside = n_in <= 160.0
    assert inside.any() and (~inside).any()
    np.testing.assert_allclose(p[inside], x[inside], rtol=1e-6)
    np.testing.assert_allclose(n_out[~inside], 160.0, rtol=1e-5)
    # Direction kept: cosine 1.
    cos = (p * x).sum(-1) / (n_in * n_out)
    np.testing.assert_allclose(cos, 1.0, rtol=1e-5)


def test_objective_sums_weighted_terms_with_one_cut_model(rng):
    clf = tiny_classifier()
    x = rng.uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    target = rng.uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    energy = keras.layers.Lambda(lambda f: keras.ops.sum(f ** 2, axis=[1, 2, 3]))
    terms = [FeatureLoss("c1", weight=3.0), TotalVariation(2.0, 10.0, weight=0.5),
             PriorTerm(energy, at="c2/lin", weight=1e-3, name="learned")]
    obj = Objective(clf, terms)
    assert obj.layers == ["c1", "c2/lin"]
    # Cut at the deepest requested layer: nothing after c2 (no pooling, no dense).
    inner = [l for l in obj.model.layers if isinstance(l, keras.Model)]
    assert len(inner) == 1
    names = [l.name for l in inner[0].layers]
    assert "c2" in names and "fc" not in names and "gap" not in names
    obj.set_targets(target)
    total, values = obj(tf.constant(x))
    f1 = clf.feature_model("c1")(x).numpy()
    t1 = clf.feature_model("c1")(target).numpy()
    c2 = clf.feature_model("c2/lin")(x).numpy()
    ref = {"feature:c1": 3.0 * ((f1 - t1) ** 2).sum((1, 2, 3)) / (t1 ** 2).sum((1, 2, 3)),
           "tv": 0.5 * _tv_numpy(x, 2.0, 10.0, True)[0],
           "learned": 1e-3 * (c2.astype(np.float64) ** 2).sum((1, 2, 3))}
    for k, r in ref.items():
        np.testing.assert_allclose(values[k].numpy(), r, rtol=1e-4)
    np.testing.assert_allclose(total.numpy(), sum(ref.values()), rtol=1e-4)


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_feature_chunks_give_the_whole_batch_values_and_gradients(rng, chunk, monkeypatch):
    """Objective.feature_chunk runs the network on chunks (the last one shorter when the
    batch does not divide): terms and the gradient equal the unchunked ones, inside a
    tf.function too (how the engine calls it)."""
    clf = tiny_classifier()
    x = tf.constant(rng.uniform(0, 255, (5, 16, 16, 3)).astype(np.float32))
    target = rng.uniform(0, 255, (5, 16, 16, 3)).astype(np.float32)
    energy = keras.layers.Lambda(lambda f: keras.ops.sum(f ** 2, axis=[1, 2, 3]))

    def run():
        obj = Objective(clf, [FeatureLoss("c1"), PriorTerm(energy, at="c2/lin", weight=1e-3)])
        obj.set_targets(target)

        @tf.function
        def f(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total, values = obj(x)
                loss = tf.reduce_sum(total)
            return total, values, tape.gradient(loss, x)
        return f(x)
    whole = run()
    monkeypatch.setattr(Objective, "feature_chunk", chunk)
    chunked = run()
    np.testing.assert_allclose(chunked[0].numpy(), whole[0].numpy(), rtol=1e-5)
    for k in whole[1]:
        np.testing.assert_allclose(chunked[1][k].numpy(), whole[1][k].numpy(), rtol=1e-5)
    np.testing.assert_allclose(chunked[2].numpy(), whole[2].numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(whole[2].numpy()).max() > 0


def test_prior_term_gradient_flows_through_network(rng):
    clf = tiny_classifier()
    energy = lambda f: tf.reduce_sum(f ** 2, axis=[1, 2, 3])  # noqa: E731
    obj = Objective(clf, [PriorTerm(energy, at="c2/lin", name="p")])
    x = tf.Variable(rng.uniform(0, 255, (1, 16, 16, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        total, _ = obj(x)
    g = tape.gradient(total, x).numpy()
    # Central finite difference along the gradient direction.
    d = g / np.linalg.norm(g)
    h = 1e-1
    fp = obj(tf.constant(x.numpy() + h * d))[0].numpy()
    fm = obj(tf.constant(x.numpy() - h * d))[0].numpy()
    np.testing.assert_allclose((fp - fm) / (2 * h), np.linalg.norm(g), rtol=2e-2)


def test_objective_rejects_unknown_layer_and_duplicate_names():
    clf = tiny_classifier()
    with pytest.raises(UnknownLayerError, match="Valid layers"):
        Objective(clf, [FeatureLoss("c7")])
    with pytest.raises(ValueError, match="unique"):
        Objective(clf, [TotalVariation(), TotalVariation()])


def test_jitter_is_zero_mean_uniform_and_a_roll(rng):
    gen = tf.random.Generator.from_seed(3)
    shifts = np.array([draw_shift(gen, 3).numpy() for _ in range(1500)])
    assert shifts.min() == -3 and shifts.max() == 3
    assert abs(shifts.mean()) < 0.15
    counts = np.bincount((shifts + 3).ravel(), minlength=7)
    assert counts.min() > 0.6 * counts.mean()
    assert not draw_shift(gen, 0).numpy().any()
    x = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(jitter(x, [2, -1]).numpy(),
                                  np.roll(x, (2, -1), axis=(1, 2)))


