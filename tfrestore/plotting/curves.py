"""Training curves read from TensorBoard event files (TensorFlow's own reader).

TF2 `tf.summary.scalar` stores scalars as tensors (`value.tensor`); TF1 summaries used
`value.simple_value`. Both are read.
"""
import glob
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrestore.plotting.figures import save_figure  # noqa: E402

__all__ = ["event_files", "read_scalars", "smooth", "save_training_curves",
           "save_comparison_curves", "save_validation_curves", "method_colours"]


def method_colours(method_names):
    """One colour per method, fixed by its place in `method_names`, so a method has the same
    colour in every panel even where other methods have no cell (matplotlib's own cycle
    restarts per axes and would recolour it)."""
    cmap = plt.get_cmap("tab10" if len(method_names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(method_names)}


def _panels(n, max_columns, panel_size):
    """A figure with `n` panels in rows of at most `max_columns` (unused axes hidden)."""
    ncol = min(max_columns, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, squeeze=False,
                             figsize=(panel_size[0] * ncol, panel_size[1] * nrow))
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes


def event_files(logdir):
    """Event files under `logdir` (recursively), sorted; a file path is returned as is."""
    if os.path.isfile(logdir):
        return [logdir]
    files = sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"),
                             recursive=True))
    if not files:
        raise FileNotFoundError(f"No TensorBoard event files (events.out.tfevents.*) under "
                                f"'{logdir}'. Point at the log folder the training wrote.")
    return files


def read_scalars(logdir):
    """{tag: (steps [n] int64, values [n] float64)} sorted by step, from all event files.

    Tags from event files in sub-folders get the sub-folder as prefix ("train/loss").
    A step logged twice keeps its last value.
    """
    data = {}
    root = logdir if os.path.isdir(logdir) else os.path.dirname(logdir)
    for path in event_files(logdir):
        sub = os.path.relpath(os.path.dirname(path), root)
        prefix = "" if sub in (".", "") else sub.replace(os.sep, "/") + "/"
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    val = float(v.simple_value)
                elif kind == "tensor":
                    arr = tf.make_ndarray(v.tensor)
                    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
                        continue  # images, histograms, text: not a scalar
                    val = float(arr.reshape(()))
                else:
                    continue
                data.setdefault(prefix + v.tag, {})[int(event.step)] = val
    out = {}
    for tag, d in data.items():
        steps = np.array(sorted(d), np.int64)
        out[tag] = (steps, np.array([d[s] for s in steps], np.float64))
    return out


def smooth(values, weight):
    """TensorBoard-style exponential moving average, debiased (weight in [0, 1))."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}.")
    out, last, norm = [], 0.0, 0.0
    for v in np.asarray(values, np.float64):
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return np.array(out)


def save_training_curves(path, logdir_or_scalars, tags=None, smoothing=0.0, logy=None,
                         title=None):
    """One panel per tag: raw curve (faint) and smoothed curve.

    Args:
      path: output PNG.
      logdir_or_scalars: a log folder / event file, or the dict `read_scalars` returns.
      tags: tags to draw (default all, sorted); a missing tag is an error listing the others.
      smoothing: EMA weight in [0, 1).
      logy: log-scale y axis (default: when every value of the tag is positive and spans
        more than a factor 100).
    Returns the tags drawn.
    """
    scalars = (read_scalars(logdir_or_scalars) if isinstance(logdir_or_scalars, str)
               else logdir_or_scalars)
    if not scalars:
        raise ValueError("No scalar summaries found to plot.")
    tags = sorted(scalars) if tags is None else list(tags)
    missing = [t for t in tags if t not in scalars]
    if missing:
        raise KeyError(f"Tags {missing} not in the logs; available: {sorted(scalars)}.")
    fig, axes = _panels(len(tags), 3, (4.5, 3.2))
    for ax, tag in zip(axes.ravel(), tags):
        steps, vals = scalars[tag]
        if smoothing > 0:
            ax.plot(steps, vals, color="C0", alpha=0.3, lw=0.8)
            ax.plot(steps, smooth(vals, smoothing), color="C0", lw=1.4)
        else:
            ax.plot(steps, vals, color="C0", lw=1.2)
        use_log = logy if logy is not None else (
            np.all(vals > 0) and vals.max() / max(vals.min(), 1e-300) > 100)
        if use_log:
            ax.set_yscale("log")
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return tags


def save_comparison_curves(path, results, layers, method_names, metrics=("ssim",
                                                                         "feature_error")):
    """A comparison's cell curves: rows metrics, columns layers, a line per method (mean
    over images against step; a dot where a cell stopped converged). Cells without a
    curve (networks, cells run without a work folder) are left out; with no curve at all
    nothing is written (returns None)."""
    cells = results["cells"]
    if not any(cells.get(f"{l} | {n}", {}).get("curve") for l in layers for n in method_names):
        return None
    fig, axes = plt.subplots(len(metrics), len(layers), squeeze=False,
                             figsize=(3.2 * len(layers), 2.6 * len(metrics)))
    colours = method_colours(method_names)
    for j, layer in enumerate(layers):
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            for name in method_names:
                curve = cells.get(f"{layer} | {name}", {}).get("curve")
                if not curve or metric not in curve[0]:
                    continue
                steps = [r["step"] for r in curve]
                values = [float(np.mean(r[metric])) for r in curve]
                ax.plot(steps, values, label=name, lw=1.2, color=colours[name])
                if cells[f"{layer} | {name}"].get("record", {}).get("converged"):
                    ax.plot(steps[-1], values[-1], "o", color=colours[name], ms=3)
            if metric == "feature_error":
                ax.set_yscale("log")
            ax.set_title(layer if i == 0 else "", fontsize=9)
            ax.set_xlabel("step" if i == len(metrics) - 1 else "", fontsize=8)
            ax.set_ylabel(metric if j == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    save_figure(fig, path)
    return path


def kept_index(hist, vals):
    """Index of the evaluation whose weights a training keeps: its criterion's last
    "improved" (a later evaluation may be lower by less than its rtol, and is not kept),
    else the lowest value."""
    improved = [i for i, r in enumerate(hist) if r.get("criterion") == "improved"]
    return improved[-1] if improved else int(np.argmin(vals))


def save_validation_curves(path, curves, key="val_total", title=None):
    """Held-out loss against step, one panel per run, with the kept step (`kept_index`) and
    the learning-rate drops marked (training to convergence, `tfrestore.inverters`).

    Args:
      path: output PNG.
      curves: {label: history list of records with "step", `key` and optional "lr",
        "criterion"} -- the `history.json` of a training.
      key: the record entry to draw.
    Returns the labels drawn (runs without a `key` value are left out).
    """
    runs = {k: [r for r in h if key in r] for k, h in curves.items()}
    runs = {k: h for k, h in runs.items() if h}
    if not runs:
        raise ValueError(f"No run has '{key}' records to plot.")
    fig, axes = _panels(len(runs), 4, (3.6, 2.8))
    for ax, (label, hist) in zip(axes.ravel(), runs.items()):
        steps = np.array([r["step"] for r in hist])
        vals = np.array([r[key] for r in hist], np.float64)
        ax.plot(steps, vals, color="C0", lw=1.2, marker=".", ms=3)
        kept = kept_index(hist, vals)
        ax.plot(steps[kept], vals[kept], "o", color="C3", ms=5, label=f"kept @ {steps[kept]}")
        for r in hist:
            if r.get("criterion") == "drop":
                ax.axvline(r["step"], color="0.6", lw=0.8, ls="--")
        if hist[-1].get("criterion") == "converged":
            ax.axvline(hist[-1]["step"], color="C2", lw=1.0)
        if np.all(vals > 0):
            ax.set_yscale("log")
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"held-out {key} (dashed: lr drop; green: converged)", fontsize=9)
    save_figure(fig, path)
    return list(runs)
