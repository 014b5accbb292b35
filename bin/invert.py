"""Reconstruct images from a classifier layer (pre-image optimisation, M&V 2015/2016).

  # Offline quick start: random-weight VGG16 at 64 px, a bundled photograph, ~1-2 min.
  python bin/invert.py --classifier=vgg16 --weights=random --input_size=64 \
      --layer=conv2_2 --images=astronaut --steps=300 --output_dir=/tmp/invert_demo
  # A real ImageNet network available offline (the shared, dequantised MobileNetV2):
  python bin/invert.py --classifier=../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --layer=LAYER --images=../shared/data/images --output_dir=/tmp/invert_mnv2

Every preset field can be overridden by its flag (e.g. --feature_weight, --jitter, --tv_V);
--flagfile=FILE reads flags from a file. A misspelt --layer lists the valid names.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # noqa: E402

from tfrestore import cli  # noqa: E402

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
flags.DEFINE_enum("preset", "mv2016", ["mv2016", "mv2015"], "Settings of a paper.")
flags.DEFINE_integer("steps", None, "Optimisation steps (default: the preset's; "
                     "$TFRESTORE_MAX_STEPS caps it). Schedules scale with the run length.")
flags.DEFINE_integer("seed", 0, "Seed of the noise start and of the jitter.")
flags.DEFINE_string("output_dir", None, "Folder for PNGs, figures, arrays.npz, "
                    "metrics.json and TensorBoard summaries.")
flags.DEFINE_string("perceptual_network", "vgg16",
                    "Network of the perceptual Gram score: vgg16 (ImageNet weights; "
                    "skipped with a note when they cannot be loaded), a .tflite/.keras "
                    "path, or none.")
flags.DEFINE_integer("log_every", None, "Console/TensorBoard logging interval (steps).")
flags.DEFINE_bool("figures", True, "Write the 4-panel figure per image.")
# Overrides of preset fields (None = the preset's value).
flags.DEFINE_enum("optimizer", None, ["adam", "sgd"], "adam, or momentum sgd.")
flags.DEFINE_list("lr_values", None, "Learning rates of the piecewise-constant schedule.")
flags.DEFINE_list("lr_boundaries", None, "Schedule boundaries as fractions of the run.")
flags.DEFINE_float("momentum", None, "SGD momentum.")
flags.DEFINE_float("feature_weight", None, "C, weight of the normalised feature loss.")
flags.DEFINE_float("range_alpha", None, "alpha of the range prior N_alpha.")
flags.DEFINE_float("range_weight", None, "Weight of N_alpha/(H W B^alpha); 0 disables.")
flags.DEFINE_float("bound", None, "B, on the mean-subtracted 0-255 image.")
flags.DEFINE_float("bound_factor", None, "B+ = bound_factor * B; 0 = no projection.")
flags.DEFINE_float("tv_beta", None, "beta of the TV prior.")
flags.DEFINE_float("tv_V", None, "V: TV is computed on x / V.")
flags.DEFINE_bool("tv_per_pixel", None, "Divide TV by H*W.")
flags.DEFINE_float("tv_weight", None, "Weight of TV; 0 disables.")
flags.DEFINE_float("alpha_norm", None, "alpha of the 2015 alpha-norm prior.")
flags.DEFINE_float("alpha_weight", None, "lambda_alpha; 0 disables.")
flags.DEFINE_integer("jitter", None, "T: max translation in pixels.")
flags.DEFINE_float("jitter_off", None, "Fraction of the run after which jitter stops.")
flags.DEFINE_float("sigma", None, "sigma-scaling of the variable (2015); 0 = off.")
flags.DEFINE_float("init_std", None, "Std of the Gaussian noise start (0-255 units).")
flags.DEFINE_float("prior_start", None, "Fraction of the run with the feature loss alone "
                   "before the --prior terms switch on (two-phase schedule).")
flags.DEFINE_float("prior_crop", None, "Evaluate learned priors on a random crop of this "
                   "fraction of the map each step (a stochastic estimate, much cheaper); 0 = whole map.")
flags.DEFINE_multi_string("prior", [], "A learned prior as PATH[@LAYER][:WEIGHT] (LAYER "
                          "'image' by default), repeatable, e.g. "
                          "--prior=checkpoints/foe_8x8x3_512.keras@image:1e-5 "
                          "--prior=fmap.keras@expanded_conv_3_add:1e-4.")
flags.mark_flags_as_required(["layer", "output_dir"])
FLAGS = flags.FLAGS

OVERRIDES = ("optimizer", "momentum", "feature_weight", "range_alpha", "range_weight", "bound",
             "bound_factor", "tv_beta", "tv_V", "tv_per_pixel", "tv_weight", "alpha_norm",
             "alpha_weight", "jitter", "jitter_off", "sigma", "init_std", "prior_start",
             "prior_crop")


def _settings(clf):
    from tfrestore.inversion import get_settings
    over = {k: getattr(FLAGS, k) for k in OVERRIDES}
    for k in ("lr_values", "lr_boundaries"):
        if getattr(FLAGS, k) is not None:
            over[k] = [float(v) for v in getattr(FLAGS, k)]
    return get_settings(FLAGS.preset, clf, FLAGS.layer, steps=FLAGS.steps,
                        seed=FLAGS.seed, **over)


def _perceptual():
    from tfrestore.metrics import PerceptualUnavailable, make_perceptual
    try:
        return make_perceptual(FLAGS.perceptual_network), None
    except PerceptualUnavailable as e:
        logging.warning("%s", e)
        return None, str(e)


def _run_inverter(clf, images, settings, terms):
    """--method=network|hybrid as an `InversionResult`, so the outputs are the same."""
    from tfrestore.inversion import InversionResult
    from tfrestore.inverters import (load_inverter, reconstruct_hybrid,
                                     reconstruct_with_network)
    inverter = load_inverter(FLAGS.inverter)
    if FLAGS.method == "network":
        net = reconstruct_with_network(inverter, clf, FLAGS.layer, images)
        result = InversionResult(net.reconstructions, settings, 0, net.seconds)
    else:
        net = reconstruct_hybrid(inverter, clf, FLAGS.layer, images, settings,
                                 extra_terms=terms, lr_scale=FLAGS.hybrid_lr_scale, verbose=True,
                                 summary_dir=os.path.join(FLAGS.output_dir, "tensorboard"))
        result = net.optimisation
        result.seconds = net.seconds
        result.settings = settings.replace(lr_values=net.settings["optimisation"]["lr_values"])
    result.inverter = dict(net.settings, path=os.path.abspath(FLAGS.inverter))
    return result


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.data import load_images
    from tfrestore.inversion import invert, write_run
    from tfrestore.inversion.learned import describe_specs, prior_terms
    from tfrestore.metrics import evaluate_reconstructions
    if FLAGS.method not in ("optimisation", "network", "hybrid"):
        raise ValueError(f"Unknown --method '{FLAGS.method}' (available: optimisation, "
                         f"network, hybrid).")
    if FLAGS.method != "optimisation" and not FLAGS.inverter:
        raise ValueError(f"--method={FLAGS.method} needs --inverter=PATH.keras (train one "
                         f"with bin/train_inverter.py).")
    clf = cli.classifier_from_flags(input_size=FLAGS.input_size)
    settings = _settings(clf)  # resolves --layer: UnknownLayerError lists valid names
    terms = prior_terms(clf, FLAGS.prior)  # checked against the layers they attach to
    if terms and FLAGS.method == "network":
        raise ValueError("--prior has no effect with --method=network; use --method=hybrid.")
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    print(f"Inverting {len(loaded)} image(s) from {clf.name} {FLAGS.layer} "
          f"({settings.preset}, weights {clf.weights})", flush=True)
    if FLAGS.method != "optimisation":
        result = _run_inverter(clf, loaded.images, settings, terms)
    else:
        result = invert(clf, loaded.images, settings, extra_terms=terms,
                        log_every=FLAGS.log_every,
                        summary_dir=os.path.join(FLAGS.output_dir, "tensorboard"))
    perceptual, note = _perceptual()
    metrics = evaluate_reconstructions(clf, loaded.images, result.reconstructions,
                                       FLAGS.layer, perceptual=perceptual)
    record = dict(settings.as_dict(), method=FLAGS.method, steps_run=result.steps,
                  seconds=result.seconds, images=FLAGS.images, **clf.describe(),
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
    app.run(main)
