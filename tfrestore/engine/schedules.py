"""Learning-rate schedules as Keras schedules over the *fraction* of a run.

Boundaries given as fractions (rather than step numbers) keep a preset's shape when the
step count changes (`--steps`, $TFRESTORE_MAX_STEPS): M&V 2016's drops at 1000 and 2000 of
3500 steps are the fractions (2/7, 4/7). A fraction f switches at step round(f * steps)
(0-based: steps [0, b) take the first value).
"""
import keras

__all__ = ["step_boundaries", "PiecewiseConstantFraction", "make_schedule", "SCHEDULES"]

SCHEDULES = ("piecewise", "constant", "cosine", "warmup_cosine")


def step_boundaries(fractions, total_steps):
    """Fractions of the run -> step numbers (a fraction f switches at round(f * steps))."""
    return [int(round(float(f) * total_steps)) for f in fractions]


@keras.saving.register_keras_serializable("tfrestore")
class PiecewiseConstantFraction(keras.optimizers.schedules.LearningRateSchedule):
    """values[i] for 0-based steps in [b_{i-1}, b_i), b = round(fractions * total_steps).

    The optimizer calls a schedule with its iteration count, i.e. the 0-based index of the
    update being made, so this is the learning rate of step `step`.
    """

    def __init__(self, boundaries, values, total_steps):
        boundaries, values = [float(b) for b in boundaries], [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"A piecewise-constant schedule needs one more value than "
                             f"boundaries, got {len(boundaries)} boundaries and "
                             f"{len(values)} values.")
        if any(b2 < b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"Schedule boundaries must increase, got {boundaries}.")
        if any(not 0.0 <= b <= 1.0 for b in boundaries):
            raise ValueError(f"Schedule boundaries are fractions of the run in [0, 1], "
                             f"got {boundaries}.")
        self.boundaries, self.values, self.total_steps = boundaries, values, int(total_steps)
        self.step_boundaries = step_boundaries(boundaries, self.total_steps)
        # Keras' PiecewiseConstantDecay takes values[0] for step <= b_0: shift by one.
        self._keras = keras.optimizers.schedules.PiecewiseConstantDecay(
            [b - 1 for b in self.step_boundaries], values) if boundaries else None

    def __call__(self, step):
        if self._keras is None:
            return keras.ops.convert_to_tensor(self.values[0], "float32")
        return self._keras(step)

    def value(self, step):
        """The learning rate of 0-based step `step`, as a Python float."""
        import bisect
        return self.values[bisect.bisect_right(self.step_boundaries, step)]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values,
                "total_steps": self.total_steps}


def make_schedule(kind, total_steps, values, boundaries=(), final_factor=0.01,
                  warmup_fraction=0.05):
    """A Keras schedule over a run of `total_steps`.

    Args:
      kind: "piecewise" (`values`, `boundaries` as fractions), "constant" (values[0]),
        "cosine" (values[0] decayed to values[0]*final_factor by the end), or
        "warmup_cosine" (linear warm-up over `warmup_fraction` of the run, then cosine).
    """
    values = [float(v) for v in values]
    if kind == "piecewise":
        return PiecewiseConstantFraction(boundaries, values, total_steps)
    if kind == "constant":
        return PiecewiseConstantFraction([], values[:1], total_steps)
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(values[0], max(1, total_steps),
                                                      alpha=final_factor)
    if kind == "warmup_cosine":
        warm = max(1, int(round(warmup_fraction * total_steps)))
        return keras.optimizers.schedules.CosineDecay(
            values[0] * 0.1, max(1, total_steps - warm), alpha=final_factor,
            warmup_target=values[0], warmup_steps=warm)
    raise ValueError(f"Unknown learning-rate schedule '{kind}'; choose one of {SCHEDULES}.")


def schedule_change_steps(schedule):
    """Steps at which a piecewise schedule changes value (for optimizer-state resets)."""
    return list(getattr(schedule, "step_boundaries", []))
