"""Method comparison: every method at every layer on one image set, resumable.

Results accumulate in a JSON file written atomically after each (layer, method) cell;
a rerun with the same settings skips the cells it already has for unchanged methods, so
an interrupted comparison resumes where it stopped and a changed method is rerun alone.
`markdown_table` renders the mean per metric with its 95% bootstrap interval, rows = methods,
columns = layers.

Sharding (`shard=(I, N)`, `--shard=I/N`): cell k (in layer-major order) belongs to shard
k mod N. A shard writes its cells to OUTPUT.shard-I-of-N.json (and _examples.npz) only, so
N machines sharing a folder never write the same file; every run first merges the cells of
OUTPUT.json and all shard files with the same settings, so the last shard to finish (or a
rerun without --shard, which then computes nothing) has the whole table.
"""
import dataclasses
import json
import os

import numpy as np

from tfrestore.io import write_json

__all__ = ["run_comparison", "markdown_table", "budget_table", "end_of_run_table", "end_slope",
           "METRICS", "cells_table", "parse_shard", "shard_path", "load_results", "missing_cells",
           "curve_evaluator", "wide_table", "spec_at", "has_spec", "wanted_specs",
           "study_settings", "status_table"]

METRICS = ("ssim", "psnr", "feature_error", "perceptual", "mse")
LOWER_IS_BETTER = ("feature_error", "perceptual", "mse")   # the other metrics: higher


def _cell_key(layer, method):
    return f"{layer} | {method}"


def _layer_of(key):
    return key.split(" | ", 1)[0]


def parse_shard(text):
    """'I/N' -> (I, N) with 0 <= I < N (None or '' -> None); a one-line error otherwise."""
    if not text:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise ValueError(f"--shard={text}: expected I/N with 0 <= I < N (e.g. --shard=0/4 "
                         f"... --shard=3/4 on four machines).")
    return i, n


def shard_path(results_path, shard):
    """The file shard (I, N) writes its cells to (`results_path` itself when unsharded)."""
    if not shard or shard[1] == 1:
        return results_path
    base, ext = os.path.splitext(results_path)
    return f"{base}.shard-{shard[0]}-of-{shard[1]}{ext}"


def _examples_path(path):
    return os.path.splitext(path)[0] + "_examples.npz"


def spec_at(spec, layer, fingerprint=False):
    """A method's spec (dict) as it applies at `layer`: its priors and inverter for that
    layer only. A cell is keyed by this, so giving a method a new weight or inverter at one
    layer leaves its finished cells at the other layers valid. Idempotent, so recorded
    specs (whole methods, as older studies stored them) compare equal when they agree.
    `fingerprint` adds "files": {path: SHA-256 prefix} of every prior and inverter file
    it reads there, so a prior retrained into the same path does not pass for the old one.
    """
    spec = dict(spec or {})
    priors = spec.get("priors") or {}
    here = priors.get(layer, priors.get("*"))
    spec["priors"] = {layer: list(here)} if here else {}
    inverter = spec.get("inverter") or {}
    spec["inverter"] = {layer: inverter[layer]} if layer in inverter else {}
    if fingerprint:
        from tfrestore.inversion.learned import parse_prior_spec
        from tfrestore.io import file_sha256
        paths = [parse_prior_spec(p).path for p in spec["priors"].get(layer, [])]
        paths += list(spec["inverter"].values())
        spec["files"] = {p: file_sha256(p)[:16] if os.path.isfile(p) else None
                         for p in paths}
    return spec


def has_spec(cell, layer, spec):
    """Whether a stored cell (or None) was made by `spec` (a `spec_at` of `layer`). A cell
    recorded before file fingerprints were kept is judged without them."""
    if not cell or spec is None:
        return False
    recorded = spec_at(cell.get("spec"), layer)
    if "files" not in recorded:
        spec = {k: v for k, v in spec.items() if k != "files"}
    return recorded == spec


def wanted_specs(layers, methods):
    """{cell key: method spec at the cell's layer, with its files' fingerprints} of the
    (layer, method) cells a run or a render wants: where files hold a cell under several
    method definitions, the current one wins."""
    return {_cell_key(l, m.name): spec_at(json.loads(json.dumps(dataclasses.asdict(m))), l,
                                          fingerprint=True)
            for l in layers for m in methods}


CELL_SPEC_FILE = "cell_spec.json"   # in a cell's folder: the spec it was started under


def _serves(cell_dir, spec):
    """Whether a cell folder was started under `spec` (folders from before specs were
    kept in them count as serving it: they are resumed)."""
    path = os.path.join(cell_dir, CELL_SPEC_FILE)
    if not os.path.exists(path):
        return True
    with open(path) as f:
        return json.load(f) == spec


def _claim_cell_dir(cell_dir, key, spec, log):
    """A cell's checkpoint folder serves one method definition: one started under another
    (a changed weight, a retrained prior) is discarded rather than resumed."""
    import shutil
    from tfrestore.io import make_folder
    if not _serves(cell_dir, spec):
        shutil.rmtree(cell_dir)
        log(f"{key}: its method changed since the cell started; restarting it")
    make_folder(cell_dir, "cell folder")
    path = os.path.join(cell_dir, CELL_SPEC_FILE)
    if not os.path.exists(path):
        write_json(path, spec)


def load_results(results_path, settings, wanted=None, log=print):
    """(results, examples, files used) merged from `results_path` and its shard files whose
    settings equal `settings`; where files disagree on a cell, the one whose method spec
    is in `wanted` ({cell key: spec}) wins."""
    import glob
    base, ext = os.path.splitext(results_path)
    files = [results_path] + sorted(glob.glob(f"{glob.escape(base)}.shard-*-of-*{ext}"))
    settings = json.loads(json.dumps(settings))
    results, examples, merged = {"settings": settings, "cells": {}}, {}, []
    wanted = wanted or {}
    for path in files:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            old = json.load(f)
        if old.get("settings") != settings:
            log(f"Settings differ from {path}: its cells are not used")
            continue
        taken = []
        for key, cell in old["cells"].items():
            have = results["cells"].get(key)
            layer = cell.get("layer")
            if have is None or (not has_spec(have, layer, wanted.get(key))
                                and has_spec(cell, layer, wanted.get(key))):
                results["cells"][key] = cell
                taken.append(key)
        ex = _examples_path(path)
        if os.path.exists(ex) and taken:
            with np.load(ex) as z:
                examples.update({k: z[k] for k in taken if k in z.files})
        merged.append(path)
    return results, examples, merged


def missing_cells(results, layers, methods):
    """Keys of the (layer, method) cells not yet in `results` with the method's spec."""
    return [key for key, spec in wanted_specs(layers, methods).items()
            if not has_spec(results["cells"].get(key), _layer_of(key), spec)]


def study_settings(settings, steps, seed, paths):
    """The settings a comparison's results are recorded and matched under: the run's own
    (classifier, ...) with the step cap, the seed and the images by portable name."""
    from tfrestore.io import portable_path
    return dict(settings or {}, steps=steps, seed=seed,
                images=[portable_path(p) for p in paths])


def _slug(key):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def status_table(results, layers, methods, work_dir=None):
    """Where a long study stands, cell by cell: done (steps, ✓ converged / † cap, seconds),
    skipped (why), in progress (the last step its curve recorded in `work_dir`, and its
    seconds so far), or pending; a changed method definition counts as pending."""
    counts = {"done": 0, "in progress": 0, "pending": 0, "skipped": 0}
    out = ["| method | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
    specs = wanted_specs(layers, methods)
    for method in methods:
        row = []
        for layer in layers:
            key = _cell_key(layer, method.name)
            spec = specs[key]
            cell = results["cells"].get(key, {})
            curve = os.path.join(work_dir, _slug(key), "curve.json") if work_dir else None
            if method.unavailable_at(layer):
                counts["skipped"] += 1
                row.append("n/a (nothing for this layer)")
            elif has_spec(cell, layer, spec) and "skipped" in cell:
                counts["skipped"] += 1
                row.append("skipped")
            elif has_spec(cell, layer, spec):
                counts["done"] += 1
                rec = cell.get("record", {})
                mark = _convergence_mark(rec)
                steps = rec.get("steps_run")
                row.append(f"{'network' if steps is None else steps}{mark}, "
                           f"{cell.get('seconds', 0):.0f} s")
            elif curve and os.path.exists(curve) and _serves(os.path.dirname(curve), spec):
                counts["in progress"] += 1
                with open(curve) as f:
                    points = json.load(f)
                last = points[-1] if points else {"step": 0, "seconds": 0}
                row.append(f"running: step {last['step']}, {last['seconds']:.0f} s")
            else:
                counts["pending"] += 1
                row.append("pending")
        out.append(f"| {method.name} | " + " | ".join(row) + " |")
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return "\n".join(out) + f"\n\n{summary} (of {sum(counts.values())} cells).\n"


def curve_evaluator(classifier, images, layer):
    """rec [N, H, W, 3] -> {"feature_error", "ssim"} per image, for a cell's curve (the
    target features are computed once)."""
    from tfrestore.metrics import normalised_feature_error, ssim
    target = classifier.features(images, [layer])[layer]

    def evaluate(rec):
        rec = np.clip(rec, 0, 255)
        got = classifier.features(rec, [layer])[layer]
        return {"feature_error": normalised_feature_error(got, target).numpy(),
                "ssim": ssim(images, rec).numpy()}
    return evaluate


def run_comparison(classifier, layers, methods, images, paths, results_path, steps=None,
                   seed=0, perceptual=None, settings=None, log=print, keep_examples=1,
                   shard=None, work_dir=None, curve_every=50, verbose=False,
                   feature_chunk=None):
    """Run every method at every layer; returns the results dict (also saved).

    Args:
      layers: layer names to invert.
      methods: `Method`s.
      images: [N, H, W, 3] RGB 0-255 test images; paths: their names.
      results_path: JSON file; existing cells with equal `settings` and an unchanged
        method definition are reused.
      keep_examples: reconstructions of the first images kept for figures (in an .npz
        beside the JSON).
      shard: (I, N): run only the cells k with k mod N == I, written to
        `shard_path(results_path, shard)`; the results returned merge every shard's cells
        found on disk at the end (`missing_cells` tells whether the table is complete).
      work_dir: with it, each optimisation cell checkpoints in work_dir/CELL/ (resumed
        after an interruption, under the same settings only) and records its curve —
        feature error and SSIM per image against step and optimisation seconds, every
        `curve_every` steps, kept across sittings — into the cell ("curve"); the folder is
        removed once the cell is stored.
      feature_chunk: run the network on at most this many images at a time
        (`Objective.feature_chunk`: speed only, rounding may differ; 0 = whole batch;
        None = leave it as it is); recorded in every cell computed.
    """
    import shutil
    from tfrestore.inversion.methods import MethodUnavailable
    from tfrestore.inversion.objectives import Objective, feature_chunks
    from tfrestore.io import save_npz
    from tfrestore.metrics import evaluate_reconstructions
    settings = study_settings(settings, steps, seed, paths)
    wanted = wanted_specs(layers, methods)
    results, examples, merged = load_results(results_path, settings, wanted, log)
    if results["cells"]:
        log(f"Resuming: {len(results['cells'])} cell(s) already in {', '.join(merged)}")
    own = shard_path(results_path, shard)
    examples_path = _examples_path(own)
    mine = [key for i, key in enumerate(wanted) if not shard or i % shard[1] == shard[0]]

    def save(results, examples=None):
        # A shard's files hold its own cells only (another shard's may change meanwhile).
        cells = results["cells"] if own == results_path else \
            {k: results["cells"][k] for k in mine if k in results["cells"]}
        if examples is not None:
            save_npz(examples_path, **{k: v for k, v in examples.items() if k in cells})
        write_json(own, dict(results, cells=cells))

    index = -1
    for layer in layers:
        for method in methods:
            key = _cell_key(layer, method.name)
            spec = wanted[key]
            index += 1
            if shard and index % shard[1] != shard[0]:
                continue   # another shard's cell
            if has_spec(results["cells"].get(key), layer, spec):
                continue
            run_options, cell_dir = {}, None
            if work_dir and (not method.uses_network or method.hybrid):   # optimisation
                cell_dir = os.path.join(work_dir, _slug(key))
                _claim_cell_dir(cell_dir, key, spec, log)
                run_options = dict(checkpoint_dir=os.path.join(cell_dir, "checkpoint"),
                                   curve=curve_evaluator(classifier, images, layer),
                                   curve_every=curve_every,
                                   curve_path=os.path.join(cell_dir, "curve.json"))
            try:
                with feature_chunks(feature_chunk):
                    chunk = Objective.feature_chunk
                    rec, seconds, record = method.reconstruct(classifier, layer, images,
                                                              steps=steps, seed=seed,
                                                              verbose=verbose, **run_options)
            except MethodUnavailable as e:
                log(f"{key}: skipped ({e})")
                results["cells"][key] = {"layer": layer, "method": method.name,
                                         "spec": spec, "skipped": str(e)}
                save(results)
                continue
            metrics = evaluate_reconstructions(classifier, images, rec, layer,
                                               perceptual=perceptual)
            curve = record.pop("curve", None)
            if curve:
                # Optimisation time over every sitting of a resumed cell.
                record["seconds_this_sitting"], seconds = seconds, curve[-1]["seconds"]
            if chunk and (not method.uses_network or method.hybrid):
                # (how the network was batched: rounding only; a rerun needs the same)
                record["feature_chunk"] = chunk
            cell = {"layer": layer, "method": method.name, "spec": spec, "seconds": seconds,
                    "record": record,
                    "per_image": {k: np.asarray(v).tolist() for k, v in metrics.items()}}
            if curve:
                cell["curve"] = curve
            results["cells"][key] = cell
            examples[key] = np.clip(rec[:keep_examples], 0, 255).astype(np.uint8)
            summary = " ".join(f"{k}={np.mean(v):.4g}" for k, v in metrics.items())
            log(f"{key}: {summary} ({seconds:.0f}s)")
            save(results, examples)
            if cell_dir:
                shutil.rmtree(cell_dir, ignore_errors=True)
    if work_dir and os.path.isdir(work_dir) and not os.listdir(work_dir):
        os.rmdir(work_dir)   # every cell stored: no empty folder left beside the outputs
    if own != results_path:
        # Other shards may have finished meanwhile: the whole table so far.
        results, examples, _ = load_results(results_path, settings, wanted, log=lambda s: None)
        if not missing_cells(results, layers, methods):
            write_json(results_path, results)   # complete: merged into the main file
            save_npz(_examples_path(results_path), **examples)
    return results


def _fmt(values, metric):
    """Mean over images [95% percentile-bootstrap interval of the mean] (seeded)."""
    from tfrestore.metrics.paired import bootstrap_ci
    v = np.asarray(values, np.float64)
    digits = {"psnr": 2, "mse": 0}.get(metric, 3)
    lo, hi = bootstrap_ci(v)
    return f"{v.mean():.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _convergence_mark(record):
    """" ✓" for an optimisation that met the convergence criterion, " †" for one that hit its
    step cap first, "" for a cell without one (a network)."""
    return {True: " ✓", False: " †"}.get(record.get("converged"), "")


def _unconverged(cell):
    """An optimisation cell that did not meet the convergence criterion at its end."""
    return cell.get("record", {}).get("converged") is False


def paired_table(results, layers, method_names, baseline, metric="ssim"):
    """Each method against `baseline` on the same images: mean difference [95% bootstrap
    interval], wins/ties/losses and the Wilcoxon signed-rank p, per layer."""
    from tfrestore.metrics.paired import paired_summary
    cells = results["cells"]
    higher = metric not in LOWER_IS_BETTER
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


def budget_table(results, layers, method_names):
    """Per cell: optimisation steps run (✓ converged, † not), seconds for all its images."""
    cells = results["cells"]
    out = ["\n**budget** (optimisation steps run, ✓ converged / † step cap hit first; seconds "
           "of the cell for all its images)\n",
           "| method | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
    for name in method_names:
        row = []
        for layer in layers:
            c = cells.get(_cell_key(layer, name))
            if not c or "seconds" not in c:
                row.append("–")
                continue
            rec = c.get("record", {})
            steps = rec.get("steps_run")
            mark = _convergence_mark(rec)
            row.append((f"{steps}{mark}, " if steps is not None else "network, ") +
                       f"{c['seconds']:.0f} s")
        out.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def end_slope(curve, metric="ssim", span=250, after=0, min_span=100):
    """How fast `metric` (mean over images) still moved at the end of a recorded curve: its
    change per 100 steps from the point `span` steps before the last one (or the first point
    past step `after`, the run's last schedule event, if that is later: a jump when jitter
    stops is not a trend) to the last. None when the points span fewer than `min_span`
    steps. With the objective's change (record.convergence) it says how far a cell got."""
    points = [p for p in curve or [] if metric in p and p["step"] > after]
    if len(points) < 2:
        return None
    last = points[-1]
    first = next(p for p in points if p["step"] >= last["step"] - span)
    steps = last["step"] - first["step"]
    if steps < min_span:
        return None
    return 100.0 * (float(np.mean(last[metric])) - float(np.mean(first[metric]))) / steps


def end_of_run_table(results, layers, method_names, metric="ssim", span=250):
    """Per optimisation cell: the objective's relative change per criterion window at the
    end (what ✓/† are decided on) and `metric`'s change per 100 steps over the last `span`
    steps of its curve: how much a longer run could still move the numbers."""
    cells = results["cells"]
    out = [f"\n**end of run** (per cell: the objective's relative change per window at the "
           f"end, which ✓/† are decided on; then the mean {metric}'s change per 100 steps "
           f"over the last {span} steps of the curve after the last learning-rate drop and "
           f"jitter-off; – where fewer than 100 steps follow them)\n",
           "| method | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
    for name in method_names:
        row = []
        for layer in layers:
            c = cells.get(_cell_key(layer, name), {})
            conv = c.get("record", {}).get("convergence", {})
            change = conv.get("relative_change")
            slope = end_slope(c.get("curve"), metric, span, conv.get("checked_after_step", 0))
            if change is None and slope is None:
                row.append("–")
                continue
            row.append(("–" if change is None else f"{100 * change:.2g}%") + ", " +
                       ("–" if slope is None else f"{slope:+.4f}"))
        out.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def _weights_at(spec, layer):
    """The prior weights a cell's spec applies at `layer` ("3e-4", "1e-3 + 1e-4"), or ""."""
    priors = (spec or {}).get("priors", {})
    entries = priors.get(layer, priors.get("*", []))
    return " + ".join(e.rsplit(":", 1)[1] for e in entries if ":" in e)


def cells_table(results, layers, method_names, baseline=None, metric="ssim"):
    """One row per finished cell (layer-major): steps run, whether it converged with the
    objective's relative change per window at the end, seconds, the mean `metric` [95%
    bootstrap interval], feature error, PSNR and the paired comparison with `baseline` at
    the same layer (difference [95% interval], wins/ties/losses, Wilcoxon p). The study's
    summary in one table."""
    from tfrestore.metrics.paired import paired_summary
    cells = results["cells"]
    out = [f"\n**every cell** (steps run; ✓ converged / † step cap first, with the objective's "
           f"relative change per window at the end; seconds; mean {metric} [95% bootstrap "
           f"interval]; feature error; PSNR; {metric} paired against {baseline} at the same "
           f"layer)\n",
           f"| cell | steps | converged | seconds | {metric} | feature error | PSNR | "
           f"{metric} vs {baseline} |", "|---|---|---|---|---|---|---|---|"]
    for layer in layers:
        base = cells.get(_cell_key(layer, baseline), {}).get("per_image", {}).get(metric)
        for name in method_names:
            c = cells.get(_cell_key(layer, name), {})
            per = c.get("per_image")
            if not per:
                continue
            rec = c.get("record", {})
            weights = _weights_at(c.get("spec"), layer)
            label = f"{name}{f' ({weights})' if weights else ''} @ {layer}"
            steps = rec.get("steps_run")
            change = rec.get("convergence", {}).get("relative_change")
            mark = _convergence_mark(rec).strip()
            converged = "–" if not mark else \
                mark + ("" if change is None else f" ({100 * change:.2g}%)")
            paired = "–"
            if base is not None and name != baseline:
                s = paired_summary(per[metric], base,
                                   higher_is_better=metric not in LOWER_IS_BETTER)
                paired = (f"{s['mean_difference']:+.3f} [{s['ci95'][0]:+.3f}, "
                          f"{s['ci95'][1]:+.3f}], {s['wins']}/{s['ties']}/{s['losses']}, "
                          f"p = {s['wilcoxon_p']:.2g}")
            out.append(f"| {label} | {'network' if steps is None else steps} | {converged} | "
                       f"{c['seconds']:.0f} | {_fmt(per[metric], metric)} | "
                       f"{np.mean(per['feature_error']):.4f} | {np.mean(per['psnr']):.2f} | "
                       f"{paired} |")
    return "\n".join(out) + "\n"


def wide_table(results, layers, rows, metrics=("mse", "feature_error"), reference=None):
    """One row per method, per metric a column per layer (means over images; † not
    converged; – missing): the form of the thesis's AlexNet table. `rows` maps a row label
    to a method name in `results`; `reference` maps a row label to {metric: [value per
    layer]} printed beneath, e.g. the published figures."""
    cells = results["cells"]
    digits = {"mse": 0, "psnr": 2}
    head = " | ".join(f"{m} {l}" for m in metrics for l in layers)
    out = [f"| method | {head} |", "|---|" + "---|" * (len(metrics) * len(layers))]
    for label, name in rows.items():
        row = []
        for metric in metrics:
            for layer in layers:
                c = cells.get(_cell_key(layer, name), {})
                v = c.get("per_image", {}).get(metric)
                row.append("–" if v is None else
                           f"{np.mean(v):.{digits.get(metric, 3)}f}" +
                           (" †" if _unconverged(c) else ""))
        out.append(f"| {label} | " + " | ".join(row) + " |")
    for label, values in (reference or {}).items():
        row = [("–" if v is None else f"{v:g}") for m in metrics
               for v in values.get(m, [None] * len(layers))]
        out.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def markdown_table(results, layers, method_names, baseline=None):
    """One table per metric: rows methods, columns layers, mean over images [95% bootstrap
    interval of the mean]; † marks a cell whose optimisation did not meet the convergence
    criterion at its end. With a `baseline` method, paired tables (SSIM, feature error)
    against it follow."""
    cells = results["cells"]
    metrics = [m for m in METRICS if any(m in c.get("per_image", {}) for c in cells.values())]
    out = []
    for metric in metrics:
        arrow = "lower is better" if metric in LOWER_IS_BETTER \
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
    out.append(budget_table(results, layers, method_names))
    if any(c.get("curve") for c in cells.values()):
        out.append(end_of_run_table(results, layers, method_names))
    if any(_unconverged(c) for c in cells.values()):
        out.append("\n† not converged: the objective still changed by more than the "
                   "criterion (record.convergence) when the step budget ran out.")
    if baseline is not None and baseline in method_names:
        for metric in ("ssim", "feature_error"):
            out.append(paired_table(results, layers, method_names, baseline, metric))
        out.append(cells_table(results, layers, method_names, baseline))
    return "\n".join(out) + "\n"
