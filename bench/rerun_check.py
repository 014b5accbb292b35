"""Reproducibility of a study: do cells rerun from scratch give the same numbers?

Compares the cells two `bin/compare.py` outputs share (the study's JSON, and a rerun of
some of its cells into another output with the same flags and a fresh --work_dir), metric
by metric and image by image, and says for each cell whether every per-image value agrees
within --atol. The settings of the two runs must be equal (else the rerun answers another
question and the check stops).

  python bin/compare.py --config=results/study/mobilenet_v2_config.json \\
      --images=results/splits/test.txt --limit=20 --steps=3500 "--methods=M&V 2016" \\
      --layers=Conv2d_0_0 --output=/tmp/rerun/mobilenet_v2
  python bench/rerun_check.py --study=results/study/mobilenet_v2.json \\
      --rerun=/tmp/rerun/mobilenet_v2.json --output=results/study/mobilenet_v2_rerun.md
"""
import json

import numpy as np
from absl import flags

from tfrestore import cli
from tfrestore.inversion.comparison import has_spec, spec_at

flags.DEFINE_string("study", None, "The study's results (.json).")
flags.DEFINE_string("rerun", None, "Results (.json) of some of its cells rerun from scratch.")
flags.DEFINE_float("atol", 1e-6, "Largest difference of a per-image value called the same.")
flags.DEFINE_string("output", None, "Markdown report to write (also printed).")
flags.mark_flags_as_required(["study", "rerun"])
FLAGS = flags.FLAGS

METRICS = ("ssim", "psnr", "mse", "feature_error")


def _read(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"--{what} '{path}' does not exist; run bin/compare.py first.") \
            from None
    except json.JSONDecodeError as e:
        raise ValueError(f"--{what} '{path}' is not a comparison JSON ({e}).") from None


def check(study, rerun, atol):
    """Rows (cell, steps, metric, largest |difference|, same?) for every cell both hold."""
    if study.get("settings") != rerun.get("settings"):
        keys = sorted(k for k in set(study.get("settings", {})) | set(rerun.get("settings", {}))
                      if study["settings"].get(k) != rerun["settings"].get(k))
        raise ValueError(f"The rerun's settings differ from the study's ({', '.join(keys)}): "
                         f"rerun with the study's flags.")
    rows = []
    for key, cell in rerun["cells"].items():
        old = study["cells"].get(key)
        if (old is None or "per_image" not in cell
                or not has_spec(old, cell.get("layer"), spec_at(cell.get("spec"),
                                                                cell.get("layer")))):
            continue
        for metric in METRICS:
            if metric in cell["per_image"] and metric in old["per_image"]:
                a = np.asarray(old["per_image"][metric], np.float64)
                b = np.asarray(cell["per_image"][metric], np.float64)
                diff = float(np.max(np.abs(a - b)))
                rows.append((key, cell.get("record", {}).get("steps_run"), metric,
                             float(a.mean()), float(b.mean()), diff, diff <= atol))
    if not rows:
        raise ValueError("The rerun holds no cell of the study (same layer, method and "
                         "method definition); run some with --methods/--layers.")
    return rows


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.io import atomic_write
    rows = check(_read(FLAGS.study, "study"), _read(FLAGS.rerun, "rerun"), FLAGS.atol)
    lines = [f"# Rerun from scratch: {FLAGS.rerun} against {FLAGS.study}\n",
             f"`{cli.command_line()}`\n",
             f"Per-image values compared; same = largest difference ≤ {FLAGS.atol:g}.\n",
             "| cell | steps | metric | study mean | rerun mean | largest difference | same |",
             "|---|---|---|---|---|---|---|"]
    # (a cell key "layer | method" holds the table's separator)
    lines += [f"| {k.replace('|', '·')} | {s} | {m} | {a:.6g} | {b:.6g} | {d:.3g} | "
              f"{'yes' if ok else 'NO'} |" for k, s, m, a, b, d, ok in rows]
    cells = sorted({r[0] for r in rows})
    same = [c for c in cells if all(r[6] for r in rows if r[0] == c)]
    lines.append(f"\n{len(same)} of {len(cells)} cells reproduced exactly.")
    report = "\n".join(lines) + "\n"
    if FLAGS.output:
        atomic_write(FLAGS.output, report)
    print(report)


if __name__ == "__main__":
    cli.run(main)
