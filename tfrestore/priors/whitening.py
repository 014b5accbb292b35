"""PCA and ZCA whitening of patch vectors, with dimensionality reduction.

Fitted on (normalised, optionally centred) training patches X [n, D]:
  C = cov(X) = U Λ Uᵀ,  keep the d largest eigenpairs U_d, Λ_d.
  PCA:  z = Λ_d^{-1/2} U_dᵀ (x − μ)            (d numbers)
  ZCA:  z = U_d Λ_d^{-1/2} U_dᵀ (x − μ)        (D numbers in a d-dimensional subspace)

ZCA is PCA followed by the fixed orthogonal map U_d. Score matching with unit-norm filters
and an isotropic random initialisation is invariant to an orthogonal change of the
whitened coordinates, so the priors always *train* in the d PCA coordinates (`coords`);
with kind="zca" only `transform` (and filters shown in whitened space, `to_whitened_space`)
use the ZCA form. This also keeps the score-matching density proper: a D-dimensional model
on data confined to a d-dimensional subspace would have the wrong tr(∇ψ) term.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["Whitening", "fit_whitening", "identity_whitening"]


@dataclass
class Whitening:
    mean: np.ndarray          # [D]
    basis: np.ndarray         # U_d [D, d] (orthonormal columns)
    eigenvalues: np.ndarray   # Λ_d [d], descending
    kind: str = "pca"         # "pca", "zca" or "none"

    @property
    def input_dim(self):
        return self.basis.shape[0]

    @property
    def dim(self):
        """Dimension d of the coordinates the prior trains in."""
        return self.basis.shape[1]

    @property
    def matrix(self):
        """F [D, d] with coords(x) = (x − μ) F: whitening folded into one matrix."""
        return (self.basis / np.sqrt(self.eigenvalues)[None, :]).astype(np.float32)

    def coords(self, x):
        """d whitened coordinates (the PCA form) of patch vectors x [..., D]."""
        return ((np.asarray(x, np.float64) - self.mean) @ self.matrix).astype(np.float32)

    def transform(self, x):
        """Whitened vectors in this whitening's own form (PCA: d numbers, ZCA: D numbers)."""
        z = self.coords(x)
        return z @ self.basis.T.astype(np.float32) if self.kind == "zca" else z

    def to_whitened_space(self, w):
        """Filters [d, N] in training coordinates -> the form of `transform` (ZCA: [D, N])."""
        return self.basis.astype(np.float32) @ w if self.kind == "zca" else w

    def explained_variance(self, total):
        return float(self.eigenvalues.sum() / total)


def identity_whitening(dim, mean=None):
    """No whitening: coordinates are the patch vectors themselves (minus `mean`)."""
    mean = np.zeros(dim, np.float32) if mean is None else np.asarray(mean, np.float32)
    return Whitening(mean, np.eye(dim, dtype=np.float32), np.ones(dim, np.float32), "none")


def fit_whitening(x, n_components=None, kind="pca", rel_eps=1e-6):
    """Fit PCA/ZCA whitening to patch vectors.

    Args:
      x: [n, D] training patch vectors (already normalised).
      n_components: d, the number of leading principal directions kept (default: all
        directions whose variance exceeds `rel_eps` times the largest, i.e. the rank;
        centred patches lose the mean direction, so 8x8x3 gives 191).
      kind: "pca", "zca" or "none" (identity, no reduction).
      rel_eps: relative eigenvalue below which a direction counts as empty.
    Raises:
      ValueError: for too few samples, an unknown kind, or more components than the
        data's rank (whitening an empty direction would divide by ~0).
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"fit_whitening expects patch vectors [n, D], got shape {x.shape}.")
    n, dim = x.shape
    kind = kind.lower()
    if kind not in ("pca", "zca", "none"):
        raise ValueError(f"Unknown whitening '{kind}': use pca, zca or none.")
    if kind == "none":
        return identity_whitening(dim, x.mean(0))
    if n < 2:
        raise ValueError("fit_whitening needs at least 2 patches.")
    mean = x.mean(0)
    cov = np.cov(x - mean, rowvar=False).reshape(dim, dim)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    rank = int(np.sum(evals > rel_eps * max(evals[0], 1e-30)))
    if n_components is None:
        n_components = rank
    if not 1 <= n_components <= rank:
        raise ValueError(f"Cannot whiten to {n_components} dimensions: the patches span only "
                         f"{rank} of {dim} (n={n}); use --whiten_dims <= {rank} or more patches.")
    # Fix each eigenvector's sign (largest entry positive) so that fits are reproducible.
    signs = np.sign(evecs[np.argmax(np.abs(evecs), axis=0), np.arange(dim)])
    evecs = evecs * np.where(signs == 0, 1, signs)
    return Whitening(mean.astype(np.float32), evecs[:, :n_components].astype(np.float32),
                     evals[:n_components].astype(np.float32), kind)
