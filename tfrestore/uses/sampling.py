"""Langevin sampling on the engine: ULA and MALA, for any batch energy E(x) -> [B].

ULA (unadjusted Langevin): the engine with plain gradient descent (SGD, no momentum,
constant step h) and its Langevin noise at temperature T:

    x <- x - h grad E(x) + sqrt(2 h T) xi,     xi ~ N(0, I)

which samples exp(-E/T) up to an O(h) bias. MALA adds a Metropolis-Hastings test per
example of the batch (`MetropolisAdjustment`, an engine callback): the engine's step is
the proposal y; it is accepted with probability min(1, a),

    log a = -(E(y) - E(x)) / T - (||x - y + h grad E(y)||^2 - ||y - x + h grad E(x)||^2) / (4 h T)

and a rejected example goes back to x. Energies and gradients at both points come from one
small compiled function; the current point's are cached, so MALA costs one extra energy
and gradient evaluation per step. The chain then samples exp(-E/T) exactly (for any h;
the acceptance rate falls as h grows).

For images (`sample_images`) the energy is an `Objective` (a learned prior alone, or a
pre-image energy: feature loss + priors) on the pixels; jitter, crops and the bound
projection are off (they would change the target density).
"""
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from tfrestore import engine as E
from tfrestore.inversion.optimize import ImageOptimizer

__all__ = ["MetropolisAdjustment", "ChainRecorder", "langevin", "sample_images",
           "sampling_settings", "ChainResult"]


def _sq_norm_per_example(tensors):
    return tf.add_n([tf.reduce_sum(tf.square(t), axis=list(range(1, t.shape.rank)))
                     for t in tensors])


class MetropolisAdjustment(E.Callback):
    """Turns the engine's ULA step into a MALA step (per-example accept/reject).

    Args:
      energy: callable () -> [B] energy at the current variables (deterministic).
      variables: the engine's variables (first axis = the chains).
      temperature: T of exp(-E/T) (the engine's temperature).
      seed: seed of the acceptance uniforms.
    """

    def __init__(self, energy, variables, temperature, seed=0):
        self.energy, self.variables = energy, list(variables)
        self.T = float(temperature)
        self.uniform = tf.random.Generator.from_seed(seed + 104729)
        self.saved = [tf.Variable(v, trainable=False) for v in self.variables]
        self.e_x = self.g_x = None
        self.accepted = None          # per-chain count
        self.steps = 0
        self.rates = []               # acceptance rate over the batch, per step
        self._value_and_grad = tf.function(self._vg)
        self._decide = tf.function(self._accept)

    def _vg(self):
        with tf.GradientTape() as tape:
            e = self.energy()
            s = tf.reduce_sum(e)
        return e, tape.gradient(s, self.variables)

    def _accept(self, e_x, g_x, e_y, g_y, h):
        x, y = self.saved, self.variables
        fwd = _sq_norm_per_example([yi - xi + h * gi for xi, yi, gi in zip(x, y, g_x)])
        bwd = _sq_norm_per_example([xi - yi + h * gi for xi, yi, gi in zip(x, y, g_y)])
        log_a = -(e_y - e_x) / self.T - (bwd - fwd) / (4.0 * h * self.T)
        u = self.uniform.uniform(tf.shape(e_x))
        acc = tf.math.log(u) < log_a
        for xi, yi in zip(x, y):
            mask = tf.reshape(acc, [-1] + [1] * (yi.shape.rank - 1))
            yi.assign(tf.where(mask, yi, xi))
        e = tf.where(acc, e_y, e_x)
        g = [tf.where(tf.reshape(acc, [-1] + [1] * (gx.shape.rank - 1)), gy, gx)
             for gx, gy in zip(g_x, g_y)]
        return acc, e, g

    def on_run_begin(self, engine):
        self.e_x, self.g_x = self._value_and_grad()
        self.accepted = np.zeros(int(self.e_x.shape[0]))

    def on_step_begin(self, engine, step):
        for s, v in zip(self.saved, self.variables):
            s.assign(v)

    def on_step_end(self, engine, logs):
        e_y, g_y = self._value_and_grad()
        acc, self.e_x, self.g_x = self._decide(self.e_x, self.g_x, e_y, g_y,
                                               tf.constant(logs.lr, tf.float32))
        acc = acc.numpy()
        self.accepted += acc
        self.steps += 1
        self.rates.append(float(acc.mean()))

    @property
    def acceptance(self):
        """Per-chain acceptance rate so far."""
        return self.accepted / max(1, self.steps)


class ChainRecorder(E.Callback):
    """Energy of every chain after each step and the state every `every` steps."""

    def __init__(self, energy, state, every=10, burn_in=0):
        self.energy, self.state = tf.function(energy), state
        self.every, self.burn_in = int(every), int(burn_in)
        self.energies, self.samples, self.sample_steps = [], [], []

    def on_step_end(self, engine, logs):
        self.energies.append(np.asarray(self.energy()))
        if logs.step > self.burn_in and (logs.step - self.burn_in) % self.every == 0:
            self.samples.append(np.asarray(self.state()))
            self.sample_steps.append(logs.step)


@dataclass
class ChainResult:
    samples: np.ndarray          # [S, B, ...] states after burn-in, every `every` steps
    sample_steps: list
    energies: np.ndarray         # [steps, B] energy after each step
    acceptance: np.ndarray = None   # [B] MALA acceptance rates (None for ULA)
    acceptance_per_step: list = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def _sgd(h):
    if not h > 0:
        raise ValueError(f"--step_size={h}: the Langevin step must be > 0.")
    return keras.optimizers.SGD(float(h), momentum=0.0)


def langevin(variables, energy, steps, step_size, temperature=1.0, mala=False, seed=0,
             every=1, burn_in=0, callbacks=()):
    """Sample exp(-energy/T) with ULA (or MALA) over `variables` (first axis = chains).

    `energy()` -> [B] at the current variables. Returns a `ChainResult`."""
    variables = list(variables)
    if not temperature > 0:
        raise ValueError(f"--temperature={temperature}: sampling needs T > 0.")
    engine = E.Engine(variables, lambda step, steps: (energy(), {}), _sgd(step_size),
                      temperature=temperature, seed=seed)
    state = (lambda: variables[0]) if len(variables) == 1 else \
        (lambda: tf.concat([tf.reshape(v, [tf.shape(v)[0], -1]) for v in variables], 1))
    rec = ChainRecorder(energy, state, every, burn_in)
    mh = MetropolisAdjustment(energy, variables, temperature, seed) if mala else None
    cbs = ([mh] if mh else []) + [rec, E.NanGuard()] + list(callbacks)
    r = engine.run(steps, cbs)
    return ChainResult(np.asarray(rec.samples), rec.sample_steps, np.asarray(rec.energies),
                       mh.acceptance if mh else None, mh.rates if mh else [], r.seconds,
                       r.steps)


def sampling_settings(settings, step_size, steps):
    """`settings` turned into a Langevin run: pixels, SGD without momentum at a constant
    step, no jitter, no bound projection, no prior crops, no two-phase gate."""
    return settings.replace(parameterization="pixels", optimizer="sgd", momentum=0.0,
                            momentum_reset=False, lr_schedule="constant",
                            lr_values=[float(step_size)], lr_boundaries=[], jitter=0,
                            scale_jitter=0.0, bound_factor=0.0, prior_crop=0.0,
                            prior_start=0.0, steps=int(steps), converge_rtol=0.0)


def sample_images(classifier, objective, settings, shape=None, init=None, temperature=1.0,
                  mala=False, every=10, burn_in=0, summary_dir=None, verbose=True):
    """Langevin chains (one per image of the batch) for the energy `objective` (its total),
    with `settings` from `sampling_settings`. Returns (ChainResult, final RGB images)."""
    if not temperature > 0:
        raise ValueError(f"--temperature={temperature}: sampling needs T > 0.")
    opt = ImageOptimizer(classifier, objective, settings, shape=shape, init=init,
                         temperature=temperature)
    energy = lambda: objective(opt.rgb())[0]
    rec = ChainRecorder(energy, opt.rgb, every, burn_in)
    mh = MetropolisAdjustment(energy, opt.param.variables, temperature, settings.seed) \
        if mala else None
    r = opt.run(([mh] if mh else []) + [rec], verbose=verbose, summary_dir=summary_dir,
                log_every=max(1, settings.steps // 20))
    chain = ChainResult(np.asarray(rec.samples), rec.sample_steps, np.asarray(rec.energies),
                        mh.acceptance if mh else None, mh.rates if mh else [], r.seconds,
                        r.steps)
    return chain, r.reconstructions
