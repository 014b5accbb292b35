"""Streaming statistics of feature maps [N, H, W, C]: memory independent of N.

Definitions (f_{n,c} in R^{P} is channel c of image n, flattened row-major over the
(optionally centre-cropped) h x w spatial grid, P = h*w):

* Mean spatial covariance (seed §4.1, REFERENCE §6), averaged over the C channels:

      S = 1/C sum_c 1/(N-1) sum_n (f_{n,c} - m_c)(f_{n,c} - m_c)^T,   m_c = 1/N sum_n f_{n,c}

  i.e. each channel is a random field with its own mean at every position; S is the
  average over channels of their (unbiased) P x P covariances. Needs N >= 2.
* Mean Gram matrix (C x C), uncentred and per position: G = 1/N sum_n F_n^T F_n / (H W),
  F_n the [H*W, C] matrix of image n (the full map, not the crop).
* Sparsity on the full map: fraction of zeros (|x| <= zero_tol) overall and per channel;
  Gini index of each image's whole map and of each (image, channel) map, averaged (see
  `tfrestore.stats.sparsity`); per-channel histograms with fixed bins.

Accumulation is in float64. Sums are taken around a shift (the first batch's mean) so
that large means do not cancel catastrophically in S = E[ff^T] - mm^T.
"""
import numpy as np
import tensorflow as tf

from tfrestore.stats.sparsity import gini_index_tf as _gini

__all__ = ["FeatureMapAccumulator", "centre_crop_box"]


def centre_crop_box(height, width, max_size):
    """(y0, x0, h, w) of the centred crop of at most max_size x max_size (None: no crop)."""
    h = height if not max_size else min(height, int(max_size))
    w = width if not max_size else min(width, int(max_size))
    return (height - h) // 2, (width - w) // 2, h, w


class FeatureMapAccumulator:
    """Accumulate feature-map statistics batch by batch; `result()` gives the arrays.

    Args:
      max_size: covariance over a centred crop of at most max_size x max_size positions
        (the covariance has (h*w)^2 entries; 32 -> 1024 x 1024). None: whole map.
      bins: number of histogram bins per channel.
      hist_range: (lo, hi) of the histograms; None: taken from the first batch
        ([0 or min - 25% span, max + 25% span]). Values outside land in the edge bins and
        are counted in `hist_clipped`.
      zero_tol: |x| <= zero_tol counts as zero.
    """

    def __init__(self, max_size=32, bins=64, hist_range=None, zero_tol=0.0):
        self.max_size = max_size
        self.bins = int(bins)
        self.hist_range = None if hist_range is None else tuple(map(float, hist_range))
        self.zero_tol = float(zero_tol)
        self.shape = None
        self.n = 0
        self._step = None

    # ------------------------------------------------------------------ state
    def _init(self, feats):
        _, H, W, C = feats.shape
        self.shape = (H, W, C)
        self.box = centre_crop_box(H, W, self.max_size)
        y0, x0, h, w = self.box
        crop = np.asarray(feats[:, y0:y0 + h, x0:x0 + w, :], np.float64)
        self.shift = np.transpose(crop, (0, 3, 1, 2)).reshape(len(crop), C, h * w).mean(0)
        if self.hist_range is None:
            lo, hi = float(np.min(feats)), float(np.max(feats))
            span = max(hi - lo, 1e-12)
            lo = 0.0 if lo >= 0 else lo - 0.25 * span
            self.hist_range = (lo, hi + 0.25 * span)
        P = h * w
        self.s1 = np.zeros((C, P))
        self.s2 = np.zeros((P, P))
        self.gram = np.zeros((C, C))
        self.zeros = np.zeros(C)
        self.sum_abs = np.zeros(C)
        self.sum_x = np.zeros(C)
        self.sum_x2 = np.zeros(C)
        self.hist = np.zeros((C, self.bins), np.int64)
        self.hist_clipped = 0
        self.gini_sum = self.gini_sq = 0.0
        self.gini_ch_sum = np.zeros(C)
        self.gini_ch_count = np.zeros(C)
        self._step = self._make_step()

    def _make_step(self):
        y0, x0, h, w = self.box
        H, W, C = self.shape
        shift = tf.constant(self.shift)
        lo, hi = self.hist_range
        bins, tol = self.bins, self.zero_tol

        @tf.function(reduce_retracing=True)
        def step(feats):
            f = tf.cast(feats, tf.float64)
            b = tf.shape(f)[0]
            crop = tf.transpose(f[:, y0:y0 + h, x0:x0 + w, :], (0, 3, 1, 2))
            y = tf.reshape(crop, (b, C, h * w)) - shift
            s1 = tf.reduce_sum(y, 0)
            yy = tf.reshape(y, (-1, h * w))
            s2 = tf.matmul(yy, yy, transpose_a=True)
            full = tf.reshape(f, (b, H * W, C))
            gram = tf.einsum("bpc,bpd->cd", full, full) / float(H * W)
            zeros = tf.reduce_sum(tf.cast(tf.abs(full) <= tol, tf.float64), (0, 1))
            sum_abs = tf.reduce_sum(tf.abs(full), (0, 1))
            sum_x = tf.reduce_sum(full, (0, 1))
            sum_x2 = tf.reduce_sum(full * full, (0, 1))
            # histogram: bin per value, offset by channel, one bincount for all channels
            width = (hi - lo) / bins
            idx = tf.cast(tf.floor((full - lo) / width), tf.int32)
            clipped = tf.reduce_sum(tf.cast((idx < 0) | (idx >= bins), tf.int64))
            idx = tf.clip_by_value(idx, 0, bins - 1) + tf.range(C, dtype=tf.int32) * bins
            hist = tf.math.bincount(tf.reshape(idx, [-1]), minlength=C * bins,
                                    maxlength=C * bins, dtype=tf.int64)
            # Gini of each image's whole map, and of each (image, channel) map
            g_img = _gini(tf.reshape(full, (b, -1)))
            g_ch = _gini(tf.transpose(full, (0, 2, 1)))
            ok = tf.logical_not(tf.math.is_nan(g_ch))
            g_ch_sum = tf.reduce_sum(tf.where(ok, g_ch, tf.zeros_like(g_ch)), 0)
            g_ch_cnt = tf.reduce_sum(tf.cast(ok, tf.float64), 0)
            g_img = tf.where(tf.math.is_nan(g_img), tf.zeros_like(g_img), g_img)
            return (s1, s2, gram, zeros, sum_abs, sum_x, sum_x2, tf.reshape(hist, (C, bins)),
                    clipped, tf.reduce_sum(g_img), tf.reduce_sum(g_img ** 2), g_ch_sum,
                    g_ch_cnt)

        return step

    def update(self, feats):
        """Add a batch of feature maps [B, H, W, C]."""
        feats = np.asarray(feats) if not tf.is_tensor(feats) else feats
        if len(feats.shape) != 4:
            raise ValueError(f"Feature maps must be [batch, H, W, C]; got shape "
                             f"{tuple(feats.shape)}. Spatial statistics need a convolutional "
                             "or pooling layer, not a dense one.")
        if self.shape is None:
            self._init(np.asarray(feats))
        elif tuple(feats.shape[1:]) != self.shape:
            raise ValueError(f"Batch of shape {tuple(feats.shape[1:])} after batches of "
                             f"{self.shape}.")
        out = [np.asarray(t) for t in self._step(tf.convert_to_tensor(feats))]
        (s1, s2, gram, zeros, sum_abs, sum_x, sum_x2, hist, clipped, gs, gq, gcs, gcc) = out
        self.s1 += s1
        self.s2 += s2
        self.gram += gram
        self.zeros += zeros
        self.sum_abs += sum_abs
        self.sum_x += sum_x
        self.sum_x2 += sum_x2
        self.hist += hist
        self.hist_clipped += int(clipped)
        self.gini_sum += float(gs)
        self.gini_sq += float(gq)
        self.gini_ch_sum += gcs
        self.gini_ch_count += gcc
        self.n += int(feats.shape[0])
        return self

    # ------------------------------------------------------------------ results
    def covariance(self):
        """Mean spatial covariance S [P, P] (see module docstring)."""
        if self.n < 2:
            raise ValueError(f"The covariance needs at least 2 images; got {self.n}.")
        C = self.shape[2]
        m = self.s1 / self.n                     # per-channel mean of the shifted data
        cov = (self.s2 - self.n * m.T @ m) / (C * (self.n - 1))
        return 0.5 * (cov + cov.T)

    def result(self):
        """Dict of NumPy arrays and scalars (everything `save_stats` writes)."""
        if self.n == 0:
            raise ValueError("No feature maps were accumulated.")
        H, W, C = self.shape
        y0, x0, h, w = self.box
        count = self.n * H * W
        mean_c = self.sum_x / count
        with np.errstate(invalid="ignore"):
            gini_ch = self.gini_ch_sum / self.gini_ch_count
        gini_mean = self.gini_sum / self.n
        mean_map = (self.s1 / self.n + self.shift).mean(0).reshape(h, w)
        return {
            "n_images": self.n, "shape": np.array(self.shape), "crop_box": np.array(self.box),
            "covariance": self.covariance(), "mean_map": mean_map, "gram": self.gram / self.n,
            "channel_mean": mean_c, "channel_var": self.sum_x2 / count - mean_c ** 2,
            "fraction_zeros": float(self.zeros.sum() / (count * C)),
            "channel_fraction_zeros": self.zeros / count,
            "gini_mean": gini_mean,
            "gini_std": float(np.sqrt(max(self.gini_sq / self.n - gini_mean ** 2, 0.0))),
            "channel_gini": gini_ch,
            "channel_gini_mean": float(np.nanmean(gini_ch)) if np.any(self.gini_ch_count)
            else float("nan"),
            "histograms": self.hist,
            "hist_edges": np.linspace(self.hist_range[0], self.hist_range[1], self.bins + 1),
            "hist_clipped": self.hist_clipped,
        }
