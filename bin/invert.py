"""Reconstruct images from a classifier layer (pre-image optimisation, M&V 2015/2016).

  # The bundled ImageNet MobileNetV2 (the default classifier, offline), fast preset:
  python bin/invert.py --images=chelsea --layer=expanded_conv_6_add --preset=fast \
      --output_dir=runs/first
  # The papers' settings (3500 steps), resumable:
  python bin/invert.py --layer=expanded_conv_5_add --images=coffee --preset=mv2016 \
      --checkpoint_dir=runs/ckpt --output_dir=runs/mv2016

Every preset field can be overridden by its flag (e.g. --feature_weight, --jitter, --tv_V);
--flagfile=FILE reads flags from a file. A misspelt --layer lists the valid names.
"""
import os
import sys

from absl import flags

from tfrestore import cli
from tfrestore.inversion.presets import PRESETS

cli.define_classifier_flags()
flags.DEFINE_integer("input_size", None, "Square input size (drops the head of "
                     "keras.applications nets; small sizes make fast CPU runs).")
flags.DEFINE_string("layer", None, "Layer to invert (thesis alias or Keras name, "
                    "e.g. conv3_3, conv3_3/lin, pool5).")
flags.DEFINE_string("images", "astronaut", "Image file, folder, scikit-image photo name or "
                    "tfds:NAME:SPLIT:COUNT (comma-separated list allowed).")
flags.DEFINE_integer("limit", None, "Invert at most this many images.")
flags.DEFINE_string("method", "optimisation", "Reconstruction method: optimisation, "
                    "network (a trained inverter, --inverter) or hybrid (the inverter's "
                    "output as the start of the optimisation).")
flags.DEFINE_string("inverter", None, "Trained inverter (.keras, bin/train_inverter.py) "
                    "for --method=network/hybrid.")
flags.DEFINE_float("hybrid_lr_scale", 0.1, "--method=hybrid: multiplies the preset's "
                   "learning rates (the start is already close).")
flags.DEFINE_enum("preset", "mv2016", list(PRESETS), "mv2016 / mv2015: the papers' settings; "
                  "fast: mv2016's objective in a tenth of the steps (bench/convergence.py).")
flags.DEFINE_integer("steps", None, "Optimisation steps (default: the preset's; "
                     "$TFRESTORE_MAX_STEPS caps it). Schedules scale with the run length.")
flags.DEFINE_integer("seed", 0, "Seed of the noise start and of the jitter.")
flags.DEFINE_string("perceptual_network", "auto",
                    "Network of the perceptual Gram score: auto (VGG16 when its ImageNet "
                    "weights are cached, else the bundled MobileNetV2), vgg16, a "
                    ".tflite/.keras path, or none.")
flags.DEFINE_bool("figures", True, "Write the 4-panel figure per image.")
flags.DEFINE_string("checkpoint_dir", None, "Checkpoint the run here every 250 steps; a "
                    "rerun with the same settings resumes.")
flags.DEFINE_bool("fresh", False, "Start afresh in --checkpoint_dir (deletes its checkpoints).")
# --output_dir, --log_every, --prior and every other inversion setting, generated from its
# one definition (InversionSettings); None = the preset's value.
cli.define_optimisation_flags()
flags.mark_flags_as_required(["layer", "output_dir"])
FLAGS = flags.FLAGS
RUN_OUTPUTS = ("reconstructions", "figures", "tensorboard", "arrays.npz", "metrics.json")


def _settings(clf):
    return cli.optimisation_settings(clf, FLAGS.layer)


def _perceptual():
    from tfrestore.metrics import PerceptualUnavailable, make_perceptual
    try:
        return make_perceptual(FLAGS.perceptual_network), None
    except PerceptualUnavailable as e:
        print(f"note: {e}", file=sys.stderr)
        return None, str(e)


def main(argv):
    del argv
    from tfrestore.data import load_images
    from tfrestore.inversion import write_run
    from tfrestore.inversion.learned import describe_specs, prior_terms
    from tfrestore.inversion.methods import KINDS, reconstruct
    from tfrestore.metrics import evaluate_reconstructions
    if FLAGS.method not in KINDS:
        raise ValueError(f"Unknown --method '{FLAGS.method}' (available: "
                         f"{', '.join(KINDS)}).")
    if FLAGS.method != "optimisation" and not FLAGS.inverter:
        raise ValueError(f"--method={FLAGS.method} needs --inverter=PATH.keras (train one "
                         f"with bin/train_inverter.py).")
    clf = cli.classifier_from_flags(input_size=FLAGS.input_size)
    settings = _settings(clf)  # resolves --layer (UnknownLayerError lists valid names), validates
    cli.prepare_output_dir(FLAGS.output_dir, RUN_OUTPUTS)
    terms = prior_terms(clf, FLAGS.prior)  # checked against the layers they attach to
    if terms and FLAGS.method == "network":
        raise ValueError("--prior has no effect with --method=network; use --method=hybrid.")
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    print(f"Inverting {len(loaded)} image(s) from {clf.name} {FLAGS.layer} "
          f"({settings.preset}, weights {clf.weights})", flush=True)
    summary_dir = os.path.join(FLAGS.output_dir, "tensorboard")
    run = ({"log_every": FLAGS.log_every, "checkpoint_dir": FLAGS.checkpoint_dir,
            "fresh": FLAGS.fresh} if FLAGS.method == "optimisation" else {})
    result = reconstruct(clf, loaded.images, settings, FLAGS.method, inverter=FLAGS.inverter,
                         extra_terms=terms, hybrid_lr_scale=FLAGS.hybrid_lr_scale,
                         verbose=True, summary_dir=summary_dir, **run)
    perceptual, note = _perceptual()
    metrics = evaluate_reconstructions(clf, loaded.images, result.reconstructions,
                                       FLAGS.layer, perceptual=perceptual)
    record = dict(settings.as_dict(), method=FLAGS.method, steps_run=result.steps,
                  seconds=result.seconds, images=FLAGS.images, **clf.describe(),
                  converged=result.converged, stopped=result.stopped,
                  convergence=result.convergence,
                  perceptual_network=(perceptual.describe() if perceptual else
                                      FLAGS.perceptual_network + " (skipped)"),
                  final_terms={k: v.tolist() for k, v in result.final_terms.items()})
    if FLAGS.method != "optimisation":
        record["inverter"] = result.inverter
    if terms:
        record["priors"] = describe_specs(terms)
    path = write_run(FLAGS.output_dir, loaded.images, result.reconstructions, loaded.paths,
                     record, metrics, notes=[note] if note else [], figures=FLAGS.figures,
                     title=f"{clf.name} {FLAGS.layer} {settings.preset}")
    for i, p in enumerate(loaded.paths):
        print(p, " ".join(f"{k}={v[i]:.4g}" for k, v in metrics.items()))
    print(f"Wrote {FLAGS.output_dir} (metrics: {path})")


if __name__ == "__main__":
    cli.run(main)
