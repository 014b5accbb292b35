"""Figures for reconstructions and learned priors (matplotlib, Agg backend, atomic PNGs).

Difference pictures follow the seed (§4.2, REFERENCE §5): the signed per-channel
difference is mapped to [0, 1] with grey 0.5 meaning "no error", symmetrically scaled by
the largest absolute difference, and the absolute difference is mapped to [0, 1] with
black meaning "no error". Figure order: image | reconstruction | colour diff | abs diff.
"""
import io
import textwrap

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tfrestore.io import atomic_write  # noqa: E402

__all__ = ["difference_images", "save_figure", "save_reconstruction_figure",
           "save_reconstruction_grid", "filter_grid", "symmetric_rescale", "to_unit_rgb"]


def save_figure(fig, path, dpi=100):
    """Render `fig` to PNG in memory, write it atomically to `path`, close the figure."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def _check_rgb(name, arr):
    arr = np.asarray(arr, np.float64)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be an image [H, W, 3] (RGB 0-255), got shape {arr.shape}.")
    return arr


def to_unit_rgb(image):
    """RGB 0-255 -> float in [0, 1] for imshow (clipped; grey images become RGB)."""
    arr = np.clip(np.asarray(image, np.float64) / 255.0, 0.0, 1.0)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, -1)
    return arr


def symmetric_rescale(arr, scale=None):
    """Map `arr` to [0, 1] with 0 -> 0.5, scaled by max |arr| (or `scale`).

    An all-zero input gives 0.5 everywhere (no division by zero).
    """
    arr = np.asarray(arr, np.float64)
    m = float(np.max(np.abs(arr))) if scale is None else float(scale)
    if m <= 0:
        return np.full(arr.shape, 0.5)
    return 0.5 + 0.5 * arr / m


def difference_images(image, recon):
    """Difference pictures of a reconstruction (seed §4.2).

    Args:
      image, recon: [H, W, 3] RGB 0-255.
    Returns:
      (colour_diff, abs_diff), both [H, W, 3] in [0, 1]:
      colour_diff = 0.5 + 0.5 * (image - recon) / max|image - recon| (grey = no error;
        as the seed defines it: where the reconstruction has less blue, the picture is
        blue);
      abs_diff = |image - recon| / max|image - recon| (black = no error).
    """
    image, recon = _check_rgb("image", image), _check_rgb("recon", recon)
    if image.shape != recon.shape:
        raise ValueError(f"image {image.shape} and recon {recon.shape} differ in shape.")
    diff = image - recon
    m = float(np.max(np.abs(diff)))
    colour = symmetric_rescale(diff, m)
    absd = np.abs(diff) / m if m > 0 else np.zeros_like(diff)
    return colour, absd


def _title(title, extra):
    parts = [title] if title else []
    if extra:
        parts.append("  ".join(f"{k}={v:.4g}" if isinstance(v, (float, np.floating)) else
                               f"{k}={v}" for k, v in extra.items()))
    return "\n".join(parts) if parts else None


def save_reconstruction_figure(path, image, recon, title=None, extra=None):
    """One row: image | reconstruction | colour difference | absolute difference.

    Args:
      path: output PNG path (written atomically).
      image, recon: [H, W, 3] RGB 0-255.
      title: optional figure title.
      extra: optional dict name -> value (e.g. {"PSNR": 21.3, "SSIM": 0.61}) shown in the title.
    """
    colour, absd = difference_images(image, recon)
    panels = [to_unit_rgb(image), to_unit_rgb(recon), colour, absd]
    names = ["image", "reconstruction", "colour difference", "absolute difference"]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, p, n in zip(axes, panels, names):
        ax.imshow(p, interpolation="nearest")
        ax.set_title(n, fontsize=9)
        ax.axis("off")
    t = _title(title, extra)
    if t:
        fig.suptitle(t, fontsize=10)
    return save_figure(fig, path)


def save_reconstruction_grid(path, images, rows, col_titles, diff=False, title=None):
    """Method comparison grid: one row per method, one column per layer (or setting).

    Args:
      path: output PNG path.
      images: the original image (shared by every column, [H, W, 3]) or a list of one
        original per column; drawn as the first row.
      rows: dict method name -> list of reconstructions [H, W, 3] RGB 0-255 (one per
        column; None leaves the cell empty).
      col_titles: list of column titles (e.g. layer names).
      diff: if True, draw the absolute difference picture under each reconstruction.
    """
    ncol = len(col_titles)
    if isinstance(images, (list, tuple)) or np.asarray(images).ndim == 4:
        originals = list(images)
    else:
        originals = [images] * ncol
    if len(originals) != ncol:
        raise ValueError(f"{len(originals)} originals for {ncol} columns.")
    for name, recs in rows.items():
        if len(recs) != ncol:
            raise ValueError(f"Method '{name}' has {len(recs)} reconstructions, expected "
                             f"{ncol} (one per column title).")
    names = ["image"]
    cells = [originals]
    for name, recs in rows.items():
        names.append(name)
        cells.append(list(recs))
        if diff:
            names.append(f"{name} |diff|")
            cells.append([None if r is None else difference_images(o, r)[1] * 255.0
                          for o, r in zip(originals, recs)])
    fig, axes = plt.subplots(len(cells), ncol, figsize=(2.2 * ncol + 1, 2.2 * len(cells)),
                             squeeze=False)
    for i, (rname, row) in enumerate(zip(names, cells)):
        for j, img in enumerate(row):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if img is not None:
                ax.imshow(to_unit_rgb(img), interpolation="nearest")
            else:
                # Keep the axis (its y-label names the row) but draw nothing in it.
                for spine in ax.spines.values():
                    spine.set_visible(False)
            if i == 0:
                ax.set_title(str(col_titles[j]), fontsize=9)
            if j == 0:   # long method names wrap instead of running into the next row
                ax.set_ylabel(textwrap.fill(str(rname), 22), fontsize=9)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def filter_grid(path, filters, weights=None, max_filters=64, ncols=None, title=None):
    """Prior filters in image space, sorted by descending expert weight (seed Fig. 8).

    Args:
      path: output PNG path.
      filters: [N, ph, pw, C] (C = 1 or 3 drawn as grey / RGB; other C show channel 0..2
        mean as grey), e.g. whitening-folded expert filters.
      weights: optional [N] expert weights alpha; filters are sorted by it, largest first.
      max_filters: draw at most this many.
    Each filter is rescaled symmetrically to [0, 1] on its own (0 -> grey 0.5).
    Returns the order (indices into `filters`) that was drawn.
    """
    filters = np.asarray(filters, np.float64)
    if filters.ndim == 3:
        filters = filters[..., None]
    if filters.ndim != 4:
        raise ValueError(f"filters must be [N, ph, pw, C], got shape {filters.shape}.")
    n = len(filters)
    if weights is not None:
        weights = np.asarray(weights, np.float64).reshape(-1)
        if len(weights) != n:
            raise ValueError(f"{len(weights)} weights for {n} filters.")
        order = np.argsort(-weights, kind="stable")
    else:
        order = np.arange(n)
    order = order[:max_filters]
    k = len(order)
    ncols = ncols or int(np.ceil(np.sqrt(k)))
    nrows = int(np.ceil(k / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows + 0.4),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, idx in zip(axes.ravel(), order):
        f = filters[idx]
        if f.shape[-1] not in (1, 3):
            f = f.mean(-1, keepdims=True)
        img = symmetric_rescale(f)
        if img.shape[-1] == 1:
            ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        if weights is not None:
            ax.set_title(f"{weights[idx]:.2g}", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
    return order
