"""Seconds per step of real mv2016 inversions with and without an image-space FoE prior.

  nice -n 10 python bench/bench_prior_inversion.py --output results/prior_inversion_timing.md

The shared TFLite MobileNetV2, --layer, --limit held-out test images (results/splits/test.txt,
not used by bench_prior_cost.py), --steps of the mv2016 preset, one batch. Variants: no prior;
the prior (--prior at --weight on the image) as a `GridEstimate` of stride --stride (unbiased,
tfrestore/priors/grid.py); and as `PriorTerm(crop=0.3)` for comparison. Each variant is
first run for a few steps on a throw-away optimiser (tracing, and XLA compilation of every
grid shape), then run for real on a fresh one; seconds per step = that run's wall time /
steps (it includes re-tracing the step function, about a second). Quality metrics of the
final reconstructions are printed to show that the prior acts, not to rank the variants
(--steps is far below a converged run).
"""
import os
import sys


from absl import app, flags

flags.DEFINE_string("classifier", "../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite",
                    "TFLite MobileNetV2.")
flags.DEFINE_string("layer", "expanded_conv_5_add", "Layer to invert.")
flags.DEFINE_string("prior", "checkpoints/foe_8x8x3_512.keras", "Image-space prior.")
flags.DEFINE_float("weight", 1e-6, "Prior weight.")
flags.DEFINE_integer("stride", 4, "Grid stride of the estimate.")
flags.DEFINE_string("images", "results/splits/test.txt", "Images (held out, untimed elsewhere).")
flags.DEFINE_integer("limit", 2, "Images (one batch).")
flags.DEFINE_integer("steps", 100, "Optimisation steps per run.")
flags.DEFINE_integer("seed", 0, "Seed of the start, jitter, crops and grid offsets.")
flags.DEFINE_string("output", "results/prior_inversion_timing.md", "Markdown table.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import numpy as np

    from tfrestore.classifiers import load_classifier
    from tfrestore.data.images import load_images
    from tfrestore.inversion import PreimageOptimizer, get_settings
    from tfrestore.inversion.objectives import PriorTerm
    from tfrestore.io import atomic_write, environment_info
    from tfrestore.metrics import evaluate_reconstructions
    from tfrestore.priors import load_prior
    from tfrestore.priors.grid import GridEstimate
    clf = load_classifier(FLAGS.classifier)
    prior = load_prior(FLAGS.prior)
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    images = loaded.images
    settings = get_settings("mv2016", clf, FLAGS.layer, seed=FLAGS.seed, steps=FLAGS.steps)

    def terms(kind):
        if kind == "none":
            return []
        if kind == "crop":
            return [PriorTerm(prior, weight=FLAGS.weight, name="foe", crop=0.3, seed=FLAGS.seed)]
        return [PriorTerm(GridEstimate(prior, FLAGS.stride, seed=FLAGS.seed),
                          weight=FLAGS.weight, name="foe")]

    variants = {"no prior": "none", f"FoE, grid stride {FLAGS.stride}": "grid",
                "FoE, crop 0.3": "crop"}
    rows = []
    for name, kind in variants.items():
        warm = PreimageOptimizer(clf, images, settings, extra_terms=terms(kind))
        warm.run(steps=4 * FLAGS.stride ** 2 if kind == "grid" else 3, verbose=False)
        res = PreimageOptimizer(clf, images, settings, extra_terms=terms(kind)).run(
            steps=FLAGS.steps, verbose=False)
        m = evaluate_reconstructions(clf, images, np.clip(res.reconstructions, 0, 255),
                                     FLAGS.layer)
        mean = {k: float(np.mean(v)) for k, v in m.items()}
        rows.append((name, res.seconds / res.steps, res.steps, mean))
        print(f"{name}: {res.seconds / res.steps * 1e3:.0f} ms/step over {res.steps} steps; "
              f"SSIM {mean['ssim']:.3f}, feature error {mean['feature_error']:.4f}", flush=True)
    base = rows[0][1]
    env = environment_info()
    load = os.getloadavg()
    lines = ["# mv2016 inversion with an image-space FoE prior: seconds per step", "",
             "Command:", "", "```", "nice -n 10 python " + " ".join(sys.argv), "```", "",
             f"MobileNetV2 (`{FLAGS.classifier}`) at `{FLAGS.layer}`, {len(images)} held-out "
             f"images ({', '.join(os.path.basename(p) for p in loaded.paths)}) in one batch, "
             f"{FLAGS.steps} mv2016 steps (not converged: a timing run), prior "
             f"`{FLAGS.prior}` on the image at weight {FLAGS.weight:g}. Wall time of the run "
             "after a warm-up run on a throw-away optimiser. CPU only, TensorFlow "
             f"{env['tensorflow']}, {os.cpu_count()} cores shared with other jobs (load average "
             f"at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}).", "",
             "| variant | ms / step | vs no prior | SSIM | feature error |",
             "|---|---|---|---|---|"]
    for name, sec, steps, mean in rows:
        lines.append(f"| {name} | {sec * 1e3:.0f} | {sec / base:.2f}x | {mean['ssim']:.3f} | "
                     f"{mean['feature_error']:.4f} |")
    atomic_write(FLAGS.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
