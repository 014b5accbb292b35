"""Callbacks of the engine: progress, TensorBoard, history, checkpoints, stopping.

A callback sees the engine at the start and end of the run and after every step (with a
`StepLogs`, converted to NumPy only when read). Each callback reads the logs only at its
own interval, so a quiet run does not pay for conversions.
"""
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfrestore import summaries
from tfrestore.engine.loop import NonFiniteLossError, reset_optimizer_state

__all__ = ["Callback", "ProgressBar", "TensorBoard", "History", "CurveRecorder",
           "Checkpoint", "ConvergenceStop", "NanGuard", "OptimizerReset", "LambdaCallback"]


class Callback:
    def on_run_begin(self, engine):
        pass

    def on_step_begin(self, engine, step):
        pass

    def on_step_end(self, engine, logs):
        pass

    def on_run_end(self, engine, result):
        pass


class LambdaCallback(Callback):
    """on_step_begin(engine, step) from a function (e.g. switching a gate at a step)."""

    def __init__(self, on_step_begin=None, on_step_end=None):
        self._begin, self._end = on_step_begin, on_step_end

    def on_step_begin(self, engine, step):
        if self._begin:
            self._begin(engine, step)

    def on_step_end(self, engine, logs):
        if self._end:
            self._end(engine, logs)


class ProgressBar(Callback):
    """Progress with time left and the mean loss terms, every `every` steps:
    keras.utils.Progbar on a terminal, one plain line per update in a log file."""

    def __init__(self, every=None, verbose=1, label=None, stream=None):
        self.every, self.verbose, self.label = every, verbose, label
        self.stream = stream or sys.stdout

    def on_run_begin(self, engine):
        self.every_ = self.every or max(1, engine.steps // (50 if self._tty() else 20))
        if self.label:
            print(self.label, file=self.stream, flush=True)
        self.bar = None
        self.start, self.t0 = engine.start_step, time.time()

    def _tty(self):
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_step_end(self, engine, logs):
        if logs.step % self.every_ == 0 or logs.step == engine.steps or engine.stop_reason:
            values = logs.means()
            if not self._tty():
                elapsed = time.time() - self.t0
                left = elapsed / max(1, logs.step - self.start) * (engine.steps - logs.step)
                terms = " ".join(f"{k}={v:.4g}" for k, v in values.items())
                print(f"step {logs.step}/{engine.steps} {terms} ({elapsed:.0f}s elapsed, "
                      f"~{left:.0f}s left)", file=self.stream, flush=True)
                return
            if self.bar is None:
                # Stateful: show the current values, not averages over updates.
                self.bar = keras.utils.Progbar(engine.steps, verbose=self.verbose,
                                               stateful_metrics=list(values),
                                               unit_name="step")
            self.bar.update(logs.step, values=list(values.items()),
                            finalize=logs.step == engine.steps or bool(engine.stop_reason))


class TensorBoard(Callback):
    """Scalars `loss/*` and `schedule/lr` every `every` steps into `log_dir`."""

    def __init__(self, log_dir, every=None, prefix="loss"):
        self.log_dir, self.every, self.prefix = log_dir, every, prefix

    def on_run_begin(self, engine):
        self.every_ = self.every or max(1, engine.steps // 100)
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_step_end(self, engine, logs):
        if logs.step % self.every_ == 0 or logs.step == engine.steps or engine.stop_reason:
            with self.writer.as_default(step=logs.step):
                for k, v in logs.means().items():
                    if k == "lr":
                        summaries.scalar("schedule/lr", v)
                    else:
                        summaries.scalar(f"{self.prefix}/{'total' if k == 'loss' else k}", v)

    def on_run_end(self, engine, result):
        self.writer.flush()


class History(Callback):
    """Mean loss, terms and lr every `every` steps (and the last step) in `self.records`."""

    def __init__(self, every=None):
        self.every, self.records = every, []

    def on_run_begin(self, engine):
        self.every_ = self.every or max(1, engine.steps // 20)
        self.t0 = time.time()

    def on_step_end(self, engine, logs):
        if logs.step % self.every_ == 0 or logs.step == engine.steps or engine.stop_reason:
            m = logs.means()
            self.records.append({"step": logs.step, "seconds": time.time() - self.t0,
                                 "loss": m.pop("loss"), "lr": m.pop("lr"), "terms": m})

    def on_run_end(self, engine, result):
        result.history = self.records


class CurveRecorder(Callback):
    """Calls `evaluate()` -> {name: [B] or float} at `steps` (and the first and last step),
    recording {step, seconds (optimisation time only), **values} — e.g. feature error and
    SSIM against step and seconds. Evaluation time is excluded from `seconds`.

    With `path` (JSON), the records are written there after each evaluation; a run resumed
    from a checkpoint (engine.start_step > 0; put this callback after `Checkpoint`) keeps the
    records up to its start step, and its seconds continue from theirs, so a curve spans
    every sitting of an interrupted run."""

    def __init__(self, evaluate, every=25, path=None):
        self.evaluate, self.every, self.path, self.records = evaluate, every, path, []

    def on_run_begin(self, engine):
        self.t0, self.excluded, self.records, offset = time.time(), 0.0, [], 0.0
        if self.path and engine.start_step > 0:
            from tfrestore.runstate import records_up_to
            self.records = records_up_to(self.path, engine.start_step)
            offset = self.records[-1]["seconds"] if self.records else 0.0
        self.t0 -= offset

    def on_step_end(self, engine, logs):
        if logs.step == 1 or logs.step % self.every == 0 or logs.step == engine.steps or \
                engine.stop_reason:
            t = time.time()
            vals = {k: np.asarray(v).tolist() for k, v in self.evaluate().items()}
            self.records.append(dict(step=logs.step, seconds=t - self.t0 - self.excluded,
                                     loss=logs.total.tolist(), **vals))
            if self.path:
                from tfrestore.io import write_json
                write_json(self.path, self.records)
            self.excluded += time.time() - t


class NanGuard(Callback):
    """Stops the run with an error naming the step and the term as soon as the objective
    or a term is NaN or infinite (checked every `every` steps)."""

    def __init__(self, every=1):
        self.every = every

    def on_step_end(self, engine, logs):
        if logs.step % self.every and logs.step != engine.steps:
            return
        if np.all(np.isfinite(logs.total)):
            return
        bad = [k for k, v in logs.terms.items() if not np.all(np.isfinite(v))]
        raise NonFiniteLossError(
            f"The objective became {'NaN' if np.isnan(logs.total).any() else 'infinite'} "
            f"at step {logs.step}" + (f" in term(s) {', '.join(bad)}" if bad else "") +
            f" (learning rate {logs.lr:g}); lower the learning rate or that term's weight.")


class ConvergenceStop(Callback):
    """Stop once the objective has converged: the relative change of its mean over two
    consecutive windows of `window` steps is below `rtol`, checked only after `min_step`
    (e.g. the last learning-rate drop: a plateau at a high rate is not convergence).

    Records the latest relative change in `self.change` (also at the last step) and the
    step it stopped at in `self.converged_at` (None if it never did). With `stop=False` it
    only measures: a run of fixed length still reports whether it had converged."""

    def __init__(self, rtol=1e-3, window=50, min_step=0, stop=True):
        if not rtol > 0 or window < 1:
            raise ValueError(f"ConvergenceStop needs rtol > 0 and window >= 1, got "
                             f"rtol={rtol}, window={window}.")
        self.rtol, self.window, self.min_step = float(rtol), int(window), int(min_step)
        self.stop_run = bool(stop)
        self.converged_at = self.change = None

    def on_run_begin(self, engine):
        self.losses = []
        self.converged_at = self.change = None

    def on_step_end(self, engine, logs):
        self.losses.append(logs.loss)
        w = self.window
        if len(self.losses) < 2 * w or (logs.step % w and logs.step != engine.steps):
            return
        recent, before = np.mean(self.losses[-w:]), np.mean(self.losses[-2 * w:-w])
        self.change = float(abs(before - recent) / max(abs(before), 1e-12))
        if self.stop_run and logs.step >= self.min_step and self.change < self.rtol:
            self.converged_at = logs.step
            engine.stop("converged")


class OptimizerReset(Callback):
    """Reset the optimizer's state (momenta) before the given steps (M&V 2015: at every
    learning-rate change of momentum SGD)."""

    def __init__(self, at_steps):
        self.at_steps = set(int(s) for s in at_steps if s > 0)

    def on_step_begin(self, engine, step):
        if step in self.at_steps:
            reset_optimizer_state(engine.optimizer)


class Checkpoint(Callback):
    """Checkpoint-and-resume of a long run with `tf.train.CheckpointManager`.

    Saves `objects` (variables, the optimizer, random generators: everything whose state
    the rest of the run depends on) and the step every `every` steps and at the end. At the
    start of a run, an existing checkpoint in `directory` is restored and the engine
    resumes after its step — only if `settings` (a JSON-able dict of everything that
    matters) equals the one recorded there; otherwise `runstate.SettingsMismatchError`
    names the differences (pass `fresh=True` to start again).

    `strategy`: with a multi-worker strategy, every worker restores the shared latest
    checkpoint and saves, but only the chief writes to `directory`
    (`tfrestore.distribute.SharedCheckpoints`).
    """

    def __init__(self, directory, objects, every=100, settings=None, fresh=False,
                 max_to_keep=2, strategy=None):
        self.strategy = strategy
        self.directory, self.every, self.fresh = directory, int(every), fresh
        self.settings = settings or {}
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="engine_step")
        self.ckpt = tf.train.Checkpoint(step=self.step, **objects)
        self.max_to_keep = max_to_keep
        self.resumed_from = None

    def on_run_begin(self, engine):
        from tfrestore import runstate
        from tfrestore.distribute import SharedCheckpoints, is_chief
        chief = is_chief(self.strategy)
        runstate.check_settings(self.directory, self.settings, fresh=self.fresh, write=chief)
        self.manager = SharedCheckpoints(self.ckpt, self.directory, self.strategy,
                                         max_to_keep=self.max_to_keep)
        if self.manager.restore():
            engine.start_step = int(self.step.numpy())
            self.resumed_from = engine.start_step

    def on_step_end(self, engine, logs):
        if logs.step % self.every == 0 or logs.step == engine.steps or engine.stop_reason:
            self.step.assign(logs.step)
            self.manager.save(checkpoint_number=logs.step)
