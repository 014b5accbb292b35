"""A titled grid of images (actmax targets, samples, caricatures)."""
import numpy as np

__all__ = ["save_image_grid"]


def save_image_grid(path, images, titles, ncols=5, title=None, row_labels=None):
    """Images [N, H, W, 3] (RGB 0-255) in rows of `ncols`, each with its title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfrestore.plotting.figures import save_figure
    images = np.clip(np.asarray(images, np.float32), 0, 255) / 255.0
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 2.5 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k < n:
            ax.imshow(images[k], interpolation="nearest")
            ax.set_title(str(titles[k]), fontsize=7)
        else:
            ax.axis("off")
        if row_labels and k % ncols == 0 and k // ncols < len(row_labels):
            ax.set_ylabel(row_labels[k // ncols], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
