"""The optimisation engine: one compiled step over a batch, a Python loop with callbacks.

    engine = Engine(variables, loss_fn, keras.optimizers.Adam(schedule), project=...)
    result = engine.run(steps, callbacks=[ProgressBar(), ConvergenceStop(), ...])

`loss_fn(step, steps)` returns `(total, terms)`: the per-example objective [B] (the
examples of a batch are independent, so the gradient of the sum is each one's gradient)
and a dict {name: [B]} of weighted terms that callbacks log. Every image-space
optimisation of the package (inversion, activation maximisation, caricatures, sampling,
MAP denoising, adversarial restoration) runs on this loop; training loops with their own
data pipelines share its callbacks (progress, TensorBoard, checkpoints, stopping).

Per step, in one `tf.function`: loss and gradient -> optimizer update -> optional
Langevin noise sqrt(2 lr T) N(0, I) (plain gradient descent + this noise is the
unadjusted Langevin algorithm at temperature T) -> optional projection.
"""
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

__all__ = ["Loop", "Engine", "EngineResult", "StepLogs", "make_optimizer", "reset_optimizer_state",
           "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The objective or one of its terms became NaN or infinite."""


def make_optimizer(name, learning_rate, momentum=0.9, **kwargs):
    """A `keras.optimizers` optimizer by name: adam, sgd (momentum), rmsprop, adamw, nadam, ...

    Adam: Keras adds epsilon to sqrt(v) rather than to sqrt(v_hat) (Kingma & Ba's
    Algorithm 1, which the M&V implementations follow with eps = 1e-8); its default
    here, 1e-8 * sqrt(1 - 0.999), makes the two identical at the first step, where image
    gradients far below 1e-6 would otherwise move by less than the learning rate.
    """
    name = str(name).lower()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, epsilon=kwargs.pop(
            "epsilon", 1e-8 * (1 - 0.999) ** 0.5), **kwargs)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, **kwargs)
    try:
        opt = keras.optimizers.get({"class_name": name, "config": dict(
            learning_rate=learning_rate, **kwargs)})
    except (ValueError, TypeError):
        raise ValueError(f"Unknown optimizer '{name}': use adam, sgd or any "
                         f"keras.optimizers name (rmsprop, adamw, nadam, ...).") from None
    return opt


def reset_optimizer_state(optimizer):
    """Zero the optimizer's slots (momenta, second moments), keeping its iteration count.

    M&V 2015 restart the momentum of SGD at each learning-rate change."""
    for v in optimizer.variables:
        leaf = v.path.split("/")[-1]
        if leaf not in ("iteration", "learning_rate"):
            v.assign(tf.zeros_like(v))


class StepLogs:
    """What a step returns, converted to NumPy only when a callback asks for it."""

    def __init__(self, step, total, terms, lr):
        self.step = step          # 1-based number of steps done
        self._total, self._terms, self._lr = total, terms, lr
        self._cache = None

    @property
    def total(self):
        """Per-example objective [B] (NumPy)."""
        return np.asarray(self._total)

    @property
    def loss(self):
        return float(np.mean(self.total))

    @property
    def lr(self):
        return float(self._lr)

    @property
    def terms(self):
        """{name: per-example weighted value [B]} (NumPy)."""
        if self._cache is None:
            self._cache = {k: np.asarray(v) for k, v in self._terms.items()}
        return self._cache

    def means(self):
        """{"loss": mean total, name: mean term value, "lr": lr} as floats."""
        out = {"loss": self.loss}
        out.update({k: float(np.mean(v)) for k, v in self.terms.items()})
        out["lr"] = self.lr
        return out


@dataclass
class EngineResult:
    steps: int                      # steps done in total (resumed ones included)
    seconds: float                  # wall time of this call
    stopped: str = "steps"          # "steps" | "converged" | a callback's reason
    start_step: int = 0             # > 0 when resumed from a checkpoint
    last: StepLogs = None
    history: list = field(default_factory=list)


class Loop:
    """The Python loop and its callbacks, for any step function.

    Training loops with their own data pipelines and compiled steps (score matching,
    inverting networks, DAEs) run here so that they share the engine's callbacks:
    progress with time left, TensorBoard, history, checkpoints, stopping.

    `step_fn(i)` runs 0-based step i and returns (total, {name: value}, lr).
    """

    def __init__(self, optimizer=None):
        self.optimizer = optimizer
        self.stop_reason = None
        self.start_step = 0
        self.steps = 0

    def stop(self, reason):
        """Ask the loop to stop after the current step (callbacks call this)."""
        self.stop_reason = reason

    def run(self, steps, callbacks=(), step_fn=None, start_step=0):
        """Run steps [start_step, steps) (a Checkpoint callback may move `start_step`)."""
        callbacks = list(callbacks)
        self.stop_reason = None
        self.start_step = int(start_step)
        self.steps = int(steps)
        for cb in callbacks:
            cb.on_run_begin(self)
        step_fn = step_fn or self._run_step
        t0 = time.time()
        logs, done = None, self.start_step   # after on_run_begin: a resume moves it
        for i in range(self.start_step, self.steps):
            for cb in callbacks:
                cb.on_step_begin(self, i)
            total, terms, lr = step_fn(i)
            logs = StepLogs(i + 1, total, terms, lr)
            done = i + 1
            for cb in callbacks:
                cb.on_step_end(self, logs)
            if self.stop_reason:
                break
        result = EngineResult(steps=done, seconds=time.time() - t0,
                              stopped=self.stop_reason or "steps",
                              start_step=self.start_step, last=logs)
        for cb in callbacks:
            cb.on_run_end(self, result)
        return result

    def _run_step(self, i):
        raise NotImplementedError("pass step_fn or subclass Loop")


class Engine(Loop):
    """Gradient-based minimisation of a batch objective over `variables`.

    Args:
      variables: a tf.Variable or a list of them.
      loss_fn: callable (step, steps) -> (total [B] or scalar, {name: [B]}); `step` is the
        0-based int32 step tensor, `steps` the run length (for schedules of transforms).
      optimizer: a `keras.optimizers.Optimizer` (see `make_optimizer`).
      project: optional callable applied after each update (e.g. a bound projection).
      temperature: Langevin noise temperature; 0 = plain optimisation.
      seed: seed of the Langevin noise generator.
      jit_compile: XLA-compile the step (measure first: rarely faster on CPU).
      jit_update: XLA-compile the update after the gradient (optimizer, noise,
        projection): a dozen elementwise ops on image-size tensors fused into a few
        loops, ~3x cheaper on CPU (bench/bench_inversion.py); same maths.
      trace_key: optional callable returning a hashable Python value that `loss_fn` reads
        at trace time (e.g. which terms are switched on); the step is compiled once per
        value it takes, so a term switched off costs nothing rather than a zero weight.
    """

    def __init__(self, variables, loss_fn, optimizer, project=None, temperature=0.0,
                 seed=0, jit_compile=False, jit_update=True, trace_key=None):
        super().__init__(optimizer)
        self.variables = list(variables) if isinstance(variables, (list, tuple)) else \
            [variables]
        self.loss_fn, self.project = loss_fn, project
        self.temperature = float(temperature)
        if self.temperature < 0 or not np.isfinite(self.temperature):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}.")
        self.noise = tf.random.Generator.from_seed(seed + 7919) if self.temperature else None
        self.optimizer.build(self.variables)
        self._update_fn = tf.function(self._update, jit_compile=bool(jit_update)) \
            if not jit_compile else self._update
        self.step_fn = tf.function(self._step, jit_compile=jit_compile)
        self.trace_key = trace_key

    def _current_lr(self):
        lr = self.optimizer.learning_rate
        return tf.cast(lr, tf.float32)

    def _step(self, step, steps, key=None):
        del key   # only selects the compiled trace (see `trace_key`)
        with tf.GradientTape() as tape:
            total, terms = self.loss_fn(step, steps)
            loss = tf.reduce_sum(total)
        grads = tape.gradient(loss, self.variables)
        return total, terms, self._update_fn(grads)

    def _update(self, grads):
        """Optimizer step, Langevin noise, projection; returns the learning rate used."""
        lr = self._current_lr()
        self.optimizer.apply_gradients(zip(grads, self.variables))
        if self.noise is not None:
            scale = tf.sqrt(2.0 * lr * self.temperature)
            for v in self.variables:
                v.assign_add(scale * self.noise.normal(tf.shape(v)))
        if self.project is not None:
            self.project()
        return lr

    def _run_step(self, i):
        key = self.trace_key() if self.trace_key else None
        return self.step_fn(tf.constant(i, tf.int32), tf.constant(self.steps, tf.int32), key)
