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
  g' = 2(s² − 2)/(s² + 2)².  For |s| > 1e4 G uses 2 log|s| − log 2 + log1p(2/s²) so that
  s² never overflows; g and g' are written in u = s² + 2 forms that tend to 0.

G carries a custom gradient equal to the closed-form g, so autodiff through the
energy (inversion, denoising) uses the stable derivative.
"""
import math

import tensorflow as tf

__all__ = ["Expert", "LOGISTIC", "STUDENT_T", "EXPERTS", "get_expert"]

_BIG = 1e4  # beyond this |s| the Student-t log-potential uses its asymptotic form


def _logistic_g(s):
    return -tf.tanh(s)


def _logistic_gprime(s):
    e = tf.exp(-2.0 * tf.abs(s))
    return -4.0 * e / tf.square(1.0 + e)


@tf.custom_gradient
def _logistic_G(s):
    a = tf.abs(s)
    value = -(a + tf.math.softplus(-2.0 * a) - math.log(2.0))

    def grad(dy):
        return dy * _logistic_g(s)
    return value, grad


def _student_g(s):
    # −2s/(s²+2) = −2/(s + 2/s) for |s| ≥ 1: no s² that could overflow.
    a = tf.abs(s)
    safe = tf.maximum(a, 1.0)
    big = -2.0 * tf.sign(s) / (safe + 2.0 / safe)
    small_s = tf.clip_by_value(s, -1.0, 1.0)
    small = -2.0 * small_s / (tf.square(small_s) + 2.0)
    return tf.where(a >= 1.0, big, small)


def _student_gprime(s):
    a = tf.minimum(tf.abs(s), 1e15)  # 1e30 + 2 is finite in float32; beyond, g' is 0 anyway
    u = tf.square(a) + 2.0
    return 2.0 / u - 8.0 / tf.square(u)


@tf.custom_gradient
def _student_G(s):
    a = tf.abs(s)
    small_a = tf.minimum(a, _BIG)
    big_a = tf.maximum(a, _BIG)
    small = -tf.math.log1p(0.5 * tf.square(small_a))
    big = -(2.0 * tf.math.log(big_a) - math.log(2.0) + tf.math.log1p(2.0 / tf.square(big_a)))
    value = tf.where(a > _BIG, big, small)

    def grad(dy):
        return dy * _student_g(s)
    return value, grad


class Expert:
    """A named expert: log-potential `G`, its derivative `g` and second derivative `gprime`."""

    def __init__(self, name, G, g, gprime, description):
        self.name, self.G, self.g, self.gprime = name, G, g, gprime
        self.description = description

    def __repr__(self):
        return f"Expert({self.name!r}: {self.description})"


LOGISTIC = Expert("logistic", _logistic_G, _logistic_g, _logistic_gprime,
                  "G(s) = -log cosh(s), over-complete ICA")
STUDENT_T = Expert("student_t", _student_G, _student_g, _student_gprime,
                   "G(s) = -log(1 + s^2/2), Fields of Experts")
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
