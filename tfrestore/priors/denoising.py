"""Denoising with learned priors (and peers) — the priors' outside yardstick.

MAP estimate for noisy y = x₀ + N(0, σ²) in the 0-255 scale:

    x̂ = argmin_x  F(x) = ‖x − y‖² / (2σ²) + λ E(x)

* Energy priors (TV, FoE, ICA — anything with a true energy and its gradient): L-BFGS
  (scipy) run until F stops falling (relative decrease below `tol` or the gradient is ~0),
  so results do not depend on an arbitrary step budget; F is monotone along the iterates
  (Wolfe line search). λ is tuned at convergence on separate images.
* DAE priors have a gradient −(r(x) − x)/σ_D² but no energy value, so no line search: the
  stationarity condition (x − y)/σ² = λ (r(x) − x)/σ_D² is solved by the damped fixed-point
  iteration x ← (1−β)x + β (y/σ² + λ r(x)/σ_D²)/(1/σ² + λ/σ_D²) (gradient descent with step
  1/(1/σ² + λ/σ_D²)), until the RMS change is below `tol_pixels`. Its direct output r(y)
  is the other DAE denoiser.
  That gradient is the score of the density smoothed at σ_D, valid for inputs that carry
  about σ_D of noise. A DAE trained at one σ_D keeps removing σ_D worth of detail once the
  iterate is cleaner than that, so its fixed point over-smooths and PSNR falls with more
  steps; a blind DAE (trained on σ ∈ [0, max], clean inputs included; `--blind_max`) follows
  the noise actually left, and its nominal σ_D is a scale that λ absorbs.

Grey images with a colour prior: the prior sees the grey image replicated to three channels.
"""
import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

__all__ = ["tv_energy", "add_noise", "psnr", "ssim", "luminance", "prior_energy_fn",
           "MAPResult", "map_denoise", "dae_map_denoise", "dae_direct", "centre_crop"]


def tv_energy(x, eps=1.0):
    """Isotropic total variation Σ sqrt(dx² + dy² + eps) per pixel and channel -> [B].

    `eps` (0-255 units squared) smooths the kink at 0 so that the energy is differentiable.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    dx = x[:, :-1, 1:] - x[:, :-1, :-1]
    dy = x[:, 1:, :-1] - x[:, :-1, :-1]
    return tf.reduce_sum(tf.sqrt(tf.square(dx) + tf.square(dy) + eps), axis=[1, 2, 3])


def add_noise(x, sigma, seed=0):
    """x + N(0, σ²) with a seeded generator (no clipping: the Gaussian model is exact)."""
    rng = np.random.default_rng(seed)
    return (np.asarray(x, np.float32) + sigma * rng.standard_normal(np.shape(x))).astype(
        np.float32)


def psnr(x, ref, peak=255.0):
    """PSNR in dB per image of x against ref ([B, H, W, C], 0-255), x clipped to [0, 255]."""
    x = np.clip(np.asarray(x, np.float64), 0, peak)
    mse = np.mean((x - np.asarray(ref, np.float64)) ** 2, axis=(1, 2, 3))
    return 10 * np.log10(peak ** 2 / np.maximum(mse, 1e-12))


def ssim(x, ref):
    """SSIM per image (tfrestore.metrics: tf.image.ssim, max_val 255), x clipped to [0, 255]."""
    from tfrestore.metrics.image import ssim as _ssim
    return np.asarray(_ssim(np.asarray(ref, np.float32),
                            np.clip(np.asarray(x, np.float32), 0, 255)))


def luminance(rgb):
    """ITU-R BT.601 luma [B, H, W, 1] of RGB 0-255 images."""
    rgb = np.asarray(rgb, np.float32)
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def prior_energy_fn(prior, channels):
    """E(x) for x with `channels` (1: grey replicated to a 3-channel prior's input)."""
    if channels == prior.channels:
        return prior
    if channels == 1 and prior.channels == 3:
        return lambda x: prior(tf.tile(x, [1, 1, 1, 3]))
    raise ValueError(f"A {prior.channels}-channel prior cannot model {channels}-channel images.")


@dataclass
class MAPResult:
    x: np.ndarray                  # estimate [B, H, W, C], float32, not clipped
    steps: int                     # iterations run
    converged: bool                # stopping test met before the step limit
    objective: list = field(default_factory=list)   # F per iteration (energy priors)
    trace: list = field(default_factory=list)       # (step, PSNR) when `clean` is given


def map_denoise(y, energy, sigma, weight=1.0, steps=1000, tol=1e-7, clean=None,
                trace_every=10, optimizer="lbfgs", lr=2.0):
    """MAP estimate with an energy prior, run until F stops falling: by L-BFGS (scipy;
    the default: a quasi-Newton method reaches the minimum in tens of iterations) or, with
    `optimizer` = "adam" or any keras optimizer name, on the optimisation engine (cosine
    schedule from `lr` pixels, stopped by `ConvergenceStop` at relative change `tol`).

    Args:
      y: noisy images [B, H, W, C], 0-255 scale.
      energy: callable x -> [B] energies (a `PatchPrior`, `tv_energy`, ...).
      sigma: noise standard deviation (0-255 scale); weight: λ.
      steps: iteration limit; tol: stop when (F_k − F_{k+1}) / max(|F_k|, 1) <= tol.
      clean: optional reference; PSNR of the iterates is traced every `trace_every` steps
        (monitoring only: it never influences the estimate).
    """
    if optimizer != "lbfgs":
        return _map_denoise_engine(y, energy, sigma, weight, steps, tol, clean, trace_every,
                                   optimizer, lr)
    from scipy.optimize import minimize
    from tfrestore.io import cap_steps
    y = np.asarray(y, np.float32)
    shape = y.shape
    yt = tf.constant(y)
    inv2s2 = 1.0 / (2.0 * float(sigma) ** 2)
    weight = float(weight)

    @tf.function
    def value_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            f = tf.reduce_sum(tf.square(x - yt)) * inv2s2 + weight * tf.reduce_sum(energy(x))
        return f, tape.gradient(f, x)

    def fun(v):
        f, g = value_and_grad(tf.constant(v.reshape(shape), tf.float32))
        return float(f), np.asarray(g, np.float64).reshape(-1)

    objective, trace, count = [], [], [0]

    def callback(intermediate_result):
        count[0] += 1
        objective.append(float(intermediate_result.fun))
        if clean is not None and count[0] % trace_every == 0:
            trace.append((count[0], float(np.mean(psnr(
                intermediate_result.x.reshape(shape), clean)))))

    objective.append(fun(y.reshape(-1).astype(np.float64))[0])
    res = minimize(fun, y.reshape(-1).astype(np.float64), jac=True, method="L-BFGS-B",
                   callback=callback,
                   options={"maxiter": cap_steps(steps), "ftol": tol, "gtol": 1e-6,
                            "maxcor": 20})
    x = res.x.reshape(shape).astype(np.float32)
    if clean is not None:
        trace.append((int(res.nit), float(np.mean(psnr(x, clean)))))
    # L-BFGS-B reports status 0 when ftol/gtol was met, 1 at the iteration limit.
    return MAPResult(x, int(res.nit), res.status == 0, objective, trace)


def _map_denoise_engine(y, energy, sigma, weight, steps, tol, clean, trace_every, optimizer,
                        lr):
    """`map_denoise` on `tfrestore.engine` (first-order; per-image objectives)."""
    from tfrestore import engine as E
    from tfrestore.io import cap_steps
    y = np.asarray(y, np.float32)
    yt = tf.constant(y)
    x = tf.Variable(y)
    inv2s2 = 1.0 / (2.0 * float(sigma) ** 2)
    weight = float(weight)
    steps = cap_steps(steps)

    def loss(step, n):
        data = tf.reduce_sum(tf.square(x - yt), axis=[1, 2, 3]) * inv2s2
        prior = weight * tf.reshape(energy(x), [-1])
        return data + prior, {"data": data, "prior": prior}

    eng = E.Engine(x, loss, E.make_optimizer(optimizer, E.make_schedule("cosine", steps, [lr])))
    history = E.History(every=1)
    stop = E.ConvergenceStop(rtol=max(tol, 1e-5), window=20)
    cbs = [E.NanGuard(), history, stop]
    if clean is not None:
        curve = E.CurveRecorder(lambda: {"psnr": float(np.mean(psnr(x.numpy(), clean)))},
                                every=trace_every)
        cbs.append(curve)
    r = eng.run(steps, cbs)
    objective = [h["loss"] * len(y) for h in history.records]
    trace = [(c["step"], c["psnr"]) for c in curve.records] if clean is not None else []
    return MAPResult(x.numpy(), r.steps, stop.converged_at is not None, objective, trace)


def dae_map_denoise(y, prior, sigma, weight=1.0, steps=100, tol_pixels=0.01, beta=1.0,
                    clean=None, trace_every=5):
    """MAP-style estimate with a `DAEPrior`: damped fixed point of the stationarity condition.

    The DAE prior's gradient is −(r(x) − x)/σ_D²; the update is a gradient step of size
    β/(1/σ² + λ/σ_D²) on F, i.e. a move towards the σ- and σ_D-weighted average of y and
    r(x). Stops when the RMS change of x is below `tol_pixels` (0-255 units). Use a blind
    DAE (module docstring); with λ large the map stops being a contraction and diverges.
    """
    from tfrestore.io import cap_steps
    y = np.asarray(y, np.float32)
    x = tf.constant(y)
    yt = tf.constant(y)
    s2 = float(sigma) ** 2
    sd2 = tf.square(prior.dae.sigma_natural())     # [C]
    a = 1.0 / s2 + float(weight) / sd2

    @tf.function
    def update(x):
        r = prior.dae(x)
        target = (yt / s2 + float(weight) * r / sd2) / a
        new = (1.0 - beta) * x + beta * target
        return new, tf.sqrt(tf.reduce_mean(tf.square(new - x)))

    trace, converged, k = [], False, 0
    for k in range(1, cap_steps(steps) + 1):
        x, change = update(x)
        if clean is not None and k % trace_every == 0:
            trace.append((k, float(np.mean(psnr(x.numpy(), clean)))))
        if float(change) < tol_pixels:
            converged = True
            break
    x = x.numpy()
    if clean is not None and (not trace or trace[-1][0] != k):
        trace.append((k, float(np.mean(psnr(x, clean)))))
    return MAPResult(x, k, converged, [], trace)


def dae_direct(y, prior):
    """The DAE's own denoised output r(y)."""
    return np.asarray(prior.dae(tf.constant(np.asarray(y, np.float32))))


def centre_crop(images, size):
    """Centre crop [B, H, W, C] to size x size."""
    h, w = images.shape[1:3]
    if size > min(h, w):
        raise ValueError(f"Crop {size} exceeds the image size {h}x{w}.")
    t, l = (h - size) // 2, (w - size) // 2
    return images[:, t:t + size, l:l + size]


def timed(fn, *args, **kw):
    """(fn(*args, **kw), seconds)."""
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t
