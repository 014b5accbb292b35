"""Load any saved prior by what the file holds: a `PatchPrior` as it is, a denoising
autoencoder wrapped as the `DAEPrior` energy. (Its own module: the loader needs both kinds,
and neither kind's module needs the other.)"""
from tfrestore.priors.dae import DAEPrior, DenoisingAutoencoder
from tfrestore.priors.layers import PatchPrior

__all__ = ["load_prior"]


def load_prior(path):
    """Load a saved `.keras` prior: a `PatchPrior`, or a denoising autoencoder wrapped as a
    `DAEPrior` (energy readout ‖r(x) − x‖², gradient −(r(x) − x)/σ²); clear error otherwise."""
    from tfrestore.io import read_keras
    prior = read_keras(path, "Prior")
    if isinstance(prior, DenoisingAutoencoder):
        return DAEPrior(prior, path=path)
    if not isinstance(prior, PatchPrior):
        raise ValueError(f"'{path}' holds a {type(prior).__name__}, not a learned prior "
                         f"(PatchPrior from bin/train_prior.py or DenoisingAutoencoder from "
                         f"bin/train_dae.py).")
    return prior
