"""The denoising benchmark behind `bin/denoise.py`: whole images, seeded noise shared by every
method, parameters tuned per σ on separate images, PSNR/SSIM/time table (.md) and rows (.json).

Methods (`--priors`):
  * a `.keras` patch prior (FoE/ICA): MAP by L-BFGS to convergence, λ tuned;
  * a `.keras` DAE: two rows, MAP with its gradient (λ tuned) and its direct output r(y);
  * `tv`: MAP with smoothed total variation (same solver), λ tuned;
  * peers: `tv_chambolle` (scikit-image, weight tuned), `nl_means` (scikit-image, h = k·σ
    with k tuned), `wavelet` (scikit-image BayesShrink, no parameter), `bm3d` (the `bm3d`
    package, no parameter; skipped with a note when it is not installed).
"""
import os
import time

import numpy as np

__all__ = ["PEERS", "load_benchmark_images", "make_method", "run_benchmark",
           "markdown_report", "run"]

PEERS = ("tv_chambolle", "nl_means", "wavelet", "bm3d")

# Published mean PSNR on the 68-image BSD test set (not set12; REFERENCE, data README).
REFERENCE_BSD68 = {"BM3D": {15: 31.07, 25: 28.57, 50: 25.62},
                   "EPLL": {15: 31.21, 25: 28.68, 50: 25.67},
                   "TNRD": {15: 31.42, 25: 28.92, 50: 25.97},
                   "DnCNN": {15: 31.73, 25: 29.23, 50: 26.23},
                   "5x5 Student-t FoE": {15: 30.99, 25: 28.40}}


def load_benchmark_images(sources, mode, image_size=0, limit=None):
    """List of [1, H, W, C] float32 0-255 images (grey: BT.601 luminance) and their names.

    image_size 0 keeps every image whole at its own size; otherwise the short side is
    resized to image_size and the image centre-cropped to a square (tfrestore.data).
    """
    from tfrestore.data.images import (ImageInputError, _to_rgb, list_image_files,
                                       load_image, load_images, read_image_list)
    from tfrestore.priors.denoising import luminance
    if isinstance(sources, str):
        sources = [s for s in sources.split(",") if s.strip()]
    if image_size:
        loaded = load_images(sources, image_size, limit=limit)
        arrays, names = [a[None] for a in loaded.images], list(loaded.paths)
    else:
        arrays, names = [], []
        for src in sources:
            if os.path.isdir(src):
                files = list_image_files(src)
            elif src.endswith(".txt") and os.path.isfile(src):
                files = read_image_list(src)
            elif os.path.isfile(src):
                files = [src]
            else:
                raise ImageInputError(f"Image source '{src}' is not a file, folder or .txt "
                                      "list (--input_size=0 reads files at their own size).")
            for f in files:
                arrays.append(_to_rgb(load_image(f))[None])
                names.append(f)
        if limit:
            arrays, names = arrays[:limit], names[:limit]
    if not arrays:
        raise ImageInputError(f"No images found in {sources}.")
    if mode == "grey":
        arrays = [luminance(a) for a in arrays]
    return arrays, names


class Method:
    """One row of the table: `run(y, sigma, param, clean=None) -> (x, info)`; `grid(sigma)`
    lists the candidate parameters (a single [None] when there is nothing to tune)."""

    def __init__(self, name, estimator, run, grid=None, param_name=None):
        self.name, self.estimator, self._run = name, estimator, run
        self._grid = grid
        self.param_name = param_name

    def grid(self, sigma):
        return [None] if self._grid is None else list(self._grid(sigma))

    def run(self, y, sigma, param, clean=None):
        return self._run(y, sigma, param, clean)


def _skimage_peer(kind, channels):
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet
    axis = -1 if channels == 3 else None

    def run(y, sigma, param, clean=None):
        img = y[0] / 255.0 if channels == 3 else y[0, ..., 0] / 255.0
        s = sigma / 255.0
        if kind == "tv_chambolle":
            out = denoise_tv_chambolle(img, weight=param, channel_axis=axis)
        elif kind == "nl_means":
            out = denoise_nl_means(img, patch_size=5, patch_distance=6, h=param * s, sigma=s,
                                   fast_mode=True, channel_axis=axis)
        else:
            out = denoise_wavelet(img, sigma=s, method="BayesShrink", mode="soft",
                                  wavelet="db2", rescale_sigma=True, channel_axis=axis,
                                  convert2ycbcr=channels == 3)
        out = np.asarray(out, np.float32) * 255.0
        return (out[None] if channels == 3 else out[None, ..., None]), {}
    return run


def _bm3d_peer(channels):
    import bm3d

    def run(y, sigma, param, clean=None):
        img = y[0].astype(np.float64) / 255.0
        if channels == 3:
            out = bm3d.bm3d_rgb(img, sigma / 255.0)
        else:
            out = bm3d.bm3d(img[..., 0], sigma / 255.0)[..., None]
        return np.asarray(out, np.float32)[None] * 255.0, {}
    return run


def make_method(spec, channels, weights, log=print, max_steps=1000, tol=1e-7,
                dae_steps=100, dae_tol=0.01, dae_estimators=("map", "direct"),
                map_optimizer="lbfgs"):
    """Methods for one `--priors` entry (a DAE gives two) and notes on skipped ones."""
    from tfrestore.priors.dae import DAEPrior
    from tfrestore.priors.denoising import (dae_direct, dae_map_denoise, map_denoise,
                                            prior_energy_fn, tv_energy)
    from tfrestore.priors import load_prior

    def energy_method(name, energy, grid):
        def run(y, sigma, lam, clean=None):
            r = map_denoise(y, energy, sigma, lam, steps=max_steps, tol=tol, clean=clean,
                            optimizer=map_optimizer)
            return r.x, {"steps": r.steps, "converged": r.converged, "trace": r.trace,
                         "objective_monotone": bool(np.all(np.diff(r.objective) <= 1e-6 *
                                                           np.abs(r.objective[:-1]) + 1e-9))}
        return Method(name, "map", run, lambda s: grid, "λ")

    if spec == "tv":
        return [energy_method("TV (MAP, L-BFGS)", tv_energy, weights["tv"])], []
    if spec in ("tv_chambolle", "nl_means", "wavelet"):
        label = {"tv_chambolle": "TV Chambolle (scikit-image)",
                 "nl_means": "non-local means (scikit-image)",
                 "wavelet": "wavelet BayesShrink (scikit-image)"}[spec]
        grid = {"tv_chambolle": lambda s: weights["tv_chambolle"],
                "nl_means": lambda s: weights["nl_means"], "wavelet": None}[spec]
        return [Method(label, "peer", _skimage_peer(spec, channels), grid,
                       {"tv_chambolle": "weight", "nl_means": "h/σ"}.get(spec))], []
    if spec == "bm3d":
        try:
            import bm3d  # noqa: F401
        except ImportError:
            note = ("BM3D skipped: the `bm3d` package is not installed "
                    "(pip install -e \".[bench]\").")
            log(note)
            return [], [note]
        return [Method("BM3D (bm3d package)", "peer", _bm3d_peer(channels))], []
    if not spec.endswith(".keras"):
        raise ValueError(f"Unknown method '{spec}': use a .keras prior, tv or one of {PEERS}.")
    prior = load_prior(spec)
    base = os.path.splitext(os.path.basename(spec))[0]
    if isinstance(prior, DAEPrior):
        if prior.channels != channels:
            raise ValueError(f"DAE {spec} models {prior.channels} channels, the images have "
                             f"{channels}: use --mode={'grey' if prior.channels == 1 else 'colour'}.")

        def run_map(y, sigma, lam, clean=None):
            r = dae_map_denoise(y, prior, sigma, lam, steps=dae_steps, tol_pixels=dae_tol,
                                clean=clean)
            return r.x, {"steps": r.steps, "converged": r.converged, "trace": r.trace}

        def run_direct(y, sigma, param, clean=None):
            return dae_direct(y, prior), {}
        both = [Method(f"{base} (MAP, DAE gradient)", "map", run_map,
                       lambda s: weights["dae"], "λ"),
                Method(f"{base} (direct r(y))", "direct", run_direct)]
        return [m for m in both if m.estimator in dae_estimators], []
    return [energy_method(f"{base} (MAP, L-BFGS)", prior_energy_fn(prior, channels),
                          weights["prior"])], []


def _evaluate(method, noisy, clean, sigma, param, trace=False):
    from tfrestore.priors.denoising import psnr, ssim
    ps, ss, secs, infos = [], [], [], []
    for y, c in zip(noisy, clean):
        t = time.perf_counter()
        x, info = method.run(y, sigma, param, c if trace else None)
        secs.append(time.perf_counter() - t)
        ps.append(float(psnr(x, c)[0]))
        ss.append(float(ssim(x, c)[0]))
        infos.append(info)
    return ps, ss, secs, infos


def noisy_versions(clean, sigma, seed):
    """The seeded noisy images shared by every method: image i gets seed (seed, σ, i)."""
    from tfrestore.priors.denoising import add_noise
    return [add_noise(c, sigma, seed=[seed, int(sigma), i]) for i, c in enumerate(clean)]


def run_benchmark(priors, images, output, mode="grey", sigmas=(15, 25, 50), tune_images=None,
                  image_size=0, tune_image_size=0, limit=None, tune_limit=4, weights=None,
                  max_steps=1000, tol=1e-7, dae_steps=100, dae_tol=0.01, seed=0, log=print,
                  tune_sigma=0, dae_estimators=("map", "direct"), merge=(),
                  map_optimizer="lbfgs"):
    """Tune every method's parameter per σ on `tune_images`, then score it on `images`.

    `tune_sigma`: tune the MAP weights λ (σ-independent in the MAP model, where σ sits in
    the data term) once at this σ and reuse them at every σ (cheaper); other parameters are
    still tuned per σ. Rows of an earlier run with the same images, mode and seed are kept,
    so methods can be added by later commands (and an interrupted run resumes).
    """
    from tfrestore.io import atomic_write, environment_info, portable_path, write_json
    if mode not in ("grey", "colour"):
        raise ValueError(f"--mode must be grey or colour, got '{mode}'.")
    sigmas = [float(s) for s in sigmas]
    if tune_sigma:
        if float(tune_sigma) not in sigmas:
            raise ValueError(f"--tune_sigma={tune_sigma:g} must be one of --sigmas {sigmas}.")
        sigmas = [float(tune_sigma)] + [s for s in sigmas if s != float(tune_sigma)]
    chosen = {}
    channels = 1 if mode == "grey" else 3
    clean, names = load_benchmark_images(images, mode, image_size, limit)
    tune, tune_names = (load_benchmark_images(tune_images, mode, tune_image_size, tune_limit)
                        if tune_images else ([], []))
    overlap = set(map(os.path.abspath, names)) & set(map(os.path.abspath, tune_names))
    if overlap:
        raise ValueError(f"Tuning and test images overlap ({sorted(overlap)[:3]}): tune on "
                         "separate images.")
    methods, notes = [], []
    for spec in priors:
        m, n = make_method(spec, channels, weights, log, max_steps, tol, dae_steps, dae_tol,
                           dae_estimators, map_optimizer)
        methods += m
        notes += n
    log(f"{len(clean)} test images, {len(tune)} tuning images, methods: "
        f"{[m.name for m in methods]}")
    json_path = os.path.splitext(output)[0] + ".json"
    # Recorded (and matched on reuse) by portable names: no machine's absolute paths.
    names = [portable_path(n) for n in names]
    tune_names = [portable_path(n) for n in tune_names]
    done = _reusable_rows(json_path, names, mode, seed)
    # Cells computed by other commands (e.g. run in parallel) replace the output's earlier
    # ones (a cell re-run with better tuning supersedes a stale one); later files win.
    for other in merge or ():
        rows_other = _reusable_rows(other, names, mode, seed)
        if not rows_other:
            raise ValueError(f"--merge {other}: missing, or not the same images, mode and seed.")
        done.update(rows_other)
    record = {"rows": [], "notes": notes, "images": names, "tune_images": tune_names,
              "mode": mode, "sigmas": sigmas, "seed": seed, "image_size": image_size,
              "weights": weights, "max_steps": max_steps, "tol": tol, "dae_steps": dae_steps,
              "dae_tol": dae_tol, "environment": environment_info(),
              **({"map_optimizer": map_optimizer} if map_optimizer != "lbfgs" else {})}
    # Cells this run does not compute (other methods or σ of earlier commands) are kept.
    now = {(name, sg) for name in [m.name for m in methods] + ["noisy input"] for sg in sigmas}
    rows = record["rows"]
    rows += [r for key, r in done.items() if key not in now]
    for sigma in sigmas:
        noisy = noisy_versions(clean, sigma, seed)
        tune_noisy = noisy_versions(tune, sigma, seed + 1)
        from tfrestore.priors.denoising import psnr, ssim
        rows.append({"method": "noisy input", "estimator": "none", "sigma": sigma,
                     "mode": mode, "psnr": float(np.mean([psnr(y, c)[0] for y, c in
                                                          zip(noisy, clean)])),
                     "ssim": float(np.mean([ssim(y, c)[0] for y, c in zip(noisy, clean)])),
                     "images": len(clean), "seconds_per_image": 0.0})
        for m in methods:
            if (m.name, sigma) in done:       # a rerun resumes: finished cells are kept
                rows.append(done[(m.name, sigma)])
                log(f"σ={sigma:g} {m.name}: kept from {json_path}")
                continue
            grid = m.grid(sigma)
            tuning = {}
            if tune_sigma and m.param_name == "λ" and m.name in chosen:
                param, tuning = chosen[m.name]
            elif len(grid) > 1:
                if not tune:
                    raise ValueError(f"{m.name} has parameters to tune: pass --tune_images.")
                for p in grid:
                    tuning[p] = float(np.mean(_evaluate(m, tune_noisy, tune, sigma, p)[0]))
                    log(f"  tune σ={sigma:g} {m.name} {m.param_name}={p:g}: "
                        f"{tuning[p]:.2f} dB")
                param = max(tuning, key=tuning.get)
                tuning = {f"{k:g}": v for k, v in tuning.items()}
                chosen[m.name] = (param, dict(tuning, tuned_at_sigma=sigma))
            else:
                param = grid[0]
            ps, ss, secs, infos = _evaluate(m, noisy, clean, sigma, param, trace=True)
            row = {"method": m.name, "estimator": m.estimator, "sigma": sigma, "mode": mode,
                   "psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)),
                   "images": len(clean), "seconds_per_image": float(np.mean(secs)),
                   "param_name": m.param_name, "param": param,
                   "tuning": tuning or None,
                   "psnr_per_image": ps, "ssim_per_image": ss}
            if infos and "steps" in infos[0]:
                row["stop"] = (f"RMS change < {dae_tol:g} or {dae_steps} steps"
                               if m.estimator == "map" and "objective_monotone" not in infos[0]
                               else f"rel. decrease < {tol:g} or {max_steps} steps")
                row["steps_mean"] = float(np.mean([i["steps"] for i in infos]))
                row["converged"] = int(sum(i["converged"] for i in infos))
                row["traces"] = [i["trace"] for i in infos]
                # Does PSNR fall after its best point along the iterations (same λ)?
                row["psnr_drop_after_best"] = float(np.mean(
                    [max(p for _, p in i["trace"]) - i["trace"][-1][1] for i in infos]))
                if "objective_monotone" in infos[0]:
                    row["objective_monotone"] = all(i["objective_monotone"] for i in infos)
            rows.append(row)
            write_json(json_path, record)     # after every cell: an interrupted run resumes
            log(f"σ={sigma:g} {m.name}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, "
                f"{row['seconds_per_image']:.2f} s/image"
                + (f" ({m.param_name}={param:g})" if param is not None else ""))
    record["sigmas"] = sorted({r["sigma"] for r in rows})
    rows.sort(key=lambda r: (r["sigma"], r["method"] != "noisy input"))
    text = markdown_report(record)
    atomic_write(output, text)
    write_json(json_path, record)
    log(f"wrote {output}\n{text}")
    return record


def _reusable_rows(json_path, names, mode, seed):
    """{(method, σ): row} from an earlier run on the same images, mode and noise seed."""
    import json
    if not os.path.exists(json_path):
        return {}
    with open(json_path) as f:
        old = json.load(f)
    if old.get("images") != names or old.get("mode") != mode or old.get("seed") != seed:
        return {}
    return {(r["method"], float(r["sigma"])): r for r in old["rows"]}


def markdown_report(record):
    from tfrestore.cli import command_line
    sigmas, rows = record["sigmas"], record["rows"]
    head = ("| method | " + " | ".join(f"σ={s:g} PSNR / SSIM" for s in sigmas)
            + " | s/image | parameter per σ |")
    lines = [head, "|" + "---|" * (3 + len(sigmas))]
    for name in dict.fromkeys(r["method"] for r in rows):
        cells, secs, params = [], [], []
        for s in sigmas:
            r = next((r for r in rows if r["method"] == name and r["sigma"] == s), None)
            if r is None:
                cells.append("–")
                continue
            cells.append(f"{r['psnr']:.2f} / {r['ssim']:.3f}")
            secs.append(r["seconds_per_image"])
            if r.get("param") is not None:
                params.append(f"{r['param']:g}")
        pname = next((r.get("param_name") for r in rows if r["method"] == name), None)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean(secs):.2f} | "
                     + (f"{pname} = " + ", ".join(params) if params else "–") + " |")
    conv = []
    for r in rows:
        if "steps_mean" in r:
            conv.append(f"| {r['method']} | {r['sigma']:g} | {r.get('stop', '–')} | "
                        f"{r['steps_mean']:.0f} | "
                        f"{r['converged']}/{r['images']} | {r['psnr_drop_after_best']:.3f} | "
                        f"{r.get('objective_monotone', '–')} |")
    ref = "\n".join(f"| {k} | " + " | ".join(f"{v[s]:.2f}" if s in v else "–" for s in sigmas)
                    + " |" for k, v in REFERENCE_BSD68.items())
    mode = record["mode"]
    text = [f"# Denoising benchmark ({mode}, {len(record['images'])} images)", "",
            "Command:", "", "```", command_line(), "```", "",
            f"Test images: {', '.join(os.path.basename(n) for n in record['images'])} "
            f"({'whole, native size' if not record['image_size'] else 'short side resized to %d, centre-cropped' % record['image_size']}). "
            f"Parameters tuned per σ on: {', '.join(os.path.basename(n) for n in record['tune_images']) or 'none'}. "
            f"Noise seed {record['seed']} (the same noisy images for every method).", "",
            "Mean PSNR (dB) / SSIM:", "", *lines, ""]
    if record["notes"]:
        text += ["Notes: " + " ".join(record["notes"]), ""]
    if conv:
        text += ["Convergence of the iterative MAP estimates (L-BFGS for energies: stop when "
                 "the relative decrease of F is below a tolerance; DAE fixed point: stop when "
                 "the RMS change of x, in grey levels, is below a tolerance; 'converged' counts "
                 "images that met the rule before the step limit). 'PSNR drop' is the mean over "
                 "images of the best PSNR along the iterations minus the final PSNR (0 = PSNR "
                 "never falls with more steps):", "",
                 "| method | σ | stop rule | mean steps | converged | PSNR drop (dB) | "
                 "F monotone |", "|---|---|---|---|---|---|---|", *conv, ""]
    text += ["Published mean PSNR on the 68-image BSD test set (other images; for scale only):",
             "", "| method | " + " | ".join(f"σ={s:g}" for s in sigmas) + " |",
             "|" + "---|" * (1 + len(sigmas)), ref, ""]
    return "\n".join(text)


def run(f, log=print):
    weights = {"tv": [float(w) for w in f.tv_weights],
               "prior": [float(w) for w in f.prior_weights],
               "dae": [float(w) for w in f.dae_weights],
               "tv_chambolle": [float(w) for w in f.chambolle_weights],
               "nl_means": [float(w) for w in f.nlm_h]}
    return run_benchmark(f.priors, f.images, f.output, f.mode, [float(s) for s in f.sigmas],
                         f.tune_images, f.input_size, f.tune_input_size, f.limit or None,
                         f.tune_limit or None, weights, f.max_steps, f.tol, f.dae_steps,
                         f.dae_tol, f.seed, log, f.tune_sigma, f.dae_estimators, f.merge,
                         f.map_optimizer)
