"""Score matching of a patch prior as a field (tfrestore.priors.score_matching /
training.train_field / recipe.train_field_prior)."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrestore.priors import PatchPrior, fit_whitening, load_prior
from tfrestore.priors.recipe import field_prior_from, train_field_prior
from tfrestore.priors.score_matching import field_score_matching_loss
from tfrestore.priors.training import TrainConfig, train_field, train_prior

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _prior(layout="full", expert="student_t", channels=1, patch=3, n_experts=3, seed=0,
           unit_norm=True):
    rng = np.random.default_rng(seed)
    d = patch * patch * channels
    prior = PatchPrior(patch, channels, n_experts, expert, layout,
                       dim=d - 1 if layout == "full" else None, centre=layout == "full",
                       seed=seed, init_alpha=0.7, unit_norm=unit_norm)
    if layout == "full":
        x = rng.standard_normal((500, d)) @ rng.standard_normal((d, d))
        x = x - x.mean(axis=1, keepdims=True)        # centred patches: rank d - 1
        prior.set_statistics(np.full(channels, 100.0), np.full(channels, 40.0),
                             fit_whitening(x.astype(np.float32), d - 1))
    else:
        prior.set_statistics(np.full(channels, 100.0), np.full(channels, 40.0))
    return prior


@pytest.mark.parametrize("layout,expert,channels", [("full", "student_t", 1),
                                                     ("full", "logistic", 2),
                                                     ("separable", "student_t", 2)])
def test_field_objective_equals_autodiff_score_and_hessian_diagonal(layout, expert, channels):
    # Independent computation: ψ = ∇ log p by autodiff of the prior's energy, the diagonal of
    # ∇ψ from the full autodiff Hessian, averaged over the pixels whose cliques all lie inside.
    prior = _prior(layout, expert, channels)
    x = tf.constant(np.random.default_rng(1).uniform(0, 255, (2, 8, 7, channels)), tf.float32)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            logp = -tf.reduce_sum(prior.energy_map(x))
        psi = inner.gradient(logp, x)
    hess = outer.jacobian(psi, x).numpy()               # [2, 8, 7, C, 2, 8, 7, C]
    n = int(np.prod(x.shape))
    diag = np.diagonal(hess.reshape(n, n)).reshape(x.shape)
    m = 2                                               # patch 3: margin 2
    inner_px = (slice(None), slice(m, 8 - m), slice(m, 7 - m))
    trace = diag[inner_px].mean()
    norm = 0.5 * np.square(psi.numpy()[inner_px]).mean()
    j, t, s = (float(v) for v in field_score_matching_loss(prior, x))
    np.testing.assert_allclose([t, s, j], [trace, norm, trace + norm], rtol=2e-4, atol=1e-9)


def test_field_start_equals_the_patch_prior_and_round_trips(tmp_path):
    for layout in ("full", "separable"):
        init = _prior(layout, channels=2, seed=3)
        field = field_prior_from(init, {"trained_as": "field"})
        x = np.random.default_rng(0).uniform(0, 255, (2, 9, 9, 2)).astype(np.float32)
        np.testing.assert_allclose(field(x).numpy(), init(x).numpy(), rtol=1e-5)
        assert not field.unit_norm and field.metadata["trained_as"] == "field"
        # Free norms: scaling the filters changes the field (a unit-norm prior ignores it).
        w = field.raw_filters().numpy()
        field.spatial.assign(field.spatial * 2.0) if layout == "separable" else \
            field.filters.assign(w * 2.0)
        assert not np.allclose(field(x).numpy(), init(x).numpy(), rtol=1e-3)
        path = str(tmp_path / f"{layout}.keras")
        field.save(path)
        back = load_prior(path)
        assert back.unit_norm is False
        np.testing.assert_allclose(back(x).numpy(), field(x).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="free"):
        train_prior(field, np.zeros((10, field.dim), np.float32))
    with pytest.raises(ValueError, match="unit_norm=False"):
        train_field(init, np.zeros((4, 9, 9, 2), np.float32))


def test_trainer_recovers_the_parameters_of_a_well_specified_field():
    # 1x1 cliques: the field is a product of independent 1-D potentials α·G(w·x), i.e.
    # pixels i.i.d. with density ∝ (1 + (wx)²/2)^(−α), a scaled Student-t with ν = 2α − 1
    # degrees of freedom: x = t / (w·sqrt(ν/2)). Score matching is consistent, so the
    # trainer must find (α, w) of the sampled field.
    alpha_true, w_true = 2.5, 0.5
    nu = 2 * alpha_true - 1
    t = np.random.default_rng(0).standard_t(nu, (64, 24, 24, 1))
    images = (t / (w_true * np.sqrt(nu / 2))).astype(np.float32)
    prior = PatchPrior(1, 1, 1, "student_t", "full", centre=False, whitening="none",
                       init_alpha=1.0, unit_norm=False)
    prior.set_statistics([0.0], [1.0])
    prior.filters.assign([[0.2]])
    cfg = TrainConfig(steps=600, batch_size=16, lr=0.05, schedule="cosine", eval_every=600,
                      progress=False, log_every=100)
    train_field(prior, images, images[:8], cfg, crop=24, log=lambda *_: None)
    alpha, w = float(prior.alpha()[0]), abs(float(prior.filters[0, 0]))
    assert alpha == pytest.approx(alpha_true, rel=0.05), (alpha, w)
    assert w == pytest.approx(w_true, rel=0.05), (alpha, w)


def test_field_training_resumes_to_the_uninterrupted_result(tmp_path):
    images = np.random.default_rng(2).uniform(0, 255, (6, 20, 20, 1)).astype(np.float32)

    def run(steps, ckpt):
        prior = field_prior_from(_prior(seed=4))
        cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-2, schedule="constant",
                          eval_every=5, checkpoint_dir=ckpt, checkpoint_every=5,
                          progress=False, log_every=5)
        hist = train_field(prior, images, images[:2], cfg, crop=10, log=lambda *_: None)
        return prior, hist
    whole, hist = run(10, None)
    run(5, str(tmp_path / "c"))
    resumed, hist2 = run(10, str(tmp_path / "c"))
    assert hist2["start_step"] == 5 and hist["val"][-1][1] < hist["val"][0][1] + 1.0
    np.testing.assert_allclose(resumed.filters.numpy(), whole.filters.numpy(), rtol=1e-5,
                               atol=1e-7)


def test_recipe_trains_records_and_refuses_bad_settings(tmp_path):
    from tfrestore.runstate import SettingsMismatchError
    init = _prior(seed=5)
    init_path = str(tmp_path / "init.keras")
    init.save(init_path)
    imgs = str(tmp_path / "imgs")
    os.makedirs(imgs)
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(f"{imgs}/{i}.png")
    out = str(tmp_path / "field.keras")
    kw = dict(image_size=24, grey=True, crop=12, steps=6, batch_size=2, eval_every=3,
              checkpoint_dir=str(tmp_path / "ck"), log=lambda *_: None, val_fraction=0.2)
    prior, rec = train_field_prior(imgs, out, init_path, **kw)
    back = json.load(open(out.replace(".keras", ".json")))
    assert back["settings"]["init_sha256"] == rec["settings"]["init_sha256"]
    assert back["data"]["n_val_images"] == 1 and back["history"]["steps"] == 6
    assert load_prior(out).unit_norm is False
    with pytest.raises(SettingsMismatchError):
        train_field_prior(imgs, out, init_path, **dict(kw, crop=14))
    with pytest.raises(ValueError, match="--init"):
        train_field_prior(imgs, out, None, **dict(kw, checkpoint_dir=None))
    with pytest.raises(ValueError, match="--crop"):
        train_field_prior(imgs, out, init_path, **dict(kw, checkpoint_dir=None, crop=3))
    with pytest.raises(ValueError, match="channels"):
        train_field_prior(imgs, out, init_path, **dict(kw, checkpoint_dir=None, grey=False))
