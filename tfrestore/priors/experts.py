"""Expert functions of the learned patch priors (REFERENCE §3).

An expert is a log-potential G(s) of a filter response s = wᵀx; the prior is
log p(x) = Σ_k α_k G(w_kᵀx) − log Z. Score matching needs its first two derivatives
g = G' and g' = G'', so every expert provides all three, written so that none of
them overflows or loses its sign for large |s| (responses of an untrained prior or
of a wild image during inversion can be huge):

* logistic (over-complete ICA):  G = −log cosh s,  g = −tanh s,  g' = −cosh⁻² s.
  log cosh s = |s| + log1p(e^{−2|s|}) − log 2 and cosh⁻² s = 4e^{−2|s|}/(1 + e^{−2|s|})²
  never form e^{|s|}.
* Student-t (Fields of Experts):  G = −log(1 + s²/2),  g = −2s/(s² + 2),
  g' = 2(s² − 2)/(s² + 2)².  For |s| > 1e18 G uses log(1e36/2) + 2 log(|s|/1e18) so that
  s² never overflows; g and g' are written in forms that tend to 0 without forming s².

G carries a custom gradient equal to the closed-form g, so autodiff through the
energy (inversion, denoising) uses the stable derivative.
"""
import math

import tensorflow as tf

__all__ = ["Expert", "LOGISTIC", "STUDENT_T", "EXPERTS", "get_expert"]

_BIG = 1e18  # beyond this |s| the Student-t log-potential uses its asymptotic form


def _logistic_g(s):
    return -tf.tanh(s)


def _logistic_gprime(s):
    e = tf.exp(-2.0 * tf.abs(s))
    return -4.0 * e / tf.square(1.0 + e)


def _logistic_G_value(s):
    a = tf.abs(s)
    return -(a + tf.math.softplus(-2.0 * a) - math.log(2.0))


@tf.custom_gradient
def _logistic_G(s):
    def grad(dy):
        return dy * _logistic_g(s)
    return _logistic_G_value(s), grad


def _student_g(s):
    # −2s/(s²+2) = −2(s/m)/(a·(a/m) + 2/m) with a = |s|, m = max(a, 1): no s² that could
    # overflow, one branch-free expression (it runs on every response of every step).
    a = tf.abs(s)
    m = tf.maximum(a, 1.0)
    return -2.0 * (s / m) / (a * (a / m) + 2.0 / m)


def _student_gprime(s):
    a = tf.minimum(tf.abs(s), 1e15)  # 1e30 + 2 is finite in float32; beyond, g' is 0 anyway
    u = tf.square(a) + 2.0
    return 2.0 / u - 8.0 / tf.square(u)


def _student_G_value(s):
    # log1p(a²/2) for a <= 1e18; beyond, log(a²/2) = log((1e18)²/2) + 2 log(a / 1e18), with the
    # second term exactly 0 below the threshold: branch-free and no overflow of a².
    a = tf.abs(s)
    return -(tf.math.log1p(0.5 * tf.square(tf.minimum(a, _BIG)))
             + 2.0 * tf.math.log(tf.maximum(a, _BIG) / _BIG))


@tf.custom_gradient
def _student_G(s):
    def grad(dy):
        return dy * _student_g(s)
    return _student_G_value(s), grad


class Expert:
    """A named expert: log-potential `G`, its derivative `g` and second derivative `gprime`.

    `sum_G(s)` is Σ over the positions of G(s) for responses s [B, ..., N] -> [B, N], with an
    XLA-fused forward and backward: a prior's energy on an image evaluates G on every
    response, and unfused element-wise kernels (one pass over memory per operation) made
    this the largest part of a prior's cost (bench/bench_prior_cost.py).
    """

    def __init__(self, name, G, g, gprime, description, G_value=None):
        self.name, self.G, self.g, self.gprime = name, G, g, gprime
        self.description = description
        value = G_value or G

        # s [B, ..., N], w broadcastable to s (1 where a position counts, 0 where not).
        @tf.function(jit_compile=True)
        def sums(s, w):
            return tf.reduce_sum(w * value(s), axis=tf.range(1, tf.rank(s) - 1))

        @tf.function(jit_compile=True)
        def sums_grad(s, w, dy):
            shape = tf.concat([tf.shape(dy)[:1], tf.ones([tf.rank(s) - 2], tf.int32),
                               tf.shape(dy)[1:]], 0)
            return tf.reshape(dy, shape) * w * g(s)

        @tf.custom_gradient
        def weighted(s, w):
            return sums(s, w), lambda dy: (sums_grad(s, w, dy), None)

        def sum_G(s, weights=None):
            """Σ over positions of G(s) [B, N] (times `weights`, a constant mask, if given)."""
            w = tf.ones([1] * s.shape.rank, s.dtype) if weights is None else \
                tf.cast(weights, s.dtype)
            return weighted(s, w)
        self.sum_G = sum_G

    def __repr__(self):
        return f"Expert({self.name!r}: {self.description})"


LOGISTIC = Expert("logistic", _logistic_G, _logistic_g, _logistic_gprime,
                  "G(s) = -log cosh(s), over-complete ICA", _logistic_G_value)
STUDENT_T = Expert("student_t", _student_G, _student_g, _student_gprime,
                   "G(s) = -log(1 + s^2/2), Fields of Experts", _student_G_value)
EXPERTS = {"logistic": LOGISTIC, "student_t": STUDENT_T}
_ALIASES = {"ica": "logistic", "foe": "student_t", "student-t": "student_t",
            "studentt": "student_t", "t": "student_t"}


def get_expert(name):
    """Expert by name ("logistic"/"ica" or "student_t"/"foe"); an `Expert` passes through."""
    if isinstance(name, Expert):
        return name
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in EXPERTS:
        raise ValueError(f"Unknown expert '{name}'. Use one of: logistic (ICA), "
                         f"student_t (FoE).")
    return EXPERTS[key]
