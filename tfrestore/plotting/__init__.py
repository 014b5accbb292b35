"""Plotting: reconstruction figures and grids, prior filter grids, covariance heatmaps,
training curves from TensorBoard event files. Everything is written atomically as PNG."""
from tfrestore.plotting.curves import (event_files, read_scalars, save_training_curves,
                                       save_validation_curves, smooth)
from tfrestore.plotting.figures import (difference_images, filter_grid, save_figure,
                                        save_reconstruction_figure, save_reconstruction_grid,
                                        symmetric_rescale, to_unit_rgb)
from tfrestore.plotting.stats_figures import (covariance_heatmap, draw_heatmap,
                                              save_stats_figures)

__all__ = ["difference_images", "filter_grid", "save_figure", "save_reconstruction_figure",
           "save_reconstruction_grid", "symmetric_rescale", "to_unit_rgb", "event_files",
           "read_scalars", "save_training_curves", "save_validation_curves", "smooth",
           "covariance_heatmap", "draw_heatmap", "save_stats_figures"]
