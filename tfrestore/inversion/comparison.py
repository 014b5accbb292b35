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


def markdown_table(results, layers, method_names):
    """One table per metric: rows methods, columns layers, mean ± std over images."""
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
                row.append(_fmt(c["per_image"][metric], metric)
                           if metric in c.get("per_image", {}) else "–")
            out.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"
