"""Adversarial examples (FGSM, PGD under L-inf or L2) against a classifier, and restoring
them: MAP under a prior (TV, learned patch priors / DAE priors via --prior), inversion
from a layer, JPEG re-encoding, median filter. Top-1 accuracy on clean, adversarial and
restored images (and restored clean images: the price of the defence), for the float
model and, for TFLite classifiers, tf.lite.Interpreter on the original quantised file.

  python bin/adversarial.py --images=results/splits/test.txt --limit=50 \
      --attack=fgsm,pgd --eps=4 --step_size=1 --iters=10 \
      --defences=tv,jpeg,median,invert --output_dir=results/adversarial

Budgets are in 0-255 units (eps=4: 4/255 per pixel for L-inf). Labels come from ImageNet
file names <wnid>_<name>.JPEG (--labels_from=predictions: the clean prediction instead).
Each (image set, defence) cell is cached under output_dir/cache: a rerun resumes.
"""
import os

from absl import flags

from tfrestore import cli

cli.define_classifier_flags()
flags.DEFINE_string("images", "results/splits/test.txt", "Images (file, folder, list .txt).")
flags.DEFINE_integer("limit", None, "Use the first N images.")
flags.DEFINE_list("attack", ["fgsm", "pgd"], "Attacks: fgsm, pgd.")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Norm of the budget (PGD; FGSM is L-inf "
                  "sign, or a normalised-gradient step for l2).")
flags.DEFINE_float("eps", 4.0, "Budget in 0-255 units (per pixel for linf, per image l2).")
flags.DEFINE_float("step_size", 1.0, "PGD step (0-255 units).")
flags.DEFINE_integer("iters", 10, "PGD iterations.")
flags.DEFINE_bool("random_start", True, "PGD: seeded uniform start in the eps-ball.")
flags.DEFINE_integer("seed", 0, "Seed of the PGD start and of the restorations.")
flags.DEFINE_list("defences", ["tv", "jpeg", "median"], "tv, prior (MAP under --prior), "
                  "invert (pre-image from --invert_layer), jpeg, median.")
flags.DEFINE_float("restore_sigma", 4.0, "s of the MAP data term ||x - x_adv||^2/(2 s^2).")
flags.DEFINE_float("restore_tv_weight", 0.02, "Weight of isotropic TV in the tv defence.")
flags.DEFINE_multi_string("prior", [], "Learned prior PATH@image:WEIGHT for the prior "
                          "defence, e.g. checkpoints/foe_8x8x3_512.keras@image:0.01.")
flags.DEFINE_float("prior_crop", 0.0, "Evaluate learned priors on a random crop of this "
                   "fraction per step (a stochastic estimate; 0 = the whole image).")
flags.DEFINE_integer("restore_steps", 50, "Adam steps of the MAP restorations.")
flags.DEFINE_float("restore_lr", 2.0, "Initial step of the MAP restorations (cosine decay).")
flags.DEFINE_string("invert_layer", "expanded_conv_6_add", "Layer of the invert defence.")
flags.DEFINE_integer("invert_steps", 50, "Steps of the invert defence (fast preset).")
flags.DEFINE_integer("jpeg_quality", 75, "JPEG quality of the jpeg defence.")
flags.DEFINE_integer("median_size", 3, "Median filter size of the median defence.")
flags.DEFINE_enum("labels_from", "filenames", ["filenames", "predictions"], "True labels: "
                  "ImageNet <wnid>_ file names, or the float model's clean predictions.")
flags.DEFINE_integer("batch_size", 10, "Images per optimisation batch.")
flags.DEFINE_string("output_dir", None, "Output folder (table.md, metrics.json, cache/).")
flags.mark_flags_as_required(["output_dir"])
FLAGS = flags.FLAGS
DEFENCES = ("tv", "prior", "invert", "jpeg", "median")


def wnid_labels(paths, n_classes):
    """Class indices from <wnid>_*.JPEG names (1001 outputs: index 0 is background)."""
    import tensorflow_datasets
    path = os.path.join(os.path.dirname(tensorflow_datasets.__file__), "datasets",
                        "imagenet2012", "labels.txt")
    with open(path) as f:
        rank = {w: i for i, w in enumerate(sorted(l.strip() for l in f if l.strip()))}
    ids = [os.path.basename(p).split("_")[0] for p in paths]
    bad = [p for p, w in zip(paths, ids) if w not in rank]
    if bad:
        raise ValueError(f"{len(bad)} image(s) are not named <wnid>_<name> (e.g. {bad[0]}): "
                         f"use --labels_from=predictions.")
    return [rank[w] + (n_classes - 1000) for w in ids]


def batched(fn, images, size):
    import numpy as np
    return np.concatenate([fn(images[i:i + size]) for i in range(0, len(images), size)])


def cached(path, fn):
    """fn() once; its array is stored at `path` (atomically) and reused by reruns."""
    import numpy as np

    from tfrestore.io import save_npz
    if os.path.exists(path):
        return np.load(path)["x"]
    x = fn()
    save_npz(path, x=x)
    return x


@cli.exit_on_user_error
def main(argv):
    del argv
    import time

    import numpy as np

    from tfrestore.data import load_images
    from tfrestore.inversion.learned import describe_specs, prior_terms
    from tfrestore.io import atomic_write, environment_info, portable_record, write_json
    from tfrestore.uses import adversarial as A
    from tfrestore.uses.targets import logits_layer
    from tfrestore.uses.tflite_check import interpreter_scores, tflite_file
    unknown = set(FLAGS.defences) - set(DEFENCES)
    if unknown:
        raise ValueError(f"--defences: unknown {sorted(unknown)}; choose from {DEFENCES}.")
    if "prior" in FLAGS.defences and not FLAGS.prior:
        raise ValueError("--defences=prior needs --prior=PATH@image:WEIGHT.")
    clf = cli.classifier_from_flags()
    terms = prior_terms(clf, FLAGS.prior)
    if "invert" in FLAGS.defences:
        clf.resolve(FLAGS.invert_layer)
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    images = np.round(loaded.images)
    n_out = clf.output_shape(logits_layer(clf))[-1]
    out = cli.prepare_output_dir(FLAGS.output_dir, ("table.md", "metrics.json"))
    cache = os.path.join(out, "cache")
    key = (f"{FLAGS.norm}_eps{FLAGS.eps:g}_step{FLAGS.step_size:g}_it{FLAGS.iters}_"
           f"rs{int(FLAGS.random_start)}_seed{FLAGS.seed}_n{len(images)}")
    labels = np.asarray(wnid_labels(loaded.paths, n_out) if FLAGS.labels_from == "filenames"
                        else A.top1(clf, images))
    sets = {"clean": images}
    bs = FLAGS.batch_size
    for name in FLAGS.attack:
        t0 = time.time()
        sets[name] = cached(os.path.join(cache, f"{name}_{key}.npz"), lambda: np.round(
            np.concatenate([A.attack(clf, images[i:i + bs], labels[i:i + bs], name,
                                     FLAGS.norm, FLAGS.eps, FLAGS.step_size, FLAGS.iters,
                                     FLAGS.random_start, FLAGS.seed + i)
                            for i in range(0, len(images), bs)])))
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    restore = {
        "tv": lambda x: A.map_restore(clf, x, FLAGS.restore_sigma, FLAGS.restore_tv_weight,
                                      steps=FLAGS.restore_steps, lr=FLAGS.restore_lr,
                                      seed=FLAGS.seed)[0],
        "prior": lambda x: A.map_restore(clf, x, FLAGS.restore_sigma, 0.0, terms,
                                         FLAGS.restore_steps, FLAGS.restore_lr,
                                         FLAGS.prior_crop, FLAGS.seed)[0],
        "invert": lambda x: A.inversion_restore(clf, x, FLAGS.invert_layer,
                                                FLAGS.invert_steps, seed=FLAGS.seed)[0],
        "jpeg": lambda x: A.jpeg(x, FLAGS.jpeg_quality),
        "median": lambda x: A.median(x, FLAGS.median_size)}
    dkey = {"tv": f"s{FLAGS.restore_sigma:g}_w{FLAGS.restore_tv_weight:g}_"
                  f"st{FLAGS.restore_steps}_lr{FLAGS.restore_lr:g}",
            "prior": "_".join(os.path.basename(s) for s in FLAGS.prior).replace("@", "-")
                     + f"_s{FLAGS.restore_sigma:g}_st{FLAGS.restore_steps}_"
                       f"c{FLAGS.prior_crop:g}_lr{FLAGS.restore_lr:g}",
            "invert": f"{FLAGS.invert_layer}_st{FLAGS.invert_steps}",
            "jpeg": f"q{FLAGS.jpeg_quality}", "median": f"k{FLAGS.median_size}"}
    lite = tflite_file(clf)
    acc, seconds = {}, {}
    for sname, x in sets.items():
        for d in ["none"] + list(FLAGS.defences):
            t0 = time.time()
            y = x if d == "none" else np.round(np.clip(cached(
                os.path.join(cache, f"{sname}_{key if sname != 'clean' else 'clean'}_"
                                    f"{d}_{dkey[d]}_n{len(x)}.npz"),
                lambda: batched(restore[d], x, bs)), 0, 255))
            seconds[f"{sname}/{d}"] = time.time() - t0
            cell = {"float": float(np.mean(A.top1(clf, y) == labels))}
            if lite:
                cell["tflite"] = float(np.mean(interpreter_scores(lite, y).argmax(-1) ==
                                               labels))
            cell["linf_to_clean"] = float(np.abs(y - images).max())
            acc[f"{sname}/{d}"] = cell
            print(f"{sname:6s} {d:7s} " + " ".join(f"{k}={v:.3f}" for k, v in cell.items()),
                  flush=True)
    cols = ["none"] + list(FLAGS.defences)
    fmt = lambda c: f"{c['float']:.2f}" + (f" / {c['tflite']:.2f}" if "tflite" in c else "")
    lines = [f"# Adversarial examples and restoration: {clf.name}", "", "Command:", "",
             "```", cli.command_line(), "```", "",
             f"{len(images)} images ({FLAGS.images}); labels from {FLAGS.labels_from}. "
             f"Attacks: {', '.join(FLAGS.attack)} under {FLAGS.norm}, eps={FLAGS.eps:g} "
             f"(0-255 units), PGD {FLAGS.iters} steps of {FLAGS.step_size:g}"
             f"{' from a random start' if FLAGS.random_start else ''}; adversarial images "
             f"rounded to 8 bits. Defences: tv = MAP, ||x-y||^2/(2*{FLAGS.restore_sigma:g}^2) + "
             f"{FLAGS.restore_tv_weight:g} TV, {FLAGS.restore_steps} Adam steps (lr "
             f"{FLAGS.restore_lr:g}, cosine); prior = the same data term + "
             f"{', '.join(FLAGS.prior) or '-'} (crop {FLAGS.prior_crop:g}); invert = "
             f"pre-image from {FLAGS.invert_layer} ({FLAGS.invert_steps} steps, fast preset); "
             f"jpeg q={FLAGS.jpeg_quality}; median {FLAGS.median_size}x{FLAGS.median_size}.",
             "", "Top-1 accuracy" + (" (float import / tf.lite.Interpreter on the original "
                                      ".tflite)" if lite else " (float model)") + ":", "",
             "| images | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for sname in sets:
        lines.append(f"| {sname} | " + " | ".join(fmt(acc[f"{sname}/{d}"]) for d in cols)
                     + " |")
    lines += ["", "Seconds per cell (this run; cached cells ~0): " +
              ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())]
    atomic_write(os.path.join(out, "table.md"), "\n".join(lines) + "\n")
    write_json(os.path.join(out, "metrics.json"), {
        "accuracy": acc, "seconds": seconds, "images": portable_record(loaded.paths),
        "labels": labels,
        "settings": dict({k: getattr(FLAGS, k) for k in (
            "attack", "norm", "eps", "step_size", "iters", "random_start", "seed",
            "defences", "restore_sigma", "restore_tv_weight", "prior", "prior_crop",
            "restore_steps", "restore_lr", "invert_layer", "invert_steps", "jpeg_quality",
            "median_size", "labels_from", "images", "limit")},
            tflite=lite and os.path.basename(lite),
            priors=describe_specs(terms), command=cli.command_line(), **clf.describe(),
            environment=environment_info())})
    print("\n".join(lines[-len(sets) - 4:]))
    print(f"Wrote {out}/table.md")


if __name__ == "__main__":
    cli.run(main)
