"""Learned priors: patch priors (ICA, Fields of Experts, separable FoE) trained by score
matching, and denoising-autoencoder priors (`DenoisingAutoencoder`, `DAEPrior`).

`PatchPrior(x)` maps images or feature maps [B, H, W, C] in their natural scale to
energies [B] (negative log-probability up to a constant, summed over patch positions).
`load_prior(path)` returns either kind with the same interface ([B, H, W, C] -> [B],
`channels`, `metadata`, `patch_size`, `describe()`).
"""
from tfrestore.priors.dae import DAEPrior, DenoisingAutoencoder
from tfrestore.priors.experts import EXPERTS, LOGISTIC, STUDENT_T, Expert, get_expert
from tfrestore.priors.layers import LAYOUTS, PatchPrior, PriorMismatchError
from tfrestore.priors.loading import load_prior
from tfrestore.priors.score_matching import (field_score_matching_loss, score,
                                             score_matching_loss, score_matching_pairwise)
from tfrestore.priors.whitening import Whitening, fit_whitening, identity_whitening

__all__ = ["DAEPrior", "DenoisingAutoencoder", "EXPERTS", "LOGISTIC", "STUDENT_T", "Expert",
           "get_expert", "LAYOUTS", "PatchPrior", "PriorMismatchError", "load_prior", "score",
           "score_matching_loss", "field_score_matching_loss", "score_matching_pairwise",
           "Whitening", "fit_whitening", "identity_whitening"]
