"""Time per step: full pre-image step vs bare forward+backward of the same cut network.

  nice -n 10 python bench/bench_inversion.py --steps=20 --output=results/inversion_benchmark.md

"bare": a tf.function computing the cut network's features of a batch and the gradient
of sum(features^2) with respect to the input (what any inversion must at least do).
"full": one step of the engine (`ImageOptimizer.engine.step_fn`) with the mv2016 priors
(range + TV + projection), jitter on, Adam, plus the loop's per-step work (the NaN guard
and the convergence meter read the objective). Same process, same batch, timings interleaved in blocks of 5 so that
load from other processes hits both alike; the median per-step time is reported.
Weights do not change the cost: VGG16 and AlexNet use random weights (no ImageNet
weights offline); MobileNetV2 is the shared TFLite model (dequantised).
"""
import sys
import time

from absl import app, flags

flags.DEFINE_integer("steps", 20, "Timed steps per variant (after 3 warm-up steps).")
flags.DEFINE_list("batch", ["1", "8"], "Images per step (one table row per value).")
flags.DEFINE_string("mobilenet", "mobilenet_v2_tflite", "MobileNetV2 (the bundled TFLite).")
flags.DEFINE_string("mobilenet_layer", "expanded_conv_13_add", "MobileNetV2 layer.")
flags.DEFINE_string("output", None, "Markdown table to write.")
FLAGS = flags.FLAGS


def _time_blocks(fns, steps, block=5):
    import numpy as np
    times = {k: [] for k in fns}
    for k, f in fns.items():
        for _ in range(3):
            f()
    done = 0
    while done < steps:
        n = min(block, steps - done)
        for k, f in fns.items():
            for _ in range(n):
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
        done += n
    return {k: float(np.median(v)) for k, v in times.items()}


def bench_one(clf, layer, batch, steps):
    import numpy as np
    import tensorflow as tf
    from tfrestore.inversion import PreimageOptimizer, get_settings
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch,) + clf.input_shape).astype(np.float32)
    s = get_settings("mv2016", clf, layer, jitter=4)
    opt = PreimageOptimizer(clf, images, s)
    model = clf.feature_model(layer)
    x = tf.Variable(images)

    @tf.function
    def bare():
        with tf.GradientTape() as tape:
            f = model(x, training=False)
            loss = tf.reduce_sum(tf.square(f))
        return tape.gradient(loss, x)

    i, n = tf.constant(0), tf.constant(s.steps)

    def run_bare():
        return bare().numpy()  # .numpy(): wait for the result, as the loop's logging does

    def run_full():
        total = opt.engine.step_fn(i, n)[0].numpy()   # NaN guard / convergence meter read it
        return np.isfinite(total).all() and float(np.mean(total))

    return _time_blocks({"bare": run_bare, "full": run_full}, steps)


def main(argv):
    del argv
    from tfrestore.classifiers import load_classifier
    from tfrestore.io import atomic_write
    configs = [("vgg16", "conv3_3"), ("vgg16", "pool5"), ("alexnet", "conv5"),
               (FLAGS.mobilenet, FLAGS.mobilenet_layer)]
    rows, cache = [], {}
    for batch in [int(b) for b in FLAGS.batch]:
        for net, layer in configs:
            if net not in cache:
                cache[net] = (load_classifier(net) if "tflite" in net
                              else load_classifier(net, weights="random", seed=0))
            clf = cache[net]
            t = bench_one(clf, layer, batch, FLAGS.steps)
            rows.append((clf.name, layer, clf.input_shape[0], batch, t["bare"], t["full"],
                         t["full"] / t["bare"]))
            print(f"{clf.name} {layer} batch {batch}: bare {t['bare'] * 1e3:.1f} ms, full "
                  f"{t['full'] * 1e3:.1f} ms, ratio {t['full'] / t['bare']:.3f}", flush=True)
    lines = [f"# Pre-image optimisation step cost\n\nCommand: `python "
             f"{' '.join(sys.argv)}`\n\nMedian of {FLAGS.steps} timed steps (after 3 warm-up) "
             f"per variant, interleaved in blocks of 5, one process, "
             f"2 CPU cores shared with other jobs. full = mv2016 step (feature loss, range "
             f"prior, TV, B+ projection, jitter T=4, Adam); bare = forward + backward of the "
             f"same cut network. Goal: ratio <= 1.05.\n",
             "| network | layer | input | batch | bare (ms/step) | full (ms/step) | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4] * 1e3:.1f} | "
                     f"{r[5] * 1e3:.1f} | {r[6]:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if FLAGS.output:
        atomic_write(FLAGS.output, text)


if __name__ == "__main__":
    app.run(main)
