"""Learned patch priors as Keras models: energies of whole images or feature maps.

A `PatchPrior` holds N experts (filters w_k, weights α_k = softplus(a_k)) learned in the
whitened coordinates of ph×pw×C patches, plus the statistics that map a patch in its
natural scale (RGB 0-255, raw activations) to those coordinates:

    p̂ = (p − m_c) / s_c            global per-channel normalisation
    p̃ = p̂ − mean(p̂)·1             optional per-patch centring (drops the DC direction)
    z  = Fᵀ(p̃ − μ)                 PCA whitening with reduction, F = U_d Λ_d^{-1/2}
    s_k = w_kᵀ z                     expert responses

Every step is linear, so all of it folds into one convolution kernel K [ph, pw, C, N] and a
bias [N]: s = conv(x, K) + b over all VALID patch positions. The energy (negative
log-probability up to log Z) is that of a Markov random field with one clique per position:

    E(x) = − Σ_positions Σ_k α_k G(s_k)            -> one number per image, shape [B]

It is a **sum** over patch positions (not a mean): the MRF's energy, so that a weight λ set
for one image size means the same prior strength per pixel at any size, exactly like the
data term ‖x − y‖² it is balanced against (a mean would silently weaken the prior on big
images; REFERENCE §3 lists that as a pitfall of the thesis code).

Layouts:
  * "full": w_k ∈ R^d over whole ph×pw×C patches (with whitening).
  * "separable": w_k = vec(d_k p_kᵀ), a spatial filter d_k [ph·pw] times a channel mix
    p_k [C] (ph·pw + C parameters per expert), on normalised patches (no whitening,
    which would destroy the separability).
  * "channelwise": one set of ph×pw×1 experts shared by all channels, each channel
    normalised by its own statistics; energies summed over channels too.

Filters are kept at unit norm (‖w_k‖ = 1, as in the thesis code); the scale of the
responses is therefore carried by the whitening, and the strength by α. A prior trained as a
field (`unit_norm=False`, `tfrestore.priors.training.train_field`) frees the norms: a
Student-t expert's shape depends on the scale of its response, and on whole images the
best scale is not the one whitening gives patches.
"""
import json

import keras
import numpy as np
import tensorflow as tf

from tfrestore.priors.experts import get_expert
from tfrestore.priors.whitening import Whitening, identity_whitening

__all__ = ["PatchPrior", "LAYOUTS", "PriorMismatchError"]

LAYOUTS = ("full", "separable", "channelwise")


class PriorMismatchError(ValueError):
    """A prior attached to inputs it was not trained for (wrong channels, size, ...)."""


def _pair(v):
    if np.isscalar(v):
        return (int(v), int(v))
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ValueError(f"patch_size must be an int or (ph, pw), got {v}.")
    return v


def _softplus_inv(y):
    return float(np.log(np.expm1(y)))


@keras.saving.register_keras_serializable(package="tfrestore")
class PatchPrior(keras.Model):
    """Product-of-experts patch prior applied as an MRF over an image or feature map.

    Args:
      patch_size: int or (ph, pw).
      channels: C of the images / feature maps it models.
      n_experts: N.
      expert: "student_t" (FoE) or "logistic" (ICA).
      layout: "full", "separable" or "channelwise".
      dim: d, whitened dimensions (default: the patch dimension D; separable: D).
      centre: subtract each patch's mean after normalisation (drops the DC direction).
      whitening: "pca", "zca" or "none" (recorded; ZCA only changes how whitened-space
        filters are shown, see `whitening.py`).
      init_alpha: initial expert weight α.
      seed: seed of the random filter initialisation.
      metadata: dict of strings recorded with the prior: what it was trained on
        (e.g. {"source": "imagenet_samples", "classifier": "alexnet", "layer": "conv1/lin"}).
      unit_norm: filters normalised to ‖w_k‖ = 1 (patch score matching); False for a prior
        trained as a field, whose filter norms are free parameters.
    Call:
      x [B, H, W, C] in natural scale (H, W >= patch size) -> energies [B] (float32).
    """

    def __init__(self, patch_size, channels, n_experts, expert="student_t", layout="full",
                 dim=None, centre=True, whitening="pca", init_alpha=0.1, seed=0,
                 metadata=None, unit_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _pair(patch_size)
        self.channels = int(channels)
        self.n_experts = int(n_experts)
        self.expert = get_expert(expert)
        if layout not in LAYOUTS:
            raise ValueError(f"Unknown prior layout '{layout}': use one of {LAYOUTS}.")
        self.layout = layout
        ph, pw = self.patch_size
        self.patch_dim = ph * pw * (1 if layout == "channelwise" else self.channels)
        self.dim = int(dim) if dim is not None else self.patch_dim
        if layout == "separable":
            if self.dim != self.patch_dim:
                raise ValueError("A separable prior works on unwhitened patches: dim must be "
                                 f"the patch dimension {self.patch_dim}, got {self.dim}.")
            whitening = "none"
        if not 1 <= self.dim <= self.patch_dim:
            raise ValueError(f"dim={self.dim} must be in [1, {self.patch_dim}] "
                             f"(patch {ph}x{pw}x{self.channels}, layout {layout}).")
        self.centre = bool(centre)
        self.whitening_kind = str(whitening)
        self.init_alpha = float(init_alpha)
        self.seed = int(seed)
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.unit_norm = bool(unit_norm)

        c_norm = self.channels
        self.norm_mean = self.add_weight(shape=(c_norm,), initializer="zeros",
                                         trainable=False, name="norm_mean")
        self.norm_std = self.add_weight(shape=(c_norm,), initializer="ones",
                                        trainable=False, name="norm_std")
        self.white_mean = self.add_weight(shape=(self.patch_dim,), initializer="zeros",
                                          trainable=False, name="white_mean")
        self.white_matrix = self.add_weight(shape=(self.patch_dim, self.dim),
                                            initializer="zeros", trainable=False,
                                            name="white_matrix")
        self.white_eigenvalues = self.add_weight(shape=(self.dim,), initializer="ones",
                                                 trainable=False, name="white_eigenvalues")
        self.white_matrix.assign(np.eye(self.patch_dim, self.dim, dtype=np.float32))
        rng = np.random.default_rng(self.seed)
        if layout == "separable":
            self.spatial = self.add_weight(shape=(ph * pw, self.n_experts), initializer="zeros",
                                           name="spatial")
            self.channel_mix = self.add_weight(shape=(self.channels, self.n_experts),
                                               initializer="zeros", name="channel_mix")
            self.spatial.assign(rng.standard_normal((ph * pw, self.n_experts)).astype("f4"))
            self.channel_mix.assign(
                rng.standard_normal((self.channels, self.n_experts)).astype("f4"))
        else:
            self.filters = self.add_weight(shape=(self.dim, self.n_experts),
                                           initializer="zeros", name="filters")
            self.filters.assign(rng.standard_normal((self.dim, self.n_experts)).astype("f4"))
        self.log_weights = self.add_weight(
            shape=(self.n_experts,), initializer=keras.initializers.Constant(
                _softplus_inv(self.init_alpha)), name="log_weights")
        self.built = True

    # ---------------------------------------------------------------- statistics
    def set_statistics(self, norm_mean, norm_std, whitening=None):
        """Install normalisation (per channel) and whitening fitted on training patches."""
        norm_mean = np.asarray(norm_mean, np.float32).reshape(-1)
        norm_std = np.asarray(norm_std, np.float32).reshape(-1)
        if norm_mean.shape != (self.channels,) or norm_std.shape != (self.channels,):
            raise ValueError(f"Normalisation needs {self.channels} channel means and stds, got "
                             f"{norm_mean.shape} and {norm_std.shape}.")
        if np.any(norm_std <= 0):
            raise ValueError("Normalisation std must be positive (a constant channel?).")
        whitening = whitening or identity_whitening(self.patch_dim)
        if whitening.matrix.shape != (self.patch_dim, self.dim):
            raise ValueError(f"Whitening maps {whitening.matrix.shape} but this prior needs "
                             f"({self.patch_dim}, {self.dim}).")
        self.norm_mean.assign(norm_mean)
        self.norm_std.assign(norm_std)
        self.white_mean.assign(np.asarray(whitening.mean, np.float32))
        self.white_matrix.assign(whitening.matrix)
        self.white_eigenvalues.assign(np.asarray(whitening.eigenvalues, np.float32))
        self.whitening_kind = whitening.kind if whitening.kind != "none" else \
            self.whitening_kind if self.layout != "separable" else "none"

    def get_whitening(self):
        """The installed whitening as a `Whitening` (numpy)."""
        ev = np.asarray(self.white_eigenvalues)
        basis = np.asarray(self.white_matrix) * np.sqrt(ev)[None, :]
        return Whitening(np.asarray(self.white_mean), basis, ev, self.whitening_kind)

    # ---------------------------------------------------------------- parameters
    def trainable_parameters(self):
        if self.layout == "separable":
            return [self.spatial, self.channel_mix, self.log_weights]
        return [self.filters, self.log_weights]

    def raw_filters(self):
        """Filters [d, N] before normalisation (separable: the outer products)."""
        if self.layout == "separable":
            ph, pw = self.patch_size
            w = tf.einsum("sn,cn->scn", tf.convert_to_tensor(self.spatial),
                          tf.convert_to_tensor(self.channel_mix))
            return tf.reshape(w, (ph * pw * self.channels, self.n_experts))
        return tf.convert_to_tensor(self.filters)

    def model_filters(self):
        """Filters [d, N] in the whitened coordinates (what score matching sees): unit-norm,
        or the raw filters of a prior with free norms (`unit_norm=False`)."""
        w = self.raw_filters()
        if not self.unit_norm:
            return w
        return w / tf.sqrt(tf.reduce_sum(tf.square(w), axis=0, keepdims=True) + 1e-12)

    def alpha(self):
        """Expert weights α = softplus(a) > 0, [N]."""
        return tf.nn.softplus(tf.convert_to_tensor(self.log_weights))

    def _patch_filters(self):
        """(B, A) [D, N]: filters on normalised patches with / without the centring folded in."""
        a = tf.matmul(tf.convert_to_tensor(self.white_matrix), self.model_filters())
        b = a - tf.reduce_mean(a, axis=0, keepdims=True) if self.centre else a
        return b, a

    def kernel_and_bias(self):
        """Folded convolution kernel [ph, pw, Cin, N] on natural-scale input, bias [N]."""
        ph, pw = self.patch_size
        b, a = self._patch_filters()
        bias = -tf.linalg.matvec(a, tf.convert_to_tensor(self.white_mean), transpose_a=True)
        if self.layout == "channelwise":
            return tf.reshape(b, (ph, pw, 1, self.n_experts)), bias
        k = tf.reshape(b, (ph, pw, self.channels, self.n_experts))
        k = k / tf.reshape(tf.convert_to_tensor(self.norm_std), (1, 1, -1, 1))
        bias = bias - tf.einsum("hwcn,c->n", k, tf.convert_to_tensor(self.norm_mean))
        return k, bias

    def image_space_filters(self):
        """Folded filters as [N, ph, pw, C'] numpy (what the prior convolves the input with)."""
        k, _ = self.kernel_and_bias()
        return np.transpose(np.asarray(k), (3, 0, 1, 2))

    # ---------------------------------------------------------------- patches
    def patch_coords(self, patches):
        """Whitened coordinates [T, d] of natural-scale patches [T, ph, pw, C(or 1)].

        For "channelwise", patches are single-channel and must already be normalised by
        their channel's statistics (see `tfrestore.data.patches`).
        """
        p = tf.convert_to_tensor(patches, tf.float32)
        if self.layout != "channelwise":
            p = (p - self.norm_mean) / self.norm_std
        p = tf.reshape(p, (-1, self.patch_dim))
        if self.centre:
            p = p - tf.reduce_mean(p, axis=1, keepdims=True)
        return tf.matmul(p - self.white_mean, tf.convert_to_tensor(self.white_matrix))

    # ---------------------------------------------------------------- energies
    def _check_input(self, x):
        if x.shape.rank != 4:
            raise PriorMismatchError(f"A patch prior takes [B, H, W, C] input, got shape "
                                     f"{x.shape}.")
        c = x.shape[-1]
        if c is not None and c != self.channels:
            raise PriorMismatchError(
                f"This prior models {self.channels}-channel inputs ({self._origin()}) but got "
                f"{c} channels: attach it to the layer it was trained on.")
        ph, pw = self.patch_size
        h, w = x.shape[1], x.shape[2]
        if (h is not None and h < ph) or (w is not None and w < pw):
            raise PriorMismatchError(f"Input {h}x{w} is smaller than the {ph}x{pw} patch.")

    def _origin(self):
        return ", ".join(f"{k}={v}" for k, v in self.metadata.items()) or "no metadata"

    def responses(self, x, strides=1):
        """Expert responses s [B, H', W', N] (channelwise: [B, C, H', W', N]).

        `strides` > 1 keeps only the patch positions on that grid (rows and columns
        0, s, 2s, ...), computed by a strided convolution (see `tfrestore.priors.grid`).
        """
        x = tf.cast(tf.convert_to_tensor(x), tf.float32)
        self._check_input(x)
        k, bias = self.kernel_and_bias()
        if self.layout == "channelwise":
            x = (x - self.norm_mean) / self.norm_std
            bsz, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
            xc = tf.reshape(tf.transpose(x, (0, 3, 1, 2)), (-1, h, w, 1))
            s = tf.nn.conv2d(xc, k, strides, "VALID") + bias
            sh = tf.shape(s)
            return tf.reshape(s, (bsz, self.channels, sh[1], sh[2], self.n_experts))
        return tf.nn.conv2d(x, k, strides, "VALID") + bias

    def energy_map(self, x, strides=1):
        """Per-position energy −Σ_k α_k G(s_k), [B, H', W'] (channelwise: summed over C)."""
        s = self.responses(x, strides)
        e = -tf.reduce_sum(self.alpha() * self.expert.G(s), axis=-1)
        return tf.reduce_sum(e, axis=1) if self.layout == "channelwise" else e

    def energy(self, x, strides=1, mask=None):
        """Energies [B], summed over the patch positions (those of a stride grid if > 1).

        Equal to summing `energy_map`, but Σ_positions G(s) runs as one XLA-fused kernel
        forward and backward (`Expert.sum_G`): the expert nonlinearity on every response
        is what made a full-image prior slow. `mask` [H', W'] (0/1, constant) keeps only
        some positions (`tfrestore.priors.grid`).
        """
        s = self.responses(x, strides)
        if mask is not None:
            lead = [1] * (s.shape.rank - 3)
            mask = tf.reshape(mask, lead + [tf.shape(mask)[0], tf.shape(mask)[1], 1])
        return -tf.reduce_sum(self.alpha() * self.expert.sum_G(s, mask), axis=-1)

    def call(self, x):
        return self.energy(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {"patch_size": list(self.patch_size), "channels": self.channels,
                "n_experts": self.n_experts, "expert": self.expert.name,
                "layout": self.layout, "dim": self.dim, "centre": self.centre,
                "whitening": self.whitening_kind, "init_alpha": self.init_alpha,
                "seed": self.seed, "metadata": dict(self.metadata),
                "unit_norm": self.unit_norm, "name": self.name}

    def describe(self):
        """Settings dict to record with outputs (and to check where the prior is attached)."""
        cfg = self.get_config()
        cfg["patch_dim"] = self.patch_dim
        return cfg

    def __repr__(self):
        ph, pw = self.patch_size
        return (f"PatchPrior({self.layout}, {ph}x{pw}x{self.channels}, {self.n_experts} "
                f"{self.expert.name} experts, {self.dim} dims, {json.dumps(self.metadata)})")
