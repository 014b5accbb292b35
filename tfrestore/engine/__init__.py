"""One optimisation engine for every image-space optimisation of the package.

* `loop`: `Engine` — the compiled step over a batch (any keras optimizer, optional
  Langevin noise and projection) and the Python loop that calls callbacks.
* `callbacks`: progress with time left, TensorBoard, history/curves, checkpoint and
  resume, stopping once converged, NaN/inf guard, optimizer-state resets.
* `schedules`: Keras learning-rate schedules over the fraction of the run.
* `parameterizations`: how an image is represented by variables (pixels, M&V mean +
  sigma u with a bound, decorrelated Fourier, Laplacian pyramid).
* `transforms`: random transforms the network sees (jitter, scale).
"""
from tfrestore.engine.callbacks import (Callback, Checkpoint, ConvergenceStop, CurveRecorder,
                                        History, NanGuard, OptimizerReset, ProgressBar,
                                        TensorBoard)
from tfrestore.engine.loop import (Engine, EngineResult, NonFiniteLossError, StepLogs,
                                   make_optimizer, reset_optimizer_state)
from tfrestore.engine.parameterizations import (PARAMETERIZATIONS, Fourier, LaplacianPyramid,
                                                Parameterization, Pixels,
                                                make_parameterization)
from tfrestore.engine.schedules import (SCHEDULES, PiecewiseConstantFraction, make_schedule,
                                        step_boundaries)
from tfrestore.engine.transforms import Jitter, RandomScale, apply_transforms

__all__ = ["Engine", "EngineResult", "StepLogs", "NonFiniteLossError", "make_optimizer",
           "reset_optimizer_state", "Callback", "ProgressBar", "TensorBoard", "History",
           "CurveRecorder", "Checkpoint", "ConvergenceStop", "NanGuard", "OptimizerReset",
           "SCHEDULES", "PiecewiseConstantFraction", "make_schedule", "step_boundaries",
           "PARAMETERIZATIONS", "Parameterization", "Pixels", "Fourier", "LaplacianPyramid",
           "make_parameterization", "Jitter", "RandomScale", "apply_transforms"]
