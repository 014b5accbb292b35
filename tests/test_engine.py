"""The optimisation engine: parameterizations, optimizers and resets, schedules, stopping,
checkpoint-and-resume, NaN guard, Langevin noise — each against an independent computation."""
import numpy as np
import pytest
import tensorflow as tf

from tfrestore import engine as E
from tfrestore.runstate import SettingsMismatchError


@pytest.mark.parametrize("name,opts", [("mv", {"sigma": 3.0}), ("pixels", {}),
                                       ("fourier", {}), ("fourier", {"decay": 0.5}),
                                       ("laplacian", {"levels": 4}),
                                       ("laplacian", {"levels": 1, "gain": 3.0})])
def test_parameterizations_are_invertible(name, opts, rng):
    c = rng.normal(0, 30, (2, 37, 50, 3)).astype(np.float32)
    mean = np.array([1.0, 2.0, 3.0], np.float32)
    p = E.make_parameterization(name, mean=mean, **opts).build(c)
    np.testing.assert_allclose(p.to_rgb().numpy(), c + mean, atol=2e-3)
    # Round trip through the variables: encode(decode(v)) == v on the image.
    before = p.to_rgb().numpy()
    p.assign_centred(p.centred())
    np.testing.assert_allclose(p.to_rgb().numpy(), before, atol=2e-3)


@pytest.mark.parametrize("name", ["mv", "pixels", "fourier", "laplacian"])
def test_bound_projection_holds_in_every_parameterization(name, rng):
    c = rng.normal(0, 200, (1, 16, 16, 3)).astype(np.float32)
    p = E.make_parameterization(name, bound=100.0).build(c)
    norms = np.linalg.norm(p.centred().numpy(), axis=-1)
    assert norms.max() <= 100.0 + 1e-2
    for v in p.variables:
        v.assign(v * 3.0)
    p.project()
    assert np.linalg.norm(p.centred().numpy(), axis=-1).max() <= 100.0 + 1e-2


def test_fourier_scales_low_frequencies_up():
    """A unit step on the lowest non-DC coefficient moves the image far more than one on
    the highest: the 1/f preconditioning that makes the parameterization worth having."""
    p = E.make_parameterization("fourier", decorrelate=False).build(np.zeros((1, 32, 32, 3)))
    re = p.variables[0]
    base = p.centred().numpy()
    low, high = np.zeros(re.shape, np.float32), np.zeros(re.shape, np.float32)
    low[0, 0, 1, 0], high[0, 0, 16, 16] = 1.0, 1.0
    re.assign(low)
    d_low = np.abs(p.centred().numpy() - base).max()
    re.assign(high)
    d_high = np.abs(p.centred().numpy() - base).max()
    assert d_low > 10 * d_high, (d_low, d_high)


def test_piecewise_fraction_schedule_matches_step_semantics():
    s = E.PiecewiseConstantFraction([1000 / 3500, 2000 / 3500], [1.0, 0.3, 0.1], 3500)
    got = [float(s(i)) for i in (0, 999, 1000, 1999, 2000, 3499)]
    np.testing.assert_allclose(got, [1.0, 1.0, 0.3, 0.3, 0.1, 0.1], rtol=1e-6)
    assert [s.value(i) for i in (0, 999, 1000, 2000)] == [1.0, 1.0, 0.3, 0.1]
    short = E.PiecewiseConstantFraction([1000 / 3500, 2000 / 3500], [1.0, 0.3, 0.1], 35)
    np.testing.assert_allclose([float(short(i)) for i in (9, 10, 19, 20)],
                               [1.0, 0.3, 0.3, 0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="one more value"):
        E.PiecewiseConstantFraction([0.5], [1.0], 10)
    with pytest.raises(ValueError, match="increase"):
        E.PiecewiseConstantFraction([0.6, 0.5], [1, 2, 3], 10)
    with pytest.raises(ValueError, match="Unknown learning-rate schedule"):
        E.make_schedule("exp", 10, [1.0])


def _quadratic_engine(opt, x0, target):
    x = tf.Variable(np.asarray(x0, np.float32))
    t = tf.constant(np.asarray(target, np.float32))

    def loss(step, steps):
        d = 0.5 * tf.reduce_sum(tf.square(x - t), axis=-1)
        return d, {"quad": d}
    return x, E.Engine(x, loss, opt)


def test_sgd_momentum_with_reset_matches_numpy():
    """Momentum SGD with the optimizer state reset at the lr change (M&V 2015) against a
    NumPy implementation of the same update, and against the run without the reset."""
    sched = E.PiecewiseConstantFraction([0.5], [0.1, 0.02], 10)
    x0, target = np.array([[3.0, -2.0]]), np.array([[1.0, 1.0]])
    x, eng = _quadratic_engine(E.make_optimizer("sgd", sched, momentum=0.9), x0, target)
    eng.run(10, [E.OptimizerReset(sched.step_boundaries)])
    xn, vel = x0.copy(), np.zeros_like(x0)
    for i in range(10):
        if i == 5:
            vel[:] = 0.0
        lr = 0.1 if i < 5 else 0.02
        vel = 0.9 * vel - lr * (xn - target)
        xn = xn + vel
    np.testing.assert_allclose(x.numpy(), xn, rtol=1e-5)
    x2, eng2 = _quadratic_engine(E.make_optimizer("sgd", sched, momentum=0.9), x0, target)
    eng2.run(10)
    assert np.abs(x2.numpy() - xn).max() > 1e-3   # the reset changes the trajectory


def test_adam_matches_textbook_update():
    x0, target = np.array([[3.0, -2.0, 0.5]]), np.array([[1.0, 1.0, 1.0]])
    x, eng = _quadratic_engine(E.make_optimizer("adam", 0.3), x0, target)
    eng.run(6)
    xn, m, v = x0.copy(), 0.0, 0.0
    for t in range(1, 7):
        g = xn - target
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        xn = xn - 0.3 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(x.numpy(), xn, rtol=1e-4, atol=1e-4)  # float32 vs float64


def test_convergence_stop_stops_a_converged_run_and_not_a_moving_one():
    x, eng = _quadratic_engine(E.make_optimizer("sgd", 0.2, momentum=0.0), [[5.0]], [[0.0]])
    stop = E.ConvergenceStop(rtol=1e-3, window=10, min_step=0)
    r = eng.run(1000, [stop])
    assert r.stopped == "converged" and stop.converged_at is not None and r.steps < 200
    # A slow run that is still falling is not stopped.
    x, eng = _quadratic_engine(E.make_optimizer("sgd", 1e-4, momentum=0.0), [[5.0]], [[0.0]])
    stop = E.ConvergenceStop(rtol=1e-3, window=10, min_step=0)
    r = eng.run(100, [stop])
    assert r.stopped == "steps" and stop.converged_at is None and r.steps == 100
    with pytest.raises(ValueError, match="rtol"):
        E.ConvergenceStop(rtol=0)


def test_nan_guard_names_the_step_and_term():
    x = tf.Variable([[1.0]])

    def loss(step, steps):
        bad = tf.where(step >= 3, np.nan, 0.0) * x[:, 0]
        return x[:, 0] ** 2 + bad, {"fine": x[:, 0] ** 2, "broken": bad}
    eng = E.Engine(x, loss, E.make_optimizer("sgd", 0.01, momentum=0.0))
    with pytest.raises(E.NonFiniteLossError, match=r"step 4 in term\(s\) broken"):
        eng.run(10, [E.NanGuard()])


class _Interrupt(E.Callback):
    def __init__(self, at):
        self.at = at

    def on_step_end(self, engine, logs):
        if logs.step == self.at:
            raise KeyboardInterrupt


def _noisy_problem(seed):
    """A stochastic objective (a seeded generator draws the weights each step)."""
    x = tf.Variable(np.linspace(-1, 1, 6, dtype=np.float32)[None])
    gen = tf.random.Generator.from_seed(seed)

    def loss(step, steps):
        w = gen.uniform(x.shape, 0.5, 1.5)
        e = tf.reduce_sum(w * tf.square(x - 2.0), axis=-1)
        return e, {"e": e}
    opt = E.make_optimizer("adam", E.make_schedule("cosine", 30, [0.1]))
    return x, gen, E.Engine(x, loss, opt), opt


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    x, gen, eng, opt = _noisy_problem(3)
    eng.run(30)
    full = x.numpy()
    x, gen, eng, opt = _noisy_problem(3)
    ck = lambda: E.Checkpoint(str(tmp_path / "ck"), {"x": x, "gen": gen, "opt": opt},
                              every=5, settings={"seed": 3})
    with pytest.raises(KeyboardInterrupt):
        eng.run(30, [ck(), _Interrupt(12)])
    x, gen, eng, opt = _noisy_problem(3)   # a new process: fresh objects
    c = E.Checkpoint(str(tmp_path / "ck"), {"x": x, "gen": gen, "opt": opt}, every=5,
                     settings={"seed": 3})
    r = eng.run(30, [c])
    assert c.resumed_from == 10 and r.start_step == 10 and r.steps == 30
    np.testing.assert_allclose(x.numpy(), full, rtol=1e-6)
    # Other settings: refused, naming the difference; fresh=True starts again.
    x, gen, eng, opt = _noisy_problem(4)
    other = E.Checkpoint(str(tmp_path / "ck"), {"x": x, "gen": gen, "opt": opt},
                         settings={"seed": 4})
    with pytest.raises(SettingsMismatchError, match="seed: 3 -> 4"):
        eng.run(30, [other])
    fresh = E.Checkpoint(str(tmp_path / "ck"), {"x": x, "gen": gen, "opt": opt},
                         settings={"seed": 4}, fresh=True)
    assert eng.run(30, [fresh]).start_step == 0


def test_langevin_noise_samples_a_gaussian():
    """Unadjusted Langevin (plain gradient steps + sqrt(2 lr T) noise) on E = x^2 / (2 s^2):
    the chain's stationary variance is s^2 T / (1 - lr / (2 s^2)) exactly (AR(1) process)."""
    s2, lr, T = 4.0, 0.2, 1.0
    x = tf.Variable(tf.zeros([4000, 1]))
    eng = E.Engine(x, lambda step, steps: (tf.reduce_sum(x * x, -1) / (2 * s2), {}),
                   E.make_optimizer("sgd", lr, momentum=0.0), temperature=T, seed=1)
    eng.run(150)
    var = float(np.var(x.numpy()))
    expected = s2 * T / (1 - lr / (2 * s2))
    assert abs(var - expected) / expected < 0.06, (var, expected)
    assert abs(float(np.mean(x.numpy()))) < 0.1


def test_any_keras_optimizer_by_name_and_clear_error():
    assert type(E.make_optimizer("rmsprop", 0.1)).__name__ == "RMSprop"
    with pytest.raises(ValueError, match="Unknown optimizer 'adamx'"):
        E.make_optimizer("adamx", 0.1)


def test_trace_key_compiles_one_step_per_key_and_switches_the_loss():
    """`trace_key`: the loss reads a Python flag at trace time; each value gets its own
    compiled step (traced once), and the run follows the flag step by step."""
    x = tf.Variable([[4.0]])
    state = {"double": False, "traces": 0}

    def loss_fn(step, steps):
        state["traces"] += 1
        g = 2.0 if state["double"] else 1.0
        total = 0.5 * g * tf.reduce_sum(tf.square(x), axis=1)
        return total, {}

    class Flip(E.Callback):
        def on_step_begin(self, engine, step):
            state["double"] = step >= 2

    eng = E.Engine(x, loss_fn, E.make_optimizer("sgd", 0.25, momentum=0.0),
                   trace_key=lambda: state["double"])
    eng.run(4, [Flip()])
    assert state["traces"] == 2
    # two steps of x -= 0.25 x, then two of x -= 0.5 x
    np.testing.assert_allclose(x.numpy(), [[4.0 * 0.75 ** 2 * 0.5 ** 2]], rtol=1e-6)
