"""Pre-image optimisation steps with the network run on chunks of the batch
(`Objective.feature_chunk`) against the whole batch at once: time per step and how far the
results drift apart (rounding only: each image's features do not depend on the others).

  nice -n 10 python bench/bench_feature_chunk.py --output=results/feature_chunk_benchmark.md

Same process, same images, interleaved calls of every variant (load from other processes
hits all alike); median wall and CPU time (this process, all threads) per step. Then each
variant runs the same `--check_steps` of the mv2016 preset from the same start and the
largest per-pixel difference of the reconstructions from the unchunked run is reported.
"""
import time

from absl import flags

from tfrestore import cli

flags.DEFINE_string("classifier", "mobilenet_v2_tflite", "Classifier.")
flags.DEFINE_string("weights", "imagenet", "Its weights (imagenet, random, a file).")
flags.DEFINE_integer("weights_seed", 0, "Seed of --weights=random.")
flags.DEFINE_list("layers", ["Conv2d_0_0", "expanded_conv_5_add", "expanded_conv_12_add"],
                  "Layers to invert.")
flags.DEFINE_integer("batch", 20, "Images per step (the study's cells: 20).")
flags.DEFINE_list("chunks", ["0", "2", "4", "5", "10"], "feature_chunk values (0 = off).")
flags.DEFINE_integer("steps", 12, "Timed steps per variant (after 2 warm-up steps).")
flags.DEFINE_integer("check_steps", 30, "Steps of the drift check.")
flags.DEFINE_string("images", "results/splits/dev.txt", "Images (development split).")
flags.DEFINE_string("output", None, "Markdown table to write (also printed).")
FLAGS = flags.FLAGS


def _cpu():
    import resource
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


@cli.exit_on_user_error
def main(argv):
    del argv
    import os

    import numpy as np
    import tensorflow as tf

    from tfrestore.classifiers import load_classifier
    from tfrestore.data import load_images
    from tfrestore.inversion import get_settings
    from tfrestore.inversion.objectives import Objective
    from tfrestore.inversion.optimize import ImageOptimizer, build_objective
    from tfrestore.io import atomic_write
    clf = load_classifier(FLAGS.classifier, weights=FLAGS.weights, seed=FLAGS.weights_seed)
    images = load_images(FLAGS.images, clf.input_size, limit=FLAGS.batch).images
    if len(images) < FLAGS.batch:
        raise ValueError(f"--images has {len(images)} images, --batch={FLAGS.batch}.")
    chunks = [int(c) for c in FLAGS.chunks]
    rows = []
    for layer in FLAGS.layers:
        settings = get_settings("mv2016", clf, layer, steps=FLAGS.check_steps, seed=0)
        opts = {}
        for c in chunks:
            Objective.feature_chunk = c   # read when the step is traced
            obj = build_objective(clf, settings)
            obj.set_targets(images)
            opt = ImageOptimizer(clf, obj, settings, shape=images.shape)
            fn = opt.engine.step_fn
            total = tf.constant(opt.steps, tf.int32)
            opts[c] = (opt, lambda f=fn, t=total: f(tf.constant(1, tf.int32), t)[0].numpy())
            opts[c][1]()   # trace now, under this chunk size
        wall = {c: [] for c in chunks}
        cpu = {c: [] for c in chunks}
        for _ in range(2):
            for c in chunks:
                opts[c][1]()
        for _ in range(FLAGS.steps):
            for c in chunks:
                w, u = time.perf_counter(), _cpu()
                opts[c][1]()
                wall[c].append(time.perf_counter() - w)
                cpu[c].append(_cpu() - u)
        # Drift: the same run from the same start under each chunk size.
        finals = {}
        for c in chunks:
            Objective.feature_chunk = c
            obj = build_objective(clf, settings)
            obj.set_targets(images)
            finals[c] = ImageOptimizer(clf, obj, settings, shape=images.shape).run(
                verbose=False).reconstructions
        Objective.feature_chunk = 0
        base_w, base_c = np.median(wall[chunks[0]]), np.median(cpu[chunks[0]])
        for c in chunks:
            mw, mc = np.median(wall[c]), np.median(cpu[c])
            drift = float(np.max(np.abs(finals[c] - finals[chunks[0]])))
            rows.append(f"| {layer} | {c or 'off'} | {mw:.3f} | {mc:.3f} | {base_w / mw:.2f} | "
                        f"{base_c / mc:.2f} | {drift:.3g} |")
            print(rows[-1], flush=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    md = "\n".join([
        "# Network on chunks of the batch (`Objective.feature_chunk`)", "",
        f"`{cli.command_line()}`", "",
        f"{FLAGS.classifier} ({FLAGS.weights} weights), mv2016 steps on {FLAGS.batch} "
        f"development images (the study's cell size); median of {FLAGS.steps} interleaved steps per variant, wall and CPU "
        f"time of this process; speed-up against the first chunk value. Drift: the largest "
        f"|difference| (RGB 0-255) of the reconstructions after {FLAGS.check_steps} steps "
        f"from the same start. Load average at the end: {load}.", "",
        "| layer | chunk | s / step (wall) | s / step (CPU) | speed-up (wall) | "
        "speed-up (CPU) | drift after the check |", "|---|---|---|---|---|---|---|"] + rows)
    md += "\n"
    if FLAGS.output:
        atomic_write(FLAGS.output, md)
    print(md)


if __name__ == "__main__":
    cli.run(main)
