"""Method comparison: every method at every layer on one image set, resumable.

Results accumulate in a JSON file written atomically after each (layer, method) cell;
a rerun with the same settings skips the cells it already has for unchanged methods, so
an interrupted comparison resumes where it stopped and a changed method is rerun alone. `markdown_table` renders mean ± std per metric,
rows = methods, columns = layers.
"""
import dataclasses
import json
import os

import numpy as np

from tfrestore.io import write_json

__all__ = ["run_comparison", "markdown_table", "METRICS"]

METRICS = ("ssim", "psnr", "feature_error", "perceptual", "mse")


def _cell_key(layer, method):
    return f"{layer} | {method}"


def run_comparison(classifier, layers, methods, images, paths, results_path, steps=None,
                   seed=0, perceptual=None, settings=None, log=print, keep_examples=1):
    """Run every method at every layer; returns the results dict (also saved).

    Args:
      layers: layer names to invert.
      methods: `Method`s.
      images: [N, H, W, 3] RGB 0-255 test images; paths: their names.
      results_path: JSON file; existing cells with equal `settings` and an unchanged
        method definition are reused.
      keep_examples: reconstructions of the first images kept for figures (in an .npz
        beside the JSON).
    """
    from tfrestore.inversion.methods import MethodUnavailable
    from tfrestore.io import save_npz
    from tfrestore.metrics import evaluate_reconstructions
    settings = dict(settings or {}, steps=steps, seed=seed, images=list(paths))
    results = {"settings": settings, "cells": {}}
    if os.path.exists(results_path):
        with open(results_path) as f:
            old = json.load(f)
        if old.get("settings") == json.loads(json.dumps(settings)):
            results = old
            log(f"Resuming: {len(results['cells'])} cell(s) already in {results_path}")
        else:
            log(f"Settings differ from {results_path}: starting afresh")
    examples_path = os.path.splitext(results_path)[0] + "_examples.npz"
    examples = dict(np.load(examples_path)) if os.path.exists(examples_path) and \
        results["cells"] else {}
    for layer in layers:
        for method in methods:
            key = _cell_key(layer, method.name)
            spec = json.loads(json.dumps(dataclasses.asdict(method)))
            if results["cells"].get(key, {}).get("spec") == spec:
                continue
            try:
                rec, seconds, record = method.reconstruct(classifier, layer, images,
                                                          steps=steps, seed=seed)
            except MethodUnavailable as e:
                log(f"{key}: skipped ({e})")
                results["cells"][key] = {"layer": layer, "method": method.name,
                                         "spec": spec, "skipped": str(e)}
                write_json(results_path, results)
                continue
            metrics = evaluate_reconstructions(classifier, images, rec, layer,
                                               perceptual=perceptual)
            cell = {"layer": layer, "method": method.name, "spec": spec, "seconds": seconds,
                    "record": record,
                    "per_image": {k: np.asarray(v).tolist() for k, v in metrics.items()}}
            results["cells"][key] = cell
            examples[key] = np.clip(rec[:keep_examples], 0, 255).astype(np.uint8)
            summary = " ".join(f"{k}={np.mean(v):.4g}" for k, v in metrics.items())
            log(f"{key}: {summary} ({seconds:.0f}s)")
            save_npz(examples_path, **examples)
            write_json(results_path, results)
    return results


def _fmt(values, metric):
    v = np.asarray(values, np.float64)
    digits = {"psnr": 2, "mse": 0}.get(metric, 3)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def _unconverged(cell):
    """An optimisation cell that did not meet the convergence criterion at its end."""
    return cell.get("record", {}).get("converged") is False


def paired_table(results, layers, method_names, baseline, metric="ssim"):
    """Each method against `baseline` on the same images: mean difference [95% bootstrap
    interval], wins/ties/losses and the Wilcoxon signed-rank p, per layer."""
    from tfrestore.metrics.paired import paired_summary
    cells = results["cells"]
    higher = metric not in ("feature_error", "perceptual", "mse")
    out = [f"\n**{metric}: paired against {baseline}** (difference method − {baseline}; "
           f"[95% bootstrap interval]; wins/ties/losses over images; Wilcoxon p)\n",
           "| method | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
    for name in method_names:
        if name == baseline:
            continue
        row = []
        for layer in layers:
            a = cells.get(_cell_key(layer, name), {}).get("per_image", {}).get(metric)
            b = cells.get(_cell_key(layer, baseline), {}).get("per_image", {}).get(metric)
            if a is None or b is None:
                row.append("–")
                continue
            s = paired_summary(a, b, higher_is_better=higher)
            row.append(f"{s['mean_difference']:+.3f} [{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}] "
                       f"{s['wins']}/{s['ties']}/{s['losses']} p={s['wilcoxon_p']:.2g}")
        out.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def markdown_table(results, layers, method_names, baseline=None):
    """One table per metric: rows methods, columns layers, mean ± std over images; † marks
    a cell whose optimisation did not meet the convergence criterion at its end. With a
    `baseline` method, paired tables (SSIM, feature error) against it follow."""
    cells = results["cells"]
    metrics = [m for m in METRICS if any(m in c.get("per_image", {}) for c in cells.values())]
    out = []
    for metric in metrics:
        arrow = "lower is better" if metric in ("feature_error", "perceptual", "mse") \
            else "higher is better"
        out.append(f"\n**{metric}** ({arrow})\n")
        out.append("| method | " + " | ".join(layers) + " |")
        out.append("|---|" + "---|" * len(layers))
        for name in method_names:
            row = []
            for layer in layers:
                c = cells.get(_cell_key(layer, name), {})
                row.append(_fmt(c["per_image"][metric], metric) + (" †" if _unconverged(c)
                                                                   else "")
                           if metric in c.get("per_image", {}) else "–")
            out.append(f"| {name} | " + " | ".join(row) + " |")
    if any(_unconverged(c) for c in cells.values()):
        out.append("\n† not converged: the objective still changed by more than the "
                   "criterion (record.convergence) when the step budget ran out.")
    if baseline is not None and baseline in method_names:
        for metric in ("ssim", "feature_error"):
            out.append(paired_table(results, layers, method_names, baseline, metric))
    return "\n".join(out) + "\n"
