"""Figures of feature-map statistics: covariance heatmaps (seed Fig. 4), Gram matrices,
activation histograms and sparsity."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tfrestore.plotting.figures import save_figure  # noqa: E402

__all__ = ["covariance_heatmap", "draw_heatmap", "save_stats_figures"]


def draw_heatmap(ax, mat, title=None, symmetric=True, cmap=None, colorbar=True):
    """Heatmap on `ax`; symmetric: diverging colours centred at 0 (robust 99.5% scale)."""
    mat = np.asarray(mat, np.float64)
    if symmetric:
        m = float(np.percentile(np.abs(mat), 99.5)) or float(np.abs(mat).max()) or 1.0
        im = ax.imshow(mat, cmap=cmap or "RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
    else:
        im = ax.imshow(mat, cmap=cmap or "viridis", interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def covariance_heatmap(path, matrices, titles=None, suptitle=None, symmetric=True):
    """Row of heatmaps (e.g. covariance and its inverse) written to `path`."""
    if isinstance(matrices, np.ndarray) and matrices.ndim == 2:
        matrices = [matrices]
    titles = titles or [None] * len(matrices)
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 4), squeeze=False)
    for ax, m, t in zip(axes[0], matrices, titles):
        draw_heatmap(ax, m, t, symmetric=symmetric)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path)


def _masked(counts):
    """Normalised histogram with empty bins as NaN (gaps, not a fake floor, on a log axis)."""
    counts = np.asarray(counts, np.float64)
    freq = counts / max(counts.sum(), 1.0)
    return np.where(counts > 0, freq, np.nan)


def _name(stats):
    return stats.get("layer", "layer")


def save_stats_figures(stats, prefix, n_channels=8):
    """`<prefix>_covariance.png`, `_gram.png`, `_sparsity.png` from `featmap_stats` output."""
    name = _name(stats)
    H, W, C = (int(v) for v in stats["shape"])
    _, _, h, w = (int(v) for v in stats["crop_box"])
    crop = "" if (h, w) == (H, W) else f" (centre {h}x{w})"
    paths = []
    # --- covariance, inverse and their per-offset means (seed Fig. 4)
    fig, axes = plt.subplots(2, 2, figsize=(9, 8.4))
    draw_heatmap(axes[0, 0], stats["covariance"],
                 f"mean spatial covariance\nToeplitz residual {stats['toeplitz_residual']:.3f} "
                 f"(shuffled {stats['toeplitz_residual_shuffled']:.3f})")
    draw_heatmap(axes[0, 1], stats["inverse"],
                 f"inverse (ridge eps={float(stats['inverse_eps']):g})\nToeplitz residual "
                 f"{stats['toeplitz_residual_inverse']:.3f} "
                 f"(shuffled {stats['toeplitz_residual_inverse_shuffled']:.3f})")
    draw_heatmap(axes[1, 0], stats["autocovariance"], "covariance by offset (dy, dx)")
    draw_heatmap(axes[1, 1], stats["autocovariance_inverse"], "inverse by offset (dy, dx)")
    fig.suptitle(f"{name} {H}x{W}x{C}{crop}, {int(stats['n_images'])} images, interior margin "
                 f"{int(stats['margin'])}", fontsize=10)
    paths.append(save_figure(fig, prefix + "_covariance.png"))
    # --- Gram matrix and the mean map
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    gram = np.asarray(stats["gram"], np.float64)
    d = np.sqrt(np.maximum(np.diag(gram), 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(np.outer(d, d) > 0, gram / np.outer(d, d), 0.0)
    # the raw Gram is dominated by a few loud channels; the normalised one shows structure
    draw_heatmap(axes[0], cosine, f"mean Gram matrix ({C}x{C}), normalised\n"
                 "G_cd / sqrt(G_cc G_dd)", symmetric=True)
    draw_heatmap(axes[1], stats["mean_map"], "mean activation map (channel average)",
                 symmetric=False)
    fig.suptitle(name, fontsize=10)
    paths.append(save_figure(fig, prefix + "_gram.png"))
    # --- sparsity
    edges = np.asarray(stats["hist_edges"])
    hist = np.asarray(stats["histograms"], np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    total = hist.sum(0)
    axes[0].semilogy(centres, _masked(total), "k.-", ms=2)
    axes[0].set_title(f"all channels: zeros {float(stats['fraction_zeros']):.3f}, "
                      f"Gini {float(stats['gini_mean']):.3f}", fontsize=9)
    axes[0].set_xlabel("activation")
    axes[0].set_ylabel("frequency")
    top = np.argsort(-np.asarray(stats["channel_var"]))[:n_channels]
    for c in top:
        axes[1].semilogy(centres, _masked(hist[c]), lw=0.8, label=f"ch {c}")
    axes[1].set_title(f"{len(top)} highest-variance channels", fontsize=9)
    axes[1].legend(fontsize=6)
    axes[1].set_xlabel("activation")
    order = np.argsort(np.asarray(stats["channel_fraction_zeros"]))
    axes[2].plot(np.asarray(stats["channel_fraction_zeros"])[order], label="fraction of zeros")
    axes[2].plot(np.asarray(stats["channel_gini"])[order], label="Gini index")
    axes[2].set_xlabel("channel (sorted by fraction of zeros)")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].legend(fontsize=7)
    axes[2].set_title("per channel", fontsize=9)
    fig.suptitle(name, fontsize=10)
    paths.append(save_figure(fig, prefix + "_sparsity.png"))
    return paths
