"""Plotting: reconstruction figures and grids, prior filter grids, covariance heatmaps,
training curves from TensorBoard event files. Everything is written atomically as PNG."""
from tfrestore.plotting.figures import (difference_images, filter_grid, save_figure,
                                        save_reconstruction_figure, save_reconstruction_grid,
                                        symmetric_rescale, to_unit_rgb)

__all__ = ["difference_images", "filter_grid", "save_figure", "save_reconstruction_figure",
           "save_reconstruction_grid", "symmetric_rescale", "to_unit_rgb"]
