"""Pre-image optimisation with handcrafted priors (Mahendran & Vedaldi 2015, 2016).

Three orthogonal parts (lucid / xplique style): objective terms (`objectives`),
transforms and parameterisation (`transforms`), schedules (`schedules`); the loop
(`optimize`) combines them with the settings of a preset (`presets`); `outputs`
writes a run's folder for any method.
"""
from tfrestore.inversion.objectives import (IMAGE, AlphaNorm, FeatureLoss, Objective,
                                           PriorTerm, RangePrior, Term, TotalVariation)
from tfrestore.inversion.optimize import (InversionResult, PreimageOptimizer,
                                         build_objective, invert)
from tfrestore.inversion.presets import (PRESETS, InversionSettings, get_settings,
                                        image_mean)
from tfrestore.inversion.schedules import PiecewiseConstant
from tfrestore.inversion.transforms import jitter, project_bound

__all__ = ["Term", "FeatureLoss", "AlphaNorm", "RangePrior", "TotalVariation", "PriorTerm",
           "Objective", "IMAGE", "build_objective", "PreimageOptimizer", "InversionResult",
           "invert", "InversionSettings", "PRESETS", "get_settings", "image_mean",
           "PiecewiseConstant", "jitter", "project_bound", "write_run"]


def __getattr__(name):  # outputs imports plotting (matplotlib): load it only when used
    if name == "write_run":
        from tfrestore.inversion.outputs import write_run
        return write_run
    raise AttributeError(name)
