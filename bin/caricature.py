"""Caricatures after M&V 2016: amplify what a layer sees in an image, under the preset's
regularisers and any learned priors (on the one engine).

  python bin/caricature.py --images=../shared/data/imagenet_samples/n01531178_goldfinch.JPEG \
      --layer=expanded_conv_6_add --preset=mv2016 --output_dir=/tmp/caricature

--feature_weight is the weight C of the projection term -<phi(x), phi(x0)>/||phi(x0)||^2;
every other setting has its flag. Outputs: images/<image>.png (8-bit), figure.png
(originals over caricatures), metrics.json (the projection at the start and the end),
tensorboard/.
"""
import os

from absl import flags

from tfrestore import cli
from tfrestore.inversion.presets import PRESETS

cli.define_classifier_flags()
flags.DEFINE_string("images", "astronaut", "Image file, folder, list .txt or photo name.")
flags.DEFINE_integer("limit", None, "At most this many images.")
flags.DEFINE_string("layer", None, "Layer whose code is amplified.")
flags.DEFINE_enum("preset", "mv2016", list(PRESETS), "Regularisers and schedule.")
flags.DEFINE_integer("steps", 350, "Optimisation steps (schedules scale with the run length).")
flags.DEFINE_integer("seed", 0, "Seed of the jitter (and of the noise start).")
flags.DEFINE_enum("init", "image", ["image", "noise"], "Start from the image or from noise.")
cli.define_optimisation_flags()   # --output_dir, --log_every, --prior, every setting
flags.mark_flags_as_required(["layer", "output_dir"])
FLAGS = flags.FLAGS


@cli.exit_on_user_error
def main(argv):
    del argv
    import numpy as np

    from tfrestore.data import load_images
    from tfrestore.inversion.learned import describe_specs, prior_terms
    from tfrestore.inversion.outputs import image_stem
    from tfrestore.io import environment_info, save_png, write_json
    from tfrestore.uses.caricature import caricature, projection
    from tfrestore.uses.grid import save_image_grid
    clf = cli.classifier_from_flags()
    settings = cli.optimisation_settings(clf, FLAGS.layer)
    terms = prior_terms(clf, FLAGS.prior)
    out = cli.prepare_output_dir(FLAGS.output_dir, ("images", "figure.png", "tensorboard",
                                                    "metrics.json"))
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    x0 = loaded.images
    start = projection(clf, FLAGS.layer, x0, x0) if FLAGS.init == "image" else None
    result = caricature(clf, x0, settings, terms, init=FLAGS.init, log_every=FLAGS.log_every,
                        summary_dir=os.path.join(out, "tensorboard"))
    rec8 = np.clip(np.round(result.reconstructions), 0, 255)
    end = projection(clf, FLAGS.layer, rec8, x0)
    rows = []
    for i, p in enumerate(loaded.paths):
        png = f"images/{image_stem(p, i)}.png"
        save_png(os.path.join(out, png), rec8[i])
        rows.append({"path": p, "image": png, "projection_end": end[i],
                     "top1_original": clf.top_k(x0[i:i + 1], 1)[0][0][1],
                     "top1_caricature": clf.top_k(rec8[i:i + 1], 1)[0][0][1]})
        print(f"{p}: projection {end[i]:.3g} (1 = the image itself)")
    n = len(x0)
    save_image_grid(os.path.join(out, "figure.png"), np.concatenate([x0, rec8]),
                    [os.path.basename(p)[:24] for p in loaded.paths] +
                    [f"x{e:.2g}" for e in end], ncols=n,
                    title=f"{clf.name} {FLAGS.layer}: caricatures ({settings.preset}, "
                          f"{result.steps} steps, C={settings.feature_weight:g})",
                    row_labels=["image", "caricature"])
    write_json(os.path.join(out, "metrics.json"), {
        "settings": dict(settings.as_dict(), steps_run=result.steps, seconds=result.seconds,
                         init=FLAGS.init, converged=result.converged,
                         priors=describe_specs(terms), command=cli.command_line(),
                         **clf.describe(), environment=environment_info()),
        "images": rows, "projection_start": None if start is None else start.tolist()})
    print(f"Wrote {out}")


if __name__ == "__main__":
    cli.run(main)
