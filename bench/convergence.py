"""Convergence of pre-image optimisation: feature error and SSIM against step and seconds,
for parameterizations x optimizers x schedules, against the full 3500-step mv2016 run.

  nice -n 10 python bench/convergence.py \
      --classifier=../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --layers=expanded_conv_3_add,expanded_conv_5_add,expanded_conv_12_add \
      --images=results/splits/dev.txt --limit=5 --output=results/convergence/mobilenet_v2

A candidate is NAME:FIELD=VALUE;FIELD=VALUE (any InversionSettings field, lists with '|'),
e.g. `--candidate="cosine_mv:lr_schedule=cosine;steps=350"`; the reference is
`--reference` (default mv2016 at its 3500 steps). Each (candidate, layer) cell is written to
OUTPUT/cells/ when done and skipped when rerun (resumable); the table (OUTPUT/README.md) and
the curves figure (OUTPUT/curves.png) are rebuilt from the cells. Reported per cell: mean
feature error and SSIM at the end, the same for the reference, the number of images on which
the candidate's feature error is <= the reference's, seconds of optimisation (evaluation
excluded) and whether the run met the convergence criterion at its end.
"""
import json
import os

from absl import app, flags

from tfrestore import cli

cli.define_classifier_flags()
flags.DEFINE_list("layers", None, "Layers to invert.")
flags.DEFINE_string("images", "results/splits/dev.txt", "Images (development split).")
flags.DEFINE_integer("limit", 5, "Number of images.")
flags.DEFINE_integer("input_size", None, "Input size (keras.applications nets).")
flags.DEFINE_multi_string("candidate", [], "NAME:FIELD=VALUE;... (repeatable).")
flags.DEFINE_string("reference", "mv2016:preset=mv2016;steps=3500", "The reference run.")
flags.DEFINE_string("preset", "mv2016", "Preset the candidates override.")
flags.DEFINE_integer("every", 25, "Evaluate the curve every this many steps.")
flags.DEFINE_integer("seed", 0, "Seed of the noise start and jitter.")
flags.DEFINE_string("output", None, "Output folder (cells/, README.md, curves.png).")
flags.DEFINE_bool("render_only", False, "Only rebuild the table and figure from the cells.")
flags.mark_flags_as_required(["layers", "output"])
FLAGS = flags.FLAGS


def parse_candidate(text):
    name, _, body = text.partition(":")
    over = {}
    for item in filter(None, body.split(";")):
        key, _, value = item.partition("=")
        if "|" in value or key in ("lr_values", "lr_boundaries"):
            over[key] = [float(v) for v in value.split("|") if v]
        else:
            over[key] = cli.parse_scalar(value)
    return name, over


def run_cell(clf, loaded, layer, name, over, path):
    import numpy as np

    from tfrestore.inversion import get_settings, invert
    from tfrestore.io import write_json
    from tfrestore.metrics import normalised_feature_error, ssim
    over = dict(over)
    preset = over.pop("preset", FLAGS.preset)
    settings = get_settings(preset, clf, layer, seed=FLAGS.seed, **over)
    fmodel = clf.feature_model([layer])
    target = fmodel(loaded.images)

    def evaluate(rgb):
        rec = np.clip(rgb, 0, 255)
        return {"feature_error": normalised_feature_error(fmodel(rec), target).numpy(),
                "ssim": ssim(loaded.images, rec).numpy()}
    r = invert(clf, loaded.images, settings, verbose=True, log_every=max(1, settings.steps // 10),
               curve=evaluate)
    cell = {"candidate": name, "layer": layer, "settings": settings.as_dict(),
            "images": loaded.paths, "steps": r.steps, "seconds": r.curve[-1]["seconds"],
            "converged": r.converged, "convergence": r.convergence, "curve": r.curve,
            "classifier": clf.describe()}
    write_json(path, cell)
    return cell


def load_cells(folder):
    cells = []
    d = os.path.join(folder, "cells")
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if f.endswith(".json"):
            with open(os.path.join(d, f)) as fh:
                cells.append(json.load(fh))
    return cells


def render(folder, reference, header):
    import numpy as np
    from tfrestore.io import atomic_write
    cells = load_cells(folder)
    layers = list(dict.fromkeys(c["layer"] for c in cells))
    names = list(dict.fromkeys(c["candidate"] for c in cells))
    by = {(c["candidate"], c["layer"]): c for c in cells}
    lines = [header, "", "| candidate | layer | steps | feature error | SSIM | ref. feature error "
             "| ref. SSIM | images with FE <= ref | seconds | converged |", "|" + "---|" * 10]
    for layer in layers:
        ref = by.get((reference, layer))
        for name in names:
            c = by.get((name, layer))
            if c is None:
                continue
            fe = np.array(c["curve"][-1]["feature_error"])
            ss = np.array(c["curve"][-1]["ssim"])
            if ref is not None:
                rfe = np.array(ref["curve"][-1]["feature_error"])
                rss = np.array(ref["curve"][-1]["ssim"])
                wins = f"{int(np.sum(fe <= rfe))}/{len(fe)}"
                refs = f"{rfe.mean():.4f} | {rss.mean():.3f}"
            else:
                wins, refs = "–", "– | –"
            lines.append(f"| {name} | {layer} | {c['steps']} | {fe.mean():.4f} | "
                         f"{ss.mean():.3f} | {refs} | {wins} | {c['seconds']:.0f} | "
                         f"{'–' if c['converged'] is None else 'yes' if c['converged'] else 'no'} |")
    atomic_write(os.path.join(folder, "README.md"), "\n".join(lines) + "\n")
    _figure(folder, cells, layers, names)
    print("\n".join(lines))


def _figure(folder, cells, layers, names):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    by = {(c["candidate"], c["layer"]): c for c in cells}
    fig, axes = plt.subplots(3, len(layers), figsize=(4.5 * len(layers), 10), squeeze=False)
    for j, layer in enumerate(layers):
        for name in names:
            c = by.get((name, layer))
            if c is None:
                continue
            st = [r["step"] for r in c["curve"]]
            sec = [r["seconds"] for r in c["curve"]]
            fe = [np.mean(r["feature_error"]) for r in c["curve"]]
            ss = [np.mean(r["ssim"]) for r in c["curve"]]
            axes[0, j].plot(st, fe, label=name)
            axes[1, j].plot(st, ss, label=name)
            axes[2, j].plot(sec, ss, label=name)
        axes[0, j].set(title=layer, xscale="log", yscale="log", xlabel="step",
                       ylabel="feature error")
        axes[1, j].set(xscale="log", xlabel="step", ylabel="SSIM")
        axes[2, j].set(xscale="log", xlabel="seconds (optimisation only)", ylabel="SSIM")
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    from tfrestore.plotting.figures import save_figure
    save_figure(fig, os.path.join(folder, "curves.png"))


@cli.exit_on_user_error
def main(argv):
    del argv
    ref_name, _ = parse_candidate(FLAGS.reference)
    header = ("Convergence of pre-image optimisation (bench/convergence.py).\n\n"
              + (f"Command: `{cli.command_line()}`" if not FLAGS.render_only else
                 "Commands: the runs that wrote `cells/` (results/convergence/COMMANDS.md); "
                 "this table was rebuilt from them with --render_only")
              + f"\n\nReference: `{FLAGS.reference}`. "
              f"Feature error and SSIM are means over the images at the last step; "
              f"seconds exclude the curve evaluations.")
    if not FLAGS.render_only:
        from tfrestore.data import load_images
        clf = cli.classifier_from_flags(input_size=FLAGS.input_size)
        loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
        todo = [parse_candidate(c) for c in FLAGS.candidate] + [parse_candidate(FLAGS.reference)]
        for layer in FLAGS.layers:
            for name, over in todo:
                path = os.path.join(FLAGS.output, "cells",
                                    f"{name}__{layer.replace('/', '_')}.json")
                if os.path.exists(path):
                    continue
                print(f"== {name} at {layer}", flush=True)
                run_cell(clf, loaded, layer, name, over, path)
    render(FLAGS.output, ref_name, header)


if __name__ == "__main__":
    app.run(main)
