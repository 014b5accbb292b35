"""Score matching objective for products of experts (Hyvärinen 2005; REFERENCE §3).

For log p(x) = Σ_k α_k G(w_kᵀx) − log Z on (whitened) x ∈ R^d, the score is
ψ(x) = ∇ₓ log p = Σ_k α_k g(w_kᵀx) w_k = W (α ⊙ g(Wᵀx)), and the objective
  J = E_x[ tr ∇ψ(x) + ½‖ψ(x)‖² ] = E_x[ Σ_k α_k g'(w_kᵀx)‖w_k‖² + ½‖ψ(x)‖² ]
equals the Fisher divergence to the data up to a constant. Computing ψ first costs
O(T·N·d) for T samples, N experts, d dimensions. The seed's form expands ½‖ψ‖² as a double
sum over expert pairs, ½ Σ_{k,l} α_k α_l (w_kᵀw_l) E[g_k g_l], i.e. O(T·N² + N²·d):
`score_matching_pairwise` implements it for the benchmark and as a cross-check.

Training uses `value_and_gradients`: the objective of unit-norm filters with the
normalisation folded into the [T, N] responses (`normalize=True`), and objective plus
gradients compiled together by XLA, which fuses the element-wise passes over the [d, N]
filter matrix that dominate the step once the matmuls are O(T·N·d)
(bench/bench_score_matching.py).

`field_score_matching_loss` fits the prior as what denoising and inversion use: a field
(MRF) on whole images, log p(x) = Σ_positions Σ_k α_k G(s_k) with s = conv(x, K) + b. A
patch model applied at every position counts each pixel in ph·pw cliques, so its score
on an image is not the one the patch fit matched; the field objective matches that score,
in pixel coordinates (the metric of white Gaussian noise, unlike the whitened one).
"""
import tensorflow as tf

from tfrestore.priors.experts import get_expert

__all__ = ["score_matching_loss", "score_matching_pairwise", "score", "value_and_gradients",
           "field_score_matching_loss"]


def score(x, w, alpha, expert):
    """ψ(x) = W (α ⊙ g(Wᵀx)) for x [T, d], w [d, N], alpha [N] -> [T, d]."""
    expert = get_expert(expert)
    return tf.matmul(alpha * expert.g(tf.matmul(x, w)), w, transpose_b=True)


def score_matching_loss(x, w, alpha, expert, normalize=False):
    """Score-matching objective in the O(T·N·d) form.

    Args:
      x: [T, d] samples (whitened patches).
      w: [d, N] filters (columns w_k).
      alpha: [N] positive expert weights.
      expert: an `Expert` or its name.
      normalize: use the unit-norm filters w_k / ‖w_k‖ (as `PatchPrior.model_filters`,
        with its 1e-12 guard) without forming them: the column scales are applied to the
        [T, N] responses instead of the [d, N] matrix, which saves several passes over W
        (and its gradient) when d·N is large.
    Returns:
      (J, trace_term, norm_term), batch means of Σ α g'‖w‖² and ½‖ψ‖²; J is their sum.
    """
    expert = get_expert(expert)
    sq_norms = tf.reduce_sum(tf.square(w), axis=0)             # [N]
    s = tf.matmul(x, w)                                        # [T, N]
    if normalize:
        inv = tf.math.rsqrt(sq_norms + 1e-12)
        s = s * inv                                            # responses of w_k / ‖w_k‖
        sq_norms = sq_norms * tf.square(inv)
        coef = alpha * inv                                     # ψ = W diag(α / ‖w‖) g(s)
    else:
        coef = alpha
    trace = tf.reduce_mean(tf.reduce_sum(alpha * sq_norms * expert.gprime(s), axis=1))
    psi = tf.matmul(coef * expert.g(s), w, transpose_b=True)   # [T, d]
    norm = 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(psi), axis=1))
    return trace + norm, trace, norm


def score_matching_pairwise(x, w, alpha, expert):
    """The same objective with ½‖ψ‖² as the seed's double sum over expert pairs (O(N²))."""
    expert = get_expert(expert)
    s = tf.matmul(x, w)
    gram = tf.matmul(w, w, transpose_a=True)                   # [N, N] w_kᵀ w_l
    sq_norms = tf.linalg.diag_part(gram)
    trace = tf.reduce_mean(tf.reduce_sum(alpha * sq_norms * expert.gprime(s), axis=1))
    ag = alpha * expert.g(s)                                   # [T, N]
    t = tf.cast(tf.shape(x)[0], x.dtype)
    cross = tf.matmul(ag, ag, transpose_a=True) / t            # [N, N] E[α_k g_k α_l g_l]
    norm = 0.5 * tf.reduce_sum(cross * gram)
    return trace + norm, trace, norm


def field_score_matching_loss(prior, x):
    """Score-matching objective of a `PatchPrior` as a field, on image crops x [B, H, W, C].

    With s = conv(x, K) + b (K, b: `prior.kernel_and_bias()`, natural scale) the score and
    the diagonal of its Jacobian are two transposed convolutions:
        ψ(x)  = ∇ₓ log p = Σ_k conv_transpose(α_k g(s_k), K_k)
        ∂ψ_i/∂x_i = Σ_k conv_transpose(α_k g'(s_k), K_k ∘ K_k)_i.
    Only pixels at least ph−1 (pw−1) from the border count: every clique that contains
    them lies inside the crop, so their ψ_i is the score of the whole-image field's
    conditional p(x_i | rest) and the objective is unbiased for the field, with no
    boundary model. Layouts "full" and "separable".
    Returns:
      (J, trace_term, norm_term), means per counted pixel and channel.
    """
    if prior.layout == "channelwise":
        raise ValueError("Field score matching covers the 'full' and 'separable' layouts.")
    x = tf.convert_to_tensor(x, tf.float32)
    k, bias = prior.kernel_and_bias()
    s = tf.nn.conv2d(x, k, 1, "VALID") + bias
    alpha, shape = prior.alpha(), tf.shape(x)
    psi = tf.nn.conv2d_transpose(alpha * prior.expert.g(s), k, shape, 1, "VALID")
    diag = tf.nn.conv2d_transpose(alpha * prior.expert.gprime(s), tf.square(k), shape, 1,
                                  "VALID")
    mh, mw = prior.patch_size[0] - 1, prior.patch_size[1] - 1
    inner = lambda t: t[:, mh:shape[1] - mh, mw:shape[2] - mw, :]  # noqa: E731
    trace = tf.reduce_mean(inner(diag))
    norm = 0.5 * tf.reduce_mean(tf.square(inner(psi)))
    return trace + norm, trace, norm


def value_and_gradients(raw_filters, alpha, expert, params, jit_compile=True):
    """A compiled x [T, d] -> ((J, trace, norm), gradients of J w.r.t. `params`).

    Args:
      raw_filters: callable -> [d, N] filters before normalisation (the objective is that of
        the unit-norm filters w_k / ‖w_k‖, as `PatchPrior.model_filters`).
      alpha: callable -> [N] expert weights.
      expert: an `Expert` or its name.
      params: the variables to differentiate with respect to.
      jit_compile: compile objective and gradients with XLA (one graph, element-wise
        passes fused); False gives the same numbers through ordinary TensorFlow kernels.
    """
    expert = get_expert(expert)
    params = list(params)

    @tf.function(jit_compile=jit_compile)
    def fn(x):
        with tf.GradientTape() as tape:
            j, t1, t2 = score_matching_loss(x, raw_filters(), alpha(), expert, normalize=True)
        return (j, t1, t2), tape.gradient(j, params)

    return fn
