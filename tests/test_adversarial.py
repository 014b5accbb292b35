"""Attacks stay within their budget and lower accuracy; restoration leaves clean images
close to themselves; the steepest-descent optimizer against its formula."""
import numpy as np
import pytest
import tensorflow as tf

from tfrestore.inversion.learned import prior_terms
from tfrestore.priors.denoising import psnr
from tfrestore.uses.adversarial import (SteepestDescent, attack, jpeg, map_restore, median,
                                        top1)
from uses_helpers import tiny_tanh_classifier


@pytest.fixture(scope="module")
def setup():
    clf = tiny_tanh_classifier(seed=3)
    rng = np.random.default_rng(0)
    # Smooth random images (upsampled noise), labelled by the network itself: clean
    # accuracy is 1 by construction.
    small = rng.uniform(0, 255, (24, 4, 4, 3)).astype(np.float32)
    images = tf.image.resize(small, (16, 16)).numpy()
    return clf, images, top1(clf, images)


def test_steepest_descent_steps(rng):
    g = rng.normal(size=(2, 3, 4)).astype(np.float32)
    for norm, d in [("linf", np.sign(g)),
                    ("l2", g / np.linalg.norm(g.reshape(2, -1), axis=1)[:, None, None])]:
        v = tf.Variable(np.zeros_like(g))
        SteepestDescent(0.5, norm).apply_gradients([(tf.constant(g), v)])
        np.testing.assert_allclose(v.numpy(), -0.5 * d, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method,norm,eps", [("fgsm", "linf", 12.0), ("pgd", "linf", 12.0),
                                             ("pgd", "l2", 400.0)])
def test_attacks_stay_in_budget_and_lower_accuracy(setup, method, norm, eps):
    clf, images, labels = setup
    adv = attack(clf, images, labels, method, norm, eps=eps, step_size=eps / 4, iters=10)
    d = (adv - images).reshape(len(images), -1)
    size = np.abs(d).max(1) if norm == "linf" else np.linalg.norm(d, axis=1)
    assert size.max() <= eps * (1 + 1e-5) + 1e-3
    assert adv.min() >= 0 and adv.max() <= 255
    acc = np.mean(top1(clf, adv) == labels)
    assert acc < 0.5, acc


def test_pgd_beats_fgsm_and_grows_with_eps(setup):
    clf, images, labels = setup
    ce = tf.keras.losses.sparse_categorical_crossentropy
    model = clf.feature_model("logits")
    loss = lambda x: float(np.mean(ce(labels, model(x), from_logits=True)))
    small = attack(clf, images, labels, "pgd", eps=2.0, step_size=0.5, iters=10)
    big = attack(clf, images, labels, "pgd", eps=8.0, step_size=2.0, iters=10)
    fgsm = attack(clf, images, labels, "fgsm", eps=8.0)
    assert loss(images) < loss(small) < loss(big)
    assert loss(big) >= loss(fgsm) * 0.99


def test_restoring_a_clean_image_keeps_it_close(setup, tmp_path):
    clf, images, _ = setup
    tv, _ = map_restore(clf, images, sigma=4.0, tv_weight=0.02, steps=20)
    assert np.mean(psnr(tv, images)) > 35
    # (JPEG halves the chroma resolution: ~29 dB on saturated 16-px images.)
    assert np.mean(psnr(jpeg(images, 95), images)) > 27
    assert np.mean(psnr(median(images, 3), images)) > 25
    # The MAP estimate is smoother than its input: TV decreased.
    from tfrestore.priors.denoising import tv_energy
    assert np.all(tv_energy(tv).numpy() < tv_energy(images).numpy())


def test_map_restore_with_a_learned_prior_lowers_its_energy(setup, tmp_path):
    from tfrestore.priors import PatchPrior
    clf, images, _ = setup
    prior = PatchPrior(3, 3, 5, expert="student_t", seed=0, metadata={"layer": "image"})
    prior(tf.zeros((1, 8, 8, 3)))
    path = str(tmp_path / "p.keras")
    prior.save(path)
    terms = prior_terms(clf, [f"{path}@image:0.05"])
    noisy = np.clip(images + np.random.default_rng(1).normal(0, 20, images.shape), 0, 255)
    out, res = map_restore(clf, noisy, sigma=20.0, priors=terms, steps=20)
    e = lambda x: terms[0].fn(tf.constant(x, tf.float32)).numpy()
    assert np.mean(e(out)) < np.mean(e(noisy))
    with pytest.raises(ValueError, match="image"):
        terms[0].at = "c1"
        map_restore(clf, noisy, priors=terms, steps=2)
