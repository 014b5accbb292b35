"""Feature-map statistics of classifier layers over an image set (seed §4.1, Fig. 4).

Mean spatial covariance and its (ridge-regularised) inverse with their distance from
block-Toeplitz (stationarity), mean Gram matrix, sparsity (Gini index, fraction of
zeros, per-channel histograms). Streams the images batch by batch.

  python bin/featmap_stats.py --classifier=vgg16 --weights=random --layer=pool5 \\
      --images=../shared/data/imagenet_samples --limit=200 --output_dir=results/featmap_stats

Writes, per layer, <output_dir>/<classifier>_<layer>.{npz,json} and
..._covariance.png, ..._gram.png, ..._sparsity.png.
"""
import os


from absl import flags, logging

from tfrestore import cli

cli.define_classifier_flags()
flags.DEFINE_list("layer", None, "Layer name(s), comma-separated (aliases such as pool5 or "
                  "conv3_3/lin allowed). Must have an [H, W, C] output.")
flags.DEFINE_string("images", None, "Image file, folder, scikit-image photo name or "
                    "tfds:NAME:SPLIT:COUNT (comma-separated list allowed).")
flags.DEFINE_integer("limit", None, "Use at most this many images.")
flags.DEFINE_integer("batch_size", 16, "Images per forward pass.")
flags.DEFINE_string("output_dir", "featmap_stats", "Folder for arrays, JSON and figures.")
flags.DEFINE_integer("seed", 0, "Seed of the shuffled-position Toeplitz baseline.")
flags.DEFINE_integer("max_size", 32, "Covariance over a centred crop of at most this many "
                     "positions per side (0: whole map).")
flags.DEFINE_integer("bins", 64, "Histogram bins per channel.")
flags.DEFINE_float("zero_tol", 0.0, "|x| <= zero_tol counts as zero.")
flags.DEFINE_integer("margin", None, "Border positions left out of the Toeplitz measure "
                     "(default 1, 0 for maps smaller than 5x5).")
flags.DEFINE_float("inverse_eps", 1e-3, "Ridge of the inverse, relative to the mean variance.")
flags.DEFINE_bool("figures", True, "Draw figures.")
flags.mark_flags_as_required(["layer", "images"])
FLAGS = flags.FLAGS


def _safe(name):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.io import environment_info, make_folder
    from tfrestore.stats import featmap_stats, save_stats, summary
    if FLAGS.max_size < 0:
        raise ValueError(f"--max_size={FLAGS.max_size}: must be >= 0 (0: the whole map).")
    make_folder(FLAGS.output_dir, "--output_dir")  # fail before the statistics, not after
    clf = cli.classifier_from_flags()
    results = featmap_stats(
        clf, list(FLAGS.layer), FLAGS.images, limit=FLAGS.limit, batch_size=FLAGS.batch_size,
        max_size=FLAGS.max_size or None, bins=FLAGS.bins, zero_tol=FLAGS.zero_tol,
        margin=FLAGS.margin, inverse_eps=FLAGS.inverse_eps, seed=FLAGS.seed,
        progress=lambda n: logging.info("%d images", n))
    settings = {"classifier": clf.describe(), "weights_seed": FLAGS.weights_seed,
                "images": FLAGS.images, "limit": FLAGS.limit, "batch_size": FLAGS.batch_size,
                "seed": FLAGS.seed, "max_size": FLAGS.max_size, "bins": FLAGS.bins,
                "zero_tol": FLAGS.zero_tol, "environment": environment_info()}
    base = _safe(clf.name)  # already a short name (file names without folder and suffix)
    for layer, stats in results.items():
        prefix = os.path.join(FLAGS.output_dir, f"{base}_{_safe(layer)}")
        save_stats(stats, prefix, dict(settings, layer=layer), figures=FLAGS.figures)
        s = summary(stats)
        print(f"{clf.name} {layer} {tuple(s['shape'])} n={s['n_images']}: "
              f"toeplitz_residual={s['toeplitz_residual']:.4f} "
              f"(shuffled {s['toeplitz_residual_shuffled']:.4f}) "
              f"inverse={s['toeplitz_residual_inverse']:.4f} "
              f"(shuffled {s['toeplitz_residual_inverse_shuffled']:.4f}) "
              f"zeros={s['fraction_zeros']:.4f} gini={s['gini_mean']:.4f} "
              f"-> {prefix}.*")


if __name__ == "__main__":
    cli.run(main)
