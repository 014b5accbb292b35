"""Paired statistics for comparing two methods on the same images.

* `wilcoxon_signed_rank(a, b)`: two-sided p-value of the Wilcoxon signed-rank test of the
  per-image differences a - b (zero differences dropped; exact by enumerating all sign
  patterns for n <= 20, normal approximation with tie correction beyond).
* `bootstrap_ci(values)`: percentile bootstrap interval of the mean (seeded).
* `paired_summary(a, b)`: mean difference, its bootstrap interval, wins/ties/losses, p.
"""
import numpy as np

__all__ = ["wilcoxon_signed_rank", "bootstrap_ci", "paired_summary"]


def _ranks(x):
    """Average ranks (1-based) of x, ties sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    xs = x[order]
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def wilcoxon_signed_rank(a, b, exact_max=20):
    """(statistic W+ , two-sided p) of the signed-rank test on a - b."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 0.0, 1.0
    r = _ranks(np.abs(d))
    w_plus = float(r[d > 0].sum())
    total = r.sum()
    if n <= exact_max:
        # All 2^n sign patterns, equally likely under H0: the exact null distribution.
        signs = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
        w = signs @ r
        mean = total / 2.0
        p = float(np.mean(np.abs(w - mean) >= abs(w_plus - mean) - 1e-9))
        return w_plus, min(1.0, p)
    mean = n * (n + 1) / 4.0
    _, counts = np.unique(np.abs(d), return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24.0 - np.sum(counts ** 3 - counts) / 48.0
    z = (w_plus - mean) / np.sqrt(var)
    from math import erfc, sqrt
    return w_plus, float(erfc(abs(z) / sqrt(2.0)))


def bootstrap_ci(values, level=0.95, n_boot=10000, seed=0):
    """Percentile bootstrap interval (lo, hi) of the mean of `values`."""
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return float(v.mean()), float(v.mean())
    idx = np.random.default_rng(seed).integers(0, len(v), (n_boot, len(v)))
    means = v[idx].mean(1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def paired_summary(a, b, higher_is_better=True, seed=0):
    """Paired comparison of method a against b on the same images."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a - b
    better = d > 0 if higher_is_better else d < 0
    worse = d < 0 if higher_is_better else d > 0
    _, p = wilcoxon_signed_rank(a, b)
    lo, hi = bootstrap_ci(d, seed=seed)
    return {"mean_difference": float(d.mean()), "ci95": [lo, hi], "wins": int(better.sum()),
            "ties": int((d == 0).sum()), "losses": int(worse.sum()), "n": int(len(d)),
            "wilcoxon_p": p}
