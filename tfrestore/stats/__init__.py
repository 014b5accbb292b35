"""Feature-map statistics: mean spatial covariance and its inverse with a stationarity
(Toeplitz) measure, Gram matrices and sparsity, streamed over image sets (seed §4.1); the
colours a layer barely sees (`dc_colour_response`)."""
from tfrestore.stats.accumulator import FeatureMapAccumulator, centre_crop_box
from tfrestore.stats.colour import dc_colour_response
from tfrestore.stats.featmaps import (analyse, default_margin, featmap_stats,
                                      iter_image_batches, save_stats, summary)
from tfrestore.stats.sparsity import fraction_zeros, gini_index, gini_index_tf
from tfrestore.stats.toeplitz import (autocovariance, interior_indices, offset_index,
                                      regularized_inverse, shuffled_baseline,
                                      toeplitz_projection, toeplitz_residual)

__all__ = ["FeatureMapAccumulator", "centre_crop_box", "dc_colour_response", "analyse",
           "default_margin", "featmap_stats", "iter_image_batches", "save_stats", "summary",
           "fraction_zeros", "gini_index", "gini_index_tf", "autocovariance",
           "interior_indices", "offset_index", "regularized_inverse", "shuffled_baseline",
           "toeplitz_projection", "toeplitz_residual"]
