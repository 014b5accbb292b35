"""Objective terms for pre-image optimisation (REFERENCE section 2), composable.

A term is a small object with a `name`, a `weight`, the point it reads (`at`:
"image" = the reconstruction as RGB 0-255, or any classifier layer name) and
`__call__(tensor) -> [B]` per-image (unweighted) values. An `Objective` collects the
layers its terms read, builds ONE `classifier.feature_model(...)` cut at the deepest,
and returns the per-image total (sum of weight * value) and every weighted term.

A learned prior is just `PriorTerm(keras_layer, at="image" | LAYER, weight)`: any
callable mapping [B, H, W, C] to [B] energies; the gradient flows through the network.
"""
import contextlib

import numpy as np
import tensorflow as tf

from tfrestore.metrics.features import normalised_feature_error

__all__ = ["Term", "FeatureLoss", "AlphaNorm", "RangePrior", "TotalVariation", "PriorTerm",
           "ActivationTerm", "Objective", "IMAGE", "feature_chunks"]

IMAGE = "image"


def _sum_per_image(x):
    return tf.reduce_sum(x, axis=list(range(1, x.shape.rank)))


# The image priors run every step on full-size images: their gradients are written out
# (same maths as autodiff, tested against NumPy) because autodiff's StridedSliceGrad and
# PowGrad cost several times the forward pass on CPU (TV's four slice gradients alone
# were ~20% of an AlexNet conv5 step at batch 1).

def _range_prior(x, center, alpha, bound):
    @tf.custom_gradient
    def value(x):
        c = x - center
        hw = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], x.dtype)
        sq = tf.reduce_sum(tf.square(c), axis=-1) / bound ** 2  # ||x_ij||^2 / B^2, [B, H, W]
        # (s)^(alpha/2) computed as (s / B^2)^(alpha/2): same value, no float32 overflow.
        val = tf.pow(sq, alpha / 2.0)
        out = tf.reduce_sum(val, axis=[1, 2]) / hw

        def grad(up):
            # d/dc (s/B^2)^(a/2) = a/2 (s/B^2)^(a/2 - 1) 2 c / B^2
            w = (alpha / 2.0) * (tf.pow(sq, alpha / 2.0 - 1.0) if alpha != 2.0
                                 else tf.ones_like(sq))
            scale = tf.reshape(up, [-1, 1, 1, 1]) * (2.0 / bound ** 2) / hw
            return scale * w[..., None] * c
        return out, grad
    return value(x)


def _total_variation(x, beta, V, per_pixel):
    @tf.custom_gradient
    def value(x):
        xs = x / V
        top = xs[:, :-1]
        dx = top[:, :, 1:] - top[:, :, :-1]
        dy = xs[:, 1:, :-1] - top[:, :, :-1]
        s = tf.square(dx) + tf.square(dy)
        val = s if beta == 2.0 else tf.pow(s + 1e-8, beta / 2.0)
        out = _sum_per_image(val)
        norm = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], x.dtype) if per_pixel else 1.0
        out = out / norm

        def grad(up):
            # dx_ij feeds x[i, j+1] (+) and x[i, j] (-); dy_ij feeds x[i+1, j] (+), x[i, j] (-).
            u = tf.reshape(up, [-1, 1, 1, 1]) * (2.0 / V) / norm
            if beta != 2.0:
                u = u * (beta / 2.0) * tf.pow(s + 1e-8, beta / 2.0 - 1.0)
            a, b = u * dx, u * dy
            return (tf.pad(a, [[0, 0], [0, 1], [1, 0], [0, 0]])
                    + tf.pad(b, [[0, 0], [1, 0], [0, 1], [0, 0]])
                    - tf.pad(a + b, [[0, 0], [0, 1], [0, 1], [0, 0]]))
        return out, grad
    return value(x)


class Term:
    """Base class: `weight * self(tensor_at(self.at))` enters the objective.

    `fusable = True` marks a pure, XLA-compilable function of its input (no state, no
    randomness): the `Objective` evaluates all fusable image terms and their gradients in
    one XLA call per step.
    """

    fusable = False

    def __init__(self, name, weight=1.0, at=IMAGE):
        self.name = name
        self.weight = float(weight)
        self.at = at

    def __call__(self, x):
        raise NotImplementedError

    def describe(self):
        return {"name": self.name, "type": type(self).__name__, "weight": self.weight,
                "at": self.at}

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, weight={self.weight:g}, at={self.at!r})"


class FeatureLoss(Term):
    """||phi(x) - phi0||^2 / ||phi0||^2 at layer `at` (both papers).

    The target phi0 is set by `set_target` (usually through `Objective.set_targets`).
    """

    def __init__(self, at, weight=1.0, target=None, name=None):
        super().__init__(name or f"feature:{at}", weight, at)
        self._target = None
        if target is not None:
            self.set_target(target)

    def set_target(self, target):
        target = tf.convert_to_tensor(target, tf.float32)
        if self._target is None:
            # Unknown batch dimension: one variable serves any number of images.
            self._target = tf.Variable(target, trainable=False,
                                       shape=tf.TensorShape([None] + target.shape[1:]),
                                       name="feature_target")
        else:
            self._target.assign(target)

    @property
    def target(self):
        return self._target

    def __call__(self, x):
        if self._target is None:
            raise ValueError(f"{self.name}: no target features; call set_target first.")
        return normalised_feature_error(x, self._target)


class AlphaNorm(Term):
    """R_alpha(x) = ||x - mean(x)||_alpha^alpha per image (M&V 2015).

    `x` is RGB 0-255; `scale` divides the centred image first (sigma-scaling of 2015).
    """

    fusable = True

    def __init__(self, alpha=6.0, weight=1.0, scale=1.0, name="alpha_norm"):
        super().__init__(name, weight, IMAGE)
        self.alpha, self.scale = float(alpha), float(scale)

    def __call__(self, x):
        c = (x - tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)) / self.scale
        return _sum_per_image(tf.pow(tf.abs(c), self.alpha))

    def describe(self):
        return dict(super().describe(), alpha=self.alpha, scale=self.scale)


class RangePrior(Term):
    """N_alpha(x) / (H W B^alpha), N_alpha = sum_ij (sum_k x_ijk^2)^(alpha/2) (M&V 2016).

    `x` is RGB 0-255; `center` (the dataset mean, RGB) is subtracted first. The hard
    per-pixel bound B+ is a projection, applied by the loop after every step.
    """

    fusable = True

    def __init__(self, alpha=6.0, bound=80.0, center=(0.0, 0.0, 0.0), weight=1.0,
                 name="range"):
        super().__init__(name, weight, IMAGE)
        self.alpha, self.bound = float(alpha), float(bound)
        self.center = np.asarray(center, np.float32)

    def __call__(self, x):
        return _range_prior(x, self.center, self.alpha, self.bound)

    def describe(self):
        return dict(super().describe(), alpha=self.alpha, bound=self.bound,
                    center=self.center.tolist())


class TotalVariation(Term):
    """R_TV^beta(x) = sum_ijk ((x_i,j+1,k - x_ijk)^2 + (x_i+1,j,k - x_ijk)^2)^(beta/2) / V^beta.

    Sums over the (H-1) x (W-1) pixels with both neighbours. `per_pixel=True` divides
    by H*W (2016: weight 1/(H W V^beta) with V = B/6.5); 2015 uses V = sigma and no
    division. For beta < 2 a tiny epsilon keeps the gradient finite at flat regions.
    """

    fusable = True

    def __init__(self, beta=2.0, V=1.0, per_pixel=True, weight=1.0, at=IMAGE, name="tv"):
        super().__init__(name, weight, at)
        self.beta, self.V, self.per_pixel = float(beta), float(V), bool(per_pixel)

    def __call__(self, x):
        return _total_variation(x, self.beta, self.V, self.per_pixel)

    def describe(self):
        return dict(super().describe(), beta=self.beta, V=self.V, per_pixel=self.per_pixel)


class PriorTerm(Term):
    """Any callable (e.g. a Keras layer of a learned prior) mapping [B, ...] -> energies.

    Outputs of shape [B, ...] are summed per image. `at` is "image" (RGB 0-255) or a
    layer name (the classifier's feature there, from the same forward pass).

    `crop` (a fraction in (0, 1); 0 = off) evaluates the prior on one random square crop
    of that fraction of the spatial size per step, scaled by the ratio of patch positions:
    a stochastic estimate of a sum-over-patches energy and its gradient (unbiased but for
    patches near the border, which a random crop covers less often), at a fraction of the
    cost (a 512-expert 8x8x3 prior costs more than the network itself on
    a 224x224 image). Crops are drawn from a generator seeded by `seed`.
    """

    def __init__(self, fn, at=IMAGE, weight=1.0, name=None, crop=0.0, seed=0):
        super().__init__(name or f"prior:{getattr(fn, 'name', type(fn).__name__)}", weight, at)
        self.fn = fn
        self.crop = float(crop)
        if not 0.0 <= self.crop < 1.0:
            raise ValueError(f"crop must be a fraction in [0, 1), got {crop}.")
        self.seed = int(seed)
        self.generator = None
        if self.crop:
            self.make_generator()
        # False switches the term off (two-phase runs: feature loss alone first, then with
        # the priors; see `prior_start`). Read at trace time: the optimiser's step is
        # compiled once per state (`Engine.trace_key`), so an inactive prior is not evaluated.
        self.active = True

    def make_generator(self):
        """The seeded generator of the crops (created eagerly: it is checkpointed)."""
        self.generator = tf.random.Generator.from_seed(self.seed)

    def _random_crop(self, x):
        if self.generator is None:
            self.make_generator()
        h, w = x.shape[1], x.shape[2]
        ph, pw = getattr(self.fn, "patch_size", (1, 1))
        ch = max(ph, int(round(self.crop * h)))
        cw = max(pw, int(round(self.crop * w)))
        if ch >= h and cw >= w:
            return x, 1.0
        top = self.generator.uniform((), 0, h - ch + 1, tf.int32)
        left = self.generator.uniform((), 0, w - cw + 1, tf.int32)
        scale = ((h - ph + 1) * (w - pw + 1)) / ((ch - ph + 1) * (cw - pw + 1))
        return x[:, top:top + ch, left:left + cw, :], scale

    def __call__(self, x):
        scale = 1.0
        if self.crop:   # drawn while inactive too: the crops do not depend on the phase
            x, scale = self._random_crop(x)
        if not self.active:
            return tf.zeros(tf.shape(x)[:1])
        e = tf.cast(tf.convert_to_tensor(self.fn(x)), tf.float32)
        return scale * (e if e.shape.rank == 1 else _sum_per_image(e))

    def describe(self):
        d = dict(super().describe(), crop=self.crop, seed=self.seed)
        if hasattr(self.fn, "describe"):
            d["prior"] = self.fn.describe()
        return d


class ActivationTerm(Term):
    """Minus the activation of a logit, channel or unit at layer `at` (so that minimising
    the objective maximises it; activation maximisation, caricatures).

    Args:
      at: a classifier layer.
      index: channel (last axis) index; None = every channel (with `mask`).
      position: (y, x) for one unit of a spatial map; None = the spatial mean of the channel.
      mask: optional fixed per-channel weights [C] (e.g. a caricature's direction);
        the term is then -<mask, mean activation>.
    """

    def __init__(self, at, index=None, position=None, weight=1.0, name=None, mask=None):
        label = (f"unit:{at}:{index}:{position[0]}:{position[1]}" if position is not None
                 else f"channel:{at}:{index}" if index is not None else f"direction:{at}")
        super().__init__(name or label, weight, at)
        self.index = None if index is None else int(index)
        self.position = None if position is None else tuple(int(p) for p in position)
        self.mask = None if mask is None else tf.constant(np.asarray(mask, np.float32))

    def activation(self, x):
        """The activation being maximised, per example [B]."""
        if x.shape.rank == 4:
            if self.position is not None:
                x = x[:, self.position[0], self.position[1], :]
            else:
                x = tf.reduce_mean(x, axis=[1, 2])
        elif x.shape.rank != 2:
            raise ValueError(f"{self.name}: layer output of rank {x.shape.rank} is not "
                             f"[B, C] or [B, H, W, C].")
        if self.mask is not None:
            return tf.reduce_sum(x * self.mask, axis=-1)
        return x[:, self.index]

    def __call__(self, x):
        return -self.activation(x)

    def describe(self):
        return dict(super().describe(), index=self.index, position=self.position)


@contextlib.contextmanager
def feature_chunks(chunk):
    """Within the block, `Objective.feature_chunk = chunk` (None: leave it as it is)."""
    before = Objective.feature_chunk
    if chunk is not None:
        Objective.feature_chunk = int(chunk)
    try:
        yield
    finally:
        Objective.feature_chunk = before


class Objective:
    """Sum of weighted terms on one forward pass of a network cut at the deepest layer.

    Args:
      classifier: a `tfrestore.classifiers.Classifier`.
      terms: iterable of `Term`s (names must be unique).

    `feature_chunk` (a class attribute, not a setting: it changes speed, not the maths)
    runs the network on at most that many images at a time and concatenates the
    features (0: the whole batch at once). Each image's features and gradient do not
    depend on the others, so only float rounding can differ; on CPU smaller batches keep
    the activations in cache (bench/bench_feature_chunk.py).
    """

    feature_chunk = 0

    def __init__(self, classifier, terms):
        self.classifier = classifier
        self.terms = list(terms)
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"Objective term names must be unique, got {names}.")
        self.layers = []
        for t in self.terms:
            if t.at != IMAGE and t.at not in self.layers:
                classifier.resolve(t.at)  # UnknownLayerError (with the list) right now
                self.layers.append(t.at)
        self.model = classifier.feature_model(self.layers) if self.layers else None

    def features(self, rgb):
        """{layer: features} of RGB 0-255 images."""
        if self.model is None:
            return {}
        n, chunk = rgb.shape[0], int(self.feature_chunk)
        if chunk and n is not None and n > chunk:
            parts = [self._features(rgb[i:i + chunk]) for i in range(0, n, chunk)]
            out = [tf.concat(p, 0) for p in zip(*parts)]
        else:
            out = self._features(rgb)
        return dict(zip(self.layers, out))

    def _features(self, rgb):
        out = self.model(rgb, training=False)
        return [out] if len(self.layers) == 1 else list(out)

    def set_targets(self, images):
        """Compute every `FeatureLoss` target from the target images (RGB 0-255)."""
        feats = self.features(tf.convert_to_tensor(images, tf.float32))
        for t in self.terms:
            if isinstance(t, FeatureLoss):
                t.set_target(feats[t.at])

    def __call__(self, rgb, network_rgb=None):
        """Per-image total [B] and {term name: weighted value [B]}.

        Args:
          rgb: reconstruction, RGB 0-255 [B, H, W, 3]; read by "image" terms.
          network_rgb: what the network sees (e.g. the jittered `rgb`); default `rgb`.
        """
        feats = self.features(rgb if network_rgb is None else network_rgb)
        fused = [t for t in self.terms if t.at == IMAGE and t.fusable]
        values = dict(zip([t.name for t in fused], self._fused_terms(rgb, fused))) \
            if fused else {}
        for t in self.terms:
            if t.name not in values:
                x = rgb if t.at == IMAGE else feats[t.at]
                values[t.name] = t.weight * t(x)
        values = {t.name: values[t.name] for t in self.terms}  # the terms' order
        total = tf.add_n(list(values.values()))
        return total, values

    def _fused_terms(self, rgb, fused):
        """Weighted values [B] of the `fused` image terms, with their gradient computed in
        the same XLA call (each step's image priors cost ~3 elementwise passes instead of
        dozens of small ops); exact up to float rounding (tested)."""
        if getattr(self, "_fused_fn", None) is None:
            def values_and_grads(x):
                with tf.GradientTape(persistent=True) as tape:
                    tape.watch(x)
                    vals = [t.weight * t(x) for t in fused]
                # Images are independent: grad of the sum = each image's own gradient.
                return vals, [tape.gradient(v, x) for v in vals]
            self._fused_fn = tf.function(values_and_grads, jit_compile=True)

        @tf.custom_gradient
        def terms(x):
            vals, grads = self._fused_fn(x)

            def grad(*ups):
                out = None
                for u, g in zip(ups, grads):
                    if u is not None:
                        gu = tf.reshape(u, [-1, 1, 1, 1]) * g
                        out = gu if out is None else out + gu
                return tf.zeros_like(x) if out is None else out
            return list(vals), grad
        return terms(tf.convert_to_tensor(rgb, tf.float32))

    def describe(self):
        return [t.describe() for t in self.terms]
