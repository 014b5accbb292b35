"""MAP denoising with a patch prior (or total variation) — the prior's outside yardstick.

    x̂ = argmin_x  ‖x − y‖² / (2σ²) + λ E(x)

for noisy y = x₀ + N(0, σ²) in the 0-255 scale. With λ = 1 this is the MAP estimate of the
probabilistic model (E = −log p up to a constant); overlapping MRF cliques over-count the
evidence of each pixel, so λ is tuned on separate images (`tune_weight`).

Grey images with the colour (8x8x3) prior: the grey image is the prior's input replicated to
three channels (R = G = B = luminance), i.e. E_grey(x) = E([x, x, x]); the noise and the data
term live on the single grey channel.
"""
import keras
import numpy as np
import tensorflow as tf

__all__ = ["tv_energy", "add_noise", "psnr", "luminance", "map_denoise", "tune_weight",
           "prior_energy_fn", "centre_crop", "denoising_benchmark", "markdown_table",
           "REFERENCE_PSNR"]


def tv_energy(x, eps=1.0):
    """Isotropic total variation Σ sqrt(dx² + dy² + eps) per pixel and channel -> [B].

    `eps` (0-255 units squared) smooths the kink at 0 so that gradient descent converges.
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


def luminance(rgb):
    """ITU-R BT.601 luma [B, H, W, 1] of RGB 0-255 images."""
    rgb = np.asarray(rgb, np.float32)
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def prior_energy_fn(prior, channels):
    """E(x) for x with `channels` (1: grey replicated to the prior's 3 channels)."""
    if channels == prior.channels:
        return prior
    if channels == 1 and prior.channels == 3:
        return lambda x: prior(tf.tile(x, [1, 1, 1, 3]))
    raise ValueError(f"A {prior.channels}-channel prior cannot model {channels}-channel images.")


def map_denoise(y, energy, sigma, weight=1.0, steps=300, lr=2.0, x0=None):
    """Gradient-based MAP estimate (Adam, cosine-decayed step) for a batch y [B, H, W, C].

    Args:
      y: noisy images, 0-255 scale.
      energy: callable x -> [B] energies (a `PatchPrior`, `tv_energy`, ...).
      sigma: noise standard deviation (0-255 scale).
      weight: λ, the prior's weight.
      steps, lr: optimisation length and initial step (pixels); the step decays to ~0.
    Returns:
      x̂ [B, H, W, C] float32 (not clipped).
    """
    y = tf.constant(np.asarray(y, np.float32))
    x = tf.Variable(y if x0 is None else tf.constant(np.asarray(x0, np.float32)))
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.01))
    inv2s2 = 1.0 / (2.0 * float(sigma) ** 2)
    weight = float(weight)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            obj = tf.reduce_sum(tf.square(x - y)) * inv2s2 + weight * tf.reduce_sum(energy(x))
        opt.apply_gradients([(tape.gradient(obj, x), x)])
        return obj

    for _ in range(int(steps)):
        step()
    return x.numpy()


def tune_weight(clean, energy, sigma, weights, seed=0, **kw):
    """Pick λ from `weights` by mean PSNR on `clean` tuning images; returns (best, table)."""
    y = add_noise(clean, sigma, seed)
    table = {}
    for w in weights:
        table[float(w)] = float(np.mean(psnr(map_denoise(y, energy, sigma, w, **kw), clean)))
    best = max(table, key=table.get)
    return best, table


# Published anchor (REFERENCE §3; Schmidt & Roth, CVPR 2014, 68 BSDS grey images).
REFERENCE_PSNR = {"5x5 FoE (Gao & Roth 2012)": {15: 30.99, 25: 28.40},
                  "BM3D": {15: 31.08, 25: 28.56}, "EPLL": {15: 31.19, 25: 28.68}}


def centre_crop(images, size):
    """Centre crop [B, H, W, C] to size x size."""
    h, w = images.shape[1:3]
    if size > min(h, w):
        raise ValueError(f"Crop {size} exceeds the image size {h}x{w}.")
    t, l = (h - size) // 2, (w - size) // 2
    return images[:, t:t + size, l:l + size]


def denoising_benchmark(methods, clean_rgb, sigmas=(15, 25), modes=("grey", "colour"),
                        tune_rgb=None, weight_grid=None, steps=100, lr=2.0, seed=0, log=print,
                        tune_once=False):
    """PSNR of MAP denoising for each method, σ and grey/colour mode.

    Args:
      methods: {name: energy} where energy is a `PatchPrior` or "tv".
      clean_rgb: test images [B, H, W, 3] RGB 0-255.
      tune_rgb: separate images for choosing λ per (method, mode, σ) from `weight_grid`
        ({name: [λ, ...]}); without them λ = 1 (the probabilistic model's value).
      tune_once: choose λ once per method, at the first mode and the largest σ, and reuse
        it (in the MAP objective σ sits in the data term, so λ need not change with σ).
    Returns:
      {"rows": [{method, mode, sigma, weight, psnr_mean, psnr_per_image, tuning}], "noisy": ...}
    """
    rows, noisy_rows = [], []
    chosen = {}
    for mode in modes:
        clean = luminance(clean_rgb) if mode == "grey" else np.asarray(clean_rgb, np.float32)
        tune = None
        if tune_rgb is not None:
            tune = luminance(tune_rgb) if mode == "grey" else np.asarray(tune_rgb, np.float32)
        c = clean.shape[-1]
        for si, sigma in enumerate(sigmas):
            y = add_noise(clean, sigma, seed + 100 * si + (0 if mode == "grey" else 1))
            noisy_rows.append({"mode": mode, "sigma": sigma,
                               "psnr_mean": float(np.mean(psnr(y, clean)))})
            for name, method in methods.items():
                energy = tv_energy if method == "tv" else prior_energy_fn(method, c)
                weight, tuning = 1.0, None
                if tune_once and name in chosen:
                    weight, tuning = chosen[name]
                elif tune is not None and weight_grid and name in weight_grid:
                    if tune_once:   # tune where the prior matters most: the largest σ
                        t_sigma = max(sigmas)
                    else:
                        t_sigma = sigma
                    weight, tuning = tune_weight(tune, energy, t_sigma, weight_grid[name],
                                                 seed=seed + 7, steps=steps, lr=lr)
                    tuning = {"sigma": t_sigma, "mode": mode, "psnr": tuning}
                    chosen[name] = (weight, tuning)
                x = map_denoise(y, energy, sigma, weight, steps=steps, lr=lr)
                p = psnr(x, clean)
                rows.append({"method": name, "mode": mode, "sigma": sigma, "weight": weight,
                             "psnr_mean": float(p.mean()), "psnr_per_image": p.tolist(),
                             "tuning": tuning})
                log(f"{mode} sigma={sigma} {name}: lambda={weight:g} PSNR {p.mean():.2f} dB "
                    f"(noisy {noisy_rows[-1]['psnr_mean']:.2f})")
    return {"rows": rows, "noisy": noisy_rows}


def markdown_table(result, sigmas=(15, 25), modes=("grey", "colour")):
    """Mean-PSNR table: one row per method, columns mode x σ; reference rows appended."""
    head = "| method | " + " | ".join(f"{m} σ={s}" for m in modes for s in sigmas) + " |"
    lines = [head, "|" + "---|" * (1 + len(modes) * len(sigmas))]

    def cell(rows, method, mode, sigma):
        for r in rows:
            if r.get("method", "noisy") == method and r["mode"] == mode and r["sigma"] == sigma:
                lam = f" (λ={r['weight']:g})" if "weight" in r else ""
                return f"{r['psnr_mean']:.2f}{lam}"
        return "–"
    lines.append("| noisy input | " + " | ".join(
        cell(result["noisy"], "noisy", m, s) for m in modes for s in sigmas) + " |")
    for method in dict.fromkeys(r["method"] for r in result["rows"]):
        lines.append(f"| {method} | " + " | ".join(
            cell(result["rows"], method, m, s) for m in modes for s in sigmas) + " |")
    for name, ref in REFERENCE_PSNR.items():
        lines.append(f"| *{name}, 68 BSDS grey images (REFERENCE §3)* | " + " | ".join(
            (f"*{ref[s]:.2f}*" if m == "grey" and s in ref else "–")
            for m in modes for s in sigmas) + " |")
    return "\n".join(lines)
