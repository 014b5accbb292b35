"""The strided-grid energy estimate against the exact sum over all patch positions."""
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrestore.priors import load_prior
from tfrestore.priors.grid import GridEstimate

from test_priors import _fitted_prior

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _values_and_grads(fn, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        e = fn(x)
        total = tf.reduce_sum(e)
    return e.numpy().astype(np.float64), tape.gradient(total, x).numpy().astype(np.float64)


@pytest.mark.parametrize("layout", ["full", "separable", "channelwise"])
@pytest.mark.parametrize("stride", [2, 3])
def test_mean_over_offsets_is_the_exact_energy_and_gradient(layout, stride, rng):
    """The s² offsets partition the positions: their mean estimate is the exact energy."""
    prior, imgs = _fitted_prior(layout, rng)
    x = imgs[:2, :11, :12]      # 9 x 10 positions: not a multiple of the stride
    est = GridEstimate(prior, stride=stride)
    exact_e, exact_g = _values_and_grads(prior, x)
    parts = [_values_and_grads(lambda t, o=(oy, ox): est.grid_energy(t, o), x)
             for oy in range(stride) for ox in range(stride)]
    mean_e = np.mean([p[0] for p in parts], 0)
    mean_g = np.mean([p[1] for p in parts], 0)
    np.testing.assert_allclose(mean_e, exact_e, rtol=1e-5)
    np.testing.assert_allclose(mean_g, exact_g, rtol=1e-4, atol=1e-6 * np.abs(exact_g).max())
    # Each single offset is only an estimate (the test could not pass by accident).
    assert max(abs(p[0][0] - exact_e[0]) for p in parts) > 1e-3 * abs(exact_e[0])


def test_strided_map_is_the_subsampled_exact_map(rng):
    prior, imgs = _fitted_prior("full", rng)
    x = imgs[:2]
    full = prior.energy_map(x).numpy()
    np.testing.assert_allclose(prior.energy_map(x, strides=3).numpy(), full[:, ::3, ::3],
                               rtol=1e-5)
    np.testing.assert_allclose(prior.energy_map(x[:, 1:, 2:], strides=3).numpy(),
                               full[:, 1::3, 2::3], rtol=1e-5)


def test_random_offsets_are_seeded_and_small_inputs_unbiased(rng):
    prior, imgs = _fitted_prior("full", rng)
    x = tf.constant(imgs[:1])
    runs = []
    for _ in range(2):
        est = GridEstimate(prior, 3, seed=5)
        runs.append([float(est(x)[0]) for _ in range(6)])
    assert runs[0] == runs[1]                             # same seed, same offsets
    assert len(set(runs[0])) > 1                          # offsets do change between calls
    offsets = {(oy, ox): float(GridEstimate(prior, 3).grid_energy(x, (oy, ox))[0])
               for oy in range(3) for ox in range(3)}
    assert all(any(np.isclose(v, o, rtol=1e-6) for o in offsets.values()) for v in runs[0])
    # Smaller than patch + stride - 1 (some offsets have no position at all): still unbiased.
    small = tf.constant(imgs[:1, :4, :5])
    est = GridEstimate(prior, 3)
    mean = np.mean([float(est.grid_energy(small, (oy, ox))[0])
                    for oy in range(3) for ox in range(3)])
    assert mean == pytest.approx(float(prior(small)[0]), rel=1e-5)
    assert float(est.grid_energy(small, (2, 0))[0]) == 0.0      # every position masked
    assert GridEstimate(prior, 1)._exact(x)
    with pytest.raises(ValueError, match="positive integer"):
        GridEstimate(prior, 0)


def test_shipped_image_prior_loads_and_grid_mean_is_exact():
    path = os.path.join(ROOT, "checkpoints", "foe_8x8x3_512.keras")
    if not os.path.exists(path):
        pytest.skip("checkpoints/foe_8x8x3_512.keras not present")
    prior = load_prior(path)
    assert prior.patch_size == (8, 8) and prior.n_experts == 512
    x = np.random.default_rng(0).uniform(0, 255, (1, 20, 21, 3)).astype(np.float32)
    est = GridEstimate(prior, stride=2)
    exact = float(prior(x)[0])
    mean = np.mean([float(est.grid_energy(x, (oy, ox))[0]) for oy in (0, 1) for ox in (0, 1)])
    assert mean == pytest.approx(exact, rel=1e-5)
    assert "stride 2" in est.describe()["estimate"]


def test_grid_shapes_do_not_depend_on_the_offset(rng):
    """One response shape for every offset: XLA compiles the expert sums once per image size."""
    prior, imgs = _fitted_prior("full", rng)
    est = GridEstimate(prior, 4)
    fn = tf.function(lambda t, o: est.grid_energy(t, o))
    x = tf.constant(imgs[:1, :, :11])
    for o in [(0, 0), (3, 1), (2, 3)]:
        fn(x, tf.constant(o))
    assert fn.experimental_get_tracing_count() == 1
    graph = fn.get_concrete_function(x, tf.constant((0, 0))).graph
    conv = [op for op in graph.get_operations() if op.type == "Conv2D"]
    assert conv and conv[0].outputs[0].shape.is_fully_defined()


def test_feature_map_patch_priors_take_the_grid_estimate_only_when_asked(rng):
    """`prior_grid_maps` > 1 wraps a patch prior on a feature map in the grid estimate; the
    default (1) leaves it exact, and the image's `prior_grid` does not reach it."""
    from tfrestore.inversion.objectives import PriorTerm
    from tfrestore.inversion.optimize import with_prior_estimates
    from tfrestore.inversion.presets import InversionSettings
    prior, _ = _fitted_prior("full", rng)
    on_map, on_image = PriorTerm(prior, at="block1"), PriorTerm(prior, at="image")
    base = InversionSettings()
    assert base.prior_grid > 1 and base.prior_grid_maps == 1
    m, i = with_prior_estimates([on_map, on_image], base)
    assert m.fn is prior and isinstance(i.fn, GridEstimate) and i.fn.stride == base.prior_grid
    m, i = with_prior_estimates([on_map, on_image], base.replace(prior_grid_maps=2, seed=3))
    assert isinstance(m.fn, GridEstimate) and (m.fn.stride, m.fn.seed) == (2, 3)
    assert m.fn.prior is prior and on_map.fn is prior          # the caller's term is untouched
    assert i.fn.stride == base.prior_grid
    with pytest.raises(ValueError, match="--prior_grid_maps=0"):
        base.replace(prior_grid_maps=0).validate()


def test_shipped_feature_map_prior_grid_mean_is_exact():
    """The 1024-expert prior of MobileNetV2's Conv2d_0_0 maps (PCA-whitened 3x3x32 patches):
    the mean of the stride-2 estimate over its offsets is the exact energy and gradient."""
    path = os.path.join(ROOT, "checkpoints", "fmap", "mnv2_Conv2d_0_0_1024.keras")
    if not os.path.exists(path):
        pytest.skip("checkpoints/fmap/mnv2_Conv2d_0_0_1024.keras not present")
    prior = load_prior(path)
    x = np.random.default_rng(1).normal(0, 2, (2, 13, 14, 32)).astype(np.float32)
    est = GridEstimate(prior, stride=2)
    exact_e, exact_g = _values_and_grads(prior, x)
    parts = [_values_and_grads(lambda t, o=(oy, ox): est.grid_energy(t, o), x)
             for oy in (0, 1) for ox in (0, 1)]
    np.testing.assert_allclose(np.mean([p[0] for p in parts], 0), exact_e, rtol=1e-4)
    np.testing.assert_allclose(np.mean([p[1] for p in parts], 0), exact_g, rtol=1e-3,
                               atol=1e-5 * np.abs(exact_g).max())


def test_checkpoints_recorded_before_prior_grid_maps_still_resume(tmp_path):
    """A run checkpointed before the setting existed resumes at its old behaviour (1) and
    refuses to resume under another stride."""
    from tfrestore import runstate
    from tfrestore.inversion.presets import InversionSettings
    s = InversionSettings()
    old = {k: v for k, v in s.as_dict().items() if k != "prior_grid_maps"}
    folder = str(tmp_path / "ckpt")
    runstate.check_settings(folder, old)
    open(os.path.join(folder, "ckpt-1.index"), "w").close()      # a checkpoint exists
    assert runstate.check_settings(folder, s.resume_record()) == "resume"
    with pytest.raises(runstate.SettingsMismatchError, match="prior_grid_maps"):
        runstate.check_settings(folder, s.replace(prior_grid_maps=2).resume_record())
