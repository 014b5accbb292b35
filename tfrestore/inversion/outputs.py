"""Writing a reconstruction run's folder; shared by every method (optimisation,
inverting network, hybrid).

    output_dir/
      reconstructions/000_<name>.png   each reconstruction (clipped to 0-255)
      figures/000_<name>.png           image | reconstruction | colour diff | abs diff
      arrays.npz                        reconstructions, targets (float32 RGB 0-255), paths
      metrics.json                      {"settings": {...}, "images": [...], "mean": {...}}
      tensorboard/                      loss terms (written by the loop), metrics, images
"""
import os
import re

import numpy as np
import tensorflow as tf

from tfrestore import summaries
from tfrestore.io import environment_info, save_npz, save_png, write_json

__all__ = ["write_run", "image_stem"]


def image_stem(path, index):
    stem = os.path.splitext(os.path.basename(str(path)))[0] or f"image{index}"
    return f"{index:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)[:60]}"


def write_run(output_dir, images, reconstructions, paths=None, settings=None, metrics=None,
              notes=None, figures=True, tensorboard=True, title=None):
    """Write every output of a run; returns the path of metrics.json.

    Args:
      output_dir: folder (created).
      images, reconstructions: [N, H, W, 3] RGB 0-255.
      paths: one name per image (files, photo names); default image0, image1, ...
      settings: dict of every setting (seed included); versions are added here.
      metrics: dict name -> [N] values (e.g. from `evaluate_reconstructions`).
      notes: list of strings recorded in metrics.json (e.g. a skipped metric and why).
      figures: draw the 4-panel figure per image (tfrestore.plotting).
      tensorboard: add metrics and images to output_dir/tensorboard.
      title: figure title prefix (e.g. "vgg16 conv3_3, mv2016").
    """
    images = np.asarray(images, np.float32)
    rec = np.asarray(reconstructions, np.float32)
    if images.shape != rec.shape:
        raise ValueError(f"images {images.shape} and reconstructions {rec.shape} differ.")
    n = len(images)
    paths = [str(p) for p in (paths if paths is not None else
                              [f"image{i}" for i in range(n)])]
    metrics = {k: np.asarray(v, np.float64).reshape(n) for k, v in (metrics or {}).items()}
    os.makedirs(output_dir, exist_ok=True)
    rows = []
    for i in range(n):
        stem = image_stem(paths[i], i)
        row = {"path": paths[i], "reconstruction": f"reconstructions/{stem}.png"}
        row.update({k: float(v[i]) for k, v in metrics.items()})
        save_png(os.path.join(output_dir, row["reconstruction"]), rec[i])
        if figures:
            from tfrestore.plotting import save_reconstruction_figure
            row["figure"] = f"figures/{stem}.png"
            extra = {k: row[k] for k in ("psnr", "ssim", "feature_error") if k in row}
            save_reconstruction_figure(os.path.join(output_dir, row["figure"]), images[i],
                                       np.clip(rec[i], 0, 255),
                                       title=f"{title}: {paths[i]}" if title else paths[i],
                                       extra=extra)
        rows.append(row)
    save_npz(os.path.join(output_dir, "arrays.npz"), reconstructions=rec, targets=images,
             paths=np.asarray(paths))
    record = {"settings": dict(settings or {}, environment=environment_info()),
              "images": rows,
              "mean": {k: float(np.mean(v)) for k, v in metrics.items()},
              "notes": list(notes or [])}
    if tensorboard:
        writer = tf.summary.create_file_writer(os.path.join(output_dir, "tensorboard"))
        with writer.as_default(step=int((settings or {}).get("steps_run", 0))):
            for k, v in record["mean"].items():
                summaries.scalar(f"metrics/{k}", v)
            summaries.image("targets", images / 255.0, max_outputs=8)
            summaries.image("reconstructions", np.clip(rec, 0, 255) / 255.0, max_outputs=8)
        writer.flush()
    path = os.path.join(output_dir, "metrics.json")
    write_json(path, record)
    return path
