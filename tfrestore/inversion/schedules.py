"""Piecewise-constant schedules whose boundaries are fractions of the run length.

Fractions (rather than step numbers) keep a preset's shape when the step count is
changed (`--steps`, $TFRESTORE_MAX_STEPS): M&V 2016's lr drops at 1000 and 2000 of
3500 steps become boundaries (2/7, 4/7).
"""
import bisect

__all__ = ["PiecewiseConstant", "step_boundaries"]


def step_boundaries(fractions, total_steps):
    """Fractions of the run -> step numbers (a fraction f switches at round(f * steps))."""
    return [int(round(f * total_steps)) for f in fractions]


class PiecewiseConstant:
    """values[i] for steps in [b_{i-1}, b_i); `boundaries` are fractions of `total_steps`.

    Args:
      boundaries: increasing fractions in (0, 1].
      values: one more value than boundaries.
    """

    def __init__(self, boundaries, values):
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
        self.boundaries, self.values = boundaries, values

    def __call__(self, step, total_steps):
        """Value at 0-based `step` of a run of `total_steps`."""
        idx = bisect.bisect_right(step_boundaries(self.boundaries, total_steps), step)
        return self.values[idx]

    def describe(self):
        return {"boundaries": self.boundaries, "values": self.values}
