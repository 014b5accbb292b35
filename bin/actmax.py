"""Activation maximisation: images that drive a class, channel or unit of a classifier up,
under M&V 2016's handcrafted regularisers and/or learned priors (on the one engine).

  python bin/actmax.py --target=class:flamingo,class:goldfish --preset=mv2016 \
      --output_dir=/tmp/actmax
  python bin/actmax.py --target=channel:expanded_conv_6_add:3 --target=unit:Conv1:5 \
      --prior=checkpoints/foe_8x8x3_512.keras@image:1e-4 --output_dir=/tmp/actmax_foe

--target: logit:INDEX | class:LABEL | channel:LAYER:INDEX | unit:LAYER:INDEX[:Y:X]
(repeatable or a comma list; one image per target, optimised as one batch). The preset's
settings are those of the deepest target layer (C, jitter T, bound B, ...); --feature_weight
is the weight C of the activation term. Every other setting has its flag (--tv_weight,
--parameterization=fourier, --optimizer, --lr_values, ...).

Outputs: images/<target>.png (8-bit, the classifier's input size), grid.png, arrays.npz,
metrics.json (activation at start and end, the class probability of the float model and,
for TFLite classifiers, of tf.lite.Interpreter on the original file), tensorboard/.
"""
import os

from absl import flags

from tfrestore import cli
from tfrestore.inversion.presets import PRESETS, InversionSettings

cli.define_classifier_flags()
flags.DEFINE_multi_string("target", None, "logit:INDEX | class:LABEL | channel:LAYER:INDEX | "
                          "unit:LAYER:INDEX[:Y:X]; repeatable or comma-separated.")
flags.DEFINE_enum("preset", "mv2016", list(PRESETS), "Regularisers and schedule (mv2016: M&V "
                  "2016's, scaled to --steps; fast: its objective over a Fourier "
                  "parameterization with a cosine schedule).")
flags.DEFINE_integer("steps", 350, "Optimisation steps (schedules scale with the run length).")
flags.DEFINE_integer("seed", 0, "Seed of the noise start and the jitter.")
flags.DEFINE_enum("init", "noise", ["noise", "grey"], "Start from seeded noise or the "
                  "dataset-mean grey image.")
cli.define_optimisation_flags()   # --output_dir, --log_every, --prior, every setting
flags.mark_flags_as_required(["target", "output_dir"])
FLAGS = flags.FLAGS
RUN_OUTPUTS = ("images", "grid.png", "tensorboard", "arrays.npz", "metrics.json")


@cli.exit_on_user_error
def main(argv):
    del argv
    import numpy as np

    from tfrestore.inversion.learned import describe_specs, prior_terms
    from tfrestore.io import environment_info, save_npz, save_png, write_json
    from tfrestore.uses.actmax import actmax_settings, maximise
    from tfrestore.uses.grid import save_image_grid
    from tfrestore.uses.targets import parse_targets
    from tfrestore.uses.tflite_check import interpreter_scores, tflite_file
    clf = cli.classifier_from_flags()
    targets = parse_targets(clf, FLAGS.target)
    settings = actmax_settings(FLAGS.preset, clf, targets, steps=FLAGS.steps, seed=FLAGS.seed,
                               **cli.settings_overrides(InversionSettings, skip=cli.OWN_SETTINGS))
    terms = prior_terms(clf, FLAGS.prior)
    out = cli.prepare_output_dir(FLAGS.output_dir, RUN_OUTPUTS)
    print(f"Maximising {len(targets)} target(s) of {clf.name} ({settings.preset}, "
          f"{settings.steps} steps, C={settings.feature_weight:g})", flush=True)
    run = maximise(clf, targets, settings, extra_terms=terms, init=FLAGS.init,
                   log_every=FLAGS.log_every, summary_dir=os.path.join(out, "tensorboard"))
    images8 = np.clip(np.round(run.images), 0, 255).astype(np.uint8)
    lite = tflite_file(clf)
    lite_p = interpreter_scores(lite, images8) if lite else None
    rows = []
    for b, t in enumerate(targets):
        png = f"images/{t.name}.png"
        save_png(os.path.join(out, png), images8[b])
        row = {"target": t.spec, "image": png, "layer": t.layer,
               "activation_start": run.start["activation"][b],
               "activation_end": run.end["activation"][b],
               "top1": clf.label(int(run.end["top1"][b])),
               "top1_probability": run.end["top1_probability"][b]}
        if t.class_index is not None:
            row.update(class_index=t.class_index, label=clf.label(t.class_index),
                       probability=run.end["probability"][b])
        if lite_p is not None:
            row["tflite_top1"] = clf.label(int(lite_p[b].argmax()))
            if t.class_index is not None:
                row["tflite_probability"] = float(lite_p[b, t.class_index])
                row["tflite_is_target"] = bool(lite_p[b].argmax() == t.class_index)
        rows.append(row)
        print(f"{t.spec}: activation {row['activation_start']:.3g} -> "
              f"{row['activation_end']:.3g}; top-1 {row['top1']} "
              f"({row['top1_probability']:.2f})"
              + (f"; tflite top-1 {row['tflite_top1']}" if lite_p is not None else ""))
    classes = [r for r in rows if "probability" in r]
    summary = {"mean_activation_gain": float(np.mean([r["activation_end"] -
                                                      r["activation_start"] for r in rows]))}
    if classes:
        summary["float_top1_is_target"] = float(np.mean([r["top1"] == r["label"]
                                                         for r in classes]))
        if lite_p is not None:
            summary["tflite_top1_is_target"] = float(np.mean([r["tflite_is_target"]
                                                              for r in classes]))
    record = {"settings": dict(settings.as_dict(), steps_run=run.result.steps,
                               seconds=run.result.seconds, init=FLAGS.init,
                               converged=run.result.converged,
                               convergence=run.result.convergence,
                               targets=FLAGS.target, priors=describe_specs(terms),
                               tflite=lite and os.path.basename(lite),
                               command=cli.command_line(), **clf.describe(),
                               environment=environment_info()),
              "targets": rows, "summary": summary}
    save_npz(os.path.join(out, "arrays.npz"), images=run.images,
             names=np.asarray([t.name for t in targets]))
    save_image_grid(os.path.join(out, "grid.png"), images8,
                    [f"{t.spec[:28]}\n{r['top1'][:20]} {r['top1_probability']:.2f}"
                     for t, r in zip(targets, rows)],
                    title=f"{clf.name}: activation maximisation ({settings.preset}, "
                          f"{run.result.steps} steps"
                          + (", " + ", ".join(os.path.basename(p) for p in FLAGS.prior)
                             if FLAGS.prior else "") + ")")
    write_json(os.path.join(out, "metrics.json"), record)
    print(f"Summary: {summary}\nWrote {out}")


if __name__ == "__main__":
    cli.run(main)
