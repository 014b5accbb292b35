"""Pre-image optimisation with handcrafted priors (Mahendran & Vedaldi 2015, 2016).

Objective terms (`objectives`) and the settings of the presets (`presets`) are combined
by `optimize` with the engine (`tfrestore.engine`: loop, parameterizations, transforms,
schedules, callbacks); `outputs` writes a run's folder for any method.
"""
from tfrestore.inversion.objectives import (IMAGE, ActivationTerm, AlphaNorm, FeatureLoss, Objective,
                                           PriorTerm, RangePrior, Term, TotalVariation)
from tfrestore.inversion.optimize import (ImageOptimizer, InversionResult,
                                         PreimageOptimizer, build_objective, check_images,
                                         invert)
from tfrestore.inversion.presets import (PRESETS, InversionSettings, get_settings,
                                        image_mean)

__all__ = ["Term", "ActivationTerm", "FeatureLoss", "AlphaNorm", "RangePrior", "TotalVariation", "PriorTerm",
           "Objective", "IMAGE", "build_objective", "PreimageOptimizer", "ImageOptimizer", "InversionResult", "check_images",
           "invert", "InversionSettings", "PRESETS", "get_settings", "image_mean",
           "write_run"]


def __getattr__(name):  # outputs imports plotting (matplotlib): load it only when used
    if name == "write_run":
        from tfrestore.inversion.outputs import write_run
        return write_run
    raise AttributeError(name)
