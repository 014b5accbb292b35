"""How stationary is a spatial covariance? Projection onto 2-D block-Toeplitz matrices.

A feature map of size H x W flattened row-major gives an (H*W) x (H*W) spatial covariance
S[p, q], p = (i, j), q = (k, l). The map is (wide-sense) stationary when S[p, q] depends
only on the offset (k - i, l - j): S is then block-Toeplitz with Toeplitz blocks.

Toeplitz residual (0 = perfectly stationary):

    r(S) = || S_I - T(S_I) ||_F / || S_I ||_F

where S_I is S restricted to the *interior* positions (at least `margin` away from every
border, on both the row and the column index) and T is the orthogonal (Frobenius)
projection onto block-Toeplitz matrices over the interior grid, i.e. every entry replaced by
the mean of all entries with the same offset. Borders are left out because padding makes
statistics there different by construction, and because the inverse of a Toeplitz
matrix is Toeplitz only away from its borders.
"""
import numpy as np

__all__ = ["interior_indices", "offset_index", "toeplitz_projection", "toeplitz_residual",
           "autocovariance", "shuffled_baseline", "regularized_inverse"]


def interior_indices(height, width, margin):
    """Flat (row-major) indices of positions at least `margin` from every border."""
    if margin < 0 or 2 * margin >= min(height, width):
        raise ValueError(f"margin {margin} leaves no interior in a {height}x{width} map "
                         f"(need 0 <= margin < {min(height, width) / 2:g}).")
    ii, jj = np.meshgrid(np.arange(margin, height - margin), np.arange(margin, width - margin),
                         indexing="ij")
    return (ii * width + jj).ravel(), (height - 2 * margin, width - 2 * margin)


def offset_index(h, w):
    """[h*w, h*w] integer id of the offset (dy, dx) between positions of an h x w grid."""
    ii, jj = np.divmod(np.arange(h * w), w)
    dy = ii[None, :] - ii[:, None] + (h - 1)
    dx = jj[None, :] - jj[:, None] + (w - 1)
    return dy * (2 * w - 1) + dx


def _check_square(cov, height, width):
    cov = np.asarray(cov, np.float64)
    if cov.shape != (height * width, height * width):
        raise ValueError(f"covariance of shape {cov.shape} does not match a {height}x{width} "
                         f"map (expected {(height * width,) * 2}).")
    return cov


def toeplitz_projection(cov, height, width, margin=0):
    """(interior covariance S_I, its block-Toeplitz projection T(S_I), interior grid (h, w))."""
    cov = _check_square(cov, height, width)
    idx, (h, w) = interior_indices(height, width, margin)
    sub = cov[np.ix_(idx, idx)]
    off = offset_index(h, w)
    n_off = (2 * h - 1) * (2 * w - 1)
    sums = np.bincount(off.ravel(), weights=sub.ravel(), minlength=n_off)
    counts = np.bincount(off.ravel(), minlength=n_off)
    means = sums / np.maximum(counts, 1)
    return sub, means[off], (h, w)


def toeplitz_residual(cov, height, width, margin=0):
    """Relative Frobenius distance of the interior covariance from block-Toeplitz (0 = perfect)."""
    sub, proj, _ = toeplitz_projection(cov, height, width, margin)
    norm = np.linalg.norm(sub)
    if norm == 0:
        return 0.0
    return float(np.linalg.norm(sub - proj) / norm)


def autocovariance(cov, height, width, margin=0):
    """Mean covariance per offset over the interior: [2h-1, 2w-1], centre = offset (0, 0)."""
    sub, _, (h, w) = toeplitz_projection(cov, height, width, margin)
    off = offset_index(h, w)
    n_off = (2 * h - 1) * (2 * w - 1)
    sums = np.bincount(off.ravel(), weights=sub.ravel(), minlength=n_off)
    counts = np.bincount(off.ravel(), minlength=n_off)
    return (sums / np.maximum(counts, 1)).reshape(2 * h - 1, 2 * w - 1)


def shuffled_baseline(cov, height, width, margin=0, seed=0):
    """Toeplitz residual after a random relabelling of positions (rows and columns alike).

    This destroys any spatial structure but keeps the spectrum, so it says what residual
    a covariance with *no* spatial arrangement would get at this size: compare
    `toeplitz_residual` with it, not only with 0.
    """
    cov = _check_square(cov, height, width)
    perm = np.random.default_rng(seed).permutation(height * width)
    return toeplitz_residual(cov[np.ix_(perm, perm)], height, width, margin)


def regularized_inverse(cov, eps=1e-3):
    """(S + lam I)^-1 with lam = eps * trace(S) / n (Tikhonov; finite for singular S).

    Feature-map covariances are often singular (dead ReLU positions, fewer samples than
    positions); the ridge is relative to the mean variance so `eps` is scale-free.
    Returns (inverse, lam).
    """
    cov = np.asarray(cov, np.float64)
    n = cov.shape[0]
    lam = eps * float(np.trace(cov)) / n
    if lam <= 0:
        lam = eps
    inv = np.linalg.inv(cov + lam * np.eye(n))
    return 0.5 * (inv + inv.T), lam
